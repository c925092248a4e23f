"""Meetings and attendance; every state change is a conditional statement, safe to repeat."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.domain.meetings import Attendance, AttendanceRecord, Meeting
from bot.domain.records import LedgerRow
from storage._util import row_dict, utcnow
from storage.db import Connection


def _meeting(row) -> Meeting:
    data = row_dict(row)
    data.pop("client_key", None)
    return Meeting(**data)


def _record(row) -> AttendanceRecord:
    data = row_dict(row)
    data.pop("leave_decided_at", None)
    data.pop("marked_at", None)
    return AttendanceRecord(**data)


def _utc(moment: datetime) -> str:
    """UTC text that sorts as time does (every stored moment has this one form)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


# --- meetings ---------------------------------------------------------------------------------


async def create(conn: Connection, *, branch_id: int, kind: str, starts_at: datetime, place: str, topic: str,
                 created_by: int, client_key: str, created_at: datetime) -> tuple[Meeting, bool]:
    """Insert once per (branch, client_key); returns (meeting, created_now)."""
    async with conn.execute(
        "INSERT INTO meetings (branch_id, kind, starts_at, place, topic, created_by, created_at, client_key)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (branch_id, client_key) DO NOTHING RETURNING *",
        (branch_id, kind, _utc(starts_at), place, topic, created_by, _utc(created_at), client_key),
    ) as cursor:
        row = await cursor.fetchone()
    if row:
        return _meeting(row), True
    async with conn.execute("SELECT * FROM meetings WHERE branch_id = ? AND client_key = ?", (branch_id, client_key)) as cursor:
        row = await cursor.fetchone()
    return _meeting(row), False


async def by_id(conn: Connection, meeting_id: int) -> Meeting | None:
    async with conn.execute("SELECT * FROM meetings WHERE id = ?", (meeting_id,)) as cursor:
        row = await cursor.fetchone()
    return _meeting(row) if row else None


async def set_announcement(conn: Connection, meeting_id: int, chat_id: int, message_id: int) -> None:
    await conn.execute(
        "UPDATE meetings SET announce_chat_id = ?, announce_message_id = ? WHERE id = ?", (chat_id, message_id, meeting_id)
    )


async def close(conn: Connection, meeting_id: int, closed_by: int) -> bool:
    """scheduled → closed, once."""
    cursor = await conn.execute(
        "UPDATE meetings SET status = 'closed', closed_by = ?, closed_at = ? WHERE id = ? AND status = 'scheduled'",
        (closed_by, utcnow(), meeting_id),
    )
    return cursor.rowcount == 1


async def cancel(conn: Connection, meeting_id: int) -> bool:
    """scheduled → cancelled, once."""
    cursor = await conn.execute("UPDATE meetings SET status = 'cancelled' WHERE id = ? AND status = 'scheduled'", (meeting_id,))
    return cursor.rowcount == 1


async def of_branch(conn: Connection, branch_id: int, *, statuses: tuple[str, ...], since: datetime,
                    until: datetime | None = None, limit: int = 50) -> list[Meeting]:
    """Meetings in these statuses starting at or after ``since`` (and before ``until``), soonest first."""
    marks = ", ".join("?" for _ in statuses)
    sql = f"SELECT * FROM meetings WHERE branch_id = ? AND status IN ({marks}) AND starts_at >= ?"
    args: list[object] = [branch_id, *statuses, _utc(since)]
    if until is not None:
        sql += " AND starts_at < ?"
        args.append(_utc(until))
    sql += " ORDER BY starts_at, id LIMIT ?"
    args.append(limit)
    async with conn.execute(sql, args) as cursor:
        return [_meeting(r) for r in await cursor.fetchall()]


# --- attendance -------------------------------------------------------------------------------


async def _ensure(conn: Connection, meeting_id: int, member_id: int) -> None:
    await conn.execute(
        "INSERT INTO meeting_attendance (meeting_id, member_id) VALUES (?, ?) ON CONFLICT DO NOTHING", (meeting_id, member_id)
    )


async def record(conn: Connection, meeting_id: int, member_id: int) -> AttendanceRecord | None:
    async with conn.execute(
        "SELECT * FROM meeting_attendance WHERE meeting_id = ? AND member_id = ?", (meeting_id, member_id)
    ) as cursor:
        row = await cursor.fetchone()
    return _record(row) if row else None


