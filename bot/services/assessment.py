"""The monthly assessment (月度考评): the recorder scores every member's assessed items each month.

An assessment is a ledger row (source "recorder", occurred on the month's last day, reference
``assess:YYYY-MM:item:revision``); re-assessing reverses the current revision's row and appends the next
revision, so the ledger stays append-only and a double tap (same revision) writes once. Members nobody
assessed by the month's notice get the item's default (source "automatic"), recorded as defaults so the
notice can say so (``defaulted_members``). Volunteer posts live in ``self.posts`` (``PostService``).

Who may assess whom is the shared rule (``branches.may_score``). A revision whose ledger row someone else
reversed (an objection upheld, a correction) gives the item no value: it is unassessed again. A member's
posts are those counted in the month assessed (``counted_on``), not today's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from bot.clock import Clock
from bot.domain.assessment import (
    Assessed,
    MonthError,
    Post,
    assessed_items,
    check_month,
    counted_on,
    default_month,
    default_value,
    good_value,
    in_month,
    last_day,
    month_key,
    notice_of,
    outside_rows,
    parse_month,
    posts_held_on,
    reference,
    valid_value,
)
from bot.domain.calendar import add_months, period_of_month
from bot.domain.records import Branch, LedgerRow, Member, MemberStatus, NewLedgerRow, Role, Source
from bot.domain.rulebook import Item, Period, Rulebook
from bot.domain.states import exempt_in
from bot.domain.text import REASON_MAX, clean_text
from bot.errors import AlreadyDone, InvalidInput, NotAuthorized, NotFound
from bot.services.branches import SCORERS, Actor, may_score, recipients, require_role, rulebook_of
from bot.services.calendar import calendar_of
from bot.services.posts import PostService, member_posts
from bot.services.transfers import chain_of_member, chains_near_branch
from storage import assessment as assessment_repo
from storage import ledger as ledger_repo
from storage import member_states as state_repo
from storage import members as member_repo
from storage import posts as post_repo
from storage.db import Connection, Database

# may_score's refusals, in the assessment's words
_REFUSALS = {"decision.own": "assessment.own", "decision.recorder_own_points": "assessment.recorder_own"}


@dataclass(frozen=True)
class Sheet:
    """One member's assessment in one month, as the actor sees it."""

    member: Member
    posts: int
    current: dict[str, Assessed]  # item code → current revision
    outside: dict[str, tuple[LedgerRow, ...]] = field(default_factory=dict)  # item rows entered otherwise (/record)
    refusal: str | None = None  # why the actor may not assess this member (an error key), None if they may
    claimed: tuple[Post, ...] = ()  # the posts the member holds (浠水)
    last_month: dict[str, Decimal] = field(default_factory=dict)

    @property
    def may_assess(self) -> bool:
        return self.refusal is None

    def _in_force(self, item: Item) -> Assessed | None:
        """The current revision, unless its ledger row was reversed (withdrawn: no value)."""
        found = self.current.get(item.code)
        return found if found is not None and not found.withdrawn else None

    def assessed(self, item: Item) -> bool:
        """Assessed by a person (a default does not count)."""
        found = self._in_force(item)
        return (found is not None and not found.is_default) or bool(self.outside.get(item.code))

    def defaulted(self, item: Item) -> bool:
        found = self._in_force(item)
        return found is not None and found.is_default and not self.outside.get(item.code)

    def value(self, item: Item) -> Decimal | None:
        """The item's value in the month (None: nothing yet, or what there was was withdrawn)."""
        found, others = self._in_force(item), self.outside.get(item.code, ())
        if found is None and not others:
            return None
        return (found.value if found else Decimal(0)) + sum((r.value for r in others), Decimal(0))

    def missing(self, items: list[Item]) -> list[Item]:
        return [i for i in items if not self.assessed(i)]

    def revision(self, item: Item) -> int:
        """The latest revision, withdrawn or not: the next write follows it."""
        found = self.current.get(item.code)
        return found.revision if found else 0


