"""Time-driven work, derived from the database on every tick — nothing is persisted in the scheduler.

Every feature contributes a ``Producer``: ``due()`` lists the effects that are due for a branch at
``now`` (a notice for a period, a reminder for a meeting…), ``run()`` performs one. The engine claims
each effect under a unique (branch, kind, key) before running it, so an effect happens at most once
across ticks and restarts; a bot that was down catches up at its first tick. Effects whose moment is
long past and that make no sense late (reminders) are recorded as skipped instead.

The tick runs on PTB's JobQueue every minute (one deterministic job name), and tests call ``tick()``
directly with a controlled clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from telegram.ext import Application, ContextTypes

from bot.domain.records import Branch
from bot.services import Services
from handlers.common import GroupUnreachable

log = logging.getLogger(__name__)
TICK_JOB = "calendar-tick"
TICK_SECONDS = 60
TICK_SECONDS_KEY = "tick_seconds"  # app.bot_data key overriding TICK_SECONDS (settings.scheduler_tick_seconds)
# A failed effect that is safe to repeat (Due.retry) is taken again: at the next ticks for its first
# QUICK_RETRIES tries (a blip), then after a delay that doubles from RETRY_STEP up to RETRY_CAP, until it
# has been tried for about RETRY_FOR (MAX_ATTEMPTS tries in all): a Telegram outage of hours, or of days,
# at 09:00 on the 1st does not lose the month's notice. A try that found the group unreachable (the bot was
# removed, may not post) does not count: it is tried again every UNREACHABLE_RETRY until the bot is back
# (re-adding it tries at once, handlers.setup.bot_added).
QUICK_RETRIES = 4
RETRY_STEP = timedelta(minutes=5)
RETRY_CAP = timedelta(hours=6)
RETRY_FOR = timedelta(days=7)
UNREACHABLE_RETRY = RETRY_CAP


def retry_delay(attempts: int) -> timedelta:
    """How long a failed effect waits after its ``attempts``-th try: none for the first QUICK_RETRIES
    (the next tick), then 5, 10, 20 … minutes, at most RETRY_CAP."""
    if attempts <= QUICK_RETRIES:
        return timedelta(0)
    return min(RETRY_STEP * 2 ** min(attempts - QUICK_RETRIES - 1, 16), RETRY_CAP)


def _attempts_within(span: timedelta) -> int:
    """The number of tries whose waits add up to at least ``span``."""
    attempts, waited = 1, timedelta(0)
    while waited < span:
        waited += retry_delay(attempts)
        attempts += 1
    return attempts


MAX_ATTEMPTS = _attempts_within(RETRY_FOR)
# Two bot processes on one database tick at once. An effect waits while an earlier producer's effect of
# the same branch is in progress elsewhere (a notice while the month is being closed), unless that claim
# is this old: its process died, and waiting longer would hold the branch's calendar up for good.
BUSY_FOR = timedelta(minutes=15)


class Late(StrEnum):
    CATCH_UP = "catch_up"  # do it late, and say so (a notice, a month close)
    SKIP = "skip"  # a reminder whose moment has passed is useless: record it as skipped


@dataclass(frozen=True)
class Due:
    kind: str
    key: str
    due_at: datetime  # aware
    late: Late = Late.CATCH_UP
    grace: timedelta = field(default=timedelta(minutes=30))  # how late still counts as on time
    data: dict = field(default_factory=dict, compare=False)
    # An effect whose run() is safe to repeat (it checks what was already done, e.g. a notice stored
    # before it is sent) is tried again on later ticks after a failure, with growing delays, up to
    # MAX_ATTEMPTS times (about RETRY_FOR).
    retry: bool = False


class Producer(Protocol):
    kind: str

    async def due(self, services: Services, branch: Branch, now: datetime) -> list[Due]: ...

    async def run(self, app: Application, branch: Branch, due: Due, late: bool) -> None: ...


PRODUCERS: list[Producer] = []


def register(producer: Producer) -> Producer:
    """Add a producer; the order of registration is the order effects run within one tick."""
    if all(p.kind != producer.kind for p in PRODUCERS):
        PRODUCERS.append(producer)
    return producer


async def tick(app: Application, now: datetime | None = None) -> list[tuple[int, str, str, str]]:
    """Run every due effect of every branch once; returns (branch, kind, key, outcome) for what it did."""
    services: Services = app.bot_data["services"]
    now = now or services.clock.now()
    done: list[tuple[int, str, str, str]] = []
    for producer in PRODUCERS:  # what a producer reads once for all branches of this tick (optional)
        prepare = getattr(producer, "prepare", None)
        if prepare is not None:
            try:
                await prepare(services, now)
            except Exception:
                log.exception("preparing the %s effects failed", producer.kind)
    # An unreachable branch (the bot was removed, a send got 403) still gets its bookkeeping (month
    # close, defaults); its sends fail and are recorded. Re-adding the bot marks it reachable again.
    # An effect that ran may have moved a branch to its group's new chat id and retired the bare branch
    # set up there meanwhile (a group migration, handlers.common.follow_group): after one ran, the list
    # is read again, so a branch retired in this tick posts nothing and a moved one posts at its new id.
    branches = await services.calendar.branches()
    live = {b.id: b for b in branches}
    for listed in branches:
        if listed.id not in live:
            continue
        branch = live[listed.id]
        ran = len(done)
        for position, producer in enumerate(PRODUCERS):
            earlier = tuple(p.kind for p in PRODUCERS[:position])
            try:
                dues = await producer.due(services, branch, now)
            except Exception:
                log.exception("listing due %s effects failed for branch %s", producer.kind, branch.id)
                continue
            for due in sorted(dues, key=lambda d: d.due_at):
                if due.due_at > now:
                    continue
                late = now - due.due_at > due.grace
                if late and due.late is Late.SKIP:
                    if await services.calendar.claim(branch.id, due.kind, due.key, due.due_at, outcome="skipped"):
                        done.append((branch.id, due.kind, due.key, "skipped"))
                    continue
                claimed = await services.calendar.claim(branch.id, due.kind, due.key, due.due_at,
                                                        after=earlier, busy_since=now - BUSY_FOR)
                attempt = 1
                if not claimed and due.retry:
                    attempt = await services.calendar.reclaim_failed(branch.id, due.kind, due.key, MAX_ATTEMPTS, now,
                                                                     after=earlier, busy_since=now - BUSY_FOR)
                    claimed = attempt > 0
                if not claimed:
                    continue  # already done, waiting for its retry (or claimed by a run that died: never twice)
                try:
                    await producer.run(app, branch, due, late)
                except GroupUnreachable as exc:  # not the effect's fault: wait for the group, keep its attempts
                    log.warning("%s %s for branch %s: %s; tried again in %s or when the bot is back in the group",
                                due.kind, due.key, branch.id, exc, UNREACHABLE_RETRY)
                    await services.calendar.finish(branch.id, due.kind, due.key, "failed", repr(exc)[:500],
                                                   retry_at=now + UNREACHABLE_RETRY, refund=due.retry)
                    done.append((branch.id, due.kind, due.key, "failed"))
                except Exception as exc:
                    log.exception("%s %s failed for branch %s (try %s)", due.kind, due.key, branch.id, attempt)
                    await services.calendar.finish(branch.id, due.kind, due.key, "failed", repr(exc)[:500],
                                                   retry_at=now + retry_delay(attempt))
                    done.append((branch.id, due.kind, due.key, "failed"))
                else:
                    await services.calendar.finish(branch.id, due.kind, due.key, "done")
                    done.append((branch.id, due.kind, due.key, "done"))
        if any(outcome != "skipped" for *_, outcome in done[ran:]):
            live = {b.id: b for b in await services.calendar.branches()}
    return done


async def _tick_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    await tick(context.application)


def start(app: Application) -> None:
    """One repeating job; its first run at start is the catch-up after downtime."""
    if app.job_queue is None:
        log.warning("no JobQueue: scheduled work (notices, reminders) will not run")
        return
    for job in app.job_queue.get_jobs_by_name(TICK_JOB):
        job.schedule_removal()
    interval = app.bot_data.get(TICK_SECONDS_KEY, TICK_SECONDS)  # shorter only in end-to-end tests
    app.job_queue.run_repeating(_tick_job, interval=interval, first=1, name=TICK_JOB,
                                job_kwargs={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})
