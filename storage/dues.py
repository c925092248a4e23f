"""Party dues: monthly statuses, members' payment reports, month closes; and since when a branch keeps
dues and migrant reports (shared by both features)."""

from __future__ import annotations

from decimal import Decimal

from bot.domain.dues import DuesRecord, DuesReport
from storage._util import row_dict, utcnow
from storage.db import Connection

_NOT_CLOSED = "NOT EXISTS (SELECT 1 FROM dues_closed c WHERE c.branch_id = ? AND c.month = ?)"


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _record(row) -> DuesRecord:
    return DuesRecord(**row_dict(row))


def _report(row) -> DuesReport:
    data = row_dict(row)
    data.pop("client_key", None)
    return DuesReport(**data)


# --- since when -------------------------------------------------------------------------------


TRACKING_TABLES = {"dues": "dues_tracking", "migrants": "migrant_tracking"}


async def tracking_since(conn: Connection, branch_id: int, feature: str = "dues") -> tuple[str | None, str | None]:
    """(when a branch that existed before ``feature`` ("dues" or "migrants") started keeping it, UTC; the
    branch's first membership day, branch-local): the first for a branch set up before the feature, else
    the second."""
    table = TRACKING_TABLES[feature]
    async with conn.execute(f"SELECT since FROM {table} WHERE branch_id = ?", (branch_id,)) as cursor:
        row = await cursor.fetchone()
    async with conn.execute(
        "SELECT min(joined_on) FROM members WHERE branch_id = ? AND joined_on IS NOT NULL", (branch_id,)
    ) as cursor:
        first = await cursor.fetchone()
    return (row[0] if row else None), (first[0] if first else None)


# --- statuses ---------------------------------------------------------------------------------


async def set_status(conn: Connection, *, branch_id: int, member_id: int, month: str, status: str,
                     amount: Decimal | None, marked_by: int | None, keep_amount: bool = True) -> bool:
    """Record a status for an open month (a repeat is harmless); False when the month is closed."""
    amount_sql = "COALESCE(excluded.amount, dues.amount)" if keep_amount else "excluded.amount"
    cursor = await conn.execute(
        "INSERT INTO dues (branch_id, member_id, month, status, amount, marked_by, marked_at)"
        f" SELECT ?, ?, ?, ?, ?, ?, ? WHERE {_NOT_CLOSED}"
        " ON CONFLICT (member_id, month) DO UPDATE SET status = excluded.status,"
        f" amount = {amount_sql}, marked_by = excluded.marked_by, marked_at = excluded.marked_at",
        (branch_id, member_id, month, status, _amount(amount), marked_by, utcnow(), branch_id, month),
    )
    return cursor.rowcount == 1


async def mark_unrecorded(conn: Connection, *, branch_id: int, member_ids: list[int], month: str, status: str,
                          marked_by: int | None, guard: bool = True) -> list[int]:
    """Give ``status`` to those of ``member_ids`` with nothing recorded yet; who got it.

    With ``guard`` only while the month is open; the close itself (``guard=False``) fills in "unpaid"
    in the same transaction that closes the month.
    """
    marked = []
    condition = _NOT_CLOSED if guard else "TRUE"
    for member_id in member_ids:
        cursor = await conn.execute(
            "INSERT INTO dues (branch_id, member_id, month, status, marked_by, marked_at)"
            f" SELECT ?, ?, ?, ?, ?, ? WHERE {condition} ON CONFLICT (member_id, month) DO NOTHING",
            (branch_id, member_id, month, status, marked_by, utcnow(), *((branch_id, month) if guard else ())),
        )
        if cursor.rowcount == 1:
            marked.append(member_id)
    return marked


async def clear_status(conn: Connection, *, branch_id: int, member_id: int, month: str) -> bool:
    cursor = await conn.execute(
        f"DELETE FROM dues WHERE member_id = ? AND month = ? AND {_NOT_CLOSED}", (member_id, month, branch_id, month)
    )
    return cursor.rowcount == 1


async def status_of(conn: Connection, member_id: int, month: str) -> DuesRecord | None:
    async with conn.execute("SELECT * FROM dues WHERE member_id = ? AND month = ?", (member_id, month)) as cursor:
        row = await cursor.fetchone()
    return _record(row) if row else None


async def statuses(conn: Connection, branch_id: int, month: str) -> dict[int, DuesRecord]:
    async with conn.execute("SELECT * FROM dues WHERE branch_id = ? AND month = ?", (branch_id, month)) as cursor:
        return {int(r["member_id"]): _record(r) for r in await cursor.fetchall()}


async def set_ledger(conn: Connection, dues_id: int, ledger_id: int | None) -> None:
    await conn.execute("UPDATE dues SET ledger_id = ? WHERE id = ?", (ledger_id, dues_id))


