"""The public notice (公示) of a review period, its objections (异议) and confirmations (签字确认).

Pure: which periods a branch owes a notice for, what a member's part of the notice holds (one
block per member: the period's figure, the year so far, the rows that may be objected to), which
later rows correct earlier periods, and the records the notice storage returns. Nothing here reads a
clock, a database or Telegram; the text and its splitting into messages are the handlers' business.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from bot.domain.calendar import CalendarSettings, notice_moment, previous_periods
from bot.domain.records import LedgerRow
from bot.domain.rulebook import ItemKind, Period, Rulebook, YearMethod
from bot.domain.scoring import (ZERO, Entry, PostCount, category_points, counted_months, effective, item_points, month_score, posts_in,
                                publish, year_score)

NOTICES_OFFERED = 2  # at most the last two ended periods: a new or long-silent branch gets no backlog


# --- records ---------------------------------------------------------------------------------------


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class ConfirmStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    DISPUTED = "disputed"


class ObjectionKind(StrEnum):
    OBJECTION = "objection"  # to one entry of the notice (anyone in the branch)
    DISPUTE = "dispute"  # a member disputing their own period score instead of confirming it


class ObjectionSource(StrEnum):
    MEMBER = "member"  # a member of the branch objected in their own name
    PUBLIC = "public"  # 群众反映: the public's objection, recorded by a supervisor, secretary or deputy (the objector)


class ObjectionStatus(StrEnum):
    OPEN = "open"
    UPHELD = "upheld"  # the entry stands (the objection did not hold)
    WITHDRAWN = "withdrawn"  # the entry's points were withdrawn by a reversing row (the objection held)
    RESOLVED = "resolved"  # a dispute the branch dealt with (any correction is its own ledger entry)


class Verdict(StrEnum):
    UPHOLD = "up"
    WITHDRAW = "wd"
    RESOLVE = "rs"


VERDICT_STATUS = {Verdict.UPHOLD: ObjectionStatus.UPHELD, Verdict.WITHDRAW: ObjectionStatus.WITHDRAWN,
                  Verdict.RESOLVE: ObjectionStatus.RESOLVED}


class Notice(_Record):
    id: int
    branch_id: int
    period_key: str
    first_day: date
    last_day: date
    due_at: datetime
    posted_at: datetime  # when it was recorded (what it publishes was fixed then)
    closes_at: datetime  # the objection window's end: sent_at + objection_days once it is sent
    late: bool
    sent_at: datetime | None = None  # when the whole notice reached the group; None: still to send
    parts_sent: int = 0  # how many of its messages reached the group so far
    ledger_upto: int | None = None  # the last ledger row it saw: later rows of its period are corrections
    signed_by: int | None = None  # the secretary or deputy who signed it off (支委会审核，书记签字确认)
    signed_at: datetime | None = None

    @property
    def sent(self) -> bool:
        return self.sent_at is not None

    @property
    def signed(self) -> bool:
        return self.signed_by is not None

    def open_at(self, now: datetime) -> bool:
        """The objection window: from the moment the notice reached the group."""
        return self.sent_at is not None and self.sent_at <= now < self.closes_at


class NoticeMember(_Record):
    notice_id: int
    member_id: int
    score: str  # the period's figure as published (text, as shown)
    year_score: Decimal
    status: ConfirmStatus
    answered_at: datetime | None
    asked_at: datetime | None = None  # when the request to confirm was sent (once)


class Objection(_Record):
    id: int
    branch_id: int
    notice_id: int
    kind: ObjectionKind
    ledger_id: int | None
    member_id: int  # whose points
    objector_id: int
    target: str
    reason: str
    status: ObjectionStatus
    decided_by: int | None
    decided_at: datetime | None
    reversal_id: int | None
    appealed_by: int | None
    appealed_at: datetime | None
    appeal_reason: str | None
    created_at: datetime
    source: ObjectionSource = ObjectionSource.MEMBER  # PUBLIC: objector_id is who recorded the public's objection

    @property
    def public(self) -> bool:
        return self.source is ObjectionSource.PUBLIC


def entry_target(ledger_id: int) -> str:
    """What an objection is about, for the one-objection-per-person rule (disputes: the score)."""
    return f"entry:{ledger_id}"


def public_target(ledger_id: int) -> str:
    """What a recorded public objection is about: one per recorder and entry, besides their own objection."""
    return f"public:entry:{ledger_id}"


_PERIODIC = re.compile(r"\d{4}-(?:\d{2}|Q[1-4]|H[12])")


def periodic(period_key: str) -> bool:
    """A periodic notice (month, quarter, half-year), which the branch committee reviews and the secretary
    signs off; the annual publicity (``2026``, ``2026-R1``) is published by the secretary's own /grade."""
    return _PERIODIC.fullmatch(period_key) is not None


