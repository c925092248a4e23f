"""Migrant members (流动党员): the quarter's report of thought and work, its review, missing reports.

Each quarter every migrant member is asked privately; the report (text, optional photo) is reviewed
by the recorder like a declaration (accept / return with a reason; a returned report may be sent
again). A quarter is open until its close (the next quarter's first day, 09:00 local); a migrant
with no report sent or accepted by then is recorded as missing and listed for the recorder. The
rulebook decides whether that costs points (``migrant.missing_report``; no preset binds it today,
so a missing report is noted in the database and listed, and nothing is deducted).
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
from bot.domain.records import Branch, LedgerRow, Member, MemberState, MemberStatus, NewLedgerRow, Role, Source
from bot.domain.text import REASON_MAX, clean_text
from bot.errors import AlreadyDone, InvalidInput, NotAuthorized, NotFound
from bot.services.branches import MANAGERS, Actor, rulebook_of
from storage import branches as branch_repo
from storage import effects as effect_repo
from storage import ledger as ledger_repo
from storage import members as member_repo
from storage import migrants as migrant_repo
from storage.db import Connection, Database

REVIEWERS = (Role.RECORDER, Role.SECRETARY, Role.DEPUTY)


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


def _since_date(branch: Branch, since: tuple[str | None, str | None]) -> date:
    """From when the branch keeps this: the feature's start for an older branch, else its first member's day."""
    started, first_joined = since
    if started:
        return datetime.fromisoformat(started).astimezone(ZoneInfo(branch.timezone)).date()
    if first_joined:
        return date.fromisoformat(first_joined)
    return branch.created_at.astimezone(ZoneInfo(branch.timezone)).date()


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
        return quarter_of(_since_date(branch, await migrant_repo.tracking_since(conn, branch.id)))

    # --- the migrant's side ----------------------------------------------------------------------

    async def _reporter(self, conn: Connection, branch: Branch, actor: Actor) -> Member:
        member = await member_repo.by_user(conn, branch.id, actor.user_id)
        if member is None or member.status is not MemberStatus.APPROVED:
            raise NotAuthorized("auth.not_member")
        if member.state is not MemberState.MIGRANT:
            raise NotAuthorized("migrant.not_migrant")
        return member

    async def _open_quarter(self, conn: Connection, branch: Branch, member: Member) -> str:
        """This quarter; or last quarter while it is not closed yet and the member has not reported for it."""
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
            own_roles = await member_repo.roles_of(conn, report.member_id)
            recorders = await member_repo.holders(conn, report.branch_id, (Role.RECORDER,))
            managers = await member_repo.holders(conn, report.branch_id, MANAGERS)
        chosen = managers if Role.RECORDER in own_roles or not recorders else recorders
        return [m for m in chosen if m.id != report.member_id and m.user_id is not None]

    async def remember_message(self, report_id: int, chat_id: int, message_id: int) -> None:
        async with self.db.transaction() as conn:
            await migrant_repo.add_message(conn, report_id, chat_id, message_id)

    async def messages(self, report_id: int) -> list[tuple[int, int]]:
        async with self.db.read() as conn:
            return await migrant_repo.messages(conn, report_id)

    async def _check_reviewer(self, conn: Connection, report: MigrantReport, actor: Actor) -> Member:
        reviewer = await member_repo.by_user(conn, report.branch_id, actor.user_id)
        if reviewer is None or reviewer.status is not MemberStatus.APPROVED:
            raise NotAuthorized("migrant.not_reviewer")
        roles = await member_repo.roles_of(conn, reviewer.id)
        if not roles & set(REVIEWERS):
            raise NotAuthorized("migrant.not_reviewer")
        if reviewer.id == report.member_id:
            raise NotAuthorized("migrant.own")
        if Role.RECORDER in await member_repo.roles_of(conn, report.member_id) and not roles & set(MANAGERS):
            raise NotAuthorized("migrant.recorder_own")
        return reviewer

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
        assert reviewed is not None and branch is not None and member is not None
        return Review(branch=branch, report=reviewed, member=member, reviewer=reviewer)

    async def overview(self, branch: Branch, actor: Actor, quarter: str | None = None) -> Overview:
        """The quarter's migrants and their reports, for the recorder, secretary and deputy."""
        quarter = quarter or quarter_of(self.today(branch))
        async with self.db.read() as conn:
            me = await member_repo.by_user(conn, branch.id, actor.user_id)
            if me is None or me.status is not MemberStatus.APPROVED:
                raise NotAuthorized("auth.not_member")
            if not (await member_repo.roles_of(conn, me.id)) & set(REVIEWERS):
                raise NotAuthorized("auth.needs_role", roles="recorder, secretary, deputy")
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

    async def _context(self, branch: Branch, now: datetime, kind: str) -> tuple[str, str, set[str]]:
        today = now.astimezone(ZoneInfo(branch.timezone)).date()
        async with self.db.read() as conn:
            first = await self._first_quarter(conn, branch)
            done = await effect_repo.done_keys(conn, branch.id, kind)
        return first, quarter_of(today), done

    async def ask_due(self, branch: Branch, now: datetime, kind: str) -> list[tuple[str, datetime]]:
        """This quarter's ask (a bot that was down catches up on it; older quarters are not asked any more)."""
        first, current, done = await self._context(branch, now, kind)
        return [(current, ask_moment(current, branch.timezone))] if current >= first and current not in done else []

    async def remind_due(self, branch: Branch, now: datetime, kind: str) -> list[tuple[str, datetime]]:
        first, current, done = await self._context(branch, now, kind)
        return [(current, migrant_remind_moment(current, branch.timezone))] if current >= first and current not in done else []

    async def close_due(self, branch: Branch, now: datetime, kind: str) -> list[tuple[str, datetime]]:
        first, current, done = await self._context(branch, now, kind)
        previous = shift_quarter(current, -1)
        if previous < first:
            return []
        return [(q, migrant_close_moment(q, branch.timezone)) for q in quarters_between(first, previous) if q not in done]

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
        async with self.db.read() as conn:
            recorders = await member_repo.holders(conn, branch.id, (Role.RECORDER,))
            chosen = recorders or await member_repo.holders(conn, branch.id, MANAGERS)
        return [m for m in chosen if m.user_id is not None]

    async def close_quarter(self, branch: Branch, quarter: str) -> QuarterClose:
        """Record every migrant without a report sent or accepted as missing; book it where the rulebook says."""
        charge = missing_report_charge(rulebook_of(branch))
        _, last = quarter_bounds(quarter)
        async with self.db.transaction() as conn:
            if not await migrant_repo.close(conn, branch.id, quarter):
                return QuarterClose(quarter=quarter, already=True)
            result = QuarterClose(quarter=quarter, already=False, charge=charge)
            for member in _migrants(await member_repo.listing(conn, branch.id)):
                if await migrant_repo.live_of(conn, member.id, quarter) is not None:
                    continue
                await migrant_repo.record_missing(conn, branch.id, member.id, quarter)
                result.missing.append(member)
                if charge is None:
                    continue
                row = await ledger_repo.append(conn, NewLedgerRow(
                    branch_id=branch.id, member_id=member.id, item_code=charge.item_code, event_code=charge.event_code,
                    value=charge.value, occurred_on=last, source=Source.AUTOMATIC, reference=f"migrant:{quarter}",
                    reason=quarter,
                ))
                if row is not None:
                    await migrant_repo.set_missing_ledger(conn, member.id, quarter, row.id)
                    result.booked.append(row)
        return result
