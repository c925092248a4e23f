"""The public notice of each review period (公示), objections (异议), appeals (申诉) and confirmations (签字确认).

Every authority check happens here against the database; callback data carries none. Every state
change is conditional (``WHERE status = ...``) or keyed (UNIQUE + ON CONFLICT DO NOTHING), so a
double tap or a redelivered update changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.domain.notice import (
    SCORE_TARGET,
    VERDICT_STATUS,
    ConfirmStatus,
    MemberSummary,
    Notice,
    NoticeMember,
    Objection,
    ObjectionKind,
    ObjectionSource,
    ObjectionStatus,
    OwedNotice,
    Verdict,
    entry_target,
    corrections,
    in_notice,
    months_of,
    objectable,
    owed_notices,
    periodic,
    public_target,
    summarise,
    window_closes,
)
from bot.domain.assessment import month_key
from bot.domain.records import Branch, LedgerRow, Member, MemberStatus, Role
from bot.domain.rulebook import Rulebook
from bot.domain.text import REASON_MAX, clean_text
from bot.domain.states import drop_months, exempt_months, scored
from bot.domain.town import months_of as stay_months
from bot.errors import AlreadyDone, InvalidInput, NotAuthorized, NotFound
from bot.i18n import Translator, format_points
from bot.services.branches import Actor, require_role, rulebook_of
from bot.services.calendar import calendar_of
from bot.services.posts import posts_by_month
from bot.services.transfers import chains_near_branch
from storage import assessment as assessment_repo
from storage import branches as branch_repo
from storage import ledger as ledger_repo
from storage import member_states as state_repo
from storage import members as member_repo
from storage import notices as notice_repo
from storage import town_review as town_repo
from storage import towns as towns_repo
from storage.db import Connection, Database

DECIDERS = (Role.SUPERVISOR, Role.SECRETARY, Role.DEPUTY)  # decide objections and disputes
WATCHERS = (Role.RECORDER, Role.SUPERVISOR, Role.SECRETARY, Role.DEPUTY)  # see who has not confirmed
APPEAL_RECEIVERS = (Role.SECRETARY, Role.DEPUTY)
SIGNERS = (Role.SECRETARY, Role.DEPUTY)  # sign the periodic notice off (支部书记签字确认, after the committee's check)
PUBLIC_RECORDERS = DECIDERS  # record an objection of the public (群众反映) on its behalf


@dataclass(frozen=True)
class NoticeView:
    branch: Branch
    rulebook: Rulebook
    notice: Notice
    lines: list[tuple[Member, MemberSummary]]
    rows: dict[int, LedgerRow]  # the period's rows by id (the published entries' reasons)
    defaulted: list[Member]  # given the default of an item nobody assessed in the period
    corrections: list[tuple[Member, LedgerRow]]  # rows of periods already published, written since the last notice
    created: bool  # False: recorded by an earlier run (then only what was not sent yet is sent)
    signer: Member | None = None  # who signed the notice off, if anyone has yet


@dataclass(frozen=True)
class EntryView:
    notice: Notice
    entry: LedgerRow
    member: Member  # whose points


@dataclass(frozen=True)
class ObjectionView:
    branch: Branch
    notice: Notice
    objection: Objection
    member: Member  # whose points
    objector: Member
    entry: LedgerRow | None = None  # None for a dispute of the score
    line: NoticeMember | None = None  # the member's line (disputes)
    decider: Member | None = None
    reversal: LedgerRow | None = None


@dataclass(frozen=True)
class Confirmation:
    branch: Branch
    notice: Notice
    member: Member
    line: NoticeMember
    dispute: Objection | None = None


@dataclass(frozen=True)
class SignOff:
    branch: Branch
    notice: Notice
    signer: Member  # who signed it (the presser, or whoever signed it before)
    now: bool  # False: it was signed already (a second press, another manager)


@dataclass(frozen=True)
class CloseSummary:
    branch: Branch
    notice: Notice
    objections: list[Objection] = field(default_factory=list)
    unconfirmed: int = 0  # neither confirmed nor disputed
    signer: Member | None = None  # the sign-off (None: not signed)
    recorders: dict[int, Member] = field(default_factory=dict)  # who recorded the public's objections, by member id

    @property
    def public(self) -> list[Objection]:
        return [o for o in self.objections if o.public]

    def count(self, kind: ObjectionKind, status: ObjectionStatus | None = None) -> int:
        return sum(1 for o in self.objections if o.kind is kind and (status is None or o.status is status))


def _reason(text: str | None) -> str:
    reason = clean_text(text)
    if not reason:
        raise InvalidInput("objection.reason_required")
    if len(reason) > REASON_MAX:
        raise InvalidInput("text.too_long", limit=REASON_MAX)
    return reason


async def _approved(conn: Connection, branch_id: int, user_id: int) -> Member:
    member = await member_repo.by_user(conn, branch_id, user_id)
    if member is None or member.status is not MemberStatus.APPROVED:
        raise NotAuthorized("auth.not_member")
    return member


class NoticeService:
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock

    def _now(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    # --- the notice -------------------------------------------------------------------------------

    async def owed(self, branch: Branch, now: datetime) -> list[OwedNotice]:
        """The periods whose notice the branch may owe at ``now`` (the engine runs each once)."""
        rulebook = rulebook_of(branch)
        zone = ZoneInfo(branch.timezone)
        async with self.db.read() as conn:
            first_join = await notice_repo.earliest_join(conn, branch.id)
        since = branch.created_at.astimezone(zone).date()
        if first_join is not None:
            since = min(since, first_join)
        return owed_notices(now.astimezone(zone).date(), rulebook.settings.review_period, since,
                            calendar_of(branch), branch.timezone)

    async def post(self, branch: Branch, key: str, first: date, last: date, due_at: datetime, late: bool) -> NoticeView:
        """The notice of the period with everything the group is shown, recorded once.

        What it publishes is fixed when it is first recorded: the ledger up to its last row then
        (``ledger_upto``) and the members listed then. Until it has reached the group (``notice.sent``),
        every call returns the same content, so that a retry sends only the messages still missing.
        """
        rulebook = rulebook_of(branch)
        now = self._now()
        async with self.db.transaction() as conn:
            notice = await notice_repo.create(
                conn, branch_id=branch.id, period_key=key, first_day=first, last_day=last, due_at=due_at,
                posted_at=now, closes_at=window_closes(now, calendar_of(branch)), late=late,
                ledger_upto=await notice_repo.last_ledger_id(conn, branch.id),
            )
            created = notice is not None
            listed: set[int] | None = None
            if notice is None:  # recorded by an earlier run (which may have failed to send it)
                notice = await notice_repo.by_period(conn, branch.id, key)
                assert notice is not None
                listed = {line.member_id for line in await notice_repo.member_lines(conn, notice.id)}
            upto = notice.ledger_upto if notice.ledger_upto is not None else await notice_repo.last_ledger_id(conn, branch.id)
            lines, rows = await self._lines(conn, branch, rulebook, first, last, upto, listed)
            corrections = await self._corrections(conn, branch, notice, upto)
            defaulted_ids: set[int] = set()
            for year, month in months_of(first, last):
                defaulted_ids.update(await assessment_repo.defaulted(conn, branch.id, month_key(year, month)))
            if created:
                published = [(e.id, s.member_id) for _, s in lines for e in s.entries]
                published += [(row.id, row.member_id) for _, row in corrections if objectable(row)]
                await notice_repo.add_entries(conn, notice.id, published)
                await notice_repo.add_members(conn, notice.id, [
                    (s.member_id, format_points(s.figure), str(s.year)) for _, s in lines])
            signer = await member_repo.by_id(conn, notice.signed_by) if notice.signed_by is not None else None
        return NoticeView(branch=branch, rulebook=rulebook, notice=notice, lines=lines, rows=rows,
                          defaulted=[m for m, _ in lines if m.id in defaulted_ids], corrections=corrections,
                          created=created, signer=signer)

    async def _lines(self, conn: Connection, branch: Branch, rulebook: Rulebook, first: date, last: date, upto: int,
                     listed: set[int] | None) -> tuple[list[tuple[Member, MemberSummary]], dict[int, LedgerRow]]:
        chains = await chains_near_branch(conn, branch.id)  # a member who left and came back: each stay's months
        # the months a member was exempt are cut out of their stays (bot.domain.states): listed when scored
        # in some month of the period, whatever their state now
        histories = await state_repo.of_branch(conn, branch.id)
        members = [m for m in await member_repo.listing(conn, branch.id)
                   if (m.id in listed if listed is not None
                       else any(in_notice(s.first, s.last, first, last) for s in scored(chains.own(m), histories)))]
        rows = await notice_repo.ledger_of_branch(conn, branch.id, date(last.year, 1, 1), last, upto)
        by_member: dict[int, list] = {}
        for row in rows:
            by_member.setdefault(row.member_id, []).append(row.entry())
        lines = []
        for member in members:
            posts = await posts_by_month(conn, rulebook, member.id, last.year, last)  # each month its own posts
            stays = chains.own(member)
            rows_of = drop_months(by_member.get(member.id, []), exempt_months(stays, histories, last.year, last))
            lines.append((member, summarise(rulebook, member.id, member.name, rows_of, first, last,
                                            member.joined_on, member.left_on, posts,
                                            months=stay_months(scored(stays, histories), last.year, last))))
        return lines, {row.id: row for row in rows}

    async def _corrections(self, conn: Connection, branch: Branch, notice: Notice, upto: int) -> list[tuple[Member, LedgerRow]]:
        """Rows dated in periods the previous notice covered, written after it was recorded (a meeting
        closed late, a dues correction, a late assessment): this notice publishes them."""
        previous = await notice_repo.previous(conn, branch.id, notice.id)
        if previous is None or previous.ledger_upto is None:
            return []
        written = await notice_repo.written_between(conn, branch.id, previous.ledger_upto, upto, previous.last_day)
        reversed_ids = await notice_repo.reversed_upto(conn, [r.id for r in written], upto)
        found = []
        for row in corrections(written, reversed_ids, rulebook_of(branch)):
            member = await member_repo.by_id(conn, row.member_id)
            if member is not None:
                found.append((member, row))
        return found

    async def part_sent(self, notice: Notice, parts: int) -> None:
        """``parts`` of the notice's messages have reached the group."""
        async with self.db.transaction() as conn:
            await notice_repo.part_sent(conn, notice.id, parts)

    async def start_window(self, branch: Branch, notice: Notice, late: bool = False) -> Notice:
        """Before the notice's first message is sent (again): its window ends objection_days from now —
        the end the first message states — and a first message sent ``late`` (after the notice's moment
        and its grace: the group could not be reached until now) says it is late. Once a message has
        reached the group both stay."""
        now = self._now()
        async with self.db.transaction() as conn:
            await notice_repo.set_closes(conn, notice.id, window_closes(now, calendar_of(branch)), notice.late or late)
            fresh = await notice_repo.by_id(conn, notice.id)
        assert fresh is not None
        return fresh

    async def mark_sent(self, notice: Notice) -> Notice:
        """The whole notice reached the group: objections and disputes are open from now (once)."""
        async with self.db.transaction() as conn:
            await notice_repo.mark_sent(conn, notice.id, self._now())
            sent = await notice_repo.by_id(conn, notice.id)
        assert sent is not None
        return sent

    async def to_ask(self, notice: Notice) -> list[tuple[Member, NoticeMember]]:
        """Members in the notice not yet asked to confirm, who have not answered and have a Telegram account."""
        return [(m, line) for m, line in await self.to_confirm(notice) if line.asked_at is None]

    async def asked(self, notice: Notice, member: Member, reached: bool) -> None:
        """The member was asked to confirm (once); one who could not be reached is marked so."""
        async with self.db.transaction() as conn:
            await notice_repo.mark_asked(conn, notice.id, member.id, self._now())
            if not reached:
                await member_repo.set_reachable(conn, member.id, False)

    async def notice(self, branch: Branch, key: str) -> Notice | None:
        async with self.db.read() as conn:
            return await notice_repo.by_period(conn, branch.id, key)

    async def recent(self, branch: Branch, limit: int = 3) -> list[Notice]:
        async with self.db.read() as conn:
            return await notice_repo.recent(conn, branch.id, limit)

    async def to_confirm(self, notice: Notice) -> list[tuple[Member, NoticeMember]]:
        """Members in the notice who have not answered yet and have a Telegram account."""
        async with self.db.read() as conn:
            lines = await notice_repo.member_lines(conn, notice.id)
            found = []
            for line in lines:
                member = await member_repo.by_id(conn, line.member_id)
                if (member is not None and member.user_id is not None and member.status is MemberStatus.APPROVED
                        and line.status is ConfirmStatus.PENDING):
                    found.append((member, line))
        return found

    async def close_summary(self, branch: Branch, key: str) -> CloseSummary | None:
        async with self.db.read() as conn:
            notice = await notice_repo.by_period(conn, branch.id, key)
            if notice is None:
                return None
            objections = await notice_repo.objections_of_notice(conn, notice.id)
            lines = await notice_repo.member_lines(conn, notice.id)
            signer = await member_repo.by_id(conn, notice.signed_by) if notice.signed_by is not None else None
            recorders = {}
            for o in objections:
                if o.public and (recorder := await member_repo.by_id(conn, o.objector_id)) is not None:
                    recorders[recorder.id] = recorder
        return CloseSummary(branch=branch, notice=notice, objections=objections,
                            unconfirmed=sum(1 for line in lines if line.status is ConfirmStatus.PENDING),
                            signer=signer, recorders=recorders)

    # --- the sign-off (支委会审核，支部书记签字确认) -------------------------------------------------------

    async def signer(self, notice: Notice) -> Member | None:
        """Who signed the notice off (None: nobody yet)."""
        if notice.signed_by is None:
            return None
        async with self.db.read() as conn:
            return await member_repo.by_id(conn, notice.signed_by)

    async def signers(self, branch: Branch) -> list[Member]:
        """Who is asked to sign the branch's notices off: its secretaries and deputies with an account."""
        async with self.db.read() as conn:
            return [m for m in await member_repo.holders(conn, branch.id, SIGNERS) if m.user_id is not None]

    async def sign(self, notice_id: int, actor: Actor) -> SignOff:
        """The secretary or a deputy of the notice's branch signs it off after checking it, once: a second
        press (theirs or another manager's) changes nothing and says who signed it and when."""
        async with self.db.transaction() as conn:
            notice = await notice_repo.by_id(conn, notice_id)
            if notice is None or not periodic(notice.period_key):
                raise NotFound("notice.not_found")
            branch = await branch_repo.by_id(conn, notice.branch_id)
            assert branch is not None
            me = await require_role(conn, branch.id, actor.user_id, SIGNERS)
            signed_now = await notice_repo.sign(conn, notice.id, me.id, self._now())
            notice = await notice_repo.by_id(conn, notice.id)
            assert notice is not None and notice.signed_by is not None
            signer = me if signed_now else await member_repo.by_id(conn, notice.signed_by)
            assert signer is not None
        return SignOff(branch=branch, notice=notice, signer=signer, now=signed_now)

    # --- confirmation (签字确认) -------------------------------------------------------------------

    async def _my_line(self, conn: Connection, notice_id: int, actor: Actor) -> tuple[Branch, Notice, Member, NoticeMember]:
        notice = await notice_repo.by_id(conn, notice_id)
        if notice is None:
            raise NotFound("notice.not_found")
        branch = await branch_repo.by_id(conn, notice.branch_id)
        assert branch is not None
        member = await _approved(conn, branch.id, actor.user_id)
        line = await notice_repo.member_line(conn, notice.id, member.id)
        if line is None:
            raise NotAuthorized("notice.not_listed")
        return branch, notice, member, line

    async def confirm(self, notice_id: int, actor: Actor) -> Confirmation:
        """The member signs their period score, once."""
        async with self.db.transaction() as conn:
            branch, notice, member, line = await self._my_line(conn, notice_id, actor)
            if not await notice_repo.answer(conn, notice.id, member.id, ConfirmStatus.CONFIRMED, self._now()):
                raise AlreadyDone(f"notice.already_{line.status.value}")
            line = await notice_repo.member_line(conn, notice.id, member.id)
        assert line is not None
        return Confirmation(branch=branch, notice=notice, member=member, line=line)

    async def check_dispute(self, notice_id: int, actor: Actor) -> Confirmation:
        """Whether the member may still dispute (before asking for a reason)."""
        async with self.db.read() as conn:
            branch, notice, member, line = await self._my_line(conn, notice_id, actor)
        self._dispute_allowed(branch, notice, line)
        return Confirmation(branch=branch, notice=notice, member=member, line=line)

    def _dispute_allowed(self, branch: Branch, notice: Notice, line: NoticeMember) -> None:
        if line.status is not ConfirmStatus.PENDING:
            raise AlreadyDone(f"notice.already_{line.status.value}")
        if not notice.open_at(self._now()):
            raise InvalidInput("notice.dispute_closed", closed=_local(notice.closes_at, branch))

    async def dispute(self, notice_id: int, actor: Actor, reason: str | None) -> ObjectionView:
        """The member disputes their period score with a reason: a record for the deciders, once."""
        async with self.db.transaction() as conn:
            branch, notice, member, line = await self._my_line(conn, notice_id, actor)
            self._dispute_allowed(branch, notice, line)
            text = _reason(reason)
            now = self._now()
            if not await notice_repo.answer(conn, notice.id, member.id, ConfirmStatus.DISPUTED, now):
                raise AlreadyDone("notice.already_disputed")
            objection = await notice_repo.add_objection(
                conn, branch_id=branch.id, notice_id=notice.id, kind=ObjectionKind.DISPUTE, ledger_id=None,
                member_id=member.id, objector_id=member.id, target=SCORE_TARGET, reason=text, at=now)
            if objection is None:
                raise AlreadyDone("notice.already_disputed")
            line = await notice_repo.member_line(conn, notice.id, member.id)
        return ObjectionView(branch=branch, notice=notice, objection=objection, member=member, objector=member, line=line)

    async def unconfirmed(self, branch: Branch, actor: Actor, key: str | None = None) -> tuple[Notice, list[tuple[Member, NoticeMember]]]:
        """Who has not confirmed the latest (or the named period's) notice: recorders, supervisors, secretaries."""
        async with self.db.read() as conn:
            await require_role(conn, branch.id, actor.user_id, WATCHERS)
            if key:
                notice = await notice_repo.by_period(conn, branch.id, key)
                if notice is None:
                    raise NotFound("notice.no_such_period", period=key)
            else:
                latest = await notice_repo.recent(conn, branch.id, 1)
                if not latest:
                    raise NotFound("notice.none_yet")
                notice = latest[0]
            waiting = []
            for line in await notice_repo.member_lines(conn, notice.id):
                if line.status is ConfirmStatus.CONFIRMED:
                    continue
                member = await member_repo.by_id(conn, line.member_id)
                if member is not None:
                    waiting.append((member, line))
        return notice, waiting

    # --- objections (异议) -------------------------------------------------------------------------

    async def objectable(self, branch: Branch, actor: Actor, public: bool = False) -> list[tuple[Notice, list[tuple[LedgerRow, Member]]]]:
        """The entries of the branch's notices whose objection window is open, with whose they are (``public``:
        for recording the public's objection, which only supervisors, secretaries and deputies do)."""
        async with self.db.read() as conn:
            if public:
                await require_role(conn, branch.id, actor.user_id, PUBLIC_RECORDERS)
            else:
                await _approved(conn, branch.id, actor.user_id)
            found = []
            for notice in await notice_repo.open_at(conn, branch.id, self._now()):
                entries = []
                for row in await notice_repo.entries(conn, notice.id):
                    member = await member_repo.by_id(conn, row.member_id)
                    if member is not None:
                        entries.append((row, member))
                found.append((notice, entries))
        return found

    async def _entry(self, conn: Connection, branch: Branch, ledger_id: int) -> EntryView:
        entry = await ledger_repo.by_id(conn, ledger_id)
        if entry is None or entry.branch_id != branch.id:
            raise NotFound("objection.entry_not_found", number=ledger_id)
        notice = await notice_repo.notice_of_entry(conn, branch.id, ledger_id)
        if notice is None or not notice.sent:  # an unsent notice is not published yet
            raise InvalidInput("objection.not_in_notice", number=ledger_id)
        if not notice.open_at(self._now()):
            raise InvalidInput("objection.window_closed", number=ledger_id, closed=_local(notice.closes_at, branch))
        if await ledger_repo.reversal_of(conn, ledger_id) is not None:
            raise InvalidInput("objection.entry_withdrawn", number=ledger_id)
        member = await member_repo.by_id(conn, entry.member_id)
        assert member is not None
        return EntryView(notice=notice, entry=entry, member=member)

    async def check_entry(self, branch: Branch, actor: Actor, ledger_id: int) -> EntryView:
        """Whether the actor may object to this entry now (before asking for a reason)."""
        async with self.db.read() as conn:
            me = await _approved(conn, branch.id, actor.user_id)
            view = await self._entry(conn, branch, ledger_id)
            await self._not_yet(conn, view.notice, me, ledger_id)
        return view

    async def _not_yet(self, conn: Connection, notice: Notice, me: Member, ledger_id: int) -> None:
        existing = await notice_repo.objection_by_target(conn, notice.id, me.id, entry_target(ledger_id))
        if existing is not None:
            raise AlreadyDone("objection.already_objected", number=existing.id, entry=ledger_id)

    async def object(self, branch: Branch, actor: Actor, ledger_id: int, reason: str | None) -> ObjectionView:
        """Object to one entry of an open notice, privately, with a reason; once per person and entry."""
        async with self.db.transaction() as conn:
            me = await _approved(conn, branch.id, actor.user_id)
            view = await self._entry(conn, branch, ledger_id)
            await self._not_yet(conn, view.notice, me, ledger_id)
            text = _reason(reason)
            objection = await notice_repo.add_objection(
                conn, branch_id=branch.id, notice_id=view.notice.id, kind=ObjectionKind.OBJECTION, ledger_id=ledger_id,
                member_id=view.member.id, objector_id=me.id, target=entry_target(ledger_id), reason=text, at=self._now())
            if objection is None:  # a concurrent twin got there first
                raise AlreadyDone("objection.already_objected", number=0, entry=ledger_id)
        return ObjectionView(branch=branch, notice=view.notice, objection=objection, member=view.member,
                             objector=me, entry=view.entry)

    async def _not_yet_public(self, conn: Connection, notice: Notice, me: Member, ledger_id: int) -> None:
        existing = await notice_repo.objection_by_target(conn, notice.id, me.id, public_target(ledger_id))
        if existing is not None:
            raise AlreadyDone("objection.public.already", number=existing.id, entry=ledger_id)

    async def check_public(self, branch: Branch, actor: Actor, ledger_id: int) -> EntryView:
        """Whether the actor may record the public's objection to this entry now (before asking for it)."""
        async with self.db.read() as conn:
            me = await require_role(conn, branch.id, actor.user_id, PUBLIC_RECORDERS)
            view = await self._entry(conn, branch, ledger_id)
            await self._not_yet_public(conn, view.notice, me, ledger_id)
        return view

    async def object_public(self, branch: Branch, actor: Actor, ledger_id: int, reason: str | None) -> ObjectionView:
        """A supervisor, secretary or deputy records an objection the public (群众) raised about one entry of an
        open notice (seed 000: 群众反映); decided as members' objections are, by the other deciders. Once per
        recorder and entry (the recorder may still object in their own name)."""
        async with self.db.transaction() as conn:
            me = await require_role(conn, branch.id, actor.user_id, PUBLIC_RECORDERS)
            view = await self._entry(conn, branch, ledger_id)
            await self._not_yet_public(conn, view.notice, me, ledger_id)
            text = _reason(reason)
            objection = await notice_repo.add_objection(
                conn, branch_id=branch.id, notice_id=view.notice.id, kind=ObjectionKind.OBJECTION, ledger_id=ledger_id,
                member_id=view.member.id, objector_id=me.id, target=public_target(ledger_id), reason=text,
                at=self._now(), source=ObjectionSource.PUBLIC)
            if objection is None:  # a concurrent twin got there first
                raise AlreadyDone("objection.public.already", number=0, entry=ledger_id)
        return ObjectionView(branch=branch, notice=view.notice, objection=objection, member=view.member,
                             objector=me, entry=view.entry)

    async def _view(self, conn: Connection, objection: Objection, decider: Member | None = None) -> ObjectionView:
        branch = await branch_repo.by_id(conn, objection.branch_id)
        notice = await notice_repo.by_id(conn, objection.notice_id)
        member = await member_repo.by_id(conn, objection.member_id)
        objector = await member_repo.by_id(conn, objection.objector_id)
        assert branch is not None and notice is not None and member is not None and objector is not None
        entry = await ledger_repo.by_id(conn, objection.ledger_id) if objection.ledger_id is not None else None
        reversal = await ledger_repo.by_id(conn, objection.reversal_id) if objection.reversal_id is not None else None
        line = await notice_repo.member_line(conn, notice.id, member.id)
        return ObjectionView(branch=branch, notice=notice, objection=objection, member=member, objector=objector,
                             entry=entry, line=line, decider=decider, reversal=reversal)

    async def pending(self, branch: Branch, actor: Actor) -> list[ObjectionView]:
        """Open objections and disputes of the branch for a decider, except those concerning them."""
        async with self.db.read() as conn:
            me = await require_role(conn, branch.id, actor.user_id, DECIDERS)
            return [await self._view(conn, o) for o in await notice_repo.open_objections(conn, branch.id)
                    if me.id not in (o.member_id, o.objector_id)]

    async def deciders(self, view: ObjectionView) -> list[Member]:
        """Who gets the objection: supervisors, secretary and deputies, except whoever it concerns."""
        async with self.db.read() as conn:
            holders = await member_repo.holders(conn, view.branch.id, DECIDERS)
        concerned = {view.objection.member_id, view.objection.objector_id}
        return [m for m in holders if m.user_id is not None and m.id not in concerned]

    async def decide(self, objection_id: int, actor: Actor, verdict: Verdict) -> ObjectionView:
        """Uphold the entry, or withdraw its points by a reversing row, in one transaction; once."""
        async with self.db.transaction() as conn:
            objection = await notice_repo.objection(conn, objection_id)
            if objection is None:
                raise NotFound("objection.not_found", number=objection_id)
            decider = await require_role(conn, objection.branch_id, actor.user_id, DECIDERS)
            if decider.id in (objection.member_id, objection.objector_id):
                raise NotAuthorized("objection.own")
            allowed = (Verdict.UPHOLD, Verdict.WITHDRAW) if objection.kind is ObjectionKind.OBJECTION else (Verdict.UPHOLD, Verdict.RESOLVE)
            if verdict not in allowed:
                raise InvalidInput("objection.bad_verdict")
            if objection.status is not ObjectionStatus.OPEN:
                raise AlreadyDone(f"objection.already_{objection.status.value}", number=objection.id)
            now = self._now()
            if not await notice_repo.decide(conn, objection.id, VERDICT_STATUS[verdict], decider.id, now):
                raise AlreadyDone("objection.already_decided", number=objection.id)
            if verdict is Verdict.WITHDRAW:
                assert objection.ledger_id is not None
                entry = await ledger_repo.by_id(conn, objection.ledger_id)
                assert entry is not None
                branch = await branch_repo.by_id(conn, objection.branch_id)
                assert branch is not None
                # stored and shown to members later (/history, /points): the branch's language, as the
                # monthly assessment's and the town's correction reasons are
                note = Translator(branch.language).plain("objection.correction_note", number=objection.id,
                                                         reason=objection.reason)
                reversal = await ledger_repo.reverse(
                    conn, entry, reference=f"obj:{objection.id}", actor_id=decider.id, reason=note[:REASON_MAX])
                if reversal is None:  # withdrawn already (another objection, a correction): that row stands
                    reversal = await ledger_repo.reversal_of(conn, entry.id)
                if reversal is not None:
                    await notice_repo.set_reversal(conn, objection.id, reversal.id)
            decided = await notice_repo.objection(conn, objection.id)
            assert decided is not None
            return await self._view(conn, decided, decider)

    async def appeal(self, branch: Branch, actor: Actor, objection_id: int, reason: str | None) -> ObjectionView:
        """The objector or the member concerned appeals a decision upward (申诉): a flag and a record, once;
        where the branch belongs to a town, also the town's appeal record (in the same transaction)."""
        async with self.db.transaction() as conn:
            me = await _approved(conn, branch.id, actor.user_id)
            objection = await notice_repo.objection(conn, objection_id)
            if objection is None or objection.branch_id != branch.id:
                raise NotFound("objection.not_found", number=objection_id)
            if me.id not in (objection.objector_id, objection.member_id):
                raise NotAuthorized("objection.appeal_not_yours")
            if objection.status is ObjectionStatus.OPEN:
                raise InvalidInput("objection.appeal_undecided", number=objection.id)
            if objection.appealed_at is not None:
                raise AlreadyDone("objection.appeal_already", number=objection.id)
            text = _reason(reason)
            now = self._now()
            if not await notice_repo.appeal(conn, objection.id, me.id, text, now):
                raise AlreadyDone("objection.appeal_already", number=objection.id)
            town = await towns_repo.town_of_branch(conn, branch.id)
            if town is not None:  # the appeal reaches the town, which decides it (services.town_review)
                await town_repo.add_appeal(conn, objection_id=objection.id, branch_id=branch.id, town_id=town.id,
                                           appellant_id=me.id, reason=text, at=now)
            appealed = await notice_repo.objection(conn, objection.id)
            assert appealed is not None
            return await self._view(conn, appealed)

    async def appeal_receivers(self, branch: Branch) -> list[Member]:
        async with self.db.read() as conn:
            return [m for m in await member_repo.holders(conn, branch.id, APPEAL_RECEIVERS) if m.user_id is not None]

    async def remember_message(self, objection_id: int, chat_id: int, message_id: int) -> None:
        async with self.db.transaction() as conn:
            await notice_repo.add_message(conn, objection_id, chat_id, message_id)

    async def messages(self, objection_id: int) -> list[tuple[int, int]]:
        async with self.db.read() as conn:
            return await notice_repo.messages(conn, objection_id)


def _local(moment: datetime, branch: Branch) -> str:
    return moment.astimezone(ZoneInfo(branch.timezone)).strftime("%Y-%m-%d %H:%M")
