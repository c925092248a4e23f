"""Scores from ledger entries, per a branch's rulebook.

Pure functions: the caller passes the member's ledger rows (reversals included) and the months the
member counts; nothing here reads a clock, a database or Telegram. Totals are exact ``Decimal``s;
only ``publish`` rounds, and bands are decided on the published figure (DOMAIN decision 1).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel, ConfigDict

from bot.domain.rulebook import Band, Category, Item, ItemKind, Period, Rulebook, YearMethod

ZERO = Decimal(0)

# The volunteer posts a member counts (浠水): None = the rulebook's number; one number for every month; or a
# number per (year, month) — posts change, and a month is scored by the posts counted in that month.
PostCount = int | Mapping[tuple[int, int], int] | None


class Entry(BaseModel):
    """One ledger row as the domain sees it."""

    model_config = ConfigDict(frozen=True)

    id: int
    item_code: str
    value: Decimal
    occurred_on: date
    event_code: str | None = None
    reverses_id: int | None = None


class CategoryScore(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    raw: Decimal  # what the entries (and allotments) add up to
    points: Decimal  # after the category's ceilings


class MonthScore(BaseModel):
    model_config = ConfigDict(frozen=True)

    year: int
    month: int
    categories: tuple[CategoryScore, ...]  # the categories judged monthly
    total: Decimal


class HalfScore(BaseModel):
    model_config = ConfigDict(frozen=True)

    half: int  # 1 or 2
    monthly_average: Decimal
    bonus: Decimal  # capped
    quantified: Decimal  # monthly_average + bonus
    democratic: Decimal | None  # None until the democratic evaluation is in
    result: Decimal | None  # quantified x 60% + democratic x 40%; None while democratic is missing
    zeroed: bool


class YearScore(BaseModel):
    model_config = ConfigDict(frozen=True)

    year: int
    method: YearMethod
    figure: Decimal  # exact; the year's result so far
    categories: tuple[CategoryScore, ...]  # per category for the year (averaged where the year averages)
    months: tuple[MonthScore, ...]  # the months counted
    halves: tuple[HalfScore, ...] = ()
    bonus: Decimal = ZERO  # capped bonus added on top (averaged methods)
    zeroed: bool = False  # a zero-out/veto item made the result 0
    provisional: bool = False  # waits for an input not yet given (张店's democratic evaluation)


# --- helpers ----------------------------------------------------------------------------------


def publish(figure: Decimal, places: int = 2) -> Decimal:
    """The published figure: rounded half up (DOMAIN decision 1)."""
    return figure.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def effective(entries: Iterable[Entry]) -> list[Entry]:
    """Rows still in force: a reversed row and its reversal both drop out."""
    rows = list(entries)
    reversed_ids = {e.reverses_id for e in rows if e.reverses_id is not None}
    return [e for e in rows if e.reverses_id is None and e.id not in reversed_ids]


def period_key(day: date, period: Period) -> str:
    match period:
        case Period.WEEK:
            iso = day.isocalendar()
            return f"{iso.year}-W{iso.week:02d}"
        case Period.MONTH:
            return f"{day.year}-{day.month:02d}"
        case Period.QUARTER:
            return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
        case Period.HALF:
            return f"{day.year}-H{1 if day.month <= 6 else 2}"
        case Period.YEAR:
            return f"{day.year}"
    raise ValueError(period)


def counted_months(year: int, today: date, joined_on: date | None = None, left_on: date | None = None) -> list[tuple[int, int]]:
    """The months of ``year`` a member counts in, up to ``today`` (DOMAIN decision 8)."""
    first = 1
    if joined_on is not None:
        if joined_on.year > year:
            return []
        if joined_on.year == year:
            first = joined_on.month
    last = 12 if today.year > year else (today.month if today.year == year else 0)
    if left_on is not None:
        if left_on.year < year:
            return []
        if left_on.year == year:
            last = min(last, left_on.month)
    return [(year, m) for m in range(first, last + 1)]


def months_so_far(rulebook: Rulebook, today: date, joined_on: date | None = None, left_on: date | None = None) -> list[tuple[int, int]]:
    """The months a member's "year so far" counts as of ``today``.

    Averaging schemes judge whole months: the month in progress (which starts with full allotments and
    nothing assessed) joins the average only once it has ended — unless it is the only month yet, so the
    figure matches the last notice. A sum scheme counts everything to date.
    """
    months = counted_months(today.year, today, joined_on, left_on)
    if rulebook.year_result.method is not YearMethod.SUM and len(months) > 1 and months[-1] == (today.year, today.month):
        months = months[:-1]
    return months


def posts_in(rulebook: Rulebook, posts: PostCount, year: int, month: int) -> int:
    """The posts counted in one month: the rulebook's number for None (and for a month a mapping lacks)."""
    if posts is None:
        return rulebook.posts_per_member
    if isinstance(posts, int):
        return posts
    return posts.get((year, month), rulebook.posts_per_member)


