"""Branches: one per group chat."""

from __future__ import annotations

from storage._util import row_dict, utcnow
from storage.db import Connection
from bot.domain.records import Branch


async def create(conn: Connection, *, chat_id: int, title: str, preset: str, timezone: str, language: str, created_by: int) -> Branch | None:
    """Insert the branch; None if the chat is already a branch (a replayed /setup)."""
    async with conn.execute(
        "INSERT INTO branches (chat_id, title, preset, timezone, language, created_by, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (chat_id) DO NOTHING RETURNING *",
        (chat_id, title, preset, timezone, language, created_by, utcnow()),
    ) as cursor:
        row = await cursor.fetchone()
    return Branch(**row_dict(row)) if row else None


async def by_chat(conn: Connection, chat_id: int) -> Branch | None:
    async with conn.execute("SELECT * FROM branches WHERE chat_id = ?", (chat_id,)) as cursor:
        row = await cursor.fetchone()
    return Branch(**row_dict(row)) if row else None


async def by_id(conn: Connection, branch_id: int) -> Branch | None:
    async with conn.execute("SELECT * FROM branches WHERE id = ?", (branch_id,)) as cursor:
        row = await cursor.fetchone()
    return Branch(**row_dict(row)) if row else None


async def set_timezone(conn: Connection, branch_id: int, timezone: str) -> None:
    await conn.execute("UPDATE branches SET timezone = ? WHERE id = ?", (timezone, branch_id))


async def set_language(conn: Connection, branch_id: int, language: str) -> None:
    await conn.execute("UPDATE branches SET language = ? WHERE id = ?", (language, branch_id))


async def set_preset(conn: Connection, branch_id: int, preset: str) -> None:
    await conn.execute("UPDATE branches SET preset = ? WHERE id = ?", (preset, branch_id))


async def set_custom_items(conn: Connection, branch_id: int, custom_items_json: str) -> None:
    await conn.execute("UPDATE branches SET custom_items = ? WHERE id = ?", (custom_items_json, branch_id))


async def set_title(conn: Connection, branch_id: int, title: str) -> None:
    await conn.execute("UPDATE branches SET title = ? WHERE id = ?", (title, branch_id))


async def set_calendar(conn: Connection, branch_id: int, calendar_json: str) -> None:
    await conn.execute("UPDATE branches SET calendar = ? WHERE id = ?", (calendar_json, branch_id))


async def all_branches(conn: Connection) -> list[Branch]:
    async with conn.execute("SELECT * FROM branches ORDER BY id") as cursor:
        return [Branch(**row_dict(r)) for r in await cursor.fetchall()]


async def set_reachable(conn: Connection, branch_id: int, reachable: bool) -> None:
    await conn.execute("UPDATE branches SET reachable = ? WHERE id = ?", (int(reachable), branch_id))


async def move_chat(conn: Connection, old_chat_id: int, new_chat_id: int) -> bool:
    cursor = await conn.execute("UPDATE branches SET chat_id = ? WHERE chat_id = ?", (new_chat_id, old_chat_id))
    return cursor.rowcount == 1


async def for_user(conn: Connection, user_id: int) -> list[Branch]:
    """The branches where this Telegram user is an approved member."""
    async with conn.execute(
        "SELECT b.* FROM branches b JOIN members m ON m.branch_id = b.id"
        " WHERE m.user_id = ? AND m.status = 'approved' ORDER BY b.id",
        (user_id,),
    ) as cursor:
        return [Branch(**row_dict(r)) for r in await cursor.fetchall()]


async def set_context(conn: Connection, user_id: int, branch_id: int) -> None:
    await conn.execute(
        "INSERT INTO user_context (user_id, branch_id, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (user_id) DO UPDATE SET branch_id = excluded.branch_id, updated_at = excluded.updated_at",
        (user_id, branch_id, utcnow()),
    )


async def context(conn: Connection, user_id: int) -> int | None:
    async with conn.execute("SELECT branch_id FROM user_context WHERE user_id = ?", (user_id,)) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else None
