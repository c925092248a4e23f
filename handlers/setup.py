"""Adding the bot to a group and binding the group as a branch (/setup, /timezone, /language)."""

from __future__ import annotations

import logging

from telegram import ChatMember, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction, ChatMemberStatus, ChatType
from telegram.error import ChatMigrated, TelegramError
from telegram.ext import Application, CallbackQueryHandler, ChatMemberHandler, CommandHandler, MessageHandler, filters

from decimal import Decimal, InvalidOperation

from pydantic import ValidationError

from bot.domain.overrides import spots as default_spots
from bot.domain.records import Branch
from bot.domain.rulebook import CustomItem
from bot.domain.text import clean_name
from bot.domain.timezones import canonical_timezone
from bot.errors import DomainError, InvalidInput
from bot.i18n import Safe, Translator
from bot.presets import PRESET_CODES, preset
from bot.services.branches import additem_example_category, custom_item_refusal, rulebook_of
from handlers.town import join_with_code
from handlers.common import (Context, actor, answer, current_branch, domain_errors, follow_group, is_private, refusal, reply,
                             services, translator)
from handlers.notices import period_label

log = logging.getLogger(__name__)
PROBED_BRANCHES = 5  # /setup in a supergroup asks Telegram about at most this many of the sender's branches

ADMIN_STATUSES = {ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER}


async def is_group_admin(context: Context, chat_id: int, user_id: int) -> bool:
    member = await context.bot.get_chat_member(chat_id, user_id)
    return member.status in ADMIN_STATUSES


def describe_branch(tr: Translator, branch: Branch) -> str:
    rulebook = rulebook_of(branch)
    s = rulebook.settings
    return tr(
        "setup.summary",
        title=branch.title,
        preset=rulebook.name.get(tr.lang),
        timezone=branch.timezone,
        rounding=s.rounding_places,
        min_months=s.min_months_to_grade,
        late_days=s.late_declaration_days,
        assessment=tr(f"setup.assessment_{s.assessment_default.value}"),
    )


GONE = (ChatMember.LEFT, ChatMember.BANNED)


def _can_post(member: ChatMember) -> bool:
    """Whether the bot, with this membership, can post in the group."""
    if member.status in (ChatMember.MEMBER, ChatMember.ADMINISTRATOR, ChatMember.OWNER):
        return True
    return (member.status == ChatMember.RESTRICTED and bool(getattr(member, "is_member", False))
            and bool(getattr(member, "can_send_messages", False)))


async def bot_added(update: Update, context: Context) -> None:
    """The bot's own membership of a group changed (my_chat_member).

    Removed (left, kicked) or muted: the branch is unreachable at once. Back (added again, allowed to post
    again): reachable, and every effect that failed meanwhile is taken again at the next tick — a notice
    still owed is posted then, saying it is late, its objection window counted from then. Added: a hello."""
    change = update.my_chat_member
    if change is None or change.chat.type == ChatType.PRIVATE:
        return
    svc = services(context)
    branch = await svc.branches.find_by_chat(change.chat.id)
    if not _can_post(change.new_chat_member):
        if branch is not None and branch.reachable:
            await svc.branches.set_reachable(branch, False)
        return
    rearmed: list[tuple[str, str]] = []
    if branch is not None and (not branch.reachable or not _can_post(change.old_chat_member)):
        rearmed = await svc.branches.back_in_group(branch)
    if change.old_chat_member.status not in GONE:
        return  # allowed to post again, or promoted: nothing to say
    tr = translator(update, branch)
    if branch is None:
        await context.bot.send_message(change.chat.id, tr("setup.welcome"))
        return
    text = tr("setup.welcome_back")
    owed = await _owed_notices(context, branch, {key for kind, key in rearmed if kind == "notice"})
    if owed:
        text += "\n" + tr("setup.welcome_back_owed", periods=tr("common.list_separator").join(
            period_label(tr, key) for key in owed))
    await context.bot.send_message(change.chat.id, text)


