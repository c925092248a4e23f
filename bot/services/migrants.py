"""Migrant members (流动党员): the quarter's report of thought and work, its review, missing reports.

Each quarter every migrant member is asked privately; the report (text, optional photo) is reviewed
by the recorder like a declaration (accept / return with a reason; a returned report may be sent
again). A quarter is open until its close (the branch's notice moment after it: by default the next
quarter's first day, 09:00 local); a migrant with no report sent or accepted by then is recorded as
missing and listed for the recorder. The rulebook decides whether that costs points
(``migrant.missing_report``): 三门峡 binds it (its migrants' quarterly report is "作为季度得分依据", seed 000
l.29) to ``missing_report``, −5 once per member and quarter; under the other presets a missing report is
noted in the database and listed, and nothing is deducted.

A report sent in time but returned after the close is not lost: the member may send it again for
that (closed) quarter — ``/report`` goes to it first, and the return message names the quarter and
the deadline — until the close of the quarter in which it was returned. A quarter whose returned
report has not been sent again by then is recorded as missing at that close (and booked like any
missing report). Who may review is the shared rule (``bot.services.branches.may_score``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.domain.dues import (
    REPORT_MAX,
    Charge,
    MigrantReport,
    MigrantReportStatus,
    ask_moment,
    migrant_close_moment,
    migrant_remind_moment,
    missing_report_charge,
    quarter_bounds,
    quarter_of,
    quarters_between,
    shift_quarter,
)
from bot.domain.records import Branch, LedgerRow, Member, MemberState, MemberStatus, NewLedgerRow, Source
from bot.domain.text import REASON_MAX, clean_text
from bot.errors import AlreadyDone, InvalidInput, NotAuthorized, NotFound
from bot.services.branches import SCORERS, Actor, may_score, recipients, require_role, rulebook_of
from bot.services.calendar import calendar_of
from bot.services.dues import tracking_start
from storage import branches as branch_repo
from storage import ledger as ledger_repo
from storage import members as member_repo
from storage import migrants as migrant_repo
from storage.db import Connection, Database

REVIEWERS = SCORERS
# The shared authority rule's refusals, in this feature's words.
_REVIEW_REFUSALS = {"auth.not_member": "migrant.not_reviewer", "auth.needs_role": "migrant.not_reviewer",
                    "decision.own": "migrant.own", "decision.recorder_own_points": "migrant.recorder_own"}


@dataclass(frozen=True)
class Submitted:
    report: MigrantReport
    created: bool
    member: Member


@dataclass(frozen=True)
class Review:
    branch: Branch
    report: MigrantReport
    member: Member
    reviewer: Member
    resend_until: datetime | None = None  # returned after its quarter closed: may be sent again until then


@dataclass(frozen=True)
class QuarterLine:
    member: Member
    report: MigrantReport | None  # the latest (live, or returned)
    missing: bool  # recorded missing at the close


@dataclass(frozen=True)
class Overview:
    quarter: str
    closed: bool
    lines: list[QuarterLine]


@dataclass(frozen=True)
class QuarterClose:
    quarter: str
    already: bool
    missing: list[Member] = field(default_factory=list)
    charge: Charge | None = None
    booked: list[LedgerRow] = field(default_factory=list)
    # Reports of earlier quarters returned after their close and not sent again in time: now missing.
    overdue: list[tuple[Member, str]] = field(default_factory=list)


def resend_deadline(branch: Branch, reviewed_at: datetime) -> datetime:
    """Until when a report returned (at ``reviewed_at``) after its quarter closed may be sent again: the
    close of the quarter it was returned in."""
    returned_in = quarter_of(reviewed_at.astimezone(ZoneInfo(branch.timezone)).date())
    return migrant_close_moment(returned_in, calendar_of(branch), branch.timezone)


def _migrants(members: list[Member]) -> list[Member]:
    return [m for m in members if m.status is MemberStatus.APPROVED and m.state is MemberState.MIGRANT]


def _already(live: MigrantReport, quarter: str) -> AlreadyDone:
    if live.status is MigrantReportStatus.ACCEPTED:
        return AlreadyDone("migrant.already_accepted", quarter=quarter)
    return AlreadyDone("migrant.already_submitted", quarter=quarter)


def check_body(text: str | None) -> str:
    body = clean_text(text)
    if not body:
        raise InvalidInput("text.empty")
    if len(body) > REPORT_MAX:
        raise InvalidInput("migrant.too_long", limit=REPORT_MAX, length=len(body))
    return body


class MigrantService:
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock

    def today(self, branch: Branch) -> date:
        return self.clock.today(branch.timezone)

    async def _first_quarter(self, conn: Connection, branch: Branch) -> str:
        return quarter_of(await tracking_start(conn, branch, "migrants"))

    # --- the migrant's side ----------------------------------------------------------------------

    async def _reporter(self, conn: Connection, branch: Branch, actor: Actor) -> Member:
        member = await member_repo.by_user(conn, branch.id, actor.user_id)
        if member is None or member.status is not MemberStatus.APPROVED:
            raise NotAuthorized("auth.not_member")
        if member.state is not MemberState.MIGRANT:
            raise NotAuthorized("migrant.not_migrant")
        return member

    async def _open_quarter(self, conn: Connection, branch: Branch, member: Member) -> str:
        """A closed quarter whose report was returned after the close (the oldest); else last quarter while
        it is not closed yet and the member has not reported for it; else this quarter."""
        returned = await migrant_repo.revisable(conn, branch.id, member.id)
        if returned:
            return returned[0].quarter
        current = quarter_of(self.today(branch))
        previous = shift_quarter(current, -1)
        if (previous >= await self._first_quarter(conn, branch)
                and not await migrant_repo.is_closed(conn, branch.id, previous)
                and await migrant_repo.live_of(conn, member.id, previous) is None):
            return previous
        return current

    async def start(self, branch: Branch, actor: Actor) -> tuple[Member, str]:
        """Who reports and for which quarter; refuses when that quarter's report is already in."""
        async with self.db.read() as conn:
            member = await self._reporter(conn, branch, actor)
            quarter = await self._open_quarter(conn, branch, member)
            live = await migrant_repo.live_of(conn, member.id, quarter)
        if live is not None:
            raise _already(live, quarter)
        return member, quarter

    @staticmethod
    def check_body(text: str | None) -> str:
        return check_body(text)

    async def submit(self, branch: Branch, actor: Actor, body: str, photo_file_id: str | None, client_key: str) -> Submitted:
        body = check_body(body)
        async with self.db.transaction() as conn:
            member = await self._reporter(conn, branch, actor)
            quarter = await self._open_quarter(conn, branch, member)
            report, created = await migrant_repo.create(conn, branch_id=branch.id, member_id=member.id, quarter=quarter,
                                                        body=body, photo_file_id=photo_file_id, client_key=client_key)
            if report is None:
                live = await migrant_repo.live_of(conn, member.id, quarter)
                if live is not None:
                    raise _already(live, quarter)
                raise InvalidInput("migrant.quarter_closed", quarter=quarter)
        return Submitted(report=report, created=created, member=member)

    # --- the recorder's side ---------------------------------------------------------------------

    async def reviewers(self, report: MigrantReport) -> list[Member]:
        """Recorders; for a recorder's own report, or with no recorder, the secretary and deputy."""
        async with self.db.read() as conn:
            member = await member_repo.by_id(conn, report.member_id)
            return await recipients(conn, report.branch_id, about=member)

    async def remember_message(self, report_id: int, chat_id: int, message_id: int) -> None:
        async with self.db.transaction() as conn:
            await migrant_repo.add_message(conn, report_id, chat_id, message_id)

    async def messages(self, report_id: int) -> list[tuple[int, int]]:
        async with self.db.read() as conn:
            return await migrant_repo.messages(conn, report_id)

    async def _check_reviewer(self, conn: Connection, report: MigrantReport, actor: Actor) -> Member:
        member = await member_repo.by_id(conn, report.member_id)
        assert member is not None
        try:
            return await may_score(conn, report.branch_id, actor.user_id, member, REVIEWERS)
        except NotAuthorized as refusal:
            raise NotAuthorized(_REVIEW_REFUSALS.get(refusal.key, refusal.key)) from None

    async def view(self, report_id: int, actor: Actor) -> tuple[Branch, MigrantReport, Member]:
        """A report for someone allowed to review it (before asking for a reason)."""
        async with self.db.read() as conn:
            report = await migrant_repo.by_id(conn, report_id)
            if report is None:
                raise NotFound("migrant.report_not_found")
            await self._check_reviewer(conn, report, actor)
            branch = await branch_repo.by_id(conn, report.branch_id)
            member = await member_repo.by_id(conn, report.member_id)
        assert branch is not None and member is not None
        if report.status is not MigrantReportStatus.SUBMITTED:
            raise AlreadyDone("migrant.already_reviewed")
        return branch, report, member

    async def review(self, report_id: int, actor: Actor, accept: bool, reason: str | None = None) -> Review:
        """Accept, or return with a reason (the member may send it again), exactly once."""
        reason = clean_text(reason) or None
        if not accept and not reason:
            raise InvalidInput("migrant.reason_required")
        if reason and len(reason) > REASON_MAX:
            raise InvalidInput("text.too_long", limit=REASON_MAX)
        async with self.db.transaction() as conn:
            report = await migrant_repo.by_id(conn, report_id)
            if report is None:
                raise NotFound("migrant.report_not_found")
            reviewer = await self._check_reviewer(conn, report, actor)
            status = MigrantReportStatus.ACCEPTED if accept else MigrantReportStatus.RETURNED
            if not await migrant_repo.review(conn, report.id, status=status.value, reviewed_by=reviewer.id,
                                             reason=None if accept else reason):
                raise AlreadyDone("migrant.already_reviewed")
            reviewed = await migrant_repo.by_id(conn, report.id)
            branch = await branch_repo.by_id(conn, report.branch_id)
            member = await member_repo.by_id(conn, report.member_id)
            closed = await migrant_repo.is_closed(conn, report.branch_id, report.quarter)
        assert reviewed is not None and branch is not None and member is not None
        resend_until = None
        if not accept and closed and reviewed.reviewed_at is not None:
            resend_until = resend_deadline(branch, reviewed.reviewed_at)
        return Review(branch=branch, report=reviewed, member=member, reviewer=reviewer, resend_until=resend_until)

    async def overview(self, branch: Branch, actor: Actor, quarter: str | None = None) -> Overview:
        """The quarter's migrants and their reports, for the recorder, secretary and deputy."""
        quarter = quarter or quarter_of(self.today(branch))
        async with self.db.read() as conn:
            await require_role(conn, branch.id, actor.user_id, REVIEWERS)
            migrants = _migrants(await member_repo.listing(conn, branch.id))
            latest = await migrant_repo.latest_by_member(conn, branch.id, quarter)
            missing = set(await migrant_repo.missing(conn, branch.id, quarter))
            closed = await migrant_repo.is_closed(conn, branch.id, quarter)
            for member_id in missing | latest.keys():  # someone no longer migrant who reported or was missing
                if all(m.id != member_id for m in migrants):
                    former = await member_repo.by_id(conn, member_id)
                    if former is not None:
                        migrants.append(former)
        return Overview(quarter=quarter, closed=closed,
                        lines=[QuarterLine(m, latest.get(m.id), m.id in missing) for m in migrants])

    # --- the calendar ----------------------------------------------------------------------------

    # What is due is derived from the quarters' own state, not from the effects table: the engine's claim
    # already makes each effect happen once, and a close that failed must stay listed so that the engine
    # can try it again (Due.retry). The ask and the reminder are one effect each for this quarter.

    async def _first_and_current(self, branch: Branch, now: datetime) -> tuple[str, str]:
        async with self.db.read() as conn:
            first = await self._first_quarter(conn, branch)
        return first, quarter_of(now.astimezone(ZoneInfo(branch.timezone)).date())

    async def ask_due(self, branch: Branch, now: datetime) -> list[tuple[str, datetime]]:
        """This quarter's ask (a bot that was down catches up on it; older quarters are not asked any more)."""
        first, current = await self._first_and_current(branch, now)
        return [(current, ask_moment(current, branch.timezone))] if current >= first else []

    async def remind_due(self, branch: Branch, now: datetime) -> list[tuple[str, datetime]]:
        first, current = await self._first_and_current(branch, now)
        return [(current, migrant_remind_moment(current, branch.timezone))] if current >= first else []

    async def close_due(self, branch: Branch, now: datetime) -> list[tuple[str, datetime]]:
        """(quarter, moment) of every ended quarter not closed yet, each at the notice moment after it."""
        first, current = await self._first_and_current(branch, now)
        previous = shift_quarter(current, -1)
        if previous < first:
            return []
        async with self.db.read() as conn:
            closed = await migrant_repo.closed_quarters(conn, branch.id)
        settings = calendar_of(branch)
        return [(q, migrant_close_moment(q, settings, branch.timezone))
                for q in quarters_between(first, previous) if q not in closed]

    async def without_report(self, branch: Branch, quarter: str) -> list[Member] | None:
        """Migrants with no report sent or accepted for the quarter; None once the quarter is closed."""
        async with self.db.read() as conn:
            if await migrant_repo.is_closed(conn, branch.id, quarter):
                return None
            found = []
            for member in _migrants(await member_repo.listing(conn, branch.id)):
                if await migrant_repo.live_of(conn, member.id, quarter) is None:
                    found.append(member)
        return found

    async def keepers_to_tell(self, branch: Branch) -> list[Member]:
        """Recorders, or the secretary and deputy when the branch has no recorder."""
        async with self.db.read() as conn:
            return await recipients(conn, branch.id)

    async def close_quarter(self, branch: Branch, quarter: str) -> QuarterClose:
        """Record every migrant without a report sent or accepted as missing; book it where the rulebook says.

        The same close records as missing the earlier quarters whose report was returned after their close,
        in this quarter or before, and has not been sent again (``resend_deadline``). One transaction:
        a close that failed leaves nothing behind and is tried again by the engine."""
        charge = missing_report_charge(rulebook_of(branch))
        async with self.db.transaction() as conn:
            if not await migrant_repo.close(conn, branch.id, quarter):
                return QuarterClose(quarter=quarter, already=True)
            result = QuarterClose(quarter=quarter, already=False, charge=charge)
            migrants = _migrants(await member_repo.listing(conn, branch.id))
            for member in migrants:
                if await migrant_repo.live_of(conn, member.id, quarter) is None:
                    await self._missing(conn, branch, member, quarter, charge, result)
                    result.missing.append(member)
            by_id = {m.id: m for m in migrants}
            for returned in await migrant_repo.revisable(conn, branch.id):
                member = by_id.get(returned.member_id)
                if member is None or returned.quarter >= quarter or returned.reviewed_at is None:
                    continue
                returned_in = quarter_of(returned.reviewed_at.astimezone(ZoneInfo(branch.timezone)).date())
                if returned_in <= quarter:  # its deadline was this close (or an earlier one)
                    await self._missing(conn, branch, member, returned.quarter, charge, result)
                    result.overdue.append((member, returned.quarter))
        return result

    @staticmethod
    async def _missing(conn: Connection, branch: Branch, member: Member, quarter: str, charge: Charge | None,
                       result: QuarterClose) -> None:
        """Record the member's report for ``quarter`` as missing and book it once (``migrant:YYYY-Qn``)."""
        await migrant_repo.record_missing(conn, branch.id, member.id, quarter)
        if charge is None:
            return
        row = await ledger_repo.append(conn, NewLedgerRow(
            branch_id=branch.id, member_id=member.id, item_code=charge.item_code, event_code=charge.event_code,
            value=charge.value, occurred_on=quarter_bounds(quarter)[1], source=Source.AUTOMATIC,
            reference=f"migrant:{quarter}", reason=quarter,
        ))
        if row is not None:
            await migrant_repo.set_missing_ledger(conn, member.id, quarter, row.id)
            result.booked.append(row)
