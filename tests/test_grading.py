"""Year-end grading (bot.domain.grading), pinned with hand-computed examples for every preset.

Pure domain: no event loop, no database. Where practical the YearScores come from the real scoring
(bot.domain.scoring.year_score over synthetic ledger rows); the quota/rank properties build YearScores
directly.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.grading import (
    GradeResult,
    MemberYear,
    PastYear,
    competition_ranks,
    grade,
    quota_places,
    tier_size,
    year_facts,
)
from bot.domain.records import MemberState
from bot.domain.rulebook import YearMethod
from bot.domain.scoring import Entry, HalfScore, YearScore, counted_months, year_score
from bot.presets import preset

YEAR = 2026
AFTER = date(YEAR + 1, 1, 5)  # /grade runs in early January: the whole year has ended
_ids = iter(range(1, 10**9))


def e(item: str, value: str | int, day: date, event: str | None = None) -> Entry:
    return Entry(id=next(_ids), item_code=item, value=D(value), occurred_on=day, event_code=event)


def d(month: int, day: int = 10) -> date:
    return date(YEAR, month, day)


def member(
    mid: int,
    code: str,
    entries: list[Entry] = (),  # type: ignore[assignment]
    *,
    state: MemberState = MemberState.ACTIVE,
    joined: date | None = None,
    left: date | None = None,
    democratic: dict[int, D] | None = None,
    past: list[PastYear] | None = None,
    unqualified: bool = False,
) -> MemberYear:
    """A member whose YearScore comes from the real scoring over ``entries``."""
    rulebook = preset(code)
    months = counted_months(YEAR, AFTER, joined, left)
    score = None if state is MemberState.EXEMPT else year_score(rulebook, entries, YEAR, months)
    bonus, major = year_facts(rulebook, entries, YEAR)
    return MemberYear(
        member_id=mid, name=f"m{mid:03d}", state=state, joined_on=joined, left_on=left, score=score,
        months_counted=len(months), major_deduction=major, bonus_earned=bonus,
        democratic=democratic or {}, democratic_unqualified=unqualified, past=past or [],
    )


def direct(mid: int, figure: str | D, *, method: YearMethod = YearMethod.MONTHLY_AVERAGE, months: int = 12,
           state: MemberState = MemberState.ACTIVE, past: list[PastYear] | None = None, zeroed: bool = False,
           year: int = YEAR) -> MemberYear:
    """A member with a YearScore built directly (for band edges, quotas, ranks)."""
    score = YearScore(year=year, method=method, figure=D(figure), categories=(), months=(), zeroed=zeroed)
    return MemberYear(member_id=mid, name=f"m{mid:03d}", state=state, joined_on=None, left_on=None,
                      score=score, months_counted=months, past=past or [])


def halves_member(mid: int, figure: str | D) -> MemberYear:
    """张店: both halves quantified = democratic = figure, so each half and the year are ``figure``."""
    f = D(figure)
    halves = tuple(HalfScore(half=h, monthly_average=f, bonus=D(0), quantified=f, democratic=None, result=None, zeroed=False)
                   for h in (1, 2))
    score = YearScore(year=YEAR, method=YearMethod.WEIGHTED_HALVES, figure=f, categories=(), months=(), halves=halves,
                      provisional=True)
    return MemberYear(member_id=mid, name=f"m{mid:03d}", state=MemberState.ACTIVE, joined_on=None, left_on=None,
                      score=score, months_counted=12, democratic={1: f, 2: f})


def failing(year: int, passing: bool = False) -> PastYear:
    return PastYear(year=year, figure=D(40) if not passing else D(75), band_code="x", passing=passing, rank=1, ranked=1)


def by_id(result: GradeResult) -> dict[int, object]:
    return {line.member_id: line for line in result.lines}


# --- 浠水 (D): monthly average + bonus, stars, 20% quota, consecutive failures ------------------------
# An empty month = obligations 40 (four allotments of 10) + post claims 2 × 10 = 60.


def test_xishui_full_year_by_hand() -> None:
    code = "xishui"
    every = range(1, 13)
    a = member(1, code, [e("post_duty", 20, d(m)) for m in every]
               + [e("post_deed", 10, d(m)) for m in every] + [e("post_deed", 10, d(m, 11)) for m in every]
               + [e("honor_national", 4, d(5)), e("honor_national", 4, d(6)), e("honor_national", 4, d(7))])
    # A: each month 40 + 20 claims + 20 duties + 20 deeds (cap 10 per post) = 100; bonus 12 capped at 10 → 110.00
    b = member(2, code, [e("post_duty", 15, d(m)) for m in every] + [e("study", -5, d(3), "absent")])
    # B: 40 + 20 + 15 = 75 each month; March 70 → (75×11 + 70)/12 = 895/12 = 74.5833… → 74.58 ★★★★
    c = member(3, code, [e("post_duty", 20, d(1)), e("political_discipline", 0, d(3))])
    # C: a zero-out in March → 0.00, zeroed, no star
    p = member(4, code, [e("study", -2, d(m), "late") for m in (2, 5, 8)], state=MemberState.PROBATIONARY)
    # P: 60 each month, three months 58 → (60×9 + 58×3)/12 = 714/12 = 59.5 → 59.50 < 60 → extend probation
    x = member(5, code, state=MemberState.EXEMPT)
    j = member(6, code, [e("post_duty", 20, d(m)) for m in range(7, 13)] + [e("study", -5, d(8), "absent")], joined=date(YEAR, 7, 15))
    # J joined in July: months Jul–Dec (6); 80 each, August 75 → (80×5 + 75)/6 = 475/6 = 79.1666… → 79.17 ★★★★
    l = member(7, code, [e("post_duty", 10, d(m)) for m in range(1, 6)], left=date(YEAR, 5, 20))
    # L left in May: months Jan–May (5) at 70 → 70.00 ★★★★ (graded: 5 ≥ 3)
    n = member(8, code, [e("post_duty", 20, d(11))], joined=date(YEAR, 11, 2))
    # N joined in November: 2 months < 3 → not enough months
    assert j.months_counted == 6 and l.months_counted == 5 and n.months_counted == 2

    result = grade(preset(code), [a, b, c, p, x, j, l, n], YEAR)
    lines = by_id(result)
    assert (lines[1].figure, lines[1].band_code, lines[1].stars, lines[1].rank) == (D("110.00"), "excellent", 5, 1)
    assert (lines[2].figure, lines[2].band_code, lines[2].stars) == (D("74.58"), "qualified", 4)
    assert (lines[3].figure, lines[3].band_code, lines[3].stars) == (D("0.00"), "unqualified_0", 0)
    assert "zeroed" in lines[3].flags and "mentoring" in lines[3].flags  # 1 failing year → mentoring
    assert (lines[4].figure, lines[4].graded, lines[4].band_code, lines[4].rank) == (D("59.50"), False, None, None)
    assert lines[4].flags == ["probationary", "extend_probation"]
    assert (lines[5].figure, lines[5].graded, lines[5].flags) == (None, False, ["exempt"])
    assert (lines[6].figure, lines[6].band_code) == (D("79.17"), "qualified")
    assert (lines[7].figure, lines[7].band_code, lines[7].graded) == (D("70.00"), "qualified", True)
    assert (lines[8].graded, lines[8].flags) == (False, ["not_enough_months"])
    # graded: A, B, C, J, L = 5 → quota floor(0.2 × 5) = 1 place; only A qualifies
    assert result.quota_places == 1 and result.tie == [] and not result.provisional
    assert result.distribution == {"excellent": 1, "qualified": 3, "basic": 0, "unqualified_2": 0, "unqualified_1": 0, "unqualified_0": 1}
    assert result.ranked == 5
    # ranks: A 110 (1), J 79.17 (2), B 74.58 (3), L 70 (4), C 0 (5); unranked after, by name
    assert [(line.member_id, line.rank) for line in result.lines] == [(1, 1), (6, 2), (2, 3), (7, 4), (3, 5), (4, None), (5, None), (8, None)]


@pytest.mark.parametrize(
    ("figure", "band", "stars"),
    [("80", "excellent", 5), ("79.995", "excellent", 5), ("79.99", "qualified", 4), ("70", "qualified", 4),
     ("69.99", "basic", 3), ("60", "basic", 3), ("59.99", "unqualified_2", 2), ("55", "unqualified_2", 2),
     ("54.99", "unqualified_1", 1), ("50", "unqualified_1", 1), ("49.994", "unqualified_0", 0), ("0", "unqualified_0", 0)],
)
def test_xishui_band_edges(figure: str, band: str, stars: int) -> None:
    # 79.995 publishes as 80.00 (half up) and the band is decided on the published figure
    line = grade(preset("xishui"), [direct(1, figure)], YEAR).lines[0]
    assert (line.band_code, line.stars) == (band, stars)


def test_xishui_quota_tie_needs_the_secretarys_choice() -> None:
    rulebook = preset("xishui")
    figures = ["85", "85", "85", "75", "72", "70", "65", "60", "55", "40"]
    members = [direct(i, f) for i, f in enumerate(figures, start=1)]
    # 10 graded → floor(20% × 10) = 2 places; three at 85 compete for them
    open_ = grade(rulebook, members, YEAR)
    assert open_.quota_places == 2 and open_.tie == [1, 2, 3] and open_.provisional
    for mid in (1, 2, 3):  # until chosen nobody in the tie is excellent
        line = open_.line(mid)
        assert (line.band_code, line.rank) == ("qualified", 1) and line.flags == ["tie"]
    assert open_.distribution["excellent"] == 0

    chosen = grade(rulebook, members, YEAR, tie_choice={1, 3})
    assert not chosen.provisional and chosen.tie == [1, 2, 3]
    assert [chosen.line(m).band_code for m in (1, 2, 3)] == ["excellent", "qualified", "excellent"]
    assert chosen.line(2).flags == ["quota"] and chosen.line(2).stars == 4
    assert chosen.distribution["excellent"] == 2
    # ranks are by figure, not by band: the three 85s share rank 1, then 4
    assert [chosen.line(m).rank for m in (1, 2, 3, 4)] == [1, 1, 1, 4]

    for wrong in ({1}, {1, 2, 3}, {1, 4}, set()):
        with pytest.raises(ValueError):
            grade(rulebook, members, YEAR, tie_choice=wrong)


def test_xishui_quota_above_the_tie_and_overflow() -> None:
    rulebook = preset("xishui")
    figures = ["95", "88", "88", "82", "81", "70", "70", "60", "50", "30"]
    members = [direct(i, f) for i, f in enumerate(figures, start=1)]
    # 2 places; 95 is in, the 88s tie for the 1 remaining place; 82 and 81 are excellent but out: "quota"
    result = grade(rulebook, members, YEAR, tie_choice={3})
    assert result.tie == [2, 3]
    assert [result.line(m).band_code for m in range(1, 6)] == ["excellent", "qualified", "excellent", "qualified", "qualified"]
    assert [result.line(m).flags for m in (2, 4, 5)] == [["quota"], ["quota"], ["quota"]]
    # no tie straddling the cut: a tie_choice is refused, none needed
    clean = [direct(i, f) for i, f in enumerate(["95", "90", "88", "82"] + ["70"] * 6, start=1)]
    assert grade(rulebook, clean, YEAR).tie == []
    with pytest.raises(ValueError):
        grade(rulebook, clean, YEAR, tie_choice={3})


def test_xishui_quota_at_least_one_in_a_small_branch() -> None:
    # 3 graded → floor(0.6) = 0, but at least min_count = 1 where anyone qualifies
    result = grade(preset("xishui"), [direct(1, "85"), direct(2, "81"), direct(3, "60")], YEAR)
    assert result.quota_places == 1
    assert [result.line(m).band_code for m in (1, 2)] == ["excellent", "qualified"]
    assert quota_places(preset("xishui"), 3, anyone_qualifies=False) == 0


@pytest.mark.parametrize(
    ("past", "flag"),
    [
        ([], "mentoring"),
        ([failing(2025)], "study_class"),
        ([failing(2025), failing(2024)], "org_handling"),
        ([failing(2025), failing(2024), failing(2023)], "org_handling"),  # the highest that applies
        ([failing(2025), failing(2024, passing=True), failing(2023)], "study_class"),  # a passing year ends the run
        ([failing(2024), failing(2023)], "mentoring"),  # 2025 missing (not graded): no consecutive run
    ],
)
def test_xishui_consecutive_failing_years(past: list[PastYear], flag: str) -> None:
    line = grade(preset("xishui"), [direct(1, "52", past=past)], YEAR).lines[0]
    consequences = [f for f in line.flags if f in {"mentoring", "study_class", "org_handling"}]
    assert consequences == [flag]


def test_xishui_passing_year_has_no_consequence_whatever_the_past() -> None:
    line = grade(preset("xishui"), [direct(1, "60", past=[failing(2025), failing(2024)])], YEAR).lines[0]
    assert line.flags == [] and line.passing is True


# --- 尖草坪 (B): base 80 + positive − negative, zero-out, bands, 2 consecutive cycles ---------------------


def test_jiancaoping_full_year_by_hand() -> None:
    code = "jiancaoping"
    a = member(1, code, [e("commended", 5, d(3)), e("brave_deed", 5, d(6)), e("help_needy", 2, d(9))])
    # A: 80 + 5 + 5 + 2 = 92 → praise
    b = member(2, code, [e("volunteer", 1, d(m)) for m in (2, 4, 6)] + [e("skip_org_life", -3, d(7))])
    # B: 80 + 3 − 3 = 80 → encourage
    c = member(3, code, [e("commended", 5, d(1)), e("crime", 0, d(3))], past=[failing(2025)])
    # C: a zero-out in March → 0, scoring stops, directly unqualified; 2025 < 60 too → persuade to withdraw
    f = member(4, code, [e("gambling", -10, d(4)), e("bad_speech", -5, d(5)), e("skip_org_life", -3, d(6)),
                         e("skip_org_life", -3, d(8))], past=[failing(2025, passing=True)])
    # F: 80 − 10 − 5 − 3 − 3 = 59 → unqualified; 2025 passed → no persuasion
    w = member(5, code, [e("gambling", -10, d(4)), e("superstition", -10, d(10))], past=[failing(2025)])
    # W: 80 − 20 = 60 → warning (passing): the failing 2025 alone triggers nothing
    result = grade(preset(code), [a, b, c, f, w], YEAR)
    lines = by_id(result)
    assert [(lines[m].figure, lines[m].band_code) for m in (1, 2, 3, 4, 5)] == [
        (D("92.00"), "praise"), (D("80.00"), "encourage"), (D("0.00"), "unqualified"), (D("59.00"), "unqualified"), (D("60.00"), "warning")]
    assert lines[3].flags == ["zeroed", "persuade_withdraw"]
    assert lines[4].flags == [] and lines[5].flags == []
    assert result.quota_places is None and result.tie == []
    assert result.distribution == {"praise": 1, "encourage": 1, "warning": 1, "unqualified": 2}
    assert [line.member_id for line in result.lines] == [1, 2, 5, 4, 3]


def test_jiancaoping_zero_out_is_unqualified_even_with_few_months() -> None:
    # joined in November, zeroed in December: 2 months < 3, but 直接确定为不合格党员
    m = member(1, "jiancaoping", [e("detention", 0, d(12))], joined=date(YEAR, 11, 1))
    line = grade(preset("jiancaoping"), [m], YEAR).lines[0]
    assert (line.graded, line.figure, line.band_code, line.flags) == (True, D("0.00"), "unqualified", ["zeroed"])


@pytest.mark.parametrize(
    ("figure", "band"),
    [("90", "praise"), ("89.995", "praise"), ("89.99", "encourage"), ("80", "encourage"), ("79.99", "warning"),
     ("60", "warning"), ("59.99", "unqualified"), ("0", "unqualified")],
)
def test_jiancaoping_band_edges(figure: str, band: str) -> None:
    line = grade(preset("jiancaoping"), [direct(1, figure, method=YearMethod.SUM)], YEAR).lines[0]
    assert line.band_code == band


# --- 三门峡 (A): base 100, lagging, 3-year cumulative ranking ------------------------------------------


def test_sanmenxia_full_year_by_hand() -> None:
    code = "sanmenxia"
    a = member(1, code, [e("green_zone", 10, d(2))] + [e("repair_machinery", 3, d(m, 3 + m)) for m in range(1, 12)],
               past=[PastYear(year=2025, figure=D(120)), PastYear(year=2024, figure=D(130))])
    # A: 100 + 10 + 3 × 11 = 143; bonus 43; 3 years: 143 + 120 + 130 = 393
    b = member(2, code, past=[PastYear(year=2025, figure=D(100)), PastYear(year=2024, figure=D(100))])
    # B: 100, no bonus at all → lagging; 3 years: 300 → the bottom → not nominable
    c = member(3, code, [e("snow_clearing", 1, d(1)), e("skip_org_life", -5, d(4))], past=[PastYear(year=2025, figure=D(90))])
    # C: 100 + 1 − 5 = 96 < base → lagging; only 2 years → not in the cumulative ranking
    dd = member(4, code, [e("forsythia", 15, d(4)), e("petition_trouble", -10, d(9))],
                past=[PastYear(year=2025, figure=D(95)), PastYear(year=2024, figure=D(110))])
    # D: 100 + 15 − 10 = 105, but a major deduction → lagging; 3 years: 105 + 95 + 110 = 310
    result = grade(preset(code), [a, b, c, dd], YEAR)
    lines = by_id(result)
    assert [(lines[m].figure, lines[m].rank) for m in (1, 2, 3, 4)] == [(D("143.00"), 1), (D("100.00"), 3), (D("96.00"), 4), (D("105.00"), 2)]
    assert lines[1].flags == [] and lines[1].band_code is None  # no bands in 三门峡
    assert lines[2].flags == ["lagging", "not_nominable"]
    assert lines[3].flags == ["lagging"] and lines[3].cumulative is None
    assert lines[4].flags == ["lagging"]
    assert [(lines[m].cumulative, lines[m].cumulative_rank) for m in (1, 4, 2)] == [(D(393), 1), (D(310), 2), (D(300), 3)]
    assert result.distribution == {} and result.ranked == 4


def test_sanmenxia_year_facts_and_reversed_rows() -> None:
    rulebook = preset("sanmenxia")
    major = e("disaster_retreat", -10, d(5))
    reversal = Entry(id=next(_ids), item_code="disaster_retreat", value=D(10), occurred_on=d(6), reverses_id=major.id)
    assert year_facts(rulebook, [e("snow_clearing", 1, d(1)), major], YEAR) == (D(1), True)
    assert year_facts(rulebook, [major, reversal], YEAR) == (D(0), False)  # a withdrawn deduction is no deduction
    assert year_facts(rulebook, [e("snow_clearing", 1, date(YEAR - 1, 12, 30))], YEAR) == (D(0), False)


def test_sanmenxia_bottom_ties_are_all_not_nominable_and_all_equal_is_nobody() -> None:
    past = [PastYear(year=2025, figure=D(100)), PastYear(year=2024, figure=D(100))]
    members = [direct(i, f, method=YearMethod.SUM, past=past) for i, f in enumerate(["120", "101", "101"], start=1)]
    for m in members:
        m.bonus_earned = D(5)
    result = grade(preset("sanmenxia"), members, YEAR)
    assert [("not_nominable" in result.line(m).flags) for m in (1, 2, 3)] == [False, True, True]
    same = [direct(i, "110", method=YearMethod.SUM, past=past) for i in (1, 2)]
    assert all("not_nominable" not in line.flags for line in grade(preset("sanmenxia"), same, YEAR).lines)


# --- 张店 (C): halves 60/40 with the democratic evaluation, veto, ranking tiers ------------------------


def vanguard(month: int, job: int = 10, vol: int = 10, unity: int = 10, tasks: int = 20) -> list[Entry]:
    return [e("job_performance", job, d(month)), e("volunteering", vol, d(month)), e("unity_law", unity, d(month)),
            e("carry_out_tasks", tasks, d(month))]


def test_zhangdian_full_year_by_hand() -> None:
    code = "zhangdian"
    a_rows = [r for m in range(1, 7) for r in vanguard(m)] + [r for m in range(7, 13) for r in vanguard(m, job=8)]
    a = member(1, code, a_rows + [e("district_praise", 10, d(4))], democratic={1: D(90), 2: D(85)})
    # A, H1: months 30 + 20 + 50 = 100, + incentive 10 = 110; 110 × 0.6 + 90 × 0.4 = 66 + 36 = 102
    #    H2: months 98 each; 98 × 0.6 + 85 × 0.4 = 58.8 + 34 = 92.8;  year (102 + 92.8)/2 = 97.4
    b_rows = [r for m in range(1, 13) for r in vanguard(m, 5, 5, 5, 10)] + [e("meetings", -10, d(3), "absent")]
    b = member(2, code, b_rows, democratic={1: D(80)})
    # B, H1: months 30 + 20 + 25 = 75, March 65 → 440/6 = 73.333…; × 0.6 = 44; + 80 × 0.4 = 32 → 76
    #    H2: 75 each, democratic missing → the quantified part alone, 75 (provisional); year (76 + 75)/2 = 75.5
    c_rows = [r for m in range(1, 13) for r in vanguard(m, 5, 5, 5, 10)] + [e("law_breaking", 0, d(9))]
    c = member(3, code, c_rows, democratic={1: D(70), 2: D(95)})
    # C, H1: 75 × 0.6 + 70 × 0.4 = 45 + 28 = 73; H2 vetoed → 0; year 36.5
    u = member(4, code, [r for m in range(1, 13) for r in vanguard(m)], democratic={1: D(50), 2: D(50)}, unqualified=True)
    # U: rated unqualified in the democratic evaluation: scored (100 × 0.6 + 50 × 0.4 = 80), not ranked
    result = grade(preset(code), [a, b, c, u], YEAR)
    lines = by_id(result)
    assert (lines[1].figure, lines[1].half_figures, lines[1].rank) == (D("97.40"), {1: D("102.00"), 2: D("92.80")}, 1)
    assert (lines[2].figure, lines[2].half_figures, lines[2].rank) == (D("75.50"), {1: D("76.00"), 2: D("75.00")}, 2)
    assert (lines[3].figure, lines[3].half_figures, lines[3].rank) == (D("36.50"), {1: D("73.00"), 2: D("0.00")}, 3)
    assert (lines[4].figure, lines[4].graded, lines[4].rank, lines[4].flags) == (D("80.00"), False, None, ["democratic_unqualified"])
    assert lines[2].flags == ["democratic_missing"] and result.provisional
    assert "zeroed" in lines[3].flags
    # 3 ranked: top ceil(0.3) = 1 → A; bottom ceil(0.09) = 1 → C
    assert "top_tier" in lines[1].flags and lines[1].tiers == ["top"]
    assert "bottom_tier" in lines[3].flags and lines[3].tiers == ["lagging"]
    assert lines[1].half_ranks == {1: 1, 2: 1} and lines[3].half_ranks == {1: 3, 2: 3}
    # once the democratic evaluation of H2 is in, the result is no longer provisional
    b_done = member(2, code, b_rows, democratic={1: D(80), 2: D(80)})
    # B, H2: 75 × 0.6 + 80 × 0.4 = 45 + 32 = 77; year (76 + 77)/2 = 76.5
    done = grade(preset(code), [a, b_done, c, u], YEAR)
    assert not done.provisional and done.line(2).figure == D("76.50") and done.line(2).flags == []


def test_zhangdian_member_joining_in_august_has_one_half() -> None:
    m = member(1, "zhangdian", [r for mo in range(8, 13) for r in vanguard(mo)], joined=date(YEAR, 8, 1), democratic={2: D(70)})
    # H2 only: 100 × 0.6 + 70 × 0.4 = 88 → the year is that half
    line = grade(preset("zhangdian"), [m], YEAR).lines[0]
    assert (line.figure, line.half_figures) == (D("88.00"), {2: D("88.00")})


def test_zhangdian_tiers_with_35_members() -> None:
    members = [halves_member(i, str(101 - i)) for i in range(1, 36)]  # 100, 99, …, 66
    result = grade(preset("zhangdian"), members, YEAR)
    top = [line.member_id for line in result.lines if "top_tier" in line.flags]
    bottom = [line.member_id for line in result.lines if "bottom_tier" in line.flags]
    assert tier_size(D("0.10"), 35) == 4 and tier_size(D("0.03"), 35) == 2  # ceil(3.5), ceil(1.05)
    assert top == [1, 2, 3, 4] and bottom == [34, 35]
    # a tie at the cut: everyone tied with the 4th is in the top tier, with the 34th in the bottom tier
    members[4] = halves_member(5, "97")
    members[32] = halves_member(33, "67")
    tied = grade(preset("zhangdian"), members, YEAR)
    assert [line.member_id for line in tied.lines if "top_tier" in line.flags] == [1, 2, 3, 4, 5]
    assert [line.member_id for line in tied.lines if "bottom_tier" in line.flags] == [33, 34, 35]
    assert [tied.line(m).rank for m in (4, 5, 6)] == [4, 4, 6]


# --- all schemes ---------------------------------------------------------------------------------


def test_exempt_are_listed_not_graded_and_probationary_by_the_rulebook_everywhere() -> None:
    for code in ("xishui", "zhangdian", "jiancaoping", "sanmenxia"):
        x = member(1, code, state=MemberState.EXEMPT)
        p = member(2, code, state=MemberState.PROBATIONARY)
        result = grade(preset(code), [x, p], YEAR)
        assert not result.line(1).graded and result.line(1).flags == ["exempt"] and result.line(1).figure is None
        # 预备党员…不确定等次 is seed 004's (浠水) alone; the other seeds band or rank every member
        graded = code != "xishui"
        assert preset(code).settings.grade_probationary is graded
        assert result.line(2).graded is graded and result.line(2).figure is not None
        assert ("probationary" in result.line(2).flags) is not graded
        assert result.ranked == int(graded)


def test_result_survives_a_json_snapshot_and_feeds_next_year() -> None:
    first = grade(preset("xishui"), [direct(1, "52", year=YEAR - 1), direct(2, "85", year=YEAR - 1),
                                     direct(3, "70", state=MemberState.PROBATIONARY, year=YEAR - 1)], YEAR - 1)
    restored = GradeResult.model_validate_json(first.model_dump_json())
    assert restored == first
    past = restored.past_year(1)
    assert past == PastYear(year=YEAR - 1, figure=D("52.00"), band_code="unqualified_1", passing=False, rank=2, ranked=2)
    assert restored.past_year(3).passing is None and restored.past_year(99) is None  # type: ignore[union-attr]
    line = grade(preset("xishui"), [direct(1, "40", past=[past])], YEAR).lines[0]  # type: ignore[list-item]
    assert "study_class" in line.flags


def test_competition_ranks() -> None:
    assert competition_ranks([(1, D(90)), (2, D(85)), (3, D(85)), (4, D(70))]) == {1: 1, 2: 2, 3: 2, 4: 4}


def test_duplicate_member_and_wrong_year_refused() -> None:
    with pytest.raises(ValueError):
        grade(preset("xishui"), [direct(1, "80"), direct(1, "70")], YEAR)
    with pytest.raises(ValueError):
        grade(preset("xishui"), [direct(1, "80")], YEAR + 1)


figures = st.decimals(min_value=0, max_value=110, places=2, allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(st.lists(figures, min_size=1, max_size=40), st.booleans())
def test_quota_and_ranks_hold_for_any_figures(values: list[D], resolve: bool) -> None:
    rulebook = preset("xishui")
    members = [direct(i, v) for i, v in enumerate(values, start=1)]
    result = grade(rulebook, members, YEAR)
    if resolve and result.tie:
        free = result.quota_places - result.distribution["excellent"]  # type: ignore[operator]
        result = grade(rulebook, members, YEAR, tie_choice=set(result.tie[:free]))
        assert not result.provisional
    if not resolve:
        assert result.provisional == bool(result.tie)
    excellent = [line for line in result.lines if line.band_code == "excellent"]
    assert len(excellent) <= result.quota_places  # type: ignore[operator]
    qualifying = sum(1 for v in values if v >= 80)
    if not result.provisional:
        assert len(excellent) == min(qualifying, result.quota_places)  # type: ignore[type-var]
    assert all(line.graded and line.band_code is not None for line in result.lines)
    assert sum(result.distribution.values()) == len(values)
    for x in result.lines:
        assert x.rank == 1 + sum(1 for y in result.lines if y.figure > x.figure)  # type: ignore[operator]
    ranks = [line.rank for line in result.lines]
    assert ranks == sorted(ranks)  # type: ignore[type-var]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.decimals(min_value=0, max_value=100, places=2), min_size=1, max_size=60))
def test_tiers_hold_for_any_figures(values: list[D]) -> None:
    result = grade(preset("zhangdian"), [halves_member(i, v) for i, v in enumerate(values, start=1)], YEAR)
    n = len(values)
    top = [line for line in result.lines if "top_tier" in line.flags]
    bottom = [line for line in result.lines if "bottom_tier" in line.flags]
    assert len(top) >= tier_size(D("0.10"), n)
    assert not {line.member_id for line in top} & {line.member_id for line in bottom}
    if top and bottom:
        assert min(line.figure for line in top) > max(line.figure for line in bottom)  # type: ignore[type-var]
