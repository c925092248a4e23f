"""/settings: the branch's calendar (notice day and hour, objection window, reminders…)."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CommandHandler

from bot.domain.timezones import canonical_timezone
from bot.i18n import Translator
from bot.services.calendar import calendar_of
from handlers.common import Context, actor, current_branch, domain_errors, reply, services, translator

MENU: dict[str, tuple[str, ...]] = {"private": ("settings",), "group": (), "admin": ("settings",)}
# /settings timezone Asia/Shanghai: the branch's time zone (as /timezone in the group sets it), listed first.
TIMEZONE_WORDS = ("timezone", "time_zone", "tz", "时区")


def shown(tr: Translator, value: object) -> str:
    """A setting's value as the reader writes it: 是/否 (yes/no), 1440,60, 无 (none) for an empty list."""
    if isinstance(value, bool):
        return tr("calendar.yes" if value else "calendar.no")
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) if value else tr("calendar.none")
    return str(value)


@domain_errors
async def settings_command(update: Update, context: Context) -> None:
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    args = context.args or []
    if len(args) >= 2 and args[0].lower() in TIMEZONE_WORDS:
        assert update.effective_user is not None
        branch = await services(context).branches.set_timezone(branch, actor(update.effective_user),
                                                               canonical_timezone(" ".join(args[1:])))
        await reply(update, tr("setup.timezone_set", timezone=branch.timezone))
    elif len(args) >= 2:
        assert update.effective_user is not None
        await services(context).calendar.change(branch, actor(update.effective_user), args[0], " ".join(args[1:]))
        branch = await services(context).branches.by_id(branch.id)
        await reply(update, tr("calendar.changed", name=args[0]))
    settings = calendar_of(branch)
    lines = [tr("calendar.header", branch=branch.title),
             tr("calendar.line", name="timezone", value=branch.timezone, meaning=tr("calendar.timezone_meaning"))]
    for name, value in settings.model_dump().items():
        lines.append(tr("calendar.line", name=name, value=shown(tr, value), meaning=tr(f"calendar.meaning.{name}")))
    lines.append(tr("calendar.usage"))
    await reply(update, "\n".join(lines))


def register(app: Application) -> None:
    app.add_handler(CommandHandler("settings", settings_command))
