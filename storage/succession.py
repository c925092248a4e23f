"""Secretary succession's own statements: the log of roles changed by leaving the group, a hand-over, an
added secretary, or an administrator's claim (migration 0030). Roles themselves are read and written
through ``storage.members`` and ``storage.roster``."""

from __future__ import annotations

from storage._util import utcnow
from storage.db import Connection

CHANGES = ("left_group", "claimed", "handed_over", "stepped_down", "added")


async def log_change(conn: Connection, *, branch_id: int, member_id: int, role: str, change: str,
                     by_user: int | None) -> None:
    """One role of one member changed (in the change's own transaction)."""
    if change not in CHANGES:
        raise ValueError(f"not a role change: {change}")
    await conn.execute(
        "INSERT INTO role_changes (branch_id, member_id, role, change, by_user, changed_at) VALUES (?, ?, ?, ?, ?, ?)",
        (branch_id, member_id, role, change, by_user, utcnow()),
    )


async def changes_of(conn: Connection, branch_id: int) -> list[tuple[int, str, str, int | None, str]]:
    """(member_id, role, change, by_user, changed_at) of the branch's logged role changes, oldest first."""
    async with conn.execute(
        "SELECT member_id, role, change, by_user, changed_at FROM role_changes WHERE branch_id = ? ORDER BY id",
        (branch_id,),
    ) as cursor:
        return [(int(r[0]), str(r[1]), str(r[2]), None if r[3] is None else int(r[3]), str(r[4]))
                for r in await cursor.fetchall()]


async def last_change(conn: Connection, branch_id: int, member_id: int, role: str) -> tuple[str, int | None] | None:
    """(change, by_user) of the change logged last for one member's role in the branch, or None."""
    async with conn.execute(
        "SELECT change, by_user FROM role_changes WHERE branch_id = ? AND member_id = ? AND role = ? ORDER BY id DESC LIMIT 1",
        (branch_id, member_id, role),
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None else (str(row[0]), None if row[1] is None else int(row[1]))
