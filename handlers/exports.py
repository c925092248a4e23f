"""Telegram glue for the year's forms and pictures: /export and /chart (private).

/export [YEAR]   the secretary, deputy or recorder gets the record sheets (xlsx), the summary sheet (xlsx)
                 and the ledger (CSV) of the year as documents; others are refused (the service checks).
/chart [MEMBER]  a member's monthly scores this year as a PNG with the band lines; a recorder, the
                 secretary or the deputy may name a member (number, @username or exact name).

No buttons, so no callback data.
"""

from __future__ import annotations

import asyncio
import re

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot import charts
from bot.i18n import Safe
from handlers.common import Context, actor, answer, current_branch, domain_errors, is_private, plain, reply, services, translator

# Commands this module adds to the menus, by scope; each needs a menu.<command> catalog entry.
MENU: dict[str, tuple[str, ...]] = {"private": ("export", "chart"), "group": (), "admin": ()}

YEAR = re.compile(r"\d{4}")
CAPTIONS = ("export.caption_record", "export.caption_summary", "export.caption_ledger", "export.caption_rewards")


async def _group_hint(update: Update, context: Context, key: str) -> None:
    chat = update.effective_chat
    assert chat is not None
    branch = await services(context).branches.find_by_chat(chat.id)
    await reply(update, translator(update, branch)(key))


@domain_errors
async def export_command(update: Update, context: Context) -> None:
    if not is_private(update):
        await _group_hint(update, context, "export.go_private")
        return
    svc = services(context)
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    year = None
    if context.args:
        if len(context.args) != 1 or not YEAR.fullmatch(context.args[0]):
            await reply(update, tr("export.usage"))
            return
        year = int(context.args[0])
    result = await svc.exports.export(branch, actor(user), year)
    for (name, data), caption in zip(result.documents, CAPTIONS):
        await context.bot.send_document(chat.id, document=data, filename=name, caption=tr(caption, year=result.year))
    status = tr("export.status_final" if result.final else "export.status_provisional")
    await reply(update, tr("export.sent", branch=branch.title, year=result.year, members=result.members,
                           rows=result.ledger_rows, status=status))


@domain_errors
async def chart_command(update: Update, context: Context) -> None:
    if not is_private(update):
        await _group_hint(update, context, "chart.go_private")
        return
    words = list(context.args or [])
    year = int(words.pop()) if words and re.fullmatch(r"(19|20)\d\d", words[-1]) else None  # /chart [MEMBER] [YEAR]
    await send_trend(update, context, " ".join(words).strip() or None, year)


@domain_errors
async def chart_button(update: Update, context: Context) -> None:
    """The 📈 button under /points: the presser's own trend (the button names nobody)."""
    assert update.callback_query is not None
    await send_trend(update, context, None)  # a refusal is answered by domain_errors, with its reason
    await answer(update.callback_query)


async def send_trend(update: Update, context: Context, reference: str | None, year: int | None = None) -> None:
    """A member's monthly scores this year (or of ``year``) as a picture, in the chat of the update."""
    svc = services(context)
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    trend = await svc.exports.trend(branch, actor(user), reference, year)
    name = trend.member.name
    if not trend.points:
        await reply(update, tr("points.no_year", name=name, year=year) if year is not None else tr("chart.no_months", name=name))
        return
    # chart texts are drawn, not sent as HTML: the catalog's text made plain
    months = [(plain(tr("chart.month_label", month=m)), value) for m, value in trend.points]
    suffix = "_sum" if trend.cumulative else ""
    today = svc.clock.today(branch.timezone)  # "this month is still running" only when it is drawn (exempt now: it is not)
    running = trend.year == today.year and trend.points[-1][0] == today.month
    caption = f"chart.caption{suffix or ('' if running else '_past')}"
    lines = charts.band_lines(trend.rulebook.bands, tr.lang)  # none for 三门峡 (no bands) and 张店 (ranks)
    png = await asyncio.to_thread(
        charts.member_trend_png, name, months, lines,
        title=tr.plain(f"chart.title{suffix}", name=name, year=trend.year),
        xlabel=plain(tr("chart.xlabel")), ylabel=plain(tr(f"chart.ylabel{suffix}")), lang=tr.lang,
    )
    await context.bot.send_photo(chat.id, photo=png,
                                 caption=tr(caption, name=name, year=trend.year, branch=branch.title,
                                            lines=Safe(tr("chart.lines_note") if lines else "")))


def register(app: Application) -> None:
    """Add this module's handlers (called in bot.app.register_handlers)."""
    app.add_handler(CommandHandler("export", export_command))
    app.add_handler(CommandHandler("chart", chart_command))
    app.add_handler(CallbackQueryHandler(chart_button, pattern=r"^ch:me$"))
