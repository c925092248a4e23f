"""Declarations (申报): a member reports a deed; a recorder approves, adjusts or rejects it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from bot.clock import Clock
from bot.domain.records import Branch, Declaration, DeclarationStatus, LedgerRow, Member, MemberStatus, NewLedgerRow, Role, Source
from bot.domain.rulebook import Item, ItemKind, Rulebook, Trigger
from bot.domain.assessment import counted_on
from bot.domain.calendar import recordable_since
from bot.domain.scoring import effective
from bot.domain.states import exempt_in
from bot.domain.text import DESCRIPTION_MAX, PLACE_MAX, REASON_MAX, clean_text
from bot.errors import AlreadyDone, InvalidInput, NotAuthorized, NotFound
from bot.services.branches import Actor, recipients, rulebook_of
from bot.services.posts import member_posts
from storage import declarations as declaration_repo
from storage import grading as grading_repo
from storage import ledger as ledger_repo
from storage import member_states as state_repo
from storage import members as member_repo
from storage.db import Database

DECIDERS = (Role.RECORDER, Role.SECRETARY, Role.DEPUTY)
_DATE = re.compile(r"^\s*(\d{4})[-./年](\d{1,2})[-./月](\d{1,2})日?\s*$")
_MONTH_DAY = re.compile(r"^\s*(\d{1,2})[-./月](\d{1,2})日?\s*$")


class Verdict(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


@dataclass(frozen=True)
class Draft:
    """What the member has entered so far in the /declare conversation."""

    item_code: str
    occurred_on: date
    place: str
    description: str
    photo_file_id: str | None = None


@dataclass(frozen=True)
class Decision:
    declaration: Declaration
    member: Member  # the declarant
    decider: Member
    ledger_row: LedgerRow | None
    branch: Branch  # as the decision's transaction read it
    messages: tuple[tuple[int, int], ...] = ()  # (chat id, message id) of every copy of the card


async def _not_exempt_in(conn, member: Member, day: date) -> None:
    """By the state of the deed's month, not today's: a deed dated while exempt would count in no month."""
    if exempt_in(await state_repo.of_members(conn, [member.id]), member.id, day.year, day.month):
        raise InvalidInput("declare.exempt_month", month=f"{day:%Y-%m}")


def open_period(today: date, late_days: int) -> tuple[date, date]:
    """Deeds may be declared for this month, and in its first ``late_days`` days for last month too."""
    start = today.replace(day=1)
    if today.day <= late_days:
        start = (start - timedelta(days=1)).replace(day=1)
    return start, today


def declared_value(item: Item) -> Decimal:
    """The value a declaration asks for: a fixed item's value; a ranged item's default or minimum."""
    if item.kind is ItemKind.FIXED:
        assert item.value is not None
        return item.value
    assert item.min is not None
    return item.default if item.default is not None else item.min


def adjustable_values(item: Item, posts: int) -> list[Decimal]:
    """The whole-number values a decider may pick for a ranged item (Adjust)."""
    bounds = item.range_for(posts)
    if bounds is None:
        return []
    low, high = bounds
    values, step = [], Decimal(1)
    value = low
    while value <= high and len(values) < 41:
        values.append(value)
        value += step
    return values


class DeclarationService:
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock

    # --- the member's side -----------------------------------------------------------------------

    async def declarant(self, branch: Branch, actor: Actor) -> Member:
        async with self.db.read() as conn:
            member = await member_repo.by_user(conn, branch.id, actor.user_id)
            if member is None or member.status is not MemberStatus.APPROVED:
                raise NotAuthorized("declare.not_member")
            if not member.scored:  # exempt now: refused only if exempt in every month still open to declare
                start, today = open_period(self.clock.today(branch.timezone), rulebook_of(branch).settings.late_declaration_days)
                histories = await state_repo.of_members(conn, [member.id])
                if all(exempt_in(histories, member.id, day.year, day.month) for day in {start, today}):
                    raise NotAuthorized("declare.exempt")
            if rulebook_of(branch).settings.zero_out_stops_scoring:
                year = self.clock.today(branch.timezone).year
                rows = await ledger_repo.of_member(conn, member.id, year)
                if _has_zero_out(rulebook_of(branch), rows):
                    raise NotAuthorized("declare.scoring_stopped")
        return member

    async def check_month(self, branch: Branch, actor: Actor, day: date) -> None:
        """The deed's day lies in a month the declarant was not exempt in (the date step can say so before
        the place and the text are asked; ``submit`` checks it again)."""
        async with self.db.read() as conn:
            member = await member_repo.by_user(conn, branch.id, actor.user_id)
            if member is None or member.status is not MemberStatus.APPROVED:
                raise NotAuthorized("declare.not_member")
            await _not_exempt_in(conn, member, day)

    def declarable(self, branch: Branch) -> Rulebook:
        return rulebook_of(branch)

    def check_item(self, branch: Branch, item_code: str) -> Item:
        item = rulebook_of(branch).item(item_code)
        if item is None or Trigger.DECLARATION not in item.triggers:
            raise InvalidInput("declare.item_not_declarable")
        return item

    def parse_date(self, branch: Branch, text: str) -> date:
        today = self.clock.today(branch.timezone)
        words = text.strip().lower()
        if words in ("today", "今天"):
            day = today
        elif words in ("yesterday", "昨天"):
            day = today - timedelta(days=1)
        else:
            day = _parse_day(text, today)
        start, end = open_period(today, rulebook_of(branch).settings.late_declaration_days)
        if day > end:
            raise InvalidInput("declare.date_future")
        if day < start:
            raise InvalidInput("declare.date_closed", start=start.isoformat(), end=end.isoformat())
        return day

    def parse_record_date(self, branch: Branch, text: str) -> date:
        """The day of a recorder's entry (/record): from the start of the previous review period (a month,
        or a quarter for 三门峡) to today — a period that has closed but whose deductions the committee
        is still settling. A short date of a later month (12-20 in January) means last year's."""
        today = self.clock.today(branch.timezone)
        day = _parse_day(text, today)
        if day.month > today.month and _MONTH_DAY.match(text):
            day = day.replace(year=day.year - 1)
        start = recordable_since(today, rulebook_of(branch).settings.review_period)
        if day > today:
            raise InvalidInput("record.date_future")
        if day < start:
            raise InvalidInput("record.date_closed", start=start.isoformat(), end=today.isoformat())
        return day

    def open_period(self, branch: Branch) -> tuple[date, date]:
        return open_period(self.clock.today(branch.timezone), rulebook_of(branch).settings.late_declaration_days)

    @staticmethod
    def check_place(text: str | None) -> str:
        return _bounded(text, PLACE_MAX)

    @staticmethod
    def check_description(text: str | None) -> str:
        return _bounded(text, DESCRIPTION_MAX)

    async def submit(self, branch: Branch, actor: Actor, draft: Draft, client_key: str) -> tuple[Declaration, bool]:
        """Store the declaration as pending; a replayed confirmation returns the same one."""
        member = await self.declarant(branch, actor)
        item = self.check_item(branch, draft.item_code)
        self.parse_date(branch, draft.occurred_on.isoformat())
        place, description = self.check_place(draft.place), self.check_description(draft.description)
        async with self.db.transaction() as conn:
            if await grading_repo.is_locked(conn, branch.id, draft.occurred_on.year):  # a finalised year takes nothing new
                raise InvalidInput("year.locked", year=draft.occurred_on.year)
            # Still a member, under the write lock: a /remove between ``declarant`` and here has withdrawn
            # the waiting declarations and must not find a new one after it.
            current = await member_repo.by_id(conn, member.id)
            if current is None or current.status is not MemberStatus.APPROVED:
                raise NotAuthorized("declare.not_member")
            await _not_exempt_in(conn, member, draft.occurred_on)
            return await declaration_repo.create(
                conn, branch_id=branch.id, member_id=member.id, item_code=item.code, occurred_on=draft.occurred_on,
                place=place, description=description, photo_file_id=draft.photo_file_id,
                value=declared_value(item), client_key=client_key,
            )

    async def mine(self, branch: Branch, actor: Actor, limit: int = 10) -> list[Declaration]:
        async with self.db.read() as conn:
            member = await member_repo.by_user(conn, branch.id, actor.user_id)
            if member is None:
                raise NotAuthorized("auth.not_member")
            return await declaration_repo.of_member(conn, member.id, limit)

    # --- the deciders' side ----------------------------------------------------------------------

    async def deciders(self, declaration: Declaration) -> list[Member]:
        """Who is asked: recorders; for a recorder's own deed, or with no recorder, the secretary and deputy."""
        async with self.db.read() as conn:
            declarant = await member_repo.by_id(conn, declaration.member_id)
            return await recipients(conn, declaration.branch_id, about=declarant)

    async def remember_message(self, declaration_id: int, chat_id: int, message_id: int) -> None:
        async with self.db.transaction() as conn:
            await declaration_repo.add_message(conn, declaration_id, chat_id, message_id)

    async def messages(self, declaration_id: int) -> list[tuple[int, int]]:
        async with self.db.read() as conn:
            return await declaration_repo.messages(conn, declaration_id)

    async def get(self, declaration_id: int) -> Declaration:
        async with self.db.read() as conn:
            declaration = await declaration_repo.by_id(conn, declaration_id)
        if declaration is None:
            raise NotFound("decision.not_found")
        return declaration

    async def view(self, declaration_id: int, actor: Actor) -> tuple[Declaration, Branch, Member]:
        """A declaration for someone allowed to decide it (the adjust screen)."""
        async with self.db.read() as conn:
            context = await declaration_repo.decision_context(conn, declaration_id, actor.user_id)
        if context is None:
            raise NotFound("decision.not_found")
        _check_decider(context)
        return context.declaration, context.branch, context.declarant

    async def decide(self, declaration_id: int, actor: Actor, verdict: Verdict, *, value: Decimal | None = None,
                     reason: str | None = None) -> Decision:
        """Approve (at the declared or an adjusted value) or reject, exactly once, with its ledger row.

        One transaction reads what the decision needs (one statement: the declaration, its branch, the
        declarant, the presser's membership and both one's roles, read afresh on every press, and the card
        copies to edit) and writes it, so the caller needs no read of its own afterwards."""
        reason = clean_text(reason) or None
        if reason and len(reason) > REASON_MAX:
            raise InvalidInput("text.too_long", limit=REASON_MAX)
        if verdict is Verdict.REJECT and not reason:
            raise InvalidInput("decision.reason_required")
        async with self.db.transaction() as conn:
            context = await declaration_repo.decision_context(conn, declaration_id, actor.user_id)
            if context is None:
                raise NotFound("decision.not_found")
            decider = _check_decider(context)
            declaration, branch, member = context.declaration, context.branch, context.declarant
            if declaration.status is not DeclarationStatus.PENDING:
                raise AlreadyDone("decision.already", status=declaration.status.value)
            rulebook = rulebook_of(branch)
            item = rulebook.item(declaration.item_code)
            row = None
            if verdict is Verdict.APPROVE:
                if item is None:
                    raise InvalidInput("decision.item_gone")
                final = declaration.value if value is None else value
                posts = 1  # only a per-post range depends on the posts held (Item.allows, Item.range_for)
                if item.kind is ItemKind.RANGED and item.per_post:
                    held_on = counted_on(declaration.occurred_on.year, declaration.occurred_on.month, self.clock.today(branch.timezone))
                    posts = await member_posts(conn, rulebook, member.id, on=held_on)  # that month's posts
                if not item.allows(final, posts=posts):
                    raise InvalidInput("decision.value_not_allowed")
                decided = await declaration_repo.decide(conn, declaration.id, status="approved", value=final,
                                                        decided_by=decider.id, reason=reason)
                if decided is None:
                    raise AlreadyDone("decision.already", status="?")
                row = await ledger_repo.append(conn, NewLedgerRow(
                    branch_id=branch.id, member_id=member.id, item_code=item.code, value=final,
                    occurred_on=declaration.occurred_on, source=Source.DECLARATION, reference=f"decl:{declaration.id}",
                    actor_id=decider.id, reason=reason or declaration.description[:REASON_MAX],
                ))
            else:
                decided = await declaration_repo.decide(conn, declaration.id, status="rejected", value=None,
                                                        decided_by=decider.id, reason=reason)
                if decided is None:
                    raise AlreadyDone("decision.already", status="?")
            await declaration_repo.open_publication(conn, declaration.id)  # shown next; see ``published``
        return Decision(declaration=decided, member=member, decider=decider, ledger_row=row, branch=branch,
                        messages=context.messages)

    async def published(self, declaration_id: int) -> None:
        """The decision has been shown (cards edited, member told), or showing it was given up (a send
        that timed out is not repeated blindly). Committed without waiting for the disk: if the machine
        loses power first, the sweep shows the decision once more — the worst case is a message twice."""
        async with self.db.transaction(wait_for_disk=False) as conn:
            await declaration_repo.mark_published(conn, declaration_id)

    async def unpublished(self, claimed_before: datetime, limit: int = 20) -> list[Decision]:
        """Decisions committed but never shown: their process died between the COMMIT and the messages
        (a redelivered press then only finds the declaration decided). Each is taken over here (its
        claim renewed, so no other process shows it too) and returned to be shown and marked
        ``published``. ``ledger_row`` is None: showing a decision does not read it."""
        async with self.db.transaction() as conn:
            before = claimed_before.astimezone(UTC).isoformat(timespec="seconds")
            taken = await declaration_repo.claim_unpublished(conn, before, limit)
        decisions, nothing_to_show = [], []
        async with self.db.read() as conn:
            for declaration_id, decider_user_id in taken:
                context = await declaration_repo.decision_context(conn, declaration_id, decider_user_id or 0)
                if context is None or context.decider is None or context.declaration.status is DeclarationStatus.PENDING:
                    nothing_to_show.append(declaration_id)  # not a decision of decide(): nothing it could show
                    continue
                decisions.append(Decision(declaration=context.declaration, member=context.declarant,
                                          decider=context.decider, ledger_row=None, branch=context.branch,
                                          messages=context.messages))
        for declaration_id in nothing_to_show:
            await self.published(declaration_id)
        return decisions

    async def pending(self, branch: Branch, actor: Actor) -> list[tuple[Declaration, Member]]:
        async with self.db.read() as conn:
            me = await member_repo.by_user(conn, branch.id, actor.user_id)
            if me is None or not (await member_repo.roles_of(conn, me.id)) & set(DECIDERS):
                raise NotAuthorized("auth.needs_role", roles="recorder, secretary, deputy")
            result = []
            for declaration in await declaration_repo.pending(conn, branch.id):
                member = await member_repo.by_id(conn, declaration.member_id)
                assert member is not None
                result.append((declaration, member))
            return result