async def _owed_notices(context: Context, branch: Branch, keys: set[str]) -> list[str]:
    """Of these periods, those whose notice is still owed and has not reached the group (oldest first)."""
    if not keys:
        return []
    svc = services(context)
    owed = [o.key for o in await svc.notices.owed(branch, svc.clock.now()) if o.key in keys]
    found = []
    for key in owed:
        notice = await svc.notices.notice(branch, key)
        if notice is None or not notice.sent:
            found.append(key)
    return found


async def follow_from_old_group(update: Update, context: Context) -> Branch | None:
    """/setup in a supergroup: is it the upgrade of the group of a branch the sender manages (the bot
    missed the migration message)? Telegram answers a call to the old group's id with ChatMigrated and the
    new id (getChat; should it describe the old basic group instead, a chat action there, which a
    migrated group refuses the same way); if that is this chat, the branch follows it here
    (handlers.common.follow_group)."""
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None or chat.type != ChatType.SUPERGROUP:
        return None
    for branch in (await services(context).branches.managed_by(user.id))[:PROBED_BRANCHES]:
        if branch.chat_id == chat.id:
            continue
        try:
            found = await context.bot.get_chat(branch.chat_id)
            if found.type == ChatType.GROUP:  # a basic group, the kind that gets upgraded: a write call
                await context.bot.send_chat_action(branch.chat_id, ChatAction.TYPING)  # surely says so
        except ChatMigrated as migrated:
            if int(migrated.new_chat_id) == chat.id and await follow_group(context.application, branch, branch.chat_id, chat.id):
                return await services(context).branches.find_by_chat(chat.id)
        except TelegramError as exc:  # gone, the bot was removed…: not this group
            log.info("probing the group of branch %s: %s", branch.id, exc)
    return None


@domain_errors
async def setup_command(update: Update, context: Context) -> None:
    if is_private(update):
        await reply(update, translator(update)("setup.in_group_only"))
        return
    chat, user = update.effective_chat, update.effective_user
    assert chat is not None and user is not None
    branch = await services(context).branches.find_by_chat(chat.id)
    tr = translator(update, branch)
    code = "".join(context.args or [])  # /setup CODE: a town's join code (handlers.town)
    if branch is not None and code:
        await join_with_code(update, context, branch, code)
        return
    followed = None if code else await follow_from_old_group(update, context)
    if followed is not None:
        if branch is not None:  # a bare branch set up here was retired for it: follow_group told the group
            return
        tr = translator(update, followed)
        await reply(update, tr("setup.followed", branch=followed.title) + "\n\n" + describe_branch(tr, followed))
        return
    if branch is not None:
        await reply(update, tr("setup.already_done") + "\n\n" + describe_branch(tr, branch))
        return
    if not await is_group_admin(context, chat.id, user.id):
        await reply(update, tr("error.setup.admins_only"))
        return
    if code:
        context.chat_data["town_code"] = code  # used once the branch exists (setup_chosen)
    buttons = [[InlineKeyboardButton(preset(preset_code).name.get(tr.lang), callback_data=f"setup:{preset_code}")] for preset_code in PRESET_CODES]
    await reply(update, tr("setup.choose_preset"), reply_markup=InlineKeyboardMarkup(buttons))


