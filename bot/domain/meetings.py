"""Meetings (三会一课 and the monthly theme party day): kinds, attendance, and how attendance becomes
ledger rows under a branch's rulebook.

Pure: no Telegram, no SQL, no clock. Times are aware datetimes; "today" is passed in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from bot.domain.calendar import CalendarSettings, local_moment
from bot.domain.records import Member, MemberState, MemberStatus
from bot.domain.rulebook import Rulebook
from bot.domain.states import History, exempt_in

TOPIC_MAX = 200
HORIZON_DAYS = 366  # a meeting is scheduled at most this far ahead
NO_YEAR_LOOKBACK_DAYS = 30  # "3-25 14:30" means this year unless that is over a month ago: then next year


class MeetingKind(StrEnum):
    BRANCH_MEETING = "branch_meeting"  # 支部党员大会
    COMMITTEE = "committee"  # 支委会
    GROUP_MEETING = "group_meeting"  # 党小组会
    PARTY_LECTURE = "party_lecture"  # 党课
    THEME_DAY = "theme_day"  # 主题党日


class MeetingStatus(StrEnum):
    SCHEDULED = "scheduled"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class Attendance(StrEnum):
    PRESENT = "present"
    LATE = "late"
    EARLY = "early"  # left early
    LEAVE = "leave"  # excused leave (请假)
    ABSENT = "absent"  # absent without cause

    @property
    def short(self) -> str:
        """One letter for callback data."""
        return _SHORT[self]

    @classmethod
    def from_short(cls, letter: str) -> Attendance | None:
        return next((a for a, s in _SHORT.items() if s == letter), None)


_SHORT = {Attendance.PRESENT: "p", Attendance.LATE: "l", Attendance.EARLY: "e", Attendance.LEAVE: "v", Attendance.ABSENT: "a"}


class LeaveStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"  # the member said they would attend after all


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class Meeting(_Record):
    id: int
    branch_id: int
    kind: MeetingKind
    starts_at: datetime  # aware, UTC
    place: str
    topic: str
    status: MeetingStatus
    created_by: int | None
    created_at: datetime
    announce_chat_id: int | None = None
    announce_message_id: int | None = None
    closed_by: int | None = None
    closed_at: datetime | None = None

    def local_start(self, timezone: str) -> datetime:
        return self.starts_at.astimezone(ZoneInfo(timezone))

    def local_date(self, timezone: str) -> date:
        """The branch-local day of the meeting: the period its ledger rows belong to."""
        return self.local_start(timezone).date()

    def checkin_window(self, settings: CalendarSettings) -> tuple[datetime, datetime]:
        return (self.starts_at - timedelta(minutes=settings.checkin_before_minutes),
                self.starts_at + timedelta(minutes=settings.checkin_after_minutes))


class AttendanceRecord(_Record):
    """One member's answer, check-in and mark for one meeting."""

    meeting_id: int
    member_id: int
    attending: bool = False  # tapped "Attend"
    leave_reason: str | None = None
    leave_status: LeaveStatus | None = None
    leave_decided_by: int | None = None
    checked_in_at: datetime | None = None
    mark: Attendance | None = None  # the recorder's roll call; wins over everything else
    marked_by: int | None = None
    counted: bool = False  # on the meeting's roll, frozen when it closed
    state_at_close: str | None = None

    @property
    def answered(self) -> bool:
        return self.attending or self.leave_status in (LeaveStatus.PENDING, LeaveStatus.APPROVED, LeaveStatus.REFUSED)


def effective_status(record: AttendanceRecord | None) -> Attendance:
    """What a member's attendance comes to: the recorder's mark, else a check-in (present), else an
    approved leave, else absent (no check-in and no approved leave is an absence without cause;
    a refused or undecided leave is no excuse)."""
    if record is None:
        return Attendance.ABSENT
    if record.mark is not None:
        return record.mark
    if record.checked_in_at is not None:
        return Attendance.PRESENT
    if record.leave_status is LeaveStatus.APPROVED:
        return Attendance.LEAVE
    return Attendance.ABSENT


def expected(members: Iterable[Member], meeting_day: date, histories: Mapping[int, History] | None = None) -> list[Member]:
    """Who is on a meeting's roll: approved, not exempt in the meeting's month (``histories``: the month's
    state, bot.domain.states; None: the state now), and a member by the meeting's day."""
    return [
        m for m in members
        if m.status is MemberStatus.APPROVED
        and (m.state is not MemberState.EXEMPT if histories is None
             else not exempt_in(histories, m.id, meeting_day.year, meeting_day.month))
        and (m.joined_on is None or m.joined_on <= meeting_day)
    ]


# --- parsing what the secretary types ------------------------------------------------------------

