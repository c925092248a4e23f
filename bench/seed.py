"""Bulk test data for the benchmark, straight into SQLite or PostgreSQL.

This is the one place outside storage/ with SQL, on purpose: it seeds *test data* in bulk so that a
county of about a million ledger rows is built in seconds (SQLite: executemany over generators, one
transaction per table and batch; PostgreSQL: asyncpg's binary COPY, ``copy_records_to_table``, per
batch). Row by row through the services it would take hours. The app's own code never runs these
statements; the schema comes from the app's migrations (``Database.open``), so the data is exactly what
the app would read. Both backends get the same rows, from the same generators.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg

CREATED = datetime(2026, 1, 1, tzinfo=UTC).isoformat()
JOINED = "2026-01-01"
YEAR = 2026

# (item, event, value, source) — 浠水 items that exist in the preset; about 2.5 rows per member-month.
_MONTH_ROWS = (
    ("post_deed", None, "10", "declaration"),
    ("study", "absent", "-5", "recorder"),
    ("org_life", "late", "-2", "recorder"),
)


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")  # test data: durability of the seeding does not matter
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def add_branches(conn: sqlite3.Connection, count: int, *, chat_base: int = -1002000000000, preset: str = "xishui",
                 creator: int = 1) -> list[tuple[int, int]]:
    """``count`` branches; returns (branch id, chat id)."""
    conn.execute("BEGIN")
    conn.executemany(
        f"INSERT INTO branches ({', '.join(BRANCH_COLUMNS)}) VALUES ({', '.join('?' * len(BRANCH_COLUMNS))})",
        _branch_rows(count, chat_base, preset, creator),
    )
    conn.execute("COMMIT")
    return [(int(r[0]), int(r[1])) for r in conn.execute(
        "SELECT id, chat_id FROM branches WHERE chat_id <= ? AND chat_id > ? ORDER BY id", (chat_base, chat_base - count))]


def add_members(conn: sqlite3.Connection, branch_ids: list[int], per_branch: int, *, user_base: int) -> dict[int, list[tuple[int, int]]]:
    """``per_branch`` approved members in each branch (user ids from ``user_base`` on, one per member);
    returns branch id -> [(member id, user id)]."""
    conn.execute("BEGIN")
    conn.executemany(
        f"INSERT INTO members ({', '.join(MEMBER_COLUMNS)}) VALUES ({', '.join('?' * len(MEMBER_COLUMNS))})",
        _member_rows(branch_ids, per_branch, user_base),
    )
    conn.execute("COMMIT")
    found: dict[int, list[tuple[int, int]]] = {}
    marks = ",".join("?" * len(branch_ids))
    for member_id, branch_id, user_id in conn.execute(
            f"SELECT id, branch_id, user_id FROM members WHERE branch_id IN ({marks}) AND user_id > ? ORDER BY id",
            (*branch_ids, user_base)):
        found.setdefault(branch_id, []).append((member_id, user_id))
    return found


def approved_members(conn: sqlite3.Connection, branch_id: int) -> list[int]:
    return [int(m) for m, in conn.execute(
        "SELECT id FROM members WHERE branch_id = ? AND status = 'approved' ORDER BY id", (branch_id,))]


def add_history(conn: sqlite3.Connection, members: dict[int, list[tuple[int, int]]], months: range,
                *, batch: int = 250_000) -> int:
    """A year of ledger rows: for each member and month 2 or 3 rows (about 2.5 per member-month).
    Committed every ``batch`` rows (a few transactions, not one per row). Returns the number of rows."""
    total = 0
    for chunk in _batches(_ledger_rows(members, months), batch):
        conn.execute("BEGIN")
        conn.executemany(
            f"INSERT INTO ledger ({', '.join(LEDGER_COLUMNS)}) VALUES ({', '.join('?' * len(LEDGER_COLUMNS))})", chunk)
        conn.execute("COMMIT")
        total += len(chunk)
    return total


def analyze(conn: sqlite3.Connection) -> None:
    conn.execute("ANALYZE")


# --- the rows (the same for both backends) ---------------------------------------------------------

BRANCH_COLUMNS = ("chat_id", "title", "preset", "timezone", "language", "created_by", "created_at")
MEMBER_COLUMNS = ("branch_id", "user_id", "username", "name", "status", "joined_on", "language", "created_at")
LEDGER_COLUMNS = ("branch_id", "member_id", "item_code", "event_code", "value", "occurred_on", "source", "reference",
                  "actor_id", "reason", "created_at")


def _branch_rows(count: int, chat_base: int, preset: str, creator: int) -> Iterator[tuple]:
    return ((chat_base - i, f"第{i + 1}党支部", preset, "Asia/Shanghai", "zh", creator, CREATED) for i in range(count))


def _member_rows(branch_ids: list[int], per_branch: int, user_base: int) -> Iterator[tuple]:
    user = user_base
    for branch_id in branch_ids:
        for _ in range(per_branch):
            user += 1
            yield (branch_id, user, f"m{user}", f"党员{user}", "approved", JOINED, "zh", CREATED)


def _ledger_rows(members: dict[int, list[tuple[int, int]]], months: range) -> Iterator[tuple]:
    for branch_id, people in members.items():
        for member_id, _ in people:
            for month in months:
                count = 2 + (member_id + month) % 2
                for k in range(count):
                    item, event, value, source = _MONTH_ROWS[k]
                    day = 3 + 7 * k
                    yield (branch_id, member_id, item, event, value, f"{YEAR}-{month:02d}-{day:02d}", source,
                           f"seed:{month}:{k}", None, "seed", CREATED)


def _batches(rows: Iterator[tuple], size: int) -> Iterator[list[tuple]]:
    while True:
        chunk = [row for _, row in zip(range(size), rows)]
        if not chunk:
            return
        yield chunk


# --- PostgreSQL (asyncpg) --------------------------------------------------------------------------


async def pg_add_branches(conn: "asyncpg.Connection", count: int, *, chat_base: int = -1002000000000,
                          preset: str = "xishui", creator: int = 1) -> list[tuple[int, int]]:
    """As add_branches, on PostgreSQL (COPY)."""
    await conn.copy_records_to_table("branches", records=list(_branch_rows(count, chat_base, preset, creator)),
                                     columns=BRANCH_COLUMNS)
    rows = await conn.fetch("SELECT id, chat_id FROM branches WHERE chat_id <= $1 AND chat_id > $2 ORDER BY id",
                            chat_base, chat_base - count)
    return [(int(r[0]), int(r[1])) for r in rows]


async def pg_add_members(conn: "asyncpg.Connection", branch_ids: list[int], per_branch: int, *,
                         user_base: int) -> dict[int, list[tuple[int, int]]]:
    """As add_members, on PostgreSQL (COPY)."""
    await conn.copy_records_to_table("members", records=list(_member_rows(branch_ids, per_branch, user_base)),
                                     columns=MEMBER_COLUMNS)
    found: dict[int, list[tuple[int, int]]] = {}
    for member_id, branch_id, user_id in await conn.fetch(
            "SELECT id, branch_id, user_id FROM members WHERE branch_id = ANY($1::bigint[]) AND user_id > $2 ORDER BY id",
            branch_ids, user_base):
        found.setdefault(int(branch_id), []).append((int(member_id), int(user_id)))
    return found


async def pg_approved_members(conn: "asyncpg.Connection", branch_id: int) -> list[int]:
    return [int(r[0]) for r in await conn.fetch(
        "SELECT id FROM members WHERE branch_id = $1 AND status = 'approved' ORDER BY id", branch_id)]


async def pg_add_history(conn: "asyncpg.Connection", members: dict[int, list[tuple[int, int]]], months: range,
                         *, batch: int = 250_000) -> int:
    """As add_history, on PostgreSQL: one COPY per ``batch`` rows. Returns the number of rows."""
    total = 0
    for chunk in _batches(_ledger_rows(members, months), batch):
        await conn.copy_records_to_table("ledger", records=chunk, columns=LEDGER_COLUMNS)
        total += len(chunk)
    return total


async def pg_analyze(conn: "asyncpg.Connection") -> None:
    await conn.execute("ANALYZE")


# --- where each part of the benchmark seeds its data -----------------------------------------------


class SqliteSeeder:
    """The seeding functions above on one SQLite file, behind the same awaitable methods as PostgresSeeder."""

    def __init__(self, path: Path):
        self.conn = connect(str(path))

    async def add_branches(self, count: int) -> list[tuple[int, int]]:
        return add_branches(self.conn, count)

    async def add_members(self, branch_ids: list[int], per_branch: int, *, user_base: int) -> dict[int, list[tuple[int, int]]]:
        return add_members(self.conn, branch_ids, per_branch, user_base=user_base)

    async def approved_members(self, branch_id: int) -> list[int]:
        return approved_members(self.conn, branch_id)

    async def add_history(self, members: dict[int, list[tuple[int, int]]], months: range) -> int:
        return add_history(self.conn, members, months)

    async def analyze(self) -> None:
        analyze(self.conn)

    async def close(self) -> None:
        self.conn.close()


class PostgresSeeder:
    def __init__(self, conn: "asyncpg.Connection"):
        self.conn = conn

    @classmethod
    async def connect(cls, url: str) -> PostgresSeeder:
        import asyncpg

        return cls(await asyncpg.connect(url))

    async def add_branches(self, count: int) -> list[tuple[int, int]]:
        return await pg_add_branches(self.conn, count)

    async def add_members(self, branch_ids: list[int], per_branch: int, *, user_base: int) -> dict[int, list[tuple[int, int]]]:
        return await pg_add_members(self.conn, branch_ids, per_branch, user_base=user_base)

    async def approved_members(self, branch_id: int) -> list[int]:
        return await pg_approved_members(self.conn, branch_id)

    async def add_history(self, members: dict[int, list[tuple[int, int]]], months: range) -> int:
        return await pg_add_history(self.conn, members, months)

    async def analyze(self) -> None:
        await pg_analyze(self.conn)

    async def close(self) -> None:
        await self.conn.close()


class SqlitePlaces:
    """Each part of the benchmark in its own SQLite file under ``workdir``."""

    backend = "sqlite"

    def __init__(self, workdir: Path):
        self.workdir = workdir

    async def describe(self) -> str:
        return f"SQLite {sqlite3.sqlite_version} (a file in WAL mode, synchronous=FULL)"

    async def new(self, name: str) -> Path:
        path = self.workdir / f"{name}.sqlite3"
        path.unlink(missing_ok=True)
        return path

    async def seeder(self, where: Path) -> SqliteSeeder:
        return SqliteSeeder(where)

    async def drop(self, where: Path) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{where}{suffix}").unlink(missing_ok=True)


class PostgresPlaces:
    """Each part of the benchmark in its own schema (``bench_<pid>_<part>``) of the database ``url`` names,
    reached through a URL whose ``search_path`` is that schema (asyncpg passes it as a server setting),
    dropped afterwards. The rest of the database is never touched; the role needs CREATE on it."""

    backend = "postgresql"

    def __init__(self, url: str):
        self.url = url

    async def _admin(self):
        import asyncpg

        return await asyncpg.connect(self.url)

    async def describe(self) -> str:
        from storage.postgres import redact

        conn = await self._admin()
        try:
            version = await conn.fetchval("SHOW server_version")
            settings = {name: await conn.fetchval(f"SHOW {name}") for name in
                        ("fsync", "synchronous_commit", "full_page_writes", "shared_buffers")}
        finally:
            await conn.close()
        shown = ", ".join(f"{k}={v}" for k, v in settings.items())
        return f"PostgreSQL {version.split()[0]} at {redact(self.url)} ({shown})"

    async def new(self, name: str) -> str:
        schema = f"bench_{os.getpid()}_{name}"
        conn = await self._admin()
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.execute(f'CREATE SCHEMA "{schema}"')
        finally:
            await conn.close()
        return f"{self.url}{'&' if '?' in self.url else '?'}search_path={schema}"

    async def seeder(self, where: str) -> PostgresSeeder:
        return await PostgresSeeder.connect(where)

    async def drop(self, where: str) -> None:
        schema = where.rsplit("search_path=", 1)[1].split("&", 1)[0]
        conn = await self._admin()
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


@contextmanager
def places_for(workdir: Path, backend: str = "sqlite", database_url: str | None = None) -> Iterator[SqlitePlaces | PostgresPlaces]:
    """Where the bench's databases go: files in ``workdir`` (SQLite), schemas of ``database_url``, or a
    throwaway durable PostgreSQL cluster (``backend="postgres"``) stopped on the way out."""
    if database_url:
        yield PostgresPlaces(database_url)
        return
    if backend != "postgres":
        yield SqlitePlaces(workdir)
        return
    from bench.pgcluster import postgres_server

    server = postgres_server(durable=True)
    try:
        yield PostgresPlaces(server.admin_url)
    finally:
        server.stop()
