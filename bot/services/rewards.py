"""Rewards (issue 7): the catalog, redemptions, the passbook, partner merchants and their one-time codes.

Authority is re-checked in the database on every call: the secretary or deputy (MANAGERS) switches rewards
on, sets the branch's options, keeps the catalog and registers merchants; the recorder (or the secretary or
deputy) hands a redemption over or cancels it — never their own, and a recorder's own only by the secretary
or deputy; an approved member redeems and gets codes; a registered merchant verifies codes.

A redemption is one transaction: the member's wallet row is written first (redemptions of one member queue),
the balance is computed from the ledger and the redemptions inside it, the stock is taken by a conditional
update (stock > 0), and the row is inserted under the press's unique key — so a double tap or two redemptions
at once never spend a point twice and a balance never goes below zero. Nothing here writes the ledger.
"""

from __future__ import annotations

import hashlib
import io
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Font

from bot.clock import Clock
from bot.domain.records import Branch, Member, MemberStatus, Role
from bot.domain.rewards import (
    CODE_ALPHABET,
    CODE_LENGTH,
    CODE_MINUTES_MAX,
    CODE_MINUTES_MIN,
    DISCOUNT_MAX,
    NAME_MAX,
    VERIFY_FAILURES_PER_HOUR,
    Merchant,
    Passbook,
    Redemption,
    RedemptionStatus,
    RewardItem,
    RewardSettings,
    good_standing,
    local_year,
    normalise_code,
    passbook,
    zeroed_out,
)
from bot.domain.text import clean_name, clean_text
from bot.errors import InvalidInput, NotAuthorized, NotFound
from bot.i18n import DEFAULT_LANGUAGE, LANGUAGES
from bot.services.branches import MANAGERS, SCORERS, Actor, recipients, require_role, rulebook_of
from storage import branches as branch_repo
from storage import grading as grade_repo
from storage import ledger as ledger_repo
from storage import members as member_repo
from storage import rewards as repo
from storage.db import Connection, Database

KEEPERS = SCORERS  # who hands rewards over: the recorder, secretary and deputy


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Catalog:
    branch: Branch
    settings: RewardSettings
    items: list[RewardItem]  # active ones
    member: Member | None  # the viewer as a member (None: not an approved member)
    book: Passbook | None
    manager: bool
    keeper: bool
    waiting: int  # reserved, not yet handed over (shown to keepers)


@dataclass(frozen=True)
class Offer:
    branch: Branch
    item: RewardItem
    balance: Decimal


@dataclass(frozen=True)
class Reserved:
    branch: Branch
    member: Member
    redemption: Redemption
    created: bool  # False: the same press again (nothing new happened)
    balance: Decimal


@dataclass(frozen=True)
class Decision:
    branch: Branch
    member: Member
    redemption: Redemption
    decider: Member | None
    changed: bool  # False: it had already been decided (a double tap, a second keeper)


@dataclass(frozen=True)
class Code:
    branch: Branch
    code: str
    expires_at: datetime
    minutes: int  # how long it is valid (the branch's setting when it was made)
    merchants: list[Merchant]


@dataclass(frozen=True)
class Verification:
    ok: bool
    reason: str = ""  # when not ok: malformed, unknown, used, expired
    branch: Branch | None = None
    member: Member | None = None
    merchant: Merchant | None = None
    standing: bool = False
    balance: Decimal | None = None  # only where the branch allows merchants to see it


