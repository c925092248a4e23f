"""Command menus per scope and language (setMyCommands), and the catch-all for unknown buttons."""

from __future__ import annotations

from telegram import BotCommand, BotCommandScopeAllChatAdministrators, BotCommandScopeAllGroupChats, BotCommandScopeAllPrivateChats, Update
from telegram.ext import Application, CallbackQueryHandler

from bot.i18n import LANGUAGES, t
from handlers.common import Context, answer, translator

PRIVATE_COMMANDS = ("declare", "points", "history", "rules", "pending", "record", "members", "roster", "role", "state", "branch", "help", "cancel")
GROUP_COMMANDS = ("join", "declare", "points", "rules", "help")
ADMIN_COMMANDS = ("setup", "join", "declare", "members", "role", "state", "record", "additem", "timezone", "language", "rules", "help")


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


def register(app: Application) -> None:
    # Registered last in group 0: it only sees presses that no other handler took.
    app.add_handler(CallbackQueryHandler(unknown_button))
