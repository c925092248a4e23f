"""Secretary succession: what a member's roles become when they leave the branch's group, a secretary
handing the role over (stepping down) or adding a second secretary, and a group administrator claiming
the secretary role when the branch has no secretary in the group any more.

Leaving the Telegram group is not leaving the party branch (that is /remove or a transfer): the member
row, its points and history stay as they are. Its roles are dropped, each logged (``role_changes``):
a role is authority exercised over the group — approving joins, the roll call, the cards and buttons
posted there — and someone who is no longer in the group neither sees those nor should keep acting for
it in private (a member the group's administrators removed would otherwise go on recording points).
Coming back into the group restores nothing by itself: the secretary grants the roles again, or, with
no secretary left, a group administrator claims the secretary role (``claim``).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import Clock
from bot.domain.records import Branch, Member, MemberStatus, Role
from bot.errors import AlreadyDone, InvalidInput, NotAuthorized, NotFound
from bot.i18n import t
from bot.services.branches import Actor, require_role
from bot.domain.text import clean_name
from storage import branches as branch_repo
from storage import members as member_repo
from storage import roster as roster_repo
from storage import succession as succession_repo
from storage.db import Connection, Database


@dataclass(frozen=True)
class Departure:
    """A member who held roles left the group: the roles dropped, and whether the branch has no
    secretary who can act (one with a Telegram account) any more."""
    branch: Branch
    member: Member
    roles: frozenset[Role]
    vacant: bool


@dataclass(frozen=True)
class HandOver:
    successor: Member
    predecessor: Member


async def _acting_secretaries(conn: Connection, branch_id: int) -> list[Member]:
    """The branch's secretaries who can act: approved, with a Telegram account."""
    return [m for m in await member_repo.holders(conn, branch_id, (Role.SECRETARY,)) if m.user_id is not None]


async def _member_here(conn: Connection, branch: Branch, member_id: int) -> Member:
    member = await member_repo.by_id(conn, member_id)
    if member is None or member.branch_id != branch.id or member.status is not MemberStatus.APPROVED:
        raise NotFound("member.not_found", reference=f"#{member_id}")
    return member


