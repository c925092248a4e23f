"""A member's standing: this month, the year so far, the band and stars, the ledger lines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cached_property

from bot.clock import Clock
from bot.domain.assessment import Claim, counted_on
from bot.domain.assessment import posts_by_month as domain_posts_by_month
from bot.domain.records import Branch, LedgerRow, Member, MemberState, NewLedgerRow, Role, Source
from bot.domain.rulebook import Band, ItemKind, Rulebook, Trigger, YearMethod
from bot.domain.scoring import EntryRow, MonthScore, YearScore, band_of, counted_months, effective, month_net, month_score, months_so_far, publish, year_score
from bot.domain.text import REASON_MAX, clean_text
from bot.domain.states import History, drop_months, exempt_months, scored
from bot.domain.town import Stint, months_of
from bot.i18n import Translator
from bot.errors import AlreadyDone, DomainError, InvalidInput, NotFound
from bot.services.branches import Actor, may_score, rulebook_of
from bot.services.democratic import DemocraticService
from bot.services.posts import member_posts
from bot.services.transfers import NO_CHAINS, Chains, YearView, across, chain_of_member, year_view
from storage import grading as grading_repo
from storage import ledger as ledger_repo
from storage import member_states as state_repo
from storage import members as member_repo
from storage import transfers as transfer_repo
from storage.db import Connection, Database
from storage.ledger import Shown

RECORDERS = (Role.RECORDER, Role.SECRETARY, Role.DEPUTY)


@dataclass(frozen=True)
class Standing:
    member: Member
    rulebook: Rulebook
    today: date
    month: MonthScore
    month_net: Decimal  # what this month's rows add up to
    summary: YearScore  # the year without its per-month scores (scoring's fast path): all /points shows of it
    counted: tuple[tuple[int, int], ...]  # the months the year so far counts
    published: Decimal  # the year so far, rounded as it would be published
    band: Band | None
    recent: Sequence[LedgerRow | Shown]  # the latest rows, newest first
    transfer: YearView | None = None  # a member who moved this year: whose rows and months the year covers
    origins: dict[int, str] = field(default_factory=dict)  # branch id → title, for rows of their earlier branches
    entries: list[EntryRow] = field(default_factory=list, repr=False, compare=False)  # the year's rows, for ``year``
    posts: dict[tuple[int, int], int] | None = field(default=None, repr=False, compare=False)
    # Exempt now (不纳入积分管理): the first day of the month the exemption began (bot.domain.states); None when
    # the member is not exempt now or has been since the start. ``counted`` is then the months scored before.
    exempt_since: date | None = None

    @cached_property
    def year(self) -> YearScore:
        """The year with every month's score, worked out on first use: /points shows only ``summary``'s
        figures, and building twelve month scores cost more than the rest of its answer."""
        return year_score(self.rulebook, self.entries, self.today.year, self.counted, posts=self.posts)


class PointsService:
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock

    async def standing(self, branch: Branch, member: Member, recent: int = 5) -> Standing:
        today = self.clock.today(branch.timezone)
        async with self.db.read() as conn:
            reads = await _standing_reads(conn, rulebook_of(branch), member, today, recent)
        return _standing(branch, member, today, *reads, democratic=await self._democratic(branch, member, today.year))

    async def asker(self, user_id: int) -> tuple[Branch, Member]:
        """The branch a private chat is about (the one chosen last, or the only one) and the asker's
        member row there, in one statement: what ``branches.private_branch`` then ``roster.member_of``
        give, with the same refusals."""
        async with self.db.read() as conn:
            branch, member, _ = await _asker(conn, user_id)
        return branch, member

    async def own_standing(self, user_id: int, recent: int = 5) -> tuple[Branch, Member, Standing | None]:
        """A member's own /points: ``asker`` and ``standing`` in two statements — the asker, then (for a person
        who never moved, ``memberships`` says so) everything the standing reads, in one
        (``storage.ledger.standing_rows``) — each a ``read_one``: on PostgreSQL two round trips, no
        BEGIN/COMMIT. Two statements see two snapshots, as ``asker`` then ``standing`` did: the rows are
        those of the member row the first one found, as they stand a moment later. None instead of the
        standing for a member exempt now who was scored in no month of the year (exempt now but scored in
        earlier months: the standing over those months, ``Standing.exempt_since`` set)."""
        async with self.db.read_one() as conn:
            branch, member, moved = await _asker(conn, user_id)
        today = self.clock.today(branch.timezone)
        rulebook = rulebook_of(branch)
        if moved or not member.scored:  # the chain of stints first, then what it says to read: several statements, one snapshot
            async with self.db.read() as conn:
                reads = await _standing_reads(conn, rulebook, member, today, recent)
        else:
            async with self.db.read_one() as conn:
                reads = await _unmoved_reads(conn, rulebook, member, today, recent)
        standing = _standing(branch, member, today, *reads, democratic=await self._democratic(branch, member, today.year))
        return branch, member, (None if not member.scored and not standing.counted else standing)

    async def own_history(self, user_id: int, limit: int = 30) -> tuple[Branch, Member, Sequence[LedgerRow | Shown], dict[int, str]]:
        """A member's own /history: ``asker``, then the rows. The rows of a member who never moved come as
        the lines show them (``storage.ledger.Shown``: the same rows, no validated model each), in one
        statement: each a ``read_one`` (on PostgreSQL two round trips, no BEGIN/COMMIT; two snapshots, as
        ``asker`` then ``history`` were). A member who moved gets ``history``'s, of every branch they were in."""
        async with self.db.read_one() as conn:
            branch, member, moved = await _asker(conn, user_id)
        if not moved:
            async with self.db.read_one() as conn:
                return branch, member, await ledger_repo.shown_of_member(conn, member.id, limit), {}
        async with self.db.read() as conn:
            rows, origins = await _history_reads(conn, branch, member, limit)
        return branch, member, rows, origins

    async def history(self, branch: Branch, member: Member, limit: int = 30) -> tuple[list[LedgerRow], dict[int, str]]:
        """The latest rows, of every branch the member has been in (组织关系转接: the history follows
        them), with the titles of those other branches (branch id → title) to mark their rows."""
        async with self.db.read() as conn:
            return await _history_reads(conn, branch, member, limit)

    async def record(self, branch: Branch, actor: Actor, target: Member, item_code: str, value: Decimal,
                     occurred_on: date, reason: str, reference: str, event_code: str | None = None,
                     write: bool = True) -> LedgerRow | None:
        """A recorder's own entry (a deduction, an assessment, a bonus) with its reason.

        ``reference`` makes it idempotent: the same reference for the same member is written once.
        A recorder's own points are entered only by the secretary or deputy. The value has at most the
        rulebook's places; the day lies in a month the member belonged to the branch. ``write=False``
        makes every check and writes nothing (the zero-out's confirm step): None.
        """
        rulebook = rulebook_of(branch)
        item = rulebook.item(item_code)
        if item is None or Trigger.RECORDER not in item.triggers:
            raise InvalidInput("record.item_not_recordable")
        async with self.db.read() as conn:  # the posts the member counts in that month (浠水)
            posts = await member_posts(conn, rulebook, target.id,
                                       on=counted_on(occurred_on.year, occurred_on.month, self.clock.today(branch.timezone)))
        if not item.allows(value, event_code, posts=posts):
            raise InvalidInput("decision.value_not_allowed")
        check_places(rulebook, value)
        reason = clean_text(reason)
        if not reason:
            raise InvalidInput("decision.reason_required")
        if len(reason) > REASON_MAX:
            raise InvalidInput("text.too_long", limit=REASON_MAX)
        if not write:
            async with self.db.read() as conn:
                await _may_record(conn, branch, rulebook, actor, target, item, occurred_on)
            return None
        async with self.db.transaction() as conn:
            actor_member = await _may_record(conn, branch, rulebook, actor, target, item, occurred_on)
            return await ledger_repo.append(conn, NewLedgerRow(
                branch_id=branch.id, member_id=target.id, item_code=item.code, event_code=event_code, value=value,
                occurred_on=occurred_on, source=Source.RECORDER, reference=reference, actor_id=actor_member.id, reason=reason,
            ))

    async def managers_to_tell(self, branch: Branch, actor: Actor, about: Member) -> list[Member]:
        """The secretary and deputies to tell of an entry (a zero-out): not the one who made it, not the
        member it is about, only those with a Telegram account."""
        async with self.db.read() as conn:
            holders = await member_repo.holders(conn, branch.id, (Role.SECRETARY, Role.DEPUTY))
        return [m for m in holders if m.user_id is not None and m.user_id != actor.user_id and m.id != about.id]

    async def year_standing(self, branch: Branch, member: Member, year: int) -> Standing | None:
        """/points YEAR: the member's figure of a year that has ended, as its December notice and /grade
        work it out (every month of the year they counted in); the current year is ``standing``'s. None
        when the year counts no month of theirs (before they joined, after they left)."""
        today = self.clock.today(branch.timezone)
        if year > today.year:
            raise InvalidInput("record.future_year", year=year)
        if year == today.year:
            return await self.standing(branch, member)
        last = date(year, 12, 31)
        rulebook = rulebook_of(branch)
        async with self.db.read() as conn:
            reads = await _standing_reads(conn, rulebook, member, last, 0)
        view, chains, histories = reads[3], reads[2], reads[6]
        stints = view.counted if view is not None else chains.own(member)
        months = months_of(scored(stints, histories), year, last)  # without the months exempt (bot.domain.states)
        if not months:
            return None
        _, entries, chains, _, _, posts, _ = reads
        rows = effective(drop_months(entries, exempt_months(stints, histories, year, last)))
        summary = year_score(rulebook, rows, year, months, posts=posts, detail=False,
                             democratic=await self._democratic(branch, member, year))
        december = [e for e in rows if e.occurred_on.month == 12]
        return Standing(
            member=member, rulebook=rulebook, today=last,
            month=month_score(rulebook, december, year, 12, posts=posts), month_net=month_net(december, year, 12),
            summary=summary, counted=tuple(months), published=publish(summary.figure, rulebook.settings.rounding_places),
            band=band_of(rulebook, summary.figure), recent=(), transfer=view,
            origins={b: t for b, t in chains.titles.items() if b != branch.id}, entries=entries, posts=posts,
            exempt_since=_exempt_since(member, histories),
        )

    async def _democratic(self, branch: Branch, member: Member, year: int) -> dict[int, Decimal]:
        """The member's democratic evaluation of each half of ``year`` whose round has closed (张店's
        weighted halves only, no read otherwise), read as grading reads them (``GradingService._gather``),
        so that /points' figure — this year's and a past year's — is /grade's."""
        if rulebook_of(branch).year_result.method is not YearMethod.WEIGHTED_HALVES:
            return {}
        service = DemocraticService(self.db, self.clock)
        found = {}
        for half in (1, 2):
            value = (await service.evaluations(branch.id, year, half)).get(member.id)
            if value is not None:
                found[half] = value
        return found

    async def check_reverse(self, branch: Branch, actor: Actor, row_id: int, reason: str) -> Reversal:
        """Whether the actor may reverse this entry now (before the confirm button): the same checks as
        ``reverse``, nothing written; the reason as it will be kept."""
        reason = _reversal_reason(reason)
        async with self.db.read() as conn:
            original, member = await _reversible(conn, branch, actor, row_id)
        return Reversal(original=original, member=member, reversal=None, reason=reason)

    async def reverse(self, branch: Branch, actor: Actor, row_id: int, reason: str) -> Reversal:
        """A correction (/undo): a reversing row, never an edit, in the original's branch, dated like the
        original (so a finalised year refuses it, with the /reopen hint). Whoever may enter points for the
        member may take an entry back: a recorder, the secretary or a deputy — never on their own points,
        a recorder's own only by the secretary or a deputy. A reversal is not reversed (enter the entry
        again instead), and a row is reversed once (``reverses_id`` UNIQUE): a second press, or a row an
        objection already withdrew, is refused naming the reversal that stands. The reason is stored in
        the branch's language with the entry's number (it is shown in /history and the next notice)."""
        reason = _reversal_reason(reason)
        async with self.db.transaction() as conn:
            original, member = await _reversible(conn, branch, actor, row_id)
            actor_member = await member_repo.by_user(conn, branch.id, actor.user_id)
            assert actor_member is not None  # _reversible checked the role
            note = Translator(branch.language).plain("record.reversal_note", number=original.id, reason=reason)
            reversal = await ledger_repo.reverse(conn, original, reference=f"rev:{original.id}", actor_id=actor_member.id,
                                                 reason=note[:REASON_MAX])
            if reversal is None:  # a concurrent twin (a double press) got there first
                raise _already_reversed(original, await ledger_repo.reversal_of(conn, original.id))
        return Reversal(original=original, member=member, reversal=reversal, reason=reason)