class RewardService:
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock

    # --- shared ------------------------------------------------------------------------------------

    async def _passbook(self, conn: Connection, branch: Branch, member: Member, settings: RewardSettings) -> Passbook:
        year = self.clock.today(branch.timezone).year
        rows = await ledger_repo.of_member(conn, member.id, None if settings.carry_over else year)
        spent = await repo.redemptions_of_member(conn, member.id)
        return passbook(rulebook_of(branch), rows, spent, year=year, carry_over=settings.carry_over, timezone=branch.timezone)

    @staticmethod
    async def _approved(conn: Connection, branch: Branch, user_id: int) -> Member:
        member = await member_repo.by_user(conn, branch.id, user_id)
        if member is None or member.status is not MemberStatus.APPROVED:
            raise NotAuthorized("auth.not_member")
        return member

    @staticmethod
    async def _holds(conn: Connection, member: Member | None, roles: tuple[Role, ...]) -> bool:
        return member is not None and bool(await member_repo.roles_of(conn, member.id) & set(roles))

    async def settings(self, branch: Branch) -> RewardSettings:
        async with self.db.read() as conn:
            return await repo.settings(conn, branch.id)

    async def update_settings(self, branch: Branch, actor: Actor, field: str, value: bool) -> tuple[RewardSettings, bool]:
        """The secretary (or deputy) sets one option (enabled, carry_over or show_balance) to ``value``: the
        button says which value, so a double tap sets it twice instead of undoing itself. Returns the
        settings and whether anything changed (only a change is audited)."""
        if field not in repo.SETTING_COLUMNS or field == "code_minutes":
            raise InvalidInput("rewards.unknown_setting")
        async with self.db.transaction() as conn:
            manager = await require_role(conn, branch.id, actor.user_id, MANAGERS)
            changed = await repo.set_setting(conn, branch.id, field, int(value), manager.id)
            if changed:
                await repo.audit(conn, action="settings", actor_user_id=actor.user_id, branch_id=branch.id,
                                 actor_member_id=manager.id, detail=f"{field}={int(value)}")
            return await repo.settings(conn, branch.id), changed

    async def set_code_minutes(self, branch: Branch, actor: Actor, minutes: int) -> tuple[RewardSettings, bool]:
        """The secretary (or deputy) sets how long a merchant code stays valid (CODE_MINUTES_MIN..MAX)."""
        if not CODE_MINUTES_MIN <= minutes <= CODE_MINUTES_MAX:
            raise InvalidInput("rewards.bad_code_minutes", low=CODE_MINUTES_MIN, high=CODE_MINUTES_MAX)
        async with self.db.transaction() as conn:
            manager = await require_role(conn, branch.id, actor.user_id, MANAGERS)
            changed = await repo.set_setting(conn, branch.id, "code_minutes", minutes, manager.id)
            if changed:
                await repo.audit(conn, action="settings", actor_user_id=actor.user_id, branch_id=branch.id,
                                 actor_member_id=manager.id, detail=f"code_minutes={minutes}")
            return await repo.settings(conn, branch.id), changed

    async def require_manager(self, branch: Branch, actor: Actor) -> Member:
        async with self.db.read() as conn:
            return await require_role(conn, branch.id, actor.user_id, MANAGERS)

    # --- the catalog as members see it -------------------------------------------------------------

    async def catalog(self, branch: Branch, actor: Actor) -> Catalog:
        async with self.db.read() as conn:
            member = await member_repo.by_user(conn, branch.id, actor.user_id)
            if member is not None and member.status is not MemberStatus.APPROVED:
                member = None
            if member is None:
                raise NotAuthorized("auth.not_member")
            settings = await repo.settings(conn, branch.id)
            manager = await self._holds(conn, member, MANAGERS)
            keeper = await self._holds(conn, member, KEEPERS)
            items = await repo.items(conn, branch.id, active_only=True)
            book = await self._passbook(conn, branch, member, settings) if settings.enabled else None
            waiting = len(await repo.redemptions_of_branch(conn, branch.id, RedemptionStatus.RESERVED.value)) if keeper else 0
        if not settings.enabled and not manager:
            raise InvalidInput("rewards.off")
        return Catalog(branch=branch, settings=settings, items=items, member=member, book=book, manager=manager,
                       keeper=keeper, waiting=waiting)

    async def my_passbook(self, branch: Branch, actor: Actor) -> tuple[Member, RewardSettings, Passbook, list[Merchant]]:
        async with self.db.read() as conn:
            member = await self._approved(conn, branch, actor.user_id)
            settings = await repo.settings(conn, branch.id)
            if not settings.enabled:
                raise InvalidInput("rewards.off")
            book = await self._passbook(conn, branch, member, settings)
            partners = await repo.merchants(conn, branch.id)
        return member, settings, book, partners

    # --- the secretary's catalog -------------------------------------------------------------------

    async def all_items(self, branch: Branch, actor: Actor) -> list[RewardItem]:
        async with self.db.read() as conn:
            await require_role(conn, branch.id, actor.user_id, MANAGERS)
            return await repo.items(conn, branch.id, active_only=False)

    async def managed_item(self, actor: Actor, item_id: int) -> tuple[Branch, RewardItem]:
        """An item of the catalog, for the secretary or deputy of its branch."""
        async with self.db.read() as conn:
            item = await repo.item(conn, item_id)
            branch = await branch_repo.by_id(conn, item.branch_id) if item else None
            if item is None or branch is None:
                raise NotFound("rewards.no_item")
            await require_role(conn, branch.id, actor.user_id, MANAGERS)
        return branch, item

    @staticmethod
    def check_name(value: str | None) -> str:
        name = clean_name(value or "")
        if not name or len(name) > NAME_MAX:
            raise InvalidInput("rewards.bad_name", limit=NAME_MAX)
        return name

    @staticmethod
    def check_discount(value: str | None) -> str:
        discount = clean_text(value or "")
        if not discount or len(discount) > DISCOUNT_MAX:
            raise InvalidInput("rewards.bad_discount", limit=DISCOUNT_MAX)
        return discount

    async def save_item(self, branch: Branch, actor: Actor, *, item_id: int | None, name: str, cost: Decimal,
                        stock: int | None, photo_file_id: str | None, keep_stock: bool = False) -> RewardItem:
        """Add an item, or change one. ``keep_stock``: a change leaves the stock as it is at saving (units
        redeemed while the secretary was editing stay taken); otherwise ``stock`` is set."""
        name = self.check_name(name)
        if not cost.is_finite() or cost <= 0:
            raise InvalidInput("rewards.bad_cost")
        if stock is not None and stock < 0:
            raise InvalidInput("rewards.bad_stock")
        async with self.db.transaction() as conn:
            manager = await require_role(conn, branch.id, actor.user_id, MANAGERS)
            if item_id is None:
                saved = await repo.add_item(conn, branch_id=branch.id, name=name, cost=cost, stock=stock,
                                            photo_file_id=photo_file_id, by=manager.id)
                action = "item_added"
            else:
                found = await repo.update_item(conn, item_id, branch.id, name=name, cost=cost,
                                               stock=repo.KEEP if keep_stock else stock, photo_file_id=photo_file_id)
                if found is None:
                    raise NotFound("rewards.no_item")
                saved, action = found, "item_changed"
            await repo.audit(conn, action=action, actor_user_id=actor.user_id, branch_id=branch.id, actor_member_id=manager.id,
                             item_id=saved.id, detail=f"{saved.name} · {saved.cost} · {'∞' if saved.stock is None else saved.stock}")
        return saved

    async def set_item_active(self, actor: Actor, item_id: int, active: bool) -> tuple[Branch, RewardItem]:
        async with self.db.transaction() as conn:
            item = await repo.item(conn, item_id)
            branch = await branch_repo.by_id(conn, item.branch_id) if item else None
            if item is None or branch is None:
                raise NotFound("rewards.no_item")
            manager = await require_role(conn, branch.id, actor.user_id, MANAGERS)
            changed = await repo.set_item_active(conn, item_id, branch.id, active)
            if changed is None:  # already so (a double tap): show it as it is
                return branch, item
            await repo.audit(conn, action="item_activated" if active else "item_deactivated", actor_user_id=actor.user_id,
                             branch_id=branch.id, actor_member_id=manager.id, item_id=item_id)
        return branch, changed

    # --- redeeming ---------------------------------------------------------------------------------

    async def _shop(self, conn: Connection, actor: Actor, item_id: int):
        """The item pressed, its branch, the presser as an approved member there, and the branch's rewards
        settings — refused when the item is unknown or the branch has rewards switched off."""
        item = await repo.item(conn, item_id)
        branch = await branch_repo.by_id(conn, item.branch_id) if item else None
        if item is None or branch is None:
            raise NotFound("rewards.no_item")
        member = await self._approved(conn, branch, actor.user_id)
        settings = await repo.settings(conn, branch.id)
        if not settings.enabled:
            raise InvalidInput("rewards.off")
        return item, branch, member, settings

    async def offer(self, actor: Actor, item_id: int) -> Offer:
        """What the Redeem button asks the member to confirm."""
        async with self.db.read() as conn:
            item, branch, member, settings = await self._shop(conn, actor, item_id)
            if not item.active:
                raise InvalidInput("rewards.inactive", name=item.name)
            book = await self._passbook(conn, branch, member, settings)
        if item.stock is not None and item.stock <= 0:
            raise InvalidInput("rewards.out_of_stock", name=item.name)
        if book.balance < item.cost:
            raise InvalidInput("rewards.not_enough", name=item.name, cost=item.cost, balance=book.balance)
        return Offer(branch=branch, item=item, balance=book.balance)

    async def redeem(self, actor: Actor, item_id: int, shown_cost: Decimal, client_key: str) -> Reserved:
        async with self.db.transaction() as conn:
            item, branch, member, settings = await self._shop(conn, actor, item_id)
            await repo.lock_wallet(conn, member.id)  # first: this member's other redemptions wait for this one
            existing = await repo.redemption_by_key(conn, member.id, client_key)
            if existing is not None:
                book = await self._passbook(conn, branch, member, settings)
                return Reserved(branch=branch, member=member, redemption=existing, created=False, balance=book.balance)
            if not item.active:
                raise InvalidInput("rewards.inactive", name=item.name)
            if item.cost != shown_cost:
                raise InvalidInput("rewards.cost_changed", name=item.name, cost=item.cost)
            book = await self._passbook(conn, branch, member, settings)
            if book.balance < item.cost:
                raise InvalidInput("rewards.not_enough", name=item.name, cost=item.cost, balance=book.balance)
            if await repo.take_stock(conn, item.id, branch.id) is None:
                raise InvalidInput("rewards.out_of_stock", name=item.name)
            redemption = await repo.add_redemption(conn, branch_id=branch.id, member_id=member.id, item=item,
                                                   client_key=client_key)
            assert redemption is not None  # the key was checked under the wallet lock
            await repo.audit(conn, action="reserved", actor_user_id=actor.user_id, branch_id=branch.id,
                             actor_member_id=member.id, member_id=member.id, redemption_id=redemption.id, item_id=item.id,
                             detail=f"{item.name} · {item.cost}")
        return Reserved(branch=branch, member=member, redemption=redemption, created=True, balance=book.balance - item.cost)

    async def keepers(self, branch: Branch, member: Member) -> list[Member]:
        """Who is asked to hand a member's reward over: the recorders (the secretary and deputy when there is
        none or when the member is a recorder), never the member."""
        async with self.db.read() as conn:
            return await recipients(conn, branch.id, about=member)

    async def remember_message(self, redemption_id: int, chat_id: int, message_id: int) -> None:
        async with self.db.transaction() as conn:
            await repo.remember_message(conn, redemption_id, chat_id, message_id)

    async def messages(self, redemption_id: int) -> list[tuple[int, int]]:
        async with self.db.read() as conn:
            return await repo.messages(conn, redemption_id)

    async def waiting(self, branch: Branch, actor: Actor) -> list[tuple[Redemption, Member]]:
        async with self.db.read() as conn:
            await require_role(conn, branch.id, actor.user_id, KEEPERS)
            found = []
            for redemption in await repo.redemptions_of_branch(conn, branch.id, RedemptionStatus.RESERVED.value):
                member = await member_repo.by_id(conn, redemption.member_id)
                assert member is not None
                found.append((redemption, member))
        return found

    async def decide(self, actor: Actor, redemption_id: int, hand_over: bool) -> Decision:
        """The keeper hands the reward over, or cancels (releasing the points and the stock)."""
        async with self.db.transaction() as conn:
            redemption = await repo.redemption(conn, redemption_id)
            if redemption is None:
                raise NotFound("rewards.no_redemption")
            branch = await branch_repo.by_id(conn, redemption.branch_id)
            member = await member_repo.by_id(conn, redemption.member_id)
            assert branch is not None and member is not None
            decider = await require_role(conn, branch.id, actor.user_id, KEEPERS)
            if decider.id == member.id:
                raise NotAuthorized("rewards.own")
            if Role.RECORDER in await member_repo.roles_of(conn, member.id) and not await self._holds(conn, decider, MANAGERS):
                raise NotAuthorized("rewards.recorder_own")
            status = RedemptionStatus.HANDED_OVER if hand_over else RedemptionStatus.CANCELLED
            decided = await repo.decide_redemption(conn, redemption.id, status.value, decider.id)
            if decided is None:
                who = await member_repo.by_id(conn, redemption.decided_by) if redemption.decided_by else None
                return Decision(branch=branch, member=member, redemption=redemption, decider=who, changed=False)
            if status is RedemptionStatus.CANCELLED:
                await repo.return_stock(conn, redemption.item_id)
            await repo.audit(conn, action=status.value, actor_user_id=actor.user_id, branch_id=branch.id,
                             actor_member_id=decider.id, member_id=member.id, redemption_id=redemption.id,
                             item_id=redemption.item_id)
        return Decision(branch=branch, member=member, redemption=decided, decider=decider, changed=True)

    # --- merchants ---------------------------------------------------------------------------------

    async def merchants(self, branch: Branch, actor: Actor) -> list[Merchant]:
        async with self.db.read() as conn:
            await require_role(conn, branch.id, actor.user_id, MANAGERS)
            return await repo.merchants(conn, branch.id)

    async def find_user(self, branch: Branch, actor: Actor, reference: str) -> tuple[int, str | None]:
        """A merchant named by numeric Telegram id, or by @username: of a member of this branch or of a user who
        is already a partner merchant (storage.rewards.known_user: other branches' members stay unknown)."""
        reference = (reference or "").strip()
        async with self.db.read() as conn:
            await require_role(conn, branch.id, actor.user_id, MANAGERS)
            if reference.isascii() and reference.isdigit() and 0 < len(reference) <= 15:
                return int(reference), None
            if reference.startswith("@") and 1 < len(reference) <= 33:
                found = await repo.known_user(conn, reference[1:], branch.id)
                if found is not None:
                    return found
                raise InvalidInput("rewards.unknown_username", username=reference)
        raise InvalidInput("rewards.bad_merchant_reference")

    async def add_merchant(self, branch: Branch, actor: Actor, *, user_id: int, name: str, discount: str) -> Merchant:
        name, discount = self.check_name(name), self.check_discount(discount)
        async with self.db.transaction() as conn:
            manager = await require_role(conn, branch.id, actor.user_id, MANAGERS)
            merchant = await repo.add_merchant(conn, branch_id=branch.id, user_id=user_id, name=name, discount=discount,
                                               by=manager.id)
            if merchant is None:
                raise InvalidInput("rewards.merchant_exists")
            await repo.audit(conn, action="merchant_added", actor_user_id=actor.user_id, branch_id=branch.id,
                             actor_member_id=manager.id, merchant_id=merchant.id, detail=f"{name} · {user_id}")
        return merchant

    async def remove_merchant(self, branch: Branch, actor: Actor, merchant_id: int) -> Merchant | None:
        """None when it was already removed (a double tap)."""
        async with self.db.transaction() as conn:
            manager = await require_role(conn, branch.id, actor.user_id, MANAGERS)
            removed = await repo.deactivate_merchant(conn, merchant_id, branch.id)
            if removed is not None:
                await repo.audit(conn, action="merchant_removed", actor_user_id=actor.user_id, branch_id=branch.id,
                                 actor_member_id=manager.id, merchant_id=merchant_id)
        return removed

    async def new_code(self, branch: Branch, actor: Actor) -> Code:
        """A one-time code for a partner merchant (valid the branch's code_minutes, once; a newer one retires it)."""
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        async with self.db.transaction() as conn:
            member = await self._approved(conn, branch, actor.user_id)
            settings = await repo.settings(conn, branch.id)
            if not settings.enabled:
                raise InvalidInput("rewards.off")
            expires = self.clock.now() + timedelta(minutes=settings.code_minutes)
            partners = await repo.merchants(conn, branch.id)
            if not partners:
                raise InvalidInput("rewards.no_merchants")
            code_id = await repo.add_code(conn, branch_id=branch.id, member_id=member.id, code_hash=_hash(code),
                                          expires_at=_iso(expires))
            await repo.audit(conn, action="code_issued", actor_user_id=actor.user_id, branch_id=branch.id,
                             actor_member_id=member.id, member_id=member.id, code_id=code_id)
        return Code(branch=branch, code=code, expires_at=expires, minutes=settings.code_minutes, merchants=partners)

    async def merchant_of(self, user_id: int) -> list[Merchant]:
        async with self.db.read() as conn:
            return await repo.merchant_roles(conn, user_id)

    async def verify(self, actor: Actor, typed: str) -> Verification:
        """/verify CODE by a registered merchant: valid once, before it expires; failures are counted and
        limited per merchant per hour. Records the use; says whether the member is in good standing."""
        now = self.clock.now()
        code = normalise_code(typed)
        async with self.db.transaction() as conn:
            roles = await repo.merchant_roles(conn, actor.user_id)
            if not roles:
                raise NotAuthorized("rewards.not_merchant", user_id=actor.user_id)
            if await repo.failures_since(conn, actor.user_id, _iso(now - timedelta(hours=1))) >= VERIFY_FAILURES_PER_HOUR:
                raise InvalidInput("rewards.too_many_tries", limit=VERIFY_FAILURES_PER_HOUR)
            by_branch = {m.branch_id: m for m in roles}
            used = None
            if code is not None:
                used = await repo.use_code(conn, _hash(code), {b: m.id for b, m in by_branch.items()}, _iso(now))
            if used is None:
                reason = "malformed" if code is None else "unknown"
                state = await repo.code_state(conn, _hash(code)) if code is not None else None
                if state is not None and state["branch_id"] in by_branch:  # the details only to this branch's merchants
                    reason = "used" if state["used_at"] else ("expired" if state["expires_at"] <= _iso(now) else "retired")
                await repo.audit(conn, action="verify_failed", actor_user_id=actor.user_id, detail=reason,
                                 branch_id=state["branch_id"] if state is not None and state["branch_id"] in by_branch else None)
                return Verification(ok=False, reason=reason)
            code_id, branch_id, member_id = used
            merchant = by_branch[branch_id]
            branch = await branch_repo.by_id(conn, branch_id)
            member = await member_repo.by_id(conn, member_id)
            assert branch is not None and member is not None
            settings = await repo.settings(conn, branch.id)
            year = self.clock.today(branch.timezone).year
            rows = await ledger_repo.of_member(conn, member.id, year)
            past = (await grade_repo.past_years(conn, branch.id, year + 1)).get(member.id, [])
            standing = good_standing(approved=member.status is MemberStatus.APPROVED,
                                     zeroed_out_this_year=zeroed_out(rulebook_of(branch), rows, year),
                                     last_final_passing=past[0].passing if past else None)
            balance = (await self._passbook(conn, branch, member, settings)).balance if settings.show_balance else None
            await repo.audit(conn, action="verified", actor_user_id=actor.user_id, branch_id=branch.id, member_id=member.id,
                             merchant_id=merchant.id, code_id=code_id, detail="good" if standing else "not_good")
        return Verification(ok=True, branch=branch, member=member, merchant=merchant, standing=standing, balance=balance)

    # --- the export sheet --------------------------------------------------------------------------

    async def year_workbook(self, branch: Branch, year: int, lang: str | None = None) -> bytes | None:
        """The year's redemptions and audit trail as a workbook (for /export); None when there is nothing."""
        lang = lang if lang in LANGUAGES else (branch.language if branch.language in LANGUAGES else DEFAULT_LANGUAGE)
        async with self.db.read() as conn:
            redemptions = [r for r in await repo.redemptions_of_branch(conn, branch.id)
                           if local_year(r.created_at, branch.timezone) == year]
            trail = [a for a in await repo.audit_of_branch(conn, branch.id)
                     if local_year(datetime.fromisoformat(a["at"]), branch.timezone) == year]
            names = {m.id: m.name for m in await member_repo.listing(conn, branch.id, ("approved", "left", "pending", "rejected"))}
            shops = await repo.merchant_names(conn, branch.id)
        if not redemptions and not trail:
            return None
        return redemptions_workbook(lang, branch, year, redemptions, trail, names, shops)


