"""End to end in webhook mode: `python -m bot run --webhook` as its own process; the emulator
(bot/emulator.py) posts the updates to it with the secret header, as Telegram does behind a proxy.

- The polling test's story (tests/test_e2e_process.py: set-up → joins → /declare → approval → /points),
  driven by the same People and BotProcess, over the webhook. setWebhook carries the secret and the
  allowed updates; the bot never polls.
- Requests without the secret header, or with a wrong one, get 403 and change nothing: no row, no Bot
  API call, the process healthy and taking the real updates after them.
- Restarted without --webhook, the bot deletes the webhook and polls again.
- Two bot processes against one database, both ticking their scheduler through a month's notice
  moment, post the notice once and close the month once (the effects table's unique keys).

Every wait is bounded, everything is on 127.0.0.1, and the processes are always killed in a ``finally``.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.emulator import SECRET_HEADER, Emulator
from tests.test_e2e_process import (
    GROUP, LISI, RECORDER, SECRETARY, ZHANG, BotProcess, People, emulator, free_port, plain, query, said,  # noqa: F401
    setup_branch, story_until_points,
)

ALLOWED = ["message", "callback_query", "my_chat_member", "chat_member"]
STRANGER = 555_001
NOTICE_TITLE = "党员积分公示"


def post_update(url: str, update: dict, headers: dict[str, str]) -> int:
    """POST an update to the bot's webhook as anyone could; the HTTP status."""
    request = urllib.request.Request(url, data=json.dumps(update).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def counts(database: Path | str) -> dict[str, int]:
    return {table: query(database, f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]
            for table in ("members", "ledger", "declarations", "effects", "notices", "roles")}


def test_the_bot_in_webhook_mode_end_to_end(emulator: Emulator, tmp_path: Path) -> None:
    client = emulator.client()
    database = tmp_path / "branch.sqlite3"
    # The scheduler ticks once at the start, then not within the test: the rows counted around the forged
    # requests below can only change through updates.
    quiet = {"SCHEDULER_TICK_SECONDS": "3600"}
    bot = BotProcess(emulator, database, tmp_path, webhook_port=free_port(), extra_env=quiet)
    polling = BotProcess(emulator, database, tmp_path, "polling", extra_env=quiet)
    try:
        bot.start()
        set_calls = [c for c in client.calls(0)[0] if c["method"] == "setWebhook"]
        assert len(set_calls) == 1 and set_calls[0]["error"] is None
        params = set_calls[0]["params"]
        allowed = params["allowed_updates"]
        assert params["url"] == bot.webhook_url and params["secret_token"] == bot.secret
        assert (json.loads(allowed) if isinstance(allowed, str) else allowed) == ALLOWED

        people = People(client)
        story_until_points(people, client, database)
        state = client.state()
        assert state["polls"] == 0 and state["delivered"] > 20  # every update came over the webhook
        assert state["delivery_failures"] == 0 or state["delivered"] > state["delivery_failures"]

        # Forged requests: a stranger's /join (which would add a member and post to the group), without
        # the header, with a wrong one, with the right one cut short. Each gets 403; nothing changes.
        before = counts(database)
        forged = {"update_id": 900_001, "message": {
            "message_id": 77_001, "date": int(time.time()), "text": "/join",
            "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
            "chat": {"id": GROUP, "type": "supergroup", "title": "兰溪镇红星村党支部"},
            "from": {"id": STRANGER, "is_bot": False, "first_name": "冒名"}}}
        for headers in ({}, {SECRET_HEADER: "x" * 40}, {SECRET_HEADER: bot.secret[:-1]}, {SECRET_HEADER: ""}):
            assert post_update(bot.webhook_url, forged, headers) == 403, headers
        assert bot.process is not None and bot.process.poll() is None  # healthy
        assert people.step(lambda: None) == []  # no Bot API call came of them (the barrier ran after)
        assert counts(database) == before
        assert not query(database, "SELECT id FROM members WHERE user_id = ?", STRANGER)
        # …and the real updates still go through.
        assert "为民办一件实事" in said(people.say(ZHANG, ZHANG, "/points"), ZHANG)

        started = time.monotonic()
        assert bot.terminate(10.0) == 0, bot.output()
        assert time.monotonic() - started < 10.0

        # Polling again: the bot deletes the webhook at its start, then takes updates by getUpdates.
        polling.start()
        methods = [c["method"] for c in client.calls(0)[0]]
        assert "deleteWebhook" in methods[methods.index("setWebhook"):]
        assert client.state()["webhook_url"] == "" and client.state()["polls"] > 0
        assert "为民办一件实事" in said(people.say(ZHANG, ZHANG, "/points"), ZHANG)

        every, _ = client.calls(0)
        failed = [(c["method"], c["error"]) for c in every if c["error"] is not None]
        assert not failed, failed
        assert people.pressed and not people.unanswered()
        assert polling.terminate(10.0) == 0, polling.output()
    finally:
        bot.kill()
        polling.kill()
        print(bot.output()[-6000:])  # shown by pytest only when the test fails
    output = bot.output() + polling.output()
    assert "webhook" in output  # INFO logging was on (the checks below are not vacuous)
    assert bot.secret not in output
    assert emulator.token not in output and emulator.token.split(":", 1)[1] not in output


# --- two processes, one database ------------------------------------------------------------------------------


LEAD = timedelta(seconds=5)  # the processes start this long before the notice moment (their start-up takes ~2-4 s)
TICK = "0.5"  # seconds between scheduler ticks in each process


def notice_moment(database: Path | str) -> tuple[str, datetime]:
    """This month's key and the moment its notice (and the month's dues close) is due, in the branch's calendar."""
    from bot.domain.calendar import notice_moment as moment_of
    from bot.domain.dues import last_day
    from bot.services import Services
    from bot.services.calendar import calendar_of
    from storage.backends import open_database

    async def read() -> tuple[str, datetime]:
        db = await open_database(database)
        try:
            branch = await Services(db).branches.find_by_chat(GROUP)
        finally:
            await db.close()
        assert branch is not None
        today = datetime.now(ZoneInfo(branch.timezone)).date()
        month = f"{today.year:04d}-{today.month:02d}"
        return month, moment_of(last_day(month), calendar_of(branch), branch.timezone)

    return asyncio.run(read())


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.1)


