"""The append-only ledger: every point change is a row; corrections are reversing rows."""

from __future__ import annotations

from storage._util import row_dict, utcnow
from storage.db import Connection
from bot.domain.records import LedgerRow, NewLedgerRow


async def append(conn: Connection, row: NewLedgerRow) -> LedgerRow | None:
    """Append once per (branch, source, reference, member); None when that key is already there."""
    async with conn.execute(
        "INSERT INTO ledger (branch_id, member_id, item_code, event_code, value, occurred_on, source, reference, actor_id,"
        " reason, reverses_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING RETURNING *",
        (row.branch_id, row.member_id, row.item_code, row.event_code, str(row.value), row.occurred_on.isoformat(),
         row.source.value, row.reference, row.actor_id, row.reason, row.reverses_id, utcnow()),
    ) as cursor:
        created = await cursor.fetchone()
    return LedgerRow(**row_dict(created)) if created else None


async def of_member(conn: Connection, member_id: int, year: int | None = None) -> list[LedgerRow]:
    if year is None:
        sql, args = "SELECT * FROM ledger WHERE member_id = ? ORDER BY id", (member_id,)
    else:
        sql, args = (
            "SELECT * FROM ledger WHERE member_id = ? AND occurred_on >= ? AND occurred_on < ? ORDER BY id",
            (member_id, f"{year}-01-01", f"{year + 1}-01-01"),
        )
    async with conn.execute(sql, args) as cursor:
        return [LedgerRow(**row_dict(r)) for r in await cursor.fetchall()]


async def recent_of_member(conn: Connection, member_id: int, limit: int) -> list[LedgerRow]:
    async with conn.execute("SELECT * FROM ledger WHERE member_id = ? ORDER BY id DESC LIMIT ?", (member_id, limit)) as cursor:
        return [LedgerRow(**row_dict(r)) for r in await cursor.fetchall()]


async def by_id(conn: Connection, row_id: int) -> LedgerRow | None:
    async with conn.execute("SELECT * FROM ledger WHERE id = ?", (row_id,)) as cursor:
        row = await cursor.fetchone()
    return LedgerRow(**row_dict(row)) if row else None


async def of_branch(conn: Connection, branch_id: int) -> list[LedgerRow]:
    async with conn.execute("SELECT * FROM ledger WHERE branch_id = ? ORDER BY id", (branch_id,)) as cursor:
        return [LedgerRow(**row_dict(r)) for r in await cursor.fetchall()]
