"""Member transfers (组织关系转接): the sending branch's secretary starts one, the receiving branch's
secretary accepts it. The member keeps their history: the old row is marked left with its ledger
untouched; the receiving branch gets a new row linked to it (members.transferred_from) — or, when the
member was in that branch before (A→B→A), their old row there comes back. The accepted transfers make
the member's chain of stints (bot.domain.town.chains_of); which branch grades a year follows the
rulebook setting ``transfer_result`` of the branch the member was in last that year
(bot.domain.town.year_part). ``Chains`` is what grading, /points and /history read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from bot.clock import Clock
from bot.domain.assessment import Claim
from bot.domain.records import Branch, Member, MemberStatus, Role
from bot.domain.scoring import EntryRow
from bot.domain.town import (
    Move,
    Stint,
    TransferRule,
    YearHome,
    YearPart,
    chains_of,
    in_year,
    new_code,
    normalise_code,
    rule_of_year,
    year_home,
    year_part,
)
from bot.errors import AlreadyDone, InvalidInput, NotAuthorized, NotFound
from bot.presets import preset
from bot.services.branches import MANAGERS, Actor, require_role
from storage import branches as branch_repo
from storage import members as member_repo
from storage import transfers as transfer_repo
from storage.db import Connection, Database

TRANSFER_VALID = timedelta(days=30)


@dataclass(frozen=True)
class Transfer:
    id: int
    code: str
    member: Member  # the row in the sending branch
    from_branch: Branch
    to_branch: Branch | None
    expires_at: datetime
    new_member: Member | None = None


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


async def _keeps_a_secretary(conn: Connection, branch_id: int, member: Member) -> None:
    """A branch is never left without a secretary: its only secretary cannot move out until another is
    appointed (roles do not travel; a branch without one could not approve joins or appoint anyone)."""
    secretaries = await member_repo.holders(conn, branch_id, (Role.SECRETARY,))
    if [s.id for s in secretaries] == [member.id]:
        raise InvalidInput("transfer.last_secretary", name=member.name)


class TransferService:
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock

    def _now(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    async def start(self, branch: Branch, actor: Actor, target: Member, to_chat_id: int | None = None) -> Transfer:
        """The sending secretary starts the move; ``to_chat_id`` (optional) addresses one branch."""
        async with self.db.transaction() as conn:
            sender = await require_role(conn, branch.id, actor.user_id, MANAGERS)
            member = await member_repo.by_id(conn, target.id)
            if member is None or member.branch_id != branch.id or member.status is not MemberStatus.APPROVED:
                raise NotFound("member.not_found", reference=target.name)
            if member.user_id is None:
                raise InvalidInput("transfer.no_account", name=member.name)
            await _keeps_a_secretary(conn, branch.id, member)
            to_branch = None
            if to_chat_id is not None:
                to_branch = await branch_repo.by_chat(conn, to_chat_id)
                if to_branch is None:
                    raise NotFound("transfer.unknown_branch", chat=str(to_chat_id))
                if to_branch.id == branch.id:
                    raise InvalidInput("transfer.same_branch")
            existing = await transfer_repo.open_of_member(conn, member.id)
            if existing is not None:
                raise AlreadyDone("transfer.already_open", name=member.name, code=existing["code"])
            expires = self._now() + TRANSFER_VALID
            for _ in range(5):
                row = await transfer_repo.create(conn, code=new_code(), member_id=member.id, from_branch=branch.id,
                                                 to_branch=to_branch.id if to_branch else None,
                                                 requested_by=sender.id,
                                                 expires_at=expires)
                if row is not None:
                    return Transfer(id=row["id"], code=row["code"], member=member, from_branch=branch, to_branch=to_branch,
                                    expires_at=_moment(row["expires_at"]))
        raise InvalidInput("town.code_failed")

    async def accept(self, branch: Branch, actor: Actor, code_text: str) -> Transfer:
        """The receiving secretary accepts: the old row leaves (its ledger stays), a new row joins here."""
        code = normalise_code(code_text)
        if not code:
            raise InvalidInput("transfer.code_required")
        now = self._now()
        async with self.db.transaction() as conn:
            receiver = await require_role(conn, branch.id, actor.user_id, MANAGERS)
            row = await transfer_repo.by_code(conn, code)
            if row is None:
                raise InvalidInput("transfer.code_unknown", code=code)
            if row["status"] == "accepted":
                raise AlreadyDone("transfer.already_accepted", code=code)
            if row["status"] != "pending":
                raise InvalidInput("transfer.cancelled", code=code)
            if _moment(row["expires_at"]) <= now:
                raise InvalidInput("transfer.expired", code=code)
            if row["from_branch"] == branch.id:
                raise InvalidInput("transfer.same_branch")
            if row["to_branch"] is not None and row["to_branch"] != branch.id:
                raise NotAuthorized("transfer.other_branch", code=code)
            old = await member_repo.by_id(conn, row["member_id"])
            from_branch = await branch_repo.by_id(conn, row["from_branch"])
            assert old is not None and from_branch is not None and old.user_id is not None
            here = await member_repo.by_user(conn, branch.id, old.user_id)
            if here is not None and here.status is MemberStatus.APPROVED:
                raise InvalidInput("transfer.already_here", name=old.name)
            if here is not None and here.status is MemberStatus.PENDING and await transfer_repo.drop_pending_request(conn, here.id):
                here = None  # a /join request of someone never here: the transfer replaces it (else: their row comes back)
            await _keeps_a_secretary(conn, from_branch.id, old)  # checked again here: the move happens now
            moved_on = self.clock.today(from_branch.timezone).isoformat()
            if not await transfer_repo.accept(conn, row["id"], to_branch=branch.id, accepted_by=receiver.id, moved_on=moved_on,
                                              now=now, left_joined_on=old.joined_on.isoformat() if old.joined_on else None):
                raise AlreadyDone("transfer.already_accepted", code=code)
            if not await member_repo.set_left(conn, old.id, moved_on):
                raise InvalidInput("transfer.member_gone", name=old.name)
            profile = {k: getattr(old, k) for k in member_repo.PROFILE_FIELDS}
            joined_on = self.clock.today(branch.timezone).isoformat()
            if here is None:
                new = await member_repo.add_approved(
                    conn, branch_id=branch.id, name=old.name, joined_on=joined_on, user_id=old.user_id,
                    username=old.username, language=old.language, state=old.state.value, state_reason=old.state_reason,
                    profile=profile)
                await transfer_repo.link(conn, new.id, old.id)
                await transfer_repo.set_new_member(conn, row["id"], new.id)
            else:  # back to a branch they were in (A→B→A): the old row there continues the chain
                before = (_iso(here.joined_on), _iso(here.left_on)) if here.left_on is not None else None  # left (or asking back)
                if not await transfer_repo.reactivate(conn, here.id, joined_on=joined_on, name=old.name, username=old.username,
                                                      language=old.language, state=old.state.value,
                                                      state_reason=old.state_reason, profile=profile):
                    raise InvalidInput("transfer.already_here", name=old.name)
                await transfer_repo.set_new_member(conn, row["id"], here.id, reopened=before)
                new = await member_repo.by_id(conn, here.id)
                assert new is not None
        return Transfer(id=row["id"], code=code, member=old, from_branch=from_branch, to_branch=branch,
                        expires_at=_moment(row["expires_at"]), new_member=new)

    async def cancel(self, branch: Branch, actor: Actor, code_text: str) -> Transfer:
        code = normalise_code(code_text)
        async with self.db.transaction() as conn:
            await require_role(conn, branch.id, actor.user_id, MANAGERS)
            row = await transfer_repo.by_code(conn, code)
            if row is None or row["from_branch"] != branch.id:
                raise InvalidInput("transfer.code_unknown", code=code)
            if not await transfer_repo.cancel(conn, row["id"]):
                raise AlreadyDone("transfer.not_pending", code=code)
            member = await member_repo.by_id(conn, row["member_id"])
        assert member is not None
        return Transfer(id=row["id"], code=code, member=member, from_branch=branch, to_branch=None,
                        expires_at=_moment(row["expires_at"]))

    async def member_of_user(self, branch: Branch, user_id: int) -> Member:
        """The approved member of the branch behind a Telegram user (a secretary replied to their message)."""
        async with self.db.read() as conn:
            member = await member_repo.by_user(conn, branch.id, user_id)
        if member is None or member.status is not MemberStatus.APPROVED:
            raise NotFound("member.not_found", reference=str(user_id))
        return member

    async def whereabouts(self, branch: Branch, user_id: int) -> tuple[str, dict[str, str]] | None:
        """Why a person is not on the branch's roll, when a transfer says (a catalog key and its params): they
        moved out to another branch (its title), or their transfer from another branch to this one waits for
        this branch's secretary; None when no transfer explains it (never joined, removed)."""
        async with self.db.read() as conn:
            went = await transfer_repo.moved_from(conn, branch.id, user_id)
            coming = None if went else await transfer_repo.waiting_for(conn, branch.id, user_id, self._now())
        if went:
            return "declare.transfer.moved", {"branch": branch.title, "to": went}
        if coming:
            return "declare.transfer.waiting", {"branch": branch.title, "from": coming}
        return None

    async def stints(self, member_id: int) -> list[Stint]:
        """The member's chain of stints (oldest first); [] for a member who never moved."""
        async with self.db.read() as conn:
            chains = await chain_of_member(conn, member_id)
        return list(chains.stints.get(member_id, ()))

    async def year_home(self, member_id: int, year: int) -> YearHome | None:
        """Which of the member's rows grades ``year`` and whose ledger rows count, under the rule of the
        branch the member was in last that year."""
        async with self.db.read() as conn:
            chains = await chain_of_member(conn, member_id)
        stints = list(chains.stints.get(member_id, ()))
        return year_home(stints, year, rule_of_year(stints, year, chains.rules)) if stints else None


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


