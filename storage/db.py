"""One SQLite file: pragmas, migrations, serialised transactions — and where each statement runs.

Where the work happens (measured in docs/benchmark.md):

- **Short statements run on the event loop**, synchronously, through the stdlib ``sqlite3`` connection
  behind the same async interface the repositories use (``Connection``). A point read or an indexed
  write on a local WAL file takes a few microseconds; handing each one to a worker thread and back (what
  aiosqlite does) costs 50–300 µs a statement, which is what made an approval of ~36 statements cost
  many times its Bot API floor.
- **The COMMIT runs in a worker thread**: under ``synchronous=FULL`` it is the fsync, the one step that
  waits on the disk. So a write transaction costs one thread hop, whatever the number of statements.
- **BEGIN IMMEDIATE never waits on the loop**: it is tried with a zero busy timeout; only when another
  connection (a second bot process, a tool) holds the write lock is it retried in the worker thread,
  which waits up to ``BUSY_TIMEOUT_MS`` as before.
- **Checkpoints run off the COMMIT's path**: SQLite's automatic checkpoint (every 1000 WAL pages) runs
  inside the COMMIT that crosses the mark — copying the WAL into the database file and fsyncing it, many
  milliseconds that the update which happened to commit then (an approval) waited for. The writing
  connection's own checkpoint is set far higher (``SAFETY_CHECKPOINT_PAGES``, a bound only), and every
  ``CHECKPOINT_EVERY`` write transactions a PASSIVE checkpoint runs on a connection of its own in a
  thread of its own, while the writers go on (PASSIVE never blocks a writer or a reader). Durability is
  the WAL's fsync at each COMMIT, as before; a checkpoint only moves committed pages into the file.
- **Bulk reads run off the loop** (``snapshot()``): a second connection, through aiosqlite (its own
  thread), in one read transaction — a consistent snapshot of committed data, with every statement
  executed and fetched in that thread in one hop (``execute_fetchall``). It takes no lock of ours, so
  grading a branch (thousands of ledger rows) neither blocks the loop on SQLite nor waits for, or
  delays, the writers.
"""

from __future__ import annotations

import asyncio
import logging
import contextlib
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from storage._util import current_clock

log = logging.getLogger(__name__)
BUSY_TIMEOUT_MS = 5000
CHECKPOINT_EVERY = 64  # write transactions between two background checkpoints (an approval adds ~8 WAL pages)
SAFETY_CHECKPOINT_PAGES = 20000  # the writer checkpoints inline only past this (~80 MB of WAL): a bound, not the rule
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every file in storage/migrations, in order."""
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


# --- the connection repositories see -----------------------------------------------------------------


class Cursor:
    """A statement's result with aiosqlite's cursor interface: over a live ``sqlite3.Cursor`` (on the
    loop) or over rows already fetched off the loop."""

    __slots__ = ("_cursor", "_rows", "_next")

    def __init__(self, cursor: sqlite3.Cursor | None, rows: list[sqlite3.Row] | None = None):
        self._cursor = cursor
        self._rows = rows
        self._next = 0

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount if self._cursor is not None else -1

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid if self._cursor is not None else None

    async def fetchone(self) -> sqlite3.Row | None:
        if self._cursor is not None:
            return self._cursor.fetchone()
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    async def fetchall(self) -> list[sqlite3.Row]:
        if self._cursor is not None:
            return self._cursor.fetchall()
        rows, self._next = self._rows[self._next:], len(self._rows)
        return rows

    async def fetchmany(self, size: int = 1) -> list[sqlite3.Row]:
        if self._cursor is not None:
            return self._cursor.fetchmany(size)
        rows = self._rows[self._next:self._next + size]
        self._next += len(rows)
        return rows

    async def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()

    def __aiter__(self) -> Cursor:
        return self

    async def __anext__(self) -> sqlite3.Row:
        row = await self.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row


class _Execution:
    """Both ``await conn.execute(...)`` and ``async with conn.execute(...) as cursor`` (as aiosqlite):
    the statement runs when awaited or entered."""

    __slots__ = ("_run", "_cursor")

    def __init__(self, run: Callable[[], Any]):
        self._run = run
        self._cursor: Cursor | None = None

    def __await__(self):
        return self._run().__await__()

    async def __aenter__(self) -> Cursor:
        self._cursor = await self._run()
        return self._cursor

    async def __aexit__(self, *exc: object) -> None:
        if self._cursor is not None:
            await self._cursor.close()


class Connection:
    """The stdlib ``sqlite3`` connection behind aiosqlite's interface; every statement runs at once, on
    the calling thread (the event loop). ``Database`` decides what runs elsewhere (the COMMIT)."""

    def __init__(self, raw: sqlite3.Connection):
        self.raw = raw

    def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> _Execution:
        async def run() -> Cursor:
            return Cursor(self.raw.execute(sql, parameters or ()))

        return _Execution(run)

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> Cursor:
        return Cursor(self.raw.executemany(sql, parameters))

    async def executescript(self, script: str) -> Cursor:
        return Cursor(self.raw.executescript(script))

    async def execute_fetchall(self, sql: str, parameters: Sequence[Any] | None = None) -> list[sqlite3.Row]:
        return self.raw.execute(sql, parameters or ()).fetchall()

    async def commit(self) -> None:
        """As aiosqlite's: nothing to do in autocommit mode (tests write through ``db.conn`` directly)."""
        self.raw.commit()

    @property
    def total_changes(self) -> int:
        return self.raw.total_changes

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    async def close(self) -> None:
        self.raw.close()


