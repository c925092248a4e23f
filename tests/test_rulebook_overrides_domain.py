"""bot.domain.overrides without an event loop: which values are defaults, and that a change is checked with
the whole rulebook (Rulebook.model_validate) — refused when strict, left out for the readers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.domain import overrides
from bot.domain.rulebook import Origin, RulebookError, parse_rulebook
from bot.errors import InvalidInput
from bot.presets import PRESET_CODES, preset

RANGED = """
code = "tiny"
name = { zh = "小", en = "tiny" }
source = { zh = "测试", en = "test" }
[year_result]
method = "sum"
[[categories]]
code = "deeds"
name = { zh = "好事", en = "deeds" }
[[categories.items]]
code = "help"
name = { zh = "帮忙", en = "help" }
kind = "ranged"
min = 1
max = 5
triggers = ["recorder"]
origin = "default"
[[categories.items]]
code = "lecture"
name = { zh = "讲课", en = "lecture" }
kind = "ranged"
min = 1
max = 5
levels = [{ code = "good", name = { zh = "好", en = "good" }, min = 3, max = 5 }]
triggers = ["recorder"]
origin = "default"
"""


def test_the_defaults_of_each_preset_are_exactly_its_default_origin_values() -> None:
    for code in PRESET_CODES:
        rulebook = preset(code)
        keys = {s.key for s in overrides.spots(rulebook)}
        for _, item in rulebook.items():
            if item.origin is Origin.SEED and not any(e.origin is Origin.DEFAULT for e in item.events):
                assert not any(k == item.code or k.startswith(item.code + ".") for k in keys), item.code
            elif item.value is not None:
                assert item.code in keys
        assert ("base" in keys) == (code == "jiancaoping")  # 三门峡's 100 is the seed's
        assert ("democratic_weights" in keys) == (code == "zhangdian")  # 10/30/30/30; 60/40 is the seed's


def test_weights_must_add_up_to_one_and_a_range_stays_the_right_way_up() -> None:
    zhangdian = preset("zhangdian")
    spot = overrides.spot_of(zhangdian, "democratic_weights")
    assert spot is not None
    with pytest.raises(InvalidInput) as refused:
        overrides.parse(zhangdian, spot, ["0.2", "0.3", "0.3", "0.3"])
    assert refused.value.key == "rulebook.weights_sum" and refused.value.params["total"] == "1.1"
    assert overrides.parse(zhangdian, spot, ["0.4/0.2/0.2/0.2"]) == tuple(Decimal(x) for x in ("0.4", "0.2", "0.2", "0.2"))
    # The model is the last word: a sum other than 1 kept somehow is refused when strict, left out otherwise.
    with pytest.raises(RulebookError):
        overrides.apply(zhangdian, {"democratic_weights": "0.5,0.25,0.25,0.25"}, strict=True)
    assert overrides.apply(zhangdian, {"democratic_weights": "0.5,0.25,0.25,0.25"}) is zhangdian

    tiny = parse_rulebook(RANGED)
    low = overrides.spot_of(tiny, "help.min")
    assert low is not None
    with pytest.raises(InvalidInput) as refused:
        overrides.parse(tiny, low, ["6"])
    assert refused.value.key == "rulebook.range_upside_down"
    with pytest.raises(RulebookError):
        overrides.apply(tiny, {"help.min": "6"}, strict=True)
    assert overrides.apply(tiny, {"help.max": "8"}).item("help").max == 8
    # A level outside the new range: the model refuses what parse does not check.
    with pytest.raises(RulebookError):
        overrides.apply(tiny, {"lecture.max": "4"}, strict=True)


def test_the_base_is_bounded_and_keeps_its_places() -> None:
    jiancaoping = preset("jiancaoping")
    spot = overrides.spot_of(jiancaoping, "base")
    assert spot is not None and spot.scope is overrides.Scope.YEAR
    for words, key in ((["101"], "rulebook.base_bounds"), (["-1"], "rulebook.base_bounds"),
                       (["80.001"], "rulebook.too_precise"), (["inf"], "rulebook.not_a_number"), (["8", "0"], "rulebook.one_value")):
        with pytest.raises(InvalidInput) as refused:
            overrides.parse(jiancaoping, spot, words)
        assert refused.value.key == key, words
    assert overrides.apply(jiancaoping, {"base": "72.5"}).year_result.base == Decimal("72.5")
