"""A small Telegram Bot API server on 127.0.0.1, for running the real bot as its own process in tests.

``python -m bot run`` talks HTTP to whatever ``BOT_API_BASE_URL`` names; pointed at this server, the
whole bot — PTB's httpx requests, polling, the JobQueue, the database, the process's signal handling —
runs exactly as in production, with no network. The state machine behind it is
:class:`bot.offline.OfflineTelegram` (the same one the in-process tests use), so chats, messages, edits,
files and Telegram's limits (4096 characters, HTML parsing, 64-byte callback data) behave the same.

Why our own and not the npm ``telegram-test-api``: that server needs a compatibility layer for PTB 22
(its getMe lacks ``is_bot``, its dates are in milliseconds, its callback queries lack ``chat_instance``,
its editMessageText returns null, and setMyCommands, sendDocument, sendPhoto and getChatMember are
missing) and it would bring node into CI. This one is the standard library only (asyncio streams), about
as long as that layer would be, and shares its Telegram model with the offline tests.

The Bot API side (what the bot calls)::

    POST|GET /bot<token>/<method>        JSON, x-www-form-urlencoded or multipart bodies (as PTB sends)
    GET      /file/bot<token>/<path>     file downloads

getUpdates long-polls (at most 1 s per call) and forgets updates only when a later call confirms them
with ``offset``, as Telegram does: a bot that dies before confirming gets them again at its restart.

Webhooks, as Telegram does them: after ``setWebhook`` (url, secret_token, allowed_updates) the queued
updates are POSTed to that url one at a time, in order, as JSON with the
``X-Telegram-Bot-Api-Secret-Token`` header; an update is forgotten when the bot answers 2xx and sent
again (after a short pause) otherwise — any other status, a connection refused or cut (a bot killed in
the middle of the update), no answer within 10 s — so a bot not listening yet gets it once it is. While
a webhook is set, getUpdates answers 409 Conflict; ``deleteWebhook`` (which polling PTB calls at start)
returns to polling. ``drop_pending_updates`` drops the queue. Updates of a type outside
``allowed_updates`` are dropped, as Telegram does.

The control side (what a test calls; JSON in and out)::

    POST /control/user     {"id", "first_name", "username"?, "language_code"?}   a person
    POST /control/group    {"id", "title", "supergroup"?}                        a group chat
    POST /control/admin    {"chat_id", "user_id", "admin"?, "creator"?}          group admin rights
    POST /control/block    {"user_id", "blocked"?}                               the user blocks the bot
    POST /control/text     {"user_id", "chat_id", "text"}                        a message → update
    POST /control/photo    {"user_id", "chat_id", "caption"?}                    a photo → update
    POST /control/press    {"user_id", "chat_id", "message_id", "data"}          a button press → update
    POST /control/bot_added {"user_id", "chat_id"}                               my_chat_member → update
    POST /control/update   {a raw Update}  queued as is (update_id assigned when missing)
    POST /control/fail_next {"method", "payload"}                                next call fails
    POST /control/hold     {"method"}      the bot's next call of that method waits (≤ 30 s) for …
    POST /control/release  {}              … this; then it goes through (a bot "in the middle" of an update)
    GET  /control/calls?since=N&wait=S     recorded Bot API calls from index N (waits ≤ S s for one)
    GET  /control/messages?chat_id=C       the chat's surviving messages, oldest first
    GET  /control/state                    polls so far, queued updates, confirmed offset, the webhook
                                           (url, how often set, deliveries made and refused), calls held

Every update-making endpoint answers ``{"update": <the raw update>}``, so a test can replay it.

Use in a test: ``with Emulator(token) as emulator: client = emulator.client()`` — the server runs on
its own event loop in a thread, so a plain (synchronous) test can drive it over HTTP. Standalone:
``python -m bot.emulator --port 8081 --token 123:…``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import email.parser
import email.policy
import json
import re
import secrets
import string
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from fractions import Fraction
from http import HTTPStatus
from typing import Any

import telegram

from bot.offline import OfflineTelegram, RecordedCall

__all__ = ["Emulator", "EmulatorClient", "fake_token"]

JSONDict = dict[str, Any]

MAX_POLL_SECONDS = 1.0  # a getUpdates waits at most this long, so a stopping bot is not held up
WEBHOOK_RETRY_SECONDS = 0.2  # after a refused or failed delivery (Telegram waits longer; tests cannot)
WEBHOOK_TIMEOUT_SECONDS = 10.0
HOLD_SECONDS = 30.0  # a call held by /control/hold goes through by itself after this long
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_WEBHOOK_METHODS = frozenset({"setwebhook", "deletewebhook", "getwebhookinfo"})
MAX_BODY = 64 * 1024 * 1024
# Form fields arrive as strings; these Bot API parameters are numbers or booleans.
_INT_PARAMS = frozenset({
    "chat_id", "from_chat_id", "message_id", "user_id", "offset", "limit", "timeout", "cache_time",
    "message_thread_id", "reply_to_message_id", "until_date", "duration", "width", "height",
})
_BOOL_PARAMS = frozenset({
    "show_alert", "disable_notification", "protect_content", "disable_web_page_preview",
    "allow_sending_without_reply", "drop_pending_updates", "is_personal", "has_spoiler",
    "disable_content_type_detection", "only_if_banned", "revoke_messages",
})


def fake_token(bot_id: int = 7000000001) -> str:
    """A well-formed but random bot token (never a real one)."""
    alphabet = string.ascii_letters + string.digits + "_-"
    return f"{bot_id}:AA" + "".join(secrets.choice(alphabet) for _ in range(33))



def _seconds(value: object) -> Fraction:
    """A wait in seconds from a request parameter ("25", "0.5"); anything else is no wait."""
    try:
        return max(Fraction(0), Fraction(str(value or 0)))
    except ValueError:
        return Fraction(0)

class _Request:
    """Duck-types ``telegram.request.RequestData`` for :meth:`OfflineTelegram._handle_http`."""

    def __init__(self, parameters: JSONDict, files: dict[str, tuple[str, bytes, str]]):
        self.parameters = parameters
        self.multipart_data = files


class _World(OfflineTelegram):
    """The offline Telegram, keeping the raw JSON of every update it builds (to queue and replay)."""

    last_raw: JSONDict | None = None

    def _make_update(self, body: JSONDict) -> telegram.Update:
        update = super()._make_update(body)
        self.last_raw = {"update_id": update.update_id, **copy.deepcopy(body)}
        return update


def _typed(key: str, value: str) -> Any:
    if key in _INT_PARAMS:
        with contextlib.suppress(ValueError):
            return int(value)
    if key in _BOOL_PARAMS and value in ("true", "false", "True", "False"):
        return value.lower() == "true"
    return value


def _parse_body(content_type: str, body: bytes) -> tuple[JSONDict, dict[str, tuple[str, bytes, str]]]:
    """Parameters and uploaded files from a JSON, urlencoded or multipart body."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return {}, {}
    if kind == "application/json":
        data = json.loads(body.decode("utf-8"))
        return (data if isinstance(data, dict) else {}), {}
    if kind == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        params: JSONDict = {}
        files: dict[str, tuple[str, bytes, str]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not name:
                continue
            payload = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            if filename is not None:
                files[str(name)] = (filename, payload, part.get_content_type())
            else:
                params[str(name)] = _typed(str(name), payload.decode("utf-8"))
        return params, files
    form = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True)
    return {key: _typed(key, values[-1]) for key, values in form.items()}, {}


