"""A branch's rulebook: the scheme its points are kept by, as validated data.

Pure domain: no Telegram, no SQL. Every number is a ``Decimal``; preset files are read with
``parse_float=Decimal`` so that 0.6 is exactly 0.6.
"""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Iterator

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.domain.town import TransferRule

CODE_PATTERN = r"^[a-z][a-z0-9_]{0,23}$"  # short: item codes travel in callback data
Code = Annotated[str, Field(pattern=CODE_PATTERN)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Model):
    """A name or note in both catalog languages."""

    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def get(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


class Trigger(StrEnum):
    DECLARATION = "declaration"  # the member declares it, a recorder approves
    RECORDER = "recorder"  # the recorder enters it
    AUTOMATIC = "automatic"  # attendance, dues, monthly allotments


class ItemKind(StrEnum):
    FIXED = "fixed"  # a set value per event (+3 per repair, -10 per violation)
    RANGED = "ranged"  # the recorder picks a value in min..max (good: 5-9)
    ALLOTMENT = "allotment"  # starts full each period, events take away, never below 0
    ZERO_OUT = "zero_out"  # veto: the cycle's (or half's) result becomes 0


class Period(StrEnum):
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    HALF = "half"
    YEAR = "year"


class Origin(StrEnum):
    """Where a value comes from, shown to the secretary at set-up."""

    SEED = "seed"  # stated in the source document
    DEFAULT = "default"  # the seed is silent; our default, which the branch confirms or changes
    BRANCH = "branch"  # added by the branch itself (自主设定项目)


class YearMethod(StrEnum):
    SUM = "sum"  # base + bonuses - deductions (三门峡, 尖草坪)
    MONTHLY_AVERAGE = "monthly_average"  # mean of monthly scores + capped yearly bonus (浠水)
    WEIGHTED_HALVES = "weighted_halves"  # per half: quantified x 60% + democratic x 40% (张店)


class AssessmentDefault(StrEnum):
    ZERO = "zero"
    MIDDLE_OF_GOOD = "middle_of_good"


class Level(_Model):
    """A named grade of a ranged item: excellent 10, good 5-9, fair 1-4, poor 0."""

    code: Code
    name: Text
    min: Decimal
    max: Decimal

    @model_validator(mode="after")
    def _ordered(self) -> Level:
        if self.min > self.max:
            raise ValueError(f"level {self.code}: min {self.min} is above max {self.max}")
        return self


class Event(_Model):
    """Something that takes points from an allotment (absent -5, late -2)."""

    code: Code
    name: Text
    value: Decimal | None = None  # a fixed loss (negative)
    min: Decimal | None = None  # or a loss the recorder picks in min..max (both negative or 0)
    max: Decimal | None = None
    origin: Origin = Origin.SEED

    @model_validator(mode="after")
    def _valued(self) -> Event:
        ranged = self.min is not None or self.max is not None
        if self.value is None and not (self.min is not None and self.max is not None):
            raise ValueError(f"event {self.code}: needs a value, or both min and max")
        if self.value is not None and ranged:
            raise ValueError(f"event {self.code}: give a value or a range, not both")
        for bound in (self.value, self.min, self.max):
            if bound is not None and bound > 0:
                raise ValueError(f"event {self.code}: an allotment event takes points away, so it must be <= 0")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"event {self.code}: min {self.min} is above max {self.max}")
        return self

    def allows(self, value: Decimal) -> bool:
        if not value.is_finite():
            return False
        if self.value is not None:
            return value == self.value
        assert self.min is not None and self.max is not None
        return self.min <= value <= self.max


