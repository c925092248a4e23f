"""A branch's own values for the defaults of its preset (/rulebook).

Where a seed gives no value, the preset states ours and marks it ``origin = "default"`` (DOMAIN.md: "a
rulebook setting with this default, shown to the secretary at /setup"; decisions 6 and 7). The branch may
change exactly those, never a value the seed states. A change is kept as ``{key: decimal text}`` (the
branch's ``rule_overrides``) and applied to the preset before the branch's own items
(``bot.services.branches.rulebook_of``), the whole validated by ``Rulebook.model_validate``.

Keys: an item's code (a fixed item's value), ``CODE.min``/``CODE.max`` (a ranged item), ``CODE.full``
(an allotment), ``CODE.EVENT`` or ``CODE.EVENT.min``/``.max`` (an allotment's event), ``base`` (尖草坪) and
``democratic_weights`` (张店: self, peer, public, branch, given together since they must add up to 1).

When a change counts: an item's value is copied into each ledger row when it is recorded, so a new value
counts for entries recorded from then on (``Scope.ENTRIES``); the base, the weights and an allotment's full
value are read whenever a figure is computed, so they change the whole year's figure (``Scope.YEAR``).

Pure domain: no SQL, no Telegram.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from bot.domain.rulebook import Item, ItemKind, Origin, Rulebook, RulebookError, Text, YearMethod
from bot.errors import InvalidInput

BASE = "base"
WEIGHTS = "democratic_weights"
WEIGHT_PARTS = ("self", "peer", "public", "branch")
WEIGHT_PLACES = 4
VALUE_LIMIT = Decimal(100)  # an item's value or bound: at most a month's full score either way (as /additem)
BASE_LIMIT = Decimal(100)

# The settings whose preset value is ours, not the seed's (their preset files say so next to the value):
# jiancaoping.toml "base = 80 … the seed gives no figure: DEFAULT 80 (DOMAIN decision 6), set at /setup";
# zhangdian.toml "民主评议分按照个人自评、党员互评、群众测评、党支部初评四部分加权得出 — the seed gives no weights:
# defaults 10% / 30% / 30% / 30%". 张店's 60% / 40% and 三门峡's base 100 are the seeds' own.
DEFAULT_SETTINGS: dict[str, tuple[str, ...]] = {
    "jiancaoping": (BASE,),
    "zhangdian": (WEIGHTS,),
}
SEED_SETTINGS = frozenset({BASE, WEIGHTS, "quantified_weight", "democratic_weight", "weights"})


class Scope(StrEnum):
    ENTRIES = "entries"  # entries recorded from now on; those recorded keep their value
    YEAR = "year"  # the whole year's figure


@dataclass(frozen=True)
class Spot:
    """One value of a preset that came from a default and that a branch may change."""

    key: str
    part: str  # "value", "min", "max", "full", "base", "weights"
    scope: Scope
    default: tuple[Decimal, ...]  # the preset's value (four for the weights)
    item: Item | None = None
    event_code: str | None = None
    category: str | None = None

    @property
    def label(self) -> Text | None:
        if self.item is None:
            return None
        if self.event_code is None:
            return self.item.name
        event = self.item.event(self.event_code)
        assert event is not None
        return Text(zh=f"{self.item.name.zh}·{event.name.zh}", en=f"{self.item.name.en} · {event.name.en}")


def spots(rulebook: Rulebook) -> list[Spot]:
    """Every value of a preset that came from a default, in the rulebook's order (settings first)."""
    found: list[Spot] = []
    for key in DEFAULT_SETTINGS.get(rulebook.code, ()):
        if key == BASE and rulebook.year_result.method is YearMethod.SUM:
            found.append(Spot(BASE, "base", Scope.YEAR, (rulebook.year_result.base,)))
        elif key == WEIGHTS and rulebook.year_result.method is YearMethod.WEIGHTED_HALVES:
            weights = rulebook.year_result.democratic_weights
            found.append(Spot(WEIGHTS, "weights", Scope.YEAR, tuple(weights[p] for p in WEIGHT_PARTS)))
    for category, item in rulebook.items():
        ours = item.origin is Origin.DEFAULT
        if ours and item.kind is ItemKind.FIXED and item.value is not None:
            found.append(Spot(item.code, "value", Scope.ENTRIES, (item.value,), item, None, category.code))
        elif ours and item.kind is ItemKind.RANGED and item.min is not None and item.max is not None:
            found.append(Spot(f"{item.code}.min", "min", Scope.ENTRIES, (item.min,), item, None, category.code))
            found.append(Spot(f"{item.code}.max", "max", Scope.ENTRIES, (item.max,), item, None, category.code))
        elif ours and item.kind is ItemKind.ALLOTMENT and item.full is not None:
            found.append(Spot(f"{item.code}.full", "full", Scope.YEAR, (item.full,), item, None, category.code))
        for event in item.events:
            if not (ours or event.origin is Origin.DEFAULT):
                continue
            key = f"{item.code}.{event.code}"
            if event.value is not None:
                found.append(Spot(key, "value", Scope.ENTRIES, (event.value,), item, event.code, category.code))
            elif event.min is not None and event.max is not None:
                found.append(Spot(f"{key}.min", "min", Scope.ENTRIES, (event.min,), item, event.code, category.code))
                found.append(Spot(f"{key}.max", "max", Scope.ENTRIES, (event.max,), item, event.code, category.code))
    return found


