"""Meetings (三会一课, 主题党日): scheduling, answers and leave, check-in, the roll call, and closing,
which books attendance into the ledger under the branch's rulebook — once. After the close, a mark or a
leave decision that changes what a member's attendance comes to books the difference as it happens; a
deduction that an objection or a correction withdrew stays withdrawn."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.domain.meetings import (
    HORIZON_DAYS,
    TOPIC_MAX,
    Attendance,
    AttendanceRecord,
    BookedRow,
    Booking,
    LeaveStatus,
    Meeting,
    MeetingKind,
    MeetingStatus,
    booking,
    by_default,
    effective_status,
    expected,
    parse_when,
    reconcile,
    reference,
    status_of_reference,
    undo_reference,
)
from bot.domain.records import Branch, Member, MemberState, MemberStatus, NewLedgerRow, Role, Source
from bot.domain.text import PLACE_MAX, REASON_MAX, clean_text
from bot.errors import AlreadyDone, InvalidInput, NotAuthorized, NotFound
from bot.services.branches import MANAGERS, SCORERS, Actor, may_score, recipients, require_role, rulebook_of
from bot.services.calendar import calendar_of
from storage import branches as branch_repo
from storage import ledger as ledger_repo
from storage import meetings as meeting_repo
from storage import member_states as state_repo
from storage import members as member_repo
from storage.db import Connection, Database

ORGANISERS = MANAGERS  # schedule, cancel, decide leave
ROLL_KEEPERS = SCORERS  # roll call and close: the recorder, secretary and deputy (may_score's rule per member)
LEAVE_FALLBACK = (Role.RECORDER, Role.SUPERVISOR)  # decide leave where no secretary or deputy other than the requester can
RECENT_DAYS = 31  # closed meetings stay correctable from /meetings this long
OVERDUE_DAYS = 14  # scheduled meetings that started this long ago still show (waiting to be closed)


@dataclass(frozen=True)
class MeetingDraft:
    kind: MeetingKind
    starts_at: datetime  # aware
    place: str
    topic: str


@dataclass(frozen=True)
class Change:
    """What a close, a mark or a leave decision did to one member's ledger for the meeting."""

    member: Member
    old: Attendance | None  # the status booked before (None: nothing was booked)
    new: Attendance | None  # the status booked now (None: nothing is booked)
    delta: Decimal


@dataclass(frozen=True)
class RollEntry:
    member: Member
    record: AttendanceRecord | None
    status: Attendance


@dataclass(frozen=True)
class RollCall:
    meeting: Meeting
    branch: Branch
    entries: list[RollEntry]


@dataclass(frozen=True)
class CloseResult:
    meeting: Meeting
    branch: Branch
    already: bool  # it was closed before this press
    changes: list[Change]
    counts: dict[Attendance, int]


@dataclass(frozen=True)
class ClosePreview:
    """What closing now would book, shown before the roll keeper confirms."""

    meeting: Meeting
    branch: Branch
    closed: bool  # closed already: nothing to confirm
    counts: dict[Attendance, int]
    absent: list[Member]  # booked absent without cause, with a deduction
    value: Decimal | None  # what one such absence costs under the branch's rulebook


@dataclass(frozen=True)
class BulkMark:
    meeting: Meeting
    branch: Branch
    marked: list[Member]  # marked present now
    skipped: list[Member]  # left for someone else (the keeper's own attendance, the recorder's for a recorder)


@dataclass(frozen=True)
class Answer:
    meeting: Meeting
    branch: Branch
    member: Member
    changed: bool


@dataclass(frozen=True)
class LeaveDecision:
    meeting: Meeting
    branch: Branch
    member: Member
    decider: Member
    approved: bool
    reason: str
    change: Change | None
    tally_changed: bool  # the announcement's numbers moved (a refusal takes one off "on leave")


@dataclass(frozen=True)
class Cancellation:
    meeting: Meeting
    branch: Branch
    answered: list[Member]  # said they would attend or asked leave (pending or granted): to be told privately


@dataclass(frozen=True)
class Tally:
    attending: int
    leave: int
    checked_in: int

    @staticmethod
    def of(records: dict[int, AttendanceRecord]) -> Tally:
        return Tally(
            attending=sum(1 for r in records.values() if r.attending),
            leave=sum(1 for r in records.values() if r.leave_status in (LeaveStatus.PENDING, LeaveStatus.APPROVED)),
            checked_in=sum(1 for r in records.values() if r.checked_in_at is not None),
        )


