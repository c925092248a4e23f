"""A member's standing: this month, the year so far, the band and stars, the ledger lines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from bot.clock import Clock
from bot.domain.assessment import counted_on
from bot.domain.records import Branch, LedgerRow, Member, NewLedgerRow, Role, Source
from bot.domain.rulebook import Band, ItemKind, Rulebook, Trigger
from bot.domain.scoring import MonthScore, YearScore, band_of, effective, month_net, month_score, months_so_far, publish, year_score
from bot.domain.text import REASON_MAX, clean_text
from bot.errors import InvalidInput, NotAuthorized
from bot.services.branches import Actor, may_score, rulebook_of
from bot.services.posts import member_posts, posts_by_month
from storage import grading as grading_repo
from storage import ledger as ledger_repo
from storage import members as member_repo
from storage.db import Database

RECORDERS = (Role.RECORDER, Role.SECRETARY, Role.DEPUTY)


@dataclass(frozen=True)
class Standing:
    member: Member
    rulebook: Rulebook
    today: date
    month: MonthScore
    month_net: Decimal  # what this month's rows add up to
    year: YearScore
    published: Decimal  # the year so far, rounded as it would be published
    band: Band | None
    recent: list[LedgerRow]


class PointsService:
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock

    async def standing(self, branch: Branch, member: Member, recent: int = 5) -> Standing:
        rulebook = rulebook_of(branch)
        today = self.clock.today(branch.timezone)
        async with self.db.read() as conn:
            entries = await ledger_repo.entries_of_member(conn, member.id, today.year)  # plain rows: no model each
            last = await ledger_repo.recent_of_member(conn, member.id, recent)
            posts = await posts_by_month(conn, rulebook, member.id, today.year, today)  # each month its own posts (浠水)
        months = months_so_far(rulebook, today, member.joined_on, member.left_on)
        year = year_score(rulebook, entries, today.year, months, posts=posts)
        published = publish(year.figure, rulebook.settings.rounding_places)
        this_month = next((m for m in year.months if (m.year, m.month) == (today.year, today.month)), None)
        return Standing(
            member=member, rulebook=rulebook, today=today,
            month=this_month or month_score(rulebook, entries, today.year, today.month, posts=posts),  # scored once
            month_net=month_net(entries, today.year, today.month),
            year=year, published=published, band=band_of(rulebook, year.figure), recent=last,
        )

    async def history(self, branch: Branch, member: Member, limit: int = 30) -> list[LedgerRow]:
        async with self.db.read() as conn:
            return await ledger_repo.recent_of_member(conn, member.id, limit)

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
