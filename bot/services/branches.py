"""Branches: set-up, settings, the rulebook in force, and which branch a private chat is about."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.clock import Clock
from bot.domain.records import Branch, Member, Role
from bot.domain import overrides
from bot.domain.overrides import Scope, Spot
from bot.domain.rulebook import CustomItem, Item, ItemKind, Rulebook, RulebookError
from bot.domain.text import clean_name
from bot.errors import AlreadyDone, DomainError, InvalidInput, NotAuthorized, NotFound
from bot.i18n import LANGUAGES
from bot.presets import PRESET_CODES, preset
from storage import branches as branch_repo
from storage import effects as effect_repo
from storage import members as member_repo
from storage.db import Database

DEFAULT_TIMEZONE = "Asia/Shanghai"
MANAGERS = (Role.SECRETARY, Role.DEPUTY)


@dataclass(frozen=True)
class Actor:
    """The Telegram user behind an update, as the services need them."""

    user_id: int
    name: str
    username: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class ChatMove:
    """What following a group to its new chat id did (BranchService.migrate_chat)."""

    branch: Branch | None  # the branch that followed (as it is now), or the one already at the new id
    moved: bool = False  # this call moved it
    retired: Branch | None = None  # the bare branch set up at the new id meanwhile, retired for it
    blocked_by: Branch | None = None  # a branch with members or records at the new id: nothing moved


@dataclass(frozen=True)
class RuleValue:
    """One value of the branch's rulebook that came from a default (/rulebook's list)."""

    spot: Spot
    value: tuple[Decimal, ...]  # as the branch has it now
    changed: bool  # the branch's own, not the preset's default


@dataclass(frozen=True)
class RuleChange:
    """What /rulebook KEY VALUE did, or (``done`` False) the whole-year change waiting for its confirm."""

    spot: Spot
    before: tuple[Decimal, ...]
    after: tuple[Decimal, ...]
    done: bool
    year: int  # the year whose figure a whole-year change moves (today's)
    basis: str = ""  # the digest of the overrides it was worked out from (overrides.basis), for its confirm


@lru_cache(maxsize=256)
def _rulebook(preset_code: str, custom_items_json: str, overrides_json: str = "{}") -> Rulebook:
    """The preset with the branch's values for its defaults (/rulebook, bot.domain.overrides), then the
    branch's own items (/additem), validated as a whole; cached by the three texts."""
    custom = [CustomItem.model_validate(c) for c in json.loads(custom_items_json or "[]")]
    return overrides.apply(preset(preset_code), json.loads(overrides_json or "{}")).with_custom_items(custom)


def _checked_rulebook(preset_code: str, custom_items_json: str, overrides_json: str) -> Rulebook:
    """As ``_rulebook``, refusing (RulebookError) overrides that do not hold together rather than leaving
    them out: a change is checked with this before it is kept."""
    custom = [CustomItem.model_validate(c) for c in json.loads(custom_items_json or "[]")]
    return overrides.apply(preset(preset_code), json.loads(overrides_json), strict=True).with_custom_items(custom)


def rulebook_of(branch: Branch) -> Rulebook:
    """The rulebook a branch keeps its points by: every reader (scoring, grading, notices, exports, /points,
    /rules) goes through here, so a branch's changed defaults and own items count everywhere at once."""
    return _rulebook(branch.preset, branch.custom_items, branch.rule_overrides)


CUSTOM_FIELDS = ("category", "code", "value", "name")


def custom_item_refusal(field_path: str, given: dict[str, str], rulebook: Rulebook) -> InvalidInput:
    """An /additem input the rulebook refused, said in the user's language and naming the field (not
    pydantic's English): ``field_path`` is the failing field ("item.code", "categories.2.items.5.value")."""
    parts = [p for p in field_path.replace("]", "").replace("[", ".").split(".") if p]
    field = next((p for p in reversed(parts) if p in CUSTOM_FIELDS), None)
    if field is None and any(p in ("zh", "en") for p in parts):
        field = "name"
    categories = ", ".join(c.code for c in rulebook.categories)
    return InvalidInput(f"rules.bad_field.{field or 'other'}", value=given.get(field or "", ""), categories=categories)


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput("setup.bad_timezone", timezone=name) from None
    return name