@dataclass(frozen=True)
class Board:
    branch: Branch
    rulebook: Rulebook
    items: list[Item]
    year: int
    month: int
    sheets: list[Sheet]
    notice_at: datetime

    @property
    def remaining(self) -> list[Sheet]:
        return [s for s in self.sheets if s.missing(self.items)]

    def sheet(self, member_id: int) -> Sheet | None:
        return next((s for s in self.sheets if s.member.id == member_id), None)

    def next_after(self, member_id: int) -> Sheet | None:
        """The next member still to assess (that the actor may assess), after this one, wrapping round."""
        ids = [s.member.id for s in self.sheets]
        start = ids.index(member_id) + 1 if member_id in ids else 0
        ordered = self.sheets[start:] + self.sheets[:start]
        return next((s for s in ordered if s.member.id != member_id and s.may_assess and s.missing(self.items)), None)


@dataclass(frozen=True)
class Written:
    sheet: Sheet  # after the write
    item: Item
    value: Decimal
    changed: bool


class AssessmentService:
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock
        self.posts = PostService(db, clock)

    # --- months and items ------------------------------------------------------------------------

    def items(self, branch: Branch) -> list[Item]:
        return assessed_items(rulebook_of(branch))

    def default_setting(self, branch: Branch) -> str:
        """The branch's rule for unassessed items: "zero" or "middle_of_good"."""
        return rulebook_of(branch).settings.assessment_default.value

    def default_month(self, branch: Branch) -> tuple[int, int]:
        return default_month(self.clock.today(branch.timezone), self.clock.now(), calendar_of(branch), branch.timezone)

    def parse_month(self, branch: Branch, text: str) -> tuple[int, int]:
        try:
            return parse_month(text, self.clock.today(branch.timezone))
        except MonthError as exc:
            _month_refusal(exc)
            raise  # pragma: no cover

    def check_month(self, branch: Branch, year: int, month: int) -> tuple[int, int]:
        try:
            return check_month(year, month, self.clock.today(branch.timezone))
        except MonthError as exc:
            _month_refusal(exc)
            raise  # pragma: no cover

    def notice_at(self, branch: Branch, year: int, month: int) -> datetime:
        return notice_of(year, month, calendar_of(branch), branch.timezone)

    # --- reading ---------------------------------------------------------------------------------

    async def board(self, branch: Branch, actor: Actor, year: int, month: int) -> Board:
        """Everyone to assess in the month with their current values; for recorders, secretary, deputy."""
        self.check_month(branch, year, month)
        rulebook, items = self._items(branch)
        async with self.db.read() as conn:
            await require_role(conn, branch.id, actor.user_id, SCORERS)
            sheets = await self._sheets(conn, branch, rulebook, year, month, actor)
        return Board(branch=branch, rulebook=rulebook, items=items, year=year, month=month, sheets=sheets,
                     notice_at=self.notice_at(branch, year, month))

    async def sheet(self, branch: Branch, actor: Actor, year: int, month: int, member_id: int) -> tuple[Board, Sheet]:
        """One member's screen: the board plus the member's posts and last month's values."""
        board = await self.board(branch, actor, year, month)
        found = board.sheet(member_id)
        if found is None:
            raise NotFound("assessment.member_not_listed")
        async with self.db.read() as conn:
            day = counted_on(year, month, self.clock.today(branch.timezone))
            claimed = tuple(await post_repo.held_on(conn, member_id, day)) if board.rulebook.posts else ()
            last = await _last_month(conn, branch, board.items, year, month, found.member)
        sheet = Sheet(member=found.member, posts=found.posts, current=found.current, outside=found.outside,
                      refusal=found.refusal, claimed=claimed, last_month=last)
        return board, sheet

    async def _sheets(self, conn: Connection, branch: Branch, rulebook: Rulebook, year: int, month: int,
                      actor: Actor | None) -> list[Sheet]:
        """Everyone in the month; with an actor, why they may not assess each member (None: they may)."""
        current = await assessment_repo.current(conn, branch.id, month_key(year, month))
        outside = await _outside(conn, branch, assessed_items(rulebook), year, month)
        claims = await post_repo.claims_of_branch(conn, branch.id)
        day = counted_on(year, month, self.clock.today(branch.timezone))
        sheets = []
        for member in await _members_in(conn, branch, year, month):
            refusal = None if actor is None else await _refusal(conn, branch, actor, member)
            sheets.append(Sheet(
                member=member, posts=posts_held_on(rulebook, claims.get(member.id, []), day), refusal=refusal,
                current={code: a for (mid, code), a in current.items() if mid == member.id},
                outside={code: tuple(rows) for (mid, code), rows in outside.items() if mid == member.id},
            ))
        return sheets

    def _items(self, branch: Branch) -> tuple[Rulebook, list[Item]]:
        rulebook = rulebook_of(branch)
        items = assessed_items(rulebook)
        if not items:
            raise InvalidInput("assessment.none_in_scheme")
        return rulebook, items

    # --- writing ---------------------------------------------------------------------------------

    async def assess(self, branch: Branch, actor: Actor, year: int, month: int, member_id: int, item_index: int,
                     value: Decimal, expected_revision: int | None, reason: str) -> Written:
        """Give one item's value; ``expected_revision`` is the revision the screen showed (a stale or
        repeated press is refused, nothing written). The same value again changes nothing."""
        self.check_month(branch, year, month)
        rulebook, items = self._items(branch)
        if not 0 <= item_index < len(items):
            raise InvalidInput("assessment.bad_item")
        item = items[item_index]
        reason = _reason(reason)
        async with self.db.transaction() as conn:
            me, target = await _assessor_of(conn, branch, actor, member_id, year, month)
            posts = await self._posts(conn, branch, rulebook, target, year, month)
            if not valid_value(item, value, posts):
                low, high = item.range_for(posts)  # type: ignore[misc]
                raise InvalidInput("assessment.bad_value", low=low, high=high)
            before = await _sheet_of(conn, branch, rulebook, year, month, target, posts)
            current = before.current.get(item.code)
            if expected_revision is not None and expected_revision != before.revision(item):
                if before.assessed(item) and before.value(item) == value:
                    raise AlreadyDone("assessment.already", name=target.name)
                raise AlreadyDone("assessment.changed", name=target.name)
            changed = not before.assessed(item) or before.value(item) != value or bool(before.outside.get(item.code))
            if changed:
                await _write(conn, branch, target, year, month, item, value, current, me.id, reason, is_default=False,
                             replacing=before.outside.get(item.code, ()))
            after = await _sheet_of(conn, branch, rulebook, year, month, target, posts)
        return Written(sheet=after, item=item, value=value, changed=changed)

    async def same_as_last_month(self, branch: Branch, actor: Actor, year: int, month: int, member_id: int,
                                 reason: str) -> tuple[list[Item], list[Item]]:
        """Give the member last month's values for the items not yet assessed this month.

        Returns (items given, items with no usable value last month). Items already assessed are kept.
        """
        self.check_month(branch, year, month)
        rulebook, items = self._items(branch)
        reason = _reason(reason)
        given, missing = [], []
        async with self.db.transaction() as conn:
            me, target = await _assessor_of(conn, branch, actor, member_id, year, month)
            posts = await self._posts(conn, branch, rulebook, target, year, month)
            sheet = await _sheet_of(conn, branch, rulebook, year, month, target, posts)
            last = await _last_month(conn, branch, items, year, month, target)
            for item in sheet.missing(items):
                value = last.get(item.code)
                if value is None or not valid_value(item, value, posts):
                    missing.append(item)
                    continue
                await _write(conn, branch, target, year, month, item, value, sheet.current.get(item.code), me.id, reason,
                             is_default=False)
                given.append(item)
        return given, missing

    async def everyone_good(self, branch: Branch, actor: Actor, year: int, month: int, reason: str) -> tuple[int, list[Member]]:
        """Every item nobody has assessed yet, for everyone the actor may assess: the middle of "good".

        Returns (values written, members skipped because the actor may not assess them). A second press
        finds nothing left to write.
        """
        self.check_month(branch, year, month)
        rulebook, items = self._items(branch)
        reason = _reason(reason)
        written, skipped = 0, []
        async with self.db.transaction() as conn:
            me = await require_role(conn, branch.id, actor.user_id, SCORERS)
            for sheet in await self._sheets(conn, branch, rulebook, year, month, actor):
                todo = sheet.missing(items)
                if not todo:
                    continue
                if not sheet.may_assess:
                    skipped.append(sheet.member)
                    continue
                for item in todo:
                    await _write(conn, branch, sheet.member, year, month, item, good_value(item, sheet.posts),
                                 sheet.current.get(item.code), me.id, reason, is_default=False)
                    written += 1
        return written, skipped

    async def apply_defaults(self, branch: Branch, year: int, month: int, reason: str) -> list[int]:
        """At the notice: every item nobody assessed gets its default; returns the members defaulted now.

        Safe to repeat: an item that has any value (a person's or a default) is left alone; one whose value
        was withdrawn (reversed) has none, and gets the default.
        """
        rulebook = rulebook_of(branch)
        items = assessed_items(rulebook)
        defaulted: list[int] = []
        if not items:
            return defaulted
        reason = _reason(reason)
        async with self.db.transaction() as conn:
            for sheet in await self._sheets(conn, branch, rulebook, year, month, None):
                todo = [i for i in items if sheet.value(i) is None]
                for item in todo:
                    await _write(conn, branch, sheet.member, year, month, item, default_value(item, rulebook, sheet.posts),
                                 None, None, reason, is_default=True)
                if todo:
                    defaulted.append(sheet.member.id)
        return defaulted

    async def defaulted_members(self, branch_id: int, year: int, month: int) -> list[int]:
        """Member ids who were given the items' defaults for that month because nobody assessed them.

        The monthly notice says so (contract between the assessment and the notice).
        """
        async with self.db.read() as conn:
            return await assessment_repo.defaulted(conn, branch_id, month_key(year, month))

    # --- the reminder ----------------------------------------------------------------------------

    async def unassessed(self, branch: Branch, year: int, month: int) -> list[Member]:
        """Members with an item no person has assessed in the month (for the reminder; no actor)."""
        rulebook = rulebook_of(branch)
        items = assessed_items(rulebook)
        if not items:
            return []
        async with self.db.read() as conn:
            sheets = await self._sheets(conn, branch, rulebook, year, month, None)
        return [s.member for s in sheets if s.missing(items)]

    async def reminder_recipients(self, branch: Branch, unassessed: list[Member]) -> list[Member]:
        """The recorders (else the secretary and deputy); the secretary and deputy too when a recorder is
        unassessed (``recipients`` about that recorder)."""
        async with self.db.read() as conn:
            chosen = await recipients(conn, branch.id)
            roles = await member_repo.roles_by_member(conn, branch.id)
            for member in unassessed:
                if Role.RECORDER in roles.get(member.id, set()):
                    chosen += await recipients(conn, branch.id, about=member)
        unique = {m.id: m for m in chosen}
        return list(unique.values())

    async def _posts(self, conn: Connection, branch: Branch, rulebook: Rulebook, member: Member, year: int,
                     month: int) -> int:
        """The posts the member counts in the month assessed."""
        return await member_posts(conn, rulebook, member.id, on=counted_on(year, month, self.clock.today(branch.timezone)))


