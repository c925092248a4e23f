"""The roster: joining, the secretary's approvals, CSV import, roles and member states."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date

from bot.clock import Clock
from bot.domain.records import Branch, Member, MemberState, MemberStatus, Role
from bot.domain.text import REASON_MAX, clean_name, clean_text
from bot.errors import AlreadyDone, InvalidInput, NotAuthorized, NotFound
from bot.services.branches import MANAGERS, Actor, require_role
from storage import declarations as declaration_repo
from storage import members as member_repo
from storage import roster as roster_repo
from storage import transfers as transfer_repo
from storage.db import Connection, Database

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
    "phone": "phone", "联系电话": "phone", "电话": "phone",
    "number": "number", "编号": "number", "#": "number",
}
STATE_WORDS = {
    "": MemberState.ACTIVE, "active": MemberState.ACTIVE, "正式党员": MemberState.ACTIVE, "正式": MemberState.ACTIVE,
    "probationary": MemberState.PROBATIONARY, "预备党员": MemberState.PROBATIONARY, "预备": MemberState.PROBATIONARY,
    "migrant": MemberState.MIGRANT, "流动党员": MemberState.MIGRANT, "流动": MemberState.MIGRANT,
    "exempt": MemberState.EXEMPT, "不纳入积分管理": MemberState.EXEMPT, "免于积分": MemberState.EXEMPT,
}


@dataclass(frozen=True)
class RosterImport:
    """What an upload did: members added, members it changed, members it named as they already were, and
    the rows it did not add because they name only someone who has left the branch: (line, name, number)."""
    added: list[Member]
    updated: list[Member]
    unchanged: list[Member]
    gone: list[tuple[int, str, int]]


class RosterConflicts(InvalidInput):
    """Rows of an upload that cannot be told apart (nothing saved): each (key, params), the lines of a
    params["lines"] as a tuple of numbers for the reader's list separator."""

    def __init__(self, problems: list[tuple[str, dict]]):
        super().__init__("roster.conflicts", count=len(problems))
        self.problems = problems


@dataclass(frozen=True)
class _Row:
    line: int
    number: int | None  # the 编号 column: the member this row is about
    record: dict[str, str]


@dataclass(frozen=True)
class _Plan:
    rows: list[tuple[_Row, Member | None]]  # each row with the member it updates (None: a new member)
    gone: list[tuple[int, str, int]]


def _numbers(members: list[Member]) -> str:
    """"#3 / #5 ⌀": the numbers that tell members apart (⌀: not linked to Telegram, as /members marks it)."""
    return " / ".join(f"#{m.id}" + ("" if m.user_id else " ⌀") for m in members)


def _refuse_names_twice(rows: list[_Row]) -> None:
    """A name on several lines (without 编号 on each), or one 编号 on several lines: which is right?"""
    problems: list[tuple[str, dict]] = []
    by_name: dict[str, list[int]] = {}
    by_number: dict[int, list[int]] = {}
    for row in rows:
        if row.number is None:
            by_name.setdefault(row.record["name"], []).append(row.line)
        else:
            by_number.setdefault(row.number, []).append(row.line)
    for name, lines in by_name.items():
        if len(lines) > 1:
            problems.append(("roster.name_twice", {"name": name, "lines": tuple(lines)}))
    for number, lines in by_number.items():
        if len(lines) > 1:
            problems.append(("roster.number_twice", {"number": number, "lines": tuple(lines)}))
    if problems:
        raise RosterConflicts(problems)


