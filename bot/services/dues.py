"""Party dues (党费): the recorder's monthly roster, members' "I have paid", reminders and the month close.

Every action re-checks the actor's role in the database. Nobody records their own dues; a
recorder's own dues are recorded by the secretary or deputy (as for any of a recorder's points).
A month is open until its close (the next month's notice moment); the close books each charged
member's status once (ledger reference ``dues:YYYY-MM``); after it a change is a correction:
a reversing row plus a new row under ``dues:YYYY-MM:rN``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.domain.dues import (
    PAID,
    DuesRecord,
    DuesReport,
    DuesStatus,
    ReportStatus,
    close_moment,
    dues_charge,
    last_day,
    month_of,
    months_between,
    paid_status,
    reminder_moments,
    report_month,
    shift_month,
)
from bot.domain.records import Branch, LedgerRow, Member, MemberStatus, NewLedgerRow, Source
from bot.domain.states import History, exempt_in
from bot.domain.text import REASON_MAX, clean_text
from bot.errors import AlreadyDone, InvalidInput, NotAuthorized, NotFound
from bot.services.branches import SCORERS, Actor, may_score, recipients, require_role, rulebook_of
from bot.services.calendar import calendar_of
from storage import branches as branch_repo
from storage import dues as dues_repo
from storage import ledger as ledger_repo
from storage import member_states as state_repo
from storage import members as member_repo
from storage.db import Connection, Database

KEEPERS = SCORERS  # who keeps the dues: the recorder, secretary and deputy (bot.services.branches.may_score)
FUTURE_MONTHS = 12  # a member may pay ahead; the recorder may mark up to a year ahead


@dataclass(frozen=True)
class RosterLine:
    member: Member
    record: DuesRecord | None
    report: DuesReport | None  # a waiting "I have paid"


@dataclass(frozen=True)
class DuesRoster:
    branch: Branch
    month: str
    closed: bool
    lines: list[RosterLine]
    first_month: str  # the first month the branch keeps dues for
    current_month: str

    def count(self, status: DuesStatus | None) -> int:
        return sum(1 for line in self.lines if (line.record.status if line.record else None) == status)


@dataclass(frozen=True)
class Marked:
    member: Member
    month: str
    record: DuesRecord | None  # None: cleared


@dataclass(frozen=True)
class Bulk:
    month: str
    marked: list[Member]
    skipped: list[Member]  # left for someone else: the keeper's own (and for a recorder, recorders')


@dataclass(frozen=True)
class Correction:
    member: Member
    month: str
    before: DuesRecord | None  # None: nothing was recorded (a month closed with no dues kept)
    after: DuesRecord
    reversed: LedgerRow | None
    booked: LedgerRow | None


@dataclass(frozen=True)
class MyMonth:
    month: str
    record: DuesRecord | None
    report: DuesReport | None
    closed: bool


@dataclass(frozen=True)
class MyDues:
    member: Member
    months: list[MyMonth]
    report_month: str | None  # what "I have paid" would be about (None: that month the member is exempt)
    exempt_month: str | None = None  # the month "I have paid" would be about, in which the member is exempt


@dataclass(frozen=True)
class ReportDecision:
    branch: Branch
    report: DuesReport
    member: Member
    decider: Member
    status: DuesStatus | None  # what a confirmation recorded


@dataclass(frozen=True)
class MonthClose:
    month: str
    already: bool
    untracked: bool = False  # nothing at all was recorded for the month: nobody is charged as unpaid
    counts: Counter = field(default_factory=Counter)
    booked: list[tuple[Member, DuesStatus, LedgerRow]] = field(default_factory=list)
    unpaid: list[Member] = field(default_factory=list)
    unconfirmed: list[Member] = field(default_factory=list)  # said "paid", nobody confirmed before the close


async def tracking_start(conn: Connection, branch: Branch, feature: str) -> date:
    """From when the branch keeps ``feature`` ("dues" or "migrants"): the feature's start for a branch
    older than it, else its first member's day (else the day it was set up), in the branch's timezone."""
    started, first_joined = await dues_repo.tracking_since(conn, branch.id, feature)
    if started:
        return datetime.fromisoformat(started).astimezone(ZoneInfo(branch.timezone)).date()
    if first_joined:
        return date.fromisoformat(first_joined)
    return branch.created_at.astimezone(ZoneInfo(branch.timezone)).date()


def charged_members(members: list[Member], month: str, histories: Mapping[int, History] | None = None) -> list[Member]:
    """Who owes dues for the month: approved members not exempt in that month (``histories``, from
    ``storage.member_states``: the month's state, bot.domain.states; None: the state now) who had joined
    by its last day."""
    end = last_day(month)
    if histories is None:
        return [m for m in members if m.scored and (m.joined_on is None or m.joined_on <= end)]
    return [m for m in members if m.status is MemberStatus.APPROVED and not exempt_in(histories, m.id, end.year, end.month)
            and (m.joined_on is None or m.joined_on <= end)]


class DuesService:
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock

    def today(self, branch: Branch) -> date:
        return self.clock.today(branch.timezone)

    async def _first_month(self, conn: Connection, branch: Branch) -> str:
        return month_of(await tracking_start(conn, branch, "dues"))

    # --- authority (the shared rule: bot.services.branches.may_score) ---------------------------

    async def _keeper(self, conn: Connection, branch: Branch, actor: Actor) -> Member:
        """The actor, if they keep dues at all (before anything else is looked at)."""
        return await require_role(conn, branch.id, actor.user_id, KEEPERS)

    async def _target(self, conn: Connection, branch: Branch, actor: Actor, member_id: int) -> Member:
        """A member whose dues this keeper may record: not their own; a recorder's only by the secretary or deputy.
        Whatever their state now: whether they owe the month is the month's state (``_exempt_in``)."""
        target = await member_repo.by_id(conn, member_id)
        if target is None or target.branch_id != branch.id or target.status is not MemberStatus.APPROVED:
            raise NotFound("member.not_found", reference=f"#{member_id}")
        await may_score(conn, branch.id, actor.user_id, target, KEEPERS)
        return target

    @staticmethod
    async def _exempt_in(conn: Connection, member: Member, month: str) -> bool:
        """Whether the member was exempt (不纳入积分管理) in the month, by its state then (bot.domain.states),
        as ``charged_members`` decides who owes it: exempt now but charged last month still owes last month."""
        end = last_day(month)
        return exempt_in(await state_repo.of_members(conn, [member.id]), member.id, end.year, end.month)

    async def _check_month(self, conn: Connection, branch: Branch, month: str, *, open_only: bool = True) -> bool:
        """The month is one the branch keeps dues for; refuses a closed one unless ``open_only`` is False."""
        first = await self._first_month(conn, branch)
        if month < first:
            raise InvalidInput("dues.before_tracking", month=month, first=first)
        if month > shift_month(month_of(self.today(branch)), FUTURE_MONTHS):
            raise InvalidInput("dues.too_far", month=month)
        closed = await dues_repo.is_closed(conn, branch.id, month)
        if closed and open_only:
            raise InvalidInput("dues.month_closed", month=month)
        return closed

    async def is_keeper(self, branch: Branch, actor: Actor) -> bool:
        async with self.db.read() as conn:
            member = await member_repo.by_user(conn, branch.id, actor.user_id)
            if member is None or member.status is not MemberStatus.APPROVED:
                return False
            return bool(await member_repo.roles_of(conn, member.id) & set(KEEPERS))

    # --- the recorder's roster -------------------------------------------------------------------

    async def default_month(self, branch: Branch) -> str:
        """Last month while it is still open (before its close), otherwise this month."""
        current = month_of(self.today(branch))
        previous = shift_month(current, -1)
        async with self.db.read() as conn:
            first = await self._first_month(conn, branch)
            if previous >= first and not await dues_repo.is_closed(conn, branch.id, previous):
                return previous
        return current

    async def roster(self, branch: Branch, actor: Actor, month: str | None = None) -> DuesRoster:
        month = month or await self.default_month(branch)
        async with self.db.read() as conn:
            await self._keeper(conn, branch, actor)
            closed = await self._check_month(conn, branch, month, open_only=False)
            members = await member_repo.listing(conn, branch.id)
            records = await dues_repo.statuses(conn, branch.id, month)
            reports = await dues_repo.pending_reports(conn, branch.id, month)
            first = await self._first_month(conn, branch)
            histories = await state_repo.of_branch(conn, branch.id)
        charged = {m.id for m in charged_members(members, month, histories)}
        owing = [m for m in members if m.id in charged or m.id in records]  # and whoever has something recorded
        lines = [RosterLine(m, records.get(m.id), reports.get(m.id)) for m in owing]
        return DuesRoster(branch=branch, month=month, closed=closed, lines=lines, first_month=first,
                          current_month=month_of(self.today(branch)))

    async def mark(self, branch: Branch, actor: Actor, member_id: int, month: str, status: DuesStatus | None,
                   amount: Decimal | None = None) -> Marked:
        """Set (or with None clear) a member's status for an open month; a repeat changes nothing."""
        async with self.db.transaction() as conn:
            keeper = await self._keeper(conn, branch, actor)
            target = await self._target(conn, branch, actor, member_id)
            await self._check_month(conn, branch, month)
            if status is not None and await self._exempt_in(conn, target, month):  # clearing a record stays possible
                raise InvalidInput("dues.exempt_month", name=target.name, month=month)
            if status is None:
                await dues_repo.clear_status(conn, branch_id=branch.id, member_id=target.id, month=month)
            elif not await dues_repo.set_status(conn, branch_id=branch.id, member_id=target.id, month=month,
                                                status=status.value, amount=amount, marked_by=keeper.id):
                raise InvalidInput("dues.month_closed", month=month)
            record = await dues_repo.status_of(conn, target.id, month)
        return Marked(member=target, month=month, record=record)

    async def mark_all_paid(self, branch: Branch, actor: Actor, month: str, except_ids: frozenset[int] = frozenset()) -> Bulk:
        """Everyone with nothing recorded yet, except those named, has paid on time."""
        async with self.db.transaction() as conn:
            keeper = await self._keeper(conn, branch, actor)
            await self._check_month(conn, branch, month)
            members = charged_members(await member_repo.listing(conn, branch.id), month,
                                      await state_repo.of_branch(conn, branch.id))
            records = await dues_repo.statuses(conn, branch.id, month)
            eligible, skipped = [], []
            for member in members:
                if member.id in records or member.id in except_ids:
                    continue
                try:
                    await may_score(conn, branch.id, actor.user_id, member, KEEPERS)
                except NotAuthorized:
                    skipped.append(member)
                else:
                    eligible.append(member)
            marked = await dues_repo.mark_unrecorded(conn, branch_id=branch.id, member_ids=[m.id for m in eligible],
                                                     month=month, status=DuesStatus.ON_TIME.value, marked_by=keeper.id)
        return Bulk(month=month, marked=[m for m in eligible if m.id in marked], skipped=skipped)

    async def correct(self, branch: Branch, actor: Actor, member_id: int, month: str, status: DuesStatus,
                      amount: Decimal | None, reason: str) -> Correction:
        """After the close: the new status, a reversing row for what the close booked, and the new charge."""
        reason = clean_text(reason)
        if not reason:
            raise InvalidInput("dues.correction_reason")
        if len(reason) > REASON_MAX:
            raise InvalidInput("text.too_long", limit=REASON_MAX)
        rulebook = rulebook_of(branch)
        async with self.db.transaction() as conn:
            keeper = await self._keeper(conn, branch, actor)
            target = await self._target(conn, branch, actor, member_id)
            if not await self._check_month(conn, branch, month, open_only=False):
                raise InvalidInput("dues.not_closed", month=month)
            before = await dues_repo.status_of(conn, target.id, month)
            if before is None:
                if await self._exempt_in(conn, target, month):
                    raise InvalidInput("dues.exempt_month", name=target.name, month=month)
                if target not in charged_members([target], month, await state_repo.of_members(conn, [target.id])):
                    raise InvalidInput("dues.not_charged", name=target.name, month=month)
                if not await dues_repo.insert_corrected(conn, branch_id=branch.id, member_id=target.id, month=month,
                                                        status=status.value, amount=amount, marked_by=keeper.id):
                    raise AlreadyDone("dues.correction_same", name=target.name, month=month)
                revision = 1
            else:
                new_amount = amount if amount is not None else before.amount
                if before.status is status and new_amount == before.amount:
                    raise AlreadyDone("dues.correction_same", name=target.name, month=month)
                if not await dues_repo.revise(conn, before.id, revision=before.revision, status=status.value,
                                              amount=new_amount, marked_by=keeper.id):
                    raise AlreadyDone("dues.correction_same", name=target.name, month=month)
                revision = before.revision + 1
            after = await dues_repo.status_of(conn, target.id, month)
            assert after is not None
            reversed_row = None
            if before is not None and before.ledger_id is not None:
                original = await ledger_repo.by_id(conn, before.ledger_id)
                assert original is not None
                # None when it had already been reversed (an objection upheld, …): nothing left to take back.
                reversed_row = await ledger_repo.reverse(conn, original, reference=f"rev:{original.id}",
                                                         actor_id=keeper.id, reason=reason)
            booked = None
            charge = dues_charge(rulebook, status)
            if charge is not None:
                booked = await ledger_repo.append(conn, NewLedgerRow(
                    branch_id=branch.id, member_id=target.id, item_code=charge.item_code, event_code=charge.event_code,
                    value=charge.value, occurred_on=last_day(month), source=Source.AUTOMATIC,
                    reference=f"dues:{month}:r{revision}", actor_id=keeper.id, reason=reason,
                ))
            await dues_repo.set_ledger(conn, after.id, booked.id if booked else None)
            after = await dues_repo.status_of(conn, target.id, month)
        assert after is not None
        return Correction(member=target, month=month, before=before, after=after, reversed=reversed_row, booked=booked)

    # --- a member's side -------------------------------------------------------------------------

    async def _member(self, conn: Connection, branch: Branch, actor: Actor) -> Member:
        member = await member_repo.by_user(conn, branch.id, actor.user_id)
        if member is None or member.status is not MemberStatus.APPROVED:
            raise NotAuthorized("auth.not_member")
        return member  # whatever the state now: each month is checked by its own state (``_exempt_in``)

    async def _report_month(self, conn: Connection, branch: Branch, member: Member) -> str:
        """Last month while it is open, unpaid and owed (not exempt then), else this month."""
        current = month_of(self.today(branch))
        previous = shift_month(current, -1)
        first = await self._first_month(conn, branch)
        previous_open = (previous >= first and not await dues_repo.is_closed(conn, branch.id, previous)
                         and not await self._exempt_in(conn, member, previous))
        settled = False
        if previous_open:
            record = await dues_repo.status_of(conn, member.id, previous)
            settled = (record is not None and record.status in PAID) or (
                await dues_repo.pending_report(conn, member.id, previous) is not None)
        return report_month(self.today(branch), previous_open, settled)

    async def mine(self, branch: Branch, actor: Actor) -> MyDues:
        async with self.db.read() as conn:
            member = await self._member(conn, branch, actor)
            current = month_of(self.today(branch))
            first = await self._first_month(conn, branch)
            months = []
            for month in (shift_month(current, -1), current):
                if month < first or await self._exempt_in(conn, member, month):  # an exempt month owes nothing
                    continue
                months.append(MyMonth(
                    month=month, record=await dues_repo.status_of(conn, member.id, month),
                    report=await dues_repo.pending_report(conn, member.id, month),
                    closed=await dues_repo.is_closed(conn, branch.id, month),
                ))
            if not months and not member.scored:  # exempt now, and last month too (or not kept then)
                raise InvalidInput("dues.exempt_self")
            target = await self._report_month(conn, branch, member)
            if await self._exempt_in(conn, member, target):  # exempt this month (charged last month): no button
                return MyDues(member=member, months=months, report_month=None, exempt_month=target)
        return MyDues(member=member, months=months, report_month=target)

    async def report_paid(self, branch: Branch, actor: Actor, *, month: str | None, amount: Decimal | None,
                          client_key: str) -> tuple[DuesReport, bool]:
        """A member says they have paid; the recorder confirms. A replay of the same press finds the same report."""
        async with self.db.transaction() as conn:
            member = await self._member(conn, branch, actor)
            if month is None:
                month = await self._report_month(conn, branch, member)
            else:
                await self._check_month(conn, branch, month)
                if month > month_of(self.today(branch)):
                    raise InvalidInput("dues.future_report", month=month)
            if await self._exempt_in(conn, member, month):
                raise InvalidInput("dues.exempt_month_self", month=month)
            report, created = await dues_repo.create_report(conn, branch_id=branch.id, member_id=member.id,
                                                            month=month, amount=amount, client_key=client_key,
                                                            created_at=self.clock.now().isoformat(timespec="seconds"))
            if report is None:
                raise AlreadyDone("dues.report_waiting", month=month)
            if created:
                record = await dues_repo.status_of(conn, member.id, month)
                if record is not None and record.status in PAID:
                    raise AlreadyDone("dues.already_paid", month=month)  # rolls the new report back
        return report, created

    async def report_deciders(self, report: DuesReport) -> list[Member]:
        """Recorders; for a recorder's own report, or with no recorder, the secretary and deputy."""
        async with self.db.read() as conn:
            member = await member_repo.by_id(conn, report.member_id)
            return await recipients(conn, report.branch_id, about=member)

    async def remember_report_message(self, report_id: int, chat_id: int, message_id: int) -> None:
        async with self.db.transaction() as conn:
            await dues_repo.add_report_message(conn, report_id, chat_id, message_id)

    async def report_messages(self, report_id: int) -> list[tuple[int, int]]:
        async with self.db.read() as conn:
            return await dues_repo.report_messages(conn, report_id)

    async def decide_report(self, report_id: int, actor: Actor, confirm: bool) -> ReportDecision:
        """Confirm (the month's status becomes paid: on time within the month, late after) or reject, once."""
        async with self.db.transaction() as conn:
            report = await dues_repo.report_by_id(conn, report_id)
            if report is None:
                raise NotFound("dues.report_not_found")
            branch = await branch_repo.by_id(conn, report.branch_id)
            assert branch is not None
            member = await member_repo.by_id(conn, report.member_id)
            assert member is not None
            keeper = await may_score(conn, branch.id, actor.user_id, member, KEEPERS)
            if report.status is not ReportStatus.PENDING:
                raise AlreadyDone("dues.report_decided")
            status = None
            if confirm:
                status = paid_status(report.month, report.created_at.astimezone(ZoneInfo(branch.timezone)).date())
                if not await dues_repo.set_status(conn, branch_id=branch.id, member_id=member.id, month=report.month,
                                                  status=status.value, amount=report.amount, marked_by=keeper.id):
                    raise InvalidInput("dues.month_closed", month=report.month)
            if not await dues_repo.decide_report(conn, report.id, "confirmed" if confirm else "rejected", keeper.id):
                raise AlreadyDone("dues.report_decided")
            decided = await dues_repo.report_by_id(conn, report.id)
        assert decided is not None
        return ReportDecision(branch=branch, report=decided, member=member, decider=keeper, status=status)

    # --- the calendar: reminders and the month close ---------------------------------------------

    # What is due is derived from the dues' own state, not from the effects table: the engine's claim
    # already makes each effect happen once, and a close that failed must stay listed so that the
    # engine can try it again (Due.retry). Only the months not closed yet are listed, so the list stays
    # short however long the branch has kept dues.

    async def close_due(self, branch: Branch, now: datetime) -> list[tuple[str, datetime]]:
        """(month, moment) of every ended month not yet closed: each closes at the next month's notice moment."""
        settings = calendar_of(branch)
        today = now.astimezone(ZoneInfo(branch.timezone)).date()
        async with self.db.read() as conn:
            first = await self._first_month(conn, branch)
            closed = await dues_repo.closed_months(conn, branch.id)
        return [(m, close_moment(m, settings, branch.timezone))
                for m in months_between(first, shift_month(month_of(today), -1)) if m not in closed]

    async def reminder_due(self, branch: Branch, now: datetime) -> list[tuple[str, str, datetime]]:
        """(month, "first" | "last", moment) for last month (until it closes) and this month; the engine
        runs each once and skips stale ones."""
        settings = calendar_of(branch)
        current = month_of(now.astimezone(ZoneInfo(branch.timezone)).date())
        async with self.db.read() as conn:
            first = await self._first_month(conn, branch)
            closed = await dues_repo.closed_months(conn, branch.id)
        return [(month, which, moment)
                for month in (shift_month(current, -1), current) if month >= first and month not in closed
                for which, moment in reminder_moments(month, settings, branch.timezone).items()]

    async def unpaid(self, branch: Branch, month: str) -> list[Member] | None:
        """Who to remind: charged members with no payment recorded and no "I have paid" waiting; None once closed."""
        async with self.db.read() as conn:
            if await dues_repo.is_closed(conn, branch.id, month):
                return None
            members = charged_members(await member_repo.listing(conn, branch.id), month,
                                      await state_repo.of_branch(conn, branch.id))
            records = await dues_repo.statuses(conn, branch.id, month)
            reports = await dues_repo.pending_reports(conn, branch.id, month)
        return [m for m in members
                if (m.id not in records or records[m.id].status is DuesStatus.UNPAID) and m.id not in reports]

    async def keepers_to_tell(self, branch: Branch) -> list[Member]:
        """Recorders, or the secretary and deputy when the branch has no recorder."""
        async with self.db.read() as conn:
            return await recipients(conn, branch.id)

    async def close_month(self, branch: Branch, month: str) -> MonthClose:
        """Fix every charged member's status (nothing recorded = unpaid) and book it once per member."""
        rulebook = rulebook_of(branch)
        end = last_day(month)
        async with self.db.transaction() as conn:
            if not await dues_repo.close(conn, branch.id, month):
                return MonthClose(month=month, already=True)
            members = charged_members(await member_repo.listing(conn, branch.id), month,
                                      await state_repo.of_branch(conn, branch.id))
            if not await dues_repo.statuses(conn, branch.id, month) and not await dues_repo.pending_reports(conn, branch.id, month):
                # A month where nobody recorded anything is a month the branch did not keep dues here,
                # not a month everyone failed to pay: charging them all as unpaid would be the bot's error.
                return MonthClose(month=month, already=False, untracked=True)
            await dues_repo.mark_unrecorded(conn, branch_id=branch.id, member_ids=[m.id for m in members], month=month,
                                            status=DuesStatus.UNPAID.value, marked_by=None, guard=False)
            records = await dues_repo.statuses(conn, branch.id, month)
            reports = await dues_repo.pending_reports(conn, branch.id, month)
            result = MonthClose(month=month, already=False)
            for member in members:
                record = records[member.id]
                result.counts[record.status] += 1
                if record.status is DuesStatus.UNPAID:
                    result.unpaid.append(member)
                if member.id in reports and record.status not in PAID:
                    result.unconfirmed.append(member)
                charge = dues_charge(rulebook, record.status)
                if charge is None:
                    continue
                row = await ledger_repo.append(conn, NewLedgerRow(
                    branch_id=branch.id, member_id=member.id, item_code=charge.item_code, event_code=charge.event_code,
                    value=charge.value, occurred_on=end, source=Source.AUTOMATIC, reference=f"dues:{month}", reason=month,
                ))
                if row is not None:
                    await dues_repo.set_ledger(conn, record.id, row.id)
                    result.booked.append((member, record.status, row))
        return result