def _local(moment: datetime | str | None, timezone: str) -> str:
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


VERIFY_FAILURES = ("malformed", "unknown", "used", "expired", "retired")
MERCHANT_ACTIONS = ("verified", "verify_failed")  # what a merchant does (named by the shop in the audit sheet)


def audit_detail(lang: str, action: str, detail: str | None) -> str:
    """An audit row's detail as the export's reader reads it. The trail stores short codes (``enabled=1``,
    ``good``, ``expired``, ``name · cost · stock``); anything not recognised is shown as stored."""
    from bot.services.exports import text  # late: the exports service imports this module

    if not detail:
        return ""
    if action == "settings" and "=" in detail:
        field, _, value = detail.partition("=")
        if field == "code_minutes" and value.isdigit():
            return text(lang, "rewards.detail.code_minutes", minutes=value)
        if field in ("enabled", "carry_over", "show_balance") and value in ("0", "1"):
            return text(lang, f"rewards.detail.{field}", state=text(lang, "rewards.on" if value == "1" else "rewards.off"))
    if action == "verified" and detail in ("good", "not_good"):
        return text(lang, f"rewards.detail.standing_{detail}")
    if action == "verify_failed" and detail in VERIFY_FAILURES:
        return text(lang, f"rewards.detail.failed.{detail}")
    if action in ("item_added", "item_changed"):
        parts = detail.rsplit(" · ", 2)  # the name may itself contain " · "
        if len(parts) == 3:
            name, cost, stock = parts
            stock_text = text(lang, "rewards.stock_unlimited") if stock == "∞" else text(lang, "rewards.stock_left", stock=stock)
            return text(lang, "rewards.detail.item", name=name, cost=cost, stock=stock_text)
    if action == "reserved":
        parts = detail.rsplit(" · ", 1)
        if len(parts) == 2:
            return text(lang, "rewards.detail.reserved", name=parts[0], cost=parts[1])
    if action == "merchant_added":
        parts = detail.rsplit(" · ", 1)
        if len(parts) == 2 and parts[1].isdigit():
            return text(lang, "rewards.detail.merchant", name=parts[0], user_id=parts[1])
    return detail


