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


class EntryRow:
    """The fields of ``Entry`` on a plain slotted object: what a bulk read builds (grading a branch reads
    thousands of rows; a validated model per row cost more than the scoring). Every function here takes
    either. Not a NamedTuple: slot attributes read several times faster, and it is built faster."""

    __slots__ = ("id", "item_code", "value", "occurred_on", "event_code", "reverses_id")

    def __init__(self, id: int, item_code: str, value: Decimal, occurred_on: date, event_code: str | None = None,
                 reverses_id: int | None = None):
        self.id, self.item_code, self.value, self.occurred_on = id, item_code, value, occurred_on
        self.event_code, self.reverses_id = event_code, reverses_id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EntryRow) and all(getattr(self, f) == getattr(other, f) for f in self.__slots__)

    def __repr__(self) -> str:
        return "EntryRow(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in self.__slots__) + ")"


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


# --- a rulebook's look-ups, built once per rulebook -----------------------------------------------


class _Index:
    """Item code → item and category (``Rulebook.item``/``category_of`` scan every item), the codes of
    zero-out items, and per number of posts what an item, a category and a month are worth with no
    entries at all (allotments full) — the same arithmetic as with entries, done once."""

    def __init__(self, rulebook: Rulebook):
        self.rulebook = rulebook  # held: the cache below is keyed by id(), which must stay this rulebook's
        self.category_of: dict[str, Category] = {}
        self.item_of: dict[str, Item] = {}
        for category in rulebook.categories:
            for item in category.items:
                self.category_of[item.code] = category
                self.item_of[item.code] = item
        self.zero_codes = frozenset(i.code for _, i in rulebook.items() if i.kind is ItemKind.ZERO_OUT)
        self.major_codes = frozenset(i.code for _, i in rulebook.items() if i.major)
        self.monthly = tuple(c for c in rulebook.categories if c.period is Period.MONTH)
        self.monthly_item = {i.code: (c, i) for c in self.monthly for i in c.items}
        self._tables: dict[int, tuple] = {}

    def table(self, posts: int) -> tuple[dict[str, tuple], dict[str, Decimal], dict[str, Decimal], dict[str, Decimal | None], Decimal]:
        """For a month counted with ``posts`` posts: item code → (category code, kind, the allotment's
        full value, the cap, the item's points with no entries); each monthly category's raw and capped
        points with no entries, and its cap; the month's total with no entries (before its floor)."""
        found = self._tables.get(posts)
        if found is None:
            specs, raws, points, caps = {}, {}, {}, {}
            for category in self.monthly:
                for item in category.items:
                    factor = posts if item.per_post else 1
                    specs[item.code] = (category.code, item.kind, item.full * factor if item.full is not None else None,
                                        item.cap * factor if item.cap is not None else None, item_points(item, (), posts))
                raws[category.code] = sum((specs[i.code][4] for i in category.items), ZERO)
                points[category.code] = _cap(raws[category.code], category.cap)
                caps[category.code] = category.cap
            found = self._tables[posts] = (specs, raws, points, caps, sum(points.values(), ZERO))
        return found


_INDEXES: dict[int, _Index] = {}


def _index(rulebook: Rulebook) -> _Index:
    found = _INDEXES.get(id(rulebook))
    if found is None or found.rulebook is not rulebook:
        if len(_INDEXES) >= 256:  # rulebooks are few (a preset, plus a branch's own items): never reached in practice
            _INDEXES.clear()
        found = _INDEXES[id(rulebook)] = _Index(rulebook)
    return found


def zero_out_codes(rulebook: Rulebook) -> frozenset[str]:
    """The codes of the rulebook's zero-out (veto) items, built once per rulebook."""
    return _index(rulebook).zero_codes


def item_of(rulebook: Rulebook, code: str) -> Item | None:
    """``rulebook.item(code)`` from the index built once per rulebook (item codes are unique) instead of a
    scan of every item: /history looks up 30."""
    return _index(rulebook).item_of.get(code)


def major_codes(rulebook: Rulebook) -> frozenset[str]:
    """The codes of the items flagged ``major``, built once per rulebook."""
    return _index(rulebook).major_codes


def _by_month(rows: Iterable[Entry]) -> dict[tuple[int, int], list[Entry]]:
    """Rows grouped by (year, month) once, in their order (instead of re-filtering the year per month)."""
    grouped: dict[tuple[int, int], list[Entry]] = {}
    for entry in rows:
        day = entry.occurred_on
        key = (day.year, day.month)
        found = grouped.get(key)
        if found is None:
            grouped[key] = [entry]
        else:
            found.append(entry)
    return grouped


# --- item and category arithmetic ---------------------------------------------------------------


def _cap(value: Decimal, cap: Decimal | None) -> Decimal:
    return min(value, cap) if cap is not None else value


def item_points(item: Item, entries: Sequence[Entry], posts: int) -> Decimal:
    """One item's points in one judging period."""
    return _item_points(item, sum((e.value for e in entries), ZERO), posts)


