"""One SQLite file through aiosqlite: pragmas, migrations, and serialised transactions."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import datetime
from importlib import resources
from pathlib import Path

import aiosqlite

from storage._util import current_clock

Connection = aiosqlite.Connection

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every file in storage/migrations, in order."""
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


class Database:
    """A single connection; an asyncio lock serialises access.

    One connection shared by concurrent handlers would otherwise interleave statements of two
    transactions. Writers take ``BEGIN IMMEDIATE`` so a transaction that reads first cannot be
    upgraded into a "database is locked" error by another process (a backup, a second bot).
    """

    def __init__(self, path: str | Path, now: Callable[[], datetime] | None = None):
        self.path = str(path)
        self.now = now  # the clock stamped on rows written through this database (None: the wall clock)
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> Database:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = FULL")
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute("PRAGMA busy_timeout = 5000")
        self._conn = conn
        await self._migrate()
        return self

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("database is not open")
        return self._conn

    async def _migrate(self) -> None:
        async with self._lock:
            current = await self.schema_version()
            for version, name, sql in migrations():
                if version <= current:
                    continue
                # One script, one transaction: a migration is applied whole or not at all.
                await self.conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;")

    async def schema_version(self) -> int:
        async with self.conn.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def pragma(self, name: str) -> str:
        async with self.conn.execute(f"PRAGMA {name}") as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else ""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction: all of it or none of it."""
        async with self._lock:
            token = current_clock.set(self.now)
            try:
                await self.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self.conn
                except BaseException:
                    await self.conn.execute("ROLLBACK")
                    raise
                await self.conn.execute("COMMIT")
            finally:
                current_clock.reset(token)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """Reads that must not see another task's half-done transaction."""
        async with self._lock:
            yield self.conn