class _SnapshotConnection(Connection):
    """The same interface over an aiosqlite connection: each statement is executed and fetched in
    aiosqlite's thread in one hop. Read-only by use (``Database.snapshot``)."""

    def __init__(self, aio: aiosqlite.Connection):
        self.aio = aio

    def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> _Execution:
        async def run() -> Cursor:
            return Cursor(None, list(await self.aio.execute_fetchall(sql, parameters or ())))

        return _Execution(run)

    async def execute_fetchall(self, sql: str, parameters: Sequence[Any] | None = None) -> list[sqlite3.Row]:
        return list(await self.aio.execute_fetchall(sql, parameters or ()))

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> Cursor:
        raise sqlite3.OperationalError("a snapshot is read-only")

    async def executescript(self, script: str) -> Cursor:
        raise sqlite3.OperationalError("a snapshot is read-only")

    async def commit(self) -> None:
        return None

    async def close(self) -> None:
        await self.aio.close()


def _settle(future: asyncio.Future, error: BaseException | None) -> None:
    """On the loop: the worker's statement is done (``error``: how it failed)."""
    if future.cancelled():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _log_checkpoint(job: Future) -> None:
    """A background checkpoint that failed is said in the log (the WAL would otherwise grow unnoticed up to
    SAFETY_CHECKPOINT_PAGES, where the writer checkpoints inline); one that a reader kept from finishing
    is normal and retried CHECKPOINT_EVERY writes later."""
    if job.cancelled():
        return
    error = job.exception()
    if error is not None:
        log.warning("background WAL checkpoint failed: %r", error)


def _busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


# --- the database ------------------------------------------------------------------------------------


