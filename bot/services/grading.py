"""Year end (评定/定级): /grade's preview, the annual publicity (≥ 7 days), finalising and locking the year.

The flow of a year (DOMAIN "The cycle" 8):

1. **Preview** (``screen`` / ``preview``): every member's year per the branch's rulebook
   (``bot.domain.grading.grade`` over ``MemberYear``s built from the database), with warnings (open
   objections, unconfirmed and unpublished months, members not assessed, democratic evaluations
   missing). Where a tie straddles the quota cut (浠水, DOMAIN decision 4) the secretary picks who gets
   the remaining places; the pick travels as a bitmask over the tied members (sorted by id).
2. **Publicity** (``publicise``): the secretary confirms exactly what was shown (a fingerprint of the
   result travels with the button: if anything changed since, the confirmation is refused and the
   fresh preview is shown). One transaction records the round, the published results, and a notice
   (period key ``YYYY``, ``YYYY-R2`` after a re-open) in the notices tables, with every effective entry
   of the year and every scored member: objections, confirmations, disputes, decisions and appeals then
   work exactly as for the monthly notice (``NoticeService``). The window is
   max(7, ``settings.publicity_days``) days from when the notice's first message reached the group.
3. **Finalise** (``finalise``), after the window, with no objection of the year still open: the result
   is recomputed (a withdrawn entry changed it), stored as the snapshot (``grade_results``, stage
   ``final``) and the year is locked: a trigger refuses every ledger row dated in it, whichever feature
   writes it (``storage.ledger.append`` turns that into ``InvalidInput("year.locked")``).
4. **Re-open** (``reopen``): the secretary, with a reason, logged; the snapshot stays as history and a
   new round (preview, publicity, finalise) is needed.

Only the secretary grades (not the deputy): every action re-checks the role in the database.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.domain.assessment import counted_on, month_key, posts_held_on
from bot.domain.calendar import period_of_month
from bot.domain.grading import DEMOCRATIC_MISSING, GradeLine, GradeResult, MemberYear, grade, year_facts
from bot.domain.notice import Notice, in_notice, objectable
from bot.domain.records import Branch, Member, MemberState, MemberStatus, Role
from bot.domain.rulebook import ItemKind, Period, Rulebook, YearMethod
from bot.domain.scoring import ZERO, effective, year_score
from bot.domain.text import REASON_MAX, clean_text
from bot.domain.states import drop_months, exempt_months, scored
from bot.domain.town import Stint, months_of, stays_in_year
from bot.errors import AlreadyDone, InvalidInput, NotFound
from bot.i18n import format_points
from bot.services.branches import Actor, require_role, rulebook_of
from bot.services.democratic import DemocraticService
from bot.services.notices import NoticeService
from bot.services.transfers import across, chains_near_branch
from storage import assessment as assessment_repo
from storage import branch_years as years_repo
from storage import grading as grading_repo
from storage import ledger as ledger_repo
from storage import member_states as state_repo
from storage import members as member_repo
from storage import notices as notice_repo
from storage import posts as post_repo
from storage import town_review as town_repo
from storage import towns as towns_repo
from storage import transfers as transfer_repo
from storage.db import Connection, Database
from storage.grading import GradeRound, Reopen

GRADERS = (Role.SECRETARY,)  # the secretary only (issue 4): not the deputy
EXPORT_ROLES = (Role.SECRETARY, Role.RECORDER)
MIN_PUBLICITY_DAYS = 7  # seed 004: 公示时间不少于7天
MAX_TIE_BUTTONS = 30  # the pick travels as a bitmask in callback data


class GradeWarning(str):
    """A warning of the preview: the string is its catalog key, ``params`` fill it (a list parameter is a
    list of names the handler joins with the language's separator)."""

    params: dict

    def __new__(cls, key: str, **params: object) -> GradeWarning:
        warning = super().__new__(cls, key)
        warning.params = params
        return warning


@dataclass(frozen=True)
class Draft:
    """What /grade shows: the preview (stage ``preview``), the publicity in progress (``publicity``) or,
    once its window has closed, the recomputed result to finalise (``finalise``)."""

    stage: str
    branch: Branch
    rulebook: Rulebook
    year: int
    result: GradeResult
    warnings: list[GradeWarning]
    tie: list[int]  # the tied member ids (sorted), [] when none
    free: int  # how many of them may still go into the quota band
    chosen: list[int]  # the secretary's pick so far
    mask: int  # ``chosen`` as a bitmask over ``tie``
    fingerprint: str  # of ``result``: the confirmation must match what was shown
    upto: int  # the last ledger row the result saw
    publicity_days: int
    round: GradeRound | None = None
    notice: Notice | None = None
    published: GradeResult | None = None
    changes: list[tuple[GradeLine, GradeLine]] = field(default_factory=list)  # (published, now)
    objections: int = 0  # open objections of the year (finalise stage)

    @property
    def resolved(self) -> bool:
        return not self.tie or len(self.chosen) == self.free

    @property
    def scored(self) -> int:
        """How many members have a figure for the year: none, and there is nothing to publicise."""
        return sum(1 for line in self.result.lines if line.figure is not None)

    @property
    def democratic_missing(self) -> list[GradeLine]:
        return [line for line in self.result.lines if DEMOCRATIC_MISSING in line.flags]


@dataclass(frozen=True)
class PublicityView:
    branch: Branch
    rulebook: Rulebook
    round: GradeRound
    notice: Notice
    result: GradeResult  # as published
    members: dict[int, Member]


@dataclass(frozen=True)
class FinalView:
    branch: Branch
    rulebook: Rulebook
    round: GradeRound
    result: GradeResult  # the snapshot
    published: GradeResult
    changes: list[tuple[GradeLine, GradeLine]]
    by: Member


@dataclass(frozen=True)
class ReopenView:
    branch: Branch
    round: GradeRound
    reopen: Reopen
    by: Member


@dataclass(frozen=True)
class _Gathered:
    members: list[MemberYear]
    people: dict[int, Member]
    upto: int


def fingerprint(result: GradeResult) -> str:
    return hashlib.sha256(result.model_dump_json().encode()).hexdigest()[:10]


def chosen_of(tie: list[int], mask: int) -> list[int]:
    """The tied members a bitmask names (bit i = tie[i]); a mask naming anyone else is refused."""
    if mask < 0 or mask >= (1 << len(tie)):
        raise InvalidInput("grade.tie_stale")
    return [member_id for i, member_id in enumerate(tie) if mask >> i & 1]


def mask_of(tie: list[int], chosen: list[int] | set[int]) -> int:
    return sum(1 << i for i, member_id in enumerate(tie) if member_id in set(chosen))


def free_places(rulebook: Rulebook, result: GradeResult) -> int:
    """How many of the tied may go into the quota band: its places less those clearly above the tie."""
    if not result.tie or rulebook.quota is None or result.quota_places is None:
        return 0
    above = sum(1 for line in result.lines if line.band_code == rulebook.quota.band and line.member_id not in result.tie)
    return max(0, result.quota_places - above)


def changed(before: GradeResult, after: GradeResult) -> list[tuple[GradeLine, GradeLine]]:
    """Lines whose figure, band or flags differ between two results of the same year (by member)."""
    old = {line.member_id: line for line in before.lines}
    found = []
    for line in after.lines:
        was = old.get(line.member_id)
        if was is not None and (was.figure, was.band_code, sorted(was.flags)) != (line.figure, line.band_code, sorted(line.flags)):
            found.append((was, line))
    return found


def publicity_days(rulebook: Rulebook) -> int:
    return max(MIN_PUBLICITY_DAYS, rulebook.settings.publicity_days)


def notice_key(year: int, number: int, review_period: Period = Period.MONTH) -> str:
    """The annual notice's period key: 2026, then 2026-R2 … after re-openings (one notice per key). A
    rulebook whose regular notice is yearly owns the plain year's key: its publicity starts at 2026-R1."""
    return f"{year}" if number == 1 and review_period is not Period.YEAR else f"{year}-R{number}"


async def ensure_open(conn: Connection, branch_id: int, day: date) -> None:
    """Refuse anything dated in a year the branch has finalised (e.g. a declaration at submit time)."""
    if await grading_repo.is_locked(conn, branch_id, day.year):
        raise InvalidInput("year.locked", year=day.year)


def _zero_out(rulebook: Rulebook, item_code: str) -> bool:
    item = rulebook.item(item_code)
    return item is not None and item.kind is ItemKind.ZERO_OUT


def _local(moment: datetime, branch: Branch) -> str:
    return moment.astimezone(ZoneInfo(branch.timezone)).strftime("%Y-%m-%d %H:%M")


class GradingService:
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock
        self._democratic = DemocraticService(db, clock)
        self._notices = NoticeService(db, clock)

    def _now(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    # --- computing (no authority, no side effects) -----------------------------------------------------

    async def _gather(self, branch: Branch, year: int) -> _Gathered:
        """Every member of the year as grading needs them, from the ledger and the snapshots."""
        rulebook = rulebook_of(branch)
        today = self.clock.today(branch.timezone)
        end = min(date(year, 12, 31), today)
        democratic: dict[int, dict[int, Decimal]] = {}
        unqualified: dict[int, set[int]] = {}  # member -> the halves rated 不合格 (each half's 考核评议 on its own)
        if rulebook.year_result.method is YearMethod.WEIGHTED_HALVES:  # 张店: outside our read (its own lock)
            for half in (1, 2):
                for member_id, value in (await self._democratic.evaluations(branch.id, year, half)).items():
                    democratic.setdefault(member_id, {})[half] = value
                for member_id in await self._democratic.unqualified(branch.id, year, half):
                    unqualified.setdefault(member_id, set()).add(half)
        # One consistent snapshot, off the event loop (storage.db.Database.snapshot), a handful of
        # statements for the whole branch: the ledger and the post claims of every member at once.
        bulk_read = getattr(self.db, "snapshot", self.db.read)  # a backend without snapshot(): its read()
        async with bulk_read() as conn:
            upto = await grading_repo.last_ledger_id(conn, branch.id)
            listed = [m for m in await member_repo.listing(conn, branch.id, ("approved", "left", "pending"))
                      if m.left_on is not None or m.status is not MemberStatus.PENDING]  # a return asked: their stay still counts
            past = await grading_repo.past_years(conn, branch.id, year)
            entries_of = await ledger_repo.entries_of_branch(conn, branch.id, year)
            claims_of = await post_repo.claims_of_branch(conn, branch.id) if rulebook.posts is not None else {}
            # Members who moved (组织关系转接): their chains in one statement; the rows of their other
            # branches that count here in one more, only when there are any.
            chains = await chains_near_branch(conn, branch.id)
            histories = await state_repo.of_branch(conn, branch.id)  # exempt months (bot.domain.states)
            parts = {m.id: part for m in listed if (part := chains.part(m.id, year)) is not None} if chains.stints else {}
            people = [m for m in listed if (stays_in_year(chains.stints[m.id], m.id, year) if m.id in chains.stints
                                            else in_notice(m.joined_on, m.left_on, date(year, 1, 1), date(year, 12, 31)))]
            here = {m.id for m in listed}
            elsewhere = sorted({s.member_id for part in parts.values() for s in part.counted} - here)
            if elsewhere:
                entries_of = {**entries_of, **await transfer_repo.entries_of_rows(conn, elsewhere, year)}
                histories = {**histories, **await state_repo.of_members(conn, elsewhere)}
                if rulebook.posts is not None:
                    claims_of = {**claims_of, **await transfer_repo.claims_of_rows(conn, elsewhere)}
        # assessment.posts_by_month, with its days worked out once and one map for everyone without claims
        days = [((year, m), counted_on(year, m, end)) for m in range(1, 13)]
        without_claims = {key: posts_held_on(rulebook, [], day) for key, day in days}
        members = []
        for person in people:
            part = parts.get(person.id)
            if part is not None and not part.graded:  # another branch grades the year: listed as transferred out
                members.append(MemberYear(member_id=person.id, name=person.name, state=person.state, joined_on=person.joined_on,
                                          left_on=person.left_on, score=None, months_counted=0, transferred_out=True,
                                          past=past.get(person.id, [])))
                continue
            entries = entries_of.get(person.id, [])
            claims = claims_of.get(person.id)
            if part is not None and part.others:  # the whole chain's rows and months count here
                entries, claims = across(part.counted, entries_of, claims_of)
                stints = part.counted
            elif person.id in chains.stints:  # a row of a chain: its own stays (a returning member's two)
                stints = stays_in_year(chains.stints[person.id], person.id, year)
            else:
                stints = (Stint(member_id=person.id, branch_id=branch.id, first=person.joined_on, last=person.left_on),)
            # The months the member was scored: exempt months are cut out as the months away are, and rows
            # dated in them count nowhere. Exempt now but scored long enough: graded over those months (in the
            # state of the last of them); too few scored months after an exemption: listed as exempt.
            state = person.state
            if any(s.member_id in histories for s in stints):
                cut = exempt_months(stints, histories, year, end)
                entries = drop_months(entries, cut)
                months = months_of(scored(stints, histories), year, end)
                if cut and len(months) < rulebook.settings.min_months_to_grade:
                    state = MemberState.EXEMPT
                elif state is MemberState.EXEMPT:
                    state = histories[person.id].last_scored_state(months) if person.id in histories else state
                    state = MemberState.EXEMPT if state is None else state
            else:
                months = months_of(stints, year, end)
            posts = {key: posts_held_on(rulebook, claims, day) for key, day in days} if claims else without_claims
            ratings = democratic.get(person.id, {})
            score = None
            if state is not MemberState.EXEMPT:  # grading reads the figure, not each month's detail
                score = year_score(rulebook, entries, year, months, posts=posts, democratic=ratings, detail=False)
            bonus, major = year_facts(rulebook, entries, year)
            members.append(MemberYear(
                member_id=person.id, name=person.name, state=state, joined_on=person.joined_on,
                left_on=person.left_on, score=score, months_counted=len(months), major_deduction=major,
                bonus_earned=bonus, democratic=ratings, democratic_unqualified=frozenset(unqualified.get(person.id, ())),
                past=past.get(person.id, []), transferred_in=part is not None and part.others,
            ))
        return _Gathered(members=members, people={p.id: p for p in people}, upto=upto)

    @staticmethod
    def _grade(rulebook: Rulebook, gathered: _Gathered, year: int, tie_choice: set[int] | None) -> GradeResult:
        try:
            return grade(rulebook, gathered.members, year, tie_choice=tie_choice)
        except ValueError:
            raise InvalidInput("grade.tie_stale") from None

    async def compute(self, branch: Branch, year: int, tie_choice: set[int] | None = None) -> GradeResult:
        """The year's result as it stands (read-only, no authority): for exports and reports."""
        return self._grade(rulebook_of(branch), await self._gather(branch, year), year, tie_choice)

    async def snapshot(self, branch_id: int, year: int) -> GradeResult | None:
        """The finalised result of the year (what later reports read), or None while it is not final."""
        async with self.db.read() as conn:
            current = await grading_repo.current(conn, branch_id, year)
            if current is None or current.status != "final":
                return None
            return await grading_repo.results(conn, current.id, "final")

    async def is_locked(self, branch_id: int, year: int) -> bool:
        async with self.db.read() as conn:
            return await grading_repo.is_locked(conn, branch_id, year)

    async def history(self, branch_id: int, year: int) -> list[tuple[GradeRound, GradeResult | None]]:
        """Every round of the year with its final result (re-opened rounds stay as history)."""
        async with self.db.read() as conn:
            return [(stored, await grading_repo.results(conn, stored.id, "final"))
                    for stored in await grading_repo.rounds_of_year(conn, branch_id, year)]

    # --- the preview ---------------------------------------------------------------------------------

    async def _warnings(self, branch: Branch, year: int, result: GradeResult, gathered: _Gathered) -> list[GradeWarning]:
        rulebook = rulebook_of(branch)
        today = self.clock.today(branch.timezone)
        names = {member_id: person.name for member_id, person in gathered.people.items()}

        def listed(ids) -> list[str]:
            return [names.get(i, f"#{i}") for i in ids]

        warnings: list[GradeWarning] = []
        if today <= date(year, 12, 31):
            warnings.append(GradeWarning("grade.warn.year_running", year=year, today=today.isoformat()))
        async with self.db.read() as conn:
            objections = await grading_repo.open_objections_of_year(conn, branch.id, year)
            unconfirmed = await grading_repo.unconfirmed_of_year(conn, branch.id, year)
            sent = await grading_repo.sent_periods(conn, branch.id, year)
            defaulted: dict[int, int] = {}
            for month in range(1, 13):
                for member_id in await assessment_repo.defaulted(conn, branch.id, month_key(year, month)):
                    defaulted[member_id] = defaulted.get(member_id, 0) + 1
        if objections:
            concerned = sorted({m for _, m in objections})
            warnings.append(GradeWarning("grade.warn.open_objections", count=len(objections), names=listed(concerned)))
        if unconfirmed:
            warnings.append(GradeWarning("grade.warn.unconfirmed", count=len(unconfirmed), names=[
                f"{names.get(i, f'#{i}')}({n})" for i, n in sorted(unconfirmed.items())]))
        joins = [p.joined_on for p in gathered.people.values() if p.joined_on is not None]
        since = min([branch.created_at.astimezone(ZoneInfo(branch.timezone)).date(), *joins])
        missing = []
        for month in range(1, 13):
            key, _, last = period_of_month(year, month, rulebook.settings.review_period)
            if last < today and last >= since and key not in sent and key not in missing:
                missing.append(key)
        if missing:
            warnings.append(GradeWarning("grade.warn.unpublished", count=len(missing), periods=missing))
        if defaulted:
            warnings.append(GradeWarning("grade.warn.not_assessed", count=len(defaulted), names=[
                f"{names.get(i, f'#{i}')}({n})" for i, n in sorted(defaulted.items())]))
        democratic = [line.member_id for line in result.lines if DEMOCRATIC_MISSING in line.flags]
        if democratic:
            warnings.append(GradeWarning("grade.warn.democratic_missing", count=len(democratic), names=listed(democratic)))
        async with self.db.read() as conn:  # the town's review of the confirmed result (services.town_review)
            review = await town_repo.latest_review(conn, branch.id, year)
        if review is not None and review.status == "pending":
            warnings.append(GradeWarning("town_review.warn.pending", since=_local(review.submitted_at, branch)))
        elif review is not None and review.status in ("returned", "stale") and await self._unpublished(branch, year):
            warnings.append(GradeWarning(f"town_review.warn.{review.status}", reason=review.reason or ""))
        return warnings

    async def _unpublished(self, branch: Branch, year: int) -> bool:
        async with self.db.read() as conn:
            return await grading_repo.current(conn, branch.id, year) is None

    async def _draft(self, branch: Branch, year: int, mask: int | None, default_choice: list[int] | None = None,
                     stage: str = "preview") -> Draft:
        rulebook = rulebook_of(branch)
        gathered = await self._gather(branch, year)
        base = self._grade(rulebook, gathered, year, None)
        tie = list(base.tie)
        free = free_places(rulebook, base)
        if len(tie) > MAX_TIE_BUTTONS:
            raise InvalidInput("grade.tie_too_large", count=len(tie))
        if mask is None:  # the stored pick, while it still fits the tie
            stored = [m for m in (default_choice or []) if m in tie]
            mask = mask_of(tie, stored) if default_choice and len(stored) == len(default_choice) == free else 0
        chosen = chosen_of(tie, mask)
        if len(chosen) > free:
            raise InvalidInput("grade.tie_too_many", places=free)
        result = self._grade(rulebook, gathered, year, set(chosen)) if tie and len(chosen) == free else base
        warnings = await self._warnings(branch, year, result, gathered)
        return Draft(stage=stage, branch=branch, rulebook=rulebook, year=year, result=result, warnings=warnings, tie=tie,
                     free=free, chosen=chosen, mask=mask, fingerprint=fingerprint(result), upto=gathered.upto,
                     publicity_days=publicity_days(rulebook))

    async def _secretary(self, branch: Branch, actor: Actor) -> Member:
        async with self.db.read() as conn:
            return await require_role(conn, branch.id, actor.user_id, GRADERS)

    async def _refuse_final(self, conn: Connection, branch: Branch, year: int) -> GradeRound | None:
        """The year's round in publicity (or None); a finalised year is refused."""
        current = await grading_repo.current(conn, branch.id, year)
        if current is not None and current.status == "final":
            raise AlreadyDone("grade.finalised", year=year, at=_local(current.finalised_at, branch))  # type: ignore[arg-type]
        return current

    async def first_year(self, branch: Branch) -> int:
        """The branch's first year: when it was set up (in its timezone), or the year of its earliest member's
        first day or ledger row when that is earlier. Before it the branch has nothing to grade or export."""
        created = branch.created_at.astimezone(ZoneInfo(branch.timezone)).date()
        async with self.db.read() as conn:
            earliest = await years_repo.first_day(conn, branch.id)
        return min(created, earliest or created).year

    async def _check_year(self, branch: Branch, year: int) -> None:
        today = self.clock.today(branch.timezone)
        if year > today.year or year < 2000:
            raise InvalidInput("grade.bad_year", year=year)
        first = await self.first_year(branch)
        if year < first:
            raise InvalidInput("grade.before_branch", year=year, first=first, branch=branch.title)

    async def preview(self, branch: Branch, actor: Actor, year: int,
                      tie_choice: set[int] | None = None) -> tuple[GradeResult, list[str]]:
        """The year's result and the warnings, for the secretary (a finalised year is refused)."""
        await self._check_year(branch, year)
        await self._secretary(branch, actor)
        async with self.db.read() as conn:
            await self._refuse_final(conn, branch, year)
        gathered = await self._gather(branch, year)
        result = self._grade(rulebook_of(branch), gathered, year, tie_choice)
        return result, list(await self._warnings(branch, year, result, gathered))

    async def default_year(self, branch: Branch) -> int:
        """The year /grade and /export mean without one: a year in publicity, else last year until June (the
        year-end work and its forms) when the branch existed then, else this year."""
        async with self.db.read() as conn:
            running = await grading_repo.in_publicity(conn, branch.id)
        if running:
            return running[0].year
        today = self.clock.today(branch.timezone)
        if today.month <= 6 and today.year - 1 >= await self.first_year(branch):
            return today.year - 1
        return today.year  # from July, or when the branch did not exist last year

    async def screen(self, branch: Branch, actor: Actor, year: int, mask: int | None = None) -> Draft:
        """/grade: the preview; during the publicity its state; after the window the result to finalise."""
        await self._check_year(branch, year)
        await self._secretary(branch, actor)
        async with self.db.read() as conn:
            current = await self._refuse_final(conn, branch, year)
            notice = await notice_repo.by_id(conn, current.notice_id) if current is not None else None
        if current is None:
            return await self._draft(branch, year, mask)
        assert notice is not None
        if not notice.sent or self._now() < notice.closes_at:
            draft = await self._final_draft(branch, current, notice, mask, stage="publicity")
            return draft
        return await self._final_draft(branch, current, notice, mask)

    async def _final_draft(self, branch: Branch, current: GradeRound, notice: Notice, mask: int | None,
                           stage: str = "finalise") -> Draft:
        draft = await self._draft(branch, current.year, mask, default_choice=current.tie_choice, stage=stage)
        async with self.db.read() as conn:
            published = await grading_repo.results(conn, current.id, "published")
            objections = await grading_repo.open_objections_of_year(conn, branch.id, current.year)
        assert published is not None
        return replace(draft, round=current, notice=notice, published=published, changes=changed(published, draft.result),
                       objections=len(objections))

    def _check_final(self, draft: Draft) -> None:
        """What must hold before a result is publicised or finalised."""
        if not draft.resolved:
            raise InvalidInput("grade.tie_unresolved", places=draft.free, count=len(draft.tie))
        if draft.democratic_missing:
            raise InvalidInput("grade.democratic_missing", count=len(draft.democratic_missing))

    # --- the publicity --------------------------------------------------------------------------------

    async def publicise(self, branch: Branch, actor: Actor, year: int, mask: int, shown: str) -> PublicityView:
        """Confirm the previewed result: record the round and its notice (sent by the caller), once. A
        branch in a town goes through the town's review first (services.town_review.submit, then
        ``record_publicity`` on approval): refused here, so no path skips the town."""
        await self._check_year(branch, year)
        await self._secretary(branch, actor)
        async with self.db.read() as conn:
            if await towns_repo.town_of_branch(conn, branch.id) is not None:
                raise InvalidInput("town_review.review_first", year=year)
        draft = await self.ready_draft(branch, year, mask, shown)
        async with self.db.transaction() as conn:
            secretary = await require_role(conn, branch.id, actor.user_id, GRADERS)
            stored = await self.record_publicity(conn, branch, draft, secretary.id)
        return await self.publicity(branch, stored.id)

    async def ready_draft(self, branch: Branch, year: int, mask: int, shown: str) -> Draft:
        """The year's result exactly as shown (fingerprint ``shown``), checked ready for the publicity:
        no round yet, the year over, the tie resolved, every notice of the year posted. No authority."""
        await self._check_year(branch, year)
        today = self.clock.today(branch.timezone)
        async with self.db.read() as conn:
            current = await self._refuse_final(conn, branch, year)
        if current is not None:
            raise AlreadyDone("grade.already_publicised", year=year)
        if today <= date(year, 12, 31):
            raise InvalidInput("grade.year_not_over", year=year)
        draft = await self._draft(branch, year, mask)
        if draft.fingerprint != shown:
            raise InvalidInput("grade.changed")
        if not draft.scored:  # an empty notice would be posted and an empty year locked
            raise InvalidInput("grade.nobody_to_grade", year=year)
        self._check_final(draft)
        now = self._now()
        async with self.db.read() as conn:
            sent = await grading_repo.sent_periods(conn, branch.id, year)
        for owed in await self._notices.owed(branch, now):
            if owed.last.year == year and owed.key not in sent:
                raise InvalidInput("grade.notice_pending", period=owed.key, due=_local(owed.due_at, branch))
        return draft

    async def record_publicity(self, conn: Connection, branch: Branch, draft: Draft, confirmed_by: int) -> GradeRound:
        """In the caller's transaction: the round, its published results and its notice (the publicity
        starts when the caller sends it). ``confirmed_by``: the secretary who confirmed the result."""
        year, result, rulebook = draft.year, draft.result, draft.rulebook
        days = publicity_days(rulebook)
        first, last = date(year, 1, 1), date(year, 12, 31)
        now = self._now()
        if await self._refuse_final(conn, branch, year) is not None:
            raise AlreadyDone("grade.already_publicised", year=year)
        if await grading_repo.last_ledger_id(conn, branch.id) != draft.upto:
            raise InvalidInput("grade.changed")
        number = await grading_repo.next_round_number(conn, branch.id, year)
        notice = await notice_repo.create(
            conn, branch_id=branch.id, period_key=notice_key(year, number, rulebook.settings.review_period),
            first_day=first, last_day=last, due_at=now, posted_at=now, closes_at=now + timedelta(days=days),
            late=False, ledger_upto=draft.upto)
        if notice is None:
            raise AlreadyDone("grade.already_publicised", year=year)
        stored = await grading_repo.create_round(
            conn, branch_id=branch.id, year=year, rulebook_code=result.rulebook_code, tie_choice=draft.chosen,
            notice_id=notice.id, publicity_days=days, result=result, upto=draft.upto, confirmed_by=confirmed_by, at=now)
        if stored is None:
            raise AlreadyDone("grade.already_publicised", year=year)
        await grading_repo.add_results(conn, stored.id, "published", result)
        scored = {line.member_id: line for line in result.lines if line.figure is not None}
        rows = await notice_repo.ledger_of_branch(conn, branch.id, first, last, draft.upto)
        in_force = effective(r.entry() for r in rows)
        by_id = {r.id: r for r in rows}
        await notice_repo.add_entries(conn, notice.id, [
            (e.id, by_id[e.id].member_id) for e in in_force
            if by_id[e.id].member_id in scored and objectable(by_id[e.id])
            and (e.value != ZERO or _zero_out(rulebook_of(branch), e.item_code))])  # a zero-out is worth 0 but decides the year
        await notice_repo.add_members(conn, notice.id, [
            (member_id, format_points(line.figure), str(line.figure)) for member_id, line in scored.items()])  # type: ignore[arg-type]
        return stored

    async def publicity(self, branch: Branch, round_id: int) -> PublicityView:
        """A round's publicity as recorded (the same each time: a retry sends only what is missing)."""
        async with self.db.read() as conn:
            stored = await grading_repo.by_id(conn, round_id)
            if stored is None or stored.branch_id != branch.id:
                raise NotFound("grade.no_round")
            notice = await notice_repo.by_id(conn, stored.notice_id)
            result = await grading_repo.results(conn, stored.id, "published")
            members = {m.id: m for m in await member_repo.listing(conn, branch.id, ("approved", "left", "pending"))
                       if m.left_on is not None or m.status is not MemberStatus.PENDING}
        assert notice is not None and result is not None
        return PublicityView(branch=branch, rulebook=rulebook_of(branch), round=stored, notice=notice, result=result,
                             members=members)

    async def start_window(self, view: PublicityView) -> Notice:
        """Before the publicity's first message is sent (again): its window ends publicity_days from now."""
        async with self.db.transaction() as conn:
            await notice_repo.set_closes(conn, view.notice.id, self._now() + timedelta(days=view.round.publicity_days))
            fresh = await notice_repo.by_id(conn, view.notice.id)
        assert fresh is not None
        return fresh

    async def running(self, branch: Branch) -> list[tuple[GradeRound, Notice]]:
        """Rounds in publicity with their notices (for the scheduled sending and the finalise reminder)."""
        async with self.db.read() as conn:
            found = []
            for stored in await grading_repo.in_publicity(conn, branch.id):
                notice = await notice_repo.by_id(conn, stored.notice_id)
                if notice is not None:
                    found.append((stored, notice))
        return found

    async def finalise_screen(self, branch: Branch, round_id: int) -> Draft | None:
        """The recomputed result of a round whose window has closed (the reminder to the secretary)."""
        async with self.db.read() as conn:
            stored = await grading_repo.by_id(conn, round_id)
            notice = await notice_repo.by_id(conn, stored.notice_id) if stored is not None else None
        if stored is None or notice is None or stored.status != "publicity":
            return None
        return await self._final_draft(branch, stored, notice, None)

    async def secretaries(self, branch: Branch) -> list[Member]:
        async with self.db.read() as conn:
            return [m for m in await member_repo.holders(conn, branch.id, GRADERS) if m.user_id is not None]

    async def export_recipients(self, branch: Branch) -> list[Member]:
        """Who receives the year's documents at finalisation: the secretary and the recorders."""
        async with self.db.read() as conn:
            return [m for m in await member_repo.holders(conn, branch.id, EXPORT_ROLES) if m.user_id is not None]

    # --- finalising -----------------------------------------------------------------------------------

    async def finalise(self, branch: Branch, actor: Actor, year: int, mask: int, shown: str) -> FinalView:
        """After the window: recompute, store the snapshot and lock the year, once."""
        await self._check_year(branch, year)
        await self._secretary(branch, actor)
        async with self.db.read() as conn:
            current = await self._refuse_final(conn, branch, year)
            notice = await notice_repo.by_id(conn, current.notice_id) if current is not None else None
        if current is None or notice is None:
            raise InvalidInput("grade.not_publicised", year=year)
        if not notice.sent or self._now() < notice.closes_at:
            raise InvalidInput("grade.window_open", closes=_local(notice.closes_at, branch))
        draft = await self._final_draft(branch, current, notice, mask)
        if draft.objections:
            raise InvalidInput("grade.objections_open", count=draft.objections)
        if draft.fingerprint != shown:
            raise InvalidInput("grade.changed")
        self._check_final(draft)
        now = self._now()
        async with self.db.transaction() as conn:
            secretary = await require_role(conn, branch.id, actor.user_id, GRADERS)
            if await grading_repo.last_ledger_id(conn, branch.id) != draft.upto:
                raise InvalidInput("grade.changed")
            if not await grading_repo.finalise(conn, current.id, result=draft.result, upto=draft.upto, by=secretary.id, at=now):
                raise AlreadyDone("grade.finalised", year=year, at=_local(now, branch))
            await grading_repo.add_results(conn, current.id, "final", draft.result)
            await grading_repo.lock(conn, branch.id, year, current.id, now)
            town = await towns_repo.town_of_branch(conn, branch.id)
            if town is not None:  # the filing (备案): the locked snapshot reaches the town with the lock
                await town_repo.file_round(conn, round_id=current.id, branch_id=branch.id, town_id=town.id, year=year, at=now)
            final = await grading_repo.by_id(conn, current.id)
        assert final is not None and draft.published is not None
        return FinalView(branch=branch, rulebook=draft.rulebook, round=final, result=draft.result, published=draft.published,
                         changes=draft.changes, by=secretary)

    # --- re-opening -----------------------------------------------------------------------------------

    async def reopen(self, branch: Branch, actor: Actor, year: int, reason: str | None) -> ReopenView:
        """The secretary re-opens a finalised year for corrections, with a reason, logged; once."""
        await self._check_year(branch, year)
        await self._secretary(branch, actor)
        text = clean_text(reason)
        if not text:
            raise InvalidInput("grade.reopen_reason")
        if len(text) > REASON_MAX:
            raise InvalidInput("text.too_long", limit=REASON_MAX)
        now = self._now()
        async with self.db.transaction() as conn:
            secretary = await require_role(conn, branch.id, actor.user_id, GRADERS)
            current = await grading_repo.current(conn, branch.id, year)
            if current is None or current.status != "final":
                raise InvalidInput("grade.not_finalised", year=year)
            if not await grading_repo.mark_reopened(conn, current.id):
                raise AlreadyDone("grade.already_reopened", year=year)
            await grading_repo.unlock(conn, branch.id, year)
            logged = await grading_repo.add_reopen(conn, branch_id=branch.id, year=year, round_id=current.id,
                                                   by=secretary.id, at=now, reason=text)
            if logged is None:
                raise AlreadyDone("grade.already_reopened", year=year)
            reopened = await grading_repo.by_id(conn, current.id)
        assert reopened is not None
        return ReopenView(branch=branch, round=reopened, reopen=logged, by=secretary)

    async def reopens(self, branch: Branch, year: int) -> list[Reopen]:
        async with self.db.read() as conn:
            return await grading_repo.reopens(conn, branch.id, year)
