"""Declarations (申报) and their state machine: pending → approved | rejected | withdrawn."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from storage._util import row_dict, utcnow
from storage.db import Connection
from bot.domain.records import Declaration


def _declaration(row) -> Declaration:
    data = row_dict(row)
    data.pop("client_key", None)
    return Declaration(**data)


async def create(conn: Connection, *, branch_id: int, member_id: int, item_code: str, occurred_on: date, place: str,
                 description: str, photo_file_id: str | None, value: Decimal, client_key: str) -> tuple[Declaration, bool]:
    """Insert once per (member, client_key); returns (declaration, created_now)."""
    async with conn.execute(
        "INSERT INTO declarations (branch_id, member_id, item_code, occurred_on, place, description, photo_file_id, value,"
        " client_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (member_id, client_key) DO NOTHING RETURNING *",
        (branch_id, member_id, item_code, occurred_on.isoformat(), place, description, photo_file_id, str(value), client_key, utcnow()),
    ) as cursor:
        row = await cursor.fetchone()
    if row:
        return _declaration(row), True
    async with conn.execute("SELECT * FROM declarations WHERE member_id = ? AND client_key = ?", (member_id, client_key)) as cursor:
        row = await cursor.fetchone()
    return _declaration(row), False


async def by_id(conn: Connection, declaration_id: int) -> Declaration | None:
    async with conn.execute("SELECT * FROM declarations WHERE id = ?", (declaration_id,)) as cursor:
        row = await cursor.fetchone()
    return _declaration(row) if row else None


async def decide(conn: Connection, declaration_id: int, *, status: str, value: Decimal | None, decided_by: int, reason: str | None) -> bool:
    """pending → status, exactly once: the second of two taps changes nothing."""
    cursor = await conn.execute(
        "UPDATE declarations SET status = ?, decided_value = ?, decided_by = ?, decided_at = ?, decision_reason = ?"
        " WHERE id = ? AND status = 'pending'",
        (status, None if value is None else str(value), decided_by, utcnow(), reason, declaration_id),
    )
    return cursor.rowcount == 1


async def pending(conn: Connection, branch_id: int, limit: int = 50) -> list[Declaration]:
    async with conn.execute(
        "SELECT * FROM declarations WHERE branch_id = ? AND status = 'pending' ORDER BY id LIMIT ?", (branch_id, limit)
    ) as cursor:
        return [_declaration(r) for r in await cursor.fetchall()]


async def count_pending(conn: Connection, branch_id: int) -> int:
    async with conn.execute("SELECT count(*) FROM declarations WHERE branch_id = ? AND status = 'pending'", (branch_id,)) as cursor:
        row = await cursor.fetchone()
    return int(row[0])


async def of_member(conn: Connection, member_id: int, limit: int = 20) -> list[Declaration]:
    async with conn.execute(
        "SELECT * FROM declarations WHERE member_id = ? ORDER BY id DESC LIMIT ?", (member_id, limit)
    ) as cursor:
        return [_declaration(r) for r in await cursor.fetchall()]


async def add_message(conn: Connection, declaration_id: int, chat_id: int, message_id: int) -> None:
    await conn.execute(
        "INSERT INTO declaration_messages (declaration_id, chat_id, message_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (declaration_id, chat_id, message_id),
    )


async def messages(conn: Connection, declaration_id: int) -> list[tuple[int, int]]:
    async with conn.execute(
        "SELECT chat_id, message_id FROM declaration_messages WHERE declaration_id = ?", (declaration_id,)
    ) as cursor:
        return [(int(r[0]), int(r[1])) for r in await cursor.fetchall()]