def democratic_score(ratings: dict[str, Decimal], weights: dict[str, Decimal]) -> Decimal:
    """Weighted mean of self, peer, public and branch ratings (0-100)."""
    missing = set(weights) - set(ratings)
    if missing:
        raise ValueError(f"missing ratings: {', '.join(sorted(missing))}")
    return sum((ratings[k] * w for k, w in weights.items()), ZERO)


# --- item and category arithmetic ---------------------------------------------------------------


def _cap(value: Decimal, cap: Decimal | None) -> Decimal:
    return min(value, cap) if cap is not None else value


def item_points(item: Item, entries: Sequence[Entry], posts: int) -> Decimal:
    """One item's points in one judging period."""
    factor = posts if item.per_post else 1
    total = sum((e.value for e in entries), ZERO)
    if item.kind is ItemKind.ALLOTMENT:
        assert item.full is not None
        return max(ZERO, item.full * factor + total)  # never below 0
    if item.kind is ItemKind.ZERO_OUT:
        return ZERO
    return _cap(total, item.cap * factor if item.cap is not None else None)


def category_points(category: Category, entries: Sequence[Entry], posts: int) -> CategoryScore:
    """A category's points in one of its periods, allotments included even with no entries."""
    by_item: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        by_item[entry.item_code].append(entry)
    raw = sum((item_points(item, by_item.get(item.code, ()), posts) for item in category.items), ZERO)
    return CategoryScore(code=category.code, raw=raw, points=_cap(raw, category.cap))


def _zero_out_hits(rulebook: Rulebook, entries: Sequence[Entry]) -> list[Entry]:
    zero_codes = {i.code for _, i in rulebook.items() if i.kind is ItemKind.ZERO_OUT}
    return [e for e in entries if e.item_code in zero_codes]


def _of_categories(rulebook: Rulebook, entries: Sequence[Entry]) -> dict[str, list[Entry]]:
    result: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        category = rulebook.category_of(entry.item_code)
        if category is not None:  # an item since removed from the rulebook counts nowhere
            result[category.code].append(entry)
    return result


def month_score(rulebook: Rulebook, entries: Iterable[Entry], year: int, month: int, posts: PostCount = None) -> MonthScore:
    """The month's score over the categories judged monthly (allotments start full), with the month's posts."""
    posts = posts_in(rulebook, posts, year, month)
    in_month = [e for e in effective(entries) if (e.occurred_on.year, e.occurred_on.month) == (year, month)]
    grouped = _of_categories(rulebook, in_month)
    scores = tuple(
        category_points(c, grouped.get(c.code, []), posts) for c in rulebook.categories if c.period is Period.MONTH
    )
    total = sum((s.points for s in scores), ZERO)
    if rulebook.settings.month_floor_zero:
        total = max(ZERO, total)
    return MonthScore(year=year, month=month, categories=scores, total=total)


def month_net(entries: Iterable[Entry], year: int, month: int) -> Decimal:
    """What the month's ledger rows add up to (for sum schemes' "this month")."""
    return sum(
        (e.value for e in effective(entries) if (e.occurred_on.year, e.occurred_on.month) == (year, month)), ZERO
    )


# --- the year -----------------------------------------------------------------------------------


def year_score(
    rulebook: Rulebook,
    entries: Iterable[Entry],
    year: int,
    months: Sequence[tuple[int, int]],
    *,
    posts: PostCount = None,
    democratic: dict[int, Decimal] | None = None,
) -> YearScore:
    """The year's result so far, by the rulebook's method, over the months the member counts.

    ``posts`` may give a number per month: each month is then scored with its own posts.
    """
    rows = [e for e in effective(entries) if e.occurred_on.year == year]
    match rulebook.year_result.method:
        case YearMethod.SUM:
            return _sum_year(rulebook, rows, year, months, posts)
        case YearMethod.MONTHLY_AVERAGE:
            return _average_year(rulebook, rows, year, months, posts)
        case YearMethod.WEIGHTED_HALVES:
            return _weighted_year(rulebook, rows, year, months, posts, democratic or {})
    raise ValueError(rulebook.year_result.method)


def _floor_year(rulebook: Rulebook, figure: Decimal) -> Decimal:
    return max(ZERO, figure) if rulebook.settings.year_floor_zero else figure


