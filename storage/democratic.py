"""The democratic evaluation's rounds, ratings, marks and invitations (SQL only).

Writes are conditional: a rating or mark is written only while its round is open, and a repeat of the
same value changes nothing (``ON CONFLICT … DO UPDATE … WHERE value != excluded.value``).
"""

from __future__ import annotations

from decimal import Decimal

from bot.domain.democratic import Round, canonical
from storage._util import utcnow
from storage.db import Connection

_ROUND = "SELECT id, branch_id, year, half, status, opened_by, closed_by FROM democratic_rounds"


def _round(row) -> Round:
    return Round(id=row[0], branch_id=row[1], year=row[2], half=row[3], status=row[4], opened_by=row[5], closed_by=row[6])


async def open_round(conn: Connection, branch_id: int, year: int, half: int, opened_by: int) -> Round | None:
    """A new open round; None when the branch already has one for that half (a repeat, or closed)."""
    async with conn.execute(
        "INSERT INTO democratic_rounds (branch_id, year, half, status, opened_by, opened_at) VALUES (?, ?, ?, 'open', ?, ?)"
        " ON CONFLICT (branch_id, year, half) DO NOTHING RETURNING id",
        (branch_id, year, half, opened_by, utcnow()),
    ) as cursor:
        row = await cursor.fetchone()
    return await by_id(conn, int(row[0])) if row else None


async def close_round(conn: Connection, round_id: int, closed_by: int) -> bool:
    """open → closed, once; False when it was closed already (a second tap)."""
    cursor = await conn.execute(
        "UPDATE democratic_rounds SET status = 'closed', closed_by = ?, closed_at = ? WHERE id = ? AND status = 'open'",
        (closed_by, utcnow(), round_id),
    )
    return cursor.rowcount == 1


async def by_id(conn: Connection, round_id: int) -> Round | None:
    async with conn.execute(f"{_ROUND} WHERE id = ?", (round_id,)) as cursor:
        row = await cursor.fetchone()
    return _round(row) if row else None


async def of_half(conn: Connection, branch_id: int, year: int, half: int) -> Round | None:
    async with conn.execute(f"{_ROUND} WHERE branch_id = ? AND year = ? AND half = ?", (branch_id, year, half)) as cursor:
        row = await cursor.fetchone()
    return _round(row) if row else None


async def latest(conn: Connection, branch_id: int) -> Round | None:
    """The branch's open round (the newest, if several), else its newest round."""
    async with conn.execute(
        f"{_ROUND} WHERE branch_id = ? ORDER BY status = 'open' DESC, year DESC, half DESC LIMIT 1", (branch_id,)
    ) as cursor:
        row = await cursor.fetchone()
    return _round(row) if row else None


async def open_rounds(conn: Connection, branch_id: int) -> list[Round]:
    async with conn.execute(f"{_ROUND} WHERE branch_id = ? AND status = 'open' ORDER BY year DESC, half DESC", (branch_id,)) as cursor:
        return [_round(r) for r in await cursor.fetchall()]


# --- self and peer ratings ----------------------------------------------------------------------


async def rate(conn: Connection, round_id: int, rater_id: int, ratee_id: int, value: Decimal) -> bool:
    """Record or replace a rating while the round is open; False when nothing changed."""
    now = utcnow()
    cursor = await conn.execute(
        "INSERT INTO democratic_ratings (round_id, rater_id, ratee_id, value, created_at, updated_at)"
        " SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM democratic_rounds WHERE id = ? AND status = 'open')"
        " ON CONFLICT (round_id, rater_id, ratee_id) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
        " WHERE democratic_ratings.value != excluded.value",
        (round_id, rater_id, ratee_id, canonical(value), now, now, round_id),
    )
    return cursor.rowcount == 1


async def ratings(conn: Connection, round_id: int) -> list[tuple[int, int, Decimal]]:
    """(rater, ratee, value) of every self and peer rating in the round — for counting and the
    evaluation only; never to be shown with the rater."""
    async with conn.execute(
        "SELECT rater_id, ratee_id, value FROM democratic_ratings WHERE round_id = ? ORDER BY ratee_id, rater_id", (round_id,)
    ) as cursor:
        return [(int(r[0]), int(r[1]), Decimal(r[2])) for r in await cursor.fetchall()]


async def given_by(conn: Connection, round_id: int, rater_id: int) -> dict[int, Decimal]:
    """The ratings one member gave (ratee → value): shown only to that member."""
    async with conn.execute(
        "SELECT ratee_id, value FROM democratic_ratings WHERE round_id = ? AND rater_id = ?", (round_id, rater_id)
    ) as cursor:
        return {int(r[0]): Decimal(r[1]) for r in await cursor.fetchall()}


# --- public and branch ratings ------------------------------------------------------------------


async def mark(conn: Connection, round_id: int, member_id: int, kind: str, value: Decimal, entered_by: int) -> bool:
    """Record or replace a public/branch rating while the round is open; False when nothing changed."""
    now = utcnow()
    cursor = await conn.execute(
        "INSERT INTO democratic_marks (round_id, member_id, kind, value, entered_by, created_at, updated_at)"
        " SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM democratic_rounds WHERE id = ? AND status = 'open')"
        " ON CONFLICT (round_id, member_id, kind) DO UPDATE SET value = excluded.value, entered_by = excluded.entered_by,"
        " updated_at = excluded.updated_at WHERE democratic_marks.value != excluded.value",
        (round_id, member_id, kind, canonical(value), entered_by, now, now, round_id),
    )
    return cursor.rowcount == 1


async def marks(conn: Connection, round_id: int) -> dict[tuple[int, str], Decimal]:
    """(member, kind) → value."""
    async with conn.execute("SELECT member_id, kind, value FROM democratic_marks WHERE round_id = ?", (round_id,)) as cursor:
        return {(int(r[0]), str(r[1])): Decimal(r[2]) for r in await cursor.fetchall()}


# --- invitations --------------------------------------------------------------------------------


async def set_reached(conn: Connection, round_id: int, member_id: int, reached: bool) -> None:
    await conn.execute(
        "INSERT INTO democratic_invites (round_id, member_id, reached, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (round_id, member_id) DO UPDATE SET reached = excluded.reached, updated_at = excluded.updated_at"
        " WHERE democratic_invites.reached != excluded.reached",
        (round_id, member_id, int(reached), utcnow()),
    )


async def invites(conn: Connection, round_id: int) -> dict[int, bool]:
    """member → whether the last invitation (or their own /evaluate) reached them."""
    async with conn.execute("SELECT member_id, reached FROM democratic_invites WHERE round_id = ?", (round_id,)) as cursor:
        return {int(r[0]): bool(r[1]) for r in await cursor.fetchall()}