@dataclass(frozen=True)
class Schedule:
    """What a member sees in /meetings."""

    member: Member
    roles: set[Role]
    scheduled: list[Meeting]
    closed: list[Meeting]
    mine: dict[int, AttendanceRecord] = field(default_factory=dict)


class MeetingService:
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock

    # --- what the secretary types ----------------------------------------------------------------

    @staticmethod
    def check_kind(code: str) -> MeetingKind:
        try:
            return MeetingKind(code)
        except ValueError:
            raise InvalidInput("meeting.unknown_kind") from None

    def parse_when(self, branch: Branch, text: str) -> datetime:
        moment = parse_when(text, self.clock.today(branch.timezone), branch.timezone)
        if moment is None:
            raise InvalidInput("meeting.bad_time")
        return self.check_when(branch, moment)

    def check_when(self, branch: Branch, moment: datetime) -> datetime:
        now = self.clock.now()
        if moment <= now:
            raise InvalidInput("meeting.in_past", when=moment.astimezone(_tz(branch)).strftime("%Y-%m-%d %H:%M"))
        if moment > now + timedelta(days=HORIZON_DAYS):
            raise InvalidInput("meeting.too_far", days=HORIZON_DAYS)
        return moment

    @staticmethod
    def check_place(text: str | None) -> str:
        return _bounded(text, PLACE_MAX)

    @staticmethod
    def check_topic(text: str | None) -> str:
        return _bounded(text, TOPIC_MAX)

    @staticmethod
    def check_reason(text: str | None) -> str:
        return _bounded(text, REASON_MAX)

    # --- scheduling --------------------------------------------------------------------------------

    async def organiser(self, branch: Branch, actor: Actor) -> Member:
        """The actor, if they may schedule meetings (the secretary or deputy)."""
        async with self.db.read() as conn:
            return await require_role(conn, branch.id, actor.user_id, ORGANISERS)

    async def schedule(self, branch: Branch, actor: Actor, draft: MeetingDraft, client_key: str) -> tuple[Meeting, bool]:
        """Store the meeting; a replayed confirmation finds the same one. Everything is checked again."""
        kind = self.check_kind(draft.kind)
        starts_at = self.check_when(branch, draft.starts_at)
        place, topic = self.check_place(draft.place), self.check_topic(draft.topic)
        async with self.db.transaction() as conn:
            organiser = await require_role(conn, branch.id, actor.user_id, ORGANISERS)
            return await meeting_repo.create(conn, branch_id=branch.id, kind=kind.value, starts_at=starts_at, place=place,
                                             topic=topic, created_by=organiser.id, client_key=client_key,
                                             created_at=self.clock.now())

    async def remember_announcement(self, meeting_id: int, chat_id: int, message_id: int) -> None:
        async with self.db.transaction() as conn:
            await meeting_repo.set_announcement(conn, meeting_id, chat_id, message_id)

    async def cancel(self, meeting_id: int, actor: Actor) -> Cancellation:
        """Cancel a meeting that has not started; once it has, its roll call decides (a stale button
        must not wipe the absences of a meeting that took place). Only the press whose conditional update
        cancels it gets the members who had answered (any other is refused), so they are told once."""
        async with self.db.transaction() as conn:
            meeting, branch = await _load(conn, meeting_id)
            canceller = await require_role(conn, branch.id, actor.user_id, ORGANISERS)
            if meeting.status is MeetingStatus.CLOSED:
                raise InvalidInput("meeting.closed")
            if meeting.status is MeetingStatus.SCHEDULED and self.clock.now() >= meeting.starts_at:
                raise InvalidInput("meeting.cancel_started", starts=_hhmm(meeting.starts_at, branch))
            if not await meeting_repo.cancel(conn, meeting.id):
                raise AlreadyDone("meeting.cancelled")
            cancelled = await meeting_repo.by_id(conn, meeting.id)
            records = await meeting_repo.records(conn, meeting.id)
            answered = {member_id for member_id, r in records.items()
                        if r.attending or r.leave_status in (LeaveStatus.PENDING, LeaveStatus.APPROVED)}
            answered.discard(canceller.id)  # who cancelled it knows
            members = [m for m in await member_repo.listing(conn, branch.id) if m.id in answered] if answered else []
        assert cancelled is not None
        return Cancellation(meeting=cancelled, branch=branch, answered=members)

    # --- reading -----------------------------------------------------------------------------------

    async def get(self, meeting_id: int) -> tuple[Meeting, Branch]:
        async with self.db.read() as conn:
            return await _load(conn, meeting_id)

    async def tally(self, meeting_id: int) -> Tally:
        async with self.db.read() as conn:
            return Tally.of(await meeting_repo.records(conn, meeting_id))

    async def upcoming(self, branch: Branch) -> list[Meeting]:
        """The branch's meetings still to come (what the group sees)."""
        async with self.db.read() as conn:
            return await meeting_repo.of_branch(conn, branch.id, statuses=(MeetingStatus.SCHEDULED.value,), since=self.clock.now())

    async def schedule_of(self, branch: Branch, actor: Actor) -> Schedule:
        """What a member sees: meetings to come or waiting to be closed, recent closed ones, their answers."""
        now = self.clock.now()
        async with self.db.read() as conn:
            me = await member_repo.by_user(conn, branch.id, actor.user_id)
            if me is None or me.status is not MemberStatus.APPROVED:
                raise NotAuthorized("meeting.not_member")
            roles = await member_repo.roles_of(conn, me.id)
            scheduled = await meeting_repo.of_branch(conn, branch.id, statuses=(MeetingStatus.SCHEDULED.value,),
                                                     since=now - timedelta(days=OVERDUE_DAYS), limit=20)
            closed = []
            if roles & set(ROLL_KEEPERS):
                closed = await meeting_repo.of_branch(conn, branch.id, statuses=(MeetingStatus.CLOSED.value,),
                                                      since=now - timedelta(days=RECENT_DAYS), limit=10)
            mine = {}
            for meeting in scheduled:
                record = await meeting_repo.record(conn, meeting.id, me.id)
                if record is not None:
                    mine[meeting.id] = record
        return Schedule(member=me, roles=roles, scheduled=scheduled, closed=closed, mine=mine)

    # --- a member's answer -------------------------------------------------------------------------

    async def attend(self, meeting_id: int, actor: Actor) -> Answer:
        async with self.db.transaction() as conn:
            meeting, branch = await _load(conn, meeting_id)
            member = await _participant(conn, branch, actor)
            _require_scheduled(meeting)
            if self.clock.now() >= meeting.starts_at:
                raise InvalidInput("meeting.already_started")
            changed = await meeting_repo.attend(conn, meeting.id, member.id)
        return Answer(meeting=meeting, branch=branch, member=member, changed=changed)

    async def leave_allowed(self, meeting_id: int, actor: Actor) -> Answer:
        """Whether the member may ask for leave now (checked before asking for the reason)."""
        async with self.db.read() as conn:
            meeting, branch = await _load(conn, meeting_id)
            member = await _participant(conn, branch, actor)
            _require_scheduled(meeting)
            _leave_open(await meeting_repo.record(conn, meeting.id, member.id))
            await _require_decider(conn, branch, member)
        return Answer(meeting=meeting, branch=branch, member=member, changed=False)

    async def request_leave(self, meeting_id: int, actor: Actor, reason: str | None) -> Answer:
        reason = self.check_reason(reason)
        async with self.db.transaction() as conn:
            meeting, branch = await _load(conn, meeting_id)
            member = await _participant(conn, branch, actor)
            _require_scheduled(meeting)
            _leave_open(await meeting_repo.record(conn, meeting.id, member.id))
            await _require_decider(conn, branch, member)
            if not await meeting_repo.request_leave(conn, meeting.id, member.id, reason):
                _leave_open(await meeting_repo.record(conn, meeting.id, member.id))
        return Answer(meeting=meeting, branch=branch, member=member, changed=True)

    async def leave_deciders(self, meeting: Meeting, member: Member) -> list[Member]:
        """Who is asked to decide the member's leave (see _leave_deciders)."""
        async with self.db.read() as conn:
            return (await _leave_deciders(conn, meeting.branch_id, member))[1]

    async def leave_request(self, meeting_id: int, member_id: int) -> tuple[Meeting, Branch, Member, AttendanceRecord]:
        async with self.db.read() as conn:
            meeting, branch = await _load(conn, meeting_id)
            member = await member_repo.by_id(conn, member_id)
            record = await meeting_repo.record(conn, meeting_id, member_id)
        if member is None or member.branch_id != branch.id or record is None or record.leave_status is None:
            raise NotFound("meeting.leave_not_found")
        return meeting, branch, member, record

    async def decide_leave(self, meeting_id: int, member_id: int, actor: Actor, approve: bool) -> LeaveDecision:
        """Approve or refuse a leave request, once; after the close the ledger follows the decision."""
        async with self.db.transaction() as conn:
            meeting, branch = await _load(conn, meeting_id)
            decider = await require_role(conn, branch.id, actor.user_id, ORGANISERS + LEAVE_FALLBACK)
            if decider.id == member_id:
                raise NotAuthorized("meeting.own_leave")
            member = await member_repo.by_id(conn, member_id)
            record = await meeting_repo.record(conn, meeting_id, member_id)
            if member is None or member.branch_id != branch.id or record is None or record.leave_status is None:
                raise NotFound("meeting.leave_not_found")
            roles, deciders = await _leave_deciders(conn, branch.id, member)
            if decider.id not in {d.id for d in deciders}:
                raise NotAuthorized("auth.needs_role", roles=", ".join(r.value for r in roles))
            if meeting.status is MeetingStatus.CANCELLED:
                raise InvalidInput("meeting.cancelled")
            before = await meeting_repo.records(conn, meeting.id)
            if not await meeting_repo.decide_leave(conn, meeting.id, member.id, approve, decider.id):
                raise AlreadyDone("meeting.leave_decided")
            after = await meeting_repo.records(conn, meeting.id)
            updated = after[member.id]
            change = None
            if (meeting.status is MeetingStatus.CLOSED and updated.counted
                    and effective_status(updated) is not effective_status(record)):
                change = await self._sync(conn, branch, meeting, member, updated, decider.id)
        return LeaveDecision(meeting=meeting, branch=branch, member=member, decider=decider, approved=approve,
                             reason=record.leave_reason or "", change=change,
                             tally_changed=Tally.of(before) != Tally.of(after))

    async def check_in(self, meeting_id: int, actor: Actor) -> Answer:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            meeting, branch = await _load(conn, meeting_id)
            member = await _participant(conn, branch, actor)
            _require_scheduled(meeting)
            opens, shuts = meeting.checkin_window(calendar_of(branch))
            if now < opens:
                raise InvalidInput("meeting.checkin_not_open", opens=_hhmm(opens, branch))
            if now > shuts:
                raise InvalidInput("meeting.checkin_over", until=_hhmm(shuts, branch))
            changed = await meeting_repo.check_in(conn, meeting.id, member.id, now)
        return Answer(meeting=meeting, branch=branch, member=member, changed=changed)

    # --- the roll call and the close -------------------------------------------------------------

    async def roll_call(self, meeting_id: int, actor: Actor) -> RollCall:
        async with self.db.read() as conn:
            meeting, branch = await _load(conn, meeting_id)
            await require_role(conn, branch.id, actor.user_id, ROLL_KEEPERS)
            self._roll_open(meeting, branch)
            entries = await self._entries(conn, meeting, branch)
        return RollCall(meeting=meeting, branch=branch, entries=entries)

    async def mark(self, meeting_id: int, member_id: int, status: Attendance, actor: Actor) -> tuple[bool, Change | None]:
        """The roll keeper marks one member (may_score: never themselves; a recorder's attendance only by
        the secretary or deputy). After the close the ledger follows at once, and only when the mark
        changed what the member's attendance comes to."""
        async with self.db.transaction() as conn:
            meeting, branch = await _load(conn, meeting_id)
            await require_role(conn, branch.id, actor.user_id, ROLL_KEEPERS)
            self._roll_open(meeting, branch)
            entry = next((e for e in await self._entries(conn, meeting, branch) if e.member.id == member_id), None)
            if entry is None:
                raise InvalidInput("meeting.not_on_roll")
            keeper = await may_score(conn, branch.id, actor.user_id, entry.member, roles=ROLL_KEEPERS)
            changed = await meeting_repo.set_mark(conn, meeting.id, entry.member.id, status, keeper.id)
            change = None
            if changed and meeting.status is MeetingStatus.CLOSED:
                record = await meeting_repo.record(conn, meeting.id, entry.member.id)
                assert record is not None
                if effective_status(record) is not entry.status:
                    change = await self._sync(conn, branch, meeting, entry.member, record, keeper.id)
        return changed, change

    async def mark_unmarked_present(self, meeting_id: int, actor: Actor) -> BulkMark:
        """Before the close: mark present everyone who would otherwise count as absent only because nobody
        marked them (no mark, no check-in, no leave asked). Members the keeper may not mark are left."""
        async with self.db.transaction() as conn:
            meeting, branch = await _load(conn, meeting_id)
            await require_role(conn, branch.id, actor.user_id, ROLL_KEEPERS)
            self._roll_open(meeting, branch)
            if meeting.status is MeetingStatus.CLOSED:
                raise InvalidInput("meeting.bulk_after_close")
            marked, skipped = [], []
            for entry in await self._entries(conn, meeting, branch):
                if not by_default(entry.record):
                    continue
                try:
                    keeper = await may_score(conn, branch.id, actor.user_id, entry.member, roles=ROLL_KEEPERS)
                except NotAuthorized:
                    skipped.append(entry.member)
                    continue
                if await meeting_repo.set_mark(conn, meeting.id, entry.member.id, Attendance.PRESENT, keeper.id):
                    marked.append(entry.member)
        return BulkMark(meeting=meeting, branch=branch, marked=marked, skipped=skipped)

    async def close_preview(self, meeting_id: int, actor: Actor) -> ClosePreview:
        """What closing now would book: the counts, and who would be booked absent without cause."""
        async with self.db.read() as conn:
            meeting, branch = await _load(conn, meeting_id)
            await require_role(conn, branch.id, actor.user_id, ROLL_KEEPERS)
            self._closable(meeting, branch)
            entries = await self._entries(conn, meeting, branch)
        closed = meeting.status is MeetingStatus.CLOSED
        absences = [] if closed else self._absences(branch, meeting, entries)
        return ClosePreview(meeting=meeting, branch=branch, closed=closed, counts=_counts(entries),
                            absent=[m for m, _ in absences], value=absences[0][1].value if absences else None)

    async def close(self, meeting_id: int, actor: Actor, expected_absent: int | None = None) -> CloseResult:
        """Freeze the roll and book everyone's attendance, once. ``expected_absent`` is the number of
        absences the keeper confirmed; if the roll has changed since, nothing is closed.

        A second close books nothing: after the first, every mark and leave decision that changes what a
        member's attendance comes to is booked as it happens (and a deduction an objection or a correction
        withdrew stays withdrawn)."""
        async with self.db.transaction() as conn:
            meeting, branch = await _load(conn, meeting_id)
            keeper = await require_role(conn, branch.id, actor.user_id, ROLL_KEEPERS)
            self._closable(meeting, branch)
            first = False
            if meeting.status is MeetingStatus.SCHEDULED:
                if expected_absent is not None:
                    now_absent = len(self._absences(branch, meeting, await self._entries(conn, meeting, branch)))
                    if now_absent != expected_absent:
                        raise InvalidInput("meeting.roll_changed", count=now_absent)
                first = await meeting_repo.close(conn, meeting.id, keeper.id)
            changes = []
            if first:
                day = meeting.local_date(branch.timezone)
                for member in expected(await member_repo.listing(conn, branch.id), day, await state_repo.of_branch(conn, branch.id)):
                    await meeting_repo.put_on_roll(conn, meeting.id, member.id, member.state.value)
            closed = await meeting_repo.by_id(conn, meeting.id)
            assert closed is not None
            entries = await self._entries(conn, closed, branch)
            if first:
                for entry in entries:
                    assert entry.record is not None
                    change = await self._sync(conn, branch, closed, entry.member, entry.record, keeper.id)
                    if change is not None:
                        changes.append(change)
        return CloseResult(meeting=closed, branch=branch, already=not first, changes=changes, counts=_counts(entries))

    def _closable(self, meeting: Meeting, branch: Branch) -> None:
        if meeting.status is MeetingStatus.CANCELLED:
            raise InvalidInput("meeting.cancelled")
        if self.clock.now() < meeting.starts_at:
            raise InvalidInput("meeting.not_started", starts=_hhmm(meeting.starts_at, branch))

    def _booking(self, branch: Branch, meeting: Meeting, status: Attendance, *, migrant: bool) -> Booking | None:
        return booking(rulebook_of(branch), meeting.kind, status, migrant=migrant,
                       migrant_absences_count=calendar_of(branch).migrant_absences_count)

    def _absences(self, branch: Branch, meeting: Meeting, entries: list[RollEntry]) -> list[tuple[Member, Booking]]:
        """The open roll's members who would be booked absent without cause, with what it costs each."""
        found = []
        for entry in entries:
            if entry.status is Attendance.ABSENT:
                cost = self._booking(branch, meeting, entry.status, migrant=entry.member.state is MemberState.MIGRANT)
                if cost is not None:
                    found.append((entry.member, cost))
        return found

    def _roll_open(self, meeting: Meeting, branch: Branch) -> None:
        if meeting.status is MeetingStatus.CANCELLED:
            raise InvalidInput("meeting.cancelled")
        opens, _ = meeting.checkin_window(calendar_of(branch))
        if meeting.status is MeetingStatus.SCHEDULED and self.clock.now() < opens:
            raise InvalidInput("meeting.roll_not_open", opens=_hhmm(opens, branch))

    async def _entries(self, conn: Connection, meeting: Meeting, branch: Branch) -> list[RollEntry]:
        """The roll: frozen at the close; before it, who is expected now."""
        records = await meeting_repo.records(conn, meeting.id)
        if meeting.status is MeetingStatus.CLOSED:
            members = [m for m in [await member_repo.by_id(conn, mid) for mid, r in records.items() if r.counted] if m]
        else:
            members = expected(await member_repo.listing(conn, branch.id), meeting.local_date(branch.timezone),
                               await state_repo.of_branch(conn, branch.id))
        members.sort(key=lambda m: m.id)
        return [RollEntry(member=m, record=records.get(m.id), status=effective_status(records.get(m.id))) for m in members]

    async def _sync(self, conn: Connection, branch: Branch, meeting: Meeting, member: Member,
                    record: AttendanceRecord, actor_id: int | None) -> Change | None:
        """Make the ledger book exactly what the member's attendance costs: reverse what no longer
        holds, add what is missing (source "automatic", a new revision), and nothing else.

        A row of this meeting that something other than a re-mark reversed (an upheld objection, a
        correction) is settled: it is not booked again while the status it booked still holds."""
        status = effective_status(record)
        desired = self._booking(branch, meeting, status, migrant=record.state_at_close == MemberState.MIGRANT.value)
        rows = await meeting_repo.booked_rows(conn, branch.id, meeting.id, member.id)
        reversed_ids = await ledger_repo.reversed_among(conn, [r.id for r in rows])
        live: list[BookedRow] = []
        settled: list[BookedRow] = []
        originals = {}
        for row in rows:
            booked_status = status_of_reference(row.reference)
            if booked_status is None:
                continue
            booked = BookedRow(id=row.id, status=booked_status, item_code=row.item_code, event_code=row.event_code,
                               value=row.value)
            if row.id not in reversed_ids:
                live.append(booked)
                originals[row.id] = row
                continue
            reversal = await ledger_repo.reversal_of(conn, row.id)
            if reversal is not None and reversal.reference != undo_reference(meeting.id, row.id):
                settled.append(booked)
        to_reverse, to_add = reconcile(live, desired, settled)
        if not to_reverse and to_add is None:
            return None
        day = meeting.local_date(branch.timezone)
        reason = meeting.topic[:REASON_MAX]
        delta = Decimal(0)
        for row in to_reverse:
            await ledger_repo.reverse(conn, originals[row.id], reference=undo_reference(meeting.id, row.id),
                                      actor_id=actor_id, reason=reason, source=Source.CORRECTION)
            delta -= row.value
        if to_add is not None:
            revision = await meeting_repo.revisions(conn, branch.id, meeting.id, member.id) + 1
            await ledger_repo.append(conn, NewLedgerRow(
                branch_id=branch.id, member_id=member.id, item_code=to_add.item_code, event_code=to_add.event_code,
                value=to_add.value, occurred_on=day, source=Source.AUTOMATIC,
                reference=reference(meeting.id, to_add.status, revision), actor_id=actor_id, reason=reason,
            ))
            delta += to_add.value
        old = to_reverse[0].status if to_reverse else None
        new = to_add.status if to_add is not None else (desired.status if desired is not None else None)
        return Change(member=member, old=old, new=new, delta=delta)

    # --- what the schedules need -------------------------------------------------------------------

    async def scheduled_around(self, branch: Branch, now: datetime, before: timedelta, after: timedelta) -> list[Meeting]:
        """Scheduled meetings starting between ``now - before`` and ``now + after``."""
        async with self.db.read() as conn:
            return await meeting_repo.of_branch(conn, branch.id, statuses=(MeetingStatus.SCHEDULED.value,),
                                                since=now - before, until=now + after, limit=200)

    async def not_answered(self, meeting: Meeting, branch: Branch) -> list[Member]:
        """Members expected at the meeting, reachable in Telegram, who have neither answered nor checked in."""
        async with self.db.read() as conn:
            records = await meeting_repo.records(conn, meeting.id)
            members = expected(await member_repo.listing(conn, branch.id), meeting.local_date(branch.timezone),
                               await state_repo.of_branch(conn, branch.id))
        return [
            m for m in members
            if m.user_id is not None and m.reachable
            and not (records.get(m.id) and (records[m.id].answered or records[m.id].checked_in_at is not None))
        ]

    async def roll_keepers(self, branch: Branch) -> list[Member]:
        """Who is nudged to take the roll: the recorders, or with none the secretary and deputy."""
        async with self.db.read() as conn:
            return await recipients(conn, branch.id, prefer=(Role.RECORDER,), fallback=MANAGERS)

    async def fresh(self, meeting_id: int) -> Meeting | None:
        async with self.db.read() as conn:
            return await meeting_repo.by_id(conn, meeting_id)

    async def branch_of(self, branch_id: int) -> Branch | None:
        async with self.db.read() as conn:
            return await branch_repo.by_id(conn, branch_id)


