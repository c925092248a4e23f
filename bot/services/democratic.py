"""The democratic evaluation (民主评议) of schemes whose year is ``weighted_halves`` (张店, seed 003).

A round per branch and half-year. The secretary or deputy opens it; every participant (an approved,
scored — not exempt — member who belonged to the branch in the half; probationary and migrant members
included) rates themselves and each peer privately, 0-100 (grades: 优秀 95 / 合格 80 / 基本合格 65 /
不合格 50, ``bot.domain.democratic``); the secretary or deputy enters each member's public (群众测评) and
branch preliminary (党支部初评) ratings, never their own; closing the round ends all rating.

Anonymity: rater ids are stored only to keep one rating per (rater, ratee) and to count progress. No
view here carries who gave whom what: a member sees only the ratings they gave; the board shows counts
and, once closed, each member's weighted evaluation.

Authority is checked on every call against the database (callback data carries only ids). Writes are
conditional upserts while the round is open (``storage.democratic``): a re-rating replaces the earlier
one; the same value again changes nothing; a redelivered "open" finds the round that exists.

For grading (``/tmp/grading_api.md``): ``evaluations`` and ``unqualified`` read **closed** rounds only —
an open round is still being collected, so its figures are not a result yet; ``status`` tells grading
whether a half's round is missing, open or closed (for its warnings).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bot.clock import Clock
from bot.domain.democratic import (
    HalfError,
    Parts,
    Round,
    check_half,
    default_half,
    evaluation,
    in_half,
    parse_half,
    unqualified,
    valid_rating,
)
from bot.domain.records import Branch, Member, MemberStatus
from bot.domain.rulebook import YearMethod
from bot.errors import AlreadyDone, InvalidInput, NotAuthorized, NotFound
from bot.services.branches import MANAGERS, Actor, may_score, require_role, rulebook_of
from bot.services.transfers import chain_of_member, chains_near_branch
from storage import branches as branch_repo
from storage import democratic as repo
from storage import members as member_repo
from storage.db import Connection, Database

MARK_KINDS = ("public", "branch")


@dataclass(frozen=True)
class Card:
    """What one member sees of a round: their own ratings only."""

    branch: Branch
    round: Round
    me: Member
    peers: list[Member]  # everyone else they rate, in roster order
    given: dict[int, Decimal]  # ratee → the value this member gave (their own id: the self rating)

    @property
    def to_rate(self) -> list[Member]:
        return [self.me, *self.peers]

    @property
    def peers_done(self) -> int:
        return sum(1 for p in self.peers if p.id in self.given)

    @property
    def finished(self) -> bool:
        return all(m.id in self.given for m in self.to_rate)

    def next_after(self, member_id: int) -> Member | None:
        """The next member still unrated after this one (wrapping round)."""
        ids = [m.id for m in self.to_rate]
        start = ids.index(member_id) + 1 if member_id in ids else 0
        ordered = self.to_rate[start:] + self.to_rate[:start]
        return next((m for m in ordered if m.id not in self.given and m.id != member_id), None)

    def ratee(self, member_id: int) -> Member | None:
        return next((m for m in self.to_rate if m.id == member_id), None)


@dataclass(frozen=True)
class Line:
    """One participant on the secretary's board (counts, never who gave what)."""

    member: Member
    self_done: bool
    peers_given: int  # peer ratings this member has given
    peers_received: int
    public: Decimal | None
    branch: Decimal | None
    reached: bool | None  # None: not invited yet (e.g. joined after the round opened)
    evaluation: Decimal | None = None  # shown once the round is closed
    unqualified: bool = False


