"""A member's standing: this month, the year so far, the band and stars, the ledger lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cached_property

from bot.clock import Clock
from bot.domain.assessment import counted_on
from bot.domain.assessment import posts_by_month as domain_posts_by_month
from bot.domain.records import Branch, LedgerRow, Member, NewLedgerRow, Role, Source
from bot.domain.rulebook import Band, ItemKind, Rulebook, Trigger, YearMethod
from bot.domain.scoring import EntryRow, MonthScore, YearScore, band_of, effective, month_net, month_score, months_so_far, publish, year_score
from bot.domain.text import REASON_MAX, clean_text
from bot.domain.town import months_of
from bot.errors import InvalidInput, NotAuthorized
from bot.services.branches import Actor, may_score, rulebook_of
from bot.services.posts import member_posts, posts_by_month
from bot.services.transfers import YearView, across, chain_of_member, year_view
from storage import grading as grading_repo
from storage import ledger as ledger_repo
from storage import members as member_repo
from storage import transfers as transfer_repo
from storage.db import Database

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
    recent: list[LedgerRow]
    transfer: YearView | None = None  # a member who moved this year: whose rows and months the year covers
    origins: dict[int, str] = field(default_factory=dict)  # branch id → title, for rows of their earlier branches
    entries: list[EntryRow] = field(default_factory=list, repr=False, compare=False)  # the year's rows, for ``year``
    posts: dict[tuple[int, int], int] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def year(self) -> YearScore:
        """The year with every month's score, worked out on first use: /points shows only ``summary``'s
        figures, and building twelve month scores cost more than the rest of its answer."""
        return year_score(self.rulebook, self.entries, self.today.year, self.counted, posts=self.posts)


class PointsService:
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock

    async def standing(self, branch: Branch, member: Member, recent: int = 5) -> Standing:
        rulebook = rulebook_of(branch)
        today = self.clock.today(branch.timezone)
        async with self.db.read() as conn:
            entries = await ledger_repo.entries_of_member(conn, member.id, today.year)  # plain rows: no model each
            chains = await chain_of_member(conn, member.id)  # one statement; nothing for a member who never moved
            view = year_view(chains, member.id, today.year)
            if view is None:
                last = await ledger_repo.recent_of_member(conn, member.id, recent)
                posts = await posts_by_month(conn, rulebook, member.id, today.year, today)  # each month its own posts (浠水)
            else:  # the history follows the member: the rows of every branch the year counts, as grading does
                rows = list(dict.fromkeys(s.member_id for s in view.counted))
                others = [r for r in rows if r != member.id]
                entries_of = {member.id: entries, **await transfer_repo.entries_of_rows(conn, others, today.year)}
                entries, claims = across(view.counted, entries_of, await transfer_repo.claims_of_rows(conn, rows))
                posts = domain_posts_by_month(rulebook, claims or [], today.year, today)
                last = await transfer_repo.recent_of_rows(conn, sorted({s.member_id for s in chains.stints[member.id]}), recent)
        if view is None:
            months = months_so_far(rulebook, today, member.joined_on, member.left_on)
        else:
            months = months_of(view.counted, today.year, today)
            if rulebook.year_result.method is not YearMethod.SUM and len(months) > 1 and months[-1] == (today.year, today.month):
                months = months[:-1]  # as months_so_far: the running month joins the average once it has ended
        # The figure from month totals (as grading does): equal in value to the detailed year's, so the
        # published (rounded) figure and the band are the same (tests/test_scoring_fast.py).
        summary = year_score(rulebook, entries, today.year, months, posts=posts, detail=False)
        return Standing(
            member=member, rulebook=rulebook, today=today,
            month=month_score(rulebook, entries, today.year, today.month, posts=posts),
            month_net=month_net(entries, today.year, today.month),
            summary=summary, counted=tuple(months), published=publish(summary.figure, rulebook.settings.rounding_places),
            band=band_of(rulebook, summary.figure), recent=last, transfer=view,
            origins={b: t for b, t in chains.titles.items() if b != branch.id}, entries=entries, posts=posts,
        )

    async def history(self, branch: Branch, member: Member, limit: int = 30) -> tuple[list[LedgerRow], dict[int, str]]:
        """The latest rows, of every branch the member has been in (组织关系转接: the history follows
        them), with the titles of those other branches (branch id → title) to mark their rows."""
        async with self.db.read() as conn:
            chains = await chain_of_member(conn, member.id)
            if member.id not in chains.stints:
                return await ledger_repo.recent_of_member(conn, member.id, limit), {}
            rows = sorted({s.member_id for s in chains.stints[member.id]})
            return (await transfer_repo.recent_of_rows(conn, rows, limit),
                    {b: t for b, t in chains.titles.items() if b != branch.id})

    async def record(self, branch: Branch, actor: Actor, target: Member, item_code: str, value: Decimal,
                     occurred_on: date, reason: str, reference: str, event_code: str | None = None) -> LedgerRow | None:
        """A recorder's own entry (a deduction, an assessment, a bonus) with its reason.

        ``reference`` makes it idempotent: the same reference for the same member is written once.
        A recorder's own points are entered only by the secretary or deputy.
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
        reason = clean_text(reason)
        if not reason:
            raise InvalidInput("decision.reason_required")
        if len(reason) > REASON_MAX:
            raise InvalidInput("text.too_long", limit=REASON_MAX)
        async with self.db.transaction() as conn:
            actor_member = await may_score(conn, branch.id, actor.user_id, target)
            if await grading_repo.is_locked(conn, branch.id, occurred_on.year):  # a finalised year takes nothing new
                raise InvalidInput("year.locked", year=occurred_on.year)
            if not target.scored:
                raise InvalidInput("record.not_scored", name=target.name)
            if rulebook.settings.zero_out_stops_scoring and item.kind is not ItemKind.ZERO_OUT:
                rows = await ledger_repo.of_member(conn, target.id, occurred_on.year)
                if any(rulebook.item(e.item_code) and rulebook.item(e.item_code).kind is ItemKind.ZERO_OUT  # type: ignore[union-attr]
                       for e in effective(r.entry() for r in rows)):
                    raise InvalidInput("record.scoring_stopped", name=target.name)
            return await ledger_repo.append(conn, NewLedgerRow(
                branch_id=branch.id, member_id=target.id, item_code=item.code, event_code=event_code, value=value,
                occurred_on=occurred_on, source=Source.RECORDER, reference=reference, actor_id=actor_member.id, reason=reason,
            ))

    async def reverse(self, branch: Branch, actor: Actor, row_id: int, reason: str) -> LedgerRow | None:
        """A correction: a reversing row, never an edit. Reversing twice writes once."""
        reason = clean_text(reason)
        if not reason:
            raise InvalidInput("decision.reason_required")
        async with self.db.transaction() as conn:
            actor_member = await member_repo.by_user(conn, branch.id, actor.user_id)
            if actor_member is None or not (await member_repo.roles_of(conn, actor_member.id)) & {Role.SECRETARY, Role.DEPUTY}:
                raise NotAuthorized("auth.needs_role", roles="secretary, deputy")
            original = await ledger_repo.by_id(conn, row_id)
            if original is None or original.branch_id != branch.id or original.reverses_id is not None:
                raise InvalidInput("record.not_reversible")
            return await ledger_repo.reverse(conn, original, reference=f"rev:{original.id}", actor_id=actor_member.id,
                                             reason=reason[:REASON_MAX])