def _item_points(item: Item, total: Decimal, posts: int) -> Decimal:
    factor = posts if item.per_post else 1
    if item.kind is ItemKind.ALLOTMENT:
        assert item.full is not None
        return max(ZERO, item.full * factor + total)  # never below 0
    if item.kind is ItemKind.ZERO_OUT:
        return ZERO
    return _cap(total, item.cap * factor if item.cap is not None else None)


_EMPTY_ITEMS: dict[tuple[int, int], tuple[Category, dict[str, Decimal]]] = {}


def _empty_items(category: Category, posts: int) -> dict[str, Decimal]:
    """Each item's points with no entries (``item_points(item, (), posts)``), once per category and posts."""
    key = (id(category), posts)
    found = _EMPTY_ITEMS.get(key)
    if found is None or found[0] is not category:  # held: the id stays this category's while cached
        if len(_EMPTY_ITEMS) >= 4096:
            _EMPTY_ITEMS.clear()
        found = _EMPTY_ITEMS[key] = (category, {item.code: item_points(item, (), posts) for item in category.items})
    return found[1]


def category_points(category: Category, entries: Sequence[Entry], posts: int) -> CategoryScore:
    """A category's points in one of its periods, allotments included even with no entries."""
    by_item: dict[str, list[Entry]] = {}
    for entry in entries:
        found = by_item.get(entry.item_code)
        if found is None:
            by_item[entry.item_code] = [entry]
        else:
            found.append(entry)
    empty = _empty_items(category, posts)
    raw = ZERO  # the same terms added in the same order as before: the same Decimal, exponent included
    for item in category.items:
        found = by_item.get(item.code)
        raw += empty[item.code] if found is None else item_points(item, found, posts)
    return CategoryScore(code=category.code, raw=raw, points=_cap(raw, category.cap))


def _zero_out_hits(rulebook: Rulebook, entries: Sequence[Entry]) -> list[Entry]:
    zero_codes = _index(rulebook).zero_codes
    return [e for e in entries if e.item_code in zero_codes]


def _of_categories(rulebook: Rulebook, entries: Sequence[Entry]) -> dict[str, list[Entry]]:
    category_of = _index(rulebook).category_of
    result: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        category = category_of.get(entry.item_code)
        if category is not None:  # an item since removed from the rulebook counts nowhere
            result[category.code].append(entry)
    return result


def month_score(rulebook: Rulebook, entries: Iterable[Entry], year: int, month: int, posts: PostCount = None) -> MonthScore:
    """The month's score over the categories judged monthly (allotments start full), with the month's posts."""
    in_month = [e for e in effective(entries) if (e.occurred_on.year, e.occurred_on.month) == (year, month)]
    return _month_score(rulebook, in_month, year, month, posts)


def _month_score(rulebook: Rulebook, in_month: Sequence[Entry], year: int, month: int, posts: PostCount) -> MonthScore:
    """``month_score`` of rows already effective and of that month."""
    count = posts_in(rulebook, posts, year, month)
    grouped = _of_categories(rulebook, in_month)
    scores = tuple(category_points(c, grouped.get(c.code, []), count) for c in _index(rulebook).monthly)
    total = sum((s.points for s in scores), ZERO)
    if rulebook.settings.month_floor_zero:
        total = max(ZERO, total)
    return MonthScore(year=year, month=month, categories=scores, total=total)


