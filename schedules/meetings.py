"""Scheduled effects of meetings, derived from the database on every tick (schedules.engine):

- ``meeting_reminder`` (key ``<meeting>:<minutes>``): before the meeting, per the branch's
  ``meeting_reminders_minutes``, in the group and privately to members who have not answered.
  Late.SKIP: a reminder whose moment passed while the bot was down is not sent.
- ``meeting_checkin`` (key ``<meeting>``): when the check-in window opens, a Check in button in the
  group; skipped once the window has closed.
- ``meeting_rollcall`` (key ``<meeting>``): when the check-in window closes and the meeting is still
  open, the recorders are asked to take the roll and close it. There is no automatic close: points
  are booked only after someone has looked at the roll.

The engine claims each (branch, kind, key) once, so ``due()`` lists what is due without looking at what
was done. A send that cannot reach its chat (a member who blocked the bot or never started it, a group
the bot was removed from) is logged and the round goes on; the effect is done, not retried.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.ext import Application

from bot.domain.meetings import Meeting, MeetingStatus
from bot.domain.records import Branch, Member
from bot.i18n import Translator, language_of
from bot.services import Services
from bot.services.calendar import calendar_of
from handlers.common import send_group, send_private
from handlers.meetings import answer_keyboard, describe
from schedules.engine import Due, Late, register

log = logging.getLogger(__name__)
ROLLCALL_LOOKBACK = timedelta(days=7)  # a missed nudge is still worth sending this long after


def _services(app: Application) -> Services:
    return app.bot_data["services"]


async def _private(app: Application, member: Member, text: str, markup: InlineKeyboardMarkup | None = None) -> bool:
    """A private message (handlers.common.send_private); a member it cannot reach is marked unreachable
    (reminders skip them until they /start the bot again)."""
    if member.user_id is None:
        return False
    if await send_private(app, member.user_id, text, reply_markup=markup) is None:  # type: ignore[arg-type]
        await _services(app).roster.mark_unreachable(member)
        return False
    return True


async def _group(app: Application, branch: Branch, text: str, markup: InlineKeyboardMarkup | None = None) -> bool:
    """A message in the branch's group (handlers.common.send_group: a moved group is followed, a 403
    marks the branch unreachable); False (and the round goes on) when the bot cannot post there."""
    return await send_group(app, branch, text, reply_markup=markup) is not None


async def _still_scheduled(app: Application, due: Due) -> Meeting | None:
    meeting = await _services(app).meetings.fresh(int(due.data.get("meeting", due.key.split(":")[0])))
    return meeting if meeting is not None and meeting.status is MeetingStatus.SCHEDULED else None


class MeetingReminders:
    kind = "meeting_reminder"

    @staticmethod
    def grace(minutes: int) -> timedelta:
        """How late a reminder may still go out: a quarter of its lead, between 2 and 30 minutes."""
        return timedelta(minutes=max(2, min(30, minutes // 4)))

    async def due(self, services: Services, branch: Branch, now: datetime) -> list[Due]:
        leads = sorted(set(calendar_of(branch).meeting_reminders_minutes), reverse=True)
        if not leads:
            return []
        meetings = await services.meetings.scheduled_around(branch, now, timedelta(0), timedelta(minutes=leads[0] + 1))
        dues = []
        for meeting in meetings:
            for minutes in leads:
                key, at = f"{meeting.id}:{minutes}", meeting.starts_at - timedelta(minutes=minutes)
                if at <= meeting.created_at:  # scheduled after that moment: the announcement says it all
                    continue
                dues.append(Due(self.kind, key, at, Late.SKIP, self.grace(minutes), data={"meeting": meeting.id}))
        return dues

    async def run(self, app: Application, branch: Branch, due: Due, late: bool) -> None:
        meeting = await _still_scheduled(app, due)
        if meeting is None:
            return
        tr = Translator(branch.language)
        await _group(app, branch, tr("meeting.reminder", summary=describe(tr, meeting, branch)), answer_keyboard(tr, meeting.id))
        for member in await _services(app).meetings.not_answered(meeting, branch):
            member_tr = Translator(language_of(member.language, branch.language))
            await _private(app, member, member_tr("meeting.reminder_private", summary=describe(member_tr, meeting, branch)),
                           answer_keyboard(member_tr, meeting.id))


class MeetingCheckin:
    kind = "meeting_checkin"

    async def due(self, services: Services, branch: Branch, now: datetime) -> list[Due]:
        settings = calendar_of(branch)
        before, after = timedelta(minutes=settings.checkin_before_minutes), timedelta(minutes=settings.checkin_after_minutes)
        meetings = await services.meetings.scheduled_around(branch, now, after, before + timedelta(minutes=1))
        grace = max(before + after, timedelta(minutes=1))  # still useful while the window is open
        return [Due(self.kind, str(m.id), m.starts_at - before, Late.SKIP, grace, data={"meeting": m.id}) for m in meetings]

    async def run(self, app: Application, branch: Branch, due: Due, late: bool) -> None:
        meeting = await _still_scheduled(app, due)
        if meeting is None:
            return
        tr = Translator(branch.language)
        _, shuts = meeting.checkin_window(calendar_of(branch))
        until = shuts.astimezone(meeting.local_start(branch.timezone).tzinfo).strftime("%H:%M")
        markup = InlineKeyboardMarkup([[InlineKeyboardButton(tr("meeting.checkin"), callback_data=f"mt:ci:{meeting.id}")]])
        await _group(app, branch, tr("meeting.checkin_open", summary=describe(tr, meeting, branch), until=until), markup)


class MeetingRollCall:
    kind = "meeting_rollcall"

    async def due(self, services: Services, branch: Branch, now: datetime) -> list[Due]:
        after = timedelta(minutes=calendar_of(branch).checkin_after_minutes)
        meetings = await services.meetings.scheduled_around(branch, now, ROLLCALL_LOOKBACK, timedelta(0))
        return [Due(self.kind, str(m.id), m.starts_at + after, Late.CATCH_UP, data={"meeting": m.id}) for m in meetings]

    async def run(self, app: Application, branch: Branch, due: Due, late: bool) -> None:
        meeting = await _still_scheduled(app, due)
        if meeting is None:
            return
        services = _services(app)
        tally = await services.meetings.tally(meeting.id)
        reached = 0
        for keeper in await services.meetings.roll_keepers(branch):
            tr = Translator(language_of(keeper.language, branch.language))
            markup = InlineKeyboardMarkup([[InlineKeyboardButton(tr("meeting.roll_button", number=meeting.id),
                                                                 callback_data=f"mt:rc:{meeting.id}")]])
            text = tr("meeting.roll_nudge", number=meeting.id, checked_in=tally.checked_in)
            reached += await _private(app, keeper, text + "\n" + describe(tr, meeting, branch), markup)
        if not reached:
            tr = Translator(branch.language)
            markup = InlineKeyboardMarkup([[InlineKeyboardButton(tr("meeting.roll_button", number=meeting.id),
                                                                 callback_data=f"mt:rc:{meeting.id}")]])
            await _group(app, branch, tr("meeting.roll_nudge", number=meeting.id, checked_in=tally.checked_in), markup)


register(MeetingReminders())
register(MeetingCheckin())
register(MeetingRollCall())