SCORE_TARGET = "score"


# --- which notices are owed --------------------------------------------------------------------------


@dataclass(frozen=True)
class OwedNotice:
    key: str
    first: date
    last: date
    due_at: datetime  # aware, in the branch's timezone


def owed_notices(today: date, period: Period, since: date, settings: CalendarSettings, timezone: str,
                 count: int = NOTICES_OFFERED) -> list[OwedNotice]:
    """The last ``count`` ended review periods the branch existed in (ended on or after ``since``), oldest first."""
    return [
        OwedNotice(key, first, last, notice_moment(last, settings, timezone))
        for key, first, last in previous_periods(today, period, count)
        if last >= since
    ]


def window_closes(sent_at: datetime, settings: CalendarSettings) -> datetime:
    """The objection window's end, counted from when the notice reached the group."""
    return sent_at + timedelta(days=settings.objection_days)


# --- a member's line -------------------------------------------------------------------------------


def months_of(first: date, last: date) -> list[tuple[int, int]]:
    months, (year, month) = [], (first.year, first.month)
    while (year, month) <= (last.year, last.month):
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


@dataclass(frozen=True)
class Capped:
    """An item (or a category) whose entries in the period add up to more than it counts: its ceiling
    applied, e.g. three 为民办一件实事 +10 (30) when two posts make the month's ceiling 20."""

    code: str  # an item's code, or a category's
    recorded: Decimal  # what the period's entries add up to
    counted: Decimal  # what it counts after its ceiling


@dataclass(frozen=True)
class MemberSummary:
    member_id: int
    name: str
    sum_scheme: bool  # the period's figure is net points (sum schemes) rather than month scores
    month_scores: tuple[tuple[int, int, Decimal], ...]  # (year, month, published score) — averaged/rubric schemes
    net: Decimal  # what the period's rows in force add up to
    year: Decimal  # the year so far at the period's end, published
    provisional: bool  # the year waits for an input (张店's democratic evaluation)
    entries: tuple[Entry, ...]  # the period's rows in force that change something, in order: what may be objected to
    figure: Decimal  # the period's one published figure (see period_figure)
    capped: tuple[Capped, ...] = ()  # items and monthly categories whose ceilings cut the entries above


def period_figure(sum_scheme: bool, net: Decimal, month_scores: tuple[tuple[int, int, Decimal], ...], places: int) -> Decimal:
    """One figure for the period, as published: the net (sum schemes), else the month's score or the
    months' mean (a quarter of 64, 60, 60 is 61.33), rounded like every published score."""
    if sum_scheme or not month_scores:
        return publish(net, places)
    return publish(sum((s for _, _, s in month_scores), ZERO) / len(month_scores), places)


def summarise(rulebook: Rulebook, member_id: int, name: str, rows: Iterable[Entry], first: date, last: date,
              joined_on: date | None, left_on: date | None, posts: PostCount = None,
              months: Sequence[tuple[int, int]] | None = None) -> MemberSummary:
    """A member's standing for the notice of the period ``first``..``last`` (rows: the member's year up to ``last``).
    ``months``: the months of the year counted up to ``last`` when they are not those from ``joined_on`` to
    ``left_on`` (a member who left and came back: each stay's months, not the months away)."""
    places = rulebook.settings.rounding_places
    year_rows = [e for e in rows if e.occurred_on.year == last.year and e.occurred_on <= last]
    in_force = effective(year_rows)
    in_period = tuple(sorted((e for e in in_force if first <= e.occurred_on <= last), key=lambda e: (e.occurred_on, e.id)))
    net = sum((e.value for e in in_period), ZERO)
    sum_scheme = rulebook.year_result.method is YearMethod.SUM
    counted = list(months) if months is not None else counted_months(last.year, last, joined_on, left_on)
    month_scores: tuple[tuple[int, int, Decimal], ...] = ()
    if not sum_scheme:
        month_scores = tuple(
            (y, m, publish(month_score(rulebook, year_rows, y, m, posts).total, places))
            for y, m in months_of(first, last) if (y, m) in counted
        )
    year = year_score(rulebook, year_rows, last.year, counted, posts=posts)
    capped = () if sum_scheme else capped_in(rulebook, in_period, [ym for ym in months_of(first, last) if ym in counted], posts)
    return MemberSummary(
        member_id=member_id, name=name, sum_scheme=sum_scheme, month_scores=month_scores,
        net=net, year=publish(year.figure, places), provisional=year.provisional,
        entries=tuple(e for e in in_period if e.value != ZERO or _is_zero_out(rulebook, e)),  # a 0 default changes nothing; a zero-out decides the year
        figure=period_figure(sum_scheme, net, month_scores, places),
        capped=capped,
    )


