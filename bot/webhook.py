"""Webhook receiving that answers Telegram only after the update has been handled.

Telegram forgets an update once the webhook answered it 2xx, and posts it again (later) after any other
answer, a timeout or a broken connection. PTB's webhook server (``telegram.ext._utils.webhookhandler``)
answers 200 as soon as it has put the update on the Application's queue, before any handler ran: a process
killed at that point loses the update for good. Here the request is answered only once
``Application.process_update`` has returned for its update — the handlers ran and their transactions were
committed (or the error handler ran, see below) — so a process killed while it handles an update leaves
that update unanswered, and Telegram posts it again to the restarted bot. Handlers are safe to repeat
(a redelivered update changes nothing), as for polling (bot/polling.py).

What stays PTB's own: ``Application.run_webhook`` (signals, initialise, post_init, the JobQueue, the
shutdown order), its tornado ``WebhookServer`` and its ``TelegramHandler``'s checks (403 without
``Content-Type: application/json`` or without the right ``X-Telegram-Bot-Api-Secret-Token``, before the
body is read), and ``setWebhook`` with the same arguments (url, allowed_updates, secret_token,
max_connections). :class:`ConfirmingUpdater` replaces the Application's Updater for ``run_webhook`` only;
TLS stays with the reverse proxy (no cert/key), as before.

Differences, on purpose:

- An update is handled through ``Application.update_processor`` as the Application's own queue would
  handle it, so with the default processor (one update at a time) concurrent requests — Telegram opens up
  to ``max_connections`` — are handled one after another, in the order they arrived, as before and as in
  polling; each request is answered when its own update is done.
- An update whose handler raised is answered 200 once the error handler has run (PTB's
  ``process_update`` hands handler errors to it and returns). Polling does the same: the Application marks
  the update done and the next offset confirms it. Telegram retrying it would only repeat the failure.
  An error escaping ``process_update`` itself is logged and answered 200 too, for the same reason.
- The server listens before ``setWebhook`` is called (PTB calls it first), so Telegram's first post after
  a restart finds it. An update can then arrive before ``Application.start``; ``process_update`` needs only
  ``initialize`` (and post_init: the database open), which ran before.
- A graceful stop (SIGTERM) stops taking updates — a request arriving from then on gets 503, so Telegram
  keeps it and posts it again later — and waits until every update being handled is done and answered;
  only then does PTB stop the Application and close the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from http import HTTPStatus
from typing import Any

import tornado.web
from telegram import Update
from telegram._utils.defaultvalue import DEFAULT_80, DEFAULT_IP, DefaultValue
from telegram._utils.types import DVType
from telegram.ext import Application, ExtBot, Updater
from telegram.ext._utils.webhookhandler import TelegramHandler, WebhookServer

__all__ = ["ConfirmingUpdater", "run_webhook"]

log = logging.getLogger(__name__)


class _Intake:
    """The updates being handled, and whether new ones are still taken."""

    def __init__(self) -> None:
        self.closing = False
        self._handling = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def one(self) -> Iterator[None]:
        self._handling += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._handling -= 1
            if not self._handling:
                self._idle.set()

    @property
    def handling(self) -> int:
        return self._handling

    async def drained(self) -> None:
        await self._idle.wait()


class ConfirmingHandler(TelegramHandler):
    """PTB's TelegramHandler (its checks, its headers), answering only once the update was handled."""

    def initialize(self, bot: ExtBot[Any], update_queue: asyncio.Queue[object], secret_token: str | None,
                   handling: Application[Any, Any, Any, Any, Any, Any] | None = None,
                   intake: _Intake | None = None) -> None:
        super().initialize(bot, update_queue, secret_token)  # type: ignore[arg-type]
        assert handling is not None and intake is not None
        self.handling = handling  # the PTB Application (``self.application`` is tornado's)
        self.intake = intake

    async def post(self) -> None:
        self._validate_post()  # 403: not JSON, no secret header, a wrong one
        if self.intake.closing:
            raise tornado.web.HTTPError(HTTPStatus.SERVICE_UNAVAILABLE, reason="Shutting down")
        try:
            update = Update.de_json(json.loads(self.request.body), self.bot)
        except Exception as exc:
            log.critical("a webhook request that is not an update was not processed", exc_info=exc)
            raise tornado.web.HTTPError(HTTPStatus.BAD_REQUEST, reason="Update could not be processed") from exc
        self.set_status(HTTPStatus.OK)
        if not update:
            return
        if isinstance(self.bot, ExtBot):
            self.bot.insert_callback_data(update)  # arbitrary callback data, as PTB's handler does
        application = self.handling
        with self.intake.one():  # counted before the first await: a stop that began after the check waits for it
            try:
                # what the Application's own queue does with an update (its processor, its concurrency)
                await application.update_processor.process_update(update, application.process_update(update))
            except Exception:
                # handler errors never get here (process_update gives them to the error handler); this is
                # PTB failing around them. Answered 200 like polling confirms it: a retry would fail alike.
                log.exception("update %s could not be processed", update.update_id)


