"""The town's part in a branch's year (issue 6): appeals (申诉), the year-end review, filing (备案).

- **Appeals.** ``/appeal`` on a branch that belongs to a town records the town's appeal in the same
  transaction as the objection's flag (NoticeService.appeal); one live appeal per objection (a partial
  unique index), while those closed because the branch left the town stay as history and the objection
  may be appealed again (TownService.detach clears its flag; migration 0023). A town administrator
  decides it: uphold the branch's decision, or order a correction — each with a reason. The town never
  writes a branch's ledger: an ordered correction is written by the branch's secretary or deputy
  (``apply_correction``) as a row whose reference is ``appeal:<id>``: a reversing row
  (storage.ledger.reverse) of the entry in force, or, where the branch had withdrawn the entry and the
  town restores it, a reinstating row of the same value (a reversed reversal does not count again in
  bot.domain.scoring.effective).
- **Year-end review.** Where a branch belongs to a town, the secretary's confirmation of the grades
  (/grade's button) sends exactly the confirmed result to the town (``submit``: a ``year_reviews``
  attempt, pending). Approval starts the ≥ 7-day publicity (GradingService.record_publicity in the
  approval's transaction) — unless the figures changed since the confirmation, which makes the attempt
  stale and the secretary confirms again. Sending back, with reasons, lets the secretary change things
  and confirm again (a new attempt).
- **Filing.** GradingService.finalise files the locked snapshot with the town (``town_filings``);
  ``filing_workbook`` is the town's xlsx: a summary sheet and a sheet per filed branch.

Authority is checked against the database on every action: only the administrators of the branch's
town decide; only the branch's secretary or deputy applies a correction (not on their own points).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from openpyxl import Workbook

from bot.clock import Clock
from bot.domain.grading import GradeResult
from bot.domain.notice import Objection, ObjectionKind, ObjectionStatus
from bot.domain.records import Branch, LedgerRow, Member, NewLedgerRow, Role, Source
from bot.domain.rulebook import Rulebook
from bot.domain.text import REASON_MAX, clean_text
from bot.domain.town import Town
from bot.errors import AlreadyDone, InvalidInput, NotAuthorized, NotFound
from bot.services.branches import Actor, require_role, rulebook_of
from bot.services.exports import (
    LEFT,
    _band_text,
    _box,
    _file_part,
    _flag,
    _label,
    _number,
    _save,
    _set_widths,
    _sheet_title,
    _stars_text,
    text,
)
from bot.services.grading import GRADERS, GradingService
from storage import branch_years as years_repo
from storage import branches as branch_repo
from storage import grading as grading_repo
from storage import ledger as ledger_repo
from storage import members as member_repo
from storage import notices as notice_repo
from storage import town_review as repo
from storage import towns as towns_repo
from storage.db import Connection, Database
from storage.town_review import Filing, TownAppeal, YearReview

APPLIERS = (Role.SECRETARY, Role.DEPUTY)  # who writes a correction the town ordered
BRANCH_TOLD = (Role.SECRETARY, Role.DEPUTY)  # who hears the town's decisions
UPHOLD, CORRECT = "upheld", "correction_ordered"
MAX_ENTRY_CHOICES = 20  # a dispute's entries offered as buttons
REVERSED_MEANWHILE = "town_review.appeal.reversed_meanwhile"  # the refusal the town hears about too
QUEUE_PAGE = 5  # items per /townqueue page: each is its own message (a review's result may need several)


@dataclass(frozen=True)
class AppealView:
    appeal: TownAppeal
    town: Town
    branch: Branch
    objection: Objection
    member: Member  # whose points
    appellant: Member
    entry: LedgerRow | None  # the entry objected to (None for a dispute of the score)
    target: LedgerRow | None = None  # the row an ordered correction is about
    correction: LedgerRow | None = None  # the row the branch wrote


@dataclass(frozen=True)
class ReviewView:
    review: YearReview
    town: Town
    branch: Branch
    rulebook: Rulebook
    result: GradeResult  # as the secretary confirmed it
    secretary: Member | None


@dataclass(frozen=True)
class Approval:
    view: ReviewView
    round_id: int | None  # the publicity it started; None when the figures had changed (stale)
    notice_key: str | None = None


@dataclass(frozen=True)
class Queue:
    """One page of what waits for a town administrator's decision."""

    appeals: list[AppealView]
    reviews: list[ReviewView]
    more: tuple[str, int] | None  # the next page's cursor: ("a" | "r", after this id)
    appeals_waiting: int  # in all, over the administrator's towns
    reviews_waiting: int


