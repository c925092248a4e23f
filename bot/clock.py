"""The time source, injectable so that tests and the demo control 'now'."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def today(self, timezone: str) -> date:
        """The branch-local date: a branch's timezone defines its periods."""
        return self.now().astimezone(ZoneInfo(timezone)).date()


class FixedClock(Clock):
    def __init__(self, moment: datetime):
        self.moment = moment

    def now(self) -> datetime:
        return self.moment

    def set(self, moment: datetime) -> None:
        self.moment = moment


class ShiftedClock(Clock):
    """The wall clock moved: it reads ``start`` at the wall-clock moment ``anchor`` (default: now) and runs
    at real speed from there. The bot process in an end-to-end test or a demo lives at a chosen moment
    (just before a month's notice, say) while its scheduler ticks on the real clock; two processes given
    the same start and anchor read the same time, as two servers do."""

    def __init__(self, start: datetime, anchor: datetime | None = None):
        if start.tzinfo is None or (anchor is not None and anchor.tzinfo is None):
            raise ValueError("the clock's start needs a timezone (e.g. 2026-03-31T23:59:00+08:00)")
        self.start = start.astimezone(UTC)
        self.offset = self.start - (anchor or datetime.now(UTC))

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset
