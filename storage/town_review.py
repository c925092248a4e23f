"""The town's part in a branch's year: appeals and their decisions, year-end reviews, filings (备案).

Every change is conditional (``WHERE status = ...``) or keyed (UNIQUE + ON CONFLICT DO NOTHING), so a
double tap changes nothing the second time. Migrations 0017, 0020 (closing), 0023 (an appeal again
after its branch left the town: one live appeal per objection, closed ones kept as history).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from bot.domain.grading import GradeResult
from storage._util import row_dict
from storage.db import Connection


class TownAppeal(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    objection_id: int
    branch_id: int
    town_id: int
    appellant_id: int
    reason: str
    status: str  # open | upheld | correction_ordered | corrected | closed (the branch left the town)
    decided_by: int | None = None  # Telegram user id
    decided_at: datetime | None = None
    decision_reason: str | None = None
    target_ledger_id: int | None = None
    correction_kind: str | None = None  # reverse | reinstate
    correction_id: int | None = None
    applied_by: int | None = None
    applied_at: datetime | None = None
    created_at: datetime


class YearReview(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    branch_id: int
    town_id: int
    year: int
    attempt: int
    status: str  # pending | approved | returned | stale | withdrawn (by the secretary) | closed (the branch left the town)
    tie_mask: int
    fingerprint: str
    submitted_by: int
    submitted_at: datetime
    decided_by: int | None = None
    decided_at: datetime | None = None
    reason: str | None = None
    round_id: int | None = None


class Filing(BaseModel):
    model_config = ConfigDict(frozen=True)

    round_id: int
    branch_id: int
    town_id: int
    year: int
    filed_at: datetime
    round_status: str  # final | reopened (the snapshot stays; a re-opened year is filed again when final)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _appeal(row) -> TownAppeal:
    return TownAppeal(**row_dict(row))


def _review(row) -> YearReview:
    data = row_dict(row)
    return YearReview(**{k: v for k, v in data.items() if k in YearReview.model_fields})


# --- appeals -----------------------------------------------------------------------------------------


async def add_appeal(conn: Connection, *, objection_id: int, branch_id: int, town_id: int, appellant_id: int,
                     reason: str, at: datetime) -> TownAppeal | None:
    """The objection's appeal to the town, once: None when the objection already has a live one (open or
    decided; the partial unique index ``town_appeals_live``). Closed appeals do not count."""
    async with conn.execute(
        "INSERT INTO town_appeals (objection_id, branch_id, town_id, appellant_id, reason, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING *",
        (objection_id, branch_id, town_id, appellant_id, reason, _iso(at)),
    ) as cursor:
        row = await cursor.fetchone()
    return _appeal(row) if row else None


async def appeal(conn: Connection, appeal_id: int) -> TownAppeal | None:
    async with conn.execute("SELECT * FROM town_appeals WHERE id = ?", (appeal_id,)) as cursor:
        row = await cursor.fetchone()
    return _appeal(row) if row else None


async def appeal_of_objection(conn: Connection, objection_id: int) -> TownAppeal | None:
    """The objection's live appeal (open or decided; at most one), None when it has none — an appeal
    closed because the branch left the town is history."""
    async with conn.execute(
        "SELECT * FROM town_appeals WHERE objection_id = ? AND status != 'closed'", (objection_id,)
    ) as cursor:
        row = await cursor.fetchone()
    return _appeal(row) if row else None


async def appeals_of_town(conn: Connection, town_id: int, statuses: tuple[str, ...]) -> list[TownAppeal]:
    marks = ", ".join("?" for _ in statuses)
    async with conn.execute(
        f"SELECT * FROM town_appeals WHERE town_id = ? AND status IN ({marks}) ORDER BY id", (town_id, *statuses)
    ) as cursor:
        return [_appeal(r) for r in await cursor.fetchall()]


async def decide_appeal(conn: Connection, appeal_id: int, *, status: str, by: int, at: datetime, reason: str,
                        target_ledger_id: int | None, correction_kind: str | None) -> bool:
    """open → upheld | correction_ordered, once."""
    cursor = await conn.execute(
        "UPDATE town_appeals SET status = ?, decided_by = ?, decided_at = ?, decision_reason = ?, target_ledger_id = ?,"
        " correction_kind = ? WHERE id = ? AND status = 'open'",
        (status, by, _iso(at), reason, target_ledger_id, correction_kind, appeal_id),
    )
    return cursor.rowcount == 1


async def mark_corrected(conn: Connection, appeal_id: int, *, correction_id: int, by: int, at: datetime) -> bool:
    """correction_ordered → corrected (the branch wrote ``correction_id``), once."""
    cursor = await conn.execute(
        "UPDATE town_appeals SET status = 'corrected', correction_id = ?, applied_by = ?, applied_at = ?"
        " WHERE id = ? AND status = 'correction_ordered'",
        (correction_id, by, _iso(at), appeal_id),
    )
    return cursor.rowcount == 1


async def close_appeals_of_branch(conn: Connection, branch_id: int, town_id: int, at: datetime) -> list[TownAppeal]:
    """open → closed for the branch's appeals to this town (the branch left it), once; those closed now."""
    async with conn.execute(
        "UPDATE town_appeals SET status = 'closed', decided_at = ? WHERE branch_id = ? AND town_id = ? AND status = 'open'"
        " RETURNING *",
        (_iso(at), branch_id, town_id),
    ) as cursor:
        return sorted((_appeal(r) for r in await cursor.fetchall()), key=lambda a: a.id)


