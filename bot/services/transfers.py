"""Member transfers (组织关系转接): the sending branch's secretary starts one, the receiving branch's
secretary accepts it. The member keeps their history: the old row is marked left with its ledger
untouched; the receiving branch gets a new row linked to it (members.transferred_from). Which branch
grades the year follows the receiving branch's rulebook setting ``transfer_result``
(bot.domain.town.year_home)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from bot.clock import Clock
from bot.domain.records import Branch, Member, MemberStatus
from bot.domain.town import Stint, TransferRule, YearHome, new_code, normalise_code, year_home
from bot.errors import AlreadyDone, InvalidInput, NotAuthorized, NotFound
from bot.services.branches import MANAGERS, Actor, require_role, rulebook_of
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
            if here is not None and here.status is not MemberStatus.PENDING:
                raise InvalidInput("transfer.already_here", name=old.name)
            if here is not None:  # a /join request of the same person: the transfer replaces it
                await transfer_repo.drop_pending_request(conn, here.id)
            moved_on = self.clock.today(from_branch.timezone).isoformat()
            if not await transfer_repo.accept(conn, row["id"], to_branch=branch.id, accepted_by=receiver.id,
                                              moved_on=moved_on, now=now):
                raise AlreadyDone("transfer.already_accepted", code=code)
            if not await member_repo.set_left(conn, old.id, moved_on):
                raise InvalidInput("transfer.member_gone", name=old.name)
            profile = {k: getattr(old, k) for k in member_repo.PROFILE_FIELDS}
            new = await member_repo.add_approved(
                conn, branch_id=branch.id, name=old.name, joined_on=self.clock.today(branch.timezone).isoformat(),
                user_id=old.user_id, username=old.username, language=old.language, state=old.state.value,
                state_reason=old.state_reason, profile=profile)
            await transfer_repo.link(conn, new.id, old.id)
            await transfer_repo.set_new_member(conn, row["id"], new.id)
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

    async def stints(self, member_id: int) -> list[Stint]:
        async with self.db.read() as conn:
            return await _stints(conn, member_id)

    async def year_home(self, member_id: int, year: int) -> YearHome | None:
        """Which of the member's rows grades ``year`` and whose ledger rows count, under the rule of the
        branch the member was in last that year (the receiving branch decides)."""
        async with self.db.read() as conn:
            stints = await _stints(conn, member_id)
            touching = [s for s in stints if (s.first is None or s.first.year <= year) and (s.last is None or s.last.year >= year)]
            if not touching:
                return None
            last_branch = await branch_repo.by_id(conn, touching[-1].branch_id)
        rule = rulebook_of(last_branch).settings.transfer_result if last_branch else TransferRule.RECEIVING
        return year_home(stints, year, rule)


async def _stints(conn: Connection, member_id: int) -> list[Stint]:
    return [Stint(member_id=r["id"], branch_id=r["branch_id"], first=_date(r["joined_on"]), last=_date(r["left_on"]))
            for r in await transfer_repo.chain(conn, member_id)]
