"""Towns, their administrators, join codes, the dashboard's aggregates and town-level sends.

The dashboard reads a whole town in a fixed handful of grouped queries (never one query per branch),
so a county of hundreds of branches costs the same number of round trips as a town of three.
"""

from __future__ import annotations

from datetime import datetime

from bot.domain.records import Branch
from bot.domain.town import Town, TownAdmin, TownCode
from storage._util import row_dict, utcnow
from storage.db import Connection


def _town(row) -> Town:
    return Town(**row_dict(row))


# --- towns ------------------------------------------------------------------------------------------


async def create(conn: Connection, *, name: str, timezone: str, language: str, created_by: int) -> Town | None:
    """The new town; None when a town of that name exists (a repeated command changes nothing)."""
    async with conn.execute(
        "INSERT INTO towns (name, timezone, language, created_by, created_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (name) DO NOTHING RETURNING *",
        (name, timezone, language, created_by, utcnow()),
    ) as cursor:
        row = await cursor.fetchone()
    return _town(row) if row else None


async def by_id(conn: Connection, town_id: int) -> Town | None:
    async with conn.execute("SELECT * FROM towns WHERE id = ?", (town_id,)) as cursor:
        row = await cursor.fetchone()
    return _town(row) if row else None


async def by_name(conn: Connection, name: str) -> Town | None:
    async with conn.execute("SELECT * FROM towns WHERE name = ?", (name,)) as cursor:
        row = await cursor.fetchone()
    return _town(row) if row else None


async def all_towns(conn: Connection) -> list[Town]:
    async with conn.execute("SELECT * FROM towns ORDER BY id") as cursor:
        return [_town(r) for r in await cursor.fetchall()]


async def town_of_branch(conn: Connection, branch_id: int) -> Town | None:
    """The town the branch belongs to, if any."""
    async with conn.execute(
        "SELECT t.* FROM towns t JOIN branches b ON b.town_id = t.id WHERE b.id = ?", (branch_id,)
    ) as cursor:
        row = await cursor.fetchone()
    return _town(row) if row else None


async def branches(conn: Connection, town_id: int) -> list[Branch]:
    async with conn.execute("SELECT * FROM branches WHERE town_id = ? ORDER BY title, id", (town_id,)) as cursor:
        return [Branch(**row_dict(r)) for r in await cursor.fetchall()]


async def branch_counts(conn: Connection) -> dict[int, int]:
    async with conn.execute("SELECT town_id, count(*) FROM branches WHERE town_id IS NOT NULL GROUP BY town_id") as cursor:
        return {int(r[0]): int(r[1]) for r in await cursor.fetchall()}


async def join(conn: Connection, branch_id: int, town_id: int) -> bool:
    """The branch joins the town, once: False when it already belongs to a town."""
    cursor = await conn.execute("UPDATE branches SET town_id = ? WHERE id = ? AND town_id IS NULL", (town_id, branch_id))
    return cursor.rowcount == 1


async def detach(conn: Connection, branch_id: int, town_id: int) -> bool:
    cursor = await conn.execute("UPDATE branches SET town_id = NULL WHERE id = ? AND town_id = ?", (branch_id, town_id))
    return cursor.rowcount == 1


# --- administrators ---------------------------------------------------------------------------------


async def add_admin(conn: Connection, town_id: int, user_id: int, name: str | None, added_by: int) -> bool:
    """True when added; False when the user already administers the town."""
    cursor = await conn.execute(
        "INSERT INTO town_admins (town_id, user_id, name, added_by, added_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (town_id, user_id) DO NOTHING",
        (town_id, user_id, name, added_by, utcnow()),
    )
    return cursor.rowcount == 1


async def remove_admin(conn: Connection, town_id: int, user_id: int) -> bool:
    cursor = await conn.execute("DELETE FROM town_admins WHERE town_id = ? AND user_id = ?", (town_id, user_id))
    return cursor.rowcount == 1