async def ordered_corrections_of_branch(conn: Connection, branch_id: int, town_id: int) -> list[TownAppeal]:
    """The branch's appeals to this town whose ordered correction the branch has not written yet."""
    async with conn.execute(
        "SELECT * FROM town_appeals WHERE branch_id = ? AND town_id = ? AND status = 'correction_ordered' ORDER BY id",
        (branch_id, town_id),
    ) as cursor:
        return [_appeal(r) for r in await cursor.fetchall()]


async def forward_branch_appeals(conn: Connection, branch_id: int, town_id: int, at: datetime) -> list[TownAppeal]:
    """When the branch joins a town: each of its objections appealed while no town could decide it (the
    objection's appealed_* flag is set and it has no live town appeal) becomes an open appeal to this town,
    with the appellant and reason the member gave. Once: a repeat finds a live appeal and adds nothing (the
    partial unique index ``town_appeals_live`` as well). Returns the appeals created now, by id."""
    async with conn.execute(
        "INSERT INTO town_appeals (objection_id, branch_id, town_id, appellant_id, reason, created_at)"
        " SELECT o.id, o.branch_id, CAST(? AS BIGINT), o.appealed_by, COALESCE(o.appeal_reason, ''), CAST(? AS TEXT)"
        " FROM objections o"
        " WHERE o.branch_id = ? AND o.appealed_at IS NOT NULL AND o.appealed_by IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM town_appeals a WHERE a.objection_id = o.id AND a.status != 'closed')"
        " ORDER BY o.id ON CONFLICT DO NOTHING RETURNING *",
        (town_id, _iso(at), branch_id),
    ) as cursor:
        return sorted((_appeal(r) for r in await cursor.fetchall()), key=lambda a: a.id)


async def reopen_objections(conn: Connection, objection_ids: list[int]) -> list[int]:
    """After their appeals were closed (the branch left the town): the objections lose their appealed_*
    flag, so /appeal may be made again (storage.notices.appeal is conditional on it). Only where the
    objection has no live appeal; who appealed, why and when stays in the closed appeal's row. Returns
    the objections reopened now (a repeat reopens nothing)."""
    if not objection_ids:
        return []
    marks = ", ".join("?" for _ in objection_ids)
    async with conn.execute(
        "UPDATE objections SET appealed_by = NULL, appealed_at = NULL, appeal_reason = NULL"
        f" WHERE id IN ({marks}) AND appealed_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM town_appeals a"
        "  WHERE a.objection_id = objections.id AND a.status != 'closed') RETURNING id",
        tuple(objection_ids),
    ) as cursor:
        return sorted(int(r[0]) for r in await cursor.fetchall())