async def _may_record(conn: Connection, branch: Branch, rulebook: Rulebook, actor: Actor, target: Member, item,
                      occurred_on: date) -> Member:
    """The checks of a recorder's entry that read the database; the actor's member row."""
    actor_member = await may_score(conn, branch.id, actor.user_id, target)
    earlier: tuple = ()
    if target.joined_on is not None and occurred_on < target.joined_on.replace(day=1):  # an earlier stay may hold it
        earlier = (await chain_of_member(conn, target.id)).own(target)
    check_membership(target, occurred_on, earlier)
    if await grading_repo.is_locked(conn, branch.id, occurred_on.year):  # a finalised year takes nothing new
        raise InvalidInput("year.locked", year=occurred_on.year)
    # By the state of the entry's month, not today's (exempt from April: March can still be recorded). A
    # member exempt now is in ``of_members`` (History(current=EXEMPT) alone: exempt in every month).
    history = (await state_repo.of_members(conn, [target.id])).get(target.id)
    if history is not None and history.state_in(occurred_on.year, occurred_on.month) is MemberState.EXEMPT:
        # a row dated while the member was exempt would count in no month (bot.domain.states)
        raise InvalidInput("record.exempt_month", name=target.name, month=f"{occurred_on:%Y-%m}")
    if rulebook.settings.zero_out_stops_scoring and item.kind is not ItemKind.ZERO_OUT:
        rows = await ledger_repo.of_member(conn, target.id, occurred_on.year)
        if any(rulebook.item(e.item_code) and rulebook.item(e.item_code).kind is ItemKind.ZERO_OUT  # type: ignore[union-attr]
               for e in effective(r.entry() for r in rows)):
            raise InvalidInput("record.scoring_stopped", name=target.name)
    return actor_member


