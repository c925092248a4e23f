"""Scheduled effects of the monthly assessment, registered with schedules.engine.

- ``assessment_default`` (key YYYY-MM), at the month's notice moment, catching up if late: every item
  nobody assessed gets its default (registered before the notice's producer, so it runs first in the
  same tick; the notice reads ``AssessmentService.defaulted_members``). Safe to repeat, so retried if it
  failed.
- ``assessment_reminder`` (key YYYY-MM), ``assessment_reminder_days`` before that moment, skipped if
  late: the recorders (and the secretary and deputy where needed) are told who is still unassessed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from telegram.ext import Application

from bot.domain.assessment import month_key, notice_of
from bot.domain.calendar import add_months
from bot.domain.records import Branch
from bot.i18n import Translator, language_of
from bot.services import Services
from bot.services.calendar import calendar_of
from handlers.common import send_private
from schedules import engine
from schedules.engine import Due, Late

log = logging.getLogger(__name__)
NAMES_SHOWN = 30


def _months(branch: Branch, now: datetime, back: tuple[int, ...]) -> list[tuple[int, int]]:
    today = now.astimezone(ZoneInfo(branch.timezone)).date()
    return [add_months(today.year, today.month, -n) for n in back]


def _key_month(key: str) -> tuple[int, int]:
    year, month = key.split("-")
    return int(year), int(month)


def _month_label(tr: Translator, year: int, month: int) -> str:
    return tr("assessment.month", year=year, month=month)


class AssessmentDefaults:
    kind = "assessment_default"

    async def due(self, services: Services, branch: Branch, now: datetime) -> list[Due]:
        if not services.assessment.items(branch):
            return []
        settings = calendar_of(branch)
        return [
            Due(self.kind, month_key(y, m), notice_of(y, m, settings, branch.timezone), Late.CATCH_UP, retry=True)
            for y, m in _months(branch, now, (1, 2))
        ]

    async def run(self, app: Application, branch: Branch, due: Due, late: bool) -> None:
        services: Services = app.bot_data["services"]
        year, month = _key_month(due.key)
        tr = Translator(branch.language)
        defaulted = await services.assessment.apply_defaults(
            branch, year, month, tr("assessment.reason_default", month=_month_label(tr, year, month)))
        log.info("assessment defaults for branch %s %s: %d member(s)", branch.id, due.key, len(defaulted))


class AssessmentReminder:
    kind = "assessment_reminder"

    async def due(self, services: Services, branch: Branch, now: datetime) -> list[Due]:
        if not services.assessment.items(branch):
            return []
        settings = calendar_of(branch)
        before = timedelta(days=settings.assessment_reminder_days)
        return [
            Due(self.kind, month_key(y, m), notice_of(y, m, settings, branch.timezone) - before, Late.SKIP)
            for y, m in _months(branch, now, (0, 1))
        ]

    async def run(self, app: Application, branch: Branch, due: Due, late: bool) -> None:
        services: Services = app.bot_data["services"]
        year, month = _key_month(due.key)
        waiting = await services.assessment.unassessed(branch, year, month)
        if not waiting:
            return
        notice = services.assessment.notice_at(branch, year, month).strftime("%Y-%m-%d %H:%M")
        setting = services.assessment.default_setting(branch)
        for person in await services.assessment.reminder_recipients(branch, waiting):
            tr = Translator(language_of(person.language, branch.language))
            names = tr("common.list_separator").join(m.name for m in waiting[:NAMES_SHOWN])
            if len(waiting) > NAMES_SHOWN:
                names += tr("assessment.and_more", count=len(waiting) - NAMES_SHOWN)
            default = tr(f"assessment.default_{setting}")
            text = tr("assessment.reminder", branch=branch.title, month=_month_label(tr, year, month), notice=notice,
                      count=len(waiting), names=names, code=due.key, default=default)
            await send_private(app, person.user_id, text)  # type: ignore[arg-type]  # an unreachable one is skipped


engine.register(AssessmentDefaults())
engine.register(AssessmentReminder())
