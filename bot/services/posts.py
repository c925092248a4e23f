"""Volunteer posts (浠水 设岗定责、认岗): the branch's posts, members' claims and their approval.

Each member claims up to ``rulebook.posts.claims_per_member`` of the branch's posts; a change of claims
is requested by the member and approved (or refused) by the secretary or deputy, once. The secretary
or deputy may also set a member's claims directly (members without Telegram, the claiming meeting),
and add or retire posts. Nobody approves or sets their own posts: a manager's own change is decided by
another manager (``may_score``), and the request goes to the others (``recipients``).

Scoring counts the posts held in each month (``posts_by_month``: held on the month's last day, or today
while it runs), so a change never alters a month that has ended; a member who had not claimed yet counts
the rulebook's number (the transition rule in ``bot.domain.assessment.posts_held_on``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from bot.clock import Clock
from bot.domain.assessment import Post, posts_held_on
from bot.domain.assessment import posts_by_month as _posts_by_month
from bot.domain.records import Branch, Member, MemberStatus
from bot.domain.rulebook import Rulebook
from bot.domain.text import clean_name
from bot.errors import AlreadyDone, InvalidInput, NotAuthorized, NotFound
from bot.services.branches import MANAGERS, Actor, may_score, recipients, require_role, rulebook_of
from storage import branches as branch_repo
from storage import members as member_repo
from storage import post_requests as post_request_repo
from storage import posts as post_repo
from storage.db import Connection, Database
from storage.posts import PostRequest

POST_NAME_MAX = 40


async def member_posts(conn: Connection, rulebook: Rulebook, member_id: int, on: date | None = None) -> int:
    """How many posts a member counts on ``on`` (for a month: ``counted_on(year, month, today)``); None: as
    they stand now. The rulebook's number while they have not claimed any yet."""
    if rulebook.posts is None:
        return 1
    return posts_held_on(rulebook, await post_repo.claims_of(conn, member_id), on or date.max)


async def posts_by_month(conn: Connection, rulebook: Rulebook, member_id: int, year: int,
                         today: date) -> dict[tuple[int, int], int]:
    """The posts a member counts in each month of ``year`` (for ``scoring``'s ``posts``)."""
    if rulebook.posts is None:
        return {(year, m): 1 for m in range(1, 13)}
    claims = await post_repo.claims_of(conn, member_id)
    if not claims:  # never claimed a post: every month counts the scheme's number (posts_held_on), no dates to work out
        return {(year, m): rulebook.posts.claims_per_member for m in range(1, 13)}
    return _posts_by_month(rulebook, claims, year, today)


@dataclass(frozen=True)
class PostBoard:
    branch: Branch
    rulebook: Rulebook
    posts: list[Post]
    holders: dict[int, list[Member]]  # post id → members holding it
    unclaimed: list[Member]  # scored members holding no post
    me: Member
    mine: list[Post]
    is_manager: bool

    @property
    def limit(self) -> int:
        assert self.rulebook.posts is not None
        return self.rulebook.posts.claims_per_member


@dataclass(frozen=True)
class RequestView:
    request: PostRequest
    branch: Branch
    member: Member
    wanted: list[Post]
    held: list[Post]
    decider: Member | None = None


