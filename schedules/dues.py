"""Scheduled effects of the dues part: reminders to the unpaid and the month close.

- ``dues_reminder`` ``YYYY-MM:first`` on the branch's reminder day (CalendarSettings.dues_reminder_day)
  at notice hour, and ``YYYY-MM:last`` dues_last_reminder_days_before_close days before the close;
  privately to each unpaid member, then a summary to the recorder. Late.SKIP: a stale reminder is useless.
- ``dues_close`` ``YYYY-MM`` for the month just ended, at the next month's notice moment
  (registered before the notice's producer, so it runs first in the same tick). Late.CATCH_UP.
  ``retry=True``: the close is one transaction that closes the month once (``dues_closed`` primary key)
  and books under unique ledger references, so a close that failed is tried again on later ticks, and
  a repeat after a success changes and sends nothing.

Every private message goes through ``handlers.common.send_private``: a member who blocked the bot or
whose chat is gone is listed as unreachable, and the round goes on.
"""

from __future__ import annotations

from datetime import datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.ext import Application

from bot.domain.dues import DuesStatus, compact
from bot.domain.records import Branch, Member
from bot.i18n import Translator, language_of
from bot.services import Services
from handlers.common import send_private
from schedules.engine import Due, Late, register


def tr_for(member: Member, branch: Branch) -> Translator:
    return Translator(language_of(member.language, branch.language))


async def send(app: Application, member: Member, text: str, markup: InlineKeyboardMarkup | None = None) -> bool:
    """A private message (split when long); False when the member cannot be reached (no Telegram account,
    never started the bot, blocked it, or the chat is gone)."""
    if member.user_id is None:
        return False
    return await send_private(app, member.user_id, text, reply_markup=markup) is not None  # type: ignore[arg-type]


def names(tr: Translator, members: list[Member]) -> str:
    return tr("common.list_separator").join(m.name for m in members)


class DuesReminder:
    kind = "dues_reminder"

    async def due(self, services: Services, branch: Branch, now: datetime) -> list[Due]:
        return [Due(self.kind, f"{month}:{which}", moment, Late.SKIP)
                for month, which, moment in await services.dues.reminder_due(branch, now)]

    async def run(self, app: Application, branch: Branch, due: Due, late: bool) -> None:
        services: Services = app.bot_data["services"]
        month, which = due.key.split(":")
        unpaid = await services.dues.unpaid(branch, month)
        if not unpaid:
            return
        unreachable = []
        for member in unpaid:
            tr = tr_for(member, branch)
            markup = InlineKeyboardMarkup([[InlineKeyboardButton(
                tr("dues.i_paid", month=month), callback_data=f"du:p:{branch.id}:{compact(month)}")]])
            text = tr(f"dues.remind_{which}", branch=branch.title, month=month)
            if not await send(app, member, text, markup):
                unreachable.append(member)
                if member.user_id is not None:  # blocked or gone: mark it, the round goes on
                    await services.roster.mark_unreachable(member)
        for keeper in await services.dues.keepers_to_tell(branch):
            tr = tr_for(keeper, branch)
            text = tr("dues.remind_summary", branch=branch.title, month=month, count=len(unpaid), names=names(tr, unpaid))
            if unreachable:
                text += "\n" + tr("dues.remind_unreachable", names=names(tr, unreachable))
            await send(app, keeper, text)


class DuesClose:
    kind = "dues_close"

    async def due(self, services: Services, branch: Branch, now: datetime) -> list[Due]:
        return [Due(self.kind, month, moment, Late.CATCH_UP, retry=True)
                for month, moment in await services.dues.close_due(branch, now)]

    async def run(self, app: Application, branch: Branch, due: Due, late: bool) -> None:
        services: Services = app.bot_data["services"]
        result = await services.dues.close_month(branch, due.key)
        if result.already:
            return
        for keeper in await services.dues.keepers_to_tell(branch):
            tr = tr_for(keeper, branch)
            if result.untracked:
                await send(app, keeper, tr("dues.close_untracked", branch=branch.title, month=result.month))
                continue
            lines = [tr("dues.close_summary", branch=branch.title, month=result.month,
                        on_time=result.counts[DuesStatus.ON_TIME], late=result.counts[DuesStatus.LATE],
                        short=result.counts[DuesStatus.SHORT], unpaid=result.counts[DuesStatus.UNPAID])]
            if result.unpaid:
                lines.append(tr("dues.close_unpaid", names=names(tr, result.unpaid)))
            lines.append(tr("dues.close_booked", count=len(result.booked)) if result.booked else tr("dues.close_nothing_booked"))
            if result.unconfirmed:
                lines.append(tr("dues.close_unconfirmed", names=names(tr, result.unconfirmed), month=result.month))
            if late:
                lines.append(tr("dues.close_late"))
            await send(app, keeper, "\n".join(lines))


# Within a tick: a last reminder due at the very moment of the close goes out before it.
register(DuesReminder())
register(DuesClose())
