"""A prototype of the /grade fix, kept in bench/ because the app is being edited by others: the same
result as ``GradingService.compute`` with the branch's ledger read in ONE query (one aiosqlite thread
hop instead of three per member), raw tuples turned into ``Entry`` without building a validated
``LedgerRow`` per row, and every member's post claims in one query (``storage.posts.claims_of_branch``).

The one SQL statement here is the proposed ``storage.ledger.entries_of_branch(conn, branch_id, year)``;
the lead moves it into storage/ledger.py and has ``GradingService._gather`` use it. The benchmark checks
the prototype gives exactly the app's GradeResult before timing it.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from bot.domain.assessment import posts_by_month
from bot.domain.grading import GradeResult, MemberYear, grade, year_facts
from bot.domain.notice import in_notice
from bot.domain.records import Branch, MemberState
from bot.domain.rulebook import YearMethod
from bot.domain.scoring import Entry, counted_months, year_score
from bot.services import Services
from bot.services.branches import rulebook_of
from storage import grading as grading_repo
from storage import members as member_repo
from storage import posts as post_repo


async def entries_of_branch(conn, branch_id: int, year: int) -> dict[int, list[Entry]]:
    """member id → the year's ledger rows as scoring entries, in id order (the proposed storage function)."""
    found: dict[int, list[Entry]] = {}
    async with conn.execute(
        "SELECT id, member_id, item_code, value, occurred_on, event_code, reverses_id FROM ledger"
        " WHERE branch_id = ? AND occurred_on >= ? AND occurred_on < ? ORDER BY id",
        (branch_id, f"{year}-01-01", f"{year + 1}-01-01"),
    ) as cursor:
        rows = await cursor.fetchall()
    for row_id, member_id, item, value, occurred, event, reverses in rows:
        found.setdefault(member_id, []).append(Entry.model_construct(
            id=row_id, item_code=item, value=Decimal(value), occurred_on=date.fromisoformat(occurred),
            event_code=event, reverses_id=reverses))
    return found


async def compute(services: Services, branch: Branch, year: int) -> GradeResult:
    grading = services.grading
    rulebook = rulebook_of(branch)
    today = services.clock.today(branch.timezone)
    end = min(date(year, 12, 31), today)
    democratic: dict[int, dict[int, Decimal]] = {}
    unqualified: set[int] = set()
    if rulebook.year_result.method is YearMethod.WEIGHTED_HALVES:
        for half in (1, 2):
            for member_id, value in (await grading._democratic.evaluations(branch.id, year, half)).items():
                democratic.setdefault(member_id, {})[half] = value
            unqualified |= await grading._democratic.unqualified(branch.id, year, half)
    async with services.db.read() as conn:
        people = [m for m in await member_repo.listing(conn, branch.id, ("approved", "left"))
                  if in_notice(m.joined_on, m.left_on, date(year, 1, 1), date(year, 12, 31))]
        past = await grading_repo.past_years(conn, branch.id, year)
        entries_by_member = await entries_of_branch(conn, branch.id, year)
        claims = await post_repo.claims_of_branch(conn, branch.id) if rulebook.posts is not None else {}
    members = []
    for person in people:
        entries = entries_by_member.get(person.id, [])
        months = counted_months(year, end, person.joined_on, person.left_on)
        posts = (posts_by_month(rulebook, claims.get(person.id, []), year, end) if rulebook.posts is not None
                 else {(year, m): 1 for m in range(1, 13)})
        ratings = democratic.get(person.id, {})
        score = None
        if person.state is not MemberState.EXEMPT:
            score = year_score(rulebook, entries, year, months, posts=posts, democratic=ratings)
        bonus, major = year_facts(rulebook, entries, year)
        members.append(MemberYear(
            member_id=person.id, name=person.name, state=person.state, joined_on=person.joined_on,
            left_on=person.left_on, score=score, months_counted=len(months), major_deduction=major,
            bonus_earned=bonus, democratic=ratings, democratic_unqualified=person.id in unqualified,
            past=past.get(person.id, []),
        ))
    return grade(rulebook, members, year)
