"""Party dues (党费) and migrant members' quarterly reports (流动党员): the pure rules.

No Telegram, no SQL, no clock: months and quarters are keys ("2026-03", "2026-Q1"), moments are
computed from a branch's calendar settings and timezone, and what a dues status or a missing report
costs comes from the branch's rulebook (``Rulebook.automatic_charge``). Month and quarter arithmetic is
``bot.domain.calendar``'s (``period_of_month``, ``add_months``, ``notice_moment``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from bot.domain.calendar import CalendarSettings, add_months, clamp_day, local_moment, notice_moment, period_of_month
from bot.domain.rulebook import Period, Rulebook

AMOUNT_MAX = Decimal("1000000")  # more than any member's monthly dues: a typo
REPORT_MAX = 3000  # characters of a quarterly report (the review card must stay under 4096)
ASK_HOUR = 9  # the quarter's ask goes out at 09:00 local on its first day
MIGRANT_REMIND_DAYS = 7  # the reminder: this many days before the quarter's last day, 09:00 local
MISSING_REPORT_EVENT = "migrant.missing_report"

_MONTH = re.compile(r"^\s*(\d{4})[-./年](\d{1,2})月?\s*$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")


class DuesStatus(StrEnum):
    ON_TIME = "on_time"  # paid on time and in full: costs nothing
    LATE = "late"
    SHORT = "short"  # paid, but not the full (standard) amount
    UNPAID = "unpaid"


# The automatic events a status is booked as, first binding wins ("short" is 浠水's "not at the standard").
STATUS_EVENTS: dict[DuesStatus, tuple[str, ...]] = {
    DuesStatus.ON_TIME: (),
    DuesStatus.LATE: ("dues.late",),
    DuesStatus.SHORT: ("dues.short", "dues.not_standard"),
    DuesStatus.UNPAID: ("dues.unpaid",),
}
PAID = (DuesStatus.ON_TIME, DuesStatus.LATE)  # nothing left to pay: no reminder, no report
STATUS_WORDS: dict[str, DuesStatus] = {
    "on_time": DuesStatus.ON_TIME, "ontime": DuesStatus.ON_TIME, "paid": DuesStatus.ON_TIME,
    "按时": DuesStatus.ON_TIME, "按时足额": DuesStatus.ON_TIME, "已缴": DuesStatus.ON_TIME, "已交": DuesStatus.ON_TIME,
    "late": DuesStatus.LATE, "逾期": DuesStatus.LATE, "迟交": DuesStatus.LATE, "不按时": DuesStatus.LATE,
    "short": DuesStatus.SHORT, "不足额": DuesStatus.SHORT, "不足": DuesStatus.SHORT, "未足额": DuesStatus.SHORT,
    "unpaid": DuesStatus.UNPAID, "未缴": DuesStatus.UNPAID, "未交": DuesStatus.UNPAID, "未缴纳": DuesStatus.UNPAID,
}
CLEAR_WORDS = ("clear", "清除")
STATUS_CODES: dict[str, DuesStatus | None] = {  # one letter each, for callback data
    "o": DuesStatus.ON_TIME, "l": DuesStatus.LATE, "s": DuesStatus.SHORT, "u": DuesStatus.UNPAID, "x": None,
}


def parse_status(word: str) -> DuesStatus | None:
    return STATUS_WORDS.get(word.strip().lower())


def status_code(status: DuesStatus | None) -> str:
    return next(code for code, value in STATUS_CODES.items() if value is status)


class ReportStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class MigrantReportStatus(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    RETURNED = "returned"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class DuesRecord(_Record):
    """A member's dues status for one month (a row of the dues table)."""

    id: int
    branch_id: int
    member_id: int
    month: str
    status: DuesStatus
    amount: Decimal | None
    marked_by: int | None  # None: set by the month close (nobody had recorded a payment)
    marked_at: datetime
    revision: int  # corrections after the close
    ledger_id: int | None  # the ledger row the close (or the last correction) wrote


class DuesReport(_Record):
    """A member's "I have paid", waiting for the recorder's confirmation."""

    id: int
    branch_id: int
    member_id: int
    month: str
    amount: Decimal | None
    status: ReportStatus
    decided_by: int | None
    decided_at: datetime | None
    created_at: datetime


class MigrantReport(_Record):
    """A migrant member's report of thought and work for a quarter."""

    id: int
    branch_id: int
    member_id: int
    quarter: str
    body: str
    photo_file_id: str | None
    status: MigrantReportStatus
    reviewed_by: int | None
    reviewed_at: datetime | None
    reason: str | None
    created_at: datetime


@dataclass(frozen=True)
class Charge:
    """What the rulebook books for an automatic event: one ledger row's item, event and value."""

    item_code: str
    event_code: str | None
    value: Decimal


# --- what things cost -------------------------------------------------------------------------


def charge_for(rulebook: Rulebook, event: str) -> Charge | None:
    found = rulebook.automatic_charge(event)
    if found is None:
        return None
    item, allotment_event, value = found
    return Charge(item.code, allotment_event.code if allotment_event else None, value)


def dues_charge(rulebook: Rulebook, status: DuesStatus) -> Charge | None:
    """What a month's dues status costs under this rulebook (None: nothing; "on time" never costs)."""
    for event in STATUS_EVENTS[status]:
        found = charge_for(rulebook, event)
        if found is not None:
            return found
    return None


def missing_report_charge(rulebook: Rulebook) -> Charge | None:
    return charge_for(rulebook, MISSING_REPORT_EVENT)


# --- input ------------------------------------------------------------------------------------