@dataclass(frozen=True)
class FilingRow:
    branch: Branch
    status: str  # filed | unfiled | reopened | publicity | review | returned | none
    filing: Filing | None
    result: GradeResult | None  # the filed snapshot


def _reason(text_: str | None, key: str = "town_review.reason_required") -> str:
    reason = clean_text(text_)
    if not reason:
        raise InvalidInput(key)
    if len(reason) > REASON_MAX:
        raise InvalidInput("text.too_long", limit=REASON_MAX)
    return reason


async def _town_id(conn: Connection, branch_id: int) -> int | None:
    town = await towns_repo.town_of_branch(conn, branch_id)
    return town.id if town is not None else None


async def branch_first_year(conn: Connection, branch: Branch) -> int:
    """The branch's first year: GradingService.first_year's rule (the year it was set up, in its timezone, or
    of its earliest member's first day or ledger row when earlier), on an open connection."""
    created = branch.created_at.astimezone(ZoneInfo(branch.timezone)).date()
    earliest = await years_repo.first_day(conn, branch.id)
    return min(created, earliest or created).year


async def first_filing_year(conn: Connection, town: Town, enough: int | None = None) -> int:
    """The first year the town has anything to file: the year it was created (in its timezone), or an
    earlier first year of one of its branches (a branch that joined with years behind it). ``enough``:
    stop looking once a year at or before it is found (the caller only needs to know that much)."""
    first = town.created_at.astimezone(ZoneInfo(town.timezone)).year
    for branch in await towns_repo.branches(conn, town.id):
        if enough is not None and first <= enough:
            break
        first = min(first, await branch_first_year(conn, branch))
    return first


async def _town(conn: Connection, town_id: int) -> Town:
    town = await towns_repo.by_id(conn, town_id)
    assert town is not None
    return town


async def _require_admin(conn: Connection, town_id: int, user_id: int) -> None:
    if not await towns_repo.is_admin(conn, town_id, user_id):
        raise NotAuthorized("town_review.not_admin")


