"""Scheduled effects of the public notice: the notice itself, the reminder to confirm, the window's close.

- ``notice`` (key: the period, e.g. ``2026-02`` or ``2026-Q1``): due on the branch's notice day and
  hour after the period; a bot that was down posts it late and says so (Late.CATCH_UP). At most the
  last two ended periods the branch existed in are offered.
- ``notice_remind``: a day before the objection window closes, members who have not confirmed are
  reminded privately; a reminder whose moment has passed is skipped (Late.SKIP).
- ``notice_close``: when the window closes, the group is told how many objections came and how many
  points were withdrawn (Late.CATCH_UP).

The engine claims each (branch, kind, key) once, so a restart never posts twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from telegram.error import Forbidden
from telegram.ext import Application

from bot.domain.notice import ObjectionKind, ObjectionStatus, months_of
from bot.domain.records import Branch
from bot.i18n import Safe, Translator
from bot.services import Services
from bot.services.branches import rulebook_of
from handlers.notices import confirm_keyboard, local_time, member_line, member_tr, notice_messages, period_label, send_private, stored_line
from schedules.engine import Due, Late, register

log = logging.getLogger(__name__)
RECENT = 3  # the notices whose reminder and close are still looked at
REMIND_BEFORE_CLOSE = timedelta(days=1)


class NoticeProducer:
    kind = "notice"

    async def due(self, services: Services, branch: Branch, now: datetime) -> list[Due]:
        return [
            Due(self.kind, owed.key, owed.due_at, Late.CATCH_UP, data={"first": owed.first, "last": owed.last})
            for owed in await services.notices.owed(branch, now)
        ]

    async def run(self, app: Application, branch: Branch, due: Due, late: bool) -> None:
        services: Services = app.bot_data["services"]
        first, last = due.data["first"], due.data["last"]
        view = await services.notices.post(branch, due.key, first, last, due.due_at, late)
        if not view.created:  # recorded by an earlier run: never posted twice
            return
        defaulted_ids: set[int] = set()
        for year, month in months_of(first, last):
            defaulted_ids.update(await services.assessment.defaulted_members(branch.id, year, month))
        defaulted = [m for m, _ in view.lines if m.id in defaulted_ids]
        tr = Translator(branch.language)
        try:
            for piece in notice_messages(tr, view, defaulted):
                await app.bot.send_message(branch.chat_id, piece)
        except Forbidden:
            await services.branches.set_reachable(branch, False)
            raise
        summaries = {m.id: s for m, s in view.lines}
        for member, _line in await services.notices.to_confirm(view.notice):
            mtr = member_tr(member, branch)
            text = mtr("notice.confirm_ask", branch=branch.title, period=period_label(mtr, view.notice.period_key),
                       line=Safe(member_line(mtr, view.rulebook, member, summaries[member.id])),
                       closes=local_time(view.notice.closes_at, branch))
            if await send_private(app.bot, member.user_id, text, reply_markup=confirm_keyboard(mtr, view.notice)) is None:  # type: ignore[arg-type]
                await services.roster.mark_unreachable(member)


class ReminderProducer:
    kind = "notice_remind"

    async def due(self, services: Services, branch: Branch, now: datetime) -> list[Due]:
        return [
            Due(self.kind, n.period_key, n.closes_at - REMIND_BEFORE_CLOSE, Late.SKIP)
            for n in await services.notices.recent(branch, RECENT)
            if n.closes_at - REMIND_BEFORE_CLOSE > n.posted_at
        ]

    async def run(self, app: Application, branch: Branch, due: Due, late: bool) -> None:
        services: Services = app.bot_data["services"]
        notice = await services.notices.notice(branch, due.key)
        if notice is None:
            return
        rulebook = rulebook_of(branch)
        for member, line in await services.notices.to_confirm(notice):
            mtr = member_tr(member, branch)
            text = mtr("notice.confirm_remind", branch=branch.title, period=period_label(mtr, notice.period_key),
                       closes=local_time(notice.closes_at, branch), line=Safe(stored_line(mtr, rulebook, member, line)))
            await send_private(app.bot, member.user_id, text, reply_markup=confirm_keyboard(mtr, notice))  # type: ignore[arg-type]


class CloseProducer:
    kind = "notice_close"

    async def due(self, services: Services, branch: Branch, now: datetime) -> list[Due]:
        return [Due(self.kind, n.period_key, n.closes_at, Late.CATCH_UP)
                for n in await services.notices.recent(branch, RECENT)]

    async def run(self, app: Application, branch: Branch, due: Due, late: bool) -> None:
        services: Services = app.bot_data["services"]
        summary = await services.notices.close_summary(branch, due.key)
        if summary is None:
            return
        tr = Translator(branch.language)
        objection = ObjectionKind.OBJECTION
        await app.bot.send_message(branch.chat_id, tr(
            "notice.closed_summary", branch=branch.title, period=period_label(tr, due.key),
            objections=summary.count(objection), withdrawn=summary.count(objection, ObjectionStatus.WITHDRAWN),
            upheld=summary.count(objection, ObjectionStatus.UPHELD), open=summary.count(objection, ObjectionStatus.OPEN),
            disputes=summary.count(ObjectionKind.DISPUTE), unconfirmed=summary.unconfirmed))


register(NoticeProducer())
register(ReminderProducer())
register(CloseProducer())