class PostService:
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock

    @staticmethod
    def _rulebook(branch: Branch) -> Rulebook:
        rulebook = rulebook_of(branch)
        if rulebook.posts is None:
            raise InvalidInput("posts.none_in_scheme")
        return rulebook

    async def _seed(self, conn: Connection, branch: Branch, rulebook: Rulebook) -> None:
        assert rulebook.posts is not None
        await post_repo.seed(conn, branch.id, [(n.zh, n.en) for n in rulebook.posts.names])

    async def board(self, branch: Branch, actor: Actor) -> PostBoard:
        """The branch's posts with who holds them (posts are shown publicly: 依岗亮责)."""
        rulebook = self._rulebook(branch)
        async with self.db.transaction() as conn:  # the first use seeds the rulebook's posts
            me = await _approved(conn, branch, actor)
            await self._seed(conn, branch, rulebook)
            posts = await post_repo.active(conn, branch.id)
            held = await post_repo.holders(conn, branch.id)
            members = {m.id: m for m in await member_repo.listing(conn, branch.id)}
            mine = await post_repo.held(conn, me.id)
            is_manager = bool(await member_repo.roles_of(conn, me.id) & set(MANAGERS))
        holding = {p.id: [members[i] for i in held.get(p.id, []) if i in members] for p in posts}
        claimed = {i for ids in held.values() for i in ids}
        unclaimed = [m for m in members.values() if m.scored and m.id not in claimed]
        return PostBoard(branch=branch, rulebook=rulebook, posts=posts, holders=holding, unclaimed=unclaimed,
                         me=me, mine=mine, is_manager=is_manager)

    async def _wanted(self, conn: Connection, branch: Branch, rulebook: Rulebook, numbers: list[int]) -> list[Post]:
        assert rulebook.posts is not None
        if len(set(numbers)) != len(numbers):
            raise InvalidInput("posts.repeated")
        if len(numbers) > rulebook.posts.claims_per_member:
            raise InvalidInput("posts.too_many", limit=rulebook.posts.claims_per_member)
        by_number = {p.number: p for p in await post_repo.active(conn, branch.id)}
        missing = [n for n in numbers if n not in by_number]
        if missing:
            raise InvalidInput("posts.no_such_post", number=missing[0])
        return [by_number[n] for n in sorted(numbers)]

    async def request(self, branch: Branch, actor: Actor, numbers: list[int], client_key: str) -> tuple[RequestView, bool]:
        """A member asks to hold exactly these posts; a replay (same client_key), or a second request for
        the same posts while the first still waits, finds that request (created: False)."""
        rulebook = self._rulebook(branch)
        async with self.db.transaction() as conn:
            me = await _approved(conn, branch, actor)
            if not me.scored:
                raise InvalidInput("posts.not_scored", name=me.name)
            await self._seed(conn, branch, rulebook)
            wanted = await self._wanted(conn, branch, rulebook, numbers)
            held = await post_repo.held(conn, me.id)
            # a replay (same key) or the same posts already waiting for a decision: that request, nothing new
            request, created = await post_request_repo.create_unless_pending(
                conn, branch_id=branch.id, member_id=me.id, post_ids=[p.id for p in wanted], client_key=client_key)
            if created:
                if {p.id for p in held} == {p.id for p in wanted}:
                    raise InvalidInput("posts.no_change")  # rolls the request back
                await post_repo.withdraw_others(conn, me.id, request.id)
        return RequestView(request=request, branch=branch, member=me, wanted=wanted, held=held), created

    async def view(self, request_id: int) -> RequestView:
        async with self.db.read() as conn:
            return await _view(conn, request_id)

    async def decide(self, request_id: int, actor: Actor, approve: bool) -> RequestView:
        """The secretary or deputy approves or refuses a request, exactly once."""
        async with self.db.transaction() as conn:
            request = await post_repo.request_by_id(conn, request_id)
            if request is None:
                raise NotFound("posts.request_not_found")
            branch = await branch_repo.by_id(conn, request.branch_id)
            requester = await member_repo.by_id(conn, request.member_id)
            assert branch is not None and requester is not None
            decider = await _may_decide(conn, branch, actor, requester, "posts.own_request")
            if request.status != "pending":
                raise AlreadyDone("posts.request_decided", status=request.status)
            view = await _view(conn, request_id)
            if approve:
                rulebook = self._rulebook(branch)
                assert rulebook.posts is not None
                if any(p.removed for p in view.wanted) or len(view.wanted) > rulebook.posts.claims_per_member:
                    raise InvalidInput("posts.request_stale")
            if not await post_repo.decide(conn, request.id, "approved" if approve else "rejected", decider.id):
                raise AlreadyDone("posts.request_decided", status="?")
            if approve:
                await post_repo.set_claims(conn, branch.id, request.member_id, [p.id for p in view.wanted],
                                           self.clock.today(branch.timezone), request_id=request.id)
            decided = await _view(conn, request_id)
        return RequestView(request=decided.request, branch=decided.branch, member=decided.member,
                           wanted=decided.wanted, held=view.held, decider=decider)

    async def set_claims(self, branch: Branch, actor: Actor, target: Member, numbers: list[int]) -> list[Post]:
        """The secretary or deputy sets a member's posts directly (e.g. as claimed at the branch meeting);
        never their own (they request, and another manager decides)."""
        rulebook = self._rulebook(branch)
        async with self.db.transaction() as conn:
            await _may_decide(conn, branch, actor, target, "posts.own_set")
            if not target.scored:
                raise InvalidInput("posts.not_scored", name=target.name)
            await self._seed(conn, branch, rulebook)
            wanted = await self._wanted(conn, branch, rulebook, numbers)
            await post_repo.set_claims(conn, branch.id, target.id, [p.id for p in wanted], self.clock.today(branch.timezone))
            await post_repo.withdraw_others(conn, target.id, keep_id=0)  # pending requests are superseded
        return wanted

    async def add(self, branch: Branch, actor: Actor, name: str) -> Post:
        rulebook = self._rulebook(branch)
        cleaned = clean_name(name)
        if not cleaned:
            raise InvalidInput("posts.name_required")
        if len(cleaned) > POST_NAME_MAX:
            raise InvalidInput("text.too_long", limit=POST_NAME_MAX)
        async with self.db.transaction() as conn:
            await require_role(conn, branch.id, actor.user_id, MANAGERS)
            await self._seed(conn, branch, rulebook)
            if any(cleaned in (p.name_zh, p.name_en) for p in await post_repo.active(conn, branch.id)):
                raise AlreadyDone("posts.exists", name=cleaned)
            return await post_repo.add(conn, branch.id, cleaned)

    async def remove(self, branch: Branch, actor: Actor, number: int) -> tuple[Post, list[Member]]:
        """Retire a post; whoever held it no longer does (they may claim another)."""
        rulebook = self._rulebook(branch)
        async with self.db.transaction() as conn:
            await require_role(conn, branch.id, actor.user_id, MANAGERS)
            await self._seed(conn, branch, rulebook)
            post = await post_repo.remove(conn, branch.id, number)
            if post is None:
                raise NotFound("posts.no_such_post", number=number)
            released = await post_repo.release_post(conn, post.id, self.clock.today(branch.timezone))
            members = [m for i in released if (m := await member_repo.by_id(conn, i)) is not None]
        return post, members

    async def pending(self, branch: Branch, actor: Actor) -> list[RequestView]:
        """The pending requests this manager may decide (not their own)."""
        async with self.db.read() as conn:
            me = await require_role(conn, branch.id, actor.user_id, MANAGERS)
            return [await _view(conn, r.id) for r in await post_repo.pending(conn, branch.id) if r.member_id != me.id]

    async def approvers(self, branch: Branch, requester: Member) -> list[Member]:
        """Who is asked to decide a member's request: the secretary and deputy, never the requester."""
        async with self.db.read() as conn:
            return await recipients(conn, branch.id, about=requester, prefer=MANAGERS, fallback=MANAGERS)

    async def remember_message(self, request_id: int, chat_id: int, message_id: int) -> None:
        async with self.db.transaction() as conn:
            await post_repo.add_message(conn, request_id, chat_id, message_id)

    async def messages(self, request_id: int) -> list[tuple[int, int]]:
        async with self.db.read() as conn:
            return await post_repo.messages(conn, request_id)


async def _may_decide(conn: Connection, branch: Branch, actor: Actor, target: Member, own_key: str) -> Member:
    """The secretary or deputy deciding ``target``'s posts (the shared rule: nobody decides their own)."""
    try:
        return await may_score(conn, branch.id, actor.user_id, target, roles=MANAGERS)
    except NotAuthorized as exc:
        if exc.key == "decision.own":
            raise NotAuthorized(own_key) from None
        raise


async def _approved(conn: Connection, branch: Branch, actor: Actor) -> Member:
    member = await member_repo.by_user(conn, branch.id, actor.user_id)
    if member is None or member.status is not MemberStatus.APPROVED:
        raise NotAuthorized("auth.not_member")
    return member


async def _view(conn: Connection, request_id: int) -> RequestView:
    request = await post_repo.request_by_id(conn, request_id)
    if request is None:
        raise NotFound("posts.request_not_found")
    branch = await branch_repo.by_id(conn, request.branch_id)
    member = await member_repo.by_id(conn, request.member_id)
    assert branch is not None and member is not None
    wanted = await post_repo.by_ids(conn, list(request.post_ids))
    held = await post_repo.held(conn, member.id)
    return RequestView(request=request, branch=branch, member=member, wanted=wanted, held=held)
