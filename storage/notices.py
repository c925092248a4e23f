"""Notices, the entries and members they published, objections, appeals and confirmations."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bot.domain.notice import ConfirmStatus, Notice, NoticeMember, Objection, ObjectionKind, ObjectionSource, ObjectionStatus
from bot.domain.records import LedgerRow
from storage._util import row_dict
from storage.db import Connection


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _notice(row) -> Notice:
    return Notice(**row_dict(row))


def _objection(row) -> Objection:
    return Objection(**row_dict(row))


# --- notices ---------------------------------------------------------------------------------------


async def create(conn: Connection, *, branch_id: int, period_key: str, first_day: date, last_day: date,
                 due_at: datetime, posted_at: datetime, closes_at: datetime, late: bool, ledger_upto: int) -> Notice | None:
    """The notice of a period, once (not sent yet); None when the branch already has it (a repeat)."""
    async with conn.execute(
        "INSERT INTO notices (branch_id, period_key, first_day, last_day, due_at, posted_at, closes_at, late, ledger_upto)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (branch_id, period_key) DO NOTHING RETURNING *",
        (branch_id, period_key, first_day.isoformat(), last_day.isoformat(), _iso(due_at), _iso(posted_at),
         _iso(closes_at), int(late), ledger_upto),
    ) as cursor:
        row = await cursor.fetchone()
    return _notice(row) if row else None


async def by_id(conn: Connection, notice_id: int) -> Notice | None:
    async with conn.execute("SELECT * FROM notices WHERE id = ?", (notice_id,)) as cursor:
        row = await cursor.fetchone()
    return _notice(row) if row else None


async def by_period(conn: Connection, branch_id: int, period_key: str) -> Notice | None:
    async with conn.execute("SELECT * FROM notices WHERE branch_id = ? AND period_key = ?", (branch_id, period_key)) as cursor:
        row = await cursor.fetchone()
    return _notice(row) if row else None


async def recent(conn: Connection, branch_id: int, limit: int = 4) -> list[Notice]:
    """The branch's latest notices that reached the group, newest first."""
    async with conn.execute(
        "SELECT * FROM notices WHERE branch_id = ? AND sent_at IS NOT NULL ORDER BY sent_at DESC, id DESC LIMIT ?",
        (branch_id, limit),
    ) as cursor:
        return [_notice(r) for r in await cursor.fetchall()]


async def previous(conn: Connection, branch_id: int, notice_id: int) -> Notice | None:
    """The notice the branch recorded before this one (sent or not)."""
    async with conn.execute(
        "SELECT * FROM notices WHERE branch_id = ? AND id < ? ORDER BY id DESC LIMIT 1", (branch_id, notice_id)
    ) as cursor:
        row = await cursor.fetchone()
    return _notice(row) if row else None


async def open_at(conn: Connection, branch_id: int, now: datetime) -> list[Notice]:
    """Notices whose objection window is open at ``now`` (sent, not closed), oldest first."""
    async with conn.execute(
        "SELECT * FROM notices WHERE branch_id = ? AND sent_at IS NOT NULL AND sent_at <= ? AND closes_at > ?"
        " ORDER BY sent_at, id",
        (branch_id, _iso(now), _iso(now)),
    ) as cursor:
        return [_notice(r) for r in await cursor.fetchall()]


async def part_sent(conn: Connection, notice_id: int, parts: int) -> bool:
    """One more of the notice's messages reached the group (parts: how many now), once."""
    cursor = await conn.execute(
        "UPDATE notices SET parts_sent = ? WHERE id = ? AND parts_sent = ? AND sent_at IS NULL",
        (parts, notice_id, parts - 1),
    )
    return cursor.rowcount == 1


async def set_closes(conn: Connection, notice_id: int, closes_at: datetime, late: bool | None = None) -> bool:
    """The window's end (and, unless None, whether the notice is late), while none of its messages has
    reached the group (the first one states both)."""
    cursor = await conn.execute(
        "UPDATE notices SET closes_at = ?, late = COALESCE(?, late) WHERE id = ? AND parts_sent = 0 AND sent_at IS NULL",
        (_iso(closes_at), None if late is None else int(late), notice_id),
    )
    return cursor.rowcount == 1


async def mark_sent(conn: Connection, notice_id: int, sent_at: datetime) -> bool:
    """The whole notice reached the group: objections are open from now, once."""
    cursor = await conn.execute("UPDATE notices SET sent_at = ? WHERE id = ? AND sent_at IS NULL", (_iso(sent_at), notice_id))
    return cursor.rowcount == 1


async def sign(conn: Connection, notice_id: int, member_id: int, at: datetime) -> bool:
    """The secretary's (or a deputy's) sign-off of the notice, once; False when it was signed already."""
    cursor = await conn.execute(
        "UPDATE notices SET signed_by = ?, signed_at = ? WHERE id = ? AND signed_by IS NULL",
        (member_id, _iso(at), notice_id),
    )
    return cursor.rowcount == 1