@dataclass(frozen=True)
class Board:
    branch: Branch
    round: Round
    weights: dict[str, Decimal]
    lines: list[Line]
    viewer: Member
    viewer_participates: bool = False

    @property
    def peers_needed(self) -> int:
        return max(len(self.lines) - 1, 0)

    def finished(self, line: Line) -> bool:
        return line.self_done and line.peers_given >= self.peers_needed

    @property
    def done(self) -> list[Line]:
        return [l for l in self.lines if self.finished(l)]

    @property
    def not_done(self) -> list[Line]:
        return [l for l in self.lines if not self.finished(l)]

    @property
    def unreachable(self) -> list[Line]:
        return [l for l in self.lines if l.member.user_id is None or l.reached is False]

    @property
    def missing_public(self) -> list[Line]:
        return [l for l in self.lines if l.public is None]

    @property
    def missing_branch(self) -> list[Line]:
        return [l for l in self.lines if l.branch is None]

    @property
    def without_peer(self) -> list[Line]:
        return [l for l in self.lines if l.peers_received == 0]

    def line(self, member_id: int) -> Line | None:
        return next((l for l in self.lines if l.member.id == member_id), None)

    def next_after(self, member_id: int) -> Line | None:
        """The next member with a public or branch rating missing, after this one (wrapping round)."""
        ids = [l.member.id for l in self.lines]
        start = ids.index(member_id) + 1 if member_id in ids else 0
        ordered = self.lines[start:] + self.lines[:start]
        return next((l for l in ordered if l.member.id != member_id and (l.public is None or l.branch is None)), None)


@dataclass(frozen=True)
class Opened:
    board: Board
    invite: list[Member]  # participants to send the invitation to


