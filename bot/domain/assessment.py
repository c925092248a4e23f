"""The monthly assessment (月度考评) and volunteer posts, as pure rules.

Which items are assessed, what values a recorder may give, what "good" and the default are, which
month an assessment is about, and how many posts a member counts. No Telegram, no SQL, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from bot.domain.calendar import CalendarSettings, add_months, notice_moment, period_of_month
from bot.domain.records import LedgerRow
from bot.domain.rulebook import AssessmentDefault, Item, ItemKind, Level, Period, Rulebook

ZERO = Decimal(0)
MAX_PLACES = 2  # an assessed value has at most two decimal places (14.5 is the middle of 10-19)
MONTHS_BACK = 12  # how far back a month may still be assessed (or re-assessed)
GOOD = "good"


@dataclass(frozen=True)
class Assessed:
    """The current revision of one item's assessment for one member in one month.

    ``withdrawn``: its ledger row was reversed by someone else (an objection upheld, a correction): the
    revision stays the latest (the next one follows it) but the item has no value until assessed again.
    """

    member_id: int
    item_code: str
    revision: int
    value: Decimal
    is_default: bool
    ledger_id: int
    withdrawn: bool = False


@dataclass(frozen=True)
class Post:
    """One of the branch's volunteer posts (浠水: 设岗定责)."""

    id: int
    branch_id: int
    number: int
    name_zh: str
    name_en: str
    origin: str
    removed: bool = False

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_zh


# --- items and values ---------------------------------------------------------------------------


def assessed_items(rulebook: Rulebook) -> list[Item]:
    """The items scored for every member each month, in rulebook order (index = position here)."""
    return [item for _, item in rulebook.items() if item.assessed and item.kind is ItemKind.RANGED]


def value_range(item: Item, posts: int) -> tuple[Decimal, Decimal]:
    bounds = item.range_for(posts)
    assert bounds is not None  # assessed items are ranged
    return bounds


def _factor(item: Item, posts: int) -> int:
    return posts if item.per_post else 1


def level_range(item: Item, level: Level, posts: int) -> tuple[Decimal, Decimal]:
    factor = _factor(item, posts)
    return level.min * factor, level.max * factor


def level_of(item: Item, value: Decimal, posts: int) -> Level | None:
    for level in item.levels:
        low, high = level_range(item, level, posts)
        if low <= value <= high:
            return level
    return None


def whole_values(low: Decimal, high: Decimal, limit: int = 41) -> list[Decimal]:
    """The whole numbers from low to high (the buttons), at most ``limit`` of them."""
    values: list[Decimal] = []
    value = low.to_integral_value(rounding="ROUND_CEILING")
    while value <= high and len(values) < limit:
        values.append(value)
        value += 1
    return values


def good_value(item: Item, posts: int) -> Decimal:
    """The middle of the "good" level (张店 good 5-9 → 7, 10-19 → 14.5), or of the whole range without levels."""
    level = next((lv for lv in item.levels if lv.code == GOOD), None)
    low, high = level_range(item, level, posts) if level is not None else value_range(item, posts)
    return (low + high) / 2


def default_value(item: Item, rulebook: Rulebook, posts: int) -> Decimal:
    """What an item counts when nobody assessed it by the notice (DOMAIN decision 9)."""
    low, high = value_range(item, posts)
    if item.default is not None:
        value = item.default * _factor(item, posts)
    elif rulebook.settings.assessment_default is AssessmentDefault.MIDDLE_OF_GOOD:
        value = good_value(item, posts)
    else:
        value = ZERO
    return min(max(value, low), high)


def valid_value(item: Item, value: Decimal, posts: int) -> bool:
    """A value a recorder may give: finite, at most two decimal places, inside the (scaled) range."""
    if not isinstance(value, Decimal) or not value.is_finite() or not item.allows(value, posts=posts):
        return False
    return value == value.quantize(Decimal(1).scaleb(-MAX_PLACES))  # safe: the value is inside a small range


def is_assessment(row: LedgerRow) -> bool:
    return row.reference.startswith("assess:")


def outside_rows(rows: Iterable[LedgerRow]) -> dict[tuple[int, str], list[LedgerRow]]:
    """Rows in force for an assessed item that the assessment did not write (e.g. a /record entry),
    by (member, item): the assessment counts them as the item's value and replaces them when re-assessing."""
    rows = list(rows)
    reversed_ids = {r.reverses_id for r in rows if r.reverses_id is not None}
    found: dict[tuple[int, str], list[LedgerRow]] = {}
    for row in rows:
        if row.reverses_id is None and row.id not in reversed_ids and not is_assessment(row):
            found.setdefault((row.member_id, row.item_code), []).append(row)
    return found


# --- months -------------------------------------------------------------------------------------


