"""Each preset's arithmetic, pinned with the worked examples of DOMAIN.md. No event loop, no database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.scoring import (
    Entry,
    band_of,
    counted_months,
    democratic_score,
    effective,
    month_score,
    publish,
    year_score,
)
from bot.presets import preset

_ids = iter(range(1, 10**9))


def e(item: str, value: str | int, day: date, event: str | None = None, reverses: int | None = None, id: int | None = None) -> Entry:
    return Entry(id=id or next(_ids), item_code=item, value=D(value), occurred_on=day, event_code=event, reverses_id=reverses)


MARCH = date(2026, 3, 10)


# --- 浠水 (D) -------------------------------------------------------------------------------------


def test_xishui_month_with_one_unexcused_absence_and_dues_late_once() -> None:
    rulebook = preset("xishui")
    entries = [e("study", -5, MARCH, "absent"), e("dues", -3, MARCH, "late")]
    month = month_score(rulebook, entries, 2026, 3)
    obligations = {c.code: c.points for c in month.categories}["obligations"]
    assert obligations == D(32)  # study 5 + organisation life 10 + dues 7 + law 10
    # posts: two claimed posts give their 10 "claim" points each; duties not yet assessed (default 0)
    assert {c.code: c.points for c in month.categories}["posts"] == D(20)
    assert month.total == D(52)


def test_xishui_allotment_never_below_zero_and_caps() -> None:
    rulebook = preset("xishui")
    entries = [e("study", -5, MARCH, "absent") for _ in range(3)] + [e("post_deed", 10, MARCH) for _ in range(5)]
    scores = {c.code: c for c in month_score(rulebook, entries, 2026, 3).categories}
    assert scores["obligations"].points == D(30)  # study floors at 0, not -5
    assert scores["posts"].points == D(40)  # claims 20 + practical things capped at 10 per post (20)


def test_xishui_year_is_mean_of_months_plus_capped_bonus() -> None:
    rulebook = preset("xishui")
    entries = [
        e("study", -5, date(2026, 1, 8), "absent"),  # January 55 (45 + 20 - 10?) computed below
        e("post_duty", 20, date(2026, 2, 8)),
        e("honor_national", 4, date(2026, 2, 1)),
        e("honor_city", 3, date(2026, 2, 1)),
        e("honor_county", 2, date(2026, 2, 1)),
        e("economy", 2, date(2026, 2, 1)),
        e("public_welfare", 2, date(2026, 2, 1)),  # 13 earned, capped at 10
    ]
    months = counted_months(2026, date(2026, 2, 28))
    year = year_score(rulebook, entries, 2026, months)
    assert [m.total for m in year.months] == [D(55), D(80)]
    assert year.bonus == D(10)
    assert year.figure == D("67.5") + D(10)


def test_xishui_zero_out_makes_the_year_zero_and_reversal_restores_it() -> None:
    rulebook = preset("xishui")
    veto = e("law_breaking", 0, MARCH, id=900)
    months = counted_months(2026, date(2026, 3, 31))
    assert year_score(rulebook, [veto], 2026, months).figure == 0
    assert year_score(rulebook, [veto], 2026, months).zeroed
    reversed_ = e("law_breaking", 0, MARCH, reverses=900)
    assert year_score(rulebook, [veto, reversed_], 2026, months).figure == D(60)


@pytest.mark.parametrize(
    ("figure", "stars", "band"),
    [
        ("80", 5, "excellent"),
        ("79.99", 4, "qualified"),
        ("79.995", 5, "excellent"),  # the band is decided on the published (rounded) figure
        ("70", 4, "qualified"),
        ("69.99", 3, "basic"),
        ("60", 3, "basic"),
        ("59.99", 2, "unqualified_2"),
        ("55", 2, "unqualified_2"),
        ("54.99", 1, "unqualified_1"),
        ("50", 1, "unqualified_1"),
        ("49.99", 0, "unqualified_0"),
        ("0", 0, "unqualified_0"),
    ],
)
def test_xishui_band_edges(figure: str, stars: int, band: str) -> None:
    found = band_of(preset("xishui"), D(figure))
    assert found is not None and (found.code, found.stars) == (band, stars)


# --- 张店 (C) -------------------------------------------------------------------------------------


def test_zhangdian_month_with_one_leave_and_dues_late() -> None:
    rulebook = preset("zhangdian")
    entries = [e("meetings", -2, MARCH, "leave"), e("dues", -10, MARCH, "late")]
    month = month_score(rulebook, entries, 2026, 3)
    assert {c.code: c.points for c in month.categories}["obligations"] == D(38)  # 28 + 10
    assert month.total == D(38)  # vanguard items not yet assessed: 0


def test_zhangdian_unpaid_dues_get_none_of_the_twenty_and_absences_floor() -> None:
    rulebook = preset("zhangdian")
    entries = [e("dues", -20, MARCH, "unpaid")] + [e("meetings", -10, MARCH, "absent") for _ in range(4)]
    assert month_score(rulebook, entries, 2026, 3).total == 0


def test_zhangdian_half_is_sixty_forty_with_capped_bonus() -> None:
    rulebook = preset("zhangdian")
    vanguard = ["job_performance", "volunteering", "unity_law"]
    entries = []
    for month in range(1, 7):
        day = date(2026, month, 15)
        entries += [e(code, 8, day) for code in vanguard] + [e("carry_out_tasks", 15, day)]  # 50 + 24 + 15 = 89
    entries += [e("district_praise", 15, date(2026, 4, 1)), e("district_praise", 10, date(2026, 5, 1))]  # 25 → 20
    months = counted_months(2026, date(2026, 6, 30))
    provisional = year_score(rulebook, entries, 2026, months)
    assert provisional.provisional and provisional.halves[0].quantified == D(109)
    final = year_score(rulebook, entries, 2026, months, democratic={1: D(90)})
    assert final.halves[0].result == D(109) * D("0.6") + D(90) * D("0.4") == D("101.4")
    assert not final.provisional and final.figure == D("101.4")


def test_zhangdian_democratic_evaluation_weights() -> None:
    weights = preset("zhangdian").year_result.democratic_weights
    ratings = {"self": D(100), "peer": D(80), "public": D(90), "branch": D(70)}
    assert democratic_score(ratings, weights) == D(10) + D(24) + D(27) + D(21)


# --- 三门峡 (A) and 尖草坪 (B) ---------------------------------------------------------------------


def test_sanmenxia_eleven_machinery_repairs_are_thirty_three() -> None:
    rulebook = preset("sanmenxia")
    repair = next(i for _, i in rulebook.items() if i.value == 3 and "机" in i.name.zh)
    entries = [e(repair.code, 3, date(2026, m % 12 + 1, 3)) for m in range(11)]
    year = year_score(rulebook, entries, 2026, counted_months(2026, date(2026, 12, 31)))
    bonus = sum((c.points for c in year.categories), D(0))
    assert bonus == D(33)
    assert year.figure == D(133)  # base 100 + 33


def test_jiancaoping_base_plus_positive_minus_negative_and_zero_out() -> None:
    rulebook = preset("jiancaoping")
    plus = next(i for _, i in rulebook.items() if i.value is not None and i.value > 0)
    minus = next(i for _, i in rulebook.items() if i.value is not None and i.value < 0)
    entries = [e(plus.code, plus.value, MARCH), e(minus.code, minus.value, MARCH)]
    months = counted_months(2026, date(2026, 3, 31))
    assert year_score(rulebook, entries, 2026, months).figure == D(80) + plus.value + minus.value
    zero = next(i for _, i in rulebook.items() if i.kind == "zero_out")
    assert year_score(rulebook, [*entries, e(zero.code, 0, MARCH)], 2026, months).figure == 0


@pytest.mark.parametrize(("figure", "band"), [("90", 0), ("89.99", 1), ("80", 1), ("79.99", 2), ("60", 2), ("59.99", 3)])
def test_jiancaoping_band_edges(figure: str, band: int) -> None:
    rulebook = preset("jiancaoping")
    assert band_of(rulebook, D(figure)) == rulebook.bands[band]


# --- general rules ---------------------------------------------------------------------------------


def test_publish_rounds_half_up() -> None:
    assert publish(D("79.995")) == D("80.00")
    assert publish(D("2") / D("3")) == D("0.67")
    assert publish(D("-0.005")) == D("-0.01")


def test_counted_months_follow_membership() -> None:
    today = date(2026, 11, 21)
    assert counted_months(2026, today) == [(2026, m) for m in range(1, 12)]
    assert counted_months(2026, today, joined_on=date(2026, 9, 30)) == [(2026, 9), (2026, 10), (2026, 11)]
    assert counted_months(2026, today, left_on=date(2026, 2, 1)) == [(2026, 1), (2026, 2)]
    assert counted_months(2025, today) == [(2025, m) for m in range(1, 13)]
    assert counted_months(2027, today) == []


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(-20, 20), st.booleans()), max_size=30))
def test_sum_scheme_total_equals_the_ledger(rows: list[tuple[int, bool]]) -> None:
    """For an uncapped sum scheme the year is the base plus what the effective rows add up to."""
    rulebook = preset("jiancaoping")
    plus = next(i for _, i in rulebook.items() if i.value is not None and i.value > 0)
    entries: list[Entry] = []
    for n, (value, reverse) in enumerate(rows, start=1):
        code = plus.code if value >= 0 else "fake"
        entries.append(Entry(id=n * 2, item_code=code, value=D(value), occurred_on=MARCH))
        if reverse:
            entries.append(Entry(id=n * 2 + 1, item_code=code, value=D(-value), occurred_on=MARCH, reverses_id=n * 2))
    kept = [x for x in effective(entries) if x.item_code == plus.code]
    expected = max(D(0), D(80) + sum((x.value for x in kept), D(0)))
    assert year_score(rulebook, entries, 2026, [(2026, 3)]).figure == expected


def test_year_so_far_averages_ended_months_but_sums_everything() -> None:
    from bot.domain.scoring import months_so_far

    april_first = date(2026, 4, 1)
    assert months_so_far(preset("xishui"), april_first) == [(2026, 1), (2026, 2), (2026, 3)]
    assert months_so_far(preset("zhangdian"), april_first)[-1] == (2026, 3)
    assert months_so_far(preset("sanmenxia"), april_first)[-1] == (2026, 4)  # a sum counts everything to date
    assert months_so_far(preset("xishui"), date(2026, 1, 15)) == [(2026, 1)]  # the only month yet
    assert months_so_far(preset("xishui"), april_first, joined_on=date(2026, 4, 1)) == [(2026, 4)]