def _match(rows: list[_Row], present: list[Member], left: list[Member]) -> _Plan:
    """Each row's member: by 编号 (which must be a member of the branch with that name), else by name
    (none: a new member; several: refused). Every problem found is reported at once."""
    by_id = {m.id: m for m in present}
    by_name: dict[str, list[Member]] = {}
    for m in present:
        by_name.setdefault(m.name, []).append(m)
    gone_names: dict[str, Member] = {}
    for m in left:
        gone_names.setdefault(m.name, m)
    problems: list[tuple[str, dict]] = []
    planned: list[tuple[_Row, Member | None]] = []
    gone: list[tuple[int, str, int]] = []
    lines_of: dict[int, list[int]] = {}
    for row in rows:
        name = row.record["name"]
        if row.number is not None:
            member = by_id.get(row.number)
            if member is None:
                problems.append(("roster.unknown_number", {"line": row.line, "number": row.number}))
                continue
            if member.name != name:
                problems.append(("roster.number_name_mismatch",
                                 {"line": row.line, "number": row.number, "name": name, "actual": member.name}))
                continue
        else:
            matches = by_name.get(name, [])
            if len(matches) > 1:
                problems.append(("roster.ambiguous_name", {"line": row.line, "name": name, "numbers": _numbers(matches)}))
                continue
            member = matches[0] if matches else None
            if member is None and name in gone_names:
                gone.append((row.line, name, gone_names[name].id))
                continue
        if member is not None:
            lines_of.setdefault(member.id, []).append(row.line)
        planned.append((row, member))
    for member_id, lines in lines_of.items():
        if len(lines) > 1:  # "张三" on one line and "#3,张三" on another
            problems.append(("roster.member_twice", {"number": member_id, "name": by_id[member_id].name, "lines": tuple(lines)}))
    if problems:
        raise RosterConflicts(sorted(problems, key=lambda p: _first_line(p[1])))
    return _Plan(rows=planned, gone=gone)


def _first_line(params: dict) -> int:
    lines = params.get("lines")
    return min(lines) if lines else int(params.get("line", 0))


def _changes(member: Member, record: dict[str, str]) -> dict[str, str | None]:
    """The stored fields a row changes: each field it fills in that differs (an empty cell changes nothing;
    an empty 状态 keeps the state and its reason; a new state takes the row's reason, or none)."""
    changes: dict[str, str | None] = {}
    for field in member_repo.PROFILE_FIELDS:
        value = record.get(field, "")
        if value and value != getattr(member, field):
            changes[field] = value
    state_word = record.get("state", "")
    if state_word:
        state = STATE_WORDS[state_word.lower()]
        reason = record.get("state_reason") or None
        if state is not member.state:
            changes["state"], changes["state_reason"] = state.value, reason
        elif reason and reason != member.state_reason:
            changes["state_reason"] = reason
    return changes


@dataclass(frozen=True)
class RemovalCheck:
    reason: str  # cleaned
    voidable: bool  # nothing personal recorded: the approval may be undone as a mistake


@dataclass(frozen=True)
class Removal:
    member: Member  # as it is now: status left (left_on today), or rejected when voided
    roles: set[Role]  # the roles it held, dropped
    voided: bool = False
    withdrawn: tuple[int, ...] = ()  # its declarations still waiting, withdrawn with the removal


def _removal_reason(reason: str) -> str:
    """A removal's reason, cleaned: required, at most REASON_MAX characters."""
    cleaned = clean_text(reason)
    if not cleaned:
        raise InvalidInput("remove.needs_reason")
    if len(cleaned) > REASON_MAX:
        raise InvalidInput("text.too_long", limit=REASON_MAX)
    return cleaned