def month_key(year: int, month: int) -> str:
    return period_of_month(year, month, Period.MONTH)[0]


def month_code(year: int, month: int) -> str:
    """The month in callback data: 202603."""
    return f"{year}{month:02d}"


def last_day(year: int, month: int) -> date:
    return period_of_month(year, month, Period.MONTH)[2]


def reference(year: int, month: int, item_code: str, revision: int) -> str:
    """The ledger reference of one revision: unique per (month, item, revision) and member."""
    return f"assess:{month_key(year, month)}:{item_code}:{revision}"


def notice_of(year: int, month: int, settings: CalendarSettings, timezone: str) -> datetime:
    """When the month's notice is due; unassessed members get their defaults then."""
    return notice_moment(last_day(year, month), settings, timezone)


def default_month(today: date, now: datetime, settings: CalendarSettings, timezone: str) -> tuple[int, int]:
    """The month being assessed now: last month until its notice, then this month."""
    year, month = add_months(today.year, today.month, -1)
    if now < notice_of(year, month, settings, timezone):
        return year, month
    return today.year, today.month


_YEAR_MONTH = re.compile(r"^\s*(\d{4})\s*[-./年]\s*(\d{1,2})\s*月?\s*$")
_MONTH = re.compile(r"^\s*(\d{1,2})\s*月?\s*$")
_CODE = re.compile(r"^(\d{4})(\d{2})$")


class MonthError(ValueError):
    """Why a month cannot be assessed: 'bad', 'future' or 'too_old'."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def parse_month(text: str, today: date) -> tuple[int, int]:
    """'2026-03', '2026年3月', '3', '3月' (this year, or last year when that month is still to come)."""
    full, short, code = _YEAR_MONTH.match(text), _MONTH.match(text), _CODE.match(text.strip())
    if full or code:
        year, month = int((full or code)[1]), int((full or code)[2])  # type: ignore[index]
    elif short:
        year, month = today.year, int(short[1])
        if 1 <= month <= 12 and (year, month) > (today.year, today.month):
            year -= 1
    else:
        raise MonthError("bad")
    return check_month(year, month, today)


def check_month(year: int, month: int, today: date) -> tuple[int, int]:
    """A month that may be assessed: not in the future, not more than MONTHS_BACK months ago."""
    if not 1 <= month <= 12 or not 2000 <= year <= 2999:
        raise MonthError("bad")
    if (year, month) > (today.year, today.month):
        raise MonthError("future")
    if (year, month) < add_months(today.year, today.month, -MONTHS_BACK):
        raise MonthError("too_old")
    return year, month


def in_month(joined_on: date | None, left_on: date | None, year: int, month: int) -> bool:
    """Whether a member belonged to the branch in that month (DOMAIN decision 8)."""
    _, first, last = period_of_month(year, month, Period.MONTH)
    if joined_on is not None and joined_on > last:
        return False
    return left_on is None or left_on >= first


# --- posts --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """One claim of a post by a member: held from ``claimed_on`` until the day before ``released_on``."""

    claimed_on: date
    released_on: date | None = None

    def held_on(self, day: date) -> bool:
        return self.claimed_on <= day and (self.released_on is None or self.released_on > day)


def posts_held_on(rulebook: Rulebook, claims: Sequence[Claim], day: date) -> int:
    """The posts a member counts on ``day``: 1 without posts in the scheme; otherwise the posts they held.

    Transition rule (每人认领N个岗位): a member who had not claimed any post yet by ``day`` counts the
    rulebook's ``claims_per_member``, so that a branch that does not (yet) keep posts in the bot is scored
    as the scheme intends. From their first claim on, the posts really held count, including 0.
    """
    if rulebook.posts is None:
        return 1
    if not any(c.claimed_on <= day for c in claims):
        return rulebook.posts.claims_per_member
    return sum(1 for c in claims if c.held_on(day))


def counted_on(year: int, month: int, today: date) -> date:
    """The day whose posts count for a month: its last day (held at the month's end), or today while it runs."""
    return min(last_day(year, month), today)


def posts_by_month(rulebook: Rulebook, claims: Sequence[Claim], year: int, today: date) -> dict[tuple[int, int], int]:
    """The posts counted in each month of ``year`` (see ``counted_on``): a later change never alters a month
    that has ended."""
    return {(year, m): posts_held_on(rulebook, claims, counted_on(year, m, today)) for m in range(1, 13)}


def parse_post_numbers(words: list[str]) -> list[int] | None:
    """'3 5', '3,5', '3、5' → [3, 5]; None when a word is not a number."""
    numbers: list[int] = []
    for word in words:
        for part in re.split(r"[\s,，、;；]+", word):
            if not part:
                continue
            if not re.fullmatch(r"#?\d{1,6}", part):
                return None
            numbers.append(int(part.lstrip("#")))
    return numbers
