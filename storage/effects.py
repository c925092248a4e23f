"""Scheduled effects: claimed once by (branch, kind, key), then marked done, skipped or failed."""

from __future__ import annotations

from collections.abc import Sequence

from storage._util import utcnow
from storage.db import Connection


async def claim(conn: Connection, branch_id: int, kind: str, key: str, due_at: str, outcome: str = "claimed",
                *, after: Sequence[str] = (), busy_since: str = "") -> bool:
    """True for the first claimant only; everyone after (a second tick, a restart) gets False.

    With ``after``: also False (for now) while an effect of one of those kinds is in progress for the branch
    (claimed at or after ``busy_since`` and not finished): another process is running an effect that
    must come first. One statement, so it holds across processes."""
    if not after:
        cursor = await conn.execute(
            "INSERT INTO effects (branch_id, kind, key, due_at, claimed_at, outcome) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (branch_id, kind, key) DO NOTHING",
            (branch_id, kind, key, due_at, utcnow(), outcome),
        )
        return cursor.rowcount == 1
    kinds = ", ".join("?" for _ in after)
    cursor = await conn.execute(
        "INSERT INTO effects (branch_id, kind, key, due_at, claimed_at, outcome) SELECT ?, ?, ?, ?, ?, ?"
        " WHERE NOT EXISTS (SELECT 1 FROM effects WHERE branch_id = ? AND outcome = 'claimed' AND claimed_at >= ?"
        f" AND kind IN ({kinds})) ON CONFLICT (branch_id, kind, key) DO NOTHING",
        (branch_id, kind, key, due_at, utcnow(), outcome, branch_id, busy_since, *after),
    )
    return cursor.rowcount == 1


async def finish(conn: Connection, branch_id: int, kind: str, key: str, outcome: str, detail: str | None = None) -> None:
    await conn.execute(
        "UPDATE effects SET outcome = ?, done_at = ?, detail = ? WHERE branch_id = ? AND kind = ? AND key = ?",
        (outcome, utcnow(), detail, branch_id, kind, key),
    )


async def reclaim_failed(conn: Connection, branch_id: int, kind: str, key: str, max_attempts: int,
                         *, after: Sequence[str] = (), busy_since: str = "") -> bool:
    """Take a failed effect again (True for one claimant), while it has been tried fewer than max_attempts
    times — and, with ``after``, not while one of those kinds is in progress for the branch (as ``claim``)."""
    guard, guard_args = "", ()
    if after:
        kinds = ", ".join("?" for _ in after)
        guard = (" AND NOT EXISTS (SELECT 1 FROM effects WHERE branch_id = ? AND outcome = 'claimed'"
                 f" AND claimed_at >= ? AND kind IN ({kinds}))")
        guard_args = (branch_id, busy_since, *after)
    cursor = await conn.execute(
        "UPDATE effects SET outcome = 'claimed', attempts = attempts + 1, claimed_at = ?"
        " WHERE branch_id = ? AND kind = ? AND key = ? AND outcome = 'failed' AND attempts < ?" + guard,
        (utcnow(), branch_id, kind, key, max_attempts, *guard_args),
    )
    return cursor.rowcount == 1


async def done_keys(conn: Connection, branch_id: int, kind: str) -> set[str]:
    async with conn.execute("SELECT key FROM effects WHERE branch_id = ? AND kind = ?", (branch_id, kind)) as cursor:
        return {r[0] for r in await cursor.fetchall()}


async def outcome(conn: Connection, branch_id: int, kind: str, key: str) -> str | None:
    async with conn.execute(
        "SELECT outcome FROM effects WHERE branch_id = ? AND kind = ? AND key = ?", (branch_id, kind, key)
    ) as cursor:
        row = await cursor.fetchone()
    return row[0] if row else None
