"""The town (镇党委 / 党总支): its administrators, branches joining with a code, the dashboard and
the drill-down (read-only: the town never writes a branch's ledger), reminders and the monthly digest.

Who may do what, checked against the database on every call:
- the bot's operator (the command line, or a Telegram id in the ``town_operators`` setting) creates
  towns and names their first administrators;
- a town administrator adds other administrators, makes one-time join codes, reads the dashboard,
  and may detach a branch from the town;
- a branch's secretary (or deputy) joins the branch to a town with a code.

Functions other features rely on (names kept stable): ``is_admin``, ``require_admin``,
``town_of_branch``, ``towns_of``, ``admins``, ``branches``, and the appeal counter hook
``appeal_counter`` (a coroutine ``(conn, town_id) -> {branch_id: count}``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.domain.calendar import add_months, notice_moment, previous_periods
from bot.domain.records import Branch, Member, MemberStatus
from bot.domain.text import clean_name
from bot.domain.town import (
    CODE_VALID,
    OVERDUE_DAYS_DEFAULT,
    BranchFigures,
    CodeState,
    Town,
    TownAdmin,
    TownCode,
    code_state,
    new_code,
    normalise_code,
    notice_state,
)
from bot.errors import AlreadyDone, InvalidInput, NotAuthorized, NotFound
from bot.i18n import LANGUAGES
from bot.services.branches import MANAGERS, Actor, check_timezone, require_role, rulebook_of
from bot.services.calendar import calendar_of
from storage import branches as branch_repo
from storage import members as member_repo
from storage import town_review as review_repo
from storage import towns as town_repo
from storage.db import Connection, Database
from storage.town_review import TownAppeal, YearReview

AppealCounter = Callable[[Connection, int], Awaitable[dict[int, int]]]
TOWN_NAME_MAX = 64


@dataclass(frozen=True)
class Dashboard:
    town: Town
    branches: list[BranchFigures]
    now: datetime
    reopened: dict[int, int] = field(default_factory=dict)  # branch id → a filed year it re-opened (filing void)


@dataclass(frozen=True)
class BranchView:
    """One branch as the town sees it (read-only)."""

    town: Town
    branch: Branch
    figures: BranchFigures
    # Each approved member and their year figure as the branch's last sent notice published it. The town
    # reviews what the branch published (seed 004: 公示无异议后报镇组织办备案; the town reviews the branch's
    # work and never reads or writes its ledger), so these are not live figures: a correction after that
    # notice shows in the next one. The view says so, names the notice and its year, and while the notice's
    # objection window is open, until when.
    members: list[tuple[Member, str | None]]
    scores_period: str | None  # the notice those figures come from
    pending_joins: int
    scores_year: int | None = None  # the year of that notice's period (last year's December in January)
    scores_closes: datetime | None = None  # the end of that notice's objection window
    recent_notices: list[dict] = field(default_factory=list)
    reopened: int | None = None  # a year the branch filed and has re-opened since (the filing is void)


@dataclass(frozen=True)
class Detached:
    """A branch that left its town, and what was closed with it (the secretaries are told)."""

    branch: Branch
    town: Town
    reviews: list[YearReview]  # year-end reviews that were waiting for the town (now 'closed')
    appeals: list[TownAppeal]  # appeals the town had not decided (now 'closed')
    told: list[Member]  # the branch's secretary and deputies with a Telegram account
    # appeal id → its appellant, still an approved member with a Telegram account: their objection may
    # be appealed again (its appealed flag was cleared with the closing), and they are told how
    appellants: dict[int, Member] = field(default_factory=dict)
    # corrections the town ordered and the branch has not written: they stand (see TownService.detach), and
    # the secretaries are reminded of them with the button to write each
    orders: list[TownAppeal] = field(default_factory=list)


@dataclass(frozen=True)
class Joined:
    """A branch that joined a town, and the appeals it brought (made while no town could decide them)."""

    town: Town
    appeals: list[TownAppeal] = field(default_factory=list)  # now open appeals to this town, by id
    appellants: dict[int, Member] = field(default_factory=dict)  # appeal id → its appellant (approved, reachable)


@dataclass(frozen=True)
class Overdue:
    """A branch's overdue work for the reminder to its secretaries."""

    declarations: list[tuple[int, datetime]]  # (id, created_at), oldest first
    notice_key: str | None  # the period whose notice is owed and not in the group