@dataclass(frozen=True)
class Reversal:
    """An entry to take back (/undo), its member and (once written) the reversing row."""

    original: LedgerRow
    member: Member
    reversal: LedgerRow | None
    reason: str

    @property
    def declaration_id(self) -> int | None:
        """The declaration the entry came from (approved): it stays approved — the decision was taken — and
        its points go with the reversal, which /history and the next notice show."""
        reference = self.original.reference or ""
        return int(reference[5:]) if self.original.source is Source.DECLARATION and reference.startswith("decl:") else None


async def _reversible(conn: Connection, branch: Branch, actor: Actor, row_id: int) -> tuple[LedgerRow, Member]:
    original = await ledger_repo.by_id(conn, row_id)
    if original is None or original.branch_id != branch.id:
        raise NotFound("record.entry_not_found", number=row_id)
    member = await member_repo.by_id(conn, original.member_id)
    assert member is not None
    await may_score(conn, branch.id, actor.user_id, member)
    if original.reverses_id is not None:
        raise InvalidInput("record.not_reversible", number=original.id, original=original.reverses_id)
    existing = await ledger_repo.reversal_of(conn, original.id)
    if existing is not None:
        raise _already_reversed(original, existing)
    if await grading_repo.is_locked(conn, branch.id, original.occurred_on.year):
        raise InvalidInput("year.locked", year=original.occurred_on.year)
    return original, member