# --- helpers ------------------------------------------------------------------------------------------


def _month_refusal(exc: MonthError) -> None:
    if exc.reason == "future":
        raise InvalidInput("assessment.month_future") from None
    if exc.reason == "too_old":
        raise InvalidInput("assessment.month_too_old") from None
    raise InvalidInput("assessment.bad_month") from None


def _reason(reason: str) -> str:
    return clean_text(reason)[:REASON_MAX]


async def _may_assess(conn: Connection, branch: Branch, actor: Actor, target: Member) -> Member:
    """The actor's member row if they may assess ``target`` (``may_score``, checked on every press)."""
    try:
        return await may_score(conn, branch.id, actor.user_id, target)
    except NotAuthorized as exc:
        raise NotAuthorized(_REFUSALS.get(exc.key, exc.key), **exc.params) from None


async def _refusal(conn: Connection, branch: Branch, actor: Actor, target: Member) -> str | None:
    """Why the actor may not assess ``target`` (an error key), None when they may."""
    try:
        await _may_assess(conn, branch, actor, target)
    except NotAuthorized as exc:
        return exc.key
    return None


async def _assessor_of(conn: Connection, branch: Branch, actor: Actor, member_id: int, year: int,
                       month: int) -> tuple[Member, Member]:
    """(the actor, the member assessed): a scorer of the branch first, then a member of the month they may assess."""
    await require_role(conn, branch.id, actor.user_id, SCORERS)
    target = await _target(conn, branch, member_id, year, month)
    return await _may_assess(conn, branch, actor, target), target


