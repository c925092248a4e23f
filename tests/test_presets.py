"""The shipped presets: they load, they say what DOMAIN.md and the seeds say, and bad rulebooks are refused."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from bot.domain.rulebook import (
    CODE_PATTERN,
    CustomItem,
    Item,
    ItemKind,
    Origin,
    Period,
    Rulebook,
    RulebookError,
    Text,
    Trigger,
    YearMethod,
    load_rulebook,
    parse_rulebook,
)
from bot.presets import PRESET_CODES, all_presets, preset


def D(value: object, expected: str) -> None:
    """``value`` is a Decimal equal to ``expected`` exactly (never a float)."""
    assert isinstance(value, Decimal), f"{value!r} is {type(value).__name__}, not Decimal"
    assert value == Decimal(expected), f"{value!r} != {expected}"


def walk(node: object, path: str = ""):
    """Every (path, value) reachable in a model, tuples, dicts and frozensets included."""
    yield path, node
    if isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield from walk(getattr(node, name), f"{path}.{name}" if path else name)
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, (tuple, list, frozenset)):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}.{index}")


def codes(rulebook: Rulebook) -> list[str]:
    return [c.code for c in rulebook.categories] + [i.code for _, i in rulebook.items()]


# --- every preset ---------------------------------------------------------------------------------


def test_all_presets_are_shipped() -> None:
    assert set(all_presets()) == set(PRESET_CODES) == {"xishui", "zhangdian", "jiancaoping", "sanmenxia"}
    for code in PRESET_CODES:
        assert (Path(__file__).parents[1] / "bot" / "presets" / f"{code}.toml").is_file()


@pytest.mark.parametrize("code", PRESET_CODES)
def test_preset_loads_and_validates(code: str) -> None:
    rulebook = preset(code)
    assert isinstance(rulebook, Rulebook)
    assert rulebook.code == code
    # it survives a round trip through the model's own validation
    assert Rulebook.model_validate(rulebook.model_dump()) == rulebook
    # and loads the same from its file
    assert load_rulebook(Path(__file__).parents[1] / "bot" / "presets" / f"{code}.toml") == rulebook


@pytest.mark.parametrize("code", PRESET_CODES)
def test_preset_has_declarable_items(code: str) -> None:
    declarable = preset(code).declarable()
    assert declarable
    for _, item in declarable:
        assert not item.is_deduction
        assert item.kind in (ItemKind.FIXED, ItemKind.RANGED)


@pytest.mark.parametrize("code", PRESET_CODES)
def test_codes_are_unique_and_short(code: str) -> None:
    rulebook = preset(code)
    all_codes = codes(rulebook)
    assert len(all_codes) == len(set(all_codes))
    for c in all_codes:
        assert re.match(CODE_PATTERN, c), c
    for _, item in rulebook.items():
        event_codes = [e.code for e in item.events]
        assert len(event_codes) == len(set(event_codes))


@pytest.mark.parametrize("code", PRESET_CODES)
def test_every_text_is_bilingual(code: str) -> None:
    texts = [(path, node) for path, node in walk(preset(code)) if isinstance(node, Text)]
    assert texts
    for path, text in texts:
        assert text.zh.strip() and text.en.strip(), path
        assert text.get("zh") == text.zh and text.get("en") == text.en
    for _, item in preset(code).items():
        assert len(item.name.zh) <= 20, f"{item.code}: name too long for a button: {item.name.zh}"


@pytest.mark.parametrize("code", PRESET_CODES)
def test_no_binary_floats_anywhere(code: str) -> None:
    for path, node in walk(preset(code)):
        assert not isinstance(node, float), path
    for _, item in preset(code).items():
        for field in ("value", "min", "max", "full", "cap", "default"):
            value = getattr(item, field)
            assert value is None or isinstance(value, Decimal), (item.code, field)


@pytest.mark.parametrize("code", PRESET_CODES)
def test_items_are_well_shaped(code: str) -> None:
    for _, item in preset(code).items():
        assert item.triggers
        if item.kind is ItemKind.ZERO_OUT:
            assert item.is_deduction and Trigger.DECLARATION not in item.triggers
        if item.is_deduction and item.kind is ItemKind.FIXED:
            assert Trigger.DECLARATION not in item.triggers


# --- 浠水 (scheme D, seed 004) ----------------------------------------------------------------------


def test_xishui_obligations() -> None:
    rb = preset("xishui")
    obligations = rb.category("obligations")
    assert obligations is not None and obligations.period is Period.MONTH
    D(obligations.cap, "40")
    for code in ("study", "org_life"):
        item = rb.item(code)
        assert item is not None and item.kind is ItemKind.ALLOTMENT
        D(item.full, "10")
        D(item.event("absent").value, "-5")
        for event in ("late", "early", "leave"):
            D(item.event(event).value, "-2")
    dues = rb.item("dues")
    D(dues.full, "10")
    D(dues.event("not_standard").value, "-10")
    D(dues.event("late").value, "-3")
    law = rb.item("law")
    D(law.full, "10")
    D(law.event("violation").value, "-10")
    D(law.event("petition").value, "-10")
    assert sum((rb.item(c).full for c in ("study", "org_life", "dues", "law")), Decimal(0)) == obligations.cap


def test_xishui_posts() -> None:
    rb = preset("xishui")
    assert rb.posts is not None
    assert rb.posts.claims_per_member == 2 and rb.posts_per_member == 2
    D(rb.posts.points_per_post, "30")
    assert len(rb.posts.names) == 11
    D(rb.category("posts").cap, "60")
    claim, duty, deed = rb.item("post_claim"), rb.item("post_duty"), rb.item("post_deed")
    D(claim.full, "10")
    D(duty.min, "0")
    D(duty.max, "10")
    assert duty.assessed and duty.per_post
    D(deed.value, "10")
    assert Trigger.DECLARATION in deed.triggers
    # one post is 10 + 10 + 10 = 30; two posts make the category's 60
    assert claim.full + duty.max + deed.value == rb.posts.points_per_post
    assert duty.range_for(posts=2) == (Decimal(0), Decimal(20))


def test_xishui_bonus_and_year() -> None:
    rb = preset("xishui")
    assert rb.year_result.method is YearMethod.MONTHLY_AVERAGE
    assert rb.year_result.bonus_category == "bonus"
    D(rb.year_result.bonus_cap, "10")
    bonus = rb.category("bonus")
    D(bonus.cap_year, "10")
    values = {i.code: i.value for i in bonus.items}
    assert list(values) == ["honor_national", "honor_city", "honor_county", "honor_town", "economy", "public_welfare", "anniversary",
                            "suggestion", "help_poor", "urgent_task", "bravery", "review_excellent", "other_praise"]
    for code, expected in zip(values, ["4", "3", "2", "1", "2", "2", "2", "2", "2", "2", "2", "2", "2"]):
        D(values[code], expected)
    assert len([i for i in rb.category("zero_out").items if i.kind is ItemKind.ZERO_OUT]) == 5


def test_xishui_bands_quota_multi_year() -> None:
    rb = preset("xishui")
    assert [b.stars for b in rb.bands] == [5, 4, 3, 2, 1, 0]
    for band, expected in zip(rb.bands, ["80", "70", "60", "55", "50"]):
        D(band.min, expected)
    assert rb.bands[-1].min is None
    assert [b.passing for b in rb.bands] == [True, True, True, False, False, False]
    assert rb.quota is not None and rb.quota.band == "excellent" and rb.quota.overflow_band == "qualified"
    D(rb.quota.share, "0.20")
    assert rb.quota.min_count == 1
    assert [(r.code, r.consecutive_failing_years) for r in rb.multi_year_rules] == [
        ("mentoring", 1),
        ("study_class", 2),
        ("org_handling", 3),
    ]
    D(rb.settings.probation_extend_below, "60")
    assert rb.settings.publicity_days == 7


@pytest.mark.parametrize(
    ("figure", "stars"),
    [
        (Decimal(100), 5),
        (Decimal(80), 5),
        (Decimal("79.99"), 4),
        (Decimal(70), 4),
        (Decimal("69.99"), 3),
        (Decimal(60), 3),
        (Decimal("59.99"), 2),
        (Decimal(55), 2),
        (Decimal("54.99"), 1),
        (Decimal(50), 1),
        (Decimal("49.99"), 0),
        (Decimal(0), 0),
    ],
)
def test_xishui_band_edges(figure: Decimal, stars: int) -> None:
    band = preset("xishui").band_for(figure)
    assert band is not None and band.stars == stars


# --- 淄博张店 (scheme C, seed 003) -----------------------------------------------------------------


def test_zhangdian_obligations() -> None:
    rb = preset("zhangdian")
    D(rb.category("obligations").cap, "50")
    meetings = rb.item("meetings")
    assert meetings.kind is ItemKind.ALLOTMENT
    D(meetings.full, "30")
    D(meetings.event("absent").value, "-10")
    D(meetings.event("leave").value, "-2")
    dues = rb.item("dues")
    D(dues.full, "20")
    D(dues.event("late").value, "-10")
    D(dues.event("short").value, "-10")
    D(dues.event("unpaid").value, "-20")
    assert dues.full + dues.event("unpaid").value == 0  # 不缴纳的不得分
    assert dues.full + dues.event("late").value == 10
    assert dues.allows(Decimal(-20), "unpaid") and not dues.allows(Decimal(-10), "unpaid")


LEVELS_10 = {"excellent": ("10", "10"), "good": ("5", "9"), "fair": ("1", "4"), "poor": ("0", "0")}
LEVELS_20 = {"excellent": ("20", "20"), "good": ("10", "19"), "fair": ("1", "9"), "poor": ("0", "0")}


@pytest.mark.parametrize(
    ("code", "top", "levels"),
    [
        ("job_performance", "10", LEVELS_10),
        ("volunteering", "10", LEVELS_10),
        ("unity_law", "10", LEVELS_10),
        ("carry_out_tasks", "20", LEVELS_20),
    ],
)
def test_zhangdian_vanguard(code: str, top: str, levels: dict[str, tuple[str, str]]) -> None:
    rb = preset("zhangdian")
    assert rb.category_of(code).code == "vanguard"
    item = rb.item(code)
    assert item.kind is ItemKind.RANGED and item.assessed
    assert item.triggers == frozenset({Trigger.RECORDER})
    D(item.min, "0")
    D(item.max, top)
    assert [lv.code for lv in item.levels] == list(levels)
    for level in item.levels:
        D(level.min, levels[level.code][0])
        D(level.max, levels[level.code][1])


def test_zhangdian_vanguard_adds_to_50() -> None:
    rb = preset("zhangdian")
    vanguard = rb.category("vanguard")
    D(vanguard.cap, "50")
    assert sum((i.max for i in vanguard.items), Decimal(0)) == vanguard.cap


def test_zhangdian_violations_bonus_veto() -> None:
    rb = preset("zhangdian")
    violations = rb.category("violations")
    assert violations.period is Period.MONTH and violations.cap is None
    assert len(violations.items) == 3
    for item in violations.items:
        assert item.kind is ItemKind.FIXED and Trigger.RECORDER in item.triggers
        D(item.value, "-10")
    incentive = rb.category("incentive")
    assert incentive.period is Period.HALF
    D(incentive.cap, "20")
    (praise,) = incentive.items
    assert praise.kind is ItemKind.RANGED
    assert praise.triggers == frozenset({Trigger.DECLARATION, Trigger.RECORDER})
    D(praise.min, "5")
    D(praise.max, "20")
    veto = rb.category("veto")
    assert veto.period is Period.HALF
    assert len(veto.items) == 3 and all(i.kind is ItemKind.ZERO_OUT for i in veto.items)


def test_zhangdian_year_and_ranking() -> None:
    rb = preset("zhangdian")
    yr = rb.year_result
    assert yr.method is YearMethod.WEIGHTED_HALVES
    assert yr.bonus_category == "incentive"
    D(yr.bonus_cap, "20")
    D(yr.quantified_weight, "0.6")
    D(yr.democratic_weight, "0.4")
    assert set(yr.democratic_weights) == {"self", "peer", "public", "branch"}
    for key, expected in {"self": "0.1", "peer": "0.3", "public": "0.3", "branch": "0.3"}.items():
        D(yr.democratic_weights[key], expected)
    assert yr.quantified_weight + yr.democratic_weight == 1
    assert sum(yr.democratic_weights.values()) == 1
    assert rb.bands == () and rb.quota is None
    tiers = {t.side: t for t in rb.ranking_tiers}
    assert len(rb.ranking_tiers) == 2
    D(tiers["top"].share, "0.10")
    D(tiers["bottom"].share, "0.03")
    assert tiers["bottom"].code == "lagging"
    assert rb.settings.review_period is Period.MONTH
    assert rb.settings.assessment_default.value == "zero"


# --- 尖草坪 (scheme B, seed 001) -------------------------------------------------------------------


def test_jiancaoping_shape() -> None:
    rb = preset("jiancaoping")
    assert rb.year_result.method is YearMethod.SUM
    D(rb.year_result.base, "80")
    positive = [c for c in rb.categories if c.code.startswith("pos_")]
    assert len(positive) == 3
    positive_items = [i for c in positive for i in c.items]
    assert len(positive_items) == 20
    for item in positive_items:
        assert item.kind is ItemKind.FIXED and item.value > 0
        assert item.triggers == frozenset({Trigger.DECLARATION, Trigger.RECORDER})
        assert item.origin is Origin.DEFAULT
        assert isinstance(item.value, Decimal) and Decimal(1) <= item.value <= Decimal(5)
    negative = rb.category("negative")
    assert len(negative.items) == 13
    for item in negative.items:
        assert item.kind is ItemKind.FIXED and item.value < 0 and item.is_deduction
        assert Trigger.RECORDER in item.triggers and Trigger.DECLARATION not in item.triggers
        assert item.origin is Origin.DEFAULT
    named = {"发布不良言论", "经教育仍不改正", "无故不参加组织生活", "不服从支部安排", "不按时足额缴纳党费", "参与赌博", "参与封建迷信"}
    assert named <= {i.name.zh for i in negative.items}
    zero = rb.category("zero_out")
    assert len(zero.items) == 5 and all(i.kind is ItemKind.ZERO_OUT for i in zero.items)
    assert {"违法犯罪", "受到行政拘留及以上处罚"} <= {i.name.zh for i in zero.items}
    assert [i.origin for i in zero.items].count(Origin.SEED) == 3


def test_jiancaoping_settings_bands_multi_year() -> None:
    rb = preset("jiancaoping")
    assert rb.settings.zero_out_stops_scoring is True
    assert rb.settings.review_period is Period.MONTH
    assert len(rb.bands) == 4
    for band, expected in zip(rb.bands, ["90", "80", "60"]):
        D(band.min, expected)
    assert rb.bands[-1].min is None and rb.bands[-1].passing is False
    assert all(b.passing for b in rb.bands[:-1])
    assert all(b.stars == 0 for b in rb.bands)
    assert [(r.consecutive_failing_years, r.cumulative_years) for r in rb.multi_year_rules] == [(2, None)]


@pytest.mark.parametrize(
    ("figure", "band"),
    [
        (Decimal(120), "praise"),
        (Decimal(90), "praise"),
        (Decimal("89.99"), "encourage"),
        (Decimal(80), "encourage"),
        (Decimal("79.99"), "warning"),
        (Decimal(60), "warning"),
        (Decimal("59.99"), "unqualified"),
        (Decimal(0), "unqualified"),
    ],
)
def test_jiancaoping_band_edges(figure: Decimal, band: str) -> None:
    found = preset("jiancaoping").band_for(figure)
    assert found is not None and found.code == band
    assert found.passing is (band != "unqualified")


# --- 三门峡 (scheme A, seeds 000/002) --------------------------------------------------------------


def test_sanmenxia_shape() -> None:
    rb = preset("sanmenxia")
    assert rb.year_result.method is YearMethod.SUM
    D(rb.year_result.base, "100")
    bonus_categories = [c for c in rb.categories if c.code not in ("base", "violations", "migrant")]
    assert [c.code for c in bonus_categories] == ["org_decisions", "prosperity", "service", "customs"]
    bonus_items = [i for c in bonus_categories for i in c.items]
    assert len(bonus_items) == 20
    assert all(i.kind is ItemKind.FIXED and i.value > 0 and Trigger.DECLARATION in i.triggers for i in bonus_items)
    violations = rb.category("violations")
    assert len(violations.items) == 10
    assert all(i.is_deduction and i.origin is Origin.DEFAULT and Trigger.DECLARATION not in i.triggers for i in violations.items)
    assert rb.bands == ()


@pytest.mark.parametrize(
    ("code", "value"),
    [
        ("green_zone", "10"),
        ("snow_clearing", "1"),
        ("repair_machinery", "3"),
        ("forsythia", "15"),
        ("resolve_petition", "5"),
        ("mediate_dispute", "2"),
    ],
)
def test_sanmenxia_seed_values(code: str, value: str) -> None:
    item = preset("sanmenxia").item(code)
    assert item is not None and item.kind is ItemKind.FIXED
    D(item.value, value)
    assert item.origin is Origin.SEED
    assert item.note is not None  # says whose practice it was / per what


def test_sanmenxia_green_zone_is_per_quarter_and_repairs_add_up() -> None:
    rb = preset("sanmenxia")
    green = rb.item("green_zone")
    assert rb.category_of("green_zone").period is Period.QUARTER
    D(green.cap, "10")
    repair = rb.item("repair_machinery")
    assert repair.cap is None
    assert repair.value * 11 == 33  # 义务为群众修理机械11次，仅此一项就获得33分


def test_sanmenxia_only_seed_values_are_seed() -> None:
    rb = preset("sanmenxia")
    seeded = {i.code for _, i in rb.items() if i.origin is Origin.SEED}
    assert seeded == {"green_zone", "snow_clearing", "repair_machinery", "forsythia", "resolve_petition", "mediate_dispute",
                      "base_withheld"}  # −100: the seed's base of 100, withheld


def test_sanmenxia_major_deductions_and_lagging() -> None:
    rb = preset("sanmenxia")
    major = {i.name.zh for _, i in rb.items() if i.major}
    assert major == {"组织参与缠访闹访", "组织参与宗教活动", "在抢险救灾中退缩不前"}
    named = {"不参加组织生活", "不交纳党费", "不遵守村规民约", "不遵守环保土地政策"} | major
    assert named <= {i.name.zh for i in rb.category("violations").items}
    s = rb.settings
    assert s.lagging_below_base and s.lagging_without_bonus and s.lagging_on_major_deduction
    assert s.review_period is Period.QUARTER
    assert [(r.cumulative_years, r.consecutive_failing_years) for r in rb.multi_year_rules] == [(3, None)]


@pytest.mark.parametrize("code", ["zhangdian", "jiancaoping", "xishui"])
def test_other_schemes_have_no_lagging_flags(code: str) -> None:
    s = preset(code).settings
    assert not (s.lagging_below_base or s.lagging_without_bonus or s.lagging_on_major_deduction)


# --- malformed rulebooks --------------------------------------------------------------------------

GOOD = """
code = "t"
name = { zh = "测试", en = "Test" }
source = { zh = "测试", en = "Test" }

