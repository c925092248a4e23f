"""The database a URL names: ``sqlite:///path`` (the default backend) or ``postgresql://…``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Union

from storage.db import Database

if TYPE_CHECKING:
    from storage.postgres import PostgresDatabase

AnyDatabase = Union[Database, "PostgresDatabase"]


def is_postgres(url: str | Path) -> bool:
    return isinstance(url, str) and url.split("://", 1)[0] in ("postgresql", "postgres")


def sqlite_path(url: str | Path) -> str:
    """``sqlite:///data/x.sqlite3`` → ``data/x.sqlite3``; ``sqlite:////abs/x`` → ``/abs/x``; a bare path as is."""
    if isinstance(url, Path):
        return str(url)
    if url.startswith("sqlite://"):
        rest = url[len("sqlite://"):]
        if rest.startswith("/"):
            rest = rest[1:]
        return rest or ":memory:"
    if "://" in url:
        raise ValueError(f"unknown database URL scheme {url.split('://', 1)[0]!r}: use sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
    return url


def make_database(url: str | Path, now: Callable[[], datetime] | None = None) -> AnyDatabase:
    """The Database for a URL (or a plain SQLite path), not yet opened."""
    if is_postgres(url):
        from storage.postgres import PostgresDatabase

        return PostgresDatabase(str(url), now)
    return Database(sqlite_path(url), now)


async def open_database(url: str | Path, now: Callable[[], datetime] | None = None) -> AnyDatabase:
    """The Database for a URL, opened (migrated to the newest schema)."""
    return await make_database(url, now).open()