def capped_in(rulebook: Rulebook, in_period: Sequence[Entry], months: Sequence[tuple[int, int]],
              posts: PostCount) -> tuple[Capped, ...]:
    """The monthly items and categories whose ceilings cut what the period's entries add up to, summed
    over the period's counted months: what a notice lists and why the figure is lower than the list.
    Allotments (which start full) and zero-outs are not ceilings; yearly categories (加分项) are capped
    in the year's figure, not the month's."""
    found: dict[str, tuple[Decimal, Decimal]] = {}

    def add(code: str, recorded: Decimal, counted: Decimal) -> None:
        before = found.get(code, (ZERO, ZERO))
        found[code] = (before[0] + recorded, before[1] + counted)

    monthly = {category.code for category in rulebook.categories if category.period is Period.MONTH}
    for year, month in months:
        count = posts_in(rulebook, posts, year, month)
        in_month = [e for e in in_period if (e.occurred_on.year, e.occurred_on.month) == (year, month)]
        for category in rulebook.categories:
            if category.code not in monthly:
                continue
            codes = {item.code: item for item in category.items}
            mine = [e for e in in_month if e.item_code in codes]
            if not mine:
                continue
            for code, item in codes.items():
                entries = [e for e in mine if e.item_code == code]
                if entries and item.cap is not None and item.kind not in (ItemKind.ALLOTMENT, ItemKind.ZERO_OUT):
                    total = sum((e.value for e in entries), ZERO)
                    points = item_points(item, entries, count)
                    if points != total:
                        add(code, total, points)
            score = category_points(category, mine, count)
            if score.points != score.raw:
                add(category.code, score.raw, score.points)
    return tuple(Capped(code, recorded, counted) for code, (recorded, counted) in found.items())


def _is_zero_out(rulebook: Rulebook, entry: Entry) -> bool:
    item = rulebook.item(entry.item_code)
    return item is not None and item.kind is ItemKind.ZERO_OUT


def in_notice(joined_on: date | None, left_on: date | None, first: date, last: date) -> bool:
    """Whether a member belonged to the branch during the period."""
    return (joined_on is None or joined_on <= last) and (left_on is None or left_on >= first)


# --- corrections to earlier periods --------------------------------------------------------------------


def corrections(rows: Iterable[LedgerRow], reversed_ids: set[int], rulebook: Rulebook | None = None) -> list[LedgerRow]:
    """What changed in periods already published since the last notice: ``rows`` are the ledger rows
    written after that notice was recorded and dated within a published period; ``reversed_ids`` the
    rows among them reversed since. A row written and reversed in between, and a row that changes
    nothing (0), drop out — but not a zero-out's row or its reversal (0 points, yet it decides the year,
    as ``summarise`` keeps it among the period's entries); a reversal of an earlier row is kept (it takes
    published points back)."""
    found = list(rows)
    new_ids = {r.id for r in found}
    return [
        r for r in sorted(found, key=lambda r: (r.occurred_on, r.id))
        if r.id not in reversed_ids and r.reverses_id not in new_ids
        and (r.value != ZERO or (rulebook is not None and _is_zero_out(rulebook, r)))
    ]


def objectable(row: LedgerRow) -> bool:
    """A row people may object to: not a reversal (withdrawing a reversal would not restore its original)."""
    return row.reverses_id is None


def one_line(text: str | None, limit: int = 200) -> str:
    """A reason as one line of the notice (the full text stays in /history)."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
