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
    """Every branch that has a group (not retired: see ``retire``)."""
    async with conn.execute("SELECT * FROM branches WHERE retired_at IS NULL ORDER BY id") as cursor:
        return [Branch(**row_dict(r)) for r in await cursor.fetchall()]


async def set_reachable(conn: Connection, branch_id: int, reachable: bool) -> None:
    await conn.execute("UPDATE branches SET reachable = ? WHERE id = ?", (int(reachable), branch_id))


async def move_chat(conn: Connection, old_chat_id: int, new_chat_id: int) -> bool:
    """The branch of the old chat takes the new one, reachable there (a send that finds it otherwise says so
    again); whatever the old chat's last news was (Telegram may report the bot as gone from it)."""
    cursor = await conn.execute("UPDATE branches SET chat_id = ?, reachable = 1 WHERE chat_id = ?", (new_chat_id, old_chat_id))
    return cursor.rowcount == 1


async def is_bare(conn: Connection, branch_id: int) -> bool:
    """Nothing but its set-up: no member but whoever set it up, no declaration, no meeting, no ledger row
    but the calendar's own (source 'automatic': a month's default, a dues close)."""
    async with conn.execute(
        "SELECT b.id FROM branches b WHERE b.id = ?"
        " AND NOT EXISTS (SELECT 1 FROM members m WHERE m.branch_id = b.id AND (m.user_id IS NULL OR m.user_id <> b.created_by))"
        " AND NOT EXISTS (SELECT 1 FROM declarations d WHERE d.branch_id = b.id)"
        " AND NOT EXISTS (SELECT 1 FROM meetings g WHERE g.branch_id = b.id)"
        " AND NOT EXISTS (SELECT 1 FROM ledger l WHERE l.branch_id = b.id AND l.source <> 'automatic')",
        (branch_id,),
    ) as cursor:
        return await cursor.fetchone() is not None


# A retired branch's chat_id: no Telegram chat has it (group and supergroup ids are above -10**13), and
# each retired branch has its own (chat_id is UNIQUE).
RETIRED_CHAT_BASE = -(10**15)


async def retire(conn: Connection, branch_id: int, left_on: str) -> bool:
    """A bare branch (see ``is_bare``) gives up its group, once: it leaves the calendar and every private
    chat's choice of branch, and whoever set it up has left it (``left_on``: a branch-local date)."""
    cursor = await conn.execute(
        "UPDATE branches SET chat_id = ?, retired_at = ?, reachable = 0 WHERE id = ? AND retired_at IS NULL",
        (RETIRED_CHAT_BASE - branch_id, utcnow(), branch_id),
    )
    if cursor.rowcount != 1:
        return False
    await conn.execute(
        "UPDATE members SET status = 'left', left_on = ? WHERE branch_id = ? AND status IN ('approved', 'pending')",
        (left_on, branch_id),
    )
    await conn.execute("DELETE FROM user_context WHERE branch_id = ?", (branch_id,))
    return True


async def managed_by(conn: Connection, user_id: int) -> list[Branch]:
    """The branches (with a group) where this Telegram user is an approved secretary or deputy."""
    async with conn.execute(
        "SELECT DISTINCT b.* FROM branches b JOIN members m ON m.branch_id = b.id JOIN roles r ON r.member_id = m.id"
        " WHERE m.user_id = ? AND m.status = 'approved' AND r.branch_id = b.id AND r.role IN ('secretary', 'deputy')"
        " AND b.retired_at IS NULL ORDER BY b.id",
        (user_id,),
    ) as cursor:
        return [Branch(**row_dict(r)) for r in await cursor.fetchall()]


async def for_user(conn: Connection, user_id: int) -> list[Branch]:
    """The branches where this Telegram user is an approved member."""
    async with conn.execute(
        "SELECT b.* FROM branches b JOIN members m ON m.branch_id = b.id"
        " WHERE m.user_id = ? AND m.status = 'approved' AND b.retired_at IS NULL ORDER BY b.id",
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


async def replace_rule_overrides(conn: Connection, branch_id: int, *, before: str, after: str) -> bool:
    """The branch's rule overrides (JSON, bot.domain.overrides) become ``after`` if they are still ``before``
    (a conditional update: two changes at once cannot lose one another); False when they were not."""
    cursor = await conn.execute("UPDATE branches SET rule_overrides = ? WHERE id = ? AND rule_overrides = ?",
                                (after, branch_id, before))
    return cursor.rowcount == 1


async def last_graded_year(conn: Connection, branch_id: int) -> int | None:
    """The latest year with a /grade round of the branch (in publicity, final or re-opened), or None: a year
    whose figures were published, which a change of the base or the weights would silently recompute."""
    async with conn.execute("SELECT MAX(year) FROM grade_rounds WHERE branch_id = ?", (branch_id,)) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else None


async def pending_declarations_of_item(conn: Connection, branch_id: int, item_code: str) -> int:
    """How many of the branch's declarations of this item wait for a decision (each asks for the item's
    value as it was when declared)."""
    async with conn.execute("SELECT COUNT(*) FROM declarations WHERE branch_id = ? AND item_code = ? AND status = 'pending'",
                            (branch_id, item_code)) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def last_closed_democratic_year(conn: Connection, branch_id: int) -> int | None:
    """The latest year with a closed democratic round of the branch (张店), or None: its evaluations and its
    不合格 list were given with the weights of that moment, and a change of the weights would recompute them."""
    async with conn.execute("SELECT MAX(year) FROM democratic_rounds WHERE branch_id = ? AND status = 'closed'",
                            (branch_id,)) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else None