def _check_decider(context: declaration_repo.DecisionContext) -> Member:
    """The presser may decide this declaration: an approved member of its branch holding a deciding role,
    not its declarant; a recorder's own declaration only by the secretary or deputy."""
    decider, roles = context.decider, context.decider_roles
    if decider is None or decider.status is not MemberStatus.APPROVED:
        raise NotAuthorized("decision.not_allowed")
    if not roles & set(DECIDERS):
        raise NotAuthorized("decision.not_allowed")
    if decider.id == context.declaration.member_id:
        raise NotAuthorized("decision.own")
    if Role.RECORDER in context.declarant_roles and not roles & {Role.SECRETARY, Role.DEPUTY}:
        raise NotAuthorized("decision.recorder_own_points")
    return decider


def _has_zero_out(rulebook: Rulebook, rows: list[LedgerRow]) -> bool:
    zero_codes = {i.code for _, i in rulebook.items() if i.kind is ItemKind.ZERO_OUT}
    return any(e.item_code in zero_codes for e in effective(r.entry() for r in rows))


def _bounded(text: str | None, limit: int) -> str:
    cleaned = clean_text(text)
    if not cleaned:
        raise InvalidInput("text.empty")
    if len(cleaned) > limit:
        raise InvalidInput("text.too_long", limit=limit, length=len(cleaned))
    return cleaned


def _parse_day(text: str, today: date) -> date:
    full, short = _DATE.match(text), _MONTH_DAY.match(text)
    try:
        if full:
            return date(int(full[1]), int(full[2]), int(full[3]))
        if short:
            return date(today.year, int(short[1]), int(short[2]))
    except ValueError:
        pass
    raise InvalidInput("declare.bad_date")