async def _members_in(conn: Connection, branch: Branch, year: int, month: int) -> list[Member]:
    """Members scored in the month: they belonged to the branch then and were not exempt (the month's
    state, bot.domain.states, whatever their state now)."""
    chains = await chains_near_branch(conn, branch.id)  # a member who left and came back: each stay
    histories = await state_repo.of_branch(conn, branch.id)
    return [m for m in await member_repo.listing(conn, branch.id)
            if not exempt_in(histories, m.id, year, month) and any(in_month(s.first, s.last, year, month) for s in chains.own(m))]


async def _target(conn: Connection, branch: Branch, member_id: int, year: int, month: int) -> Member:
    target = await member_repo.by_id(conn, member_id)
    if target is None or target.branch_id != branch.id or target.status is not MemberStatus.APPROVED:
        raise NotFound("assessment.member_not_listed")
    if exempt_in(await state_repo.of_members(conn, [target.id]), target.id, year, month):
        raise InvalidInput("assessment.not_scored", name=target.name)
    if not any(in_month(s.first, s.last, year, month) for s in (await chain_of_member(conn, target.id)).own(target)):
        raise InvalidInput("assessment.not_in_month", name=target.name)
    return target


async def _outside(conn: Connection, branch: Branch, items: list[Item], year: int, month: int,
                   member_id: int | None = None) -> dict[tuple[int, str], list[LedgerRow]]:
    _, first, last = period_of_month(year, month, Period.MONTH)
    rows = await assessment_repo.item_rows(conn, branch.id, first, last,
                                           [i.code for i in items], member_id)
    return outside_rows(rows)


