"""Year-end grading: rounds (publicity, final, re-opened), their results, the year's lock, the re-open log."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from bot.domain.grading import GradeLine, GradeResult, PastYear
from storage._util import row_dict
from storage.db import Connection


class GradeRound(BaseModel):
    """One round of a year's grading, as stored."""

    model_config = ConfigDict(frozen=True)

    id: int
    branch_id: int
    year: int
    round: int
    status: str  # publicity | final | reopened
    rulebook_code: str
    tie_choice: list[int]
    notice_id: int
    publicity_days: int
    published_upto: int
    confirmed_by: int
    confirmed_at: datetime
    final_upto: int | None = None
    finalised_by: int | None = None
    finalised_at: datetime | None = None


class Reopen(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    branch_id: int
    year: int
    round_id: int
    reopened_by: int
    reopened_at: datetime
    reason: str


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _round(row) -> GradeRound:
    data = row_dict(row)
    data["tie_choice"] = json.loads(data["tie_choice"] or "[]")
    return GradeRound(**{k: v for k, v in data.items() if k in GradeRound.model_fields})


def _summary(result: GradeResult) -> str:
    return result.model_dump_json(exclude={"lines"})


# --- rounds ----------------------------------------------------------------------------------------


async def create_round(conn: Connection, *, branch_id: int, year: int, rulebook_code: str, tie_choice: list[int],
                       notice_id: int, publicity_days: int, result: GradeResult, upto: int, confirmed_by: int,
                       at: datetime) -> GradeRound | None:
    """The next round of the year in publicity, once: None while another round of the year is not re-opened."""
    async with conn.execute(
        "INSERT INTO grade_rounds (branch_id, year, round, rulebook_code, tie_choice, notice_id, publicity_days,"
        " published, published_upto, confirmed_by, confirmed_at)"
        " VALUES (?, ?, (SELECT COALESCE(MAX(round), 0) + 1 FROM grade_rounds WHERE branch_id = ? AND year = ?),"
        " ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING *",
        (branch_id, year, branch_id, year, rulebook_code, json.dumps(sorted(tie_choice)), notice_id, publicity_days,
         _summary(result), upto, confirmed_by, _iso(at)),
    ) as cursor:
        row = await cursor.fetchone()
    return _round(row) if row else None


async def next_round_number(conn: Connection, branch_id: int, year: int) -> int:
    async with conn.execute(
        "SELECT COALESCE(MAX(round), 0) + 1 FROM grade_rounds WHERE branch_id = ? AND year = ?", (branch_id, year)
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 1


async def current(conn: Connection, branch_id: int, year: int) -> GradeRound | None:
    """The year's round in publicity or final (not re-opened), if any."""
    async with conn.execute(
        "SELECT * FROM grade_rounds WHERE branch_id = ? AND year = ? AND status != 'reopened'", (branch_id, year)
    ) as cursor:
        row = await cursor.fetchone()
    return _round(row) if row else None


async def by_id(conn: Connection, round_id: int) -> GradeRound | None:
    async with conn.execute("SELECT * FROM grade_rounds WHERE id = ?", (round_id,)) as cursor:
        row = await cursor.fetchone()
    return _round(row) if row else None


async def rounds_of_year(conn: Connection, branch_id: int, year: int) -> list[GradeRound]:
    async with conn.execute(
        "SELECT * FROM grade_rounds WHERE branch_id = ? AND year = ? ORDER BY round", (branch_id, year)
    ) as cursor:
        return [_round(r) for r in await cursor.fetchall()]


async def in_publicity(conn: Connection, branch_id: int) -> list[GradeRound]:
    """The branch's rounds whose publicity has not been finalised yet, oldest first."""
    async with conn.execute(
        "SELECT * FROM grade_rounds WHERE branch_id = ? AND status = 'publicity' ORDER BY id", (branch_id,)
    ) as cursor:
        return [_round(r) for r in await cursor.fetchall()]


async def finalise(conn: Connection, round_id: int, *, result: GradeResult, upto: int, by: int, at: datetime) -> bool:
    """publicity → final, once."""
    cursor = await conn.execute(
        "UPDATE grade_rounds SET status = 'final', final = ?, final_upto = ?, finalised_by = ?, finalised_at = ?"
        " WHERE id = ? AND status = 'publicity'",
        (_summary(result), upto, by, _iso(at), round_id),
    )
    return cursor.rowcount == 1


async def mark_reopened(conn: Connection, round_id: int) -> bool:
    """final → reopened, once."""
    cursor = await conn.execute("UPDATE grade_rounds SET status = 'reopened' WHERE id = ? AND status = 'final'", (round_id,))
    return cursor.rowcount == 1


# --- results ---------------------------------------------------------------------------------------


async def add_results(conn: Connection, round_id: int, stage: str, result: GradeResult) -> None:
    """Every line of the result, in its order (a repeat writes nothing)."""
    await conn.executemany(
        "INSERT INTO grade_results (round_id, stage, member_id, position, name, figure, band_code, stars, graded, passing,"
        " rank, flags, rulebook_code, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [
            (round_id, stage, line.member_id, position, line.name, None if line.figure is None else str(line.figure),
             line.band_code, line.stars, int(line.graded), None if line.passing is None else int(line.passing), line.rank,
             json.dumps(line.flags), result.rulebook_code, line.model_dump_json())
            for position, line in enumerate(result.lines)
        ],
    )


async def results(conn: Connection, round_id: int, stage: str) -> GradeResult | None:
    """The stored result of a round at a stage ('published' or 'final'), as it was."""
    column = "published" if stage == "published" else "final"
    async with conn.execute(f"SELECT {column} FROM grade_rounds WHERE id = ?", (round_id,)) as cursor:
        row = await cursor.fetchone()
    if row is None or row[0] is None:
        return None
    summary = json.loads(row[0])
    async with conn.execute(
        "SELECT detail FROM grade_results WHERE round_id = ? AND stage = ? ORDER BY position", (round_id, stage)
    ) as cursor:
        lines = [GradeLine.model_validate_json(r[0]) for r in await cursor.fetchall()]
    return GradeResult.model_validate({**summary, "lines": [line.model_dump() for line in lines]})


async def latest_final(conn: Connection, branch_id: int, year: int) -> GradeRound | None:
    """The year's newest round that was ever finalised (final, or re-opened since)."""
    async with conn.execute(
        "SELECT * FROM grade_rounds WHERE branch_id = ? AND year = ? AND finalised_at IS NOT NULL ORDER BY round DESC LIMIT 1",
        (branch_id, year),
    ) as cursor:
        row = await cursor.fetchone()
    return _round(row) if row else None


async def past_years(conn: Connection, branch_id: int, before: int) -> dict[int, list[PastYear]]:
    """Each member's earlier finalised years (the newest finalised round of each year), newest first."""
    async with conn.execute(
        "SELECT r.year, g.member_id, g.figure, g.band_code, g.passing, g.rank,"
        " (SELECT COUNT(*) FROM grade_results x WHERE x.round_id = r.id AND x.stage = 'final' AND x.rank IS NOT NULL)"
        " FROM grade_rounds r JOIN grade_results g ON g.round_id = r.id AND g.stage = 'final'"
        " WHERE r.branch_id = ? AND r.year < ? AND r.finalised_at IS NOT NULL"
        " AND r.round = (SELECT MAX(o.round) FROM grade_rounds o"
        "                WHERE o.branch_id = r.branch_id AND o.year = r.year AND o.finalised_at IS NOT NULL)"
        " ORDER BY r.year DESC",
        (branch_id, before),
    ) as cursor:
        found: dict[int, list[PastYear]] = {}
        for year, member_id, figure, band, passing, rank, ranked in await cursor.fetchall():
            found.setdefault(int(member_id), []).append(PastYear(
                year=int(year), figure=None if figure is None else Decimal(figure), band_code=band,
                passing=None if passing is None else bool(passing), rank=rank, ranked=int(ranked) or None))
    return found


# --- the lock --------------------------------------------------------------------------------------


async def lock(conn: Connection, branch_id: int, year: int, round_id: int, at: datetime) -> bool:
    cursor = await conn.execute(
        "INSERT INTO locked_years (branch_id, year, round_id, locked_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (branch_id, year, round_id, _iso(at)),
    )
    return cursor.rowcount == 1


async def unlock(conn: Connection, branch_id: int, year: int) -> bool:
    cursor = await conn.execute("DELETE FROM locked_years WHERE branch_id = ? AND year = ?", (branch_id, year))
    return cursor.rowcount == 1


async def is_locked(conn: Connection, branch_id: int, year: int) -> bool:
    async with conn.execute("SELECT 1 FROM locked_years WHERE branch_id = ? AND year = ?", (branch_id, year)) as cursor:
        return await cursor.fetchone() is not None


# --- re-openings -----------------------------------------------------------------------------------


async def add_reopen(conn: Connection, *, branch_id: int, year: int, round_id: int, by: int, at: datetime,
                     reason: str) -> Reopen | None:
    async with conn.execute(
        "INSERT INTO grade_reopens (branch_id, year, round_id, reopened_by, reopened_at, reason) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING RETURNING *",
        (branch_id, year, round_id, by, _iso(at), reason),
    ) as cursor:
        row = await cursor.fetchone()
    return Reopen(**row_dict(row)) if row else None


async def reopens(conn: Connection, branch_id: int, year: int) -> list[Reopen]:
    async with conn.execute(
        "SELECT * FROM grade_reopens WHERE branch_id = ? AND year = ? ORDER BY id", (branch_id, year)
    ) as cursor:
        return [Reopen(**row_dict(r)) for r in await cursor.fetchall()]


# --- what the preview warns about ------------------------------------------------------------------


async def unconfirmed_of_year(conn: Connection, branch_id: int, year: int) -> dict[int, int]:
    """member id → how many of the year's notices they have not confirmed (pending or disputed)."""
    async with conn.execute(
        "SELECT m.member_id, COUNT(*) FROM notice_members m JOIN notices n ON n.id = m.notice_id"
        " WHERE n.branch_id = ? AND n.first_day >= ? AND n.last_day <= ? AND m.status != 'confirmed'"
        " AND n.sent_at IS NOT NULL AND n.id NOT IN (SELECT notice_id FROM grade_rounds WHERE branch_id = ?)"
        " GROUP BY m.member_id",
        (branch_id, f"{year}-01-01", f"{year}-12-31", branch_id),
    ) as cursor:
        return {int(r[0]): int(r[1]) for r in await cursor.fetchall()}


async def sent_periods(conn: Connection, branch_id: int, year: int) -> set[str]:
    """The period keys of the year's notices that reached the group."""
    async with conn.execute(
        "SELECT period_key FROM notices WHERE branch_id = ? AND first_day >= ? AND last_day <= ? AND sent_at IS NOT NULL",
        (branch_id, f"{year}-01-01", f"{year}-12-31"),
    ) as cursor:
        return {str(r[0]) for r in await cursor.fetchall()}


async def open_objections_of_year(conn: Connection, branch_id: int, year: int) -> list[tuple[int, int]]:
    """(objection id, member id) of open objections and disputes raised on the year's notices."""
    async with conn.execute(
        "SELECT o.id, o.member_id FROM objections o JOIN notices n ON n.id = o.notice_id"
        " WHERE o.branch_id = ? AND o.status = 'open' AND n.first_day >= ? AND n.last_day <= ? ORDER BY o.id",
        (branch_id, f"{year}-01-01", f"{year}-12-31"),
    ) as cursor:
        return [(int(r[0]), int(r[1])) for r in await cursor.fetchall()]


async def last_ledger_id(conn: Connection, branch_id: int) -> int:
    async with conn.execute("SELECT COALESCE(MAX(id), 0) FROM ledger WHERE branch_id = ?", (branch_id,)) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0