@dataclass(frozen=True)
class Chains:
    """The chains of stints of members who moved (member row id → its chain, every row of a chain
    mapped), with each branch's transfer rule and title."""

    stints: dict[int, tuple[Stint, ...]]
    rules: dict[int, TransferRule]
    titles: dict[int, str]

    def part(self, member_id: int, year: int) -> YearPart | None:
        """The row's part in ``year`` (None: the row's year involves no move, grade it as ever)."""
        chain = self.stints.get(member_id)
        if chain is None:
            return None
        return year_part(chain, member_id, year, rule_of_year(chain, year, self.rules))

    def own(self, member: Member) -> tuple[Stint, ...]:
        """The row's own stays, oldest first: its one (joined_on, left_on), or, for a row that left and came
        back (a return through /join, or A→B→A), each stay — the months between count nowhere."""
        chain = self.stints.get(member.id, ())
        return tuple(s for s in chain if s.member_id == member.id) or (
            Stint(member_id=member.id, branch_id=member.branch_id, first=member.joined_on, last=member.left_on),)

    def rule(self, member_id: int, year: int) -> TransferRule:
        return rule_of_year(self.stints.get(member_id, ()), year, self.rules)


@dataclass(frozen=True)
class YearView:
    """What a transferred member's /points covers: the stints whose rows and months make the figure
    (the grading one's, or the whole chain's where another branch grades), and the note saying so:
    ``note`` is a catalog key under transfer.year; ``branches`` the other branches of the year."""

    counted: tuple[Stint, ...]
    note: str
    branches: tuple[str, ...]


