"""Small conversions shared by the repositories."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def row_dict(row) -> dict:
    return {key: row[key] for key in row.keys()}
