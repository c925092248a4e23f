"""Building the Telegram application: handlers, defaults, rate limiting, menus."""

from __future__ import annotations

import asyncio
import gc
import logging
import warnings

from telegram.constants import ParseMode
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, Defaults
from telegram.request import BaseRequest

from bot.polling import ConfirmAfterHandling
from bot.ratelimit import SlidingWindowRateLimiter
from bot.services import Services

import handlers.assessment
import handlers.calendar_settings
import handlers.decide
import handlers.declare
import handlers.democratic
import handlers.dues
import handlers.exports
import handlers.grading
import handlers.meetings
import handlers.menus
import handlers.migrants
import handlers.notices
import handlers.queries
import handlers.rewards
import handlers.roster
import handlers.rulebook
import handlers.setup
import handlers.town
import handlers.town_review
import schedules.decisions
import schedules.engine

# Producers run in this order within a tick: month close and assessment defaults before the notice.
import schedules.dues  # noqa: E402,F401  (registers its producers)
import schedules.migrants  # noqa: E402,F401
import schedules.assessment  # noqa: E402,F401
import schedules.meetings  # noqa: E402,F401
import schedules.notices  # noqa: E402,F401
import schedules.grading  # noqa: E402,F401
import schedules.town  # noqa: E402,F401
from handlers.common import error_handler

# Our conversations are per user and chat on purpose (a declaration is one person's private flow);
# PTB warns about CallbackQueryHandlers in such conversations regardless.
warnings.filterwarnings("ignore", message=r"If 'per_message=False'", category=UserWarning)


FEATURES = (handlers.meetings, handlers.dues, handlers.migrants, handlers.assessment, handlers.notices,
            handlers.democratic, handlers.grading, handlers.exports, handlers.town_review)

log = logging.getLogger(__name__)


def register_handlers(app: Application) -> None:
    # Order matters: conversations first so their states see messages before plain commands do.
    handlers.setup.register(app)
    handlers.declare.register(app)
    handlers.decide.register(app)
    handlers.roster.register(app)
    handlers.queries.register(app)
    handlers.calendar_settings.register(app)
    handlers.rulebook.register(app)
    for feature in FEATURES:
        feature.register(app)
    handlers.rewards.register(app)
    handlers.town.register(app)
    handlers.menus.register(app)  # last: the catch-all for unknown buttons
    app.add_error_handler(error_handler)


async def _post_init(app: Application) -> None:
    await handlers.menus.set_menus(app)
    schedules.engine.start(app)
    schedules.decisions.start(app)
    if app.job_queue is not None:  # a job: run once the application has started, stopped with it
        app.job_queue.run_once(_warm_up_charts, when=0, name="warm-up-charts")
    settle_heap()


def settle_heap() -> None:
    """Once start-up is done: collect, then set everything alive now aside from the cyclic collector
    (``gc.freeze``). Start-up leaves ~170k long-lived objects (PTB's handlers, the catalogs, pydantic
    schemas); without this every full collection walks them again — measured 80–136 ms, landing inside
    whichever update triggered it (a /history at 95 ms), 11–17 ms with it. Later objects are collected
    as before; frozen ones are still freed when nothing refers to them."""
    gc.collect()
    gc.freeze()


async def _warm_up_charts(context: object = None) -> None:
    """The first chart of a process loads matplotlib and the font: done now, off the loop, not on a /grade."""
    try:
        from bot.charts import warm_up

        await asyncio.to_thread(warm_up)
    except Exception:  # a chart is a help, never a reason to fail (handlers.grading says the same)
        log.warning("could not warm up the charts", exc_info=True)


# Telegram's flood limits (core.telegram.org/bots/faq): about 30 messages a second in all, 20 a minute in
# one group, held over every sliding window (bot/ratelimit.py: AIORateLimiter's leaky buckets allow almost
# twice that in one window after a quiet spell). A 429 (RetryAfter) is waited out and the call made
# again, up to max_retries.
OVERALL_MAX_RATE, OVERALL_TIME_PERIOD = 30, 1
GROUP_MAX_RATE, GROUP_TIME_PERIOD = 20, 60
MAX_RETRIES = 3


def rate_limiter() -> AIORateLimiter:
    return SlidingWindowRateLimiter(overall_max_rate=OVERALL_MAX_RATE, overall_time_period=OVERALL_TIME_PERIOD,
                          group_max_rate=GROUP_MAX_RATE, group_time_period=GROUP_TIME_PERIOD,
                          max_retries=MAX_RETRIES)


def build_application(
    token: str,
    services: Services,
    *,
    request: BaseRequest | None = None,
    base_url: str | None = None,
    base_file_url: str | None = None,
    rate_limit: bool = True,
    set_menus: bool = True,
) -> Application:
    builder: ApplicationBuilder = Application.builder().token(token).defaults(Defaults(parse_mode=ParseMode.HTML))
    # getUpdates confirms a batch only after it was handled (bot/polling.py): a crash loses no update
    updates_request = ConfirmAfterHandling(request)
    builder = builder.get_updates_request(updates_request)
    if request is not None:
        builder = builder.request(request)
    if base_url:
        builder = builder.base_url(base_url)
    if base_file_url:
        builder = builder.base_file_url(base_file_url)
    if rate_limit:
        builder = builder.rate_limiter(rate_limiter())
    if set_menus:
        builder = builder.post_init(_post_init)
    app = builder.build()
    updates_request.bind(app.update_queue)
    app.bot_data["services"] = services
    register_handlers(app)
    return app