[year_result]
method = "sum"

[[categories]]
code = "c"
name = { zh = "类", en = "Category" }

[[categories.items]]
code = "a"
name = { zh = "甲", en = "A" }
kind = "fixed"
value = 1
triggers = ["declaration"]
"""

SECOND_ITEM = """
[[categories.items]]
code = "b"
name = { zh = "乙", en = "B" }
"""


def test_good_minimal_rulebook_parses() -> None:
    rb = parse_rulebook(GOOD, file="x.toml")
    assert rb.item("a").value == Decimal(1)


def refused(text: str) -> RulebookError:
    with pytest.raises(RulebookError) as info:
        parse_rulebook(text, file="x.toml")
    assert info.value.file == "x.toml"
    assert str(info.value).startswith("x.toml: ")
    return info.value


def test_syntax_error() -> None:
    err = refused(GOOD + "\nbroken = = 1\n")
    assert err.field == "(syntax)"
    assert "line" in err.reason


def test_fixed_item_without_value() -> None:
    err = refused(GOOD + SECOND_ITEM + 'kind = "fixed"\ntriggers = ["recorder"]\n')
    assert err.field == "categories.0.items.1"
    assert "value" in err.reason


def test_unknown_field() -> None:
    err = refused(GOOD.replace("value = 1", "value = 1\ncpa = 3"))
    assert err.field == "categories.0.items.0.cpa"
    assert "extra" in err.reason.lower()


def test_unknown_top_level_field() -> None:
    err = refused(GOOD.replace('method = "sum"', 'method = "sum"\nbsae = 100'))
    assert err.field == "year_result.bsae"


def test_ranged_item_min_above_max() -> None:
    err = refused(GOOD + SECOND_ITEM + 'kind = "ranged"\nmin = 5\nmax = 1\ntriggers = ["recorder"]\n')
    assert err.field == "categories.0.items.1"
    assert "min 5 is above max 1" in err.reason


def test_duplicate_item_codes() -> None:
    err = refused(GOOD + SECOND_ITEM.replace('"b"', '"a"') + 'kind = "fixed"\nvalue = 2\ntriggers = ["recorder"]\n')
    assert err.field == "(top level)"
    assert "'a'" in err.reason and "twice" in err.reason


def test_item_code_clashing_with_category_code() -> None:
    err = refused(GOOD + SECOND_ITEM.replace('"b"', '"c"') + 'kind = "fixed"\nvalue = 2\ntriggers = ["recorder"]\n')
    assert "'c'" in err.reason and "twice" in err.reason


def test_bad_code_pattern() -> None:
    err = refused(GOOD.replace('code = "a"', 'code = "Bad-Code"'))
    assert err.field == "categories.0.items.0.code"


def test_positive_allotment_event() -> None:
    text = GOOD + SECOND_ITEM + (
        'kind = "allotment"\nfull = 10\ntriggers = ["recorder"]\n'
        'events = [{ code = "x", name = { zh = "x", en = "x" }, value = 2 }]\n'
    )
    err = refused(text)
    assert err.field == "categories.0.items.1.events.0"
    assert "<= 0" in err.reason


def test_member_declarable_deduction() -> None:
    err = refused(GOOD.replace("value = 1", "value = -1"))
    assert err.field == "categories.0.items.0"
    assert "cannot declare a deduction" in err.reason


def test_member_declarable_zero_out() -> None:
    err = refused(GOOD.replace('kind = "fixed"\nvalue = 1', 'kind = "zero_out"'))
    assert err.field == "categories.0.items.0"
    assert "cannot declare" in err.reason


def test_democratic_weights_not_adding_to_one() -> None:
    text = GOOD.replace(
        'method = "sum"',
        'method = "weighted_halves"\ndemocratic_weights = { self = 0.2, peer = 0.3, public = 0.3, branch = 0.3 }',
    )
    err = refused(text)
    assert err.field == "year_result"
    assert "add up to 1" in err.reason


def test_quantified_and_democratic_weights_not_adding_to_one() -> None:
    err = refused(GOOD.replace('method = "sum"', 'method = "weighted_halves"\nquantified_weight = 0.7'))
    assert err.field == "year_result"
    assert "must be 1" in err.reason


def test_exact_decimal_weights_add_to_one() -> None:
    # 0.1 + 0.2 + 0.3 + 0.4 is not 1 in binary floats; read as Decimal it is exactly 1
    text = GOOD.replace(
        'method = "sum"',
        'method = "weighted_halves"\ndemocratic_weights = { self = 0.1, peer = 0.2, public = 0.3, branch = 0.4 }',
    )
    rb = parse_rulebook(text)
    assert rb.year_result.democratic_weights["branch"] == Decimal("0.4")


BANDS = """
[[bands]]
code = "b1"
min = {first}
label = {{ zh = "一", en = "One" }}

