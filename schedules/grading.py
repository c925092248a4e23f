"""Scheduled effects of the year end's grading: producers registered with schedules.engine.

- ``grade_publicity`` (key: the annual notice's period, ``2026`` or ``2026-R2``): the secretary's
  confirmation sends the annual publicity at once under this claim; when that send failed (Telegram
  5xx, a timeout, the bot removed) the tick tries again (``retry=True``) — only the messages that did
  not reach the group, then the confirmation requests not sent yet. The window (at least 7 days)
  counts from the first message that reached the group.
- ``grade_finalise``: when the window has closed, each secretary is sent the recomputed result with the
  "finalise and lock" button (Late.CATCH_UP: a bot that was down sends it late).

The notices' own producers also see the annual notice (it is a notice like the monthly ones): the
reminder to confirm a day before the window closes and the group's summary of objections at its end.
"""

from __future__ import annotations

from datetime import datetime

from telegram.ext import Application

from bot.domain.records import Branch
from bot.services import Services
from handlers.grading import PUBLICITY_KIND, remind_finalise, send_publicity
from schedules.engine import Due, Late, register

FINALISE_KIND = "grade_finalise"


class PublicityProducer:
    kind = PUBLICITY_KIND

    async def due(self, services: Services, branch: Branch, now: datetime) -> list[Due]:
        return [Due(self.kind, notice.period_key, round_.confirmed_at, Late.CATCH_UP, data={"round": round_.id}, retry=True)
                for round_, notice in await services.grading.running(branch) if not notice.sent]

    async def run(self, app: Application, branch: Branch, due: Due, late: bool) -> None:
        """Safe to repeat: sends only what has not reached the group / the members yet."""
        await send_publicity(app, branch, due.data["round"])


class FinaliseReminderProducer:
    kind = FINALISE_KIND

    async def due(self, services: Services, branch: Branch, now: datetime) -> list[Due]:
        return [Due(self.kind, notice.period_key, notice.closes_at, Late.CATCH_UP, data={"round": round_.id})
                for round_, notice in await services.grading.running(branch) if notice.sent]

    async def run(self, app: Application, branch: Branch, due: Due, late: bool) -> None:
        await remind_finalise(app, branch, due.data["round"])


register(PublicityProducer())
register(FinaliseReminderProducer())