def _reversal_reason(reason: str) -> str:
    reason = clean_text(reason)
    if not reason:
        raise InvalidInput("decision.reason_required")
    if len(reason) > REASON_MAX:
        raise InvalidInput("text.too_long", limit=REASON_MAX)
    return reason


def _already_reversed(original: LedgerRow, reversal: LedgerRow | None) -> AlreadyDone:
    return AlreadyDone("record.already_reversed", number=original.id, reversal=reversal.id if reversal else "?")


def check_places(rulebook: Rulebook, value: Decimal) -> None:
    """A value has at most the rulebook's places (2: the published figure's), or it is refused: 7.123456
    points would be kept exact and shown rounded, two figures for one entry."""
    places = rulebook.settings.rounding_places
    if value != publish(value, places):
        raise InvalidInput("record.too_precise", places=places)


def check_membership(member: Member, day: date, stays: Sequence[Stint] = ()) -> None:
    """An entry dated in a month the member did not belong to the branch would count in no month (the year
    counts the months from joining to leaving, DOMAIN decision 8): refused, saying why. ``stays``: the row's
    stays when it left and came back (``Chains.own``): a month of an earlier stay counts."""
    month = (day.year, day.month)
    if any(month in counted_months(day.year, date(day.year, 12, 31), s.first, s.last) for s in stays):
        return
    if member.joined_on is not None and month < (member.joined_on.year, member.joined_on.month):
        raise InvalidInput("record.before_joined", name=member.name, day=day.isoformat(), joined=member.joined_on.isoformat())
    if member.left_on is not None and month > (member.left_on.year, member.left_on.month):
        raise InvalidInput("record.after_left", name=member.name, day=day.isoformat(), left=member.left_on.isoformat())


