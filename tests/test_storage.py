"""The database: pragmas, migrations, the append-only ledger, and idempotent keys."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from bot.domain.records import NewLedgerRow, Source
from storage import branches, ledger, members
from storage.backends import AnyDatabase as Database, open_database
from storage.db import migrations
from storage.errors import INTEGRITY_ERRORS


@pytest.fixture
async def db(database_url):
    database = await open_database(database_url)
    yield database
    await database.close()


async def _member(db: Database) -> tuple[int, int]:
    async with db.transaction() as conn:
        branch = await branches.create(conn, chat_id=-1, title="t", preset="xishui", timezone="Asia/Shanghai", language="zh", created_by=1)
        assert branch is not None
        member = await members.add_approved(conn, branch_id=branch.id, name="张三", joined_on="2026-01-01", user_id=7)
    return branch.id, member.id


@pytest.mark.sqlite_only
async def test_pragmas_and_schema_version(db: Database) -> None:
    assert (await db.pragma("journal_mode")).lower() == "wal"
    assert await db.pragma("foreign_keys") == "1"
    assert await db.pragma("synchronous") == "2"  # FULL
    assert int(await db.pragma("busy_timeout")) >= 1000
    assert await db.schema_version() == migrations()[-1][0]


async def test_migrations_are_applied_once(database_url) -> None:
    first = await open_database(database_url)
    await first.close()
    again = await open_database(database_url)  # re-opening must not re-run CREATE TABLE
    assert await again.schema_version() == migrations()[-1][0]
    await again.close()


@pytest.mark.sqlite_only
async def test_a_migration_numbered_below_one_applied_is_still_applied(tmp_path, monkeypatch) -> None:
    """Two lines of work merged out of order: a file numbered below the database's version arrives later.
    The runner applies what it has not applied (the set, as on PostgreSQL), not only numbers above
    user_version; and a database migrated before the record existed is taken as having every file up to
    its user_version (nothing re-run)."""
    import sqlite3

    import storage.db

    path = tmp_path / "late.sqlite3"
    first = await open_database(path)
    await first.close()
    newest = migrations()[-1][0]
    with sqlite3.connect(path) as raw:  # as the number-only runner left a database: no record table
        raw.execute("DROP TABLE schema_migrations")
    again = await open_database(path)  # re-running any file would fail on its CREATE TABLE
    await again.close()
    with sqlite3.connect(path) as raw:
        assert {r[0] for r in raw.execute("SELECT version FROM schema_migrations")} == {v for v, _, _ in migrations()}

    late = (10, "0010_late_arrival.sql", "CREATE TABLE late_arrival (x INTEGER);")
    monkeypatch.setattr(storage.db, "migrations", lambda: sorted([*migrations(), late]))
    database = await open_database(path)
    assert await database.schema_version() == newest  # still the highest applied
    await database.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT name FROM sqlite_master WHERE name = 'late_arrival'").fetchone() is not None
        assert raw.execute("SELECT name FROM schema_migrations WHERE version = 10").fetchone() == ("0010_late_arrival.sql",)


async def test_ledger_is_append_only_and_keys_are_unique(db: Database) -> None:
    branch_id, member_id = await _member(db)
    row = NewLedgerRow(branch_id=branch_id, member_id=member_id, item_code="study", event_code="absent", value=Decimal(-5),
                       occurred_on=date(2026, 3, 5), source=Source.RECORDER, reference="msg:1")
    async with db.transaction() as conn:
        first = await ledger.append(conn, row)
        replay = await ledger.append(conn, row)
    assert first is not None and first.value == Decimal(-5)
    assert replay is None  # the same (source, reference, member) is written once
    with pytest.raises(INTEGRITY_ERRORS):
        async with db.transaction() as conn:
            await conn.execute("UPDATE ledger SET value = '5'")
    with pytest.raises(INTEGRITY_ERRORS):
        async with db.transaction() as conn:
            await conn.execute("DELETE FROM ledger")
    async with db.read() as conn:
        assert [r.value for r in await ledger.of_member(conn, member_id)] == [Decimal(-5)]


async def test_a_failed_transaction_leaves_nothing(db: Database) -> None:
    branch_id, member_id = await _member(db)
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await ledger.append(conn, NewLedgerRow(branch_id=branch_id, member_id=member_id, item_code="x", value=Decimal(1),
                                                   occurred_on=date(2026, 3, 5), source=Source.RECORDER, reference="r"))
            raise RuntimeError("crash in the middle")
    async with db.read() as conn:
        assert await ledger.of_member(conn, member_id) == []


async def test_decimal_values_round_trip_exactly(db: Database) -> None:
    branch_id, member_id = await _member(db)
    async with db.transaction() as conn:
        await ledger.append(conn, NewLedgerRow(branch_id=branch_id, member_id=member_id, item_code="x", value=Decimal("0.1"),
                                               occurred_on=date(2026, 3, 5), source=Source.RECORDER, reference="a"))
        await ledger.append(conn, NewLedgerRow(branch_id=branch_id, member_id=member_id, item_code="x", value=Decimal("0.2"),
                                               occurred_on=date(2026, 3, 5), source=Source.RECORDER, reference="b"))
    async with db.read() as conn:
        rows = await ledger.of_member(conn, member_id)
    assert sum(r.value for r in rows) == Decimal("0.3")