class Item(_Model):
    code: Code
    name: Text
    kind: ItemKind
    triggers: frozenset[Trigger]
    value: Decimal | None = None  # fixed
    min: Decimal | None = None  # ranged
    max: Decimal | None = None
    levels: tuple[Level, ...] = ()
    default: Decimal | None = None  # ranged/assessed: the value when the recorder has not assessed
    full: Decimal | None = None  # allotment
    events: tuple[Event, ...] = ()
    cap: Decimal | None = None  # at most this much from this item per judging period
    per_post: bool = False  # full/cap/min/max are per claimed volunteer post (浠水)
    assessed: bool = False  # scored for every member in the monthly assessment
    major: bool = False  # a "major deduction" (三门峡: makes the member lagging)
    note: Text | None = None
    origin: Origin = Origin.SEED

    @model_validator(mode="after")
    def _shape(self) -> Item:
        need: dict[ItemKind, tuple[str, ...]] = {
            ItemKind.FIXED: ("value",),
            ItemKind.RANGED: ("min", "max"),
            ItemKind.ALLOTMENT: ("full",),
            ItemKind.ZERO_OUT: (),
        }
        for field in need[self.kind]:
            if getattr(self, field) is None:
                raise ValueError(f"a {self.kind} item needs '{field}'")
        if self.kind is ItemKind.RANGED:
            assert self.min is not None and self.max is not None
            if self.min > self.max:
                raise ValueError(f"min {self.min} is above max {self.max}")
            for level in self.levels:
                if level.min < self.min or level.max > self.max:
                    raise ValueError(f"level {level.code} lies outside {self.min}..{self.max}")
            if self.default is not None and not self.min <= self.default <= self.max:
                raise ValueError(f"default {self.default} lies outside {self.min}..{self.max}")
        if self.kind is ItemKind.ALLOTMENT:
            assert self.full is not None
            if self.full <= 0:
                raise ValueError("an allotment's 'full' must be above 0")
            if not self.events:
                raise ValueError("an allotment needs at least one event that takes points away")
        elif self.events:
            raise ValueError("only an allotment item has events")
        if not self.triggers:
            raise ValueError("say who may trigger the item: declaration, recorder and/or automatic")
        if Trigger.DECLARATION in self.triggers and self.kind in (ItemKind.ALLOTMENT, ItemKind.ZERO_OUT):
            raise ValueError(f"members cannot declare a {self.kind} item")
        if Trigger.DECLARATION in self.triggers and self.kind is ItemKind.FIXED and self.value is not None and self.value < 0:
            raise ValueError("members cannot declare a deduction")
        return self

    @property
    def is_deduction(self) -> bool:
        if self.kind is ItemKind.FIXED:
            return self.value is not None and self.value < 0
        if self.kind is ItemKind.RANGED:
            return self.max is not None and self.max <= 0
        return self.kind is ItemKind.ZERO_OUT

    def event(self, code: str) -> Event | None:
        return next((e for e in self.events if e.code == code), None)

    def range_for(self, posts: int = 1) -> tuple[Decimal, Decimal] | None:
        """The values a recorder may give (ranged), scaled by posts where per-post."""
        if self.kind is not ItemKind.RANGED:
            return None
        assert self.min is not None and self.max is not None
        factor = posts if self.per_post else 1
        return self.min * factor if self.min < 0 else self.min, self.max * factor if self.max > 0 else self.max

    def allows(self, value: Decimal, event_code: str | None = None, posts: int = 1) -> bool:
        """Whether one ledger entry of ``value`` is a legal use of this item."""
        if not value.is_finite():  # NaN from crafted input must not raise, just be refused
            return False
        if self.kind is ItemKind.FIXED:
            return event_code is None and value == self.value
        if self.kind is ItemKind.RANGED:
            low, high = self.range_for(posts)  # type: ignore[misc]
            return event_code is None and low <= value <= high
        if self.kind is ItemKind.ALLOTMENT:
            event = self.event(event_code or "")
            return event is not None and event.allows(value)
        return event_code is None and value == 0  # zero-out rows carry no points themselves


class Category(_Model):
    code: Code
    name: Text
    period: Period = Period.MONTH  # the period its cap (and allotments) apply to
    cap: Decimal | None = None  # at most this much per period (e.g. obligations 40)
    cap_year: Decimal | None = None  # at most this much per year (e.g. 浠水 bonus 10)
    items: tuple[Item, ...]
    origin: Origin = Origin.SEED

    @model_validator(mode="after")
    def _items(self) -> Category:
        if not self.items:
            raise ValueError(f"category {self.code} has no items")
        return self