class SuccessionService:
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock

    async def left_group(self, chat_id: int, user_id: int) -> Departure | None:
        """The user left (or was removed from) the group ``chat_id``: their roles in its branch dropped and
        logged, once (a second report of the same departure finds none). None when there is nothing to
        say: no branch here, not an approved member, or no role held."""
        async with self.db.transaction() as conn:
            branch = await branch_repo.by_chat(conn, chat_id)
            if branch is None:
                return None
            member = await member_repo.by_user(conn, branch.id, user_id)
            if member is None or member.status is not MemberStatus.APPROVED:
                return None
            roles = await roster_repo.drop_roles(conn, branch.id, member.id)
            for role in sorted(roles):
                await succession_repo.log_change(conn, branch_id=branch.id, member_id=member.id, role=role.value,
                                                 change="left_group", by_user=None)
            vacant = not await _acting_secretaries(conn, branch.id)
        if not roles:
            return None
        return Departure(branch=branch, member=member, roles=frozenset(roles), vacant=vacant)

    async def secretaries(self, branch: Branch) -> list[Member]:
        """The secretaries who can act (with a Telegram account), to ask Telegram whether they are still
        in the group."""
        async with self.db.read() as conn:
            return await _acting_secretaries(conn, branch.id)

    async def claim(self, branch: Branch, actor: Actor, *, is_admin: bool) -> Member:
        """A group administrator (``is_admin``: asked of Telegram at the press) takes the secretary role
        while the branch has no secretary who can act. Someone not (or no longer) on the roll becomes a
        member from today, as whoever ran /setup did. Once: with a secretary in place it is refused."""
        if not is_admin:
            raise NotAuthorized("succession.admins_only")
        today = self.clock.today(branch.timezone).isoformat()
        async with self.db.transaction() as conn:  # one writer at a time: two claims cannot both pass
            present = await _acting_secretaries(conn, branch.id)
            if present:
                names = t(branch.language, "common.list_separator").join(m.name for m in present)  # 、 in Chinese
                if any(m.user_id == actor.user_id for m in present):
                    raise AlreadyDone("succession.already_yours")
                raise AlreadyDone("succession.not_vacant", names=names)
            member = await member_repo.by_user(conn, branch.id, actor.user_id)
            if member is None or member.status is not MemberStatus.APPROVED:
                pending = await member_repo.request_join(
                    conn, branch_id=branch.id, user_id=actor.user_id, username=actor.username,
                    name=clean_name(actor.name) or str(actor.user_id), language=actor.language)
                await member_repo.approve(conn, pending.id, today)
                member = await member_repo.by_id(conn, pending.id)
                assert member is not None
            await member_repo.grant(conn, branch.id, member.id, Role.SECRETARY, granted_by=actor.user_id)
            await succession_repo.log_change(conn, branch_id=branch.id, member_id=member.id, role=Role.SECRETARY.value,
                                             change="claimed", by_user=actor.user_id)
        return member

    async def _still_applies(self, conn: Connection, branch: Branch, actor: Actor, successor_id: int) -> tuple[Member, Member]:
        """The choice under /role N secretary (hand over, or keep both) still describes the roles now, read in
        the caller's write transaction: the sender is a secretary of the branch, the appointee is still one
        (not revoked by /role N -secretary, not gone from the group or the branch), and no hand-over was made
        from the appointment already. (sender, appointee); otherwise a refusal that names what changed."""
        successor = await member_repo.by_id(conn, successor_id)
        if successor is None or successor.branch_id != branch.id:
            raise NotFound("member.not_found", reference=f"#{successor_id}")
        me = await member_repo.by_user(conn, branch.id, actor.user_id)
        if me is not None and me.id == successor.id:
            raise InvalidInput("succession.not_to_yourself")
        mine = await member_repo.roles_of(conn, me.id) if me is not None and me.status is MemberStatus.APPROVED else set()
        theirs = (await member_repo.roles_of(conn, successor.id)
                  if successor.status is MemberStatus.APPROVED else set())
        last = await succession_repo.last_change(conn, branch.id, successor.id, Role.SECRETARY.value)
        if Role.SECRETARY in theirs and last == ("handed_over", actor.user_id):
            raise AlreadyDone("succession.handed_already", name=successor.name)
        if Role.SECRETARY not in mine:
            raise NotAuthorized("succession.no_longer_secretary")
        if Role.SECRETARY not in theirs:
            raise AlreadyDone("succession.appointee_not_secretary", name=successor.name, number=successor.id)
        assert me is not None
        return me, successor

    async def hand_over(self, branch: Branch, actor: Actor, successor_id: int) -> HandOver:
        """The secretary steps down in favour of ``successor_id``, whom /role made secretary (their other
        roles stay). Checked in the same write transaction as the change (``_still_applies``): a stale press
        — the appointment revoked, the appointee gone from the group, the sender no longer secretary, the
        hand-over done already — is refused and changes nothing, so the branch is never left without a
        secretary who can act: the appointee must also have a Telegram account."""
        async with self.db.transaction() as conn:
            me, successor = await self._still_applies(conn, branch, actor, successor_id)
            if successor.user_id is None:
                raise InvalidInput("succession.appointee_no_account", name=successor.name)
            await member_repo.revoke(conn, branch.id, me.id, Role.SECRETARY)
            await succession_repo.log_change(conn, branch_id=branch.id, member_id=successor.id,
                                             role=Role.SECRETARY.value, change="handed_over", by_user=actor.user_id)
            await succession_repo.log_change(conn, branch_id=branch.id, member_id=me.id,
                                             role=Role.SECRETARY.value, change="stepped_down", by_user=actor.user_id)
        return HandOver(successor=successor, predecessor=me)

    async def keep(self, branch: Branch, actor: Actor, successor_id: int) -> tuple[Member, Member]:
        """"Keep both": nothing changes, but the announcement that both are secretaries is made only while it
        is true (``_still_applies``, under the write lock so that a hand-over pressed at the same moment is
        either seen or comes after)."""
        async with self.db.transaction() as conn:
            return await self._still_applies(conn, branch, actor, successor_id)

    async def add_secretary(self, branch: Branch, actor: Actor, member_id: int) -> tuple[Member, bool]:
        """The secretary makes ``member_id`` a second secretary, staying one: (member, whether it changed)."""
        async with self.db.transaction() as conn:
            await require_role(conn, branch.id, actor.user_id, (Role.SECRETARY,))
            member = await _member_here(conn, branch, member_id)
            granted = await member_repo.grant(conn, branch.id, member.id, Role.SECRETARY, granted_by=actor.user_id)
            if granted:
                await succession_repo.log_change(conn, branch_id=branch.id, member_id=member.id,
                                                 role=Role.SECRETARY.value, change="added", by_user=actor.user_id)
        return member, granted

    async def is_secretary(self, branch: Branch, user_id: int) -> bool:
        async with self.db.read() as conn:
            member = await member_repo.by_user(conn, branch.id, user_id)
            if member is None or member.status is not MemberStatus.APPROVED:
                return False
            return Role.SECRETARY in await member_repo.roles_of(conn, member.id)