async def is_admin(conn: Connection, town_id: int, user_id: int) -> bool:
    async with conn.execute("SELECT 1 FROM town_admins WHERE town_id = ? AND user_id = ?", (town_id, user_id)) as cursor:
        return await cursor.fetchone() is not None


async def admins(conn: Connection, town_id: int) -> list[TownAdmin]:
    async with conn.execute("SELECT * FROM town_admins WHERE town_id = ? ORDER BY added_at, user_id", (town_id,)) as cursor:
        return [TownAdmin(**row_dict(r)) for r in await cursor.fetchall()]


async def towns_of_admin(conn: Connection, user_id: int) -> list[Town]:
    async with conn.execute(
        "SELECT t.* FROM towns t JOIN town_admins a ON a.town_id = t.id WHERE a.user_id = ? ORDER BY t.name, t.id", (user_id,)
    ) as cursor:
        return [_town(r) for r in await cursor.fetchall()]


async def set_admin_reachable(conn: Connection, town_id: int, user_id: int, reachable: bool) -> None:
    await conn.execute("UPDATE town_admins SET reachable = ? WHERE town_id = ? AND user_id = ?", (int(reachable), town_id, user_id))


async def set_admin_reachable_user(conn: Connection, user_id: int, reachable: bool) -> None:
    """The user wrote to the bot again: reachable in every town they administer."""
    await conn.execute("UPDATE town_admins SET reachable = ? WHERE user_id = ? AND reachable != ?", (int(reachable), user_id, int(reachable)))


# --- join codes -------------------------------------------------------------------------------------


async def add_code(conn: Connection, *, code: str, town_id: int, created_by: int, expires_at: datetime) -> bool:
    cursor = await conn.execute(
        "INSERT INTO town_codes (code, town_id, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (code) DO NOTHING",
        (code, town_id, created_by, utcnow(), expires_at.isoformat(timespec="seconds")),
    )
    return cursor.rowcount == 1


async def code(conn: Connection, code: str) -> TownCode | None:
    async with conn.execute("SELECT * FROM town_codes WHERE code = ?", (code,)) as cursor:
        row = await cursor.fetchone()
    return TownCode(**row_dict(row)) if row else None