class Band(_Model):
    """A grade: the figure is in this band when it is >= min (the lowest band has no min)."""

    code: Code
    min: Decimal | None = None
    label: Text
    stars: int = Field(default=0, ge=0, le=5)
    consequence: Text | None = None
    passing: bool = True  # False for "unqualified" bands (multi-year rules count these)


class Quota(_Model):
    """At most ``share`` of graded members in ``band``; the rest drop to ``overflow_band``."""

    band: Code
    share: Decimal = Field(gt=0, le=1)
    min_count: int = Field(default=1, ge=0)  # at least this many where anyone qualifies
    overflow_band: Code


class RankingTier(_Model):
    code: Code
    label: Text
    side: str = Field(pattern="^(top|bottom)$")
    share: Decimal = Field(gt=0, le=1)  # of the ranked members, counted with ceil()


class MultiYearRule(_Model):
    """A consequence of repeated results: N consecutive failing years (or a ranking window)."""

    code: Code
    consecutive_failing_years: int | None = Field(default=None, ge=1)
    cumulative_years: int | None = Field(default=None, ge=1)  # 三门峡: 3-year cumulative ranking
    consequence: Text


class YearResult(_Model):
    method: YearMethod
    base: Decimal = Decimal(0)  # sum: granted each year to members who meet the basic conditions
    bonus_category: Code | None = None  # averaged methods: added on top of the average
    bonus_cap: Decimal | None = None  # per year (浠水 10) or per half (张店 20)
    quantified_weight: Decimal = Decimal("0.6")
    democratic_weight: Decimal = Decimal("0.4")
    democratic_weights: dict[str, Decimal] = Field(
        default_factory=lambda: {"self": Decimal("0.1"), "peer": Decimal("0.3"), "public": Decimal("0.3"), "branch": Decimal("0.3")}
    )

    @model_validator(mode="after")
    def _weights(self) -> YearResult:
        if self.method is YearMethod.WEIGHTED_HALVES:
            if self.quantified_weight + self.democratic_weight != 1:
                raise ValueError("quantified_weight + democratic_weight must be 1")
            if set(self.democratic_weights) != {"self", "peer", "public", "branch"}:
                raise ValueError("democratic_weights needs exactly self, peer, public and branch")
            if sum(self.democratic_weights.values()) != 1:
                raise ValueError("democratic_weights must add up to 1")
        return self


class Posts(_Model):
    """Volunteer posts (浠水): each member claims some, each worth a set number of points."""

    claims_per_member: int = Field(ge=1)
    points_per_post: Decimal
    names: tuple[Text, ...]


class Settings(_Model):
    """The decisions where the seeds are silent (DOMAIN.md), as data a branch may change."""

    rounding_places: int = Field(default=2, ge=0, le=4)  # published scores, ROUND_HALF_UP
    month_floor_zero: bool = True
    year_floor_zero: bool = True
    zero_out_stops_scoring: bool = False  # 尖草坪: scoring ends for the cycle
    min_months_to_grade: int = Field(default=3, ge=0)
    assessment_default: AssessmentDefault = AssessmentDefault.ZERO
    late_declaration_days: int = Field(default=5, ge=0, le=28)  # days into a month when last month is still open
    review_period: Period = Period.MONTH  # committee review and public notice
    # 预备党员 (probationary members): only seed 004 (浠水) sets them apart — "预备党员参加积分制管理，但不确定
    # 等次。预备党员年度积分不足60分的，延长预备期". The other seeds band or rank every member (001: "总分60分以下
    # 的，确定为不合格党员"; 003: "对组织关系在我局的党员…"), so by default a probationary member is graded like
    # anyone else; xishui.toml sets grade_probationary = false and probation_extend_below = 60.
    grade_probationary: bool = True
    probation_extend_below: Decimal | None = None  # flag extend_probation below this published figure (浠水 60)
    lagging_below_base: bool = False  # 三门峡
    lagging_without_bonus: bool = False
    lagging_on_major_deduction: bool = False
    publicity_days: int = Field(default=7, ge=7)
    # Which points a member may spend on rewards (issue 7): category or item codes. Empty: every bonus item
    # (fixed or ranged, not a deduction, not a monthly assessment) — bot.domain.rewards.counts_for_rewards.
    redeemable: tuple[Code, ...] = ()
    # 组织关系转接: which branch grades the year of a member who moved during it (the seeds are silent;
    # the receiving branch's setting decides). See bot.domain.town.TransferRule.
    transfer_result: TransferRule = TransferRule.RECEIVING


