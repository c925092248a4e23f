"""Migrant members' quarterly reports, their review, quarter closes and missing reports."""

from __future__ import annotations

from bot.domain.dues import MigrantReport
from storage._util import row_dict, utcnow
from storage.db import Connection

LIVE = "('submitted', 'accepted')"


def _report(row) -> MigrantReport:
    data = row_dict(row)
    data.pop("client_key", None)
    return MigrantReport(**data)


async def create(conn: Connection, *, branch_id: int, member_id: int, quarter: str, body: str,
                 photo_file_id: str | None, client_key: str) -> tuple[MigrantReport | None, bool]:
    """(report, created_now) for an open quarter, or for a closed one where the member's report was
    returned after the close and the quarter is not recorded missing for them (see ``revisable``);
    (None, False) otherwise, or when a live report (sent or accepted) is already there. A replayed
    confirmation finds its own row."""
    async with conn.execute(
        "INSERT INTO migrant_reports (branch_id, member_id, quarter, body, photo_file_id, client_key, created_at)"
        " SELECT ?, ?, ?, ?, ?, ?, ?"
        " WHERE NOT EXISTS (SELECT 1 FROM migrant_closed c WHERE c.branch_id = ? AND c.quarter = ?)"
        " OR (EXISTS (SELECT 1 FROM migrant_reports x WHERE x.member_id = ? AND x.quarter = ? AND x.status = 'returned')"
        " AND NOT EXISTS (SELECT 1 FROM migrant_missing m WHERE m.member_id = ? AND m.quarter = ?))"
        " ON CONFLICT DO NOTHING RETURNING *",
        (branch_id, member_id, quarter, body, photo_file_id, client_key, utcnow(), branch_id, quarter,
         member_id, quarter, member_id, quarter),
    ) as cursor:
        row = await cursor.fetchone()
    if row:
        return _report(row), True
    async with conn.execute(
        "SELECT * FROM migrant_reports WHERE member_id = ? AND client_key = ?", (member_id, client_key)
    ) as cursor:
        row = await cursor.fetchone()
    return (_report(row), False) if row else (None, False)


async def revisable(conn: Connection, branch_id: int, member_id: int | None = None) -> list[MigrantReport]:
    """Reports returned after their quarter closed, still to be sent again: the latest report of a
    member for a closed quarter is a returned one (so nothing live) and the quarter is not recorded
    missing for them. Oldest quarter first; one member's only when ``member_id`` is given."""
    async with conn.execute(
        "SELECT r.* FROM migrant_reports r"
        " JOIN migrant_closed c ON c.branch_id = r.branch_id AND c.quarter = r.quarter"
        " WHERE r.branch_id = ? AND (CAST(? AS BIGINT) IS NULL OR r.member_id = ?) AND r.status = 'returned'"
        " AND r.id = (SELECT max(x.id) FROM migrant_reports x WHERE x.member_id = r.member_id AND x.quarter = r.quarter)"
        " AND NOT EXISTS (SELECT 1 FROM migrant_missing m WHERE m.member_id = r.member_id AND m.quarter = r.quarter)"
        " ORDER BY r.quarter, r.member_id",
        (branch_id, member_id, member_id),
    ) as cursor:
        return [_report(r) for r in await cursor.fetchall()]


async def by_id(conn: Connection, report_id: int) -> MigrantReport | None:
    async with conn.execute("SELECT * FROM migrant_reports WHERE id = ?", (report_id,)) as cursor:
        row = await cursor.fetchone()
    return _report(row) if row else None


async def live_of(conn: Connection, member_id: int, quarter: str) -> MigrantReport | None:
    async with conn.execute(
        f"SELECT * FROM migrant_reports WHERE member_id = ? AND quarter = ? AND status IN {LIVE}", (member_id, quarter)
    ) as cursor:
        row = await cursor.fetchone()
    return _report(row) if row else None


async def latest_by_member(conn: Connection, branch_id: int, quarter: str) -> dict[int, MigrantReport]:
    """Each member's latest report for the quarter (a live one wins over an older returned one)."""
    async with conn.execute(
        "SELECT * FROM migrant_reports WHERE branch_id = ? AND quarter = ? ORDER BY id", (branch_id, quarter)
    ) as cursor:
        found: dict[int, MigrantReport] = {}
        for row in await cursor.fetchall():
            report = _report(row)
            current = found.get(report.member_id)
            if current is None or current.status.value == "returned" or report.status.value != "returned":
                found[report.member_id] = report
        return found


async def review(conn: Connection, report_id: int, *, status: str, reviewed_by: int, reason: str | None) -> bool:
    """submitted → accepted | returned, once."""
    cursor = await conn.execute(
        "UPDATE migrant_reports SET status = ?, reviewed_by = ?, reviewed_at = ?, reason = ?"
        " WHERE id = ? AND status = 'submitted'",
        (status, reviewed_by, utcnow(), reason, report_id),
    )
    return cursor.rowcount == 1


async def add_message(conn: Connection, report_id: int, chat_id: int, message_id: int) -> None:
    await conn.execute(
        "INSERT INTO migrant_report_messages (report_id, chat_id, message_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (report_id, chat_id, message_id),
    )


async def messages(conn: Connection, report_id: int) -> list[tuple[int, int]]:
    async with conn.execute(
        "SELECT chat_id, message_id FROM migrant_report_messages WHERE report_id = ?", (report_id,)
    ) as cursor:
        return [(int(r[0]), int(r[1])) for r in await cursor.fetchall()]


# --- quarter closes ---------------------------------------------------------------------------


async def close(conn: Connection, branch_id: int, quarter: str) -> bool:
    cursor = await conn.execute(
        "INSERT INTO migrant_closed (branch_id, quarter, closed_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (branch_id, quarter, utcnow()),
    )
    return cursor.rowcount == 1


async def is_closed(conn: Connection, branch_id: int, quarter: str) -> bool:
    async with conn.execute(
        "SELECT 1 FROM migrant_closed WHERE branch_id = ? AND quarter = ?", (branch_id, quarter)
    ) as cursor:
        return await cursor.fetchone() is not None


async def closed_quarters(conn: Connection, branch_id: int) -> set[str]:
    async with conn.execute("SELECT quarter FROM migrant_closed WHERE branch_id = ?", (branch_id,)) as cursor:
        return {r[0] for r in await cursor.fetchall()}


async def record_missing(conn: Connection, branch_id: int, member_id: int, quarter: str) -> bool:
    cursor = await conn.execute(
        "INSERT INTO migrant_missing (branch_id, member_id, quarter, recorded_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (branch_id, member_id, quarter, utcnow()),
    )
    return cursor.rowcount == 1


async def set_missing_ledger(conn: Connection, member_id: int, quarter: str, ledger_id: int) -> None:
    await conn.execute(
        "UPDATE migrant_missing SET ledger_id = ? WHERE member_id = ? AND quarter = ?", (ledger_id, member_id, quarter)
    )


async def missing(conn: Connection, branch_id: int, quarter: str) -> list[int]:
    async with conn.execute(
        "SELECT member_id FROM migrant_missing WHERE branch_id = ? AND quarter = ? ORDER BY member_id", (branch_id, quarter)
    ) as cursor:
        return [int(r[0]) for r in await cursor.fetchall()]