class DemocraticService:
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock

    # --- halves ----------------------------------------------------------------------------------

    def applies(self, branch: Branch) -> bool:
        return rulebook_of(branch).year_result.method is YearMethod.WEIGHTED_HALVES

    def _check_scheme(self, branch: Branch) -> None:
        if not self.applies(branch):
            raise InvalidInput("democratic.not_in_scheme")

    def default_half(self, branch: Branch) -> tuple[int, int]:
        return default_half(self.clock.today(branch.timezone))

    def parse_half(self, branch: Branch, text: str) -> tuple[int, int]:
        try:
            return parse_half(text, self.clock.today(branch.timezone))
        except HalfError as exc:
            raise InvalidInput(f"democratic.half_{exc.reason}", half=text) from None

    # --- the secretary ---------------------------------------------------------------------------

    async def open(self, branch: Branch, actor: Actor, year: int, half: int) -> Opened:
        """Open the half's round (secretary or deputy); one round open at a time."""
        self._check_scheme(branch)
        try:
            check_half(year, half, self.clock.today(branch.timezone))
        except HalfError as exc:
            raise InvalidInput(f"democratic.half_{exc.reason}", half=f"{year}-H{half}") from None
        async with self.db.transaction() as conn:
            me = await require_role(conn, branch.id, actor.user_id, MANAGERS)
            existing = await repo.of_half(conn, branch.id, year, half)
            if existing is not None:
                key = "democratic.already_open" if existing.is_open else "democratic.already_closed"
                raise AlreadyDone(key, half=existing.code)
            others = await repo.open_rounds(conn, branch.id)
            if others:
                raise InvalidInput("democratic.other_open", half=others[0].code)
            opened = await repo.open_round(conn, branch.id, year, half, me.id)
            if opened is None:  # pragma: no cover - the UNIQUE key, under the serialised transaction
                raise AlreadyDone("democratic.already_open", half=f"{year}-H{half}")
            participants = await _participants(conn, branch, opened)
            board = await _board(conn, branch, opened, me)
        return Opened(board=board, invite=participants)

    async def record_invite(self, round_id: int, member_id: int, reached: bool) -> None:
        async with self.db.transaction() as conn:
            await repo.set_reached(conn, round_id, member_id, reached)

    async def board(self, branch: Branch, actor: Actor, year: int | None = None, half: int | None = None,
                    round_id: int | None = None) -> Board:
        """Progress (secretary or deputy): a round by id, by half, or the branch's latest."""
        self._check_scheme(branch)
        async with self.db.read() as conn:
            me = await require_role(conn, branch.id, actor.user_id, MANAGERS)
            found = await _find_round(conn, branch, year, half, round_id)
            return await _board(conn, branch, found, me)

    async def board_of(self, actor: Actor, round_id: int) -> Board:
        branch, found = await self._round(round_id)
        return await self.board(branch, actor, round_id=found.id)

    async def set_marks(self, actor: Actor, round_id: int, member_id: int, values: dict[str, Decimal]) -> tuple[Board, bool]:
        """Enter a member's public and/or branch rating (secretary or deputy, never their own), all or
        nothing; returns (the board after, whether anything changed)."""
        if not values or set(values) - set(MARK_KINDS):
            raise InvalidInput("democratic.bad_kind")
        for value in values.values():
            _check_value(value)
        branch, found = await self._round(round_id)
        async with self.db.transaction() as conn:
            me = await require_role(conn, branch.id, actor.user_id, MANAGERS)
            current = await _live_round(conn, found.id)
            target = await _participant(conn, branch, current, member_id)
            try:
                await may_score(conn, branch.id, actor.user_id, target, MANAGERS)
            except NotAuthorized as exc:
                raise NotAuthorized("democratic.own_marks" if exc.key == "decision.own" else exc.key, **exc.params) from None
            changed = False
            for kind in MARK_KINDS:
                if kind in values:
                    changed = await repo.mark(conn, current.id, target.id, kind, values[kind], me.id) or changed
            board = await _board(conn, branch, current, me)
        return board, changed

    async def close(self, actor: Actor, round_id: int) -> Board:
        """Close the round (secretary or deputy): no rating is taken after this. Once."""
        branch, found = await self._round(round_id)
        async with self.db.transaction() as conn:
            me = await require_role(conn, branch.id, actor.user_id, MANAGERS)
            if not await repo.close_round(conn, found.id, me.id):
                raise AlreadyDone("democratic.already_closed", half=found.code)
            closed = await repo.by_id(conn, found.id)
            assert closed is not None
            return await _board(conn, branch, closed, me)

    async def to_remind(self, branch: Branch, actor: Actor) -> tuple[Board, list[Member]]:
        """The open round's participants who have not finished rating (secretary or deputy)."""
        board = await self.board(branch, actor, round_id=(await self.open_round(branch)).id)
        return board, [l.member for l in board.not_done]

    async def open_round(self, branch: Branch) -> Round:
        self._check_scheme(branch)
        async with self.db.read() as conn:
            rounds = await repo.open_rounds(conn, branch.id)
        if not rounds:
            raise NotFound("democratic.none_open")
        return rounds[0]

    # --- members ---------------------------------------------------------------------------------

    async def card(self, actor: Actor, round_id: int) -> Card:
        """A participant's own ratings in the round (open or closed); notes that the bot reaches them."""
        branch, found = await self._round(round_id)
        async with self.db.transaction() as conn:
            me = await _rater(conn, branch, found, actor)
            await repo.set_reached(conn, found.id, me.id, True)
            return await _card(conn, branch, found, me)

    async def card_for(self, member: Member, round_id: int) -> Card:
        """The card of a participant the service listed (``open``, ``to_remind``): the invitation's content."""
        branch, found = await self._round(round_id)
        async with self.db.read() as conn:
            return await _card(conn, branch, found, member)

    async def my_card(self, branch: Branch, actor: Actor) -> Card:
        """The card of the branch's open round."""
        return await self.card(actor, (await self.open_round(branch)).id)

    async def rate(self, actor: Actor, round_id: int, ratee_id: int, value: Decimal) -> tuple[Card, Member, bool]:
        """Rate oneself or a peer while the round is open; a re-rating replaces the earlier one.
        Returns (the card after, the member rated, whether anything changed)."""
        _check_value(value)
        branch, found = await self._round(round_id)
        async with self.db.transaction() as conn:
            me = await _rater(conn, branch, found, actor)
            current = await _live_round(conn, found.id)
            ratee = await _participant(conn, branch, current, ratee_id)
            changed = await repo.rate(conn, current.id, me.id, ratee.id, value)
            await repo.set_reached(conn, current.id, me.id, True)
            card = await _card(conn, branch, current, me)
        return card, ratee, changed

    async def participant(self, branch: Branch, round_id: int, reference: Member) -> Member:
        """``reference`` (a roster look-up) checked to be one of the round's participants."""
        async with self.db.read() as conn:
            found = await repo.by_id(conn, round_id)
            if found is None or found.branch_id != branch.id:
                raise NotFound("democratic.round_not_found")
            return await _participant(conn, branch, found, reference.id)

    # --- for grading -----------------------------------------------------------------------------

    async def evaluations(self, branch_id: int, year: int, half: int) -> dict[int, Decimal]:
        """member_id → the weighted democratic evaluation (0-100) of the half's closed round, for the
        members with all four parts (a self rating, at least one peer rating, public and branch).
        Exact ``Decimal``s (the peer mean to the context's precision); grading rounds."""
        parts, weights = await self._closed_parts(branch_id, year, half)
        found = {mid: evaluation(p, weights) for mid, p in parts.items()}
        return {mid: v for mid, v in found.items() if v is not None}

    async def unqualified(self, branch_id: int, year: int, half: int) -> set[int]:
        """Members rated unqualified in the half's closed round: the branch's preliminary rating is
        不合格 (below 60), or the evaluation is below 60."""
        parts, weights = await self._closed_parts(branch_id, year, half)
        return {mid for mid, p in parts.items() if unqualified(p, weights)}

    async def status(self, branch_id: int, year: int, half: int) -> str | None:
        """"open", "closed", or None when the half has no round (for grading's warnings)."""
        async with self.db.read() as conn:
            found = await repo.of_half(conn, branch_id, year, half)
        return found.status if found else None

    async def _closed_parts(self, branch_id: int, year: int, half: int) -> tuple[dict[int, Parts], dict[str, Decimal]]:
        async with self.db.read() as conn:
            branch = await branch_repo.by_id(conn, branch_id)
            if branch is None:
                return {}, {}
            weights = rulebook_of(branch).year_result.democratic_weights
            found = await repo.of_half(conn, branch_id, year, half)
            if found is None or found.is_open:
                return {}, weights
            members = await _participants(conn, branch, found)
            return await _parts(conn, found, members), weights

    # --- helpers ---------------------------------------------------------------------------------

    async def _round(self, round_id: int) -> tuple[Branch, Round]:
        async with self.db.read() as conn:
            found = await repo.by_id(conn, round_id)
            branch = await branch_repo.by_id(conn, found.branch_id) if found else None
        if found is None or branch is None:
            raise NotFound("democratic.round_not_found")
        self._check_scheme(branch)
        return branch, found