async def require_role(conn, branch_id: int, user_id: int, roles: tuple[Role, ...]) -> Member:
    """The actor's member row if they hold one of ``roles`` in this branch; otherwise NotAuthorized."""
    member = await member_repo.by_user(conn, branch_id, user_id)
    if member is None or member.status != "approved":
        raise NotAuthorized("auth.not_member")
    if not (await member_repo.roles_of(conn, member.id)) & set(roles):
        raise NotAuthorized("auth.needs_role", roles=", ".join(r.value for r in roles))
    return member


SCORERS = (Role.RECORDER, Role.SECRETARY, Role.DEPUTY)


async def may_score(conn, branch_id: int, user_id: int, target: Member, roles: tuple[Role, ...] = SCORERS) -> Member:
    """The actor's member row if they may enter or decide points for ``target``; otherwise NotAuthorized.

    The one rule every feature shares: the actor holds one of ``roles`` in the target's branch; nobody
    scores themselves; a recorder's own points are entered only by the secretary or deputy.
    """
    if target.branch_id != branch_id:
        raise NotAuthorized("auth.not_member")
    actor = await require_role(conn, branch_id, user_id, roles)
    if actor.id == target.id:
        raise NotAuthorized("decision.own")
    if Role.RECORDER in await member_repo.roles_of(conn, target.id):
        if not (await member_repo.roles_of(conn, actor.id)) & {Role.SECRETARY, Role.DEPUTY}:
            raise NotAuthorized("decision.recorder_own_points")
    return actor


async def recipients(conn, branch_id: int, *, about: Member | None = None,
                     prefer: tuple[Role, ...] = (Role.RECORDER,),
                     fallback: tuple[Role, ...] = (Role.SECRETARY, Role.DEPUTY)) -> list[Member]:
    """Who is asked or told about something: holders of ``prefer``; the ``fallback`` roles when there are
    none or when ``about`` (the member concerned) holds a preferred role. Never ``about`` itself, and only
    members with a Telegram account."""
    preferred = await member_repo.holders(conn, branch_id, prefer)
    about_roles = await member_repo.roles_of(conn, about.id) if about is not None else set()
    chosen = preferred
    if not preferred or about_roles & set(prefer):
        chosen = await member_repo.holders(conn, branch_id, fallback)
    return [m for m in chosen if (about is None or m.id != about.id) and m.user_id is not None]


CUSTOM_VALUE_LIMIT = Decimal(100)  # a branch's own item: at most a month's full score either way


def check_custom_value(rulebook: Rulebook, category_code: str, value: Decimal) -> None:
    """An /additem value: no more places than the rulebook publishes (2), at most 100 either way (one
    /record of 1 000 000 would swamp every year), and the sign of its category: a category whose items
    only give points (bonus) takes a positive value, one whose items only take points away (deductions,
    vetoes) a negative one; a category with both, or with an allotment (full, less each event), either."""
    places = rulebook.settings.rounding_places
    if value != value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):
        raise InvalidInput("rules.value_too_precise", value=value, places=places)
    if abs(value) > CUSTOM_VALUE_LIMIT:
        raise InvalidInput("rules.value_too_large", value=value, limit=CUSTOM_VALUE_LIMIT)
    category = rulebook.category(category_code)
    if category is None:
        return
    gives = any(_gives(i) for i in category.items)
    takes = any(_takes(i) for i in category.items)
    if gives and not takes and value < 0:
        raise InvalidInput("rules.must_be_bonus", value=value, category=category_code)
    if takes and not gives and value > 0:
        raise InvalidInput("rules.must_be_deduction", value=value, category=category_code)


def additem_example_category(rulebook: Rulebook) -> str:
    """The category /additem's usage names in its example (a deed worth +15): one the branch's rulebook has
    and that takes a positive value — the last whose items only give points (浠水's bonus, 张店's incentive,
    尖草坪's pos_development, 三门峡's customs), else the first that gives points at all, else the first."""
    giving = [c for c in rulebook.categories if any(_gives(i) for i in c.items)]
    only_giving = [c for c in giving if not any(_takes(i) for i in c.items)]
    chosen = only_giving[-1] if only_giving else giving[0] if giving else rulebook.categories[0]
    return chosen.code


def _gives(item: Item) -> bool:
    if item.kind is ItemKind.ALLOTMENT:
        return True
    if item.kind is ItemKind.FIXED:
        return item.value is not None and item.value > 0
    return item.kind is ItemKind.RANGED and item.max is not None and item.max > 0