class Database:
    """A single writing connection; an asyncio lock serialises access to it.

    One connection shared by concurrent handlers would otherwise interleave statements of two
    transactions. Writers take ``BEGIN IMMEDIATE`` so a transaction that reads first cannot be
    upgraded into a "database is locked" error by another process (a backup, a second bot).
    """

    backend = "sqlite"

    def __init__(self, path: str | Path, now: Callable[[], datetime] | None = None):
        self.path = str(path)
        self.now = now  # the clock stamped on rows written through this database (None: the wall clock)
        self._conn: Connection | None = None
        self._lock = asyncio.Lock()
        self._worker: ThreadPoolExecutor | None = None  # the COMMITs (and a BEGIN that must wait)
        self._snapshot: aiosqlite.Connection | None = None  # opened on first use
        self._snapshot_lock = asyncio.Lock()
        self._checkpointer: ThreadPoolExecutor | None = None  # the background checkpoints (own connection)
        self._checkpoint_conn: sqlite3.Connection | None = None  # used in that thread only
        self._checkpoint_job: Future | None = None
        self._writes = 0  # write transactions since the last background checkpoint was started
        # Seconds spent in durable COMMITs (the WAL write and its fsync, timed in the worker thread) and
        # their number, since the database was opened: what waiting for the disk costs (the benchmark).
        self.commit_seconds = 0.0
        self.commits = 0

    async def open(self) -> Database:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread=False: the COMMIT runs in the worker thread; our lock makes sure no two
        # threads ever use the connection at the same time.
        raw = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        raw.row_factory = sqlite3.Row
        for pragma in ("journal_mode = WAL", "synchronous = FULL", "foreign_keys = ON", f"busy_timeout = {BUSY_TIMEOUT_MS}",
                       f"wal_autocheckpoint = {SAFETY_CHECKPOINT_PAGES}"):
            raw.execute(f"PRAGMA {pragma}")
        self._conn = Connection(raw)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-commit")
        if self.path != ":memory:":
            self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-checkpoint")
        await self._migrate()
        return self

    async def close(self) -> None:
        if self._checkpointer is not None:
            checkpointer, self._checkpointer = self._checkpointer, None
            job, self._checkpoint_job = self._checkpoint_job, None
            if job is not None and not job.done():  # the last checkpoint finishes first
                with contextlib.suppress(Exception):
                    await asyncio.wrap_future(job)
            checkpointer.shutdown(wait=True)  # nothing left to run: returns at once
            if self._checkpoint_conn is not None:
                self._checkpoint_conn.close()
                self._checkpoint_conn = None
        async with self._snapshot_lock:
            if self._snapshot is not None:
                await self._snapshot.close()
                self._snapshot = None
        if self._conn is not None:
            async with self._lock:
                self._conn.raw.close()
                self._conn = None
        if self._worker is not None:
            self._worker.shutdown(wait=True)
            self._worker = None

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("database is not open")
        return self._conn

    async def _migrate(self) -> None:
        """Apply every migration file not applied yet — by the set of applied versions (as on PostgreSQL),
        not by "numbers above user_version", so a file numbered below one already applied (two lines of
        work merged out of order) is not skipped for good. ``user_version`` stays the highest applied."""
        async with self._lock:
            current = await self.schema_version()
            await self.conn.executescript(
                "BEGIN IMMEDIATE;\n"
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"
                "COMMIT;"
            )
            async with self.conn.execute("SELECT version FROM schema_migrations") as cursor:
                done = {int(row[0]) for row in await cursor.fetchall()}
            if not done and current:
                # Migrated before this table existed: the number-only runner applied every file up to
                # user_version. (Names match _MIGRATION_NAME, digits, letters and '_' only: safe in SQL.)
                done = {version for version, _, _ in migrations() if version <= current}
                values = ", ".join(f"({version}, '{name}')" for version, name, _ in migrations() if version in done)
                await self.conn.executescript(
                    f"BEGIN IMMEDIATE;\nINSERT INTO schema_migrations (version, name) VALUES {values};\nCOMMIT;"
                )
            for version, name, sql in migrations():
                if version in done:
                    continue
                current = max(current, version)
                # One script, one transaction: a migration is applied whole or not at all, with its record.
                await self.conn.executescript(
                    f"BEGIN IMMEDIATE;\n{sql}\n"
                    f"INSERT INTO schema_migrations (version, name) VALUES ({version}, '{name}');\n"
                    f"PRAGMA user_version = {current};\nCOMMIT;"
                )

    async def schema_version(self) -> int:
        async with self.conn.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def pragma(self, name: str) -> str:
        async with self.conn.execute(f"PRAGMA {name}") as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else ""

    async def _off_loop(self, statement: str) -> None:
        """Run one statement in the worker thread. If this task is cancelled meanwhile, the statement
        still finishes there: wait for it (at most an fsync) so the connection is free when the lock
        is released. The worker settles the loop's future itself (one call_soon_threadsafe), not through
        a concurrent Future chained to an asyncio one (wrap_future: ~15 µs more of the loop's CPU a hop)."""
        assert self._worker is not None
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        execute = self.conn.raw.execute

        def run() -> None:
            started = time.perf_counter()
            try:
                execute(statement)
            except BaseException as exc:
                loop.call_soon_threadsafe(_settle, done, exc)
                raise
            if statement == "COMMIT":
                self.commit_seconds += time.perf_counter() - started
                self.commits += 1
            loop.call_soon_threadsafe(_settle, done, None)

        job = self._worker.submit(run)
        try:
            await done
        except asyncio.CancelledError:
            job.exception()  # blocks until the statement is done; its error, if any, is the caller's to see next
            raise

    def _checkpoint(self) -> tuple[int, int, int]:
        """In the checkpoint thread: move committed WAL pages into the database file (PASSIVE: what no
        reader still needs, without waiting for anyone). Returns (busy, WAL pages, pages moved)."""
        if self._checkpoint_conn is None:
            self._checkpoint_conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._checkpoint_conn.execute(f"PRAGMA wal_autocheckpoint = {SAFETY_CHECKPOINT_PAGES}")  # it writes nothing anyway
        busy, pages, moved = self._checkpoint_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return busy, pages, moved

    def _wrote(self) -> None:
        """After a write transaction's COMMIT: every CHECKPOINT_EVERY of them, start a background checkpoint
        unless the previous one is still running."""
        self._writes += 1
        if self._writes < CHECKPOINT_EVERY or self._checkpointer is None:
            return
        if self._checkpoint_job is not None and not self._checkpoint_job.done():
            return
        self._writes = 0
        self._checkpoint_job = self._checkpointer.submit(self._checkpoint)
        self._checkpoint_job.add_done_callback(_log_checkpoint)

    async def _begin(self) -> None:
        raw = self.conn.raw
        raw.execute("PRAGMA busy_timeout = 0")
        try:
            raw.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
        finally:
            raw.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await self._off_loop("BEGIN IMMEDIATE")  # another connection writes: wait for it off the loop

    @asynccontextmanager
    async def transaction(self, wait_for_disk: bool = True) -> AsyncIterator[Connection]:
        """A write transaction: all of it or none of it. Costs one thread hop (the COMMIT).

        ``wait_for_disk=False``, for bookkeeping whose loss costs no more than repeating a message (a
        decision marked as shown): committed without the fsync (``synchronous=NORMAL`` for this
        transaction alone, the COMMIT on the loop, no hop). It survives the process dying (the WAL frames
        are in the OS), not the machine losing power; the next ordinary COMMIT's fsync covers it too."""
        async with self._lock:
            token = current_clock.set(self.now)
            raw = self.conn.raw
            try:
                if not wait_for_disk:  # SQLite refuses to change it inside a transaction
                    raw.execute("PRAGMA synchronous = NORMAL")
                await self._begin()
                changes = raw.total_changes
                yield self.conn
                if raw.total_changes == changes:
                    raw.execute("COMMIT")  # wrote nothing: nothing to fsync, no hop
                elif not wait_for_disk:
                    raw.execute("COMMIT")  # no fsync: on the loop
                    self._wrote()
                else:
                    await self._off_loop("COMMIT")
                    self._wrote()
            except BaseException:
                # The body failed, or the BEGIN/COMMIT did (or was cancelled): leave no transaction
                # open. WAL: a rollback has nothing to undo on disk, no fsync.
                if raw.in_transaction:
                    raw.execute("ROLLBACK")
                raise
            finally:
                if not wait_for_disk:
                    raw.execute("PRAGMA synchronous = FULL")
                current_clock.reset(token)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        """Reads that must not see another task's half-done transaction (on the loop: short reads)."""
        async with self._lock:
            yield self.conn

    def read_one(self):
        """A read of exactly one statement (PostgreSQL runs it without BEGIN/COMMIT); here the same as ``read``."""
        return self.read()

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Connection]:
        """Bulk reads, off the event loop: one consistent snapshot of committed data (a read transaction
        on a second connection, in aiosqlite's thread; each statement one hop). Takes no lock of the
        writers'; never sees an uncommitted write, this process's included."""
        if self.path == ":memory:":  # a second connection would be another, empty database
            async with self.read() as conn:
                yield conn
            return
        async with self._snapshot_lock:
            if self._snapshot is None:
                aio = await aiosqlite.connect(self.path, isolation_level=None)
                aio.row_factory = sqlite3.Row
                await aio.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                self._snapshot = aio
            aio = self._snapshot
            await aio.execute("BEGIN")  # deferred: the first SELECT fixes the snapshot
            try:
                yield _SnapshotConnection(aio)
            finally:
                await aio.execute("ROLLBACK")  # read-only: ending it is all there is to do