[[bands]]
code = "b2"
min = {second}
label = {{ zh = "二", en = "Two" }}

[[bands]]
code = "b3"
label = {{ zh = "三", en = "Three" }}
passing = false
"""


def test_bands_in_order_accepted() -> None:
    rb = parse_rulebook(GOOD + BANDS.format(first=80, second=60))
    assert [b.code for b in rb.bands] == ["b1", "b2", "b3"]


@pytest.mark.parametrize(("first", "second"), [(60, 80), (70, 70)])
def test_bands_out_of_order(first: int, second: int) -> None:
    err = refused(GOOD + BANDS.format(first=first, second=second))
    assert err.field == "(top level)"
    assert "band minimums" in err.reason


def test_band_without_min_not_last() -> None:
    text = GOOD + BANDS.format(first=80, second=60).replace('code = "b2"\nmin = 60\n', 'code = "b2"\n')
    err = refused(text)
    assert "only the last band has no min" in err.reason


def test_load_rulebook_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD + SECOND_ITEM + 'kind = "fixed"\ntriggers = ["recorder"]\n', encoding="utf-8")
    with pytest.raises(RulebookError) as info:
        load_rulebook(bad)
    assert (info.value.file, info.value.field) == ("bad.toml", "categories.0.items.1")
    assert "value" in info.value.reason

    broken = tmp_path / "broken.toml"
    broken.write_text("code = \n", encoding="utf-8")
    with pytest.raises(RulebookError) as info:
        load_rulebook(broken)
    assert (info.value.file, info.value.field) == ("broken.toml", "(syntax)")

    good = tmp_path / "good.toml"
    good.write_text(GOOD, encoding="utf-8")
    assert load_rulebook(good).code == "t"


# --- branch items (自主设定项目) --------------------------------------------------------------------


def _branch_item(code: str = "plant_trees", origin: Origin = Origin.SEED) -> Item:
    return Item(
        code=code,
        name=Text(zh="义务植树", en="Planting trees"),
        kind=ItemKind.FIXED,
        value=Decimal("2.5"),
        triggers=frozenset({Trigger.DECLARATION, Trigger.RECORDER}),
        origin=origin,
    )


def test_with_custom_items_adds_a_branch_item() -> None:
    rb = preset("sanmenxia")
    before = len(list(rb.items()))
    extended = rb.with_custom_items([CustomItem(category="customs", item=_branch_item())])
    added = extended.item("plant_trees")
    assert added is not None
    assert added.origin is Origin.BRANCH
    D(added.value, "2.5")
    assert extended.category_of("plant_trees").code == "customs"
    assert extended.category("customs").items[-1].code == "plant_trees"
    assert len(list(extended.items())) == before + 1
    assert ("customs", "plant_trees") in {(c.code, i.code) for c, i in extended.declarable()}
    # the preset itself is untouched
    assert rb.item("plant_trees") is None and len(list(rb.items())) == before
    assert preset("sanmenxia").item("plant_trees") is None
    # the rest survives the round trip exactly
    assert extended.item("forsythia") == rb.item("forsythia")
    assert extended.settings == rb.settings and extended.year_result == rb.year_result


def test_with_custom_items_nothing_to_add() -> None:
    rb = preset("xishui")
    assert rb.with_custom_items([]) is rb


def test_with_custom_items_refuses_duplicate_code() -> None:
    rb = preset("sanmenxia")
    with pytest.raises(RulebookError) as info:
        rb.with_custom_items([CustomItem(category="customs", item=_branch_item("gambling"))])
    assert info.value.file == "branch items"
    assert "'gambling'" in info.value.reason and "twice" in info.value.reason
    with pytest.raises(RulebookError):
        rb.with_custom_items(
            [CustomItem(category="customs", item=_branch_item()), CustomItem(category="service", item=_branch_item())]
        )


def test_with_custom_items_refuses_unknown_category() -> None:
    with pytest.raises(RulebookError) as info:
        preset("xishui").with_custom_items([CustomItem(category="nowhere", item=_branch_item())])
    assert info.value.file == "branch items"
    assert info.value.field == "plant_trees.category"
    assert "nowhere" in info.value.reason


# --- properties -----------------------------------------------------------------------------------

bounds = st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False, allow_infinity=False)
# NaN is left out on purpose: Decimal("NaN") < x raises InvalidOperation instead of being False.
values = st.decimals(allow_nan=False, allow_infinity=True)


@given(a=bounds, b=bounds, v=values)
def test_ranged_item_allows_exactly_its_range(a: Decimal, b: Decimal, v: Decimal) -> None:
    low, high = min(a, b), max(a, b)
    item = Item(code="r", name=Text(zh="区间", en="Range"), kind=ItemKind.RANGED, min=low, max=high,
                triggers=frozenset({Trigger.RECORDER}))
    assert item.allows(v) is (low <= v <= high)
    assert item.allows(low) and item.allows(high)


RANGED_PRESET_ITEMS = [(code, i.code) for code in PRESET_CODES for _, i in preset(code).items() if i.kind is ItemKind.RANGED]


@pytest.mark.parametrize(("rulebook_code", "item_code"), RANGED_PRESET_ITEMS)
@given(v=values)
def test_preset_ranged_items_allow_exactly_their_range(rulebook_code: str, item_code: str, v: Decimal) -> None:
    item = preset(rulebook_code).item(item_code)
    assert item.allows(v) is (item.min <= v <= item.max)
    assert not item.allows(v, event_code="absent")
