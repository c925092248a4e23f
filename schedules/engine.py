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

log = logging.getLogger(__name__)
TICK_JOB = "calendar-tick"
TICK_SECONDS = 60
TICK_SECONDS_KEY = "tick_seconds"  # app.bot_data key overriding TICK_SECONDS (settings.scheduler_tick_seconds)
MAX_ATTEMPTS = 5
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
    # before it is sent) is tried again on later ticks after a failure, up to MAX_ATTEMPTS times.
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
    for branch in await services.calendar.branches():
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
                if not claimed and due.retry:
                    claimed = await services.calendar.reclaim_failed(branch.id, due.kind, due.key, MAX_ATTEMPTS,
                                                                     after=earlier, busy_since=now - BUSY_FOR)
                if not claimed:
                    continue  # already done (or claimed by a run that died: never twice)
                try:
                    await producer.run(app, branch, due, late)
                except Exception as exc:
                    log.exception("%s %s failed for branch %s", due.kind, due.key, branch.id)
                    await services.calendar.finish(branch.id, due.kind, due.key, "failed", repr(exc)[:500])
                    done.append((branch.id, due.kind, due.key, "failed"))
                else:
                    await services.calendar.finish(branch.id, due.kind, due.key, "done")
                    done.append((branch.id, due.kind, due.key, "done"))
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
