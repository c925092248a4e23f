"""The bot token never appears in logs.

The token is part of every Bot API URL (``…/bot<TOKEN>/getMe``). httpx logs each request URL at INFO
(``HTTP Request: POST http://…/bot<TOKEN>/getUpdates "HTTP/1.1 200 OK"``), so bot/cli.py sets httpx and
httpcore to WARNING whatever LOG_LEVEL says. These tests run flows with everything else at DEBUG and
search the captured output for the token:

- in process, the whole offline bot (bot.harness) with the root logger at DEBUG;
- ``python -m bot run`` as its own process, LOG_LEVEL=DEBUG, against a small Bot API stand-in on
  127.0.0.1 that answers (so httpx does make requests and would log them) and hands the bot a /start;
- ``python -m bot run`` against an unreachable 127.0.0.1 port (the start-up failure path).

The second fails if the httpx override in bot/cli.py is removed (checked by hand).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import TestHarness, declare, setup_branch

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456789:AAH-token-that-must-never-be-logged_x"
SECRET = TOKEN.split(":", 1)[1]


OURS = ("bot", "handlers", "schedules", "storage")


async def test_the_offline_flow_logs_no_token(tmp_path, clock, caplog):
    """Everything at DEBUG: neither our code nor PTB's per-request logging carries the token; the only
    records that do are PTB's start-up "Set Bot API URL" lines (see DEBUG_LEAK below). The Harness is
    built inside the test so that start-up logging is captured too."""
    caplog.set_level(logging.DEBUG)
    for name in OURS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        async with TestHarness(tmp_path / "t.sqlite3", clock) as h:
            b = await setup_branch(h)
            number = await declare(h, b.zhang)
            assert number is not None
            await h.say(b.zhang, h.private(b.zhang), "/points")
            await h.say(b.zhang, b.group, "/nonsense <b>")
            await h.press(b.zhang, h.world.messages(b.group.id)[-1], "xx:" + "9" * 40)
            token = h.world.token
    finally:
        for name in OURS:
            logging.getLogger(name).setLevel(logging.NOTSET)
    secret = token.split(":", 1)[1]
    assert len(caplog.records) > 50, "hardly anything was logged: the test would prove nothing"
    leaking = [r for r in caplog.records if secret in r.getMessage() or secret in (r.exc_text or "")]
    assert all(r.name == "telegram.ext.ExtBot" and r.getMessage().startswith("Set Bot API") for r in leaking), \
        [(r.name, r.getMessage()) for r in leaking]
    ours = [r for r in caplog.records if r.name.split(".")[0] in OURS]
    assert all(secret not in r.getMessage() for r in ours)


class _FakeBotAPI(BaseHTTPRequestHandler):
    """Just enough of the Bot API for `python -m bot run` to start, poll and answer one /start."""

    served_update = False
    paths: list[str] = []

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        method = self.path.rsplit("/", 1)[-1]
        type(self).paths.append(self.path)
        result: object = True
        if method == "getMe":
            result = {"id": 123456789, "is_bot": True, "first_name": "Points", "username": "points_bot",
                      "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
        elif method == "getUpdates":
            if not type(self).served_update:
                type(self).served_update = True
                user = {"id": 555, "is_bot": False, "first_name": "张三", "language_code": "zh-hans"}
                result = [{"update_id": 1, "message": {
                    "message_id": 1, "date": int(time.time()), "chat": {"id": 555, "type": "private", "first_name": "张三"},
                    "from": user, "text": "/start", "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}}]
            else:
                time.sleep(0.2)
                result = []
        elif method == "sendMessage":
            result = {"message_id": 2, "date": int(time.time()), "chat": {"id": 555, "type": "private"},
                      "from": {"id": 123456789, "is_bot": True, "first_name": "Points"}, "text": "ok"}
        body = json.dumps({"ok": True, "result": result}).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the bot stopped in the middle of a long poll
            pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_bot(tmp_path: Path, base_url: str, seconds: float, level: str, done=lambda: False) -> tuple[str, int | None]:
    """Run the bot until ``done()`` (then one more second of polling) or it exits, at most ``seconds``."""
    env = {k: v for k, v in os.environ.items() if k not in ("BOT_TOKEN", "LOG_LEVEL")}
    env.update(BOT_TOKEN=TOKEN, LOG_LEVEL=level, DATABASE_PATH=str(tmp_path / "bot.sqlite3"),
               BOT_API_BASE_URL=base_url, BOT_API_BASE_FILE_URL=base_url.replace("/bot", "/file/bot"),
               PYTHONUNBUFFERED="1")
    out = tmp_path / "bot.log"
    with out.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)},
                                   stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + seconds
        while process.poll() is None and time.monotonic() < deadline and not done():
            time.sleep(0.1)
        if process.poll() is None:
            time.sleep(1)
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return out.read_text("utf-8", errors="replace"), process.returncode


DEBUG_LEAK = pytest.mark.xfail(strict=True, reason=(
    "PTB logs 'Set Bot API URL: …/bot<TOKEN>' at DEBUG (telegram.ext.ExtBot); bot/cli.py needs a formatter "
    "that redacts the token (see the issue-5 abuse report); remove this marker when it has one"))
LEVELS = [pytest.param("INFO", id="INFO"), pytest.param("DEBUG", id="DEBUG")]


@pytest.mark.parametrize("level", LEVELS)
def test_the_bot_process_logs_no_token_while_it_polls_and_answers(tmp_path, level):
    _FakeBotAPI.served_update, _FakeBotAPI.paths = False, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeBotAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        log, _ = _run_bot(tmp_path, f"http://127.0.0.1:{server.server_address[1]}/bot", seconds=30, level=level,
                          done=lambda: any(p.endswith("/sendMessage") for p in _FakeBotAPI.paths))
    finally:
        server.shutdown()
        server.server_close()
    methods = [p.rsplit("/", 1)[-1] for p in _FakeBotAPI.paths]
    # the bot really talked to the API with the token in the URL, polled, and answered the /start
    assert "getMe" in methods and "getUpdates" in methods and "sendMessage" in methods, (methods, log[-3000:])
    assert any(SECRET in p for p in _FakeBotAPI.paths)
    assert "polling" in log, log[-3000:]
    assert SECRET not in log, [line for line in log.splitlines() if SECRET in line][:5]


@pytest.mark.parametrize("level", LEVELS)
def test_the_bot_process_logs_no_token_when_the_api_is_unreachable(tmp_path, level):
    port = _free_port()  # nothing listens there
    log, code = _run_bot(tmp_path, f"http://127.0.0.1:{port}/bot", seconds=8, level=level)
    assert log.strip(), "the bot said nothing"
    assert SECRET not in log, [line for line in log.splitlines() if SECRET in line][:5]
