"""End to end: the bot as its own process (`python -m bot run`, polling) against a Bot API server on
127.0.0.1 (bot/emulator.py), driven over HTTP as people would: the bot joins a group → /setup → the
preset → members /join → approved → /role recorder → a member /declare's in private through every step
→ the recorder approves → /points → SIGTERM (exit 0 within 10 s) → restart → the monthly notice (late)
→ an objection → the secretary withdraws the entry → SIGTERM again. Neither the process's stdout nor its
stderr ever contains the token (LOG_LEVEL=INFO).

Why the restart before the objection: the bot process runs on the real clock, and a monthly notice is
due only for a month that has ended since the branch was set up — not reachable within a test. So, with
the bot stopped, the branch and its members are dated back two months and one recorder entry is written
in the first of them (through the storage layer); the restarted bot catches up and posts the notices,
and the objection then goes through over HTTP like any other. (Reminders and windows closing on time are
covered in-process with a FixedClock, tests/test_notices.py.)

Every wait is bounded, everything is on 127.0.0.1, and the process is always killed in a ``finally``.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import count
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.domain.records import NewLedgerRow, Source
from bot.emulator import Emulator, EmulatorClient
from storage.backends import is_postgres

ROOT = Path(__file__).resolve().parent.parent
GROUP = -1001000000001
SECRETARY, RECORDER, ZHANG, LISI = 1001, 1002, 1003, 1004
PROBE = 999_001  # a user who is nobody in the branch: its button presses mark "everything before is done"
START_TIMEOUT = 30.0
STEP_TIMEOUT = 15.0
_TAG = re.compile(r"<[^>]+>")


def plain(text: str) -> str:
    return html.unescape(_TAG.sub("", text))


# --- the bot process ----------------------------------------------------------------------------------


WEBHOOK_PATH = "telegram-updates"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class BotProcess:
    """`python -m bot run` in its own process, pointed at the emulator; output kept in files.

    Polling by default; with ``webhook_port``, ``run --webhook`` serving http://127.0.0.1:PORT/WEBHOOK_PATH
    (the emulator posts the updates there, with ``secret``). ``extra_env`` adds settings (CLOCK_START…)."""

    def __init__(self, emulator: Emulator, database: Path | str, workdir: Path, name: str = "bot", *,
                 webhook_port: int | None = None, extra_env: dict[str, str] | None = None):
        self.emulator = emulator
        self.database = database
        self.workdir = workdir
        self.stdout = workdir / f"{name}.stdout"
        self.stderr = workdir / f"{name}.stderr"
        self.webhook_port = webhook_port
        self.secret = secrets.token_urlsafe(32)
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.webhook_port}/{WEBHOOK_PATH}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.upper().endswith("_PROXY")
               and not k.upper().startswith(("BOT_", "DATABASE_", "LOG_LEVEL", "WEBHOOK_", "CLOCK_", "SCHEDULER_"))}
        env.update(
            BOT_TOKEN=self.emulator.token,
            BOT_API_BASE_URL=self.emulator.base_url,
            BOT_API_BASE_FILE_URL=self.emulator.base_file_url,
            **({"DATABASE_URL": self.database} if is_postgres(self.database) else {"DATABASE_PATH": str(self.database)}),
            LOG_LEVEL="INFO",
            NO_PROXY="127.0.0.1,localhost",
            PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            PYTHONUNBUFFERED="1",
        )
        if self.webhook_port is not None:
            env.update(WEBHOOK_URL=self.webhook_url, WEBHOOK_LISTEN="127.0.0.1", WEBHOOK_PORT=str(self.webhook_port),
                       WEBHOOK_PATH=WEBHOOK_PATH, WEBHOOK_SECRET_TOKEN=self.secret)
        env.update(self.extra_env)
        return env

    def launch(self) -> BotProcess:
        """Start the process without waiting for it (see ready())."""
        command = [sys.executable, "-m", "bot", "run"] + (["--webhook"] if self.webhook_port is not None else [])
        self._started_from = self.emulator.client().state()
        self.process = subprocess.Popen(
            command, cwd=self.workdir, env=self.env(),  # cwd: no stray .env
            stdout=self.stdout.open("ab"), stderr=self.stderr.open("ab"), stdin=subprocess.DEVNULL,
        )
        return self

    def ready(self) -> BotProcess:
        """Wait until the bot takes updates: polling (initialised, menus set), or its webhook set and listening."""
        assert self.process is not None
        before = self._started_from
        deadline = time.monotonic() + START_TIMEOUT
        while not self._taking_updates(before):
            if self.process.poll() is not None:
                raise AssertionError(f"the bot exited with {self.process.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot did not start within {START_TIMEOUT} s:\n{self.output()}")
            time.sleep(0.05)
        return self

    def _taking_updates(self, before: dict) -> bool:
        state = self.emulator.client().state()
        if self.webhook_port is None:
            return state["polls"] > before["polls"]
        if state["webhook_sets"] <= before["webhook_sets"]:
            return False
        with socket.socket() as probe:  # bot/webhook.py listens, then sets the webhook (PTB's order was the reverse)
            probe.settimeout(1)
            return probe.connect_ex(("127.0.0.1", self.webhook_port)) == 0

    def start(self) -> BotProcess:
        return self.launch().ready()

    def output(self) -> str:
        return "".join(p.read_text("utf-8", "replace") for p in (self.stdout, self.stderr) if p.exists())

    def terminate(self, timeout: float = 10.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL, no cleanup of any kind (idempotent)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as server:
        yield server


# --- people ---------------------------------------------------------------------------------------------


class People:
    """Users acting over HTTP; each act waits until the bot has handled it (a barrier press, see step())."""

    def __init__(self, client: EmulatorClient):
        self.client = client
        self._barriers = count(1)
        self.cursor = client.calls(0)[1]
        self.pressed: list[str] = []  # callback query ids of the people's presses
        client.user(PROBE, "Probe")

    def step(self, act: Callable[[], Any], timeout: float = STEP_TIMEOUT) -> list[dict]:
        """Do ``act`` (which queues an update), then wait until the bot has fully handled it.

        The bot handles updates one at a time, in order; so once it has answered a press queued after
        the act (by nobody in the branch, with data no handler knows), everything the act caused is done.
        Returns the Bot API calls the act caused (without getUpdates and the barrier's answer)."""
        act()
        query_id = f"barrier-{next(self._barriers)}"
        self.client.update({"callback_query": {
            "id": query_id, "from": {"id": PROBE, "is_bot": False, "first_name": "Probe"}, "chat_instance": "1",
            "data": "e2e:barrier", "message": {"message_id": 1, "date": 0,
                                               "chat": {"id": PROBE, "type": "private", "first_name": "Probe"}}}})
        _, seen = self.client.wait_for(
            lambda c: c["method"] == "answerCallbackQuery" and c["params"].get("callback_query_id") == query_id,
            self.cursor, timeout)
        self.cursor = seen[-1]["index"] + 1
        return [c for c in seen[:-1] if c["method"] != "getUpdates"
                and not str(c["params"].get("callback_query_id", "")).startswith("barrier-")]

    def say(self, user_id: int, chat_id: int, text: str) -> list[dict]:
        return self.step(lambda: self.client.text(user_id, chat_id, text))

    def press(self, user_id: int, chat_id: int, message_id: int, data: str) -> list[dict]:
        def act() -> None:
            self.pressed.append(self.client.press(user_id, chat_id, message_id, data)["callback_query"]["id"])
        return self.step(act)

    def tap(self, user_id: int, chat_id: int, label: str, *, exact: bool = False) -> list[dict]:
        """Press the newest button in the chat whose text is (or contains) ``label``."""
        message_id, data = self.client.button(chat_id, label, exact=exact)
        return self.press(user_id, chat_id, message_id, data)

    def unanswered(self) -> list[str]:
        answered = {c["params"].get("callback_query_id") for c in self.client.calls(0)[0] if c["method"] == "answerCallbackQuery"}
        return [q for q in self.pressed if q not in answered]


def said(calls: list[dict], chat_id: int | None = None) -> str:
    return "\n".join(plain(str(c["params"].get("text", ""))) for c in calls
                     if c["method"] in ("sendMessage", "editMessageText") and c["error"] is None
                     and (chat_id is None or int(c["params"].get("chat_id", 0)) == chat_id))


def popups(calls: list[dict]) -> str:
    return "\n".join(plain(str(c["params"].get("text", ""))) for c in calls if c["method"] == "answerCallbackQuery")


def query(database: Path | str, sql: str, *args: object) -> list[Any]:
    """Rows (by column name) from the SQLite file, or from the PostgreSQL database a URL names."""
    if is_postgres(database):
        return _postgres_query(str(database), sql, args)
    with sqlite3.connect(database, timeout=10) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, args).fetchall()


