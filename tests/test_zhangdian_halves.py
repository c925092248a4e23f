"""张店: a member rated 不合格 in ONE half's democratic evaluation is left out of THAT half's 考核评议 only.

Seed 003 l.47: "每半年民主评议党员工作结束后，组织开展一次党员考核评议工作。民主评议中被评定为不合格党员的，按照
有关规定进行组织处置，不参加考核评议。" The exclusion is per half: the member has no rank in that half and is
ranked in the other with everyone else. The year (our summary of the halves, DOMAIN decision 5) is handled
separately: figure shown, no year rank, no year tier (bot/domain/grading.py's docstring says why).

Pure domain and rendering: no event loop. Every member has months of 30 + 20 + 50 = 100 (the four vanguard
items excellent), so a half = 100 × 0.6 + democratic × 0.4 = 60 + 0.4 × democratic.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from pydantic import ValidationError

from bot.domain.grading import GradeResult, MemberYear, grade
from bot.domain.records import MemberState
from bot.i18n import Translator
from bot.presets import preset
from handlers.grading import result_line
from tests.test_grading import YEAR, member, vanguard

ROWS = [r for m in range(1, 13) for r in vanguard(m)]
ZHANGDIAN = preset("zhangdian")


def zd(mid: int, h1: int, h2: int, unqualified: frozenset[int] | set[int] | bool = frozenset()) -> MemberYear:
    """A 张店 member with excellent months and democratic ratings h1 / h2."""
    return member(mid, "zhangdian", ROWS, democratic={1: D(h1), 2: D(h2)}, unqualified=unqualified)  # type: ignore[arg-type]


def branch_of_five(unqualified: set[int]) -> GradeResult:
    """Four ordinary members and m010, whose H1 rating of 95 would top H1 — but the branch rated them 不合格
    in H1 (``unqualified``) — and whose H2 of 90 ties the best H2.
      m001 90/90 → H1 96, H2 96, year 96        m002 80/80 → 92, 92, 92
      m003 70/90 → 88, 96, 92                   m004 50/50 → 80, 80, 80
      m010 95/90 → H1 98, H2 96, year 97 (the best year, were it ranked)
    """
    members = [zd(1, 90, 90), zd(2, 80, 80), zd(3, 70, 90), zd(4, 50, 50), zd(10, 95, 90, unqualified)]
    return grade(ZHANGDIAN, members, YEAR)


def test_unqualified_in_h1_is_ranked_in_h2_only() -> None:
    result = branch_of_five({1})
    m10 = result.line(10)
    assert m10.half_figures == {1: D("98.00"), 2: D("96.00")}  # both halves' figures, for the record
    assert m10.excluded_halves == [1] and m10.half_ranks == {2: 1}  # ties m001 and m003 at 96 in H2
    assert m10.flags == ["democratic_unqualified"]
    # the year: handled separately — figure shown, no grade, no rank, no tier
    assert (m10.figure, m10.graded, m10.rank, m10.tiers) == (D("97.00"), False, None, [])
    # H1 is ranked without m010 (whose 98 would have been first); H2 with them
    assert {i: result.line(i).half_ranks for i in (1, 2, 3, 4)} == {
        1: {1: 1, 2: 1}, 2: {1: 2, 2: 4}, 3: {1: 3, 2: 1}, 4: {1: 4, 2: 5}}
    # the year ranks and tiers: 4 ranked → top ceil(0.4) = 1 (m001 96), bottom ceil(0.12) = 1 (m004 80)
    assert result.ranked == 4
    assert {i: result.line(i).rank for i in (1, 2, 3, 4)} == {1: 1, 2: 2, 3: 2, 4: 4}
    assert result.line(1).tiers == ["top"] and result.line(4).tiers == ["lagging"]
    assert not result.provisional


def test_unqualified_in_h2_is_ranked_in_h1_only() -> None:
    result = branch_of_five({2})
    m10 = result.line(10)
    assert m10.excluded_halves == [2] and m10.half_ranks == {1: 1}  # 98 is H1's best
    assert (m10.graded, m10.rank, m10.tiers) == (False, None, [])
    # H1 with m010 first: 96 → 2, 92 → 3, 88 → 4, 80 → 5; H2 without them: 96, 92, 96, 80 → 1, 3, 1, 4
    assert {i: result.line(i).half_ranks for i in (1, 2, 3, 4)} == {
        1: {1: 2, 2: 1}, 2: {1: 3, 2: 3}, 3: {1: 4, 2: 1}, 4: {1: 5, 2: 4}}


def test_unqualified_in_both_halves_is_ranked_nowhere_and_the_old_bool_means_both() -> None:
    both = branch_of_five({1, 2})
    m10 = both.line(10)
    assert m10.excluded_halves == [1, 2] and m10.half_ranks == {} and m10.rank is None
    assert m10.figure == D("97.00") and m10.flags == ["democratic_unqualified"]
    assert zd(10, 95, 90, True).democratic_unqualified == frozenset({1, 2})
    assert zd(10, 95, 90, False).democratic_unqualified == frozenset()
    legacy = grade(ZHANGDIAN, [zd(1, 90, 90), zd(10, 95, 90, True)], YEAR)
    assert legacy.line(10).excluded_halves == [1, 2] and legacy.line(10).half_ranks == {}


def test_qualified_in_both_halves_is_graded_as_before() -> None:
    result = branch_of_five(set())
    m10 = result.line(10)
    assert (m10.rank, m10.half_ranks, m10.excluded_halves, m10.tiers) == (1, {1: 1, 2: 1}, [], ["top"])
    assert result.ranked == 5


def test_the_exclusion_concerns_only_halves_the_member_was_scored_in() -> None:
    """A member who joined in August has H2 alone; a (stale) H1 不合格 does not touch their H2."""
    from datetime import date

    joined = member(5, "zhangdian", [r for m in range(8, 13) for r in vanguard(m)], joined=date(YEAR, 8, 1),
                    democratic={2: D(70)}, unqualified={1})
    result = grade(ZHANGDIAN, [zd(1, 90, 90), joined], YEAR)
    line = result.line(5)
    assert line.excluded_halves == [] and line.graded and line.rank == 2 and line.figure == D("88.00")
    assert "democratic_unqualified" not in line.flags


def test_a_half_outside_1_and_2_is_refused() -> None:
    with pytest.raises(ValidationError):
        zd(1, 90, 90, {3})


def test_a_probationary_or_short_member_keeps_those_reasons() -> None:
    """The exclusion adds to the other reasons: a member with too few months is not ranked in any half."""
    from datetime import date

    short = member(6, "zhangdian", [r for m in range(11, 13) for r in vanguard(m)], joined=date(YEAR, 11, 1),
                   democratic={2: D(40)}, unqualified={2})
    line = grade(ZHANGDIAN, [zd(1, 90, 90), short], YEAR).line(6)
    assert line.flags == ["democratic_unqualified", "not_enough_months"] and line.half_ranks == {}


def test_the_result_keeps_the_excluded_halves_through_a_json_snapshot() -> None:
    result = branch_of_five({1})
    assert GradeResult.model_validate_json(result.model_dump_json()) == result


@pytest.mark.parametrize(("lang", "expected"), [
    ("zh", "— m010　97 分（不定等次）（上半年 98 分〔民主评议不合格，不参加本半年考核评议〕、下半年 96 分 第1名）"),
    ("en", "— m010  97 points (not graded) (H1 98, left out of the half's evaluation: unqualified in its democratic "
           "evaluation, H2 96, rank 1)"),
])
def test_the_preview_line_says_which_half_was_left_out(lang: str, expected: str) -> None:
    line = branch_of_five({1}).line(10)
    text = result_line(Translator(lang), ZHANGDIAN, line)
    assert text.startswith(expected), text
    flag = {"zh": "民主评议不合格：该半年不参加考核评议，全年另行处置（组织处置），不参加年度排名",
            "en": "Unqualified in a half's democratic evaluation"}[lang]
    assert flag in text
    public = result_line(Translator(lang), ZHANGDIAN, line, public=True)
    assert flag in public  # the group's publicity says why the member has no year rank
