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