# --- helpers ------------------------------------------------------------------------------------------


def _check_value(value: Decimal) -> None:
    if not valid_rating(value):
        raise InvalidInput("democratic.bad_value")


async def _find_round(conn: Connection, branch: Branch, year: int | None, half: int | None, round_id: int | None) -> Round:
    if round_id is not None:
        found = await repo.by_id(conn, round_id)
        if found is None or found.branch_id != branch.id:
            raise NotFound("democratic.round_not_found")
        return found
    if year is not None and half is not None:
        found = await repo.of_half(conn, branch.id, year, half)
        if found is None:
            raise NotFound("democratic.no_round", half=f"{year}-H{half}")
        return found
    found = await repo.latest(conn, branch.id)
    if found is None:
        raise NotFound("democratic.no_rounds")
    return found


async def _live_round(conn: Connection, round_id: int) -> Round:
    """The round as it stands inside this transaction, refused once closed."""
    found = await repo.by_id(conn, round_id)
    if found is None:
        raise NotFound("democratic.round_not_found")
    if not found.is_open:
        raise InvalidInput("democratic.closed", half=found.code)
    return found


async def _participants(conn: Connection, branch: Branch, found: Round) -> list[Member]:
    """Who rates and is rated: approved, not exempt, a member of the branch at some time in the half."""
    chains = await chains_near_branch(conn, branch.id)  # a member who left and came back: each stay
    return [m for m in await member_repo.listing(conn, branch.id)
            if m.scored and any(in_half(s.first, s.last, found.year, found.half) for s in chains.own(m))]


