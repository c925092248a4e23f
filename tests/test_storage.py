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