async def insert_corrected(conn: Connection, *, branch_id: int, member_id: int, month: str, status: str,
                           amount: Decimal | None, marked_by: int) -> bool:
    """A correction for a closed month where nothing had been recorded for the member: revision 1."""
    cursor = await conn.execute(
        "INSERT INTO dues (branch_id, member_id, month, status, amount, marked_by, marked_at, revision)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT (member_id, month) DO NOTHING",
        (branch_id, member_id, month, status, _amount(amount), marked_by, utcnow()),
    )
    return cursor.rowcount == 1


async def revise(conn: Connection, dues_id: int, *, revision: int, status: str, amount: Decimal | None,
                 marked_by: int) -> bool:
    """A correction after the close: only from the revision the corrector saw (two at once: one wins)."""
    cursor = await conn.execute(
        "UPDATE dues SET status = ?, amount = ?, marked_by = ?, marked_at = ?, revision = revision + 1"
        " WHERE id = ? AND revision = ?",
        (status, _amount(amount), marked_by, utcnow(), dues_id, revision),
    )
    return cursor.rowcount == 1


# --- closes -----------------------------------------------------------------------------------


async def close(conn: Connection, branch_id: int, month: str) -> bool:
    """Close the month once; False when it was already closed."""
    cursor = await conn.execute(
        "INSERT INTO dues_closed (branch_id, month, closed_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (branch_id, month, utcnow()),
    )
    return cursor.rowcount == 1


async def is_closed(conn: Connection, branch_id: int, month: str) -> bool:
    async with conn.execute("SELECT 1 FROM dues_closed WHERE branch_id = ? AND month = ?", (branch_id, month)) as cursor:
        return await cursor.fetchone() is not None


async def closed_months(conn: Connection, branch_id: int) -> set[str]:
    async with conn.execute("SELECT month FROM dues_closed WHERE branch_id = ?", (branch_id,)) as cursor:
        return {r[0] for r in await cursor.fetchall()}


# --- members' reports -------------------------------------------------------------------------


async def create_report(conn: Connection, *, branch_id: int, member_id: int, month: str, amount: Decimal | None,
                        client_key: str, created_at: str) -> tuple[DuesReport | None, bool]:
    """(report, created_now); (None, False) when another report for that month is already waiting.

    ``created_at`` comes from the service's clock: it decides whether the payment was on time.
    """
    async with conn.execute(
        "INSERT INTO dues_reports (branch_id, member_id, month, amount, client_key, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING *",
        (branch_id, member_id, month, _amount(amount), client_key, created_at),
    ) as cursor:
        row = await cursor.fetchone()
    if row:
        return _report(row), True
    async with conn.execute(
        "SELECT * FROM dues_reports WHERE member_id = ? AND client_key = ?", (member_id, client_key)
    ) as cursor:
        row = await cursor.fetchone()
    return (_report(row), False) if row else (None, False)


async def report_by_id(conn: Connection, report_id: int) -> DuesReport | None:
    async with conn.execute("SELECT * FROM dues_reports WHERE id = ?", (report_id,)) as cursor:
        row = await cursor.fetchone()
    return _report(row) if row else None


async def pending_report(conn: Connection, member_id: int, month: str) -> DuesReport | None:
    async with conn.execute(
        "SELECT * FROM dues_reports WHERE member_id = ? AND month = ? AND status = 'pending'", (member_id, month)
    ) as cursor:
        row = await cursor.fetchone()
    return _report(row) if row else None


async def pending_reports(conn: Connection, branch_id: int, month: str) -> dict[int, DuesReport]:
    async with conn.execute(
        "SELECT * FROM dues_reports WHERE branch_id = ? AND month = ? AND status = 'pending'", (branch_id, month)
    ) as cursor:
        return {int(r["member_id"]): _report(r) for r in await cursor.fetchall()}


async def decide_report(conn: Connection, report_id: int, status: str, decided_by: int) -> bool:
    """pending → confirmed | rejected, once."""
    cursor = await conn.execute(
        "UPDATE dues_reports SET status = ?, decided_by = ?, decided_at = ? WHERE id = ? AND status = 'pending'",
        (status, decided_by, utcnow(), report_id),
    )
    return cursor.rowcount == 1


async def add_report_message(conn: Connection, report_id: int, chat_id: int, message_id: int) -> None:
    await conn.execute(
        "INSERT INTO dues_report_messages (report_id, chat_id, message_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (report_id, chat_id, message_id),
    )


async def report_messages(conn: Connection, report_id: int) -> list[tuple[int, int]]:
    async with conn.execute(
        "SELECT chat_id, message_id FROM dues_report_messages WHERE report_id = ?", (report_id,)
    ) as cursor:
        return [(int(r[0]), int(r[1])) for r in await cursor.fetchall()]
