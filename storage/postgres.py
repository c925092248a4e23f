"""PostgreSQL through asyncpg: the same Database surface as storage/db.py, the same repositories.

Why asyncpg: it is the fastest Python driver, binary protocol, server-side prepared statements cached
per connection (each repository statement is parsed once per connection), and its rows (``Record``)
already read as ``row["col"]``, ``row[0]`` and ``row.keys()``, like ``aiosqlite.Row``. The repositories
keep their ``?`` placeholders (translated to ``$n`` once per statement text, storage/dialect.py).

Transactions. SQLite's writers take ``BEGIN IMMEDIATE``: one writer at a time for the whole file, so a
transaction that reads and then writes decides on data nobody else changes meanwhile. Here every write
transaction takes one transaction-scoped advisory lock (``pg_advisory_xact_lock``) as its first
statement, in READ COMMITTED: each later statement sees everything committed before the lock was
granted, and no other writer (in this process or another bot process on the same database) runs until
this one commits or rolls back. SERIALIZABLE would allow more parallel writers, but it needs the whole
transaction body re-run on a serialisation failure, which ``async with db.transaction()`` cannot do
without changing every caller; writes here are short and few per second, so one writer at a time costs
nothing measurable and keeps the SQLite semantics exactly. Reads (``read()``) run in parallel with
writers on their own connections, in a REPEATABLE READ READ ONLY transaction: one consistent snapshot.
Idempotency across processes still rests on unique keys and conditional updates, as on SQLite.

Types. PostgreSQL refuses a Python ``True`` for a BIGINT column or an ``int`` compared with TEXT, which
SQLite's column affinity converts silently. Each statement's parameter types are known once it is
prepared, so arguments are converted the way SQLite's affinity would (bool → 0/1, int → text for TEXT,
an integral string → int for an integer); nothing else is guessed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any

import asyncpg

from storage._util import current_clock
from storage.dialect import placeholders, translate_migration

# pg_advisory_xact_lock keys (any two fixed 64-bit numbers, the same in every process).
WRITE_LOCK = 0x62_70_62_6F_74_77_72  # "bpbotwr"
MIGRATE_LOCK = 0x62_70_62_6F_74_6D_67  # "bpbotmg"

_STATEMENTS_PER_CONNECTION = 1024
_INTEGER_TYPES = {"int2", "int4", "int8"}
_TEXT_TYPES = {"text", "varchar", "bpchar", "name"}


def migration_twin(name: str) -> str | None:
    """The PostgreSQL-only part of a migration (its triggers), if it has one."""
    twin = resources.files("storage.migrations").joinpath("postgres", name)
    return twin.read_text(encoding="utf-8") if twin.is_file() else None


def translated_migrations() -> list[tuple[int, str, str]]:
    """(version, name, PostgreSQL script) for every migration, in order."""
    from storage.db import migrations

    return [(version, name, _translated(name, sql, migration_twin(name))) for version, name, sql in migrations()]


@lru_cache(maxsize=256)
def _translated(name: str, sql: str, twin: str | None) -> str:
    return translate_migration(name, sql, twin)


# --- arguments -------------------------------------------------------------------------------------


def _to_integer(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return value


def _to_text(value: Any) -> Any:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, Decimal)):
        return str(value)
    return value


def _converters(parameter_types: Sequence[str]) -> tuple[Callable[[Any], Any] | None, ...] | None:
    converters = tuple(
        _to_integer if kind in _INTEGER_TYPES else _to_text if kind in _TEXT_TYPES else None for kind in parameter_types
    )
    return converters if any(converters) else None


class _Statement:
    __slots__ = ("prepared", "converters")

    def __init__(self, prepared: asyncpg.prepared_stmt.PreparedStatement):
        self.prepared = prepared
        self.converters = _converters([t.name for t in prepared.get_parameters()])

    def arguments(self, args: Iterable[Any]) -> list[Any]:
        values = list(args)
        if self.converters is not None:
            for index, convert in enumerate(self.converters):
                if convert is not None and values[index] is not None:
                    values[index] = convert(values[index])
        return values


def _rowcount(status: str | None) -> int:
    """'UPDATE 3' → 3, 'INSERT 0 1' → 1; -1 when the status carries no count."""
    if not status:
        return -1
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1


# --- the connection repositories see ---------------------------------------------------------------


class Cursor:
    """What ``conn.execute`` gives: the rows (fetched at once) and the row count."""

    __slots__ = ("_rows", "_next", "rowcount")

    def __init__(self, rows: list[asyncpg.Record], rowcount: int):
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount

    async def fetchone(self) -> asyncpg.Record | None:
        if self._next >= len(self._rows):
            return None
        row = self._rows[self._next]
        self._next += 1
        return row

    async def fetchall(self) -> list[asyncpg.Record]:
        rows = self._rows[self._next:]
        self._next = len(self._rows)
        return rows

    async def fetchmany(self, size: int = 1) -> list[asyncpg.Record]:
        rows = self._rows[self._next:self._next + size]
        self._next += len(rows)
        return rows

    async def close(self) -> None:
        return None

    def __aiter__(self):
        return self

    async def __anext__(self) -> asyncpg.Record:
        row = await self.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row


class _Execution:
    """Both ``await conn.execute(...)`` and ``async with conn.execute(...) as cursor``."""

    __slots__ = ("_run",)

    def __init__(self, run):
        self._run = run

    def __await__(self):
        return self._run().__await__()

    async def __aenter__(self) -> Cursor:
        return await self._run()

    async def __aexit__(self, *exc: object) -> None:
        return None


class PgConnection:
    """One asyncpg connection with the aiosqlite-like interface repositories use."""

    def __init__(self, raw: asyncpg.Connection):
        self.raw = raw
        self._statements: OrderedDict[str, _Statement] = OrderedDict()

    async def _statement(self, sql: str) -> _Statement:
        statement = self._statements.get(sql)
        if statement is None:
            statement = _Statement(await self.raw.prepare(placeholders(sql)))
            self._statements[sql] = statement
            if len(self._statements) > _STATEMENTS_PER_CONNECTION:
                self._statements.popitem(last=False)
        else:
            self._statements.move_to_end(sql)
        return statement

    def execute(self, sql: str, args: Sequence[Any] | None = None) -> _Execution:
        async def run() -> Cursor:
            statement = await self._statement(sql)
            rows = await statement.prepared.fetch(*statement.arguments(args or ()))
            return Cursor(rows, _rowcount(statement.prepared.get_statusmsg()))

        return _Execution(run)

    async def executemany(self, sql: str, seq_of_args: Iterable[Sequence[Any]]) -> Cursor:
        statement = await self._statement(sql)
        batch = [statement.arguments(args) for args in seq_of_args]
        if batch:
            await statement.prepared.executemany(batch)
        return Cursor([], len(batch))

    async def executescript(self, script: str) -> None:
        await self.raw.execute(script)

    async def execute_fetchall(self, sql: str, args: Sequence[Any] | None = None) -> list[asyncpg.Record]:
        async with self.execute(sql, args) as cursor:
            return await cursor.fetchall()


class _OneStatement(PgConnection):
    """The connection of ``read_one``: the first statement runs, a second raises (it would not see the
    first one's snapshot). Shares the pooled connection's prepared statements."""

    def __init__(self, conn: PgConnection):
        super().__init__(conn.raw)
        self._statements = conn._statements  # the same cache: a statement prepared once per connection
        self._used = False

    async def _statement(self, sql: str) -> _Statement:
        if self._used:
            raise RuntimeError("read_one() runs one statement: use read() for a consistent read of several")
        self._used = True
        return await super()._statement(sql)


class _PoolConnection:
    """``db.conn`` outside a transaction: each statement on a free connection, committed at once
    (as an aiosqlite connection in autocommit mode). For tests and tools reading the database."""

    def __init__(self, database: PostgresDatabase):
        self._database = database

    def execute(self, sql: str, args: Sequence[Any] | None = None) -> _Execution:
        async def run() -> Cursor:
            async with self._database._connection() as conn:
                return await conn.execute(sql, args)

        return _Execution(run)

    async def executemany(self, sql: str, seq_of_args: Iterable[Sequence[Any]]) -> Cursor:
        async with self._database._connection() as conn:
            return await conn.executemany(sql, seq_of_args)

    async def commit(self) -> None:
        """Nothing to do: every statement here commits by itself (as aiosqlite's autocommit mode)."""


# --- the database ----------------------------------------------------------------------------------


class PostgresDatabase:
    """A small pool of connections to one PostgreSQL database; the surface of storage.db.Database."""

    backend = "postgresql"

    def __init__(self, url: str, now: Callable[[], datetime] | None = None, *, pool_size: int = 4):
        self.url = url
        self.now = now  # the clock stamped on rows written through this database (None: the wall clock)
        self.pool_size = pool_size
        self._idle: list[PgConnection] = []
        self._open_count = 0
        self._available = asyncio.Condition()
        self._write_lock = asyncio.Lock()  # one writer per process waits on the server's lock, not N
        # Seconds spent in durable COMMITs (the round trip and the server's WAL flush) and their number,
        # since the database was opened: what waiting for the disk costs (the benchmark reads them).
        self.commit_seconds = 0.0
        self.commits = 0
        self._opened = False
        self._conn = _PoolConnection(self)

    def __repr__(self) -> str:
        return f"PostgresDatabase({redact(self.url)!r})"

    async def open(self) -> PostgresDatabase:
        self._opened = True
        async with self._connection() as conn:  # fails here, loudly, when the server is unreachable
            await self._migrate(conn)
        return self

    async def close(self) -> None:
        self._opened = False
        idle, self._idle = self._idle, []
        for conn in idle:
            self._open_count -= 1
            await conn.raw.close()

    @property
    def conn(self) -> _PoolConnection:
        if not self._opened:
            raise RuntimeError("database is not open")
        return self._conn

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[PgConnection]:
        if not self._opened:
            raise RuntimeError("database is not open")
        conn = await self._acquire()
        healthy = False
        try:
            yield conn
            healthy = not conn.raw.is_closed() and not conn.raw.is_in_transaction()
        finally:
            await self._release(conn, healthy)

    async def _acquire(self) -> PgConnection:
        async with self._available:
            while True:
                while self._idle:
                    conn = self._idle.pop()
                    if not conn.raw.is_closed():
                        return conn
                    self._open_count -= 1
                if self._open_count < self.pool_size:
                    self._open_count += 1
                    break
                await self._available.wait()
        try:
            return PgConnection(await asyncpg.connect(self.url, statement_cache_size=0))
        except BaseException:
            async with self._available:
                self._open_count -= 1
                self._available.notify()
            raise

    async def _release(self, conn: PgConnection, healthy: bool) -> None:
        if not healthy or not self._opened:
            conn.raw.terminate()
            async with self._available:
                self._open_count -= 1
                self._available.notify()
            return
        async with self._available:
            self._idle.append(conn)
            self._available.notify()

    async def _migrate(self, conn: PgConnection) -> None:
        raw = conn.raw
        async with raw.transaction():
            await raw.execute(f"SELECT pg_advisory_xact_lock({MIGRATE_LOCK})")
            await raw.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
        done = set(await raw.fetchval("SELECT array_agg(version) FROM schema_migrations") or ())
        pending = [m for m in translated_migrations() if m[0] not in done]
        for version, name, script in pending:
            # One migration, one transaction (PostgreSQL's DDL is transactional); the lock makes a
            # second process starting at the same moment wait, then find the migration applied.
            async with raw.transaction():
                await raw.execute(f"SELECT pg_advisory_xact_lock({MIGRATE_LOCK})")
                done = await raw.fetchval("SELECT 1 FROM schema_migrations WHERE version = $1", version)
                if done:
                    continue
                await raw.execute(script)
                await raw.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)

    async def schema_version(self) -> int:
        async with self._connection() as conn:
            value = await conn.raw.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(value)

    @asynccontextmanager
    async def transaction(self, wait_for_disk: bool = True) -> AsyncIterator[PgConnection]:
        """A write transaction: all of it or none of it, one writer at a time across processes.
        ``wait_for_disk=False``: the COMMIT does not wait for the WAL flush (``synchronous_commit = off``
        for this transaction alone), as storage.db's: for bookkeeping whose loss only repeats a message."""
        async with self._write_lock, self._connection() as conn:
            token = current_clock.set(self.now)
            begin = "BEGIN ISOLATION LEVEL READ COMMITTED; "
            if not wait_for_disk:
                begin += "SET LOCAL synchronous_commit TO OFF; "
            try:
                await conn.raw.execute(f"{begin}SELECT pg_advisory_xact_lock({WRITE_LOCK})")
                try:
                    yield conn
                except BaseException:
                    # A broken or cancelled connection cannot roll back: it is dropped (_release).
                    with contextlib.suppress(Exception):
                        await conn.raw.execute("ROLLBACK")
                    raise
                started = time.perf_counter()
                await conn.raw.execute("COMMIT")
                if wait_for_disk:  # the server's WAL flush, and the round trip
                    self.commit_seconds += time.perf_counter() - started
                    self.commits += 1
            finally:
                current_clock.reset(token)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[PgConnection]:
        """Reads from one consistent snapshot, never a half-done transaction."""
        async with self._connection() as conn:
            await conn.raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield conn
            finally:
                with contextlib.suppress(Exception):
                    await conn.raw.execute("COMMIT")

    def snapshot(self):
        """Bulk reads (storage.db's name for reads off the writers' path): here every read is that."""
        return self.read()

    @asynccontextmanager
    async def read_one(self) -> AsyncIterator[PgConnection]:
        """A read of exactly one statement: no BEGIN and COMMIT around it (two round trips of three): a
        single statement already sees one snapshot of committed data (autocommit). A second statement
        would see another snapshot, so it is refused: use ``read()`` for more than one."""
        async with self._connection() as conn:
            yield _OneStatement(conn)


def redact(url: str) -> str:
    """The URL without its password, for logs and messages."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}{':***' if ':' in credentials else ''}@{host}"