async def add_entries(conn: Connection, notice_id: int, entries: list[tuple[int, int]]) -> None:
    """(ledger id, member id) of every row the notice published."""
    await conn.executemany(
        "INSERT INTO notice_entries (notice_id, ledger_id, member_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        [(notice_id, ledger_id, member_id) for ledger_id, member_id in entries],
    )


async def add_members(conn: Connection, notice_id: int, members: list[tuple[int, str, str]]) -> None:
    """(member id, period figure, year figure) of every member the notice listed."""
    await conn.executemany(
        "INSERT INTO notice_members (notice_id, member_id, score, year_score) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [(notice_id, member_id, score, year) for member_id, score, year in members],
    )


async def notice_of_entry(conn: Connection, branch_id: int, ledger_id: int) -> Notice | None:
    """The (latest) notice of this branch that published the ledger row."""
    async with conn.execute(
        "SELECT n.* FROM notices n JOIN notice_entries e ON e.notice_id = n.id"
        " WHERE n.branch_id = ? AND e.ledger_id = ? ORDER BY n.posted_at DESC LIMIT 1",
        (branch_id, ledger_id),
    ) as cursor:
        row = await cursor.fetchone()
    return _notice(row) if row else None


async def entries(conn: Connection, notice_id: int) -> list[LedgerRow]:
    """The rows a notice published that are still in force (not reversed since)."""
    async with conn.execute(
        "SELECT l.* FROM ledger l JOIN notice_entries e ON e.ledger_id = l.id"
        " WHERE e.notice_id = ? AND NOT EXISTS (SELECT 1 FROM ledger r WHERE r.reverses_id = l.id)"
        " ORDER BY l.occurred_on, l.id",
        (notice_id,),
    ) as cursor:
        return [LedgerRow(**row_dict(r)) for r in await cursor.fetchall()]


# --- confirmations ---------------------------------------------------------------------------------


async def member_line(conn: Connection, notice_id: int, member_id: int) -> NoticeMember | None:
    async with conn.execute(
        "SELECT * FROM notice_members WHERE notice_id = ? AND member_id = ?", (notice_id, member_id)
    ) as cursor:
        row = await cursor.fetchone()
    return NoticeMember(**row_dict(row)) if row else None


async def member_lines(conn: Connection, notice_id: int) -> list[NoticeMember]:
    async with conn.execute("SELECT * FROM notice_members WHERE notice_id = ? ORDER BY member_id", (notice_id,)) as cursor:
        return [NoticeMember(**row_dict(r)) for r in await cursor.fetchall()]


async def mark_asked(conn: Connection, notice_id: int, member_id: int, at: datetime) -> bool:
    """The member was asked to confirm (or could not be reached), once."""
    cursor = await conn.execute(
        "UPDATE notice_members SET asked_at = ? WHERE notice_id = ? AND member_id = ? AND asked_at IS NULL",
        (_iso(at), notice_id, member_id),
    )
    return cursor.rowcount == 1


async def answer(conn: Connection, notice_id: int, member_id: int, status: ConfirmStatus, at: datetime) -> bool:
    """pending → confirmed or disputed, once; False when already answered."""
    cursor = await conn.execute(
        "UPDATE notice_members SET status = ?, answered_at = ? WHERE notice_id = ? AND member_id = ? AND status = 'pending'",
        (status.value, _iso(at), notice_id, member_id),
    )
    return cursor.rowcount == 1


# --- objections ------------------------------------------------------------------------------------


async def add_objection(conn: Connection, *, branch_id: int, notice_id: int, kind: ObjectionKind, ledger_id: int | None,
                        member_id: int, objector_id: int, target: str, reason: str, at: datetime,
                        source: ObjectionSource = ObjectionSource.MEMBER) -> Objection | None:
    """The objection, once per (notice, objector, target); None on a repeat."""
    async with conn.execute(
        "INSERT INTO objections (branch_id, notice_id, kind, ledger_id, member_id, objector_id, target, reason, created_at,"
        " source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (notice_id, objector_id, target) DO NOTHING RETURNING *",
        (branch_id, notice_id, kind.value, ledger_id, member_id, objector_id, target, reason, _iso(at), source.value),
    ) as cursor:
        row = await cursor.fetchone()
    return _objection(row) if row else None


async def objection(conn: Connection, objection_id: int) -> Objection | None:
    async with conn.execute("SELECT * FROM objections WHERE id = ?", (objection_id,)) as cursor:
        row = await cursor.fetchone()
    return _objection(row) if row else None


async def objection_by_target(conn: Connection, notice_id: int, objector_id: int, target: str) -> Objection | None:
    async with conn.execute(
        "SELECT * FROM objections WHERE notice_id = ? AND objector_id = ? AND target = ?", (notice_id, objector_id, target)
    ) as cursor:
        row = await cursor.fetchone()
    return _objection(row) if row else None


