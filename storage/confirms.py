"""Pending confirm steps (/remove, /undo, a zero-out /record), under the token their buttons carry
(migration 0027). Times are UTC ISO-8601 text of one format, so they compare as text."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Connection


@dataclass(frozen=True)
class PendingRow:
    token: str
    kind: str
    chat_id: int
    user_id: int
    branch_id: int
    payload: str  # JSON
    created_at: str
    expires_at: str
    used_at: str | None


async def insert(conn: Connection, *, token: str, kind: str, chat_id: int, user_id: int, branch_id: int,
                 payload: str, created_at: str, expires_at: str) -> bool:
    """Keep a pending step; False when the token is taken already (the caller draws another)."""
    async with conn.execute(
        "INSERT INTO pending_confirms (token, kind, chat_id, user_id, branch_id, payload, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (token) DO NOTHING RETURNING token",
        (token, kind, chat_id, user_id, branch_id, payload, created_at, expires_at),
    ) as cursor:
        return await cursor.fetchone() is not None


async def sweep(conn: Connection, expired_before: str) -> None:
    """Forget the steps that expired before this moment (pressed or not): a press on one is told the
    button no longer works, as for any token the bot does not know."""
    await conn.execute("DELETE FROM pending_confirms WHERE expires_at < ?", (expired_before,))


async def by_token(conn: Connection, token: str) -> PendingRow | None:
    async with conn.execute(
        "SELECT token, kind, chat_id, user_id, branch_id, payload, created_at, expires_at, used_at"
        " FROM pending_confirms WHERE token = ?", (token,),
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return None
    return PendingRow(token=row["token"], kind=row["kind"], chat_id=int(row["chat_id"]), user_id=int(row["user_id"]),
                      branch_id=int(row["branch_id"]), payload=row["payload"], created_at=row["created_at"],
                      expires_at=row["expires_at"], used_at=row["used_at"])


async def claim(conn: Connection, token: str, now: str) -> bool:
    """Mark the step used, if it is still pending and not expired: one statement, so of two presses at
    once exactly one gets True."""
    async with conn.execute(
        "UPDATE pending_confirms SET used_at = ? WHERE token = ? AND used_at IS NULL AND expires_at > ? RETURNING token",
        (now, token, now),
    ) as cursor:
        return await cursor.fetchone() is not None


async def unclaim(conn: Connection, token: str, used_at: str) -> None:
    """Give back a claim (the action it was for was refused or failed): only the claim made at ``used_at``."""
    await conn.execute("UPDATE pending_confirms SET used_at = NULL WHERE token = ? AND used_at = ?", (token, used_at))