class TownReviewService:
    def __init__(self, db: Database, clock: Clock, grading: GradingService):
        self.db, self.clock, self.grading = db, clock, grading

    def _now(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    # --- who -----------------------------------------------------------------------------------------

    async def town_of(self, branch: Branch) -> Town | None:
        async with self.db.read() as conn:
            return await towns_repo.town_of_branch(conn, branch.id)

    async def filed_town(self, branch: Branch, year: int) -> Town | None:
        """The branch's town, if the branch filed ``year`` with it (a re-opened year voids that filing)."""
        async with self.db.read() as conn:
            town = await towns_repo.town_of_branch(conn, branch.id)
            if town is None or branch.id not in await repo.filings(conn, town.id, year):
                return None
        return town

    async def admins(self, town_id: int) -> list[int]:
        """The town's administrators who can be reached (Telegram user ids)."""
        async with self.db.read() as conn:
            return [a.user_id for a in await towns_repo.admins(conn, town_id) if a.reachable]

    async def towns_of(self, actor: Actor) -> list[Town]:
        """The towns the actor administers (refused when none)."""
        async with self.db.read() as conn:
            towns = await towns_repo.towns_of_admin(conn, actor.user_id)
        if not towns:
            raise NotAuthorized("town_review.not_admin")
        return towns

    async def branch_told(self, branch_id: int) -> list[Member]:
        """The branch's secretary and deputies with a Telegram account (they hear the town's decisions)."""
        async with self.db.read() as conn:
            return [m for m in await member_repo.holders(conn, branch_id, BRANCH_TOLD) if m.user_id is not None]

    async def remember_card(self, kind: str, ref_id: int, chat_id: int, message_id: int) -> None:
        async with self.db.transaction() as conn:
            await repo.add_card(conn, kind, ref_id, chat_id, message_id)

    async def cards(self, kind: str, ref_id: int) -> list[tuple[int, int]]:
        async with self.db.read() as conn:
            return await repo.cards(conn, kind, ref_id)

    # --- appeals -------------------------------------------------------------------------------------

    async def _appeal_view(self, conn: Connection, appeal: TownAppeal) -> AppealView:
        branch = await branch_repo.by_id(conn, appeal.branch_id)
        objection = await notice_repo.objection(conn, appeal.objection_id)
        assert branch is not None and objection is not None
        member = await member_repo.by_id(conn, objection.member_id)
        appellant = await member_repo.by_id(conn, appeal.appellant_id)
        assert member is not None and appellant is not None
        entry = await ledger_repo.by_id(conn, objection.ledger_id) if objection.ledger_id is not None else None
        target = await ledger_repo.by_id(conn, appeal.target_ledger_id) if appeal.target_ledger_id is not None else None
        correction = await ledger_repo.by_id(conn, appeal.correction_id) if appeal.correction_id is not None else None
        return AppealView(appeal=appeal, town=await _town(conn, appeal.town_id), branch=branch,
                          objection=objection, member=member, appellant=appellant, entry=entry, target=target,
                          correction=correction)

    async def appeal_view(self, appeal_id: int) -> AppealView:
        async with self.db.read() as conn:
            appeal = await repo.appeal(conn, appeal_id)
            if appeal is None:
                raise NotFound("town_review.appeal.not_found", number=appeal_id)
            return await self._appeal_view(conn, appeal)

    async def appeal_of_objection(self, objection_id: int) -> AppealView | None:
        """The objection's live town appeal (open or decided), if it was appealed in a branch of a town.
        Appeals closed when the branch left its town are history, not returned (migration 0023)."""
        async with self.db.read() as conn:
            appeal = await repo.appeal_of_objection(conn, objection_id)
            return await self._appeal_view(conn, appeal) if appeal is not None else None

    async def _open_appeal(self, conn: Connection, appeal_id: int, actor: Actor) -> TownAppeal:
        appeal = await repo.appeal(conn, appeal_id)
        if appeal is None:
            raise NotFound("town_review.appeal.not_found", number=appeal_id)
        await _require_admin(conn, appeal.town_id, actor.user_id)
        if appeal.status != "open":  # decided, or closed when the branch left the town
            raise AlreadyDone(f"town_review.appeal.already_{appeal.status}", number=appeal.id)
        if await _town_id(conn, appeal.branch_id) != appeal.town_id:  # the branch left the town
            raise NotAuthorized("town_review.not_admin")
        return appeal

    async def check_appeal(self, appeal_id: int, actor: Actor) -> AppealView:
        """Whether the actor may decide this appeal now (before asking for a reason)."""
        async with self.db.read() as conn:
            appeal = await self._open_appeal(conn, appeal_id, actor)
            return await self._appeal_view(conn, appeal)

    async def correction_choices(self, appeal_id: int, actor: Actor) -> tuple[AppealView, list[LedgerRow]]:
        """What a correction of this appeal would change: the entry objected to, or for a dispute of the
        score every entry of the member's in that notice still in force (the town picks one)."""
        async with self.db.read() as conn:
            appeal = await self._open_appeal(conn, appeal_id, actor)
            view = await self._appeal_view(conn, appeal)
            if view.objection.kind is ObjectionKind.OBJECTION:
                assert view.entry is not None
                await self._target(conn, view.objection, view.entry.id)
                return view, [view.entry]
            rows = [row for row in await notice_repo.entries(conn, view.objection.notice_id)
                    if row.member_id == view.member.id and await ledger_repo.reversal_of(conn, row.id) is None]
        if not rows:
            raise InvalidInput("town_review.appeal.nothing_to_correct", number=appeal_id)
        return view, rows[:MAX_ENTRY_CHOICES]

    async def _target(self, conn: Connection, objection: Objection, ledger_id: int | None) -> tuple[LedgerRow, str]:
        """The row an ordered correction is about and how it is corrected (reverse | reinstate)."""
        if objection.kind is ObjectionKind.OBJECTION:
            assert objection.ledger_id is not None
            row = await ledger_repo.by_id(conn, objection.ledger_id)
            assert row is not None
            withdrawn = await ledger_repo.reversal_of(conn, row.id) is not None
            if objection.status is ObjectionStatus.WITHDRAWN and withdrawn:
                return row, "reinstate"  # the branch withdrew it; the town restores it
            if withdrawn:
                raise InvalidInput("town_review.appeal.nothing_to_correct", number=objection.id)
            return row, "reverse"
        if ledger_id is None:
            raise InvalidInput("town_review.appeal.pick_entry")
        row = await ledger_repo.by_id(conn, ledger_id)
        listed = {r.id for r in await notice_repo.entries(conn, objection.notice_id)}
        if row is None or row.id not in listed or row.member_id != objection.member_id:
            raise NotFound("objection.entry_not_found", number=ledger_id)
        if await ledger_repo.reversal_of(conn, row.id) is not None:
            raise InvalidInput("objection.entry_withdrawn", number=ledger_id)
        return row, "reverse"

    async def decide_appeal(self, appeal_id: int, actor: Actor, verdict: str, reason: str | None,
                            ledger_id: int | None = None) -> AppealView:
        """A town administrator upholds the branch's decision or orders a correction, with a reason; once."""
        if verdict not in (UPHOLD, CORRECT):
            raise InvalidInput("town_review.appeal.bad_verdict")
        async with self.db.transaction() as conn:
            appeal = await self._open_appeal(conn, appeal_id, actor)
            text_ = _reason(reason)
            target, kind = None, None
            if verdict == CORRECT:
                objection = await notice_repo.objection(conn, appeal.objection_id)
                assert objection is not None
                row, kind = await self._target(conn, objection, ledger_id)
                target = row.id
            if not await repo.decide_appeal(conn, appeal.id, status=verdict, by=actor.user_id, at=self._now(),
                                            reason=text_, target_ledger_id=target, correction_kind=kind):
                raise AlreadyDone("town_review.appeal.already_decided", number=appeal.id)
            decided = await repo.appeal(conn, appeal.id)
            assert decided is not None
            return await self._appeal_view(conn, decided)

    async def apply_correction(self, appeal_id: int, actor: Actor) -> AppealView:
        """The branch writes the correction the town ordered (reference ``appeal:<id>``), once. A row of a
        finalised year is refused by the ledger (``year.locked``)."""
        async with self.db.transaction() as conn:
            appeal = await repo.appeal(conn, appeal_id)
            if appeal is None:
                raise NotFound("town_review.appeal.not_found", number=appeal_id)
            applier = await require_role(conn, appeal.branch_id, actor.user_id, APPLIERS)
            objection = await notice_repo.objection(conn, appeal.objection_id)
            assert objection is not None
            if applier.id == objection.member_id:
                raise NotAuthorized("town_review.appeal.own")
            if appeal.status == "corrected":
                raise AlreadyDone("town_review.appeal.already_corrected", number=appeal.id)
            if appeal.status != CORRECT or appeal.target_ledger_id is None:
                raise InvalidInput("town_review.appeal.no_correction", number=appeal.id)
            target = await ledger_repo.by_id(conn, appeal.target_ledger_id)
            assert target is not None
            reference = f"appeal:{appeal.id}"
            branch = await branch_repo.by_id(conn, appeal.branch_id)
            assert branch is not None
            note = text(branch.language, "town_review.correction_note", number=appeal.id,
                        reason=appeal.decision_reason or "")[:REASON_MAX]
            if appeal.correction_kind == "reinstate":
                written = await ledger_repo.append(conn, NewLedgerRow(
                    branch_id=target.branch_id, member_id=target.member_id, item_code=target.item_code,
                    event_code=target.event_code, value=target.value, occurred_on=target.occurred_on,
                    source=Source.CORRECTION, reference=reference, actor_id=applier.id, reason=note))
            else:
                written = await ledger_repo.reverse(conn, target, reference=reference, actor_id=applier.id, reason=note)
                if written is None:  # reversed meanwhile by something else (an objection, a correction):
                    other = await ledger_repo.reversal_of(conn, target.id)  # not this appeal's row to record
                    raise InvalidInput(REVERSED_MEANWHILE, number=appeal.id, entry=target.id,
                                       row=other.id if other is not None else "-")
            if written is None or not await repo.mark_corrected(conn, appeal.id, correction_id=written.id,
                                                                  by=applier.id, at=self._now()):
                raise AlreadyDone("town_review.appeal.already_corrected", number=appeal.id)
            corrected = await repo.appeal(conn, appeal.id)
            assert corrected is not None
            return await self._appeal_view(conn, corrected)

    # --- what waits for the town (/townqueue) -----------------------------------------------------------

    async def queue(self, actor: Actor, kind: str = "a", after: int = 0, limit: int | None = None) -> Queue:
        """One page of what waits for the actor's decision in their towns: open appeals, then pending
        reviews, each by id. The cursor (``kind`` a|r, ``after`` an id) makes the next page start where
        this one stopped, whatever was decided meanwhile. Cards sent once at submission may have been
        lost, or gone to nobody (no administrator reachable then, or one added later): this finds them."""
        limit = limit or QUEUE_PAGE
        async with self.db.read() as conn:
            if not await towns_repo.towns_of_admin(conn, actor.user_id):
                raise NotAuthorized("town_review.not_admin")
            appeals: list[TownAppeal] = []
            reviews: list[YearReview] = []
            more: tuple[str, int] | None = None
            if kind == "a":
                appeals = await repo.waiting_appeals(conn, actor.user_id, after, limit + 1)
                if len(appeals) > limit:
                    appeals, more = appeals[:limit], ("a", appeals[limit - 1].id)
            if more is None:  # the appeals are done: reviews fill the rest of the page
                start, room = (after if kind == "r" else 0), limit - len(appeals)
                reviews = await repo.waiting_reviews(conn, actor.user_id, start, room + 1)
                if len(reviews) > room:
                    reviews = reviews[:room]
                    more = ("r", reviews[-1].id if reviews else start)
            waiting = await repo.waiting_counts(conn, actor.user_id)
            return Queue(appeals=[await self._appeal_view(conn, a) for a in appeals],
                         reviews=[await self._review_view(conn, r) for r in reviews],
                         more=more, appeals_waiting=waiting[0], reviews_waiting=waiting[1])

    # --- the year-end review --------------------------------------------------------------------------

    async def _review_view(self, conn: Connection, review: YearReview) -> ReviewView:
        branch = await branch_repo.by_id(conn, review.branch_id)
        result = await repo.review_result(conn, review.id)
        assert branch is not None and result is not None
        return ReviewView(review=review, town=await _town(conn, review.town_id), branch=branch,
                          rulebook=rulebook_of(branch), result=result,
                          secretary=await member_repo.by_id(conn, review.submitted_by))

    async def review_view(self, review_id: int) -> ReviewView:
        async with self.db.read() as conn:
            review = await repo.review(conn, review_id)
            if review is None:
                raise NotFound("town_review.review.not_found", number=review_id)
            return await self._review_view(conn, review)

    async def submit(self, branch: Branch, actor: Actor, year: int, mask: int, shown: str) -> ReviewView:
        """The secretary's confirmation, in a branch of a town: exactly the shown result goes to the town."""
        async with self.db.read() as conn:
            await require_role(conn, branch.id, actor.user_id, GRADERS)
            town_id = await _town_id(conn, branch.id)
            waiting = await repo.latest_review(conn, branch.id, year)
        if town_id is None:
            raise InvalidInput("town_review.no_town")
        if waiting is not None and waiting.status == "pending":
            raise AlreadyDone("town_review.review.already_pending", year=year)
        draft = await self.grading.ready_draft(branch, year, mask, shown)
        async with self.db.transaction() as conn:
            secretary = await require_role(conn, branch.id, actor.user_id, GRADERS)
            review = await repo.add_review(conn, branch_id=branch.id, town_id=town_id, year=year, tie_mask=draft.mask,
                                           fingerprint=draft.fingerprint, result=draft.result, submitted_by=secretary.id,
                                           at=self._now())
            if review is None:
                raise AlreadyDone("town_review.review.already_pending", year=year)
            return await self._review_view(conn, review)

    async def _pending_review(self, conn: Connection, review_id: int, actor: Actor) -> YearReview:
        review = await repo.review(conn, review_id)
        if review is None:
            raise NotFound("town_review.review.not_found", number=review_id)
        await _require_admin(conn, review.town_id, actor.user_id)
        if review.status != "pending":  # decided, withdrawn, or closed when the branch left the town
            raise AlreadyDone(f"town_review.review.already_{review.status}", year=review.year)
        if await _town_id(conn, review.branch_id) != review.town_id:
            raise NotAuthorized("town_review.not_admin")
        return review

    async def check_review(self, review_id: int, actor: Actor) -> ReviewView:
        async with self.db.read() as conn:
            return await self._review_view(conn, await self._pending_review(conn, review_id, actor))

    async def approve(self, review_id: int, actor: Actor) -> Approval:
        """The town approves: the publicity starts (its round and notice, in this transaction), once. When
        the figures changed since the secretary confirmed, the attempt becomes stale instead."""
        async with self.db.read() as conn:
            review = await self._pending_review(conn, review_id, actor)
            branch = await branch_repo.by_id(conn, review.branch_id)
        assert branch is not None
        try:
            draft = await self.grading.ready_draft(branch, review.year, review.tie_mask, review.fingerprint)
        except InvalidInput as error:
            if error.key not in ("grade.changed", "grade.tie_stale"):
                raise
            async with self.db.transaction() as conn:
                await self._pending_review(conn, review_id, actor)
                if not await repo.decide_review(conn, review.id, status="stale", by=actor.user_id, at=self._now()):
                    raise AlreadyDone("town_review.review.already_decided", year=review.year) from None
                stale = await repo.review(conn, review.id)
                assert stale is not None
                return Approval(view=await self._review_view(conn, stale), round_id=None)
        async with self.db.transaction() as conn:
            await self._pending_review(conn, review_id, actor)
            if not await repo.decide_review(conn, review.id, status="approved", by=actor.user_id, at=self._now()):
                raise AlreadyDone("town_review.review.already_decided", year=review.year)
            stored = await self.grading.record_publicity(conn, branch, draft, review.submitted_by)
            await repo.set_review_round(conn, review.id, stored.id)
            approved = await repo.review(conn, review.id)
            notice = await notice_repo.by_id(conn, stored.notice_id)
            assert approved is not None and notice is not None
            return Approval(view=await self._review_view(conn, approved), round_id=stored.id, notice_key=notice.period_key)

    async def send_back(self, review_id: int, actor: Actor, reason: str | None) -> ReviewView:
        """The town returns the grades with reasons; the secretary may confirm again after changes."""
        async with self.db.transaction() as conn:
            review = await self._pending_review(conn, review_id, actor)
            text_ = _reason(reason)
            if not await repo.decide_review(conn, review.id, status="returned", by=actor.user_id, at=self._now(),
                                            reason=text_):
                raise AlreadyDone("town_review.review.already_decided", year=review.year)
            returned = await repo.review(conn, review.id)
            assert returned is not None
            return await self._review_view(conn, returned)

    async def withdraw(self, actor: Actor, *, review_id: int | None = None, branch: Branch | None = None,
                       year: int | None = None) -> ReviewView:
        """The branch's secretary takes back an attempt still waiting for the town (by its id, or the
        branch's waiting one of ``year`` / of any year), so the year is never stuck on a town that cannot
        decide. Once: a second withdrawal changes nothing and says so."""
        async with self.db.transaction() as conn:
            if review_id is not None:
                review = await repo.review(conn, review_id)
                if review is None:
                    raise NotFound("town_review.review.not_found", number=review_id)
            else:
                assert branch is not None
                review = await repo.pending_review_of_branch(conn, branch.id, year)
                if review is None:
                    latest = await repo.latest_review(conn, branch.id, year) if year is not None else None
                    if latest is not None and latest.status == "withdrawn":
                        raise AlreadyDone("town_review.review.already_withdrawn", year=year)
                    raise InvalidInput("town_review.review.nothing_waiting")
            await require_role(conn, review.branch_id, actor.user_id, GRADERS)
            if review.status != "pending":
                raise AlreadyDone(f"town_review.review.already_{review.status}", year=review.year)
            if not await repo.decide_review(conn, review.id, status="withdrawn", by=actor.user_id, at=self._now()):
                raise AlreadyDone("town_review.review.already_decided", year=review.year)
            withdrawn = await repo.review(conn, review.id)
            assert withdrawn is not None
            return await self._review_view(conn, withdrawn)

    # --- filing (备案) ----------------------------------------------------------------------------------

    async def _filing_town(self, conn: Connection, town_id: int, actor: Actor, year: int) -> Town:
        """The town, if the actor administers it, ``year`` has begun in the town's timezone and is not before
        the town's first year (``first_filing_year``)."""
        await _require_admin(conn, town_id, actor.user_id)
        town = await _town(conn, town_id)
        if year < 2000 or year > self.clock.today(town.timezone).year:
            raise InvalidInput("grade.bad_year", year=year)
        first = await first_filing_year(conn, town, enough=year)
        if year < first:
            raise InvalidInput("town_review.before_town", town=town.name, year=year, first=first)
        return town

    async def check_filing(self, town_id: int, actor: Actor, year: int) -> Town:
        """Whether the actor may have the town's filing of ``year`` (before it is built)."""
        async with self.db.read() as conn:
            return await self._filing_town(conn, town_id, actor, year)

    def filing_year(self, town: Town) -> int:
        """The year a town files now, in its timezone: last year until June, then this one (not bounded by
        the town's first year: see ``default_filing_year``)."""
        today = self.clock.today(town.timezone)
        return today.year - 1 if today.month <= 6 else today.year

    async def default_filing_year(self, town: Town) -> int:
        """``filing_year``, but never before the town's first year (a town whose branches began this year
        files this year, not a year in which none of them existed)."""
        year = self.filing_year(town)
        if year >= town.created_at.astimezone(ZoneInfo(town.timezone)).year:
            return year  # the usual case: no query (the first year is never after the town's creation)
        async with self.db.read() as conn:
            return max(year, await first_filing_year(conn, town, enough=year))

    async def filing(self, town_id: int, actor: Actor, year: int) -> tuple[Town, list[FilingRow]]:
        """Every branch of the town with the year's filed snapshot (or where its year stands)."""
        async with self.db.read() as conn:
            town = await self._filing_town(conn, town_id, actor, year)
            filed = await repo.filings(conn, town_id, year)
            rows = []
            for branch in await towns_repo.branches(conn, town_id):
                if await branch_first_year(conn, branch) > year:
                    continue  # the branch did not exist that year: nothing to file, not "not filed"
                branch_id = branch.id
                filing = filed.get(branch_id)
                result = await grading_repo.results(conn, filing.round_id, "final") if filing is not None else None
                rows.append(FilingRow(branch=branch, status=await self._status(conn, branch_id, year, filing),
                                      filing=filing, result=result))
        return town, rows

    @staticmethod
    async def _status(conn: Connection, branch_id: int, year: int, filing: Filing | None) -> str:
        current = await grading_repo.current(conn, branch_id, year)
        if current is not None and current.status == "final":
            return "filed" if filing is not None else "unfiled"  # finalised before it joined the town
        if current is not None:
            return "publicity"
        if filing is not None:
            return "reopened"
        review = await repo.latest_review(conn, branch_id, year)
        if review is not None and review.status == "pending":
            return "review"
        if review is not None and review.status in ("returned", "stale"):
            return "returned"
        return "none"

    async def filing_workbook(self, town_id: int, actor: Actor, year: int, lang: str) -> tuple[str, bytes, int, int]:
        """The town's filing of the year as xlsx: (file name, bytes, branches filed, branches in all)."""
        town, rows = await self.filing(town_id, actor, year)
        data = filing_workbook(town.name, year, rows, lang, self.clock.today(town.timezone), town.timezone)
        filed = sum(1 for r in rows if r.status == "filed")
        return text(lang, "town_review.xlsx.file_name", year=year, town=_file_part(town.name)), data, filed, len(rows)


# --- the workbook ---------------------------------------------------------------------------------------


def _band_columns(rows: list[FilingRow], lang: str) -> list[tuple[str, str]]:
    """(band code, label) over every filed branch's rulebook, in each rulebook's order, once per label."""
    seen: dict[str, str] = {}
    for row in rows:
        if row.result is None:
            continue
        for band in rulebook_of(row.branch).bands:
            label = band.label.get(lang)
            seen.setdefault(label, band.code)
    return [(code, label) for label, code in seen.items()]


def filing_workbook(town: str, year: int, rows: list[FilingRow], lang: str, today: date, timezone: str = "UTC") -> bytes:
    """A summary sheet (each branch: status, filed date, graded, distribution) and a sheet per filed
    branch with its final grades (the snapshot, as locked). Dates are the town's (``timezone``)."""
    book = Workbook()
    summary = book.active
    used: set[str] = set()
    summary.title = _sheet_title(text(lang, "town_review.xlsx.summary_sheet"), used)
    bands = _band_columns(rows, lang)
    headers = [text(lang, "town_review.xlsx.branch"), text(lang, "town_review.xlsx.status"),
               text(lang, "town_review.xlsx.filed_at"), text(lang, "town_review.xlsx.listed"),
               text(lang, "town_review.xlsx.graded")] + [label for _, label in bands]
    last = len(headers)
    summary.merge_cells(start_row=1, start_column=1, end_row=1, end_column=last)
    _label(summary.cell(1, 1), text(lang, "town_review.xlsx.title", town=town, year=year), bold=True)
    summary.merge_cells(start_row=2, start_column=1, end_row=2, end_column=last)
    _label(summary.cell(2, 1), text(lang, "town_review.xlsx.made", today=today.isoformat()), align=LEFT)
    for column, header in enumerate(headers, start=1):
        _label(summary.cell(3, column), header, bold=True)
    row_no = 3
    for row in rows:
        row_no += 1
        _label(summary.cell(row_no, 1), row.branch.title, align=LEFT)
        _label(summary.cell(row_no, 2), text(lang, f"town_review.status.{row.status}"))
        if row.filing is not None:
            local = row.filing.filed_at.astimezone(ZoneInfo(timezone)).date().isoformat()
            _label(summary.cell(row_no, 3), local)
        if row.result is not None:
            _number(summary.cell(row_no, 4), Decimal(len(row.result.lines)), 0)
            _number(summary.cell(row_no, 5), Decimal(sum(1 for line in row.result.lines if line.graded)), 0)
            for offset, (code, _) in enumerate(bands):
                own = {band.code for band in rulebook_of(row.branch).bands}
                if code in own:
                    _number(summary.cell(row_no, 6 + offset), Decimal(row.result.distribution.get(code, 0)), 0)
    _box(summary, 3, row_no, 1, last)
    _set_widths(summary, 3, row_no, last)
    summary.freeze_panes = "B4"
    for row in rows:
        if row.result is None:
            continue
        _branch_sheet(book, used, row, year, lang, timezone)
    return _save(book)


def _branch_sheet(book: Workbook, used: set[str], row: FilingRow, year: int, lang: str, timezone: str) -> None:
    assert row.result is not None and row.filing is not None
    sheet = book.create_sheet(_sheet_title(row.branch.title, used))
    headers = [text(lang, "town_review.xlsx.rank"), text(lang, "town_review.xlsx.name"),
               text(lang, "town_review.xlsx.figure"), text(lang, "town_review.xlsx.band"),
               text(lang, "town_review.xlsx.stars"), text(lang, "town_review.xlsx.flags")]
    last = len(headers)
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=last)
    _label(sheet.cell(1, 1), text(lang, "town_review.xlsx.branch_title", branch=row.branch.title, year=year), bold=True)
    sheet.merge_cells(start_row=2, start_column=1, end_row=2, end_column=last)
    _label(sheet.cell(2, 1), text(lang, "town_review.xlsx.branch_note",
                                  filed=row.filing.filed_at.astimezone(ZoneInfo(timezone)).date().isoformat(),
                                  status=text(lang, f"town_review.status.{row.status}")), align=LEFT)
    for column, header in enumerate(headers, start=1):
        _label(sheet.cell(3, column), header, bold=True)
    places = rulebook_of(row.branch).settings.rounding_places
    line_no = 3
    for line in row.result.lines:
        line_no += 1
        if line.rank is not None:
            _number(sheet.cell(line_no, 1), Decimal(line.rank), 0)
        _label(sheet.cell(line_no, 2), line.name, align=LEFT)
        _number(sheet.cell(line_no, 3), line.figure, places)
        _label(sheet.cell(line_no, 4), _band_text(lang, line))
        _label(sheet.cell(line_no, 5), _stars_text(lang, line.stars))
        _label(sheet.cell(line_no, 6), text(lang, "common.list_separator").join(_flag(lang, c) for c in line.flags), align=LEFT)
    _box(sheet, 3, line_no, 1, last)
    _set_widths(sheet, 3, line_no, last)
    sheet.freeze_panes = "C4"