async def _not_the_last_secretary(conn: Connection, branch: Branch, member: Member) -> None:
    secretaries = await member_repo.holders(conn, branch.id, (Role.SECRETARY,))
    if [m.id for m in secretaries] == [member.id]:
        raise InvalidInput("remove.last_secretary", name=member.name)


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
            if existing is not None and existing.status is MemberStatus.LEFT:
                await _refuse_return_while_moved_away(conn, existing)
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
            if roster_row is not None and member.user_id is not None and member.joined_on is None:  # not a return
                await member_repo.claim_roster_row(conn, pending_id=member.id, roster_id=roster_row.id,
                                                   user_id=member.user_id, username=member.username, language=member.language)
                final = await member_repo.by_id(conn, roster_row.id)
            else:
                await member_repo.approve(conn, member.id, today)
                final = await member_repo.by_id(conn, member.id)
        assert final is not None
        return JoinDecision(member=final, approved=True)

    async def import_roster(self, branch: Branch, actor: Actor, data: bytes) -> RosterImport:
        """Apply a CSV roster, every row or none.

        A row names a member of the branch by their name (cleaned as /join cleans a Telegram name), or by
        the number /members shows when the file has a 编号 column. A row naming a member already on the
        roster — joined by /join or uploaded before — updates that member: each column the file has and
        the row fills in replaces the stored value (an empty cell keeps it; an empty 状态 keeps the state).
        A row naming nobody adds a member, as before; one naming only someone who has left the branch
        (moved away, removed) is not added again and is reported. A bad row refuses the whole file with its
        line; so do rows the upload cannot tell apart: a name twice in the file, a name shared by several
        members (the 编号 column says which), two rows for one member."""
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
        parsed: list[_Row] = []
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
            number_text = record.pop("number", "")
            if number_text and not re.fullmatch(r"#?\d{1,9}", number_text):
                raise InvalidInput("roster.bad_number", line=line, number=number_text)
            parsed.append(_Row(line=line, number=int(number_text.lstrip("#")) if number_text else None, record=record))
        if not parsed:
            raise InvalidInput("roster.empty")  # a heading and no one under it
        _refuse_names_twice(parsed)
        today = self.clock.today(branch.timezone).isoformat()
        async with self.db.transaction() as conn:  # one writer at a time: what is read here is what is changed
            uploader = await require_role(conn, branch.id, actor.user_id, MANAGERS)
            known = await member_repo.listing(conn, branch.id, ("approved", "left"))
            plan = _match(parsed, [m for m in known if m.status is MemberStatus.APPROVED],
                          [m for m in known if m.status is MemberStatus.LEFT])
            result = RosterImport(added=[], updated=[], unchanged=[], gone=plan.gone)
            for row, member in plan.rows:
                record = dict(row.record)
                state = STATE_WORDS[record.pop("state", "").lower()]
                reason = record.pop("state_reason", None) or None
                name = record.pop("name")
                if member is None:
                    result.added.append(await member_repo.add_approved(
                        conn, branch_id=branch.id, name=name, joined_on=today, state=state.value, state_reason=reason,
                        profile=record))
                    continue
                changes = _changes(member, row.record)
                if not changes:
                    result.unchanged.append(member)
                    continue
                if not await roster_repo.update_fields(conn, member.id, changes):  # not inside the writer's lock
                    raise RuntimeError(f"member #{member.id} stopped being approved during a roster upload")
                if "state" in changes:  # a new state from this month, as /state without a month (bot.domain.states)
                    from storage import member_states as state_repo
                    await state_repo.record(conn, member.id, before=member.state, before_reason=member.state_reason,
                                            state=MemberState(changes["state"]), reason=changes.get("state_reason"),
                                            from_date=date.fromisoformat(today).replace(day=1), set_by=uploader.id)
                updated = await member_repo.by_id(conn, member.id)
                assert updated is not None
                result.updated.append(updated)
        return result

    async def find(self, branch: Branch, reference: str) -> Member:
        """A member by number (as /members lists them), @username, or exact name; a name that several
        members share is refused with their numbers (the number picks one)."""
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
                if len(matches) > 1:
                    raise InvalidInput("member.ambiguous", reference=ref, numbers=_numbers(matches),
                                       first=matches[0].id)
                member = matches[0] if matches else None
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

    async def check_removal(self, branch: Branch, actor: Actor, target: Member, reason: str) -> RemovalCheck:
        """Whether the secretary may remove ``target`` (asked before the confirm buttons): the reason, cleaned,
        and whether the member may instead be voided (nothing personal recorded: see ``void``)."""
        reason = _removal_reason(reason)
        async with self.db.read() as conn:
            await require_role(conn, branch.id, actor.user_id, (Role.SECRETARY,))
            await _not_the_last_secretary(conn, branch, target)
            voidable = await roster_repo.personal_records(conn, target.id) == 0
        return RemovalCheck(reason=reason, voidable=voidable)

    async def remove(self, branch: Branch, actor: Actor, member_id: int, reason: str, void: bool = False) -> Removal:
        """A member who left the party organisation for good (died, 出党): the row stays, status left from
        today (the months up to this one stay theirs: the year's grading lists them, as a transfer's), its
        roles dropped; the ledger, declarations and published notices stay as they are.

        ``void``: an approval made by mistake (a person who never was a member here, a duplicate roster row):
        the row becomes as a refused join request, counted in no month. Only for a member with nothing
        personal recorded (no declaration, no ledger row but the bot's automatic ones), checked here again.
        Once, either way: a second press is AlreadyDone. The reason is kept with who removed and when
        (``member_removals``)."""
        reason = _removal_reason(reason)
        async with self.db.transaction() as conn:
            secretary = await require_role(conn, branch.id, actor.user_id, (Role.SECRETARY,))
            member = await member_repo.by_id(conn, member_id)
            if member is None or member.branch_id != branch.id:
                raise NotFound("member.not_found", reference=f"#{member_id}")
            if member.status in (MemberStatus.LEFT, MemberStatus.REJECTED):
                raise AlreadyDone("remove.already", name=member.name)
            if member.status is not MemberStatus.APPROVED:
                raise NotFound("member.not_found", reference=f"#{member_id}")
            await _not_the_last_secretary(conn, branch, member)
            withdrawn: tuple[int, ...] = ()
            if void:
                if await roster_repo.personal_records(conn, member.id):
                    raise InvalidInput("remove.not_voidable", name=member.name)
                done = await roster_repo.void(conn, member.id)
            else:
                done = await member_repo.set_left(conn, member.id, self.clock.today(branch.timezone).isoformat())
            if not done:
                raise AlreadyDone("remove.already", name=member.name)
            # Nobody would decide them for a member gone for good: approved, a row would count for someone
            # no notice lists any more. (A transfer keeps them: the deed was done in this branch.)
            withdrawn = tuple(await declaration_repo.withdraw_pending_of_member(conn, member.id, reason))
            roles = await roster_repo.drop_roles(conn, branch.id, member.id)
            await roster_repo.record_removal(conn, branch_id=branch.id, member_id=member.id, removed_by=secretary.id,
                                             reason=reason, voided=void)
            gone = await member_repo.by_id(conn, member.id)
        assert gone is not None
        return Removal(member=gone, roles=roles, voided=void, withdrawn=withdrawn)

    async def set_state(self, branch: Branch, actor: Actor, target: Member, state: MemberState, reason: str | None,
                        from_month: date | None = None) -> Member:
        """The member's state from the first day of ``from_month`` (None: this month), kept with its date
        (``member_states``, bot.domain.states): the months before keep the state they had. The month is
        not after this one, not before the month they joined, nor before the last change recorded (the
        history is told in order); its year is not finalised. The state they are in already: only the
        reason changes."""
        from storage import grading as grading_repo
        from storage import member_states as state_repo

        reason = clean_text(reason) or None
        if state is MemberState.EXEMPT and not reason:
            raise InvalidInput("state.exempt_needs_reason")
        if reason and len(reason) > REASON_MAX:
            raise InvalidInput("text.too_long", limit=REASON_MAX)
        this_month = self.clock.today(branch.timezone).replace(day=1)
        start = this_month if from_month is None else from_month.replace(day=1)
        if start > this_month:
            raise InvalidInput("state.future_month", month=f"{start:%Y-%m}")
        async with self.db.transaction() as conn:
            setter = await require_role(conn, branch.id, actor.user_id, MANAGERS)
            member = await member_repo.by_id(conn, target.id)
            if member is None or member.branch_id != branch.id:
                raise NotFound("member.not_found", reference=f"#{target.id}")
            if member.state is state and from_month is not None:  # a month would say a change that is not made
                raise InvalidInput("state.already", name=member.name)
            if member.state is not state:
                if member.joined_on is not None and start < member.joined_on.replace(day=1):
                    raise InvalidInput("state.before_joined", name=member.name, month=f"{start:%Y-%m}",
                                       joined=member.joined_on.isoformat())
                last = await state_repo.latest(conn, member.id)
                if last is not None and last.from_date is not None and start < last.from_date.replace(day=1):
                    # the months before the last change cannot change any more; from its month on they can
                    # (a second change in that month replaces it: bot.domain.states), which the message says
                    raise InvalidInput("state.before_last", name=member.name, month=f"{start:%Y-%m}",
                                       last=f"{last.from_date:%Y-%m}", number=member.id)
                if await grading_repo.is_locked(conn, branch.id, start.year):
                    raise InvalidInput("year.locked", year=start.year)
                await state_repo.record(conn, member.id, before=member.state, before_reason=member.state_reason,
                                        state=state, reason=reason, from_date=start, set_by=setter.id)
            await member_repo.set_state(conn, member.id, state.value, reason)
            updated = await member_repo.by_id(conn, member.id)
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


async def _refuse_return_while_moved_away(conn: Connection, row: Member) -> None:
    """A member whose organisational relationship moved from this row to another branch (组织关系转接),
    and who is still in that branch, comes back by a transfer from there, not by /join: a /join would
    give the person two branches at once, and the year's grading would flip to this one."""
    for move in reversed(await transfer_repo.moves_of_person(conn, row.id)):
        if move["member_id"] != row.id:
            continue
        now = await member_repo.by_id(conn, move["new_member_id"])
        if now is not None and now.status is MemberStatus.APPROVED:
            raise InvalidInput("join.moved_away", branch=move["to_title"])
        return
