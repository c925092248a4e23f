"""Scheduled effects of the migrants part: the quarter's ask, the reminder, and the quarter's close.

- ``migrant_close`` ``YYYY-Qn`` after the quarter, at the branch's notice moment (by default the next
  quarter's first day, 09:00 local; always before that notice, whatever its day and hour): migrants
  with no report sent or accepted are recorded as missing and listed for the recorder, and so are
  earlier quarters whose report was returned after their close and not sent again in time; the rulebook
  decides whether that costs points (``migrant.missing_report``). Late.CATCH_UP; ``retry=True`` (one
  transaction, closed once under the ``migrant_closed`` primary key, unique ledger references: a failed
  close is tried again, a repeat does nothing). Registered before the ask and the notices, so that at
  the same moment the old quarter closes first.
- ``migrant_ask`` ``YYYY-Qn`` on the quarter's first day, 09:00 local: every migrant member privately.
  Late.CATCH_UP (only the current quarter is ever asked).
- ``migrant_remind`` ``YYYY-Qn`` a week before the quarter's last day, 09:00 local, to those who have not
  reported; a summary to the recorder. Late.SKIP.
"""

from __future__ import annotations

from datetime import datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.ext import Application

from bot.domain.records import Branch, Member
from bot.i18n import Safe, Translator
from bot.services import Services
from schedules.dues import names, send, tr_for
from schedules.engine import Due, Late, register


def _write_button(tr, branch: Branch) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(tr("migrant.write"), callback_data=f"mg:new:{branch.id}")]])


async def _ask_each(app: Application, branch: Branch, members: list[Member], key: str, quarter: str) -> list[Member]:
    """Send the ask (or the reminder) to each; returns those who could not be reached."""
    unreachable = []
    for member in members:
        tr = tr_for(member, branch)
        text = tr(key, branch=branch.title, quarter=quarter)
        if not await send(app, member, text, _write_button(tr, branch)):
            unreachable.append(member)
    return unreachable


class MigrantClose:
    kind = "migrant_close"

    async def due(self, services: Services, branch: Branch, now: datetime) -> list[Due]:
        return [Due(self.kind, quarter, moment, Late.CATCH_UP, retry=True)
                for quarter, moment in await services.migrants.close_due(branch, now)]

    async def run(self, app: Application, branch: Branch, due: Due, late: bool) -> None:
        services: Services = app.bot_data["services"]
        result = await services.migrants.close_quarter(branch, due.key)
        if result.already or not (result.missing or result.overdue):
            return
        for keeper in await services.migrants.keepers_to_tell(branch):
            tr = tr_for(keeper, branch)
            lines = []
            if result.missing:
                lines.append(tr("migrant.close_missing", branch=branch.title, quarter=result.quarter,
                                count=len(result.missing), names=names(tr, result.missing)))
            if result.overdue:
                lines.append(tr("migrant.close_overdue", branch=branch.title, names=_overdue_names(tr, result.overdue)))
            if result.charge is not None:
                lines.append(tr("migrant.close_booked", count=len(result.booked), value=result.charge.value))
            else:
                lines.append(tr("migrant.close_noted"))
            if late:
                lines.append(tr("migrant.close_late"))
            await send(app, keeper, "\n".join(lines))


def _overdue_names(tr: Translator, overdue: list[tuple[Member, str]]) -> Safe:
    """"name (quarter)", …: each piece rendered (and escaped) by the catalog, so the whole is safe HTML."""
    return Safe(tr("common.list_separator").join(tr("migrant.overdue_name", name=m.name, quarter=q) for m, q in overdue))


class MigrantAsk:
    kind = "migrant_ask"

    async def due(self, services: Services, branch: Branch, now: datetime) -> list[Due]:
        return [Due(self.kind, quarter, moment, Late.CATCH_UP)
                for quarter, moment in await services.migrants.ask_due(branch, now)]

    async def run(self, app: Application, branch: Branch, due: Due, late: bool) -> None:
        services: Services = app.bot_data["services"]
        members = await services.migrants.without_report(branch, due.key)
        if not members:
            return
        unreachable = await _ask_each(app, branch, members, "migrant.ask", due.key)
        if unreachable:
            for keeper in await services.migrants.keepers_to_tell(branch):
                tr = tr_for(keeper, branch)
                await send(app, keeper, tr("migrant.ask_unreachable", branch=branch.title, quarter=due.key,
                                           names=names(tr, unreachable)))


class MigrantRemind:
    kind = "migrant_remind"

    async def due(self, services: Services, branch: Branch, now: datetime) -> list[Due]:
        return [Due(self.kind, quarter, moment, Late.SKIP)
                for quarter, moment in await services.migrants.remind_due(branch, now)]

    async def run(self, app: Application, branch: Branch, due: Due, late: bool) -> None:
        services: Services = app.bot_data["services"]
        members = await services.migrants.without_report(branch, due.key)
        if not members:
            return
        unreachable = await _ask_each(app, branch, members, "migrant.remind", due.key)
        for keeper in await services.migrants.keepers_to_tell(branch):
            tr = tr_for(keeper, branch)
            text = tr("migrant.remind_summary", branch=branch.title, quarter=due.key, count=len(members), names=names(tr, members))
            if unreachable:
                text += "\n" + tr("dues.remind_unreachable", names=names(tr, unreachable))
            await send(app, keeper, text)


register(MigrantClose())
register(MigrantAsk())
register(MigrantRemind())