def test_two_processes_on_one_database_post_the_notice_and_close_the_month_once(
        emulator: Emulator, tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    """On one SQLite file, and on one PostgreSQL database (a throwaway cluster, tests/pg.py)."""
    client = emulator.client()
    database: Path | str = tmp_path / "branch.sqlite3"
    if backend == "postgres":
        database = request.getfixturevalue("postgres").new_database(migrated=True)

    # The branch, on the real clock: set up this month; the recorder records 张三's dues as late.
    setup = BotProcess(emulator, database, tmp_path, "setup", webhook_port=free_port())
    try:
        setup.start()
        people = People(client)
        setup_branch(people, client, database)
        month, moment = notice_moment(database)
        zhang = query(database, "SELECT id FROM members WHERE user_id = ?", ZHANG)[0]["id"]
        people.say(RECORDER, RECORDER, f"/dues {zhang} late {month}")
        assert [r["status"] for r in query(database, "SELECT status FROM dues WHERE member_id = ?", zhang)] == ["late"]
        assert setup.terminate(10.0) == 0, setup.output()
    finally:
        setup.kill()

    # Two processes on the same file, their clocks moved to just before the notice moment (both read the
    # same time), each ticking twice a second, each with its own webhook.
    clock = {"CLOCK_START": (moment - LEAD).isoformat(), "CLOCK_START_AT": datetime.now(UTC).isoformat(),
             "SCHEDULER_TICK_SECONDS": TICK}
    bots = [BotProcess(emulator, database, tmp_path, f"bot{n}", webhook_port=free_port(), extra_env=clock) for n in (1, 2)]
    cursor = client.calls(0)[1]
    try:
        for bot in bots:
            bot.launch()
        for bot in bots:
            bot.ready()

        def done() -> bool:
            rows = query(database, "SELECT kind, outcome FROM effects WHERE key = ? AND kind IN ('notice', 'dues_close')", month)
            return sorted((r["kind"], r["outcome"]) for r in rows) == [("dues_close", "done"), ("notice", "done")]

        wait_until(done, 30 + LEAD.total_seconds(), f"the notice and the dues close of {month}")
        time.sleep(3)  # six more ticks of each process: a second notice or close would show now
        assert all(bot.process is not None and bot.process.poll() is None for bot in bots)

        # The group got the notice once.
        notices = [m for m in client.messages(GROUP) if NOTICE_TITLE in plain(m.get("text", ""))]
        assert len(notices) == 1, [plain(m.get("text", ""))[:80] for m in notices]
        calls, _ = client.calls(cursor)
        posted = [c for c in calls if c["method"] == "sendMessage" and int(c["params"]["chat_id"]) == GROUP
                  and NOTICE_TITLE in plain(str(c["params"].get("text", "")))]
        assert len(posted) == 1
        assert len(query(database, "SELECT id FROM notices WHERE period_key = ?", month)) == 1

        # The month closed once: one effect each, every charge booked once per member.
        effects = Counter((r["kind"], r["key"]) for r in query(database, "SELECT kind, key FROM effects"))
        assert all(n == 1 for n in effects.values())
        assert not query(database, "SELECT kind, key FROM effects WHERE outcome NOT IN ('done', 'skipped')")
        charged = query(database, "SELECT member_id, COUNT(*) AS n FROM ledger WHERE reference = ? GROUP BY member_id",
                        f"dues:{month}")
        statuses = query(database, "SELECT member_id, status FROM dues WHERE month = ?", month)
        assert {r["status"] for r in statuses} == {"late", "unpaid"}  # 张三 late, the others marked unpaid at the close
        assert {r["member_id"] for r in charged} == {r["member_id"] for r in statuses} and all(r["n"] == 1 for r in charged)
        assert len(query(database, "SELECT month FROM dues_closed WHERE month = ?", month)) == 1
        # …and before the notice, as in one process: the notice publishes the close's charges (a notice
        # recorded while the other process was still closing would leave them to the next notice).
        unpublished = query(database, "SELECT l.id FROM ledger l WHERE l.reference = ? AND NOT EXISTS (SELECT 1 FROM"
                                      " notice_entries e JOIN notices n ON n.id = e.notice_id WHERE e.ledger_id = l.id"
                                      " AND n.period_key = ?)", f"dues:{month}", month)
        assert not unpublished, [r["id"] for r in unpublished]

        # Each member was asked once to confirm their line; the keepers were told of the close once.
        private = [(int(c["params"]["chat_id"]), plain(str(c["params"].get("text", "")))) for c in calls
                   if c["method"] == "sendMessage" and int(c["params"]["chat_id"]) > 0]
        signoff = Counter(chat for chat, text in private if "积分公示已生成并发到群里" in text)  # the secretary's sign-off request
        asks = Counter(chat for chat, text in private if "确认" in text and "积分公示已生成并发到群里" not in text)
        assert set(asks) == {SECRETARY, RECORDER, ZHANG, LISI} and set(asks.values()) == {1}, asks
        assert signoff == Counter({SECRETARY: 1}), signoff
        closes = [c for c in calls if c["method"] == "sendMessage" and "党费已结账" in str(c["params"].get("text", ""))]
        assert len(closes) == 1, [c["params"]["chat_id"] for c in closes]

        failed = [(c["method"], c["error"]) for c in calls if c["error"] is not None]
        assert not failed, failed
        for bot in bots:
            assert bot.terminate(10.0) == 0, bot.output()
    finally:
        for bot in bots:
            bot.kill()
        for bot in bots:
            print(bot.output()[-4000:])
    for bot in bots:
        assert "Traceback" not in bot.output() and " ERROR " not in bot.output(), bot.output()[-4000:]