# --- helpers ---------------------------------------------------------------------------------------


def _tz(branch: Branch) -> ZoneInfo:
    return ZoneInfo(branch.timezone)


def _hhmm(moment: datetime, branch: Branch) -> str:
    return moment.astimezone(_tz(branch)).strftime("%m-%d %H:%M")


async def _load(conn: Connection, meeting_id: int) -> tuple[Meeting, Branch]:
    meeting = await meeting_repo.by_id(conn, meeting_id)
    if meeting is None:
        raise NotFound("meeting.not_found")
    branch = await branch_repo.by_id(conn, meeting.branch_id)
    assert branch is not None
    return meeting, branch


async def _participant(conn: Connection, branch: Branch, actor: Actor) -> Member:
    """The actor as a member expected at meetings (approved, not exempt)."""
    member = await member_repo.by_user(conn, branch.id, actor.user_id)
    if member is None or member.status is not MemberStatus.APPROVED:
        raise NotAuthorized("meeting.not_member")
    if member.state is MemberState.EXEMPT:
        raise NotAuthorized("meeting.exempt")
    return member


def _counts(entries: list[RollEntry]) -> dict[Attendance, int]:
    counts = {status: 0 for status in Attendance}
    for entry in entries:
        counts[entry.status] += 1
    return counts