class _WebhookApp(tornado.web.Application):
    """PTB's WebhookAppClass with our handler: the same route (``<path>/?``), no request log."""

    def __init__(self, webhook_path: str, application: Application[Any, Any, Any, Any, Any, Any],
                 secret_token: str | None, intake: _Intake):
        shared = {"bot": application.bot, "update_queue": application.update_queue, "secret_token": secret_token,
                  "handling": application, "intake": intake}
        super().__init__([(rf"{webhook_path}/?", ConfirmingHandler, shared)])

    def log_request(self, handler: tornado.web.RequestHandler) -> None:
        """Our own logging (the handler logs what matters), as PTB's app does."""


class _DrainingServer(WebhookServer):
    """PTB's WebhookServer; its shutdown first refuses new updates and waits for those being handled."""

    __slots__ = ("_intake",)

    def __init__(self, listen: str, port: int, webhook_app: _WebhookApp, intake: _Intake):
        super().__init__(listen, port, webhook_app, None)  # TLS: the reverse proxy's
        self._intake = intake

    async def shutdown(self) -> None:
        self._intake.closing = True
        log.info("webhook stopping: new updates are answered 503 (Telegram posts them again); %d being handled",
                 self._intake.handling)
        await self._intake.drained()  # every update taken is handled and answered
        await super().shutdown()  # stop listening, close the connections


class ConfirmingUpdater(Updater):
    """An Updater for ``Application.run_webhook`` whose webhook answers after handling; no polling."""

    __slots__ = ("_application", "_server", "_serving")

    def __init__(self, application: Application[Any, Any, Any, Any, Any, Any]):
        super().__init__(bot=application.bot, update_queue=application.update_queue)
        self._application = application
        self._server: _DrainingServer | None = None
        self._serving = False

    @property
    def running(self) -> bool:
        return self._serving

    async def start_polling(self, *args: object, **kwargs: object) -> asyncio.Queue[object]:  # type: ignore[override]
        raise RuntimeError("ConfirmingUpdater serves a webhook; polling is PTB's Updater (bot/polling.py)")

    async def start_webhook(  # type: ignore[override]
        self,
        listen: DVType[str] = DEFAULT_IP,
        port: DVType[int] = DEFAULT_80,
        url_path: str = "",
        cert: object = None,
        key: object = None,
        bootstrap_retries: int = 0,
        webhook_url: str | None = None,
        allowed_updates: Sequence[str] | None = None,
        drop_pending_updates: bool | None = None,
        ip_address: str | None = None,
        max_connections: int = 40,
        secret_token: str | None = None,
        unix: object = None,
    ) -> asyncio.Queue[object]:
        if cert is not None or key is not None or unix is not None:
            raise ValueError("ConfirmingUpdater serves plain HTTP on a TCP port: TLS is the reverse proxy's")
        if bootstrap_retries:
            raise ValueError("ConfirmingUpdater sets the webhook once (bootstrap_retries=0)")
        if self._serving:
            raise RuntimeError("This Updater is already running!")
        listen, port = DefaultValue.get_value(listen), DefaultValue.get_value(port)
        path = url_path if url_path.startswith("/") else f"/{url_path}"
        intake = _Intake()
        server = _DrainingServer(listen, port, _WebhookApp(path, self._application, secret_token, intake), intake)
        await server.serve_forever()  # listening (OSError if the port is taken) before Telegram is told
        self._server, self._serving = server, True
        try:
            await self.bot.set_webhook(
                url=webhook_url or f"http://{listen}:{port}{path}", allowed_updates=allowed_updates,
                ip_address=ip_address, drop_pending_updates=drop_pending_updates, max_connections=max_connections,
                secret_token=secret_token)
        except Exception:  # not BaseException: a shutdown closing this coroutine must not await in it (PTB stops us)
            await self.stop()
            raise
        log.debug("webhook set; answering each update once it is handled")
        return self.update_queue

    async def stop(self) -> None:
        if not self._serving or self._server is None:
            raise RuntimeError("This Updater is not running!")
        self._serving = False
        server, self._server = self._server, None
        await server.shutdown()


def run_webhook(application: Application[Any, Any, Any, Any, Any, Any], **kwargs: Any) -> None:
    """``application.run_webhook(**kwargs)`` with each update answered only after it was handled."""
    application.updater = ConfirmingUpdater(application)
    application.run_webhook(**kwargs)