def _postgres_query(url: str, sql: str, args: tuple[object, ...]) -> list[Any]:
    import asyncpg

    numbers = count(1)
    numbered = re.sub(r"\?", lambda _: f"${next(numbers)}", sql)  # our SQL has no '?' inside literals

    async def fetch() -> list[Any]:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(numbered, *args)
        finally:
            await conn.close()

    return asyncio.run(fetch())


def setup_branch(people: People, client: EmulatorClient, database: Path) -> None:
    """The bot joins the group, the secretary sets it up (浠水), three members join, a recorder is named."""
    client.group(GROUP, "兰溪镇红星村党支部")
    for user_id, name, username in ((SECRETARY, "王书记", "wang_shuji"), (RECORDER, "李记录", "li_jilu"),
                                    (ZHANG, "张三", "zhangsan"), (LISI, "李四", "lisi")):
        client.user(user_id, name, username)
    client.admin(GROUP, SECRETARY)

    calls = people.step(lambda: client.bot_added(GROUP, SECRETARY))
    assert "/setup" in said(calls, GROUP)
    calls = people.say(SECRETARY, GROUP, "/setup")
    assert any("浠水" in text for text, _ in buttons_of(calls))
    calls = people.tap(SECRETARY, GROUP, "浠水")
    assert said(calls, GROUP)
    branch = query(database, "SELECT id, preset FROM branches WHERE chat_id = ?", GROUP)
    assert [r["preset"] for r in branch] == ["xishui"]

    for user_id in (RECORDER, ZHANG, LISI):
        calls = people.say(user_id, GROUP, "/join")
        assert "同意" in " ".join(text for text, _ in buttons_of(calls))
        calls = people.tap(SECRETARY, GROUP, "同意")
        assert "已加入本支部" in said(calls, GROUP)
    approved = query(database, "SELECT user_id FROM members WHERE status = 'approved' ORDER BY user_id")
    assert [r["user_id"] for r in approved] == [SECRETARY, RECORDER, ZHANG, LISI]

    people.say(SECRETARY, GROUP, "/role @li_jilu recorder")
    roles = query(database, "SELECT m.user_id, r.role FROM roles r JOIN members m ON m.id = r.member_id "
                            "WHERE r.role = 'recorder'")
    assert [(r["user_id"], r["role"]) for r in roles] == [(RECORDER, "recorder")]
    for user_id in (SECRETARY, RECORDER, ZHANG, LISI):
        people.say(user_id, user_id, "/start")


