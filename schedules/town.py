"""Scheduled work of the town (only for branches that belong to one):

- ``town_remind`` (key: the branch-local date): at REMIND_HOUR each day, a branch's secretaries and
  deputies are told privately about declarations pending longer than the town's ``overdue_days``
  (default 3) and about the last period's notice when it is owed and not in the group. Nothing to say:
  nothing listed, nothing recorded. A reminder whose moment has passed is skipped (Late.SKIP).
- ``town_digest`` (key: ``<town id>:<YYYY-MM>`` of the month just ended): on the 1st at DIGEST_HOUR
  (the town's timezone), every town administrator gets the month's figures per branch. The engine's
  effects are keyed by branch, so the digest is listed by one branch of the town (the lowest id) and
  each administrator's copy is claimed once more in ``town_sends`` (town, kind, key, user): a change of
  that branch, a restart or a retry never sends anyone a second copy. An administrator who cannot be
  reached is marked unreachable; a passing failure (a timeout) releases their claim and the effect is
  tried again (retry=True). The towns and their digests' effects are read once per tick for all
  branches (``prepare``); once a month's digest is done nothing is listed, so the rest of the month's
  ticks neither query per branch nor try to claim it again.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from telegram.ext import Application

from bot.domain.calendar import add_months, local_moment
from bot.domain.town import NoticeState
from bot.domain.records import Branch
from bot.i18n import Translator
from bot.services import Services
from handlers.common import send_private
from handlers.notices import local_time, period_label
from schedules.engine import MAX_ATTEMPTS, Due, Late, register

log = logging.getLogger(__name__)
REMIND_HOUR = 9
DIGEST_HOUR = 9
DIGEST_KIND = "digest"


class TownReminderProducer:
    kind = "town_remind"

    async def due(self, services: Services, branch: Branch, now: datetime) -> list[Due]:
        if branch.town_id is None:
            return []
        today = now.astimezone(ZoneInfo(branch.timezone)).date()
        moment = local_moment(today, REMIND_HOUR, branch.timezone)
        grace = timedelta(hours=3)
        if not moment <= now < moment + grace:  # outside the hours it is useful: no query at all
            return []
        overdue = await services.towns.overdue(branch, now)
        if not overdue.declarations and overdue.notice_key is None:
            return []
        return [Due(self.kind, today.isoformat(), moment, Late.SKIP, grace=grace)]

    async def run(self, app: Application, branch: Branch, due: Due, late: bool) -> None:
        services: Services = app.bot_data["services"]
        now = services.clock.now()
        overdue = await services.towns.overdue(branch, now)
        if not overdue.declarations and overdue.notice_key is None:
            return
        for secretary in await services.towns.secretaries(branch):
            tr = Translator(secretary.language if secretary.language in ("zh", "en") else branch.language)
            lines = [tr("town.reminder.header", branch=branch.title)]
            if overdue.declarations:
                lines.append(tr("town.reminder.declarations", count=len(overdue.declarations), days=services.towns.overdue_days,
                                oldest=local_time(overdue.declarations[0][1], branch)))
            if overdue.notice_key is not None:
                lines.append(tr("town.reminder.notice", period=period_label(tr, overdue.notice_key)))
            sent = await send_private(app, secretary.user_id, "\n".join(lines))  # type: ignore[arg-type]
            if sent is None:
                await services.roster.mark_unreachable(secretary)


def _may_run(state: tuple[str, int] | None) -> bool:
    """Never claimed, or failed with attempts left (the engine takes it again, retry=True)."""
    return state is None or (state[0] == "failed" and state[1] < MAX_ATTEMPTS)


def previous_month(today: date) -> tuple[int, int]:
    return add_months(today.year, today.month, -1)


class TownDigestProducer:
    """The digest's Due for each town's listing branch, worked out once per tick for every town (one
    query for the towns and their listers, one for their effects), not per branch. Once the month's
    effect is done (or skipped, or failed for good) nothing is listed, so a tick does not try to claim
    it again — which was a write transaction per town on every tick of the month."""

    kind = "town_digest"

    def __init__(self) -> None:
        self._tick: tuple[object, datetime, dict[int, Due]] | None = None  # (services, now, lister → its Due)

    async def prepare(self, services: Services, now: datetime) -> None:
        """Once at the start of each tick (schedules.engine)."""
        self._tick = None
        self._tick = (services, now, await self._dues(services, now))

    async def due(self, services: Services, branch: Branch, now: datetime) -> list[Due]:
        if branch.town_id is None:
            return []
        tick = self._tick
        if tick is None or tick[0] is not services or tick[1] != now:  # called outside a prepared tick
            tick = self._tick = (services, now, await self._dues(services, now))
        found = tick[2].get(branch.id)
        return [found] if found is not None else []

    async def _dues(self, services: Services, now: datetime) -> dict[int, Due]:
        wanted: dict[int, Due] = {}
        for town, lister in await services.towns.digest_listers():
            today = now.astimezone(ZoneInfo(town.timezone)).date()
            moment = local_moment(today.replace(day=1), DIGEST_HOUR, town.timezone)
            if now < moment:
                continue
            year, month = previous_month(today)
            created = town.created_at.astimezone(ZoneInfo(town.timezone)).date()
            if (year, month) < (created.year, created.month):
                continue  # the month ended before the town existed: nothing to sum up
            wanted[lister] = Due(self.kind, f"{town.id}:{year:04d}-{month:02d}", moment, Late.CATCH_UP,
                                 data={"town_id": town.id, "year": year, "month": month}, retry=True)
        states = await services.towns.effect_states(self.kind, [due.key for due in wanted.values()])
        return {lister: due for lister, due in wanted.items() if _may_run(states.get((lister, due.key)))}

    async def run(self, app: Application, branch: Branch, due: Due, late: bool) -> None:
        services: Services = app.bot_data["services"]
        town = await services.towns.town_of_branch(branch.id)
        if town is None or town.id != due.data["town_id"]:
            return
        year, month = due.data["year"], due.data["month"]
        figures, month_figures = await services.towns.month_digest(town, year, month)
        tr = Translator(town.language)
        lines = [tr("town.digest.header", town=town.name, year=year, month=month, count=len(figures))]
        for f in figures:
            got = month_figures.get(f.branch_id, {})
            notice = (tr("town.line_notice", period=period_label(tr, f.notice_period), state=tr(f"town.notice_{f.notice_state.value}"))
                      if f.notice_period else tr("town.line_notice_none"))
            lines.append(tr("town.digest.branch", title=f.title, declared=got.get("declared", 0), approved=got.get("approved", 0),
                            rejected=got.get("rejected", 0), entries=got.get("entries", 0), objections=got.get("objections", 0),
                            notice=notice, pending=f.pending_declarations))
        if not any(month_figures.values()) and not any(f.notice_state is NoticeState.NOT_YET for f in figures):
            lines.append(tr("town.digest.none"))
        text = "\n".join(lines)
        for admin in await services.towns.admins(town.id):
            if not await services.towns.claim_send(town.id, DIGEST_KIND, due.key, admin.user_id):
                continue  # this administrator has their copy already
            try:
                sent = await send_private(app, admin.user_id, text)
            except Exception:
                await services.towns.release_send(town.id, DIGEST_KIND, due.key, admin.user_id)
                raise
            await services.towns.finish_send(town.id, DIGEST_KIND, due.key, admin.user_id, reached=sent is not None)


register(TownReminderProducer())
register(TownDigestProducer())