async def _sheet_of(conn: Connection, branch: Branch, rulebook: Rulebook, year: int, month: int, member: Member,
                    posts: int) -> Sheet:
    current = await assessment_repo.current_of_member(conn, branch.id, member.id, month_key(year, month))
    outside = await _outside(conn, branch, assessed_items(rulebook), year, month, member.id)
    return Sheet(member=member, posts=posts, current=current,
                 outside={code: tuple(rows) for (_, code), rows in outside.items()})


async def _last_month(conn: Connection, branch: Branch, items: list[Item], year: int, month: int,
                      member: Member) -> dict[str, Decimal]:
    """The member's values in the month before (whoever gave them), by item."""
    year, month = add_months(year, month, -1)
    current = await assessment_repo.current_of_member(conn, branch.id, member.id, month_key(year, month))
    outside = await _outside(conn, branch, items, year, month, member.id)
    sheet = Sheet(member=member, posts=0, current=current, outside={code: tuple(r) for (_, code), r in outside.items()})
    return {i.code: v for i in items if (v := sheet.value(i)) is not None}


async def _write(conn: Connection, branch: Branch, member: Member, year: int, month: int, item: Item, value: Decimal,
                 current: Assessed | None, actor_id: int | None, reason: str, *, is_default: bool,
                 replacing: tuple[LedgerRow, ...] = ()) -> LedgerRow:
    """The next revision: the current one's ledger row (and any other row of the item in the month) reversed,
    the new row appended, the revision noted."""
    revision = (current.revision if current else 0) + 1
    occurred_on: date = last_day(year, month)
    taken_back: list[LedgerRow] = []
    if current is not None and not current.withdrawn:  # a withdrawn revision was reversed already
        original = await ledger_repo.by_id(conn, current.ledger_id)
        taken_back += [original] if original is not None else []
    taken_back += replacing  # e.g. a /record entry of the item: the assessment sets the month's value
    for old in taken_back:
        await ledger_repo.reverse(conn, old, reference=f"rev:{old.id}", actor_id=actor_id, reason=reason or None)
    row = await ledger_repo.append(conn, NewLedgerRow(
        branch_id=branch.id, member_id=member.id, item_code=item.code, value=value, occurred_on=occurred_on,
        source=Source.AUTOMATIC if is_default else Source.RECORDER, reference=reference(year, month, item.code, revision),
        actor_id=actor_id, reason=reason or None,
    ))
    if row is None:
        raise AlreadyDone("assessment.already", name=member.name)
    if not await assessment_repo.add(conn, branch_id=branch.id, member_id=member.id, month=month_key(year, month),
                                     item_code=item.code, revision=revision, value=value, ledger_id=row.id,
                                     actor_id=actor_id, is_default=is_default):
        raise AlreadyDone("assessment.already", name=member.name)
    return row
