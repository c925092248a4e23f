"""The roster's own statements: a roster upload updating the members it names, and a member's removal.

(The member rows themselves are read and written through ``storage.members``; what is here is what the
roster upload and /remove need besides.)"""

from __future__ import annotations

from storage._util import utcnow
from storage.db import Connection
from storage.members import PROFILE_FIELDS
from bot.domain.records import Role

# The columns a roster upload may change on a member who is already on the roster.
UPDATABLE = (*PROFILE_FIELDS, "state", "state_reason")


async def update_fields(conn: Connection, member_id: int, fields: dict[str, str | None]) -> bool:
    """Set ``fields`` (names from UPDATABLE) on an approved member; False when the row is no longer approved."""
    names = [f for f in fields if f in UPDATABLE]
    if len(names) != len(fields):
        raise ValueError(f"not a roster field: {sorted(set(fields) - set(UPDATABLE))}")
    if not names:
        return True
    cursor = await conn.execute(
        "UPDATE members SET " + ", ".join(f"{name} = ?" for name in names) + " WHERE id = ? AND status = 'approved'",
        (*(fields[name] for name in names), member_id),
    )
    return cursor.rowcount == 1


async def drop_roles(conn: Connection, branch_id: int, member_id: int) -> set[Role]:
    """Every role the member holds in the branch, removed; the roles that were held."""
    async with conn.execute(
        "DELETE FROM roles WHERE branch_id = ? AND member_id = ? RETURNING role", (branch_id, member_id)
    ) as cursor:
        return {Role(r[0]) for r in await cursor.fetchall()}


async def personal_records(conn: Connection, member_id: int) -> int:
    """How many things the member did or had recorded by a person: declarations, and ledger rows other than
    the ones the bot writes for everyone (source 'automatic': a missed meeting, unpaid dues, a default)."""
    async with conn.execute(
        "SELECT (SELECT count(*) FROM declarations WHERE member_id = ?)"
        " + (SELECT count(*) FROM ledger WHERE member_id = ? AND source != 'automatic')",
        (member_id, member_id),
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0])


async def void(conn: Connection, member_id: int) -> bool:
    """An approval made by mistake, undone: the row is as a refused join request is ('rejected'), so nothing
    counts it (notices, grading and exports read approved and left rows); once."""
    cursor = await conn.execute("UPDATE members SET status = 'rejected' WHERE id = ? AND status = 'approved'", (member_id,))
    return cursor.rowcount == 1


async def record_removal(conn: Connection, *, branch_id: int, member_id: int, removed_by: int, reason: str,
                         voided: bool) -> None:
    """The removal's reason, who removed and when (in the removal's transaction)."""
    await conn.execute(
        "INSERT INTO member_removals (branch_id, member_id, removed_by, removed_at, reason, voided) VALUES (?, ?, ?, ?, ?, ?)",
        (branch_id, member_id, removed_by, utcnow(), reason, 1 if voided else 0),
    )


async def removals_of(conn: Connection, member_id: int) -> list[tuple[str, str, bool]]:
    """(removed_at, reason, voided) of each removal of the member, oldest first."""
    async with conn.execute(
        "SELECT removed_at, reason, voided FROM member_removals WHERE member_id = ? ORDER BY id", (member_id,)
    ) as cursor:
        return [(str(r[0]), str(r[1]), bool(r[2])) for r in await cursor.fetchall()]