@domain_errors
async def setup_chosen(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None and update.effective_chat is not None
    code = query.data.split(":", 1)[1]
    chat = update.effective_chat
    tr = translator(update)
    # The button carries no authority: the presser must be an administrator right now.
    admin = await is_group_admin(context, chat.id, query.from_user.id)
    branch = await services(context).branches.setup(
        chat_id=chat.id, title=chat.title or str(chat.id), actor=actor(query.from_user), preset_code=code,
        is_admin=admin, language=tr.lang,
    )
    tr = translator(update, branch)
    await answer(query, tr("setup.done_short"))
    text = tr("setup.done", secretary=query.from_user.full_name) + "\n\n" + describe_branch(tr, branch)
    defaults = len(default_spots(preset(branch.preset)))  # values the seed does not give: /rulebook lists them
    if defaults:
        text += "\n\n" + tr("rulebook.setup_hint", count=defaults)
    await query.edit_message_text(text)
    town_code = context.chat_data.pop("town_code", None) if context.chat_data is not None else None
    if town_code:
        try:
            await join_with_code(update, context, branch, town_code)
        except DomainError as error:  # the branch exists now; the code's refusal is said in the group
            await reply(update, refusal(update, error, branch, popup=False))


@domain_errors
async def timezone_command(update: Update, context: Context) -> None:
    svc = services(context)
    if is_private(update) or update.effective_chat is None or update.effective_user is None:
        await reply(update, translator(update)("setup.in_group_only"))
        return
    branch = await svc.branches.by_chat(update.effective_chat.id)
    tr = translator(update, branch)
    if not context.args:
        await reply(update, tr("setup.timezone_usage", timezone=branch.timezone))
        return
    branch = await svc.branches.set_timezone(branch, actor(update.effective_user), canonical_timezone(" ".join(context.args)))
    await reply(update, tr("setup.timezone_set", timezone=branch.timezone))


@domain_errors
async def language_command(update: Update, context: Context) -> None:
    svc = services(context)
    if is_private(update) or update.effective_chat is None or update.effective_user is None:
        await reply(update, translator(update)("setup.in_group_only"))
        return
    branch = await svc.branches.by_chat(update.effective_chat.id)
    if not context.args:
        await reply(update, translator(update, branch)("setup.language_usage"))
        return
    branch = await svc.branches.set_language(branch, actor(update.effective_user), context.args[0].lower())
    await reply(update, translator(update, branch)("setup.language_set"))


@domain_errors
async def additem_command(update: Update, context: Context) -> None:
    """/additem CATEGORY CODE VALUE NAME: a branch's own fixed item (自主设定项目) on top of its preset."""
    svc = services(context)
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    args = context.args or []
    if len(args) < 4:
        rulebook = rulebook_of(branch)  # the example names one of the branch's own categories
        categories = ", ".join(c.code for c in rulebook.categories)
        await reply(update, tr("setup.additem_usage", categories=categories, category=additem_example_category(rulebook)))
        return
    category, code, raw_value, name = args[0], args[1], args[2], clean_name(" ".join(args[3:]))
    try:
        value = Decimal(raw_value)
        if not value.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise InvalidInput("record.needs_value") from None
    triggers = ["declaration", "recorder"] if value > 0 else ["recorder"]
    try:
        custom = CustomItem.model_validate({"category": category, "item": {
            "code": code, "name": {"zh": name or code, "en": name or code}, "kind": "fixed", "value": value,
            "triggers": triggers, "origin": "branch"}})
    except ValidationError as exc:  # said in the user's language, naming the field (not pydantic's English)
        first = ".".join(str(p) for p in exc.errors()[0]["loc"])
        raise custom_item_refusal(first, {"category": category, "code": code, "value": raw_value, "name": name},
                                  rulebook_of(branch)) from None
    assert update.effective_user is not None
    await svc.branches.add_custom_item(branch, actor(update.effective_user), custom)
    await reply(update, tr("setup.item_added", name=name, code=code, value=value))


async def chat_migrated(update: Update, context: Context) -> None:
    """A group upgraded to a supergroup gets a new id: the branch follows it."""
    message = update.effective_message
    if message is not None and message.migrate_to_chat_id:
        branch = await services(context).branches.find_by_chat(message.chat.id)
        if branch is not None:
            await follow_group(context.application, branch, message.chat.id, int(message.migrate_to_chat_id))


def register(app: Application) -> None:
    app.add_handler(ChatMemberHandler(bot_added, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, chat_migrated))
    app.add_handler(CommandHandler("setup", setup_command))
    app.add_handler(CallbackQueryHandler(setup_chosen, pattern=r"^setup:[a-z_]+$"))
    app.add_handler(CommandHandler("timezone", timezone_command))
    app.add_handler(CommandHandler("language", language_command))
    app.add_handler(CommandHandler("additem", additem_command))


__all__ = ["register", "describe_branch", "Safe"]
