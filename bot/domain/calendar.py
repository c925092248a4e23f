"""A branch's calendar settings and the arithmetic of its periods and moments.

Pure: times are computed from a branch's timezone; nothing here reads a clock.
"""

from __future__ import annotations

import calendar as _calendar
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from bot.domain.rulebook import Period


class CalendarSettings(BaseModel):
    """Per-branch schedule settings (stored as JSON on the branch; every field has its default)."""

    model_config = ConfigDict(extra="forbid")

    notice_day: int = Field(default=1, ge=1, le=31)  # a shorter month uses its last day
    notice_hour: int = Field(default=9, ge=0, le=23)
    objection_days: int = Field(default=7, ge=1, le=30)
    dues_reminder_day: int = Field(default=5, ge=1, le=31)
    dues_last_reminder_days_before_close: int = Field(default=3, ge=0, le=27)
    meeting_reminders_minutes: tuple[int, ...] = (24 * 60, 60)  # the day before and one hour before
    checkin_before_minutes: int = Field(default=30, ge=0, le=24 * 60)
    checkin_after_minutes: int = Field(default=30, ge=0, le=24 * 60)
    assessment_reminder_days: int = Field(default=2, ge=0, le=27)
    migrant_absences_count: bool = False  # migrant members' meeting absences are not deducted by default


def clamp_day(year: int, month: int, day: int) -> date:
    """The configured day, or the month's last day when the month is shorter (31 → 30 Apr, 28/29 Feb)."""
    return date(year, month, min(day, _calendar.monthrange(year, month)[1]))


def local_moment(day: date, hour: int, timezone: str, minute: int = 0) -> datetime:
    """A branch-local wall-clock time on ``day``, as an aware datetime in that timezone."""
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(timezone))


def month_start(year: int, month: int) -> date:
    return date(year, month, 1)


def add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def period_of_month(year: int, month: int, period: Period) -> tuple[str, date, date]:
    """(key, first day, last day) of the review period containing that month."""
    if period is Period.QUARTER:
        first_month = (month - 1) // 3 * 3 + 1
        last = add_months(year, first_month, 2)
        return f"{year}-Q{(month - 1) // 3 + 1}", date(year, first_month, 1), clamp_day(*last, 31)
    if period is Period.HALF:
        first_month = 1 if month <= 6 else 7
        return f"{year}-H{1 if month <= 6 else 2}", date(year, first_month, 1), clamp_day(year, first_month + 5, 31)
    if period is Period.YEAR:
        return f"{year}", date(year, 1, 1), date(year, 12, 31)
    return f"{year}-{month:02d}", date(year, month, 1), clamp_day(year, month, 31)


def previous_periods(today: date, period: Period, count: int) -> list[tuple[str, date, date]]:
    """The ``count`` review periods that ended most recently before ``today``, oldest first."""
    found: list[tuple[str, date, date]] = []
    year, month = today.year, today.month
    current_key = period_of_month(year, month, period)[0]
    while len(found) < count:
        year, month = add_months(year, month, -1)
        key, first, last = period_of_month(year, month, period)
        if key != current_key and (not found or found[0][0] != key):
            found.insert(0, (key, first, last))
    return found


def recordable_since(today: date, period: Period) -> date:
    """The first day a recorder may still date an entry: the start of the review period before the
    current one. The committee settles a period's deductions after it ends and before its notice
    (三门峡: 支委会每季度对积分情况进行一次审核……确定扣分事项和分值; 浠水: 每月主题党日前召开支委会，核实…);
    an entry for a period already published is listed as a correction in the next notice."""
    return previous_periods(today, period, 1)[0][1]


def notice_moment(period_last_day: date, settings: CalendarSettings, timezone: str) -> datetime:
    """When the notice for a period that ended on ``period_last_day`` is due (the next month's notice day)."""
    year, month = add_months(period_last_day.year, period_last_day.month, 1)
    return local_moment(clamp_day(year, month, settings.notice_day), settings.notice_hour, timezone)


def minutes(value: int) -> timedelta:
    return timedelta(minutes=value)