def _sum_year(rulebook: Rulebook, rows: list[Entry], year: int, months: Sequence[tuple[int, int]], posts: PostCount) -> YearScore:
    grouped = _of_categories(rulebook, rows)
    categories = []
    for category in rulebook.categories:
        by_period: dict[str, list[Entry]] = defaultdict(list)
        for entry in grouped.get(category.code, []):
            by_period[period_key(entry.occurred_on, category.period)].append(entry)
        raw = ZERO
        for es in by_period.values():
            latest = max(e.occurred_on for e in es)  # a period longer than a month: the posts of its latest entry's month
            raw += category_points(category, es, posts_in(rulebook, posts, latest.year, latest.month)).points
        categories.append(CategoryScore(code=category.code, raw=raw, points=_cap(raw, category.cap_year)))
    zeroed = bool(_zero_out_hits(rulebook, rows))
    figure = ZERO if zeroed or not months else _floor_year(rulebook, rulebook.year_result.base + sum((c.points for c in categories), ZERO))
    scored_months = tuple(month_score(rulebook, rows, y, m, posts) for y, m in months)
    return YearScore(year=year, method=YearMethod.SUM, figure=figure, categories=tuple(categories), months=scored_months, zeroed=zeroed)


def _average(values: Sequence[Decimal]) -> Decimal:
    return sum(values, ZERO) / len(values) if values else ZERO


def _bonus(rulebook: Rulebook, rows: Sequence[Entry]) -> Decimal:
    code = rulebook.year_result.bonus_category
    if code is None:
        return ZERO
    earned = sum((e.value for e in rows if (c := rulebook.category_of(e.item_code)) and c.code == code), ZERO)
    return max(ZERO, _cap(earned, rulebook.year_result.bonus_cap))


def _averaged_categories(scored: Sequence[MonthScore]) -> tuple[CategoryScore, ...]:
    if not scored:
        return ()
    codes = [c.code for c in scored[0].categories]
    return tuple(
        CategoryScore(
            code=code,
            raw=_average([next(c.raw for c in m.categories if c.code == code) for m in scored]),
            points=_average([next(c.points for c in m.categories if c.code == code) for m in scored]),
        )
        for code in codes
    )


def _average_year(rulebook: Rulebook, rows: list[Entry], year: int, months: Sequence[tuple[int, int]], posts: PostCount) -> YearScore:
    scored = tuple(month_score(rulebook, rows, y, m, posts) for y, m in months)
    bonus = _bonus(rulebook, rows)
    zeroed = bool(_zero_out_hits(rulebook, rows))
    figure = ZERO if zeroed or not scored else _floor_year(rulebook, _average([m.total for m in scored]) + bonus)
    categories = _averaged_categories(scored)
    if rulebook.year_result.bonus_category:
        categories += (CategoryScore(code=rulebook.year_result.bonus_category, raw=bonus, points=bonus),)
    return YearScore(
        year=year, method=YearMethod.MONTHLY_AVERAGE, figure=figure, categories=categories, months=scored, bonus=bonus, zeroed=zeroed
    )


def _weighted_year(
    rulebook: Rulebook,
    rows: list[Entry],
    year: int,
    months: Sequence[tuple[int, int]],
    posts: PostCount,
    democratic: dict[int, Decimal],
) -> YearScore:
    rule = rulebook.year_result
    scored = tuple(month_score(rulebook, rows, y, m, posts) for y, m in months)
    halves = []
    for half in (1, 2):
        in_half = [m for m in scored if (m.month <= 6) == (half == 1)]
        if not in_half:
            continue
        half_rows = [e for e in rows if (e.occurred_on.month <= 6) == (half == 1)]
        bonus = _bonus(rulebook, half_rows)
        quantified = _average([m.total for m in in_half]) + bonus
        zeroed = bool(_zero_out_hits(rulebook, half_rows))
        rating = democratic.get(half)
        result = None if rating is None else quantified * rule.quantified_weight + rating * rule.democratic_weight
        if zeroed:
            quantified, result = ZERO, ZERO
        halves.append(HalfScore(half=half, monthly_average=_average([m.total for m in in_half]), bonus=bonus,
                                quantified=quantified, democratic=rating, result=result, zeroed=zeroed))
    provisional = any(h.result is None for h in halves)
    # While the democratic evaluation is missing the year so far shows the quantified part alone.
    parts = [h.quantified if h.result is None else h.result for h in halves]
    figure = _floor_year(rulebook, _average(parts)) if parts else ZERO
    return YearScore(
        year=year,
        method=YearMethod.WEIGHTED_HALVES,
        figure=figure,
        categories=_averaged_categories(scored),
        months=scored,
        halves=tuple(halves),
        bonus=sum((h.bonus for h in halves), ZERO),
        zeroed=any(h.zeroed for h in halves),
        provisional=provisional,
    )


def band_of(rulebook: Rulebook, figure: Decimal) -> Band | None:
    """The band of the published (rounded) figure."""
    return rulebook.band_for(publish(figure, rulebook.settings.rounding_places))