def _dt(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def expected_notice(branch: Branch, now: datetime) -> tuple[str, datetime] | None:
    """The last ended review period's key and its notice moment, if the branch existed in it."""
    zone = ZoneInfo(branch.timezone)
    today = now.astimezone(zone).date()
    period = rulebook_of(branch).settings.review_period
    found = previous_periods(today, period, 1)
    if not found:
        return None
    key, _first, last = found[0]
    if last < branch.created_at.astimezone(zone).date():
        return None
    return key, notice_moment(last, calendar_of(branch), branch.timezone)


class TownService:
    def __init__(self, db: Database, clock: Clock, operators: frozenset[int] = frozenset()):
        self.db, self.clock = db, clock
        self.operators = operators  # Telegram ids allowed to create towns in chat (setting town_operators)
        self.overdue_days = OVERDUE_DAYS_DEFAULT  # setting town_overdue_days
        self.appeal_counter: AppealCounter = town_repo.appeal_counts

    def configure(self, operators: list[int] | frozenset[int], overdue_days: int = OVERDUE_DAYS_DEFAULT) -> None:
        """From the settings: TOWN_OPERATORS and TOWN_OVERDUE_DAYS."""
        self.operators, self.overdue_days = frozenset(operators), overdue_days

    def _now(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    # --- who is who (stable: the town-review feature calls these) -----------------------------------------

    async def is_admin(self, town_id: int, user_id: int) -> bool:
        async with self.db.read() as conn:
            return await town_repo.is_admin(conn, town_id, user_id)

    async def require_admin(self, town_id: int, user_id: int) -> Town:
        """The town, if ``user_id`` administers it; otherwise NotAuthorized (or NotFound)."""
        async with self.db.read() as conn:
            town = await town_repo.by_id(conn, town_id)
            if town is None:
                raise NotFound("town.not_found")
            if not await town_repo.is_admin(conn, town_id, user_id):
                raise NotAuthorized("town.admins_only")
        return town

    async def town_of_branch(self, branch_id: int) -> Town | None:
        async with self.db.read() as conn:
            return await town_repo.town_of_branch(conn, branch_id)

    async def towns_of(self, user_id: int) -> list[Town]:
        """The towns this Telegram user administers."""
        async with self.db.read() as conn:
            return await town_repo.towns_of_admin(conn, user_id)

    async def admins(self, town_id: int) -> list[TownAdmin]:
        async with self.db.read() as conn:
            return await town_repo.admins(conn, town_id)

    async def branches(self, town_id: int) -> list[Branch]:
        async with self.db.read() as conn:
            return await town_repo.branches(conn, town_id)

    async def by_name(self, name: str) -> Town:
        async with self.db.read() as conn:
            town = await town_repo.by_name(conn, clean_name(name))
            if town is None and name.isdigit():
                town = await town_repo.by_id(conn, int(name))
        if town is None:
            raise NotFound("town.not_found")
        return town

    async def all_towns(self) -> list[tuple[Town, int, list[TownAdmin]]]:
        async with self.db.read() as conn:
            towns = await town_repo.all_towns(conn)
            counts = await town_repo.branch_counts(conn)
            return [(t, counts.get(t.id, 0), await town_repo.admins(conn, t.id)) for t in towns]

    def is_operator(self, user_id: int) -> bool:
        return user_id in self.operators

    # --- the operator and administrators ------------------------------------------------------------------

    async def create(self, name: str, *, admin_id: int, admin_name: str | None = None, created_by: int,
                     timezone: str = "Asia/Shanghai", language: str = "zh") -> Town:
        """A town with its first administrator. The caller is the operator (the command line, or
        ``create_in_chat`` after checking the operators list)."""
        name = clean_name(name)[:TOWN_NAME_MAX]
        if not name:
            raise InvalidInput("town.name_required")
        check_timezone(timezone)
        if language not in LANGUAGES:
            raise InvalidInput("setup.bad_language", language=language)
        async with self.db.transaction() as conn:
            town = await town_repo.create(conn, name=name, timezone=timezone, language=language, created_by=created_by)
            if town is None:
                raise AlreadyDone("town.exists", name=name)
            await town_repo.add_admin(conn, town.id, admin_id, clean_name(admin_name) or None, added_by=created_by)
        return town

    async def create_in_chat(self, actor: Actor, name: str) -> Town:
        """/newtown: an operator named in the settings creates a town and becomes its administrator."""
        if not self.is_operator(actor.user_id):
            raise NotAuthorized("town.operators_only")
        return await self.create(name, admin_id=actor.user_id, admin_name=actor.name, created_by=actor.user_id,
                                 language=actor.language if actor.language in LANGUAGES else "zh")

    async def add_admin(self, town_id: int, actor: Actor | None, user_id: int, name: str | None = None) -> bool:
        """Another administrator of the town; ``actor`` None is the operator (the command line).
        True when added, False when they already were one."""
        async with self.db.transaction() as conn:
            if await town_repo.by_id(conn, town_id) is None:
                raise NotFound("town.not_found")
            if actor is not None and not await town_repo.is_admin(conn, town_id, actor.user_id):
                raise NotAuthorized("town.admins_only")
            return await town_repo.add_admin(conn, town_id, user_id, clean_name(name) or None,
                                             added_by=actor.user_id if actor else 0)

    async def remove_admin(self, town_id: int, actor: Actor | None, user_id: int) -> bool:
        """An administrator leaves the town's administration; the last one is never removed (a town
        nobody administers could only be reached by the operator again)."""
        async with self.db.transaction() as conn:
            if actor is not None and not await town_repo.is_admin(conn, town_id, actor.user_id):
                raise NotAuthorized("town.admins_only")
            if len(await town_repo.admins(conn, town_id)) <= 1:
                raise InvalidInput("town.last_admin")
            return await town_repo.remove_admin(conn, town_id, user_id)

    async def admin_reachable(self, town_id: int, user_id: int, reachable: bool) -> None:
        async with self.db.transaction() as conn:
            await town_repo.set_admin_reachable(conn, town_id, user_id, reachable)

    async def seen(self, user_id: int) -> None:
        """The user wrote to the bot: reachable again wherever they administer a town."""
        async with self.db.transaction() as conn:
            await town_repo.set_admin_reachable_user(conn, user_id, True)

    # --- branches joining -----------------------------------------------------------------------------

    async def make_code(self, town_id: int, actor: Actor) -> TownCode:
        """A one-time join code, valid for CODE_VALID."""
        now = self._now()
        async with self.db.transaction() as conn:
            if not await town_repo.is_admin(conn, town_id, actor.user_id):
                raise NotAuthorized("town.admins_only")
            for _ in range(5):  # a clash among 32^8 codes is unlikely; try a few before giving up
                text = new_code()
                if await town_repo.add_code(conn, code=text, town_id=town_id, created_by=actor.user_id,
                                            expires_at=now + CODE_VALID):
                    found = await town_repo.code(conn, text)
                    assert found is not None
                    return found
        raise InvalidInput("town.code_failed")

    async def join(self, branch: Branch, actor: Actor, code_text: str) -> Town:
        """The branch joins the code's town (``join_town``); the town."""
        return (await self.join_town(branch, actor, code_text)).town

    async def join_town(self, branch: Branch, actor: Actor, code_text: str) -> Joined:
        """The branch joins the code's town: the code is spent and the branch's town set in one
        transaction, each by a conditional update (a repeat or a race changes nothing twice).

        In the same transaction the branch's appeals (申诉) that no town could decide — made while it was in
        no town: the objection's appealed flag set and no live town appeal — become open appeals to this
        town, with the appellant and the reason they gave (seed 004: the member may appeal to the higher
        organisation, which investigates and answers; the branch now has one). Asking the members to appeal
        again would lose nothing they could not retype, but would leave the appeals they made unanswered
        unless each one noticed; forwarding keeps them. An appeal the town decides is final as any other."""
        code = normalise_code(code_text)
        if not code:
            raise InvalidInput("town.code_required")
        now = self._now()
        async with self.db.transaction() as conn:
            await require_role(conn, branch.id, actor.user_id, MANAGERS)
            current = await town_repo.town_of_branch(conn, branch.id)
            if current is not None:
                raise AlreadyDone("town.already_member", town=current.name)
            found = await town_repo.code(conn, code)
            if found is None:
                raise InvalidInput("town.code_unknown", code=code)
            state = code_state(found, now)
            if state is CodeState.USED:
                raise InvalidInput("town.code_used", code=code)
            if state is CodeState.EXPIRED:
                raise InvalidInput("town.code_expired", code=code)
            town_id = await town_repo.use_code(conn, code, branch.id, now)
            if town_id is None:  # spent or expired between the read and the write
                raise InvalidInput("town.code_used", code=code)
            if not await town_repo.join(conn, branch.id, town_id):
                raise AlreadyDone("town.already_member", town="")  # rolled back with the code
            town = await town_repo.by_id(conn, town_id)
            appeals = await review_repo.forward_branch_appeals(conn, branch.id, town_id, now)
            appellants = await _reachable_appellants(conn, appeals)
        assert town is not None
        return Joined(town=town, appeals=appeals, appellants=appellants)

    async def detach(self, town_id: int, actor: Actor | None, branch_id: int) -> Detached:
        """A branch leaves the town: decided by the town (an administrator) or the operator, never by
        the branch alone, so a branch cannot slip out of review. It may then join another town.

        In the same transaction, what still waits for this town's decision is closed: the branch's
        pending year-end review (else the waiting-attempt index would block its next town's review,
        and nobody could decide it) and its open appeals (nobody could decide them any more).

        A correction the town already ordered stands and stays for the branch to write (``orders``): the town
        decided while the branch was its own, a town's decision is final (one live appeal per objection), the
        appellant and the member concerned were told it was ordered, and leaving — the town's act — must not
        undo a decision the branch has yet to carry out. The secretaries are reminded with its button; once
        written, the appellant and the town that ordered it are told, as for a branch still in the town.

        A closed appeal stays as history, and its objection may be appealed again (migration 0023): the
        objection's appealed flag is cleared here, so the objector or the member concerned can /appeal
        anew — to the town the branch is in by then (a new appeal), or to the branch alone."""
        now = self._now()
        async with self.db.transaction() as conn:
            if actor is not None and not await town_repo.is_admin(conn, town_id, actor.user_id):
                raise NotAuthorized("town.admins_only")
            town = await town_repo.by_id(conn, town_id)
            if town is None:
                raise NotFound("town.not_found")
            if not await town_repo.detach(conn, branch_id, town_id):
                raise NotFound("town.branch_not_in_town")
            reviews = await review_repo.close_reviews_of_branch(conn, branch_id, town_id, now)
            appeals = await review_repo.close_appeals_of_branch(conn, branch_id, town_id, now)
            reopened = set(await review_repo.reopen_objections(conn, [a.objection_id for a in appeals]))
            appellants = await _reachable_appellants(conn, [a for a in appeals if a.objection_id in reopened])
            orders = await review_repo.ordered_corrections_of_branch(conn, branch_id, town_id)
            branch = await branch_by_id(conn, branch_id)
            told = [m for m in await member_repo.holders(conn, branch_id, MANAGERS) if m.user_id is not None]
        return Detached(branch=branch, town=town, reviews=reviews, appeals=appeals, told=told, appellants=appellants,
                        orders=orders)

    # --- the dashboard ----------------------------------------------------------------------------------

    async def _figures(self, conn: Connection, town: Town, branches: list[Branch], now: datetime) -> list[BranchFigures]:
        """Every branch's figures from a fixed number of grouped queries (independent of the branch count)."""
        expected = {b.id: expected_notice(b, now) for b in branches}
        keys = {e[0] for e in expected.values() if e is not None}
        scored = await town_repo.scored_counts(conn, town.id)
        pending = await town_repo.pending_declarations(conn, town.id)
        notices = await town_repo.notices_for(conn, town.id, keys)
        # the unconfirmed lines of the very notice the branch's line names (its last ended period), not a sum
        # over the year's notices shown under one period's name
        unconfirmed = await town_repo.unconfirmed_counts(conn, town.id, keys)
        objections = await town_repo.open_objection_counts(conn, town.id)
        appeals = await self.appeal_counter(conn, town.id)
        grades = await town_repo.latest_grades(conn, town.id)
        figures = []
        for branch in branches:
            owed = expected[branch.id]
            waiting, oldest = pending.get(branch.id, (0, None))
            year, final, bands = grades.get(branch.id, (None, False, {}))
            order = [band.code for band in rulebook_of(branch).bands]
            distribution = tuple(sorted(bands.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
            figures.append(BranchFigures(
                branch_id=branch.id, title=branch.title, reachable=branch.reachable, scored=scored.get(branch.id, 0),
                pending_declarations=waiting, oldest_pending=_dt(oldest),
                notice_period=owed[0] if owed else None,
                notice_state=notice_state(owed[0] if owed else None, owed[1] if owed else None, now,
                                          notices.get((branch.id, owed[0])) if owed else None),
                unconfirmed=unconfirmed.get((branch.id, owed[0]), 0) if owed else 0, open_objections=objections.get(branch.id, 0),
                appeals=appeals.get(branch.id, 0), grade_year=year, grade_final=final, distribution=distribution,
            ))
        return figures

    @staticmethod
    async def _reopened(conn: Connection, town: Town, now: datetime) -> dict[int, int]:
        """branch id → a year (last year or this one, in the town's timezone) the branch filed with the town
        and re-opened since: its newest filing's round is no longer final. One query per year, not per branch."""
        this_year = now.astimezone(ZoneInfo(town.timezone)).year
        found: dict[int, int] = {}
        for year in (this_year - 1, this_year):
            for branch_id, filing in (await review_repo.filings(conn, town.id, year)).items():
                if filing.round_status != "final":
                    found[branch_id] = year
        return found

    async def dashboard(self, town_id: int, user_id: int) -> Dashboard:
        now = self._now()
        async with self.db.read() as conn:
            town = await town_repo.by_id(conn, town_id)
            if town is None:
                raise NotFound("town.not_found")
            if not await town_repo.is_admin(conn, town_id, user_id):
                raise NotAuthorized("town.admins_only")
            branches = await town_repo.branches(conn, town_id)
            figures = await self._figures(conn, town, branches, now)
            reopened = await self._reopened(conn, town, now)
        return Dashboard(town=town, branches=figures, now=now, reopened=reopened)

    async def branch_view(self, town_id: int, user_id: int, branch_id: int) -> BranchView:
        now = self._now()
        async with self.db.read() as conn:
            town = await town_repo.by_id(conn, town_id)
            if town is None:
                raise NotFound("town.not_found")
            if not await town_repo.is_admin(conn, town_id, user_id):
                raise NotAuthorized("town.admins_only")
            branch = await branch_by_id(conn, branch_id)
            if branch.town_id != town_id:
                raise NotFound("town.branch_not_in_town")
            # The whole-town queries are grouped; for one branch they are cheap enough and keep one code path.
            figures = next(f for f in await self._figures(conn, town, [branch], now) if f.branch_id == branch_id)
            notice, scores = await town_repo.latest_year_scores(conn, branch_id)
            members = await member_repo.listing(conn, branch_id)
            pending_joins = await town_repo.pending_joins(conn, branch_id)
            recent = await town_repo.recent_notices(conn, branch_id)
            reopened = (await self._reopened(conn, town, now)).get(branch_id)
        return BranchView(town=town, branch=branch, figures=figures, members=[(m, scores.get(m.id)) for m in members],
                          scores_period=str(notice["period_key"]) if notice else None,
                          scores_year=date.fromisoformat(str(notice["first_day"])[:10]).year if notice else None,
                          scores_closes=_dt(notice["closes_at"]) if notice else None,
                          pending_joins=pending_joins, recent_notices=recent, reopened=reopened)

    # --- reminders and the digest ---------------------------------------------------------------------------

    async def overdue(self, branch: Branch, now: datetime) -> Overdue:
        """What a branch in a town has left undone: declarations pending longer than ``overdue_days``
        and the last period's notice, owed and not in the group."""
        async with self.db.read() as conn:
            # in UTC: the rows' created_at are UTC text, compared as text (a "now" in another zone was 8 hours off)
            cutoff = (now - timedelta(days=self.overdue_days)).astimezone(UTC)
            declarations = await town_repo.overdue_declarations(conn, branch.id, cutoff)
            owed = expected_notice(branch, now)
            notice_key = None
            if owed is not None and now >= owed[1] + timedelta(hours=1):
                found = await town_repo.notices_for(conn, branch.town_id or 0, {owed[0]})
                late_sent = found.get((branch.id, owed[0]))
                if late_sent is None or not late_sent[1]:
                    notice_key = owed[0]
        return Overdue(declarations=[(i, _dt(c)) for i, c in declarations], notice_key=notice_key)  # type: ignore[misc]

    async def secretaries(self, branch: Branch) -> list[Member]:
        async with self.db.read() as conn:
            return [m for m in await member_repo.holders(conn, branch.id, MANAGERS) if m.user_id is not None]

    async def month_digest(self, town: Town, year: int, month: int) -> tuple[list[BranchFigures], dict[int, dict[str, int]]]:
        """The month's figures per branch for the town's digest (dates in the town's timezone)."""
        zone = ZoneInfo(town.timezone)
        first = date(year, month, 1)
        next_year, next_month = add_months(year, month, 1)
        last = date(next_year, next_month, 1) - timedelta(days=1)
        start = datetime(year, month, 1, tzinfo=zone).astimezone(UTC).isoformat(timespec="seconds")
        end = datetime(next_year, next_month, 1, tzinfo=zone).astimezone(UTC).isoformat(timespec="seconds")
        now = self._now()
        async with self.db.read() as conn:
            branches = await town_repo.branches(conn, town.id)
            figures = await self._figures(conn, town, branches, now)
            month = await town_repo.month_figures(conn, town.id, first.isoformat(), last.isoformat(), start, end)
        return figures, month

    async def digest_listers(self) -> list[tuple[Town, int]]:
        """Every town with branches and the branch whose schedule lists its digest (one query)."""
        async with self.db.read() as conn:
            return await town_repo.digest_listers(conn)

    async def effect_states(self, kind: str, keys: list[str]) -> dict[tuple[int, str], tuple[str, int]]:
        async with self.db.read() as conn:
            return await town_repo.effect_states(conn, kind, keys)

    async def claim_send(self, town_id: int, kind: str, key: str, user_id: int) -> bool:
        async with self.db.transaction() as conn:
            return await town_repo.claim_send(conn, town_id, kind, key, user_id)

    async def finish_send(self, town_id: int, kind: str, key: str, user_id: int, reached: bool) -> None:
        async with self.db.transaction() as conn:
            await town_repo.finish_send(conn, town_id, kind, key, user_id, "sent" if reached else "unreachable")
            if not reached:
                await town_repo.set_admin_reachable(conn, town_id, user_id, False)

    async def release_send(self, town_id: int, kind: str, key: str, user_id: int) -> None:
        async with self.db.transaction() as conn:
            await town_repo.release_send(conn, town_id, kind, key, user_id)


async def _reachable_appellants(conn: Connection, appeals: list[TownAppeal]) -> dict[int, Member]:
    """appeal id → its appellant, when still an approved member with a Telegram account (they are told)."""
    found: dict[int, Member] = {}
    for appeal in appeals:
        person = await member_repo.by_id(conn, appeal.appellant_id)
        if person is not None and person.user_id is not None and person.status is MemberStatus.APPROVED:
            found[appeal.id] = person
    return found


async def branch_by_id(conn: Connection, branch_id: int) -> Branch:
    branch = await branch_repo.by_id(conn, branch_id)
    if branch is None:
        raise NotFound("branch.not_found")
    return branch


__all__ = ["BranchView", "Dashboard", "Detached", "Joined", "Overdue", "TownService", "expected_notice"]