async def _participant(conn: Connection, branch: Branch, found: Round, member_id: int) -> Member:
    member = await member_repo.by_id(conn, member_id)
    if member is None or member.branch_id != branch.id or member.status is not MemberStatus.APPROVED:
        raise NotAuthorized("democratic.not_in_round")
    if not member.scored:
        raise InvalidInput("democratic.exempt", name=member.name)
    if not any(in_half(s.first, s.last, found.year, found.half) for s in (await chain_of_member(conn, member.id)).own(member)):
        raise NotAuthorized("democratic.not_in_round")
    return member


async def _rater(conn: Connection, branch: Branch, found: Round, actor: Actor) -> Member:
    """The actor's member row, if they take part in the round."""
    me = await member_repo.by_user(conn, branch.id, actor.user_id)
    if me is None or me.status is not MemberStatus.APPROVED:
        raise NotAuthorized("auth.not_member")
    if not me.scored:
        raise NotAuthorized("democratic.exempt_rater")
    if not any(in_half(s.first, s.last, found.year, found.half) for s in (await chain_of_member(conn, me.id)).own(me)):
        raise NotAuthorized("democratic.not_in_round")
    return me


async def _card(conn: Connection, branch: Branch, found: Round, me: Member) -> Card:
    participants = await _participants(conn, branch, found)
    ids = {m.id for m in participants}
    given = {k: v for k, v in (await repo.given_by(conn, found.id, me.id)).items() if k in ids}
    return Card(branch=branch, round=found, me=me, peers=[m for m in participants if m.id != me.id], given=given)


async def _parts(conn: Connection, found: Round, members: list[Member]) -> dict[int, Parts]:
    """Each participant's four parts; ratings from or to non-participants are left out of the peers."""
    ids = {m.id for m in members}
    selfs: dict[int, Decimal] = {}
    peers: dict[int, list[Decimal]] = {}
    for rater, ratee, value in await repo.ratings(conn, found.id):
        if ratee not in ids:
            continue
        if rater == ratee:
            selfs[ratee] = value
        elif rater in ids:
            peers.setdefault(ratee, []).append(value)
    marks = await repo.marks(conn, found.id)
    return {m.id: Parts(self_rating=selfs.get(m.id), peers=tuple(peers.get(m.id, ())),
                        public=marks.get((m.id, "public")), branch=marks.get((m.id, "branch"))) for m in members}


async def _board(conn: Connection, branch: Branch, found: Round, viewer: Member) -> Board:
    members = await _participants(conn, branch, found)
    ids = {m.id for m in members}
    parts = await _parts(conn, found, members)
    given_count: dict[int, int] = {}
    for rater, ratee, _ in await repo.ratings(conn, found.id):
        if rater != ratee and rater in ids and ratee in ids:
            given_count[rater] = given_count.get(rater, 0) + 1
    invites = await repo.invites(conn, found.id)
    weights = rulebook_of(branch).year_result.democratic_weights
    lines = []
    for m in members:
        p = parts[m.id]
        closed = not found.is_open
        lines.append(Line(
            member=m, self_done=p.self_rating is not None, peers_given=given_count.get(m.id, 0),
            peers_received=len(p.peers), public=p.public, branch=p.branch, reached=invites.get(m.id),
            evaluation=evaluation(p, weights) if closed else None,
            unqualified=unqualified(p, weights) if closed else False,
        ))
    return Board(branch=branch, round=found, weights=dict(weights), lines=lines, viewer=viewer,
                 viewer_participates=viewer.id in ids)