def spot_of(rulebook: Rulebook, key: str) -> Spot | None:
    return next((s for s in spots(rulebook) if s.key == key), None)


def current(rulebook: Rulebook, spot: Spot) -> tuple[Decimal, ...]:
    """The value a spot has in ``rulebook`` (the preset's, or the branch's once overrides are applied)."""
    if spot.part == "base":
        return (rulebook.year_result.base,)
    if spot.part == "weights":
        return tuple(rulebook.year_result.democratic_weights[p] for p in WEIGHT_PARTS)
    assert spot.item is not None
    item = rulebook.item(spot.item.code)
    assert item is not None
    holder: Any = item.event(spot.event_code) if spot.event_code else item
    return (getattr(holder, spot.part),)


def shown(values: tuple[Decimal, ...]) -> str:
    """A spot's value as the user writes it (the weights: four numbers with "/")."""
    return "/".join(_plain(v) for v in values)


def encoded(values: tuple[Decimal, ...]) -> str:
    """A spot's value as kept in the overrides and in a confirm button's data (no spaces)."""
    return ",".join(_plain(v) for v in values)


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def is_seed_key(rulebook: Rulebook, key: str) -> bool:
    """Whether ``key`` names a value the seed states (refused with its own message): a seed item (or one
    of its bounds or events), 三门峡's base, 张店's 60/40 weights."""
    if key in SEED_SETTINGS:
        method = rulebook.year_result.method
        if key == BASE:
            return method is YearMethod.SUM
        return method is YearMethod.WEIGHTED_HALVES
    item = rulebook.item(key.split(".", 1)[0])
    return item is not None and item.origin is Origin.SEED


def parse(rulebook: Rulebook, spot: Spot, words: list[str]) -> tuple[Decimal, ...]:
    """The value the user gave for ``spot``, checked for what the rulebook model does not say in the user's
    language (places, limits, sign, order); ``rulebook`` is the branch's as it is now."""
    raw = " ".join(words).strip()
    if spot.part == "weights":
        parts = [p for p in re.split(r"[\s,/，、;；]+", raw) if p]
        if len(parts) != len(WEIGHT_PARTS):
            raise InvalidInput("rulebook.weights_count", value=raw)
        values = tuple(_decimal(p, WEIGHT_PLACES) for p in parts)
        if any(not Decimal(0) <= v <= Decimal(1) for v in values):
            raise InvalidInput("rulebook.weight_range", value=raw)
        if sum(values) != 1:
            raise InvalidInput("rulebook.weights_sum", value=raw, total=_plain(sum(values, Decimal(0))))
        return values
    if len(words) != 1:
        raise InvalidInput("rulebook.one_value", code=spot.key)
    places = rulebook.settings.rounding_places
    value = _decimal(raw, places)
    if spot.part == "base":
        if not Decimal(0) <= value <= BASE_LIMIT:
            raise InvalidInput("rulebook.base_bounds", value=_plain(value), limit=BASE_LIMIT)
        return (value,)
    if abs(value) > VALUE_LIMIT:
        raise InvalidInput("rulebook.too_large", value=_plain(value), limit=VALUE_LIMIT)
    default = spot.default[0]
    if spot.part in ("value", "full"):
        if value == 0:
            raise InvalidInput("rulebook.zero", code=spot.key)
        if spot.part == "full" and value < 0:
            raise InvalidInput("rulebook.must_be_bonus", code=spot.key, value=_plain(value))
        if (value > 0) != (default > 0):  # a bonus stays a bonus, a deduction a deduction
            raise InvalidInput("rulebook.must_be_bonus" if default > 0 else "rulebook.must_be_deduction",
                               code=spot.key, value=_plain(value))
        return (value,)
    if spot.event_code is not None and value > 0:  # an allotment's event only takes points away
        raise InvalidInput("rulebook.must_be_deduction", code=spot.key, value=_plain(value))
    other = spot_of(rulebook, spot.key.rsplit(".", 1)[0] + (".max" if spot.part == "min" else ".min"))
    if other is not None:
        bound = current(rulebook, other)[0]
        low, high = (value, bound) if spot.part == "min" else (bound, value)
        if low > high:
            raise InvalidInput("rulebook.range_upside_down", code=spot.key, low=_plain(low), high=_plain(high))
    return (value,)