def _month_totals(rulebook: Rulebook, rows: Sequence[Entry], months: Sequence[tuple[int, int]],
                  posts: PostCount) -> list[tuple[int, Decimal]]:
    """(month, ``_month_score(...).total``) of each counted month, without building the scores: a month
    with no entries is worth a constant, and otherwise each category moves from its worth with no
    entries by what its items with entries change of it (``_Index.table``). Equal in value to
    ``_month_score``'s totals (exact Decimal sums; an exponent may differ, which only a rounded,
    published figure ever shows) — tests/test_scoring_fast.py checks it."""
    index = _index(rulebook)
    monthly_item = index.monthly_item
    sums_by_month: dict[tuple[int, int], dict[str, Decimal]] = {}
    for entry in rows:  # rows are the year's effective rows: one pass, summed per month and item
        code = entry.item_code
        if code not in monthly_item:
            continue
        day = entry.occurred_on
        key = (day.year, day.month)
        sums = sums_by_month.get(key)
        if sums is None:
            sums_by_month[key] = {code: ZERO + entry.value}
        else:
            sums[code] = sums.get(code, ZERO) + entry.value
    floor = rulebook.settings.month_floor_zero
    # posts_in, with its default worked out once: a month's posts look up at most a dict
    default = rulebook.posts_per_member
    by_month = posts if posts is not None and not isinstance(posts, int) else None
    fixed = default if posts is None else posts if by_month is None else None
    tables: dict[int, tuple] = {}  # index.table per number of posts, for this call
    totals = []
    for year, month in months:
        count = fixed if by_month is None else by_month.get((year, month), default)
        table = tables.get(count)  # type: ignore[arg-type]
        if table is None:
            table = tables[count] = index.table(count)  # type: ignore[arg-type,index]
        specs, empty_raws, empty_points, caps, total = table
        sums = sums_by_month.get((year, month))
        if sums:
            moved: dict[str, Decimal] = {}
            for code, value in sums.items():
                category, kind, base, cap, empty = specs[code]
                if kind is ItemKind.ALLOTMENT:
                    points = base + value
                    if points < ZERO:
                        points = ZERO
                elif kind is ItemKind.ZERO_OUT:
                    points = ZERO
                else:
                    points = value if cap is None or value < cap else cap
                change = moved.get(category)
                moved[category] = (ZERO if change is None else change) + (points - empty)
            for category, change in moved.items():
                raw = empty_raws[category] + change
                cap = caps[category]
                total += (raw if cap is None or raw < cap else cap) - empty_points[category]
        if floor and total < ZERO:
            total = ZERO
        totals.append((month, total))
    return totals


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
    detail: bool = True,
) -> YearScore:
    """The year's result so far, by the rulebook's method, over the months the member counts.

    ``posts`` may give a number per month: each month is then scored with its own posts.
    ``detail=False`` leaves out what only a member's own view shows (``months``, and ``categories``
    where the year averages its months) and computes month totals without building their scores: the
    figure, halves, bonus and flags are the same — what grading a whole branch needs, several times faster.
    """
    rows = [e for e in effective(entries) if e.occurred_on.year == year]
    match rulebook.year_result.method:
        case YearMethod.SUM:
            return _sum_year(rulebook, rows, year, months, posts, detail)
        case YearMethod.MONTHLY_AVERAGE:
            return _average_year(rulebook, rows, year, months, posts, detail)
        case YearMethod.WEIGHTED_HALVES:
            return _weighted_year(rulebook, rows, year, months, posts, democratic or {}, detail)
    raise ValueError(rulebook.year_result.method)


def _months(rulebook: Rulebook, rows: list[Entry], months: Sequence[tuple[int, int]], posts: PostCount,
            detail: bool) -> tuple[tuple[MonthScore, ...], list[tuple[int, Decimal]]]:
    """The counted months' scores (with ``detail``) and (month, total) of each."""
    if detail:
        by_month = _by_month(rows)
        scored = tuple(_month_score(rulebook, by_month.get((y, m), ()), y, m, posts) for y, m in months)
        return scored, [(s.month, s.total) for s in scored]
    return (), _month_totals(rulebook, rows, months, posts)


def _floor_year(rulebook: Rulebook, figure: Decimal) -> Decimal:
    return max(ZERO, figure) if rulebook.settings.year_floor_zero else figure


def _sum_year(rulebook: Rulebook, rows: list[Entry], year: int, months: Sequence[tuple[int, int]], posts: PostCount,
              detail: bool = True) -> YearScore:
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
    scored_months = _months(rulebook, rows, months, posts, detail)[0] if detail else ()
    return YearScore(year=year, method=YearMethod.SUM, figure=figure, categories=tuple(categories), months=scored_months, zeroed=zeroed)


def _average(values: Sequence[Decimal]) -> Decimal:
    return sum(values, ZERO) / len(values) if values else ZERO


def _bonus(rulebook: Rulebook, rows: Sequence[Entry]) -> Decimal:
    code = rulebook.year_result.bonus_category
    if code is None:
        return ZERO
    category_of = _index(rulebook).category_of
    earned = sum((e.value for e in rows if (c := category_of.get(e.item_code)) and c.code == code), ZERO)
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


def _average_year(rulebook: Rulebook, rows: list[Entry], year: int, months: Sequence[tuple[int, int]], posts: PostCount,
                  detail: bool = True) -> YearScore:
    scored, totals = _months(rulebook, rows, months, posts, detail)
    bonus = _bonus(rulebook, rows)
    zeroed = bool(_zero_out_hits(rulebook, rows))
    figure = ZERO if zeroed or not totals else _floor_year(rulebook, _average([t for _, t in totals]) + bonus)
    categories = _averaged_categories(scored)
    if rulebook.year_result.bonus_category and detail:
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
    detail: bool = True,
) -> YearScore:
    rule = rulebook.year_result
    scored, totals = _months(rulebook, rows, months, posts, detail)
    halves = []
    for half in (1, 2):
        in_half = [t for m, t in totals if (m <= 6) == (half == 1)]
        if not in_half:
            continue
        half_rows = [e for e in rows if (e.occurred_on.month <= 6) == (half == 1)]
        bonus = _bonus(rulebook, half_rows)
        quantified = _average(in_half) + bonus
        zeroed = bool(_zero_out_hits(rulebook, half_rows))
        rating = democratic.get(half)
        result = None if rating is None else quantified * rule.quantified_weight + rating * rule.democratic_weight
        if zeroed:
            quantified, result = ZERO, ZERO
        halves.append(HalfScore(half=half, monthly_average=_average(in_half), bonus=bonus,
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