# --- year-end reviews --------------------------------------------------------------------------------


async def add_review(conn: Connection, *, branch_id: int, town_id: int, year: int, tie_mask: int, fingerprint: str,
                     result: GradeResult, submitted_by: int, at: datetime) -> YearReview | None:
    """The year's next attempt, waiting for the town: None while another attempt of the year waits."""
    async with conn.execute(
        "INSERT INTO year_reviews (branch_id, town_id, year, attempt, tie_mask, fingerprint, result, submitted_by,"
        " submitted_at) VALUES (?, ?, ?, (SELECT COALESCE(MAX(attempt), 0) + 1 FROM year_reviews"
        " WHERE branch_id = ? AND year = ?), ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING *",
        (branch_id, town_id, year, branch_id, year, tie_mask, fingerprint, result.model_dump_json(), submitted_by,
         _iso(at)),
    ) as cursor:
        row = await cursor.fetchone()
    return _review(row) if row else None


async def review(conn: Connection, review_id: int) -> YearReview | None:
    async with conn.execute("SELECT * FROM year_reviews WHERE id = ?", (review_id,)) as cursor:
        row = await cursor.fetchone()
    return _review(row) if row else None


async def review_result(conn: Connection, review_id: int) -> GradeResult | None:
    """The result as the secretary confirmed it (what the town reviews)."""
    async with conn.execute("SELECT result FROM year_reviews WHERE id = ?", (review_id,)) as cursor:
        row = await cursor.fetchone()
    return GradeResult.model_validate_json(row[0]) if row else None


async def latest_review(conn: Connection, branch_id: int, year: int) -> YearReview | None:
    async with conn.execute(
        "SELECT * FROM year_reviews WHERE branch_id = ? AND year = ? ORDER BY attempt DESC LIMIT 1", (branch_id, year)
    ) as cursor:
        row = await cursor.fetchone()
    return _review(row) if row else None


async def reviews_of_town(conn: Connection, town_id: int, statuses: tuple[str, ...]) -> list[YearReview]:
    marks = ", ".join("?" for _ in statuses)
    async with conn.execute(
        f"SELECT * FROM year_reviews WHERE town_id = ? AND status IN ({marks}) ORDER BY id", (town_id, *statuses)
    ) as cursor:
        return [_review(r) for r in await cursor.fetchall()]


async def decide_review(conn: Connection, review_id: int, *, status: str, by: int | None, at: datetime,
                        reason: str | None = None) -> bool:
    """pending → approved | returned | stale | withdrawn, once."""
    cursor = await conn.execute(
        "UPDATE year_reviews SET status = ?, decided_by = ?, decided_at = ?, reason = ? WHERE id = ? AND status = 'pending'",
        (status, by, _iso(at), reason, review_id),
    )
    return cursor.rowcount == 1


async def close_reviews_of_branch(conn: Connection, branch_id: int, town_id: int, at: datetime) -> list[YearReview]:
    """pending → closed for the branch's reviews by this town (the branch left it), once; those closed now."""
    async with conn.execute(
        "UPDATE year_reviews SET status = 'closed', decided_at = ? WHERE branch_id = ? AND town_id = ? AND status = 'pending'"
        " RETURNING *",
        (_iso(at), branch_id, town_id),
    ) as cursor:
        return sorted((_review(r) for r in await cursor.fetchall()), key=lambda r: r.id)


async def set_review_round(conn: Connection, review_id: int, round_id: int) -> None:
    await conn.execute("UPDATE year_reviews SET round_id = ? WHERE id = ? AND round_id IS NULL", (round_id, review_id))


# --- what waits for a town administrator's decision (/townqueue) -------------------------------------------


async def waiting_appeals(conn: Connection, user_id: int, after: int, limit: int) -> list[TownAppeal]:
    """Open appeals of branches still in a town this user administers, by id after ``after``."""
    async with conn.execute(
        "SELECT a.* FROM town_appeals a JOIN town_admins ad ON ad.town_id = a.town_id"
        " JOIN branches b ON b.id = a.branch_id AND b.town_id = a.town_id"
        " WHERE ad.user_id = ? AND a.status = 'open' AND a.id > ? ORDER BY a.id LIMIT ?",
        (user_id, after, limit),
    ) as cursor:
        return [_appeal(r) for r in await cursor.fetchall()]