async def _asker(conn: Connection, user_id: int) -> tuple[Branch, Member, bool]:
    """The asker's branch and member row, and whether they ever moved between branches."""
    mine, chosen, moved = await member_repo.memberships(conn, user_id)
    if not mine:
        raise NotFound("branch.none_for_user")
    for branch, member in mine:
        if branch.id == chosen:
            return branch, member, moved
    if len(mine) == 1:
        return *mine[0], moved
    raise DomainError("branch.choose")


async def _standing_reads(conn: Connection, rulebook: Rulebook, member: Member, today: date, recent: int, moved: bool = True):
    """What ``standing`` reads: the year's rows, the member's chain of stints, the latest rows and the
    posts by month (each branch's rows and claims when the member moved this year). ``moved=False``
    (the person never moved: ``memberships`` says so) spares reading the chain, which is then empty."""
    chains = await chain_of_member(conn, member.id) if moved else NO_CHAINS
    view = year_view(chains, member.id, today.year)
    # the state histories of the person's rows: the months they were exempt count nowhere
    histories = await state_repo.of_members(conn, sorted({s.member_id for s in chains.stints.get(member.id, ())} | {member.id}))
    if view is None:
        return (*(await _unmoved_reads(conn, rulebook, member, today, recent, chains))[:6], histories)
    # the history follows the member: the rows of every branch the year counts, as grading does
    rows = list(dict.fromkeys(s.member_id for s in view.counted))
    others = [r for r in rows if r != member.id]
    entries_of = {member.id: await ledger_repo.entries_of_member(conn, member.id, today.year),
                  **await transfer_repo.entries_of_rows(conn, others, today.year)}
    entries, claims = across(view.counted, entries_of, await transfer_repo.claims_of_rows(conn, rows))
    posts = domain_posts_by_month(rulebook, claims or [], today.year, today)
    last = await transfer_repo.recent_of_rows(conn, sorted({s.member_id for s in chains.stints[member.id]}), recent)
    return rulebook, entries, chains, view, last, posts, histories