def year_view(chains: Chains, member_id: int, year: int) -> YearView | None:
    """None for a member whose year involves no move (their /points as ever)."""
    part = chains.part(member_id, year)
    if part is None:
        return None
    chain = chains.stints[member_id]
    if not part.graded:
        return YearView(counted=chain, note="graded_there", branches=(chains.titles.get(part.grader.branch_id, ""),))
    own = next(s.branch_id for s in chain if s.member_id == member_id)
    others = tuple(chains.titles.get(b, "") for b in dict.fromkeys(s.branch_id for s in in_year(chain, year)) if b != own)
    return YearView(counted=part.counted, note="counted_here" if part.others else "separate", branches=others)


NO_CHAINS = Chains(stints={}, rules={}, titles={})


def transfer_rule(preset_code: str) -> TransferRule:
    """A branch's ``transfer_result`` (its preset's: custom items never change the settings)."""
    return preset(preset_code).settings.transfer_result


def chains_from(rows: list[dict], stays: Sequence[dict] = ()) -> Chains:
    """``Chains`` from ``storage.transfers.moves_*`` rows and ``stays_*`` rows (the stays before a return
    through /join: a row that left and came back has its stays as stints of its chain, as a row a
    transfer reactivated has, moved or not)."""
    if not rows and not stays:
        return NO_CHAINS
    rules: dict[int, TransferRule] = {}
    titles: dict[int, str] = {}
    moves = []
    for r in rows:
        for side in ("from", "to"):
            branch_id = r[f"{side}_branch"]
            rules[branch_id] = transfer_rule(r[f"{side}_preset"])
            titles[branch_id] = r[f"{side}_title"]
        moves.append(Move(
            member_id=r["member_id"], from_branch=r["from_branch"], first=_date(r["left_joined_on"]),
            moved_on=date.fromisoformat(r["moved_on"]), new_member_id=r["new_member_id"], to_branch=r["to_branch"],
            new_first=_date(r["new_joined_on"]), new_last=_date(r["new_left_on"]),
            reopened=(_date(r["reopened_joined_on"]), _date(r["reopened_left_on"])) if r["reopened"] else None))
    chains = [list(chain) for chain in chains_of(moves)]
    index_of = {stint.member_id: i for i, chain in enumerate(chains) for stint in chain}
    for r in stays:
        rules[r["branch_id"]] = transfer_rule(r["preset"])
        titles[r["branch_id"]] = r["title"]
        index = index_of.setdefault(r["member_id"], len(chains))
        if index == len(chains):
            chains.append([])
        kept = [Stint(member_id=r["member_id"], branch_id=r["branch_id"], first=_date(r["joined_on"]),
                      last=date.fromisoformat(r["left_on"]))]
        if r["now_status"] in ("approved", "left") or (r["now_status"] == "pending" and r["now_left_on"]):
            # the row's stay as it is now (a pending request of a row that left again: that stay is over)
            kept.append(Stint(member_id=r["member_id"], branch_id=r["branch_id"], first=_date(r["now_joined_on"]),
                              last=_date(r["now_left_on"])))
        for stint in kept:
            _insert(chains[index], stint)
    stints: dict[int, tuple[Stint, ...]] = {}
    for chain in map(tuple, chains):
        for stint in chain:
            stints[stint.member_id] = chain
    return Chains(stints=stints, rules=rules, titles=titles)