AUTOMATIC_EVENTS = re.compile(
    r"^(meeting(\.(branch_meeting|committee|group_meeting|party_lecture|theme_day))?\.(absent|late|early|leave)"
    r"|dues\.(late|short|unpaid|not_standard)"
    r"|migrant\.missing_report)$"
)


class Rulebook(_Model):
    code: Code
    name: Text
    source: Text  # which document it follows
    year_result: YearResult
    categories: tuple[Category, ...]
    bands: tuple[Band, ...] = ()
    quota: Quota | None = None
    ranking_tiers: tuple[RankingTier, ...] = ()
    multi_year_rules: tuple[MultiYearRule, ...] = ()
    posts: Posts | None = None
    settings: Settings = Settings()
    # What automatic events do, as "item" or "item:event": "meeting.absent" = "org_life:absent".
    # A kind-specific key ("meeting.party_lecture.absent") wins over the general one; an event with no
    # binding costs nothing (e.g. an excused leave under 三门峡).
    automatic: dict[str, str] = {}

    @model_validator(mode="after")
    def _consistent(self) -> Rulebook:
        seen: set[str] = set()
        for category in self.categories:
            if category.code in seen:
                raise ValueError(f"code '{category.code}' is used twice")
            seen.add(category.code)
            for item in category.items:
                if item.code in seen:
                    raise ValueError(f"code '{item.code}' is used twice")
                seen.add(item.code)
                if item.per_post and self.posts is None:
                    raise ValueError(f"item {item.code} is per_post but the rulebook has no [posts]")
        if self.year_result.bonus_category is not None and self.year_result.bonus_category not in {c.code for c in self.categories}:
            raise ValueError(f"year_result.bonus_category '{self.year_result.bonus_category}' is not a category")
        minimums = [b.min for b in self.bands]
        if self.bands:
            if minimums[-1] is not None or any(m is None for m in minimums[:-1]):
                raise ValueError("bands go from the highest down; only the last band has no min")
            if any(a <= b for a, b in zip(minimums[:-2], minimums[1:-1])):  # type: ignore[operator]
                raise ValueError("band minimums must fall strictly from the first band to the last")
        for event, target in self.automatic.items():
            if not AUTOMATIC_EVENTS.match(event):
                raise ValueError(f"automatic: unknown event '{event}'")
            item_code, _, event_code = target.partition(":")
            item = self.item(item_code)
            if item is None:
                raise ValueError(f"automatic.{event}: no item '{item_code}'")
            if Trigger.AUTOMATIC not in item.triggers:
                raise ValueError(f"automatic.{event}: item '{item_code}' does not allow automatic entries")
            if item.kind is ItemKind.ALLOTMENT and item.event(event_code) is None:
                raise ValueError(f"automatic.{event}: item '{item_code}' has no event '{event_code}'")
            if item.kind is not ItemKind.ALLOTMENT and event_code:
                raise ValueError(f"automatic.{event}: only an allotment item takes an event")
        unknown = [c for c in self.settings.redeemable if c not in seen]
        if unknown:
            raise ValueError(f"settings.redeemable: no category or item '{unknown[0]}'")
        band_codes = {b.code for b in self.bands}
        if self.quota and not {self.quota.band, self.quota.overflow_band} <= band_codes:
            raise ValueError("quota.band and quota.overflow_band must name bands")
        return self

    # --- look-ups -------------------------------------------------------------------------------
    def items(self) -> Iterator[tuple[Category, Item]]:
        for category in self.categories:
            for item in category.items:
                yield category, item

    def item(self, code: str) -> Item | None:
        return next((i for _, i in self.items() if i.code == code), None)

    def category_of(self, item_code: str) -> Category | None:
        return next((c for c, i in self.items() if i.code == item_code), None)

    def category(self, code: str) -> Category | None:
        return next((c for c in self.categories if c.code == code), None)

    def declarable(self) -> list[tuple[Category, Item]]:
        return [(c, i) for c, i in self.items() if Trigger.DECLARATION in i.triggers]

    def recordable(self) -> list[tuple[Category, Item]]:
        return [(c, i) for c, i in self.items() if Trigger.RECORDER in i.triggers]

    @property
    def posts_per_member(self) -> int:
        return self.posts.claims_per_member if self.posts else 1

    def automatic_target(self, event: str, kind: str | None = None) -> tuple[Item, Event | None] | None:
        """The item (and allotment event) an automatic event is booked to, or None when it costs nothing."""
        parts = event.split(".", 1)
        specific = f"{parts[0]}.{kind}.{parts[1]}" if kind and len(parts) == 2 else None
        target = self.automatic.get(specific or "") or self.automatic.get(event)
        if target is None:
            return None
        item_code, _, event_code = target.partition(":")
        item = self.item(item_code)
        assert item is not None  # validated
        return item, item.event(event_code) if event_code else None

    def automatic_charge(self, event: str, kind: str | None = None) -> tuple[Item, Event | None, Decimal] | None:
        """What an automatic event books: (item, allotment event, value); None when it costs nothing.

        The value is an allotment event's value; for an event given as a range (min..max, both <= 0),
        its mildest loss, ``max``: nobody has judged the case, so the bot takes no more than the rule
        certainly says (a recorder may enter a heavier loss by hand). A fixed item books its value; a
        ranged item its ``default`` (without one, nothing: it needs a person to choose). A zero-out
        item, a value of 0, or a value the item would not allow books nothing.
        """
        target = self.automatic_target(event, kind)
        if target is None:
            return None
        item, allotment_event = target
        value: Decimal | None = None
        if item.kind is ItemKind.ALLOTMENT and allotment_event is not None:
            value = allotment_event.value if allotment_event.value is not None else allotment_event.max
        elif item.kind is ItemKind.FIXED:
            value = item.value
        elif item.kind is ItemKind.RANGED:
            value = item.default
        event_code = allotment_event.code if allotment_event else None
        if value is None or value == 0 or not item.allows(value, event_code, posts=self.posts_per_member):
            return None
        return item, allotment_event, value

    def band_for(self, figure: Decimal) -> Band | None:
        for band in self.bands:
            if band.min is None or figure >= band.min:
                return band
        return None

    def with_custom_items(self, custom: list[CustomItem]) -> Rulebook:
        """The preset plus a branch's own items (自主设定项目), validated as a whole."""
        if not custom:
            return self
        data = self.model_dump(mode="python")
        categories = {c["code"]: c for c in data["categories"]}
        for extra in custom:
            if extra.category not in categories:
                raise RulebookError("branch items", f"{extra.item.code}.category", f"no category '{extra.category}'")
            item = extra.item.model_dump(mode="python")
            item["origin"] = Origin.BRANCH
            categories[extra.category]["items"] = (*categories[extra.category]["items"], item)
        try:
            return Rulebook.model_validate(data)
        except ValidationError as exc:
            raise RulebookError.from_validation("branch items", exc) from None


class CustomItem(_Model):
    """An item a branch adds to one of its preset's categories."""

    category: Code
    item: Item


class RulebookError(ValueError):
    """A rulebook that cannot be used: names the file, the field and the reason."""

    def __init__(self, file: str, field: str, reason: str):
        self.file, self.field, self.reason = file, field, reason
        super().__init__(f"{file}: {field}: {reason}")

    @classmethod
    def from_validation(cls, file: str, exc: ValidationError) -> RulebookError:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        reason = first["msg"].removeprefix("Value error, ")
        if len(exc.errors()) > 1:
            reason += f" (and {len(exc.errors()) - 1} more problem(s))"
        return cls(file, field, reason)


def parse_rulebook(text: str, file: str = "<rulebook>") -> Rulebook:
    try:
        data: dict[str, Any] = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise RulebookError(file, "(syntax)", str(exc)) from None
    try:
        return Rulebook.model_validate(data)
    except ValidationError as exc:
        raise RulebookError.from_validation(file, exc) from None


def load_rulebook(path: Path) -> Rulebook:
    return parse_rulebook(path.read_text(encoding="utf-8"), file=path.name)
