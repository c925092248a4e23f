"""The roster: joining, the secretary's approvals, CSV import, roles and member states."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from bot.clock import Clock
from bot.domain.records import Branch, Member, MemberState, MemberStatus, Role
from bot.domain.text import REASON_MAX, clean_name, clean_text
from bot.errors import AlreadyDone, InvalidInput, NotAuthorized, NotFound
from bot.services.branches import MANAGERS, Actor, require_role
from storage import members as member_repo
from storage.db import Database

ROSTER_MAX_BYTES = 512 * 1024
ROSTER_MAX_ROWS = 2000
# Column headings accepted in a roster file, Chinese or English, mapped to member fields.
ROSTER_COLUMNS = {
    "name": "name", "姓名": "name",
    "state": "state", "状态": "state",
    "reason": "state_reason", "原因": "state_reason", "状态原因": "state_reason",
    "sex": "sex", "性别": "sex",
    "birth_month": "birth_month", "出生年月": "birth_month",
    "ethnicity": "ethnicity", "民族": "ethnicity",
    "education": "education", "学历": "education",
    "party_joined_on": "party_joined_on", "入党时间": "party_joined_on",
    "health": "health", "身体状况": "health",
    "phone": "phone", "联系电话": "phone",
}
STATE_WORDS = {
    "": MemberState.ACTIVE, "active": MemberState.ACTIVE, "正式党员": MemberState.ACTIVE, "正式": MemberState.ACTIVE,
    "probationary": MemberState.PROBATIONARY, "预备党员": MemberState.PROBATIONARY, "预备": MemberState.PROBATIONARY,
    "migrant": MemberState.MIGRANT, "流动党员": MemberState.MIGRANT, "流动": MemberState.MIGRANT,
    "exempt": MemberState.EXEMPT, "不纳入积分管理": MemberState.EXEMPT, "免于积分": MemberState.EXEMPT,
}


@dataclass(frozen=True)
class JoinDecision:
    member: Member
    approved: bool


class RosterService:
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock

    async def request_join(self, branch: Branch, actor: Actor) -> Member:
        name = clean_name(actor.name) or str(actor.user_id)
        async with self.db.transaction() as conn:
            existing = await member_repo.by_user(conn, branch.id, actor.user_id)
            if existing is not None and existing.status is MemberStatus.APPROVED:
                raise AlreadyDone("join.already_member")
            if existing is not None and existing.status is MemberStatus.PENDING:
                raise AlreadyDone("join.already_pending")
            return await member_repo.request_join(
                conn, branch_id=branch.id, user_id=actor.user_id, username=actor.username, name=name, language=actor.language
            )

    async def decide_join(self, branch: Branch, member_id: int, actor: Actor, approve: bool) -> JoinDecision:
        """The secretary (or deputy) approves or refuses a join request, once."""
        today = self.clock.today(branch.timezone).isoformat()
        async with self.db.transaction() as conn:
            await require_role(conn, branch.id, actor.user_id, MANAGERS)
            member = await member_repo.by_id(conn, member_id)
            if member is None or member.branch_id != branch.id:
                raise NotFound("join.not_found")
            if member.status is not MemberStatus.PENDING:
                raise AlreadyDone("join.already_decided", name=member.name)
            if not approve:
                await member_repo.reject(conn, member.id)
                return JoinDecision(member=member, approved=False)
            roster_row = await member_repo.unclaimed_by_name(conn, branch.id, member.name)
            if roster_row is not None and member.user_id is not None:
                await member_repo.claim_roster_row(conn, pending_id=member.id, roster_id=roster_row.id,
                                                   user_id=member.user_id, username=member.username, language=member.language)
                final = await member_repo.by_id(conn, roster_row.id)
            else:
                await member_repo.approve(conn, member.id, today)
                final = await member_repo.by_id(conn, member.id)
        assert final is not None
        return JoinDecision(member=final, approved=True)

    async def import_roster(self, branch: Branch, actor: Actor, data: bytes) -> list[Member]:
        """Add every row of a CSV roster, or none: a bad row refuses the whole file with its line."""
        if len(data) > ROSTER_MAX_BYTES:
            raise InvalidInput("roster.too_big", limit_kb=ROSTER_MAX_BYTES // 1024)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = data.decode("gb18030")  # Excel on Chinese Windows saves CSV in GBK
            except UnicodeDecodeError:
                raise InvalidInput("roster.bad_encoding") from None
        rows = list(csv.reader(io.StringIO(text)))
        if not rows:
            raise InvalidInput("roster.empty")
        header = [ROSTER_COLUMNS.get(h.strip().lower(), ROSTER_COLUMNS.get(h.strip())) for h in rows[0]]
        if "name" not in header:
            raise InvalidInput("roster.no_name_column")
        unknown = [h for h, f in zip(rows[0], header) if f is None and h.strip()]
        if unknown:
            raise InvalidInput("roster.unknown_column", column=unknown[0])
        body = [r for r in rows[1:] if any(cell.strip() for cell in r)]
        if len(body) > ROSTER_MAX_ROWS:
            raise InvalidInput("roster.too_many", limit=ROSTER_MAX_ROWS)
        parsed: list[dict[str, str]] = []
        for line, row in enumerate(rows[1:], start=2):
            if not any(cell.strip() for cell in row):
                continue
            record = {f: clean_name(v) for f, v in zip(header, row) if f}
            if not record.get("name"):
                raise InvalidInput("roster.row_without_name", line=line)
            if record.get("state", "").lower() not in STATE_WORDS:
                raise InvalidInput("roster.bad_state", line=line, state=record.get("state", ""))
            if STATE_WORDS[record.get("state", "").lower()] is MemberState.EXEMPT and not record.get("state_reason"):
                raise InvalidInput("roster.exempt_without_reason", line=line)
            parsed.append(record)
        today = self.clock.today(branch.timezone).isoformat()
        added = []
        async with self.db.transaction() as conn:
            await require_role(conn, branch.id, actor.user_id, MANAGERS)
            for record in parsed:
                state = STATE_WORDS[record.pop("state", "").lower()]
                reason = record.pop("state_reason", None) or None
                name = record.pop("name")
                added.append(await member_repo.add_approved(
                    conn, branch_id=branch.id, name=name, joined_on=today, state=state.value, state_reason=reason,
                    profile=record))
        return added

    async def find(self, branch: Branch, reference: str) -> Member:
        """A member by number (as /members lists them), @username, or exact name."""
        ref = reference.strip()
        async with self.db.read() as conn:
            member = None
            if re.fullmatch(r"#?\d{1,9}", ref):
                member = await member_repo.by_id(conn, int(ref.lstrip("#")))
                if member is not None and member.branch_id != branch.id:
                    member = None
            elif ref.startswith("@"):
                member = await member_repo.by_username(conn, branch.id, ref[1:])
            else:
                matches = [m for m in await member_repo.listing(conn, branch.id) if m.name == clean_name(ref)]
                member = matches[0] if len(matches) == 1 else None
        if member is None or member.status is not MemberStatus.APPROVED:
            raise NotFound("member.not_found", reference=ref)
        return member

    async def set_role(self, branch: Branch, actor: Actor, target: Member, role: Role, grant: bool) -> bool:
        """Only the secretary assigns roles; the last secretary cannot be removed."""
        async with self.db.transaction() as conn:
            await require_role(conn, branch.id, actor.user_id, (Role.SECRETARY,))
            if grant:
                return await member_repo.grant(conn, branch.id, target.id, role, granted_by=actor.user_id)
            if role is Role.SECRETARY and len(await member_repo.holders(conn, branch.id, (Role.SECRETARY,))) <= 1:
                raise InvalidInput("role.last_secretary")
            return await member_repo.revoke(conn, branch.id, target.id, role)

    async def set_state(self, branch: Branch, actor: Actor, target: Member, state: MemberState, reason: str | None) -> Member:
        reason = clean_text(reason) or None
        if state is MemberState.EXEMPT and not reason:
            raise InvalidInput("state.exempt_needs_reason")
        if reason and len(reason) > REASON_MAX:
            raise InvalidInput("text.too_long", limit=REASON_MAX)
        async with self.db.transaction() as conn:
            await require_role(conn, branch.id, actor.user_id, MANAGERS)
            await member_repo.set_state(conn, target.id, state.value, reason)
            updated = await member_repo.by_id(conn, target.id)
        assert updated is not None
        return updated

    async def member_of(self, branch: Branch, user_id: int) -> Member:
        async with self.db.read() as conn:
            member = await member_repo.by_user(conn, branch.id, user_id)
        if member is None or member.status is not MemberStatus.APPROVED:
            raise NotAuthorized("auth.not_member")
        return member

    async def member_of_id(self, member_id: int) -> Member:
        async with self.db.read() as conn:
            member = await member_repo.by_id(conn, member_id)
        if member is None:
            raise NotFound("member.not_found", reference=f"#{member_id}")
        return member

    async def roles(self, member: Member) -> set[Role]:
        async with self.db.read() as conn:
            return await member_repo.roles_of(conn, member.id)

    async def roles_of_user(self, branch: Branch, user_id: int) -> set[Role]:
        async with self.db.read() as conn:
            member = await member_repo.by_user(conn, branch.id, user_id)
            if member is None or member.status is not MemberStatus.APPROVED:
                return set()
            return await member_repo.roles_of(conn, member.id)

    async def listing(self, branch: Branch, actor: Actor) -> list[tuple[Member, set[Role]]]:
        async with self.db.read() as conn:
            me = await member_repo.by_user(conn, branch.id, actor.user_id)
            if me is None or me.status is not MemberStatus.APPROVED:
                raise NotAuthorized("auth.not_member")
            roles = await member_repo.roles_by_member(conn, branch.id)
            return [(m, roles.get(m.id, set())) for m in await member_repo.listing(conn, branch.id)]

    async def mark_unreachable(self, member: Member) -> None:
        async with self.db.transaction() as conn:
            await member_repo.set_reachable(conn, member.id, False)

    async def mark_reachable(self, user_id: int) -> None:
        """The user opened a private chat with the bot: every branch may message them again."""
        async with self.db.transaction() as conn:
            await member_repo.set_reachable_user(conn, user_id, True)

    async def holders(self, branch: Branch, roles: tuple[Role, ...]) -> list[Member]:
        async with self.db.read() as conn:
            return await member_repo.holders(conn, branch.id, roles)


def ensure_can_manage(roles: set[Role]) -> None:
    if not roles & set(MANAGERS):
        raise NotAuthorized("auth.needs_role", roles="secretary, deputy")