async def _unmoved_reads(conn: Connection, rulebook: Rulebook, member: Member, today: date, recent: int,
                         chains: Chains = NO_CHAINS):
    """``_standing_reads`` of a member whose year involves no move: the year's rows, the latest rows and the
    post claims in one statement (``storage.ledger.standing_rows``); each month's posts from the claims
    as ``services.posts.posts_by_month`` counts them."""
    found = await ledger_repo.standing_rows(conn, member.id, today.year, recent, claims=rulebook.posts is not None)
    return rulebook, found.entries, chains, None, found.latest, _posts_of(rulebook, found.claims, today.year, today), {}


def _posts_of(rulebook: Rulebook, claims: list[Claim] | None, year: int, today: date) -> dict[tuple[int, int], int]:
    """``services.posts.posts_by_month`` of claims already read (None: the scheme has no posts)."""
    if rulebook.posts is None:
        return {(year, m): 1 for m in range(1, 13)}
    if not claims:  # never claimed a post: every month counts the scheme's number
        return {(year, m): rulebook.posts.claims_per_member for m in range(1, 13)}
    return domain_posts_by_month(rulebook, claims, year, today)


def _standing(branch: Branch, member: Member, today: date, rulebook: Rulebook, entries: list[EntryRow], chains: Chains,
              view: YearView | None, last: Sequence[LedgerRow | Shown], posts: dict[tuple[int, int], int],
              histories: dict[int, History] | None = None, democratic: dict[int, Decimal] | None = None) -> Standing:
    histories = histories or {}
    if view is None and member.id not in chains.stints and not histories:
        months = months_so_far(rulebook, today, member.joined_on, member.left_on)
    else:  # the chain's stints that count, or the row's own stays (a member who left and came back), less
        # the months the member was exempt (bot.domain.states)
        stints = view.counted if view is not None else chains.own(member)
        months = months_of(scored(stints, histories), today.year, today)
        if rulebook.year_result.method is not YearMethod.SUM and len(months) > 1 and months[-1] == (today.year, today.month):
            months = months[:-1]  # as months_so_far: the running month joins the average once it has ended
        entries = drop_months(entries, exempt_months(stints, histories, today.year, today))
    # The figure from month totals (as grading does): equal in value to the detailed year's, so the
    # published (rounded) figure and the band are the same (tests/test_scoring_fast.py).
    # Reversed pairs dropped once (each of the three would drop them again: ``effective`` of rows already
    # effective is the same rows), and this month's rows picked once for its score and its net.
    rows = effective(entries)
    this_month = [e for e in rows if e.occurred_on.month == today.month and e.occurred_on.year == today.year]
    summary = year_score(rulebook, rows, today.year, months, posts=posts, detail=False, democratic=democratic)
    return Standing(
        member=member, rulebook=rulebook, today=today,
        month=month_score(rulebook, this_month, today.year, today.month, posts=posts),
        month_net=month_net(this_month, today.year, today.month),
        summary=summary, counted=tuple(months), published=publish(summary.figure, rulebook.settings.rounding_places),
        band=band_of(rulebook, summary.figure), recent=last, transfer=view,
        origins={b: t for b, t in chains.titles.items() if b != branch.id}, entries=entries, posts=posts,
        exempt_since=_exempt_since(member, histories),
    )


def _exempt_since(member: Member, histories: dict[int, History]) -> date | None:
    """A member exempt now: the first day of the month their exemption began (the open span of their row's
    history); None when not exempt now, or exempt since the row began."""
    if member.scored or member.id not in histories:
        return None
    spans = histories[member.id].exempt_spans()
    return spans[-1][0] if spans and spans[-1][1] is None else None


async def _history_reads(conn: Connection, branch: Branch, member: Member, limit: int) -> tuple[list[LedgerRow], dict[int, str]]:
    chains = await chain_of_member(conn, member.id)
    if member.id not in chains.stints:
        return await ledger_repo.recent_of_member(conn, member.id, limit), {}
    rows = sorted({s.member_id for s in chains.stints[member.id]})
    return (await transfer_repo.recent_of_rows(conn, rows, limit),
            {b: t for b, t in chains.titles.items() if b != branch.id})