async def _leave_deciders(conn: Connection, branch_id: int, requester: Member) -> tuple[tuple[Role, ...], list[Member]]:
    """Who decides ``requester``'s leave, and in which capacity: the secretary and deputy; where that leaves
    nobody else with Telegram (the secretary's own leave in a branch with no deputy), the recorder and
    supervisor. Never the requester."""
    for roles in (ORGANISERS, LEAVE_FALLBACK):
        found = await recipients(conn, branch_id, about=requester, prefer=roles, fallback=roles)
        if found:
            return roles, found
    return ORGANISERS, []


async def _require_decider(conn: Connection, branch: Branch, requester: Member) -> None:
    """A leave nobody else could decide is refused before the member types a reason."""
    if not (await _leave_deciders(conn, branch.id, requester))[1]:
        raise InvalidInput("meeting.no_leave_decider")


def _require_scheduled(meeting: Meeting) -> None:
    if meeting.status is MeetingStatus.CLOSED:
        raise InvalidInput("meeting.closed")
    if meeting.status is MeetingStatus.CANCELLED:
        raise InvalidInput("meeting.cancelled")


def _leave_open(record: AttendanceRecord | None) -> None:
    status = record.leave_status if record else None
    if status is LeaveStatus.PENDING:
        raise AlreadyDone("meeting.leave_pending")
    if status is LeaveStatus.APPROVED:
        raise AlreadyDone("meeting.leave_approved")
    if status is LeaveStatus.REFUSED:
        raise AlreadyDone("meeting.leave_refused")


def _bounded(text: str | None, limit: int) -> str:
    cleaned = clean_text(text)
    if not cleaned:
        raise InvalidInput("meeting.text_empty")
    if len(cleaned) > limit:
        raise InvalidInput("meeting.text_too_long", limit=limit, length=len(cleaned))
    return cleaned
