"""Command menus per scope and language (setMyCommands), and the catch-all for unknown buttons."""

from __future__ import annotations

from telegram import BotCommand, BotCommandScopeAllChatAdministrators, BotCommandScopeAllGroupChats, BotCommandScopeAllPrivateChats, Update
from telegram.ext import (Application, ApplicationHandlerStop, CallbackQueryHandler, CommandHandler, MessageHandler,
                          TypeHandler, filters)

from bot.i18n import LANGUAGES, t
from handlers.common import Context, answer, mid_flow_guard, reply, services, translator
from handlers.common import known_commands as _known_commands  # moved to handlers.common; this name is kept for callers

import handlers.assessment
import handlers.calendar_settings
import handlers.democratic
import handlers.dues
import handlers.exports
import handlers.grading
import handlers.meetings
import handlers.migrants
import handlers.notices
import handlers.rewards
import handlers.rulebook
import handlers.town
import handlers.town_review

_CORE_PRIVATE = ("declare", "points", "history", "rules", "pending", "record", "undo", "members", "roster", "role", "state", "remove", "branch")
_CORE_GROUP = ("join", "declare", "points", "rules")
_CORE_ADMIN = ("setup", "join", "declare", "members", "role", "state", "remove", "record", "undo", "additem", "timezone", "language", "rules")
_FEATURES = (handlers.calendar_settings, handlers.rulebook, handlers.meetings, handlers.dues, handlers.migrants, handlers.assessment, handlers.notices,
             handlers.democratic, handlers.grading, handlers.exports, handlers.rewards, handlers.town, handlers.town_review)


def _collect(core: tuple[str, ...], scope: str, tail: tuple[str, ...]) -> tuple[str, ...]:
    names = list(core)
    for feature in _FEATURES:
        names += [n for n in feature.MENU.get(scope, ()) if n not in names]
    return tuple(names) + tuple(n for n in tail if n not in names)


PRIVATE_COMMANDS = _collect(_CORE_PRIVATE, "private", ("help", "cancel"))
GROUP_COMMANDS = _collect(_CORE_GROUP, "group", ("help",))
ADMIN_COMMANDS = _collect(_CORE_ADMIN, "admin", ("help",))


def commands(lang: str, names: tuple[str, ...]) -> list[BotCommand]:
    return [BotCommand(name, t(lang, f"menu.{name}")) for name in names]


async def set_menus(app: Application) -> None:
    """Menus for private chats, groups and group administrators, in each catalog language."""
    scopes = (
        (BotCommandScopeAllPrivateChats(), PRIVATE_COMMANDS),
        (BotCommandScopeAllGroupChats(), GROUP_COMMANDS),
        (BotCommandScopeAllChatAdministrators(), ADMIN_COMMANDS),
    )
    for scope, names in scopes:
        await app.bot.set_my_commands(commands("zh", names), scope=scope)  # default: Simplified Chinese
        for lang in LANGUAGES:
            await app.bot.set_my_commands(commands(lang, names), scope=scope, language_code=lang)


async def unknown_button(update: Update, context: Context) -> None:
    """Every callback query is answered, even crafted or expired ones."""
    if update.callback_query is not None:
        await answer(update.callback_query, translator(update)("error.unknown_button"))


async def unknown_command(update: Update, context: Context) -> None:
    """A command no handler took, in private: said so, with the way on (not silence); /cancel with nothing
    going on is told apart. Groups stay quiet: other bots' commands. Every other command of the bot has an
    answer in private of its own (a group's command says to use it in the group; a test keeps it so), and
    one sent in the middle of a flow never gets here (handlers.common.mid_flow_guard)."""
    message = update.effective_message
    if message is None or not message.text:
        return
    command = message.text.split(maxsplit=1)[0].split("@", 1)[0]
    name = command[1:].lower()
    tr = translator(update)
    if name == "cancel":
        await reply(update, tr("error.nothing_to_cancel"))
    else:
        await reply(update, tr("error.unknown_command", command=command))


async def cancel_in_group(update: Update, context: Context) -> None:
    """/cancel in a group where nothing is going on (a flow in progress there takes its own /cancel first,
    being registered before): said so, as in private, instead of silence."""
    chat = update.effective_chat
    branch = await services(context).branches.find_by_chat(chat.id) if chat is not None else None
    await reply(update, translator(update, branch)("error.nothing_to_cancel"))


async def guard_empty_press(update: Update, context: Context) -> None:
    """A press with neither data nor a game matches every patterned handler in PTB: answer it here."""
    query = update.callback_query
    if query is not None and not query.data and not query.game_short_name:  # None or ""
        await answer(query, translator(update)("error.unknown_button"))
        raise ApplicationHandlerStop


def register(app: Application) -> None:
    # Group -2, before everything: a command or a press in the middle of a flow is refused (or restarts
    # that flow) by the flow itself, whatever group 0 would have given it to first (handlers.common).
    app.add_handler(TypeHandler(Update, mid_flow_guard), group=-2)
    app.add_handler(TypeHandler(Update, guard_empty_press), group=-1)
    # Registered last in group 0: they only see presses and private commands no other handler took.
    app.add_handler(CallbackQueryHandler(unknown_button))
    app.add_handler(CommandHandler("cancel", cancel_in_group, filters=filters.ChatType.GROUPS))
    app.add_handler(MessageHandler(filters.COMMAND & filters.ChatType.PRIVATE, unknown_command))