def redemptions_workbook(lang: str, branch: Branch, year: int, redemptions: list[Redemption], trail: list[dict],
                         names: dict[int, str], shops: dict[int, str] | None = None) -> bytes:
    """``names``: member id → name; ``shops``: a merchant's Telegram id → name (a merchant acts as no member:
    the trail's actor of a code check is named by the shop, with its Telegram id, not by a bare id)."""
    from bot.services.exports import text  # late: the exports service imports this module

    book = Workbook()
    sheet = book.active
    sheet.title = text(lang, "rewards.sheet.redemptions")[:31]
    sheet.append([text(lang, "rewards.sheet.title", branch=branch.title, year=year)])
    sheet["A1"].font = Font(bold=True, size=13)
    columns = ("number", "member", "reward", "cost", "status", "reserved_at", "decided_by", "decided_at")
    sheet.append([text(lang, f"rewards.sheet.{c}") for c in columns])
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for r in redemptions:
        sheet.append([r.id, names.get(r.member_id, ""), r.item_name, r.cost,
                      text(lang, f"rewards.status.{r.status.value}"), _local(r.created_at, branch.timezone),
                      names.get(r.decided_by, "") if r.decided_by else "", _local(r.decided_at, branch.timezone)])
        cost = sheet.cell(sheet.max_row, 4)  # a number cell (was the text '3'), shown as the bot shows it
        cost.number_format = "0" if r.cost == r.cost.to_integral_value() else "0.0#"
    audit_sheet = book.create_sheet(text(lang, "rewards.sheet.audit")[:31])
    headers = ("at", "action", "actor", "member", "redemption", "detail")
    audit_sheet.append([text(lang, f"rewards.sheet.audit_{c}") for c in headers])
    for cell in audit_sheet[1]:
        cell.font = Font(bold=True)
    for a in trail:
        actor = names.get(a["actor_member_id"], "") if a["actor_member_id"] else ""
        if not actor and a["action"] in MERCHANT_ACTIONS and a["actor_user_id"] in (shops or {}):
            actor = text(lang, "rewards.sheet.audit_merchant", name=(shops or {})[a["actor_user_id"]], user_id=a["actor_user_id"])
        audit_sheet.append([_local(a["at"], branch.timezone), text(lang, f"rewards.action.{a['action']}"),
                            actor or str(a["actor_user_id"]), names.get(a["member_id"], "") if a["member_id"] else "",
                            a["redemption_id"] or "", audit_detail(lang, a["action"], a["detail"])])
    for ws in (sheet, audit_sheet):
        for column in ("A", "B", "C", "D", "E", "F", "G", "H"):
            ws.column_dimensions[column].width = 18
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