async def objections_of_notice(conn: Connection, notice_id: int) -> list[Objection]:
    async with conn.execute("SELECT * FROM objections WHERE notice_id = ? ORDER BY id", (notice_id,)) as cursor:
        return [_objection(r) for r in await cursor.fetchall()]


async def open_objections(conn: Connection, branch_id: int) -> list[Objection]:
    async with conn.execute(
        "SELECT * FROM objections WHERE branch_id = ? AND status = 'open' ORDER BY id", (branch_id,)
    ) as cursor:
        return [_objection(r) for r in await cursor.fetchall()]


async def decide(conn: Connection, objection_id: int, status: ObjectionStatus, decided_by: int, at: datetime,
                 reversal_id: int | None = None) -> bool:
    """open → decided, once; False when it was already decided (a second tap, another decider)."""
    cursor = await conn.execute(
        "UPDATE objections SET status = ?, decided_by = ?, decided_at = ?, reversal_id = ? WHERE id = ? AND status = 'open'",
        (status.value, decided_by, _iso(at), reversal_id, objection_id),
    )
    return cursor.rowcount == 1


async def set_reversal(conn: Connection, objection_id: int, reversal_id: int) -> None:
    await conn.execute("UPDATE objections SET reversal_id = ? WHERE id = ? AND reversal_id IS NULL", (reversal_id, objection_id))


async def appeal(conn: Connection, objection_id: int, appealed_by: int, reason: str, at: datetime) -> bool:
    """Flag a decided objection as appealed upward, once."""
    cursor = await conn.execute(
        "UPDATE objections SET appealed_by = ?, appealed_at = ?, appeal_reason = ?"
        " WHERE id = ? AND status != 'open' AND appealed_at IS NULL",
        (appealed_by, _iso(at), reason, objection_id),
    )
    return cursor.rowcount == 1


async def add_message(conn: Connection, objection_id: int, chat_id: int, message_id: int) -> None:
    await conn.execute(
        "INSERT INTO objection_messages (objection_id, chat_id, message_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (objection_id, chat_id, message_id),
    )


async def messages(conn: Connection, objection_id: int) -> list[tuple[int, int]]:
    async with conn.execute(
        "SELECT chat_id, message_id FROM objection_messages WHERE objection_id = ? ORDER BY message_id", (objection_id,)
    ) as cursor:
        return [(int(r[0]), int(r[1])) for r in await cursor.fetchall()]


# --- the branch's first day ------------------------------------------------------------------------


async def earliest_join(conn: Connection, branch_id: int) -> date | None:
    """The first day anyone joined the branch (with created_at, where the branch's notices may start)."""
    async with conn.execute(
        "SELECT MIN(joined_on) FROM members WHERE branch_id = ? AND joined_on IS NOT NULL", (branch_id,)
    ) as cursor:
        row = await cursor.fetchone()
    return date.fromisoformat(row[0]) if row and row[0] else None


async def last_ledger_id(conn: Connection, branch_id: int) -> int:
    """The branch's newest ledger row (0 for none): what a notice recorded now sees."""
    async with conn.execute("SELECT COALESCE(MAX(id), 0) FROM ledger WHERE branch_id = ?", (branch_id,)) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def ledger_of_branch(conn: Connection, branch_id: int, first: date, last: date, upto: int) -> list[LedgerRow]:
    """The branch's rows dated from ``first`` to ``last`` written up to row ``upto`` (reversals included, for the scoring)."""
    async with conn.execute(
        "SELECT * FROM ledger WHERE branch_id = ? AND occurred_on >= ? AND occurred_on <= ? AND id <= ? ORDER BY id",
        (branch_id, first.isoformat(), last.isoformat(), upto),
    ) as cursor:
        return [LedgerRow(**row_dict(r)) for r in await cursor.fetchall()]


async def written_between(conn: Connection, branch_id: int, after: int, upto: int, dated_until: date) -> list[LedgerRow]:
    """Rows written after row ``after`` up to row ``upto`` and dated on or before ``dated_until``."""
    async with conn.execute(
        "SELECT * FROM ledger WHERE branch_id = ? AND id > ? AND id <= ? AND occurred_on <= ? ORDER BY occurred_on, id",
        (branch_id, after, upto, dated_until.isoformat()),
    ) as cursor:
        return [LedgerRow(**row_dict(r)) for r in await cursor.fetchall()]


async def reversed_upto(conn: Connection, row_ids: list[int], upto: int) -> set[int]:
    """Which of these rows a row written up to ``upto`` reverses."""
    if not row_ids:
        return set()
    marks = ", ".join("?" for _ in row_ids)
    async with conn.execute(
        f"SELECT reverses_id FROM ledger WHERE reverses_id IN ({marks}) AND id <= ?", (*row_ids, upto)
    ) as cursor:
        return {int(r[0]) for r in await cursor.fetchall()}