def _call_json(index: int, call: Any) -> JSONDict:
    return {
        "index": index,
        "method": call.method,
        "params": call.params,
        "result": call.result,
        "error": call.error,
        "files": {part: {"name": f[0], "size": len(f[1]), "mime_type": f[2]} for part, f in call.files.items()},
    }


class Emulator:
    """The Bot API server: start() it, point the bot at base_url/base_file_url, drive it via client()."""

    def __init__(self, token: str | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 bot_username: str = "branch_points_bot"):
        self.token = token or fake_token()
        bot_id = int(self.token.split(":", 1)[0])
        self.world = _World(bot_id=bot_id, bot_username=bot_username)
        self.world.token = self.token
        self.host = host
        self.port = port
        self.polls = 0  # getUpdates calls received
        self.confirmed = 0  # the highest offset a getUpdates confirmed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._arrived: asyncio.Event | None = None  # a new update was queued
        self._called: asyncio.Event | None = None  # a Bot API call was recorded
        self._connections: set[asyncio.Task] = set()
        # The webhook (None: polling): {"url", "secret_token", "allowed_updates"}.
        self.webhook: JSONDict | None = None
        self.webhook_sets = 0  # setWebhook calls that set one
        self.delivered = 0  # updates the webhook answered 2xx
        self.delivery_failures: list[JSONDict] = []  # {"update_id", "status" or "error"}
        self._wake_delivery: asyncio.Event | None = None
        self._delivery: asyncio.Task | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1: no proxy
        self._hold: str | None = None  # the (lower-case) method whose next call waits for /control/release
        self._released: asyncio.Event | None = None
        self.held = 0  # calls waiting for /control/release now

    # --- life ------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    def start(self) -> Emulator:
        self._thread = threading.Thread(target=self._run, name="bot-api-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._failed is not None:
            raise RuntimeError(f"the Bot API emulator did not start: {self._failed!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, timeout: float = 10.0) -> EmulatorClient:
        return EmulatorClient(self.url, timeout=timeout)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._open())
        except BaseException as exc:  # reported by start()
            self._failed = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _open(self) -> None:
        self._arrived = asyncio.Event()
        self._called = asyncio.Event()
        self._wake_delivery = asyncio.Event()
        self._released = asyncio.Event()
        self._server = await asyncio.start_server(self._connection, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self._delivery = asyncio.get_running_loop().create_task(self._deliver_forever())

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._delivery is not None:
            self._delivery.cancel()
            await asyncio.gather(self._delivery, return_exceptions=True)
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    # --- HTTP ------------------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._connections.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection is done."""
        line = await reader.readline()
        if not line.strip():
            return False
        http_method, target, _version = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            raw = await reader.readline()
            if raw in (b"\r\n", b"\n", b""):
                break
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await reader.readline()).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    await reader.readline()
                    break
                body += await reader.readexactly(size)
                await reader.readexactly(2)
                if len(body) > MAX_BODY:
                    raise ValueError("body too large")
        else:
            length = int(headers.get("content-length") or 0)
            if length > MAX_BODY:
                raise ValueError("body too large")
            body = await reader.readexactly(length) if length else b""
        try:
            status, content_type, payload = await self._route(http_method.upper(), target, headers, body)
        except Exception as exc:  # a bug here must show up as a failed call, not a hung bot
            status, content_type = 500, "application/json"
            payload = json.dumps({"ok": False, "error_code": 500, "description": f"emulator: {exc!r}"}).encode()
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Status"
        keep = headers.get("connection", "").lower() != "close"
        writer.write(
            f"HTTP/1.1 {status} {phrase}\r\nContent-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n"
            f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n".encode("latin-1") + payload
        )
        await writer.drain()
        return keep

    async def _route(self, http_method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        split = urllib.parse.urlsplit(target)
        path = urllib.parse.unquote(split.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(split.query, keep_blank_values=True).items()}
        if path.startswith("/control/"):
            data = json.loads(body.decode("utf-8")) if body else {}
            status, result = await self._control(http_method, path.removeprefix("/control/"), query, data)
            return status, "application/json", json.dumps(result, ensure_ascii=False, default=str).encode("utf-8")
        if path.startswith("/file/bot"):
            status, payload = await self.world._handle_http(path, "GET", None)
            kind = "application/octet-stream" if status == 200 else "application/json"
            return status, kind, payload
        params, files = _parse_body(headers.get("content-type", ""), body)
        for key, value in query.items():
            params.setdefault(key, _typed(key, value))
        method = path.rsplit("/", 1)[-1]
        if path.startswith(f"/bot{self.token}/") and method.lower() == "getupdates":
            if self.webhook is not None:
                return 409, "application/json", json.dumps({
                    "ok": False, "error_code": 409, "description": "Conflict: can't use getUpdates method while "
                    "webhook is active; use deleteWebhook to delete the webhook first"}).encode()
            return 200, "application/json", json.dumps({"ok": True, "result": await self._get_updates(params)}).encode()
        if path.startswith(f"/bot{self.token}/") and method.lower() in _WEBHOOK_METHODS:
            status, answer = self._webhook_call(method, params)
            self.world.calls.append(RecordedCall(method, params, answer.get("result"),
                                                 None if answer["ok"] else answer, {}))
            assert self._called is not None
            self._called.set()
            return status, "application/json", json.dumps(answer).encode()
        if self._hold is not None and method.lower() == self._hold:
            await self._held_until_released()
        status, payload = await self.world._handle_http(path, "POST", _Request(params, files))
        assert self._called is not None
        self._called.set()
        return status, "application/json", payload

    async def _held_until_released(self) -> None:
        """The call held by /control/hold: it waits (bounded) for /control/release, then goes through."""
        assert self._released is not None
        self._hold = None
        self.held += 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), HOLD_SECONDS)
        finally:
            self.held -= 1

    async def _get_updates(self, params: JSONDict) -> list[JSONDict]:
        """Long polling as Telegram does it: an update stays queued until a later offset confirms it."""
        assert self._arrived is not None
        world = self.world
        self.polls += 1
        offset = int(params.get("offset") or 0)
        if offset:
            world._pending_updates = [u for u in world._pending_updates if u["update_id"] >= offset]
            self.confirmed = max(self.confirmed, offset)
        wait = min(_seconds(params.get("timeout")), MAX_POLL_SECONDS)
        deadline = time.monotonic() + wait
        while not world._pending_updates:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)
        limit = int(params.get("limit") or 100)
        updates = copy.deepcopy(world._pending_updates[:limit])
        if updates:
            world.calls.append(RecordedCall("getUpdates", params, copy.deepcopy(updates)))
            assert self._called is not None
            self._called.set()
        return updates

    # --- webhooks -----------------------------------------------------------------------------------

    def _webhook_call(self, method: str, params: JSONDict) -> tuple[int, JSONDict]:
        """setWebhook / deleteWebhook / getWebhookInfo, answered as the Bot API does."""
        name = method.lower()
        if name == "getwebhookinfo":
            hook = self.webhook or {}
            info: JSONDict = {"url": hook.get("url", ""), "has_custom_certificate": False,
                              "pending_update_count": len(self.world._pending_updates)}
            if hook.get("allowed_updates") is not None:
                info["allowed_updates"] = hook["allowed_updates"]
            return 200, {"ok": True, "result": info}
        if params.get("drop_pending_updates") in (True, "true", "True"):
            self.world._pending_updates.clear()
        url = str(params.get("url") or "") if name == "setwebhook" else ""
        if not url:  # deleteWebhook, or setWebhook with an empty url (which the Bot API reads as delete)
            self.webhook = None
            return 200, {"ok": True, "result": True, "description": "Webhook was deleted"}
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: secret token contains unallowed characters"}
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: bad webhook: invalid webhook URL specified"}
        allowed = params.get("allowed_updates")
        if isinstance(allowed, str):  # form bodies carry lists as JSON
            allowed = json.loads(allowed) if allowed else None
        self.webhook = {"url": url, "secret_token": None if secret is None else str(secret), "allowed_updates": allowed}
        self.webhook_sets += 1
        assert self._wake_delivery is not None
        self._wake_delivery.set()
        return 200, {"ok": True, "result": True, "description": "Webhook was set"}

    async def _deliver_forever(self) -> None:
        """POST the queued updates to the webhook one at a time, in order; each until the bot answers 2xx."""
        assert self._wake_delivery is not None
        world = self.world
        while True:
            if self.webhook is None or not world._pending_updates:
                self._wake_delivery.clear()
                await self._wake_delivery.wait()
                continue
            hook, update = self.webhook, world._pending_updates[0]
            allowed = hook.get("allowed_updates")
            kinds = [key for key in update if key != "update_id"]
            if allowed and not any(kind in allowed for kind in kinds):
                world._pending_updates.pop(0)  # Telegram does not send what the bot did not ask for
                continue
            status, error = await asyncio.to_thread(self._post_update, hook, update)
            if 200 <= status < 300:
                if world._pending_updates and world._pending_updates[0] is update:
                    world._pending_updates.pop(0)
                self.delivered += 1
                continue
            self.delivery_failures.append({"update_id": update["update_id"], "status": status, "error": error})
            await asyncio.sleep(WEBHOOK_RETRY_SECONDS)

    def _post_update(self, hook: JSONDict, update: JSONDict) -> tuple[int, str | None]:
        """One delivery (in a worker thread): the HTTP status, or 0 and why it failed."""
        headers = {"Content-Type": "application/json"}
        if hook.get("secret_token"):
            headers[SECRET_HEADER] = hook["secret_token"]
        request = urllib.request.Request(hook["url"], data=json.dumps(update, ensure_ascii=False).encode("utf-8"),
                                         headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
                response.read()
                return response.status, None
        except urllib.error.HTTPError as exc:
            return exc.code, exc.reason
        except (OSError, urllib.error.URLError) as exc:  # not listening (yet), reset, timed out
            return 0, repr(exc)

    # --- control -----------------------------------------------------------------------------------

    def _queue(self, raw: JSONDict) -> JSONDict:
        assert self._arrived is not None
        raw = copy.deepcopy(raw)
        if "update_id" not in raw:
            self.world._update_id += 1
            raw["update_id"] = self.world._update_id
        else:
            self.world._update_id = max(self.world._update_id, int(raw["update_id"]))
        self.world._pending_updates.append(raw)
        self._arrived.set()
        assert self._wake_delivery is not None
        self._wake_delivery.set()
        return {"update": raw}

    def _made(self, make: Callable[[], telegram.Update]) -> JSONDict:
        make()
        assert self.world.last_raw is not None
        return self._queue(self.world.last_raw)

    def _user(self, user_id: Any) -> telegram.User:
        data = self.world._users.get(int(user_id))
        if data is None:
            raise KeyError(f"unknown user {user_id}: POST /control/user first")
        return telegram.User.de_json(copy.deepcopy(data), None)

    def _chat(self, chat_id: Any) -> telegram.Chat:
        chat_id = int(chat_id)
        if chat_id > 0 and chat_id in self.world._users:
            return self.world.private(self._user(chat_id))
        data = self.world._chats.get(chat_id)
        if data is None:
            raise KeyError(f"unknown chat {chat_id}: POST /control/group first")
        return telegram.Chat.de_json(copy.deepcopy(data), None)

    async def _control(self, http_method: str, name: str, query: dict[str, str], data: JSONDict) -> tuple[int, Any]:
        world = self.world
        try:
            if http_method == "GET" and name == "calls":
                since = int(query.get("since") or 0)
                wait = min(_seconds(query.get("wait")), 10.0)
                assert self._called is not None
                deadline = time.monotonic() + wait
                while len(world.calls) <= since and time.monotonic() < deadline:
                    self._called.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._called.wait(), deadline - time.monotonic())
                return 200, {"calls": [_call_json(i, c) for i, c in enumerate(world.calls) if i >= since],
                             "next": len(world.calls)}
            if http_method == "GET" and name == "messages":
                chat_id = int(query["chat_id"])
                return 200, {"messages": list(world._messages.get(chat_id, {}).values())}
            if http_method == "GET" and name == "state":
                return 200, {"polls": self.polls, "queued": len(world._pending_updates), "confirmed": self.confirmed,
                             "calls": len(world.calls), "last_update_id": world._update_id,
                             "webhook_url": (self.webhook or {}).get("url", ""), "webhook_sets": self.webhook_sets,
                             "delivered": self.delivered, "delivery_failures": len(self.delivery_failures),
                             "held": self.held}
            if http_method != "POST":
                return 405, {"error": f"{http_method} /control/{name} is not supported"}
            if name == "user":
                user = world.user(int(data["id"]), str(data["first_name"]), username=data.get("username"),
                                  language_code=str(data.get("language_code") or "zh-hans"))
                world.private(user)
                return 200, {"user": world._users[user.id]}
            if name == "group":
                world.group(int(data["id"]), str(data["title"]), supergroup=bool(data.get("supergroup", True)))
                return 200, {"chat": world._chats[int(data["id"])]}
            if name == "admin":
                world.set_admin(int(data["chat_id"]), int(data["user_id"]), bool(data.get("admin", True)),
                                creator=bool(data.get("creator", False)))
                return 200, {"ok": True}
            if name == "block":
                (world.block if data.get("blocked", True) else world.unblock)(int(data["user_id"]))
                return 200, {"ok": True}
            if name == "text":
                return 200, self._made(lambda: world.text(self._user(data["user_id"]), self._chat(data["chat_id"]),
                                                          str(data["text"])))
            if name == "photo":
                return 200, self._made(lambda: world.photo(self._user(data["user_id"]), self._chat(data["chat_id"]),
                                                           caption=data.get("caption")))
            if name == "press":
                message = world.message_by_id(int(data["chat_id"]), int(data["message_id"]))
                return 200, self._made(lambda: world.press(self._user(data["user_id"]), message, str(data["data"])))
            if name == "bot_added":
                return 200, self._made(lambda: world.bot_added(self._chat(data["chat_id"]), self._user(data["user_id"])))
            if name == "update":
                return 200, self._queue(data)
            if name == "hold":
                assert self._released is not None
                self._hold = str(data["method"]).lower()
                self._released.clear()
                return 200, {"ok": True}
            if name == "release":
                assert self._released is not None
                self._hold = None
                self._released.set()
                return 200, {"ok": True}
            if name == "fail_next":
                world.fail_next(str(data["method"]), data["payload"])
                return 200, {"ok": True}
        except (KeyError, LookupError, ValueError, TypeError) as exc:
            return 400, {"error": str(exc)}
        return 404, {"error": f"no such control endpoint: /control/{name}"}