def _insert(chain: list[Stint], stint: Stint) -> None:
    """A stay into a chain kept oldest first, unless the chain has it already (a transfer's stint)."""
    if stint in chain:
        return
    for i, other in enumerate(chain):
        if other.first is not None and (stint.first is None or stint.first < other.first):
            chain.insert(i, stint)
            return
    chain.append(stint)


async def chain_of_member(conn: Connection, member_id: int) -> Chains:
    return chains_from(await transfer_repo.moves_of_person(conn, member_id),
                       await transfer_repo.stays_of_person(conn, member_id))


async def chains_near_branch(conn: Connection, branch_id: int) -> Chains:
    return chains_from(await transfer_repo.moves_near_branch(conn, branch_id),
                       await transfer_repo.stays_near_branch(conn, branch_id))


def across(counted: tuple[Stint, ...], entries_of: dict[int, list[EntryRow]],
           claims_of: dict[int, list[Claim]]) -> tuple[list[EntryRow], list[Claim] | None]:
    """A transferred member's year over the stints that count: every row's ledger rows (in id order,
    as one member's are), and each row's post claims cut to its own stays (a claim in the old branch
    is not held in the new one)."""
    rows = list(dict.fromkeys(s.member_id for s in counted))
    entries = sorted((e for row in rows for e in entries_of.get(row, ())), key=lambda e: e.id)
    claims = [cut for s in counted for claim in claims_of.get(s.member_id, ()) if (cut := within(claim, s)) is not None]
    return entries, claims or None


def within(claim: Claim, stint: Stint) -> Claim | None:
    """The part of a post claim held during one stint (None: none of it)."""
    start = max(claim.claimed_on, stint.first) if stint.first else claim.claimed_on
    end = stint.last + timedelta(days=1) if stint.last else None  # released_on is the first day not held
    if claim.released_on is not None and (end is None or claim.released_on < end):
        end = claim.released_on
    return Claim(claimed_on=start, released_on=end) if end is None or start < end else None