async def use_code(conn: Connection, code: str, branch_id: int, now: datetime) -> int | None:
    """Spend the code for the branch, once: the town's id, or None (used, expired or unknown)."""
    async with conn.execute(
        "UPDATE town_codes SET used_by_branch = ?, used_at = ?"
        " WHERE code = ? AND used_by_branch IS NULL AND expires_at > ? RETURNING town_id",
        (branch_id, utcnow(), code, now.isoformat(timespec="seconds")),
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else None


# --- the dashboard: one grouped query per figure, for the whole town -----------------------------------


async def scored_counts(conn: Connection, town_id: int) -> dict[int, int]:
    async with conn.execute(
        "SELECT m.branch_id, count(*) FROM members m JOIN branches b ON b.id = m.branch_id"
        " WHERE b.town_id = ? AND m.status = 'approved' AND m.state != 'exempt' GROUP BY m.branch_id",
        (town_id,),
    ) as cursor:
        return {int(r[0]): int(r[1]) for r in await cursor.fetchall()}


async def pending_declarations(conn: Connection, town_id: int) -> dict[int, tuple[int, str]]:
    """branch id → (declarations waiting, the oldest's created_at)."""
    async with conn.execute(
        "SELECT d.branch_id, count(*), min(d.created_at) FROM declarations d JOIN branches b ON b.id = d.branch_id"
        " WHERE b.town_id = ? AND d.status = 'pending' GROUP BY d.branch_id",
        (town_id,),
    ) as cursor:
        return {int(r[0]): (int(r[1]), str(r[2])) for r in await cursor.fetchall()}


async def notices_for(conn: Connection, town_id: int, period_keys: set[str]) -> dict[tuple[int, str], tuple[bool, bool]]:
    """(branch id, period key) → (late, sent) for the town's notices of the given periods."""
    if not period_keys:
        return {}
    marks = ", ".join("?" for _ in period_keys)
    async with conn.execute(
        f"SELECT n.branch_id, n.period_key, n.late, n.sent_at FROM notices n JOIN branches b ON b.id = n.branch_id"
        f" WHERE b.town_id = ? AND n.period_key IN ({marks})",
        (town_id, *sorted(period_keys)),
    ) as cursor:
        return {(int(r[0]), str(r[1])): (bool(r[2]), r[3] is not None) for r in await cursor.fetchall()}


async def unconfirmed_counts(conn: Connection, town_id: int, period_keys: set[str]) -> dict[tuple[int, str], int]:
    """(branch id, period key) → member lines of that period's notice neither confirmed nor disputed, for the
    given periods only (the dashboard asks for the period each branch's line names, never a sum of periods)."""
    if not period_keys:
        return {}
    marks = ", ".join("?" for _ in period_keys)
    async with conn.execute(
        "SELECT n.branch_id, n.period_key, count(*) FROM notice_members nm JOIN notices n ON n.id = nm.notice_id"
        " JOIN branches b ON b.id = n.branch_id"
        f" WHERE b.town_id = ? AND nm.status = 'pending' AND n.period_key IN ({marks}) GROUP BY n.branch_id, n.period_key",
        (town_id, *sorted(period_keys)),
    ) as cursor:
        return {(int(r[0]), str(r[1])): int(r[2]) for r in await cursor.fetchall()}


async def open_objection_counts(conn: Connection, town_id: int) -> dict[int, int]:
    async with conn.execute(
        "SELECT o.branch_id, count(*) FROM objections o JOIN branches b ON b.id = o.branch_id"
        " WHERE b.town_id = ? AND o.status = 'open' GROUP BY o.branch_id",
        (town_id,),
    ) as cursor:
        return {int(r[0]): int(r[1]) for r in await cursor.fetchall()}


async def appeal_counts(conn: Connection, town_id: int) -> dict[int, int]:
    """Open appeals (申诉) per branch: those this town has not decided yet, and those whose ordered
    correction the branch has not written yet (town_appeals, migration 0017). Decided and closed
    appeals, and a branch's appeals to another town (before it joined this one), are not counted; those it
    made while in no town were forwarded to this town when it joined (town_review.forward_branch_appeals)."""
    async with conn.execute(
        "SELECT a.branch_id, count(*) FROM town_appeals a JOIN branches b ON b.id = a.branch_id"
        " WHERE b.town_id = ? AND a.town_id = b.town_id AND a.status IN ('open', 'correction_ordered')"
        " GROUP BY a.branch_id",
        (town_id,),
    ) as cursor:
        return {int(r[0]): int(r[1]) for r in await cursor.fetchall()}


async def latest_grades(conn: Connection, town_id: int) -> dict[int, tuple[int, bool, dict[str, int]]]:
    """branch id → (the latest year with results, final?, band code → count) from the current rounds."""
    async with conn.execute(
        "SELECT r.branch_id, r.year, r.status, g.band_code, count(*) FROM grade_rounds r"
        " JOIN branches b ON b.id = r.branch_id"
        " JOIN grade_results g ON g.round_id = r.id"
        "  AND g.stage = CASE WHEN r.status = 'final' THEN 'final' ELSE 'published' END"
        " WHERE b.town_id = ? AND r.status != 'reopened' AND g.graded = 1"
        " GROUP BY r.branch_id, r.year, r.status, g.band_code",
        (town_id,),
    ) as cursor:
        found = await cursor.fetchall()
    result: dict[int, tuple[int, bool, dict[str, int]]] = {}
    for branch_id, year, status, band, number in found:
        branch_id, year = int(branch_id), int(year)
        current = result.get(branch_id)
        if current is None or year > current[0]:
            current = result[branch_id] = (year, status == "final", {})
        if year == current[0]:
            current[2][str(band or "")] = current[2].get(str(band or ""), 0) + int(number)
    return result


# --- one branch, read-only ----------------------------------------------------------------------------


async def latest_year_scores(conn: Connection, branch_id: int) -> tuple[dict | None, dict[int, str]]:
    """The branch's last sent notice (period_key, first_day, closes_at) and each listed member's year figure
    as that notice published it (the town reads what the branch published, never the ledger)."""
    async with conn.execute(
        "SELECT id, period_key, first_day, closes_at FROM notices WHERE branch_id = ? AND sent_at IS NOT NULL"
        " ORDER BY last_day DESC, id DESC LIMIT 1",
        (branch_id,),
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return None, {}
    notice = row_dict(row)
    async with conn.execute("SELECT member_id, year_score FROM notice_members WHERE notice_id = ?", (notice.pop("id"),)) as cursor:
        return notice, {int(r[0]): str(r[1]) for r in await cursor.fetchall()}


async def recent_notices(conn: Connection, branch_id: int, limit: int = 3) -> list[dict]:
    async with conn.execute(
        "SELECT n.period_key, n.posted_at, n.sent_at, n.late, n.closes_at, n.signed_at, m.name AS signer"
        " FROM notices n LEFT JOIN members m ON m.id = n.signed_by WHERE n.branch_id = ?"
        " ORDER BY n.last_day DESC, n.id DESC LIMIT ?",
        (branch_id, limit),
    ) as cursor:
        return [row_dict(r) for r in await cursor.fetchall()]


async def pending_joins(conn: Connection, branch_id: int) -> int:
    async with conn.execute("SELECT count(*) FROM members WHERE branch_id = ? AND status = 'pending'", (branch_id,)) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


# --- reminders and the digest ---------------------------------------------------------------------------


async def overdue_declarations(conn: Connection, branch_id: int, before: datetime) -> list[tuple[int, str]]:
    """(id, created_at) of the branch's declarations pending since before ``before``, oldest first."""
    async with conn.execute(
        "SELECT id, created_at FROM declarations WHERE branch_id = ? AND status = 'pending' AND created_at < ?"
        " ORDER BY created_at, id",
        (branch_id, before.isoformat(timespec="seconds")),
    ) as cursor:
        return [(int(r[0]), str(r[1])) for r in await cursor.fetchall()]


async def month_figures(conn: Connection, town_id: int, first_day: str, last_day: str,
                        start: str, end: str) -> dict[int, dict[str, int]]:
    """Per branch, the month's activity: declarations made and decided, ledger rows dated in the month,
    and whether its notice was posted late. ``first_day``/``last_day`` are dates; ``start``/``end`` UTC times."""
    figures: dict[int, dict[str, int]] = {}

    def put(branch_id, name: str, value) -> None:
        figures.setdefault(int(branch_id), {})[name] = int(value or 0)

    async with conn.execute(
        "SELECT d.branch_id, count(*), sum(CASE WHEN d.status = 'approved' THEN 1 ELSE 0 END),"
        " sum(CASE WHEN d.status = 'rejected' THEN 1 ELSE 0 END) FROM declarations d JOIN branches b ON b.id = d.branch_id"
        " WHERE b.town_id = ? AND d.created_at >= ? AND d.created_at < ? GROUP BY d.branch_id",
        (town_id, start, end),
    ) as cursor:
        for branch_id, made, approved, rejected in await cursor.fetchall():
            put(branch_id, "declared", made)
            put(branch_id, "approved", approved)
            put(branch_id, "rejected", rejected)
    # "记分 N 条" as a town administrator reads it: the entries recorded about the branch's members that month
    # that still stand — a deed approved, a /record, a value a person gave in the monthly assessment (a 0 given
    # by the recorder is a judgement too), a correction, and the bot's own rows that move points (a roll call's
    # or unpaid dues' deduction). Not counted: the assessment defaults the bot writes at the notice for everyone
    # nobody assessed (source 'automatic', reference 'assess:…': written because the branch did NOT assess),
    # the bot's rows worth nothing (value 0), reversing rows and the rows they reversed (a withdrawn entry, an
    # assessment's earlier revision). A branch with no real activity shows 0, not one row per member.
    async with conn.execute(
        "SELECT l.branch_id, count(*) FROM ledger l JOIN branches b ON b.id = l.branch_id"
        " WHERE b.town_id = ? AND l.occurred_on >= ? AND l.occurred_on <= ? AND l.reverses_id IS NULL"
        " AND NOT (l.source = 'automatic' AND (l.reference LIKE ? OR CAST(l.value AS NUMERIC) = 0))"
        " AND NOT EXISTS (SELECT 1 FROM ledger r WHERE r.reverses_id = l.id) GROUP BY l.branch_id",
        (town_id, first_day, last_day, "assess:%"),
    ) as cursor:
        for branch_id, number in await cursor.fetchall():
            put(branch_id, "entries", number)
    async with conn.execute(
        "SELECT o.branch_id, count(*) FROM objections o JOIN branches b ON b.id = o.branch_id"
        " WHERE b.town_id = ? AND o.created_at >= ? AND o.created_at < ? GROUP BY o.branch_id",
        (town_id, start, end),
    ) as cursor:
        for branch_id, number in await cursor.fetchall():
            put(branch_id, "objections", number)
    return figures


async def digest_listers(conn: Connection) -> list[tuple[Town, int]]:
    """Every town with branches, and the branch that lists its digest (the lowest id), in one query."""
    async with conn.execute(
        "SELECT t.*, (SELECT MIN(b.id) FROM branches b WHERE b.town_id = t.id) AS lister FROM towns t ORDER BY t.id"
    ) as cursor:
        found = []
        for row in await cursor.fetchall():
            data = row_dict(row)
            lister = data.pop("lister")
            if lister is not None:
                found.append((Town(**data), int(lister)))
        return found


async def effect_states(conn: Connection, kind: str, keys: list[str]) -> dict[tuple[int, str], tuple[str, int]]:
    """(branch id, key) → (outcome, attempts) of the scheduled effects of ``kind`` with these keys."""
    if not keys:
        return {}
    marks = ", ".join("?" for _ in keys)
    async with conn.execute(
        f"SELECT branch_id, key, outcome, attempts FROM effects WHERE kind = ? AND key IN ({marks})", (kind, *keys)
    ) as cursor:
        return {(int(r[0]), str(r[1])): (str(r[2]), int(r[3])) for r in await cursor.fetchall()}


async def claim_send(conn: Connection, town_id: int, kind: str, key: str, user_id: int) -> bool:
    """True for the first claimant of this town send to this person; everyone after gets False."""
    cursor = await conn.execute(
        "INSERT INTO town_sends (town_id, kind, key, user_id, claimed_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (town_id, kind, key, user_id) DO NOTHING",
        (town_id, kind, key, user_id, utcnow()),
    )
    return cursor.rowcount == 1


async def finish_send(conn: Connection, town_id: int, kind: str, key: str, user_id: int, outcome: str) -> None:
    await conn.execute(
        "UPDATE town_sends SET outcome = ? WHERE town_id = ? AND kind = ? AND key = ? AND user_id = ?",
        (outcome, town_id, kind, key, user_id),
    )


async def release_send(conn: Connection, town_id: int, kind: str, key: str, user_id: int) -> None:
    """A send that failed for a passing reason (a timeout): it may be tried again."""
    await conn.execute(
        "DELETE FROM town_sends WHERE town_id = ? AND kind = ? AND key = ? AND user_id = ? AND outcome = 'claimed'",
        (town_id, kind, key, user_id),
    )