def _takes(item: Item) -> bool:
    if item.kind in (ItemKind.ALLOTMENT, ItemKind.ZERO_OUT):
        return True
    if item.kind is ItemKind.FIXED:
        return item.value is not None and item.value < 0
    return item.kind is ItemKind.RANGED and item.min is not None and item.min < 0


class BranchService:
    def __init__(self, db: Database, clock: Clock, default_timezone: str = DEFAULT_TIMEZONE):
        self.db, self.clock = db, clock
        self.default_timezone = check_timezone(default_timezone)

    def today(self, branch: Branch) -> date:
        return self.clock.today(branch.timezone)

    async def setup(self, *, chat_id: int, title: str, actor: Actor, preset_code: str, is_admin: bool,
                    timezone: str | None = None, language: str = "zh") -> Branch:
        """Bind a group chat as a branch; whoever sets it up becomes its secretary."""
        if not is_admin:
            raise NotAuthorized("setup.admins_only")
        if preset_code not in PRESET_CODES:
            raise InvalidInput("setup.unknown_preset", preset=preset_code)
        timezone = check_timezone(timezone or self.default_timezone)
        async with self.db.transaction() as conn:
            branch = await branch_repo.create(
                conn, chat_id=chat_id, title=clean_name(title) or str(chat_id), preset=preset_code,
                timezone=timezone, language=language if language in LANGUAGES else "zh", created_by=actor.user_id,
            )
            if branch is None:
                existing = await branch_repo.by_chat(conn, chat_id)
                raise AlreadyDone("setup.already", title=existing.title if existing else title)
            secretary = await member_repo.add_approved(
                conn, branch_id=branch.id, name=clean_name(actor.name) or str(actor.user_id),
                joined_on=self.clock.today(timezone).isoformat(), user_id=actor.user_id,
                username=actor.username, language=actor.language,
            )
            await member_repo.grant(conn, branch.id, secretary.id, Role.SECRETARY, granted_by=None)
            await branch_repo.set_context(conn, actor.user_id, branch.id)
        return branch

    async def by_chat(self, chat_id: int) -> Branch:
        async with self.db.read() as conn:
            branch = await branch_repo.by_chat(conn, chat_id)
        if branch is None:
            raise NotFound("branch.not_setup")
        return branch

    async def find_by_chat(self, chat_id: int) -> Branch | None:
        async with self.db.read() as conn:
            return await branch_repo.by_chat(conn, chat_id)

    async def by_id(self, branch_id: int) -> Branch:
        async with self.db.read_one() as conn:  # one statement: on PostgreSQL one round trip, not three
            branch = await branch_repo.by_id(conn, branch_id)
        if branch is None:
            raise NotFound("branch.not_found")
        return branch

    async def set_timezone(self, branch: Branch, actor: Actor, timezone: str) -> Branch:
        check_timezone(timezone)
        async with self.db.transaction() as conn:
            await require_role(conn, branch.id, actor.user_id, MANAGERS)
            await branch_repo.set_timezone(conn, branch.id, timezone)
            updated = await branch_repo.by_id(conn, branch.id)
        assert updated is not None
        return updated

    async def set_language(self, branch: Branch, actor: Actor, language: str) -> Branch:
        if language not in LANGUAGES:
            raise InvalidInput("setup.bad_language", language=language)
        async with self.db.transaction() as conn:
            await require_role(conn, branch.id, actor.user_id, MANAGERS)
            await branch_repo.set_language(conn, branch.id, language)
            updated = await branch_repo.by_id(conn, branch.id)
        assert updated is not None
        return updated

    async def add_custom_item(self, branch: Branch, actor: Actor, custom: CustomItem) -> Rulebook:
        """A branch's own item on top of its preset (自主设定项目), validated with the whole rulebook."""
        async with self.db.transaction() as conn:
            await require_role(conn, branch.id, actor.user_id, MANAGERS)  # authority before anything else
            current = await branch_repo.by_id(conn, branch.id)
            assert current is not None
            before = _rulebook(current.preset, current.custom_items, current.rule_overrides)
            given = {"category": custom.category, "code": custom.item.code}
            if before.category(custom.category) is None:
                raise custom_item_refusal("category", given, before)
            if before.item(custom.item.code) is not None:
                raise InvalidInput("rules.item_code_taken", code=custom.item.code)
            if custom.item.value is not None and custom.item.value == 0:  # records nothing: refused, not kept useless
                raise InvalidInput("rules.zero_value", value=custom.item.value.copy_abs())
            if custom.item.value is not None:
                check_custom_value(before, custom.category, custom.item.value)
            items = json.loads(current.custom_items or "[]")
            items.append(custom.model_dump(mode="json"))
            encoded = json.dumps(items, ensure_ascii=False)
            try:
                rulebook = _rulebook(current.preset, encoded, current.rule_overrides)  # validated as a whole before it is stored
            except RulebookError as exc:
                raise custom_item_refusal(exc.field, given, before) from None
            await branch_repo.set_custom_items(conn, branch.id, encoded)
        return rulebook

    async def rule_defaults(self, branch: Branch, actor: Actor) -> list[RuleValue]:
        """/rulebook: every value of the branch's rulebook that came from a default, with the branch's value
        now and whether the branch changed it (secretary and deputy)."""
        async with self.db.read() as conn:
            await require_role(conn, branch.id, actor.user_id, MANAGERS)
            current = await branch_repo.by_id(conn, branch.id)
        assert current is not None
        rulebook = rulebook_of(current)
        return [RuleValue(spot, value, value != spot.default)
                for spot in overrides.spots(preset(current.preset)) for value in [overrides.current(rulebook, spot)]]

    async def change_rule(self, branch: Branch, actor: Actor, key: str, words: list[str], *,
                          confirmed: bool = False, basis: str | None = None) -> RuleChange:
        """/rulebook KEY VALUE: the branch's value for one of its preset's defaults, checked and validated
        with the whole rulebook before it is kept (a conditional update: a change made meanwhile is not lost).

        An item's value counts for entries recorded from now on (secretary or deputy). The base and the
        weights change the whole year's figure: the secretary's alone, and kept only with ``confirmed`` (the
        confirm button; without it nothing is written and the change comes back with ``done`` False). They
        are one value for every year, so they are refused once any year has a /grade round (publicised, final
        or re-opened): its published figures would be recomputed with the new value.
        Giving the preset's value again takes the branch's own away."""
        key = key.strip().lower()
        async with self.db.transaction() as conn:
            await require_role(conn, branch.id, actor.user_id, MANAGERS)  # authority before anything else
            current = await branch_repo.by_id(conn, branch.id)
            assert current is not None
            base_rulebook = preset(current.preset)
            spot = overrides.spot_of(base_rulebook, key)
            if spot is None:
                if overrides.is_seed_key(base_rulebook, key):
                    raise InvalidInput("rulebook.from_seed", code=key)
                own = rulebook_of(current).item(key.split(".", 1)[0])
                raise InvalidInput("rulebook.own_item" if own is not None else "rulebook.unknown_key", code=key)
            if spot.scope is Scope.YEAR:
                await require_role(conn, branch.id, actor.user_id, (Role.SECRETARY,))
            rulebook = rulebook_of(current)
            before = overrides.current(rulebook, spot)
            after = overrides.parse(rulebook, spot, words)
            if after == before:  # a double press of a confirm lands here: said as it is
                raise AlreadyDone("rulebook.unchanged", code=key, value=overrides.shown(after))
            if basis is not None and basis != overrides.basis(current.rule_overrides):
                raise AlreadyDone("rulebook.stale_confirm", code=key)  # changed since this button was made
            year = self.clock.today(current.timezone).year
            if spot.item is not None and spot.event_code is None:  # a declarable item's own value or range
                waiting = await branch_repo.pending_declarations_of_item(conn, branch.id, spot.item.code)
                if waiting:  # each asks for the value as it was (its card's button says so): decided first
                    raise InvalidInput("rulebook.declarations_pending", code=key, count=waiting)
            if spot.scope is Scope.YEAR:  # one value for every year: a graded year's published figures would move
                graded = await branch_repo.last_graded_year(conn, branch.id)
                if graded is not None:
                    raise InvalidInput("rulebook.year_graded", code=key, year=graded)
            if spot.key == overrides.WEIGHTS:  # a closed round's evaluations and its 不合格 list would move too
                closed = await branch_repo.last_closed_democratic_year(conn, branch.id)
                if closed is not None:
                    raise InvalidInput("rulebook.democratic_closed", code=key, year=closed)
            kept = json.loads(current.rule_overrides or "{}")
            if after == spot.default:
                kept.pop(key, None)  # back to the preset's default: nothing of the branch's own
            else:
                kept[key] = overrides.encoded(after)
            encoded = json.dumps(dict(sorted(kept.items())), ensure_ascii=False)
            try:
                _checked_rulebook(current.preset, current.custom_items, encoded)  # validated as a whole before it is kept
            except RulebookError:
                raise InvalidInput("rulebook.refused", code=key, value=overrides.shown(after)) from None
            if spot.scope is Scope.YEAR and not confirmed:
                return RuleChange(spot, before, after, done=False, year=year, basis=overrides.basis(current.rule_overrides))
            if not await branch_repo.replace_rule_overrides(conn, branch.id, before=current.rule_overrides,
                                                            after=encoded):
                raise InvalidInput("rulebook.busy")
        return RuleChange(spot, before, after, done=True, year=year)

    async def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> ChatMove:
        """A group became a supergroup: the branch follows it to the new chat id, in one transaction.

        If the new chat already is a branch (someone ran /setup there before the bot learnt of the
        upgrade): a bare one (only its set-up, ``is_bare``) is retired and the branch takes the chat;
        one with members or records is left alone and nothing moves (``blocked_by``) — the caller tells
        both branches' secretaries, and nothing is tried against the UNIQUE chat id."""
        async with self.db.transaction() as conn:
            branch = await branch_repo.by_chat(conn, old_chat_id)
            if branch is None:  # moved already (by a concurrent send or the migration message), or no branch
                return ChatMove(branch=await branch_repo.by_chat(conn, new_chat_id))
            there = await branch_repo.by_chat(conn, new_chat_id)
            retired = None
            if there is not None:
                if not await branch_repo.is_bare(conn, there.id):
                    return ChatMove(branch=branch, blocked_by=there)
                await branch_repo.retire(conn, there.id, self.clock.today(there.timezone).isoformat())
                retired = there
            await branch_repo.move_chat(conn, old_chat_id, new_chat_id)
            moved = await branch_repo.by_id(conn, branch.id)
        return ChatMove(branch=moved, moved=True, retired=retired)

    async def managers(self, branch: Branch) -> list[Member]:
        """The branch's secretaries and deputies who have a Telegram account."""
        async with self.db.read() as conn:
            return [m for m in await member_repo.holders(conn, branch.id, MANAGERS) if m.user_id is not None]

    async def managed_by(self, user_id: int) -> list[Branch]:
        """The branches where this person is secretary or deputy."""
        async with self.db.read() as conn:
            return await branch_repo.managed_by(conn, user_id)

    async def set_reachable(self, branch: Branch, reachable: bool) -> None:
        async with self.db.transaction() as conn:
            await branch_repo.set_reachable(conn, branch.id, reachable)

    async def back_in_group(self, branch: Branch) -> list[tuple[str, str]]:
        """The bot can post in the branch's group again: it is reachable, and every effect that failed is
        taken again at the next tick (a notice owed is posted then, late) — (kind, key) of each."""
        async with self.db.transaction() as conn:
            await branch_repo.set_reachable(conn, branch.id, True)
            return await effect_repo.rearm(conn, branch.id)

    # --- private chats ---------------------------------------------------------------------------

    async def remember_context(self, user_id: int, branch: Branch) -> None:
        async with self.db.transaction() as conn:
            await branch_repo.set_context(conn, user_id, branch.id)

    async def branches_of(self, user_id: int) -> list[Branch]:
        async with self.db.read() as conn:
            return await branch_repo.for_user(conn, user_id)

    async def private_branch(self, user_id: int) -> Branch:
        """The branch a private chat is about: the one chosen last, or the only one."""
        async with self.db.read() as conn:
            mine = await branch_repo.for_user(conn, user_id)
            chosen = await branch_repo.context(conn, user_id)
        if not mine:
            raise NotFound("branch.none_for_user")
        for branch in mine:
            if branch.id == chosen:
                return branch
        if len(mine) == 1:
            return mine[0]
        raise DomainError("branch.choose")

    async def choose(self, user_id: int, branch_id: int) -> Branch:
        async with self.db.transaction() as conn:
            mine = {b.id: b for b in await branch_repo.for_user(conn, user_id)}
            if branch_id not in mine:
                raise NotAuthorized("auth.not_member")
            await branch_repo.set_context(conn, user_id, branch_id)
        return mine[branch_id]
