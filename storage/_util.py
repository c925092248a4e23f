"""Small conversions shared by the repositories."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime

# The clock of the transaction in progress (set by storage.db.Database), so that the times the
# repositories stamp follow the injected clock in tests and the demo, not the wall clock.
current_clock: ContextVar[Callable[[], datetime] | None] = ContextVar("current_clock", default=None)


def utcnow() -> str:
    clock = current_clock.get()
    moment = clock() if clock is not None else datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def row_dict(row) -> dict:
    return {key: row[key] for key in row.keys()}
