"""Member transfers (组织关系转接) between branches, and the chain of a member's rows they leave."""

from __future__ import annotations

from datetime import datetime

from storage._util import row_dict, utcnow
from storage.db import Connection


async def create(conn: Connection, *, code: str, member_id: int, from_branch: int, to_branch: int | None,
                 requested_by: int, expires_at: datetime) -> dict | None:
    """The pending transfer; None when the member already has one open (or the code clashed)."""
    async with conn.execute(
        "INSERT INTO member_transfers (code, member_id, from_branch, to_branch, requested_by, requested_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING *",
        (code, member_id, from_branch, to_branch, requested_by, utcnow(), expires_at.isoformat(timespec="seconds")),
    ) as cursor:
        row = await cursor.fetchone()
    return row_dict(row) if row else None


async def by_code(conn: Connection, code: str) -> dict | None:
    async with conn.execute("SELECT * FROM member_transfers WHERE code = ?", (code,)) as cursor:
        row = await cursor.fetchone()
    return row_dict(row) if row else None


async def open_of_member(conn: Connection, member_id: int) -> dict | None:
    async with conn.execute("SELECT * FROM member_transfers WHERE member_id = ? AND status = 'pending'", (member_id,)) as cursor:
        row = await cursor.fetchone()
    return row_dict(row) if row else None


async def accept(conn: Connection, transfer_id: int, *, to_branch: int, accepted_by: int, moved_on: str, now: datetime) -> bool:
    """pending → accepted, once, while not expired and addressed to this branch (or to any)."""
    cursor = await conn.execute(
        "UPDATE member_transfers SET status = 'accepted', to_branch = ?, accepted_by = ?, decided_at = ?, moved_on = ?"
        " WHERE id = ? AND status = 'pending' AND expires_at > ? AND (to_branch IS NULL OR to_branch = ?)",
        (to_branch, accepted_by, utcnow(), moved_on, transfer_id, now.isoformat(timespec="seconds"), to_branch),
    )
    return cursor.rowcount == 1


async def set_new_member(conn: Connection, transfer_id: int, new_member_id: int) -> None:
    await conn.execute("UPDATE member_transfers SET new_member_id = ? WHERE id = ?", (new_member_id, transfer_id))


async def cancel(conn: Connection, transfer_id: int) -> bool:
    cursor = await conn.execute(
        "UPDATE member_transfers SET status = 'cancelled', decided_at = ? WHERE id = ? AND status = 'pending'",
        (utcnow(), transfer_id),
    )
    return cursor.rowcount == 1


async def link(conn: Connection, new_member_id: int, old_member_id: int) -> bool:
    cursor = await conn.execute(
        "UPDATE members SET transferred_from = ? WHERE id = ? AND transferred_from IS NULL", (old_member_id, new_member_id)
    )
    return cursor.rowcount == 1


async def chain(conn: Connection, member_id: int) -> list[dict]:
    """Every row of the member's history (id, branch_id, joined_on, left_on, transferred_from), oldest
    first: the rows before this one (transferred_from, backwards) and after it (the row naming it).
    A chain is a member's few transfers: a short walk, one indexed lookup per row."""
    columns = "SELECT id, branch_id, joined_on, left_on, transferred_from FROM members"
    async with conn.execute(f"{columns} WHERE id = ?", (member_id,)) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return []
    current = row_dict(row)
    ordered = [current]
    while ordered[0]["transferred_from"] is not None and len(ordered) < 100:
        async with conn.execute(f"{columns} WHERE id = ?", (ordered[0]["transferred_from"],)) as cursor:
            row = await cursor.fetchone()
        if row is None:
            break
        ordered.insert(0, row_dict(row))
    while len(ordered) < 100:
        async with conn.execute(f"{columns} WHERE transferred_from = ?", (ordered[-1]["id"],)) as cursor:
            row = await cursor.fetchone()
        if row is None:
            break
        ordered.append(row_dict(row))
    return ordered


async def drop_pending_request(conn: Connection, member_id: int) -> bool:
    """A pending /join of the person being transferred in: the transfer's new row replaces it."""
    cursor = await conn.execute("DELETE FROM members WHERE id = ? AND status = 'pending'", (member_id,))
    return cursor.rowcount == 1