def _decimal(raw: str, places: int) -> Decimal:
    try:
        value = Decimal(raw)
    except (InvalidOperation, ValueError):
        raise InvalidInput("rulebook.not_a_number", value=raw) from None
    if not value.is_finite():
        raise InvalidInput("rulebook.not_a_number", value=raw)
    try:
        precise = value != value.quantize(Decimal(1).scaleb(-places))
    except InvalidOperation:  # too many digits to quantize: far beyond any limit
        raise InvalidInput("rulebook.too_large", value=raw, limit=VALUE_LIMIT) from None
    if precise:
        raise InvalidInput("rulebook.too_precise", value=raw, places=places)
    return value + 0  # -0 → 0


def apply(rulebook: Rulebook, overrides: Mapping[str, str], *, strict: bool = False) -> Rulebook:
    """``rulebook`` (a preset) with a branch's values for its defaults, validated as a whole.

    A key that names no default of this preset (an item since removed, or since found in the seed: the
    seed's value is the seed's) is left out. ``strict`` (a change about to be kept): RulebookError when the
    whole does not hold. Otherwise (every reader) values that no longer hold together are left out."""
    known = {s.key: s for s in spots(rulebook)}
    chosen = {k: v for k, v in overrides.items() if k in known}
    if not chosen:
        return rulebook
    try:
        return _applied(rulebook, known, chosen)
    except RulebookError:
        if strict:
            raise
    # Each was validated with the whole when it was kept; should the preset have changed since so that they
    # no longer hold together, the branch keeps those that still do (in key order) rather than every reader
    # of its rulebook failing.
    kept: dict[str, str] = {}
    for key in sorted(chosen):
        try:
            _applied(rulebook, known, {**kept, key: chosen[key]})
        except RulebookError:
            continue
        kept[key] = chosen[key]
    return _applied(rulebook, known, kept) if kept else rulebook


def _applied(rulebook: Rulebook, known: dict[str, Spot], chosen: Mapping[str, str]) -> Rulebook:
    data = rulebook.model_dump(mode="python")
    for key, text in chosen.items():
        spot = known[key]
        values = tuple(Decimal(p) for p in text.split(","))
        if spot.part == "base":
            data["year_result"]["base"] = values[0]
        elif spot.part == "weights":
            data["year_result"]["democratic_weights"] = dict(zip(WEIGHT_PARTS, values, strict=True))
        else:
            assert spot.item is not None
            item = next(i for c in data["categories"] for i in c["items"] if i["code"] == spot.item.code)
            holder = next(e for e in item["events"] if e["code"] == spot.event_code) if spot.event_code else item
            holder[spot.part] = values[0]
    try:
        return Rulebook.model_validate(data)
    except ValidationError as exc:
        raise RulebookError.from_validation("branch overrides", exc) from None


def basis(overrides_json: str | None) -> str:
    """A short digest of a branch's stored overrides: a confirm button carries the one its change was worked
    out from, and the press is refused if the overrides changed since (an older button would undo a newer
    confirmed change)."""
    return hashlib.sha1((overrides_json or "{}").encode()).hexdigest()[:6]