def parse_amount(text: str) -> Decimal | None:
    """An amount of money ("50", "50.5", "50元", "¥50"); None when it is not a positive sum of money."""
    cleaned = text.strip().removesuffix("元").lstrip("¥￥").replace(",", "").strip()
    if not cleaned or not re.fullmatch(r"[0-9０-９]+([.．][0-9０-９]{1,2})?", cleaned):
        return None
    try:
        value = Decimal(cleaned.replace("．", "."))
    except InvalidOperation:
        return None
    if not value.is_finite() or value <= 0 or value > AMOUNT_MAX:
        return None
    return value


def looks_like_amount(text: str) -> bool:
    """A token the user meant as an amount, valid or not ("50", "-5", "1e9", "50元"), but not a month
    and not words that start with a number ("3月28日已缴")."""
    return bool(re.fullmatch(r"[-+]?[¥￥]?[0-9０-９.,．eE+-]+元?", text.strip())) and not parse_month(text)


# --- months -----------------------------------------------------------------------------------


def month_of(day: date) -> str:
    return period_of_month(day.year, day.month, Period.MONTH)[0]


def parse_month(text: str) -> str | None:
    """"2026-03", "2026.3", "2026年3月" → "2026-03"; None if it is not a month."""
    match = _MONTH.match(text)
    if not match:
        return None
    year, month = int(match[1]), int(match[2])
    if not 1 <= month <= 12 or not 2000 <= year <= 2999:
        return None
    return period_of_month(year, month, Period.MONTH)[0]


def month_parts(key: str) -> tuple[int, int]:
    year, month = key.split("-")
    return int(year), int(month)


def shift_month(key: str, months: int) -> str:
    return period_of_month(*add_months(*month_parts(key), months), Period.MONTH)[0]


def first_day(key: str) -> date:
    return period_of_month(*month_parts(key), Period.MONTH)[1]


def last_day(key: str) -> date:
    return period_of_month(*month_parts(key), Period.MONTH)[2]


def compact(key: str) -> str:
    """"2026-03" → "202603" (callback data)."""
    return key.replace("-", "")


def expand(compact_key: str) -> str | None:
    if not re.fullmatch(r"\d{6}", compact_key):
        return None
    return parse_month(f"{compact_key[:4]}-{compact_key[4:]}")


def months_between(first: str, last: str) -> list[str]:
    """Month keys from ``first`` to ``last`` inclusive (empty if last < first)."""
    found, key = [], first
    while key <= last:
        found.append(key)
        key = shift_month(key, 1)
    return found


def close_moment(month: str, settings: CalendarSettings, timezone: str) -> datetime:
    """The month's dues close: the next month's notice day at notice hour, just before the notice."""
    return notice_moment(last_day(month), settings, timezone)


def first_reminder_moment(month: str, settings: CalendarSettings, timezone: str) -> datetime:
    year, number = month_parts(month)
    return local_moment(clamp_day(year, number, settings.dues_reminder_day), settings.notice_hour, timezone)


def last_reminder_moment(month: str, settings: CalendarSettings, timezone: str) -> datetime:
    return close_moment(month, settings, timezone) - timedelta(days=settings.dues_last_reminder_days_before_close)


def reminder_moments(month: str, settings: CalendarSettings, timezone: str) -> dict[str, datetime]:
    """{"first": …, "last": …}; the first is dropped when it would not come before the last."""
    first = first_reminder_moment(month, settings, timezone)
    last = last_reminder_moment(month, settings, timezone)
    return {"first": first, "last": last} if first < last else {"last": last}


def paid_status(month: str, paid_on: date) -> DuesStatus:
    """A payment made within the month is on time; after it, late."""
    return DuesStatus.ON_TIME if paid_on <= last_day(month) else DuesStatus.LATE


def report_month(today: date, previous_open: bool, previous_settled: bool) -> str:
    """Which month a member's "I have paid" is about: last month while it is still open and unpaid."""
    current = month_of(today)
    if previous_open and not previous_settled:
        return shift_month(current, -1)
    return current


# --- quarters ---------------------------------------------------------------------------------


def quarter_of(day: date) -> str:
    return period_of_month(day.year, day.month, Period.QUARTER)[0]


def is_quarter(key: str) -> bool:
    return bool(_QUARTER.match(key))


def quarter_bounds(key: str) -> tuple[date, date]:
    match = _QUARTER.match(key)
    if not match:
        raise ValueError(f"not a quarter: {key}")
    _, first, last = period_of_month(int(match[1]), (int(match[2]) - 1) * 3 + 1, Period.QUARTER)
    return first, last


def shift_quarter(key: str, quarters: int) -> str:
    first, _ = quarter_bounds(key)
    year, month = add_months(first.year, first.month, 3 * quarters)
    return quarter_of(date(year, month, 1))


def quarters_between(first: str, last: str) -> list[str]:
    found, key = [], first
    while quarter_bounds(key)[0] <= quarter_bounds(last)[0]:
        found.append(key)
        key = shift_quarter(key, 1)
    return found


def ask_moment(quarter: str, timezone: str) -> datetime:
    return local_moment(quarter_bounds(quarter)[0], ASK_HOUR, timezone)


def migrant_remind_moment(quarter: str, timezone: str) -> datetime:
    _, last = quarter_bounds(quarter)
    return local_moment(last - timedelta(days=MIGRANT_REMIND_DAYS), ASK_HOUR, timezone)


def migrant_close_moment(quarter: str, settings: CalendarSettings, timezone: str) -> datetime:
    """After the quarter: the branch's notice moment (its notice day and hour in the next month), as for
    the dues close, so the close is booked before the notice whatever the notice hour. With the default
    settings (the 1st, 09:00) that is the moment of the next quarter's ask, and the close runs first."""
    return notice_moment(quarter_bounds(quarter)[1], settings, timezone)
