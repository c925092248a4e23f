"""预备党员 (probationary members) by each rulebook's own rule, not 浠水's everywhere.

Only seed 004 (浠水) l.83 sets them apart: "预备党员参加积分制管理，但不确定等次。预备党员年度积分不足60分的，延长
预备期". Seeds 000/002 (三门峡), 001 (尖草坪) and 003 (张店) are silent and band or rank every member (001: 總分
60分以下的，確定為不合格黨員; a zero-out 直接確定為不合格黨員). So ``settings.grade_probationary`` is false and
``probation_extend_below`` 60 in xishui.toml alone; elsewhere a probationary member is graded like anyone.

Pure domain: no event loop.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from bot.domain.grading import grade
from bot.domain.records import MemberState
from bot.presets import preset
from tests.test_grading import YEAR, direct, e, member, vanguard

P = MemberState.PROBATIONARY


@pytest.mark.parametrize(("code", "graded", "extend_below"), [
    ("xishui", False, D(60)), ("jiancaoping", True, None), ("sanmenxia", True, None), ("zhangdian", True, None)])
def test_each_preset_says_whether_probationary_members_are_graded(code: str, graded: bool, extend_below) -> None:
    settings = preset(code).settings
    assert settings.grade_probationary is graded
    assert settings.probation_extend_below == extend_below


def test_jiancaoping_probationary_zero_out_is_unqualified() -> None:
    """001: a zero-out 直接確定為不合格黨員 — a probationary member too (the audit's section 8: was band None)."""
    rows = [e("crime", 0, date(YEAR, 11, 5)), e("brave_deed", 5, date(YEAR, 11, 6))]
    p = member(1, "jiancaoping", rows, state=P)
    line = grade(preset("jiancaoping"), [p], YEAR).line(1)
    assert (line.figure, line.graded, line.band_code, line.rank, line.flags) == (D("0.00"), True, "unqualified", 1, ["zeroed"])


def test_jiancaoping_probationary_member_is_banded_and_ranked_with_the_others() -> None:
    """Base 80: a probationary member with −30 of deductions (gambling −10 three times) has 50 → 60分以下 不合格;
    an active member with nothing has 80 → the 80至89 band. No extend-probation flag: 尖草坪 has no such rule."""
    rows = [e("gambling", -10, date(YEAR, m, 3)) for m in (2, 3, 4)]
    p = member(1, "jiancaoping", rows, state=P)
    a = member(2, "jiancaoping")
    result = grade(preset("jiancaoping"), [p, a], YEAR)
    line = result.line(1)
    assert (line.figure, line.band_code, line.rank, line.flags) == (D("50.00"), "unqualified", 2, [])
    assert result.line(2).rank == 1 and result.ranked == 2 and result.distribution["unqualified"] == 1


def test_sanmenxia_probationary_member_is_ranked_and_can_be_lagging() -> None:
    """三门峡 ranks everyone: a probationary member with no contribution bonus is lagging (后进) like anyone."""
    p = member(1, "sanmenxia", state=P)
    a = member(2, "sanmenxia", [e("snow_clearing", 1, date(YEAR, 1, 9))])
    result = grade(preset("sanmenxia"), [p, a], YEAR)
    assert (result.line(1).graded, result.line(1).rank, result.line(1).flags) == (True, 2, ["lagging"])
    assert result.line(2).rank == 1 and result.ranked == 2


def test_zhangdian_probationary_member_is_ranked_and_in_the_tiers() -> None:
    """张店: 3 ranked → top ceil(0.3) = 1, bottom ceil(0.09) = 1; the probationary member has the lowest year."""
    rows = [r for m in range(1, 13) for r in vanguard(m)]
    weak = [r for m in range(1, 13) for r in vanguard(m, 5, 5, 5, 10)]
    ms = [member(1, "zhangdian", rows, democratic={1: D(90), 2: D(90)}),
          member(2, "zhangdian", rows, democratic={1: D(80), 2: D(80)}),
          member(3, "zhangdian", weak, state=P, democratic={1: D(80), 2: D(80)})]
    result = grade(preset("zhangdian"), ms, YEAR)
    line = result.line(3)
    # 75 × 0.6 + 80 × 0.4 = 45 + 32 = 77 each half
    assert (line.figure, line.graded, line.rank, line.tiers, line.half_ranks) == (D("77.00"), True, 3, ["lagging"], {1: 3, 2: 3})
    assert result.line(1).tiers == ["top"]


def test_xishui_probationary_member_is_scored_not_graded_and_extends_below_60() -> None:
    ms = [direct(1, "85"), direct(2, "59.99", state=P), direct(3, "60", state=P), direct(4, "95", state=P)]
    result = grade(preset("xishui"), ms, YEAR)
    assert [result.line(i).graded for i in (1, 2, 3, 4)] == [True, False, False, False]
    assert result.line(2).flags == ["probationary", "extend_probation"]
    assert result.line(3).flags == ["probationary"] and result.line(4).band_code is None
    assert result.ranked == 1 and result.quota_places == 1  # the quota counts the graded: 1 → at least 1


def test_the_two_settings_are_independent() -> None:
    """A branch's rulebook may grade probationary members and still flag extend_probation (or the reverse)."""
    base = preset("jiancaoping")
    both = base.model_copy(update={"settings": base.settings.model_copy(update={"probation_extend_below": D(60)})})
    rows = [e("gambling", -10, date(YEAR, m, 3)) for m in (2, 3, 4)]
    line = grade(both, [member(1, "jiancaoping", rows, state=P)], YEAR).line(1)
    assert (line.graded, line.band_code, line.flags) == (True, "unqualified", ["extend_probation"])
    neither = base.model_copy(update={"settings": base.settings.model_copy(update={"grade_probationary": False})})
    line = grade(neither, [member(1, "jiancaoping", rows, state=P)], YEAR).line(1)
    assert (line.graded, line.band_code, line.flags) == (False, None, ["probationary"])


def test_too_few_months_still_decides_before_probation() -> None:
    """A probationary member who joined in November (2 months < 3) is not graded under any preset; under 浠水
    no extend-probation judgement either (too few months to judge)."""
    for code in ("xishui", "jiancaoping", "sanmenxia"):
        p = member(1, code, state=P, joined=date(YEAR, 11, 2))
        line = grade(preset(code), [p], YEAR).line(1)
        assert not line.graded and "not_enough_months" in line.flags and "extend_probation" not in line.flags, code


def test_the_rulebook_validates_the_settings() -> None:
    from pydantic import ValidationError

    from bot.domain.rulebook import Settings

    assert Settings().grade_probationary is True and Settings().probation_extend_below is None
    assert Settings.model_validate({"probation_extend_below": 60}).probation_extend_below == D(60)
    with pytest.raises(ValidationError):
        Settings.model_validate({"grade_probationary": "perhaps"})
