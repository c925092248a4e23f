"""Decisions committed but never shown: the sweep that shows them.

A decision (approve / adjust / reject) is committed, then shown: the card's copies edited and the member
told (handlers.decide.show_decision), which marks it shown. A process that dies in between leaves it
unshown, and a redelivered press only finds the declaration decided. This job, every few minutes, takes
over what is still unshown long after its claim (``STALE_AFTER``: far longer than showing takes, even
waiting out Telegram's flood limits, so a decision still being shown by a live process is never taken)
and shows it — in the decider's language, as the decider's copy of the card would have read.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from telegram.ext import Application, ContextTypes

from bot.i18n import Translator, language_of
from bot.services import Services
from handlers.decide import show_decision

log = logging.getLogger(__name__)
SWEEP_JOB = "decision-sweep"
SWEEP_SECONDS = 120
STALE_AFTER = timedelta(minutes=10)


async def sweep(context: ContextTypes.DEFAULT_TYPE) -> int:
    """Show every decision left unshown; returns how many were taken over."""
    services: Services = context.application.bot_data["services"]
    decisions = await services.declarations.unpublished(services.clock.now() - STALE_AFTER)
    for decision in decisions:
        tr = Translator(language_of(decision.decider.language, decision.branch.language))
        log.info("showing decision on declaration %s, left unshown by a process that stopped", decision.declaration.id)
        try:
            await show_decision(context, decision, tr)
        except Exception:  # one that cannot be shown does not hold up the others (it is marked given up)
            log.exception("could not show the decision on declaration %s", decision.declaration.id)
    return len(decisions)


def start(app: Application) -> None:
    """One repeating job under a fixed name (a restart replaces it); its first run soon after start."""
    if app.job_queue is None:
        return
    for job in app.job_queue.get_jobs_by_name(SWEEP_JOB):
        job.schedule_removal()
    app.job_queue.run_repeating(sweep, interval=SWEEP_SECONDS, first=30, name=SWEEP_JOB,
                                job_kwargs={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})
