"""Scheduled effects of the public notice: the notice itself, the reminder to confirm, the window's close.

- ``notice`` (key: the period, e.g. ``2026-02`` or ``2026-Q1``): due on the branch's notice day and
  hour after the period; a bot that was down posts it late and says so (Late.CATCH_UP). At most the
  last two ended periods the branch existed in are offered. The notice is recorded first (what it
  publishes is fixed then), then sent; a send that fails (Telegram 5xx, a timeout, the bot removed) is
  tried again on later ticks (``retry=True``): only the messages that did not reach the group, then
  the confirmation requests not sent yet — each member is asked once. The objection window ends
  ``objection_days`` after the notice's first message reached the group (the end that message
  states); objections and disputes are taken once the whole notice is there (``sent_at``). A notice
  whose first message reaches the group late says so. A group the bot cannot post in (removed, muted)
  does not use up the tries: the secretaries and deputies are told privately (once), and re-adding the
  bot posts the notice at the next tick (handlers.setup.bot_added). A retry
  after a timeout may repeat the one message whose delivery was unknown: a repeated part is better
  than a notice with a part missing.
- ``notice_remind``: a day before the objection window closes, members who have not confirmed are
  reminded privately; a reminder whose moment has passed is skipped (Late.SKIP).
- ``notice_close``: when the window closes, the group is told how many objections came and how many
  points were withdrawn, the public's objections (群众反映) with who recorded them, and whether the
  notice was signed off (Late.CATCH_UP).
- The sign-off (支委会审核，支部书记签字确认; seeds 000 l.25, 004 l.28-30) never holds the notice back: when
  a periodic notice is recorded, its secretaries and deputies are sent its summary privately with a
  button to sign it off (once for the notice: a claim of its own in the effects); ``notice_signoff_remind``:
  a day before the window closes, if nobody has signed, they are reminded once (Late.SKIP).

The engine claims each (branch, kind, key) once, so a restart never posts twice.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date, datetime, timedelta

from telegram.ext import Application

from bot.domain.calendar import local_moment
from bot.domain.meetings import Meeting
from bot.domain.notice import Notice, periodic
from bot.domain.records import Branch
from bot.i18n import Safe, Translator
from bot.services import Services
from bot.services.branches import rulebook_of
from handlers.common import GroupUnreachable, send_group, send_group_parts, send_private
from bot.services.notices import NoticeView
from handlers.notices import (closed_summary, confirm_keyboard, local_time, member_line, member_tr, notice_messages, period_label,
                              signoff_ask, signoff_keyboard, stored_line)
from schedules.engine import Due, Late, register

log = logging.getLogger(__name__)
RECENT = 3  # the notices whose reminder and close are still looked at
REMIND_BEFORE_CLOSE = timedelta(days=1)


async def unclosed_meetings(services: Services, branch: Branch, first: date, last: date) -> list[Meeting]:
    """Meetings of the period nobody has closed yet: their attendance points are not in the notice."""
    start = local_moment(first, 0, branch.timezone)
    end = local_moment(last + timedelta(days=1), 0, branch.timezone)
    return await services.meetings.scheduled_around(branch, end, before=end - start, after=timedelta(0))


class NoticeProducer:
    kind = "notice"

    async def due(self, services: Services, branch: Branch, now: datetime) -> list[Due]:
        return [
            Due(self.kind, owed.key, owed.due_at, Late.CATCH_UP, data={"first": owed.first, "last": owed.last}, retry=True)
            for owed in await services.notices.owed(branch, now)
        ]

    async def run(self, app: Application, branch: Branch, due: Due, late: bool) -> None:
        """Safe to repeat: sends only what has not reached the group / the members yet."""
        services: Services = app.bot_data["services"]
        first, last = due.data["first"], due.data["last"]
        view = await services.notices.post(branch, due.key, first, last, due.due_at, late)
        notice = view.notice
        if not notice.sent:
            if notice.parts_sent == 0:
                notice = await services.notices.start_window(branch, notice, late)
            view = replace(view, notice=notice)
            pieces = notice_messages(Translator(branch.language), view, await unclosed_meetings(services, branch, first, last))
            try:
                branch = await send_group_parts(app, branch, pieces, notice.parts_sent,
                                                lambda parts: services.notices.part_sent(notice, parts))
            except GroupUnreachable:
                await tell_unreachable(app, branch, notice)
                raise  # the engine tries again, without using up the attempts, and at once when the bot is back
            notice = await services.notices.mark_sent(notice)
        summaries = {m.id: s for m, s in view.lines}
        for member, line in await services.notices.to_ask(notice):
            mtr = member_tr(member, branch)
            summary = summaries.get(member.id)
            shown = member_line(mtr, view.rulebook, member, summary) if summary else stored_line(mtr, view.rulebook, member, line, notice)
            text = mtr("notice.confirm_ask", branch=branch.title, period=period_label(mtr, notice.period_key),
                       line=Safe(shown), closes=local_time(notice.closes_at, branch))
            sent = await send_private(app, member.user_id, text, reply_markup=confirm_keyboard(mtr, notice))  # type: ignore[arg-type]
            await services.notices.asked(notice, member, reached=sent is not None)
        await ask_signoff(app, branch, replace(view, notice=notice))


async def ask_signoff(app: Application, branch: Branch, view: NoticeView) -> None:
    """Once the notice is in the group and its members were asked to confirm, the secretaries and deputies
    get its summary privately with the sign-off button, once for the notice (a claim of its own in the
    effects; a notice already signed — say while the group could not be reached — is not asked again)."""
    services: Services = app.bot_data["services"]
    notice = view.notice
    if notice.signed or not periodic(notice.period_key):
        return
    if not await services.calendar.claim(branch.id, "notice_signoff_ask", notice.period_key, services.clock.now(),
                                         outcome="done"):
        return
    for signer in await services.notices.signers(branch):
        assert signer.user_id is not None
        mtr = member_tr(signer, branch)
        await send_private(app, signer.user_id, signoff_ask(mtr, view), reply_markup=signoff_keyboard(mtr, notice))


async def tell_unreachable(app: Application, branch: Branch, notice: Notice) -> None:
    """The notice cannot reach the group (the bot was removed, may not post): the secretaries and deputies
    are told privately, once for the notice (a claim of its own in the effects)."""
    services: Services = app.bot_data["services"]
    if not await services.calendar.claim(branch.id, "notice_unreachable", notice.period_key, services.clock.now(),
                                         outcome="done"):
        return
    for manager in await services.branches.managers(branch):
        assert manager.user_id is not None
        mtr = member_tr(manager, branch)
        await send_private(app, manager.user_id, mtr("notice.unreachable", branch=branch.title,
                                                     period=period_label(mtr, notice.period_key)))


class ReminderProducer:
    kind = "notice_remind"

    async def due(self, services: Services, branch: Branch, now: datetime) -> list[Due]:
        return [
            Due(self.kind, n.period_key, n.closes_at - REMIND_BEFORE_CLOSE, Late.SKIP)
            for n in await services.notices.recent(branch, RECENT)
            if n.sent_at is not None and n.closes_at - REMIND_BEFORE_CLOSE > n.sent_at
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
                       closes=local_time(notice.closes_at, branch), line=Safe(stored_line(mtr, rulebook, member, line, notice)))
            await send_private(app, member.user_id, text, reply_markup=confirm_keyboard(mtr, notice))  # type: ignore[arg-type]


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
        await send_group(app, branch, closed_summary(Translator(branch.language), summary))


class SignoffReminderProducer:
    kind = "notice_signoff_remind"

    async def due(self, services: Services, branch: Branch, now: datetime) -> list[Due]:
        return [
            Due(self.kind, n.period_key, n.closes_at - REMIND_BEFORE_CLOSE, Late.SKIP)
            for n in await services.notices.recent(branch, RECENT)
            if periodic(n.period_key) and not n.signed and n.sent_at is not None
            and n.closes_at - REMIND_BEFORE_CLOSE > n.sent_at
        ]

    async def run(self, app: Application, branch: Branch, due: Due, late: bool) -> None:
        services: Services = app.bot_data["services"]
        notice = await services.notices.notice(branch, due.key)
        if notice is None or notice.signed:  # signed since it was offered
            return
        for signer in await services.notices.signers(branch):
            assert signer.user_id is not None
            mtr = member_tr(signer, branch)
            await send_private(app, signer.user_id, mtr(
                "notice.signoff.remind", branch=branch.title, period=period_label(mtr, notice.period_key),
                closes=local_time(notice.closes_at, branch)), reply_markup=signoff_keyboard(mtr, notice))


register(NoticeProducer())
register(ReminderProducer())
register(CloseProducer())
register(SignoffReminderProducer())
