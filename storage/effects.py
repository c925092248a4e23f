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


async def finish(conn: Connection, branch_id: int, kind: str, key: str, outcome: str, detail: str | None = None,
                 *, retry_at: str | None = None, refund: bool = False) -> None:
    """The effect's outcome; a failed one is not taken again before ``retry_at`` (UTC ISO; None: at once).
    ``refund``: the failed try does not count against the effect's attempts (its group could not be
    reached: it waits for the bot to be back there, however long that takes)."""
    await conn.execute(
        "UPDATE effects SET outcome = ?, done_at = ?, detail = ?, retry_at = ?, attempts = attempts - ?"
        " WHERE branch_id = ? AND kind = ? AND key = ?",
        (outcome, utcnow(), detail, retry_at, int(refund), branch_id, kind, key),
    )


async def reclaim_failed(conn: Connection, branch_id: int, kind: str, key: str, max_attempts: int, now: str,
                         *, after: Sequence[str] = (), busy_since: str = "") -> int:
    """Take a failed effect again (for one claimant), while it has been tried fewer than max_attempts times
    and its ``retry_at`` has come (``now``: UTC ISO) — and, with ``after``, not while one of those kinds is
    in progress for the branch (as ``claim``). Returns which attempt this is (2, 3 …), 0 when not taken."""
    guard, guard_args = "", ()
    if after:
        kinds = ", ".join("?" for _ in after)
        guard = (" AND NOT EXISTS (SELECT 1 FROM effects WHERE branch_id = ? AND outcome = 'claimed'"
                 f" AND claimed_at >= ? AND kind IN ({kinds}))")
        guard_args = (branch_id, busy_since, *after)
    async with conn.execute(
        "UPDATE effects SET outcome = 'claimed', attempts = attempts + 1, claimed_at = ?, retry_at = NULL"
        " WHERE branch_id = ? AND kind = ? AND key = ? AND outcome = 'failed' AND attempts < ?"
        " AND (retry_at IS NULL OR retry_at <= ?)" + guard + " RETURNING attempts",
        (utcnow(), branch_id, kind, key, max_attempts, now, *guard_args),
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def rearm(conn: Connection, branch_id: int) -> list[tuple[str, str]]:
    """The branch's failed effects are taken again at the next tick (the bot is back in its group):
    (kind, key) of each. Only those whose producer still lists them and retries them run again."""
    async with conn.execute(
        "UPDATE effects SET retry_at = NULL WHERE branch_id = ? AND outcome = 'failed' RETURNING kind, key", (branch_id,)
    ) as cursor:
        return [(str(r[0]), str(r[1])) for r in await cursor.fetchall()]


async def done_keys(conn: Connection, branch_id: int, kind: str) -> set[str]:
    async with conn.execute("SELECT key FROM effects WHERE branch_id = ? AND kind = ?", (branch_id, kind)) as cursor:
        return {r[0] for r in await cursor.fetchall()}


async def outcome(conn: Connection, branch_id: int, kind: str, key: str) -> str | None:
    async with conn.execute(
        "SELECT outcome FROM effects WHERE branch_id = ? AND kind = ? AND key = ?", (branch_id, kind, key)
    ) as cursor:
        row = await cursor.fetchone()
    return row[0] if row else None