_WHEN = re.compile(
    r"^\s*(?:(?P<year>\d{4})\s*[-./年]\s*)?(?P<month>\d{1,2})\s*[-./月]\s*(?P<day>\d{1,2})\s*[日号]?"
    r"\s*(?:[T,，]\s*)?"
    r"(?P<hour>\d{1,2})\s*(?:[:：]\s*(?P<minute>\d{2})|[点时]\s*(?:(?P<minute2>\d{1,2})\s*分?|(?P<half>半))?)\s*$"
)


def parse_when(text: str, today: date, timezone: str) -> datetime | None:
    """A branch-local date and time ("2026-03-25 14:30", "2026年3月25日 14:30", "3-25 9:00", "3月25日14点半")
    as an aware datetime in the branch's timezone; None when it is not a date and time we understand."""
    match = _WHEN.match(text or "")
    if match is None:
        return None
    hour = int(match["hour"])
    minute = 30 if match["half"] else int(match["minute"] or match["minute2"] or 0)
    try:
        year = int(match["year"]) if match["year"] else today.year
        day = date(year, int(match["month"]), int(match["day"]))
        if not match["year"] and day < today - timedelta(days=NO_YEAR_LOOKBACK_DAYS):
            day = date(year + 1, day.month, day.day)
        if not (0 <= hour <= 23 and 0 <= minute <= 59):
            return None
        return local_moment(day, hour, timezone, minute)
    except ValueError:  # 30 February, or 29 February in the next year
        return None


# --- attendance into ledger rows -----------------------------------------------------------------


@dataclass(frozen=True)
class Booking:
    """The ledger row a member's attendance calls for."""

    status: Attendance
    item_code: str
    event_code: str | None
    value: Decimal


@dataclass(frozen=True)
class BookedRow:
    """A row the meeting booked for a member (source "automatic"), as reconcile sees it."""

    id: int
    status: Attendance
    item_code: str
    event_code: str | None
    value: Decimal

    def books(self, wanted: Booking) -> bool:
        return (self.status is wanted.status and self.item_code == wanted.item_code
                and self.event_code == wanted.event_code and self.value == wanted.value)


def booking(rulebook: Rulebook, kind: MeetingKind, status: Attendance, *, migrant: bool,
            migrant_absences_count: bool) -> Booking | None:
    """What ``status`` at a meeting of ``kind`` costs under the rulebook, or None when it costs nothing.

    A migrant member's absence or leave costs nothing unless the branch counts migrants' absences."""
    if status is Attendance.PRESENT:
        return None
    if migrant and not migrant_absences_count and status in (Attendance.ABSENT, Attendance.LEAVE):
        return None
    charge = rulebook.automatic_charge(f"meeting.{status.value}", kind.value)
    if charge is None:
        return None
    item, event, value = charge
    return Booking(status=status, item_code=item.code, event_code=event.code if event else None, value=value)


def reconcile(live: Sequence[BookedRow], desired: Booking | None,
              settled: Sequence[BookedRow] = ()) -> tuple[list[BookedRow], Booking | None]:
    """(rows to reverse, row to add) so that exactly ``desired`` stays booked: a live row that already
    books it is kept; every other live row is reversed; nothing changes when nothing differs.

    ``settled`` are the meeting's rows that someone else took back (an upheld objection, a correction:
    a reversal that is not the meeting's own re-mark). What they booked was decided: while the member's
    status still calls for that same booking, it is not booked again."""
    keep = next((r for r in live if r.books(desired)), None) if desired is not None else None
    to_reverse = [r for r in live if r is not keep]
    # a withdrawn charge stays withdrawn even if the item's value has changed since (/rulebook): the
    # objection's decision was about the absence, not the amount
    withdrawn = desired is not None and any(r.status is desired.status and r.item_code == desired.item_code
                                            and r.event_code == desired.event_code for r in settled)
    to_add = desired if desired is not None and keep is None and not withdrawn else None
    return to_reverse, to_add


def by_default(record: AttendanceRecord | None) -> bool:
    """Absent only because nobody marked them: no mark, no check-in, no leave asked for (a withdrawn
    request does not count). These are the members "mark all unmarked present" marks."""
    if record is None:
        return True
    return (record.mark is None and record.checked_in_at is None
            and record.leave_status in (None, LeaveStatus.WITHDRAWN))


REFERENCE_PREFIX = "meeting"


def reference(meeting_id: int, status: Attendance, revision: int) -> str:
    """The ledger reference of a meeting's row: unique per (meeting, member, revision)."""
    return f"{REFERENCE_PREFIX}:{meeting_id}:{status.value}:{revision}"


def undo_reference(meeting_id: int, row_id: int) -> str:
    """The reference of the reversal a re-mark writes; any other reversal of a meeting's row (an
    objection, a correction) settles it."""
    return f"{REFERENCE_PREFIX}:{meeting_id}:undo:{row_id}"


def status_of_reference(ref: str) -> Attendance | None:
    parts = ref.split(":")
    if len(parts) != 4 or parts[0] != REFERENCE_PREFIX:
        return None
    try:
        return Attendance(parts[2])
    except ValueError:
        return None