async def records(conn: Connection, meeting_id: int) -> dict[int, AttendanceRecord]:
    async with conn.execute("SELECT * FROM meeting_attendance WHERE meeting_id = ?", (meeting_id,)) as cursor:
        return {int(r["member_id"]): _record(r) for r in await cursor.fetchall()}


async def attend(conn: Connection, meeting_id: int, member_id: int) -> bool:
    """The member will attend; a pending or approved leave is withdrawn. False when already attending."""
    await _ensure(conn, meeting_id, member_id)
    cursor = await conn.execute(
        "UPDATE meeting_attendance SET attending = 1,"
        " leave_status = CASE WHEN leave_status IN ('pending', 'approved') THEN 'withdrawn' ELSE leave_status END"
        " WHERE meeting_id = ? AND member_id = ? AND attending = 0",
        (meeting_id, member_id),
    )
    return cursor.rowcount == 1


async def request_leave(conn: Connection, meeting_id: int, member_id: int, reason: str) -> bool:
    """A leave request, once: only where none is pending, approved or refused."""
    await _ensure(conn, meeting_id, member_id)
    cursor = await conn.execute(
        "UPDATE meeting_attendance SET leave_status = 'pending', leave_reason = ?, attending = 0,"
        " leave_decided_by = NULL, leave_decided_at = NULL"
        " WHERE meeting_id = ? AND member_id = ? AND (leave_status IS NULL OR leave_status = 'withdrawn')",
        (reason, meeting_id, member_id),
    )
    return cursor.rowcount == 1


async def decide_leave(conn: Connection, meeting_id: int, member_id: int, approved: bool, decided_by: int) -> bool:
    """pending → approved | refused, once."""
    cursor = await conn.execute(
        "UPDATE meeting_attendance SET leave_status = ?, leave_decided_by = ?, leave_decided_at = ?"
        " WHERE meeting_id = ? AND member_id = ? AND leave_status = 'pending'",
        ("approved" if approved else "refused", decided_by, utcnow(), meeting_id, member_id),
    )
    return cursor.rowcount == 1


async def check_in(conn: Connection, meeting_id: int, member_id: int, at: datetime) -> bool:
    """The first check-in counts; False on a repeat."""
    await _ensure(conn, meeting_id, member_id)
    cursor = await conn.execute(
        "UPDATE meeting_attendance SET checked_in_at = ? WHERE meeting_id = ? AND member_id = ? AND checked_in_at IS NULL",
        (_utc(at), meeting_id, member_id),
    )
    return cursor.rowcount == 1


async def set_mark(conn: Connection, meeting_id: int, member_id: int, mark: Attendance, marked_by: int) -> bool:
    """The recorder's mark; False when it already was this mark (a double tap)."""
    await _ensure(conn, meeting_id, member_id)
    cursor = await conn.execute(
        "UPDATE meeting_attendance SET mark = ?, marked_by = ?, marked_at = ?"
        " WHERE meeting_id = ? AND member_id = ? AND (mark IS NULL OR mark != ?)",
        (mark.value, marked_by, utcnow(), meeting_id, member_id, mark.value),
    )
    return cursor.rowcount == 1


async def put_on_roll(conn: Connection, meeting_id: int, member_id: int, state: str) -> None:
    """Freeze a member onto the closed meeting's roll, with their state at that moment."""
    await _ensure(conn, meeting_id, member_id)
    await conn.execute(
        "UPDATE meeting_attendance SET counted = 1, state_at_close = ? WHERE meeting_id = ? AND member_id = ? AND counted = 0",
        (state, meeting_id, member_id),
    )


# --- the meeting's ledger rows ----------------------------------------------------------------


async def booked_rows(conn: Connection, branch_id: int, meeting_id: int, member_id: int) -> list[LedgerRow]:
    """Every row this meeting booked for the member (source "automatic"), reversed or not, oldest first."""
    async with conn.execute(
        "SELECT * FROM ledger WHERE branch_id = ? AND member_id = ? AND source = 'automatic' AND reference LIKE ? ORDER BY id",
        (branch_id, member_id, f"meeting:{meeting_id}:%"),
    ) as cursor:
        return [LedgerRow(**row_dict(r)) for r in await cursor.fetchall()]


async def revisions(conn: Connection, branch_id: int, meeting_id: int, member_id: int) -> int:
    """How many automatic rows this meeting has ever booked for the member (the next revision follows)."""
    async with conn.execute(
        "SELECT count(*) FROM ledger WHERE branch_id = ? AND member_id = ? AND source = 'automatic' AND reference LIKE ?",
        (branch_id, member_id, f"meeting:{meeting_id}:%"),
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0])
