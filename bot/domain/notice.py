"""The public notice (公示) of a review period, its objections (异议) and confirmations (签字确认).

Pure: which periods a branch owes a notice for, what a member's line in the notice says, how a
notice is packed into Telegram-sized messages, and the records the notice storage returns. Nothing
here reads a clock, a database or Telegram.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from bot.domain.calendar import CalendarSettings, notice_moment, previous_periods
from bot.domain.rulebook import Period, Rulebook, YearMethod
from bot.domain.scoring import ZERO, Entry, counted_months, effective, month_score, publish, year_score

NOTICES_OFFERED = 2  # at most the last two ended periods: a new or long-silent branch gets no backlog
MESSAGE_LIMIT = 4096


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
    posted_at: datetime
    closes_at: datetime
    late: bool

    def open_at(self, now: datetime) -> bool:
        return self.posted_at <= now < self.closes_at


class NoticeMember(_Record):
    notice_id: int
    member_id: int
    score: str  # the period's figure as published (text, as shown)
    year_score: Decimal
    status: ConfirmStatus
    answered_at: datetime | None


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


def entry_target(ledger_id: int) -> str:
    """What an objection is about, for the one-objection-per-person rule (disputes: the score)."""
    return f"entry:{ledger_id}"


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


def window_closes(posted_at: datetime, settings: CalendarSettings) -> datetime:
    return posted_at + timedelta(days=settings.objection_days)


# --- a member's line -------------------------------------------------------------------------------


def months_of(first: date, last: date) -> list[tuple[int, int]]:
    months, (year, month) = [], (first.year, first.month)
    while (year, month) <= (last.year, last.month):
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


@dataclass(frozen=True)
class MemberSummary:
    member_id: int
    name: str
    sum_scheme: bool  # the period's figure is net points (sum schemes) rather than month scores
    month_scores: tuple[tuple[int, int, Decimal], ...]  # (year, month, published score) — averaged/rubric schemes
    net: Decimal  # what the period's rows in force add up to
    year: Decimal  # the year so far at the period's end, published
    provisional: bool  # the year waits for an input (张店's democratic evaluation)
    entries: tuple[Entry, ...]  # the period's rows in force, in order: what may be objected to

    @property
    def period_figure(self) -> Decimal:
        """One figure for the period: the net (sum schemes), else the month's score or the months' mean."""
        if self.sum_scheme or not self.month_scores:
            return self.net
        return sum((s for _, _, s in self.month_scores), ZERO) / len(self.month_scores)


def summarise(rulebook: Rulebook, member_id: int, name: str, rows: Iterable[Entry], first: date, last: date,
              joined_on: date | None, left_on: date | None, posts: int | None = None) -> MemberSummary:
    """A member's standing for the notice of the period ``first``..``last`` (rows: the member's year up to ``last``)."""
    places = rulebook.settings.rounding_places
    year_rows = [e for e in rows if e.occurred_on.year == last.year and e.occurred_on <= last]
    in_force = effective(year_rows)
    in_period = tuple(sorted((e for e in in_force if first <= e.occurred_on <= last), key=lambda e: (e.occurred_on, e.id)))
    sum_scheme = rulebook.year_result.method is YearMethod.SUM
    counted = counted_months(last.year, last, joined_on, left_on)
    month_scores: tuple[tuple[int, int, Decimal], ...] = ()
    if not sum_scheme:
        month_scores = tuple(
            (y, m, publish(month_score(rulebook, year_rows, y, m, posts).total, places))
            for y, m in months_of(first, last) if (y, m) in counted
        )
    year = year_score(rulebook, year_rows, last.year, counted, posts=posts)
    return MemberSummary(
        member_id=member_id, name=name, sum_scheme=sum_scheme, month_scores=month_scores,
        net=sum((e.value for e in in_period), ZERO), year=publish(year.figure, places),
        provisional=year.provisional, entries=in_period,
    )


def in_notice(joined_on: date | None, left_on: date | None, first: date, last: date) -> bool:
    """Whether a member belonged to the branch during the period."""
    return (joined_on is None or joined_on <= last) and (left_on is None or left_on >= first)


# --- packing into messages -------------------------------------------------------------------------


def telegram_length(text: str) -> int:
    """An upper bound of what Telegram counts: UTF-16 units of the text including markup."""
    return len(text.encode("utf-16-le")) // 2


def pack(blocks: Sequence[str], limit: int = MESSAGE_LIMIT) -> list[str]:
    """Join blocks (a header, one member's lines…) into as few messages as fit, each within ``limit``.

    A block is never split unless it alone is too long; then it is split between its lines, and a
    single overlong line is cut (our lines carry no tags that long).
    """
    messages: list[str] = []
    current = ""

    def flush() -> None:
        nonlocal current
        if current:
            messages.append(current)
        current = ""

    for block in blocks:
        if not block:
            continue
        candidate = f"{current}\n\n{block}" if current else block
        if telegram_length(candidate) <= limit:
            current = candidate
            continue
        flush()
        if telegram_length(block) <= limit:
            current = block
            continue
        for line in block.split("\n"):
            while telegram_length(line) > limit:
                flush()
                cut = _cut(line, limit)
                messages.append(line[:cut])
                line = line[cut:]
            candidate = f"{current}\n{line}" if current else line
            if telegram_length(candidate) <= limit:
                current = candidate
            else:
                flush()
                current = line
        flush()
    flush()
    return messages


def _cut(line: str, limit: int) -> int:
    """The longest prefix of ``line`` within ``limit`` UTF-16 units (at least one character)."""
    used, index = 0, 0
    for index, ch in enumerate(line):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit:
            return max(index, 1)
    return len(line)


def one_line(text: str | None, limit: int = 200) -> str:
    """A reason as one line of the notice (the full text stays in /history)."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