# --------------------------------------------------------------------------- the test's side


class EmulatorClient:
    """Drives an emulator over HTTP (standard library only), as the people in a test."""

    def __init__(self, url: str, timeout: float = 10.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        # 127.0.0.1 only: never through a proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _request(self, method: str, path: str, data: JSONDict | None = None, timeout: float | None = None) -> Any:
        body = json.dumps(data).encode("utf-8") if data is not None else None
        request = urllib.request.Request(self.url + path, data=body, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with self._opener.open(request, timeout=timeout or self.timeout) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read().decode('utf-8', 'replace')}") from None

    def post(self, path: str, data: JSONDict) -> Any:
        return self._request("POST", path, data)

    def get(self, path: str, timeout: float | None = None) -> Any:
        return self._request("GET", path, timeout=timeout)

    # people and chats
    def user(self, user_id: int, first_name: str, username: str | None = None, language_code: str = "zh-hans") -> JSONDict:
        return self.post("/control/user", {"id": user_id, "first_name": first_name, "username": username,
                                           "language_code": language_code})["user"]

    def group(self, chat_id: int, title: str) -> JSONDict:
        return self.post("/control/group", {"id": chat_id, "title": title})["chat"]

    def admin(self, chat_id: int, user_id: int) -> None:
        self.post("/control/admin", {"chat_id": chat_id, "user_id": user_id})

    # updates
    def text(self, user_id: int, chat_id: int, text: str) -> JSONDict:
        return self.post("/control/text", {"user_id": user_id, "chat_id": chat_id, "text": text})["update"]

    def press(self, user_id: int, chat_id: int, message_id: int, data: str) -> JSONDict:
        return self.post("/control/press", {"user_id": user_id, "chat_id": chat_id, "message_id": message_id,
                                            "data": data})["update"]

    def bot_added(self, chat_id: int, user_id: int) -> JSONDict:
        return self.post("/control/bot_added", {"chat_id": chat_id, "user_id": user_id})["update"]

    def update(self, raw: JSONDict) -> JSONDict:
        return self.post("/control/update", raw)["update"]

    # looking
    def calls(self, since: int = 0, wait: float = 0) -> tuple[list[JSONDict], int]:
        answer = self.get(f"/control/calls?since={since}&wait={wait}", timeout=wait + self.timeout)
        return answer["calls"], answer["next"]

    def messages(self, chat_id: int) -> list[JSONDict]:
        return self.get(f"/control/messages?chat_id={chat_id}")["messages"]

    def state(self) -> JSONDict:
        return self.get("/control/state")

    def wait_for(self, predicate: Callable[[JSONDict], bool], since: int = 0, timeout: float = 15.0) -> tuple[JSONDict, list[JSONDict]]:
        """The first recorded call from index ``since`` that matches, and every call up to it; bounded."""
        deadline = time.monotonic() + timeout
        seen: list[JSONDict] = []
        cursor = since
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching Bot API call within {timeout} s; saw {[c['method'] for c in seen]}")
            calls, cursor = self.calls(cursor, wait=min(remaining, 1.0))
            for call in calls:
                seen.append(call)
                if predicate(call):
                    return call, seen

    def button(self, chat_id: int, label: str, *, exact: bool = False) -> tuple[int, str]:
        """(message id, callback data) of the newest button in the chat whose text is or contains ``label``."""
        for message in reversed(self.messages(chat_id)):
            rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
            for row in rows:
                for button in row:
                    text = button.get("text", "")
                    if (text == label if exact else label in text) and "callback_data" in button:
                        return message["message_id"], button["callback_data"]
        raise LookupError(f"no button {label!r} in chat {chat_id}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.emulator", description="a local Telegram Bot API emulator")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default=None, help="the token the bot will use (default: a random fake one)")
    args = parser.parse_args(argv)
    emulator = Emulator(args.token, port=args.port).start()
    print(f"Bot API emulator on {emulator.url}\n  BOT_TOKEN={emulator.token}\n  BOT_API_BASE_URL={emulator.base_url}\n"
          f"  BOT_API_BASE_FILE_URL={emulator.base_file_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