def backdate(database: Path, months: int) -> date:
    """Date the branch's set-up and its members' joining back to the 1st of ``months`` months ago (the bot
    is stopped); returns that day."""
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    month = today.year * 12 + today.month - 1 - months
    first = date(month // 12, month % 12 + 1, 1)
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE branches SET created_at = ?", (datetime(first.year, first.month, 1, tzinfo=UTC).isoformat(),))
        conn.execute("UPDATE members SET joined_on = ?", (first.isoformat(),))
    return first


def seed_entry(database: Path, user_id: int, item: str, value: str, day: date, reason: str) -> int:
    """A recorder's entry written through the storage layer while the bot is stopped (the past cannot be
    recorded through the bot: entries are taken for the open period only); returns its ledger id."""
    from storage import ledger as ledger_repo
    from storage.db import Database

    async def write() -> int:
        db = await Database(database).open()
        try:
            async with db.transaction() as conn:
                async with conn.execute("SELECT id, branch_id FROM members WHERE user_id = ?", (user_id,)) as cursor:
                    member = await cursor.fetchone()
                async with conn.execute("SELECT id FROM members WHERE user_id = ?", (SECRETARY,)) as cursor:
                    secretary = await cursor.fetchone()
                row = await ledger_repo.append(conn, NewLedgerRow(
                    branch_id=member[1], member_id=member[0], item_code=item, value=Decimal(value), occurred_on=day,
                    source=Source.RECORDER, reference=f"e2e:{user_id}:{item}:{day}", actor_id=secretary[0], reason=reason))
        finally:
            await db.close()
        assert row is not None
        return row.id

    return asyncio.run(write())


def buttons_of(calls: list[dict]) -> list[tuple[str, str]]:
    found = []
    for call in calls:
        for row in ((call["params"].get("reply_markup") or {}).get("inline_keyboard") or []):
            found.extend((b.get("text", ""), b.get("callback_data", "")) for b in row)
    return found


def declare(people: People, user_id: int, place: str, text: str) -> list[dict]:
    """/declare in private through every step; returns the calls of the final Submit."""
    assert "志愿服务岗位" in " ".join(t for t, _ in buttons_of(people.say(user_id, user_id, "/declare")))
    people.tap(user_id, user_id, "志愿服务岗位")
    people.tap(user_id, user_id, "为民办一件实事")
    people.tap(user_id, user_id, "今天")
    people.say(user_id, user_id, place)
    people.say(user_id, user_id, text)
    people.tap(user_id, user_id, "无照片")
    return people.tap(user_id, user_id, "提交")


def declarations_to_approve(people: People, client: EmulatorClient, database: Path, count: int) -> list[tuple[int, str]]:
    """A branch set up, then ``count`` declarations by 张三 and 李四 in turn: the recorder's (message id,
    Approve data) of each card (the kill -9 tests tap them all at once)."""
    setup_branch(people, client, database)
    for index in range(count):
        declare(people, (ZHANG, LISI)[index % 2], f"村民小组{index + 1}", f"第{index + 1}件实事：帮助困难群众。")
    cards = [(m["message_id"], b["callback_data"]) for m in client.messages(RECORDER)
             for row in (m.get("reply_markup") or {}).get("inline_keyboard") or [] for b in row
             if str(b.get("callback_data", "")).startswith("dc:ok:")]
    assert len(cards) == count
    return cards


# --- the test -------------------------------------------------------------------------------------------


def story_until_points(people: People, client: EmulatorClient, database: Path) -> int:
    """Set-up → joins → a declaration in private → the recorder approves → /points; returns the ledger id."""
    setup_branch(people, client, database)

    # A declaration in private, step by step; the card goes to the recorder.
    calls = declare(people, ZHANG, "村东头刘大爷家", "帮刘大爷打扫院子、修好漏水的水管。")
    card = said(calls, RECORDER)
    assert "张三" in card and "为民办一件实事" in card and "村东头刘大爷家" in card
    number = int(query(database, "SELECT id FROM declarations WHERE status = 'pending'")[0]["id"])
    assert f"#{number}" in card

    # The recorder approves: the member is told, the ledger has the row, once.
    calls = people.tap(RECORDER, RECORDER, "通过")
    assert f"申报 #{number}（张三）已通过" in popups(calls)
    assert f"您的申报 #{number} 已通过" in said(calls, ZHANG)
    entries = query(database, "SELECT id, value FROM ledger WHERE reference = ?", f"decl:{number}")
    assert len(entries) == 1

    # /points shows it.
    calls = people.say(ZHANG, ZHANG, "/points")
    points = said(calls, ZHANG)
    assert "为民办一件实事" in points and "+10" in points, points
    return int(entries[0]["id"])


def test_the_bot_process_end_to_end_over_http(emulator: Emulator, tmp_path: Path) -> None:
    client = emulator.client()
    database = tmp_path / "branch.sqlite3"
    bot = BotProcess(emulator, database, tmp_path)
    try:
        bot.start()
        people = People(client)
        story_until_points(people, client, database)

        # SIGTERM: a clean stop, exit code 0, within 10 s.
        started = time.monotonic()
        assert bot.terminate(10.0) == 0, bot.output()
        assert time.monotonic() - started < 10.0

        # The monthly notice and an objection. A notice is due only for a month that has ended since the
        # branch was set up, and this process runs on the real clock: so, with the bot stopped, the branch
        # and its members are dated back two months (as if set up then) and the recorder's entry for 张三
        # in the first of those months is written. At its start the bot catches up: month closes,
        # assessment defaults and the notices of the two ended months reach the group (marked late).
        first = backdate(database, months=2)
        entry = seed_entry(database, ZHANG, "post_duty", "15", first + timedelta(days=14), "本月岗位职责履行好")
        bot.start()
        people.cursor = client.calls(0)[1]
        deadline = time.monotonic() + STEP_TIMEOUT
        while not query(database, "SELECT n.id FROM notices n JOIN notice_entries e ON e.notice_id = n.id "
                                  "WHERE e.ledger_id = ? AND n.sent_at IS NOT NULL", entry):
            assert time.monotonic() < deadline, "the notice listing the entry did not reach the group"
            time.sleep(0.05)
        group_text = "\n".join(plain(m.get("text", "")) for m in client.messages(GROUP))
        assert "党员积分公示" in group_text and "现补发" in group_text  # posted late, and saying so
        assert f"#{entry}" in group_text  # the entry's number, as 李四 reads it in the group
        value = Decimal(15)

        calls = people.say(LISI, LISI, f"/object {entry} 那个月他没有上岗")
        assert "已收到您对记录" in said(calls, LISI)
        assert "那个月他没有上岗" in said(calls, SECRETARY)
        message_id, data = client.button(SECRETARY, "撤销该分")
        calls = people.press(SECRETARY, SECRETARY, message_id, data)
        assert "已撤销该分" in popups(calls)
        assert "撤销" in said(calls, LISI) and "撤销" in said(calls, ZHANG)  # the objector and the member are told
        reversals = query(database, "SELECT value FROM ledger WHERE reverses_id = ?", entry)
        assert [Decimal(r["value"]) for r in reversals] == [-value]
        calls = people.press(SECRETARY, SECRETARY, message_id, data)  # the old button again
        assert "已经处理过了" in popups(calls)
        assert "撤销" not in said(calls, LISI) + said(calls, ZHANG) + said(calls, GROUP)  # nobody is told twice
        assert len(query(database, "SELECT id FROM ledger WHERE reverses_id = ?", entry)) == 1

        # Nothing the bot called failed, every press was answered.
        every, _ = client.calls(0)
        failed = [(c["method"], c["error"]) for c in every if c["error"] is not None]
        assert not failed, failed
        assert not [c for c in every if "抱歉，处理时出错了" in str(c["params"].get("text", ""))]
        assert people.pressed and not people.unanswered()

        started = time.monotonic()
        assert bot.terminate(10.0) == 0, bot.output()
        assert time.monotonic() - started < 10.0
    finally:
        bot.kill()
        print(bot.output()[-6000:])  # shown by pytest only when the test fails
    output = bot.output()
    assert "polling" in output  # INFO logging was on (the check below is not vacuous)
    secret = emulator.token.split(":", 1)[1]
    assert emulator.token not in output and secret not in output


# --- the emulator speaks the Bot API as PTB's real HTTP client sends it ---------------------------------------


async def test_the_emulator_answers_ptb_over_http(emulator: Emulator) -> None:
    """PTB's own HTTPXRequest against the emulator: form and multipart bodies, file downloads, errors."""
    import telegram
    from telegram.error import BadRequest, Forbidden

    client = emulator.client()
    client.user(4242, "Tester", "tester")
    client.group(-1002000000001, "测试群")
    bot = telegram.Bot(emulator.token, base_url=emulator.base_url, base_file_url=emulator.base_file_url)
    async with bot:
        me = await bot.get_me()
        assert me.is_bot and me.id == int(emulator.token.split(":")[0])
        sent = await bot.send_message(4242, "<b>你好</b> & welcome", parse_mode="HTML",
                                      reply_markup=telegram.InlineKeyboardMarkup([[telegram.InlineKeyboardButton("OK", callback_data="x:1")]]))
        assert sent.text == "你好 & welcome" and sent.chat.id == 4242
        edited = await bot.edit_message_text("changed", chat_id=4242, message_id=sent.message_id)
        assert isinstance(edited, telegram.Message) and edited.text == "changed"
        photo = await bot.send_photo(4242, b"\xff\xd8\xff\xe0 fake jpeg", caption="图")  # multipart
        document = await bot.send_document(4242, b"id,name\n1,\xe5\xbc\xa0\n", filename="名单.csv")
        file = await bot.get_file(document.document.file_id)
        assert bytes(await file.download_as_bytearray()) == b"id,name\n1,\xe5\xbc\xa0\n"
        assert photo.photo and photo.caption == "图"
        assert await bot.set_my_commands([telegram.BotCommand("points", "我的积分")])
        assert (await bot.get_chat_member(-1002000000001, 4242)).status == "member"
        with pytest.raises(BadRequest, match="(?i)can't parse entities"):
            await bot.send_message(4242, "<b>unclosed", parse_mode="HTML")
        client.post("/control/block", {"user_id": 4242})
        with pytest.raises(Forbidden):
            await bot.send_message(4242, "blocked")

        # getUpdates: queued updates come once confirmed with offset, as from Telegram.
        queued = client.text(4242, 4242, "/start")
        updates = await bot.get_updates(timeout=1)
        assert [u.update_id for u in updates] == [queued["update_id"]] and updates[0].message.text == "/start"
        assert await bot.get_updates(offset=queued["update_id"] + 1, timeout=0) == ()
    calls, _ = client.calls(0)
    uploads = [c for c in calls if c["method"] == "sendDocument"]
    assert uploads and uploads[0]["files"]["document"]["size"] == len(b"id,name\n1,\xe5\xbc\xa0\n")