async def waiting_reviews(conn: Connection, user_id: int, after: int, limit: int) -> list[YearReview]:
    """Pending reviews of branches still in a town this user administers, by id after ``after``."""
    async with conn.execute(
        "SELECT y.* FROM year_reviews y JOIN town_admins ad ON ad.town_id = y.town_id"
        " JOIN branches b ON b.id = y.branch_id AND b.town_id = y.town_id"
        " WHERE ad.user_id = ? AND y.status = 'pending' AND y.id > ? ORDER BY y.id LIMIT ?",
        (user_id, after, limit),
    ) as cursor:
        return [_review(r) for r in await cursor.fetchall()]


async def waiting_counts(conn: Connection, user_id: int) -> tuple[int, int]:
    """(open appeals, pending reviews) waiting for this user's towns."""
    async with conn.execute(
        "SELECT (SELECT count(*) FROM town_appeals a JOIN town_admins ad ON ad.town_id = a.town_id"
        "  JOIN branches b ON b.id = a.branch_id AND b.town_id = a.town_id WHERE ad.user_id = ? AND a.status = 'open'),"
        " (SELECT count(*) FROM year_reviews y JOIN town_admins ad ON ad.town_id = y.town_id"
        "  JOIN branches b ON b.id = y.branch_id AND b.town_id = y.town_id WHERE ad.user_id = ? AND y.status = 'pending')",
        (user_id, user_id),
    ) as cursor:
        row = await cursor.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def pending_review_of_branch(conn: Connection, branch_id: int, year: int | None) -> YearReview | None:
    """The branch's attempt waiting for its town (of ``year``, or of any year when None)."""
    of_year = " AND year = ?" if year is not None else ""
    async with conn.execute(
        f"SELECT * FROM year_reviews WHERE branch_id = ? AND status = 'pending'{of_year} ORDER BY id DESC LIMIT 1",
        (branch_id, year) if year is not None else (branch_id,),
    ) as cursor:
        row = await cursor.fetchone()
    return _review(row) if row else None


# --- cards shown to administrators -------------------------------------------------------------------


async def add_card(conn: Connection, kind: str, ref_id: int, chat_id: int, message_id: int) -> None:
    await conn.execute(
        "INSERT INTO town_cards (kind, ref_id, chat_id, message_id) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (kind, ref_id, chat_id, message_id),
    )


async def cards(conn: Connection, kind: str, ref_id: int) -> list[tuple[int, int]]:
    async with conn.execute(
        "SELECT chat_id, message_id FROM town_cards WHERE kind = ? AND ref_id = ? ORDER BY chat_id, message_id",
        (kind, ref_id),
    ) as cursor:
        return [(int(r[0]), int(r[1])) for r in await cursor.fetchall()]


# --- filings (备案) ------------------------------------------------------------------------------------


async def file_round(conn: Connection, *, round_id: int, branch_id: int, town_id: int, year: int, at: datetime) -> bool:
    cursor = await conn.execute(
        "INSERT INTO town_filings (round_id, branch_id, town_id, year, filed_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (round_id, branch_id, town_id, year, _iso(at)),
    )
    return cursor.rowcount == 1


async def filings(conn: Connection, town_id: int, year: int) -> dict[int, Filing]:
    """branch id → the newest filing of the year with its round's status now."""
    async with conn.execute(
        "SELECT f.round_id, f.branch_id, f.town_id, f.year, f.filed_at, r.status AS round_status"
        " FROM town_filings f JOIN grade_rounds r ON r.id = f.round_id"
        " WHERE f.town_id = ? AND f.year = ? ORDER BY r.round",
        (town_id, year),
    ) as cursor:
        return {int(r["branch_id"]): Filing(**row_dict(r)) for r in await cursor.fetchall()}
