"""The fast paths give the reference results.

1. ``year_score(..., detail=False)`` (month totals without month models; what grading uses) against
   ``year_score`` with detail, for every preset, on random ledgers (reversals, rows of another year,
   items since removed, posts per month, members joining mid-year, democratic ratings): the same figure,
   halves, bonus and flags, the same published figure; and ``EntryRow`` tuples score as ``Entry`` models.
2. ``GradingService.compute`` (one snapshot, one ledger statement per branch: ``_gather``) against the
   reference computation it replaced (each member's rows, post claims and full ``year_score`` read one by
   one), on seeded branches with reversals, post claims, a member who joined mid-year, one who left and
   an exempt one: the identical ``GradeResult``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import seed
from bot.clock import FixedClock
from bot.domain.grading import MemberYear, grade, year_facts
from bot.domain.notice import in_notice
from bot.domain.records import MemberState
from bot.domain.rulebook import YearMethod
from bot.domain.scoring import Entry, EntryRow, counted_months, publish, year_score
from bot.presets import PRESET_CODES, preset
from bot.services import Services
from bot.services.branches import rulebook_of
from bot.services.posts import posts_by_month
from storage import branches as branch_repo
from storage import grading as grading_repo
from storage import ledger as ledger_repo
from storage import members as member_repo
from storage import posts as post_repo
from storage.db import Database
from tests.conftest import MOMENT

YEAR = 2026


@st.composite
def ledgers(draw, codes: list[str]) -> list[Entry]:
    rows: list[Entry] = []
    # a few items over a few months, so that rows meet in one item and month (caps, floors, allotments)
    some = draw(st.lists(st.sampled_from(codes + ["gone_item"]), min_size=1, max_size=5, unique=True))  # gone: removed since
    days = draw(st.lists(st.dates(date(YEAR - 1, 12, 1), date(YEAR + 1, 1, 31)), min_size=1, max_size=6))
    for index in range(draw(st.integers(0, 30))):
        day = draw(st.sampled_from(days))
        code = draw(st.sampled_from(some))
        value = D(draw(st.integers(-80, 80))) / 2
        rows.append(Entry(id=index + 1, item_code=code, value=value, occurred_on=day))
    for original in draw(st.lists(st.sampled_from(rows), unique_by=lambda r: r.id, max_size=5)) if rows else []:
        rows.append(Entry(id=len(rows) + 1, item_code=original.item_code, value=-original.value,
                          occurred_on=original.occurred_on, reverses_id=original.id))
    return rows


@settings(max_examples=150, deadline=None)
@given(data=st.data(), code=st.sampled_from(PRESET_CODES))
def test_year_score_without_detail_gives_the_same_figure(data, code: str) -> None:
    rulebook = preset(code)
    entries = data.draw(ledgers([i.code for _, i in rulebook.items()]))
    joined = data.draw(st.one_of(st.none(), st.dates(date(YEAR - 1, 6, 1), date(YEAR, 12, 31))))
    today = data.draw(st.dates(date(YEAR, 1, 1), date(YEAR + 1, 2, 1)))
    months = counted_months(YEAR, today, joined)
    posts = data.draw(st.one_of(st.none(), st.integers(0, 3),
                                st.dictionaries(st.integers(1, 12).map(lambda m: (YEAR, m)), st.integers(0, 3))))
    democratic = data.draw(st.dictionaries(st.sampled_from((1, 2)), st.integers(0, 100).map(D)))

    full = year_score(rulebook, entries, YEAR, months, posts=posts, democratic=democratic)
    rows = [EntryRow(e.id, e.item_code, e.value, e.occurred_on, e.event_code, e.reverses_id) for e in entries]
    fast = year_score(rulebook, rows, YEAR, months, posts=posts, democratic=democratic, detail=False)

    assert fast.figure == full.figure
    assert str(publish(fast.figure)) == str(publish(full.figure))
    assert (fast.year, fast.method, fast.zeroed, fast.provisional, fast.bonus) == \
        (full.year, full.method, full.zeroed, full.provisional, full.bonus)
    assert fast.halves == full.halves
    assert fast.months == ()
    if rulebook.year_result.method is YearMethod.SUM:
        assert fast.categories == full.categories
    # the tuples score exactly as the models, detail and all
    assert year_score(rulebook, rows, YEAR, months, posts=posts, democratic=democratic) == full
    assert year_facts(rulebook, rows, YEAR) == year_facts(rulebook, entries, YEAR)


# --- a seeded branch: the fast _gather against the reference ----------------------------------------


async def _reference(services: Services, branch, year: int):
    """What GradingService.compute computed before the fast path: each member read one by one."""
    rulebook = rulebook_of(branch)
    end = min(date(year, 12, 31), services.clock.today(branch.timezone))
    async with services.db.read() as conn:
        people = [m for m in await member_repo.listing(conn, branch.id, ("approved", "left"))
                  if in_notice(m.joined_on, m.left_on, date(year, 1, 1), date(year, 12, 31))]
        past = await grading_repo.past_years(conn, branch.id, year)
        members = []
        for person in people:
            entries = [r.entry() for r in await ledger_repo.of_member(conn, person.id, year)]
            months = counted_months(year, end, person.joined_on, person.left_on)
            posts = await posts_by_month(conn, rulebook, person.id, year, end)
            score = None
            if person.state is not MemberState.EXEMPT:
                score = year_score(rulebook, entries, year, months, posts=posts, democratic={})
            bonus, major = year_facts(rulebook, entries, year)
            members.append(MemberYear(
                member_id=person.id, name=person.name, state=person.state, joined_on=person.joined_on,
                left_on=person.left_on, score=score, months_counted=len(months), major_deduction=major,
                bonus_earned=bonus, past=past.get(person.id, []),
            ))
    return grade(rulebook, members, year)


@pytest.mark.parametrize("code", ["xishui", "jiancaoping", "sanmenxia"])
async def test_grading_a_seeded_branch_gives_the_reference_result(tmp_path: Path, code: str) -> None:
    path = tmp_path / "g.sqlite3"
    db = await Database(path).open()
    await db.close()
    raw = seed.connect(str(path))
    made = seed.add_branches(raw, 2, preset=code)
    members = seed.add_members(raw, [b for b, _ in made], 12, user_base=50_000)
    seed.add_history(raw, members, range(1, 13))
    raw.close()
    branch_id = made[0][0]
    people = [m for m, _ in members[branch_id]]
    db = await Database(path, now=lambda: MOMENT).open()
    services = Services(db, FixedClock(MOMENT.replace(year=YEAR, month=12, day=20)))
    try:
        async with db.transaction() as conn:
            rows = await ledger_repo.of_branch(conn, branch_id)
            for row in rows[::7]:  # some rows taken back, some of them in months with other rows
                await ledger_repo.reverse(conn, row, reference=f"rev:{row.id}", actor_id=None, reason="test")
            await member_repo.set_left(conn, people[1], "2026-08-15")
            await member_repo.set_state(conn, people[2], "exempt", "年老体弱")
            await conn.execute("UPDATE members SET joined_on = '2026-05-10' WHERE id = ?", (people[3],))
            branch = await branch_repo.by_id(conn, branch_id)
            rulebook = rulebook_of(branch)
            if rulebook.posts is not None:
                await post_repo.seed(conn, branch_id, [(f"岗{i}", f"post {i}") for i in range(1, 4)])
                posts = await post_repo.active(conn, branch_id)
                await post_repo.set_claims(conn, branch_id, people[0], [posts[0].id, posts[1].id], date(2026, 3, 5))
                await post_repo.set_claims(conn, branch_id, people[4], [posts[2].id], date(2026, 1, 1))
                await post_repo.set_claims(conn, branch_id, people[4], [], date(2026, 9, 30))  # released
        assert branch is not None
        fast = await services.grading.compute(branch, YEAR)
        reference = await _reference(services, branch, YEAR)
        assert fast == reference
        assert fast.model_dump_json() == reference.model_dump_json()  # what the confirmation fingerprints
        assert len(fast.lines) == 12 and any(line.graded for line in fast.lines)
    finally:
        await db.close()


@pytest.mark.parametrize("code", PRESET_CODES)
def test_every_item_alone_and_doubled_in_a_month_gives_the_same_figure(code: str) -> None:
    """Each item's cap, floor and allotment met on purpose: one or two rows of it in a month, values
    either side of its bounds, with 0–3 posts (the random test above meets these only now and then)."""
    rulebook = preset(code)
    months = counted_months(YEAR, date(YEAR, 12, 31))
    for _, item in rulebook.items():
        for value in ("-30", "-5", "5", "30"):
            for repeat in (1, 2):
                entries = [Entry(id=k + 1, item_code=item.code, value=D(value), occurred_on=date(YEAR, 3, 5 + k))
                           for k in range(repeat)]
                for posts in (None, 0, 1, 3):
                    full = year_score(rulebook, entries, YEAR, months, posts=posts, democratic={1: D(80)})
                    fast = year_score(rulebook, entries, YEAR, months, posts=posts, democratic={1: D(80)}, detail=False)
                    assert (fast.figure, fast.halves, fast.bonus, fast.zeroed) == (full.figure, full.halves, full.bonus, full.zeroed), \
                        (item.code, value, repeat, posts)
