"""Which years a branch has: the earliest day it holds anything of (for /grade's and /export's years)."""

from __future__ import annotations

from datetime import date

from storage.db import Connection


async def first_day(conn: Connection, branch_id: int) -> date | None:
    """The earliest of the branch's members' first days and its ledger rows' days (None when it has
    neither). A recorder may date a row in the period before anyone joined (the previous month, or
    December of last year for a branch set up in January): that year has a row to export."""
    async with conn.execute(
        "SELECT MIN(day) FROM (SELECT MIN(joined_on) AS day FROM members WHERE branch_id = ? AND joined_on IS NOT NULL"
        " UNION ALL SELECT MIN(occurred_on) AS day FROM ledger WHERE branch_id = ?) AS earliest",
        (branch_id, branch_id),
    ) as cursor:
        row = await cursor.fetchone()
    return date.fromisoformat(row[0]) if row and row[0] else None
