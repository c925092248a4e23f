"""Webhook mode answers Telegram only after the update was handled (bot/webhook.py).

In process, a PTB Application with a handler that waits for the test, behind the ConfirmingUpdater on
127.0.0.1: the answer to a post waits for its update's handler; a handler that raises is answered 200 once
the error handler has run; requests without the right secret get 403 and reach no handler; concurrent
posts are handled one at a time in order, each answered when its own is done; a graceful stop answers 503
to what arrives from then on and returns only once the update being handled is done and answered; a
refused setWebhook is raised (the command prints it) with the server stopped again.

End to end (the bot as its own process, `python -m bot run --webhook`, against the emulator, which forgets
an update only when the webhook answered it 2xx, as Telegram does): the process is killed with SIGKILL
in the middle of handling an Approve tap (its approval committed, the tap not yet answered), with more
taps waiting behind it. "Telegram" still holds every tap; the restarted bot gets them all again by itself
and handles them: every declaration approved, one ledger row each, the row the dead process wrote
unchanged. With PTB's own webhook server the taps were answered 200 on arrival and lost with the process.
And SIGTERM in the middle of an update (its reply held): the process waits, answers a new post 503, and
once the reply goes through answers the update 2xx and exits 0.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from telegram import Update
from telegram.error import BadRequest
from telegram.ext import Application, ApplicationBuilder, MessageHandler, filters

from bot.emulator import SECRET_HEADER, Emulator
from bot.offline import OfflineTelegram
from bot.webhook import ConfirmingUpdater
from tests.test_e2e_process import (
    RECORDER, STEP_TIMEOUT, ZHANG, BotProcess, People, declarations_to_approve, free_port, query,
)
from tests.test_e2e_webhook import post_update

SECRET = "Xk3_p9-QzL2mW8vR4tY7"
PATH = "hook"


def message_update(update_id: int, text: str) -> dict[str, Any]:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": int(time.time()), "text": text,
        "chat": {"id": 42, "type": "private", "first_name": "A"},
        "from": {"id": 42, "is_bot": False, "first_name": "A"}}}


class Hooked:
    """An Application whose only handler records each text and waits until the test releases it."""

    def __init__(self) -> None:
        self.world = OfflineTelegram()
        self.app: Application = (ApplicationBuilder().token(self.world.token).request(self.world.request)
                                 .get_updates_request(self.world.request).build())
        self.app.updater = ConfirmingUpdater(self.app)
        self.started: list[str] = []
        self.done: list[str] = []
        self.errors: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.app.add_handler(MessageHandler(filters.TEXT, self.handle))
        self.app.add_error_handler(self.on_error)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/{PATH}"

    def gate(self, text: str) -> asyncio.Event:
        return self.gates.setdefault(text, asyncio.Event())

    async def handle(self, update: Update, context: object) -> None:
        assert update.message is not None and update.message.text is not None
        text = update.message.text
        self.started.append(text)
        await self.gate(text).wait()
        if text.startswith("fail"):
            raise RuntimeError(f"handler failed on {text}")
        self.done.append(text)

    async def on_error(self, update: object, context: Any) -> None:
        await asyncio.sleep(0.05)  # the answer must wait for this too
        self.errors.append(str(context.error))

    async def post(self, client: httpx.AsyncClient, update: dict[str, Any], secret: str | None = SECRET) -> int:
        headers = {} if secret is None else {SECRET_HEADER: secret}
        response = await client.post(self.url, json=update, headers=headers, timeout=10)
        return response.status_code


@pytest.fixture
async def hooked() -> AsyncIterator[Hooked]:
    server = Hooked()
    await server.app.initialize()
    await server.app.updater.start_webhook(listen="127.0.0.1", port=server.port, url_path=PATH,  # type: ignore[union-attr]
                                           webhook_url=server.url, secret_token=SECRET,
                                           allowed_updates=["message"])
    await server.app.start()
    try:
        yield server
    finally:
        for gate in server.gates.values():
            gate.set()
        if server.app.updater.running:  # type: ignore[union-attr]
            await server.app.updater.stop()  # type: ignore[union-attr]
        await server.app.stop()
        await server.app.shutdown()


async def settled(task: asyncio.Task[Any]) -> bool:
    """Whether the task finishes within a moment (a handler that is waiting keeps it pending)."""
    await asyncio.wait([task], timeout=0.3)
    return task.done()


async def until_started(hooked: Hooked, text: str) -> None:
    """Wait (up to 10 s, however loaded the machine) until the handler has started on ``text``."""
    for _ in range(1000):
        if text in hooked.started:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the handler never started on {text!r}: {hooked.started}")


async def test_set_webhook_carries_the_secret_and_the_updates_then_the_answer_waits_for_the_handler(hooked: Hooked) -> None:
    calls = [c for c in hooked.world.calls if c.method == "setWebhook"]
    assert len(calls) == 1
    assert calls[0].params["url"] == hooked.url and calls[0].params["secret_token"] == SECRET
    assert calls[0].params["allowed_updates"] in (["message"], '["message"]')
    async with httpx.AsyncClient() as client:
        answer = asyncio.create_task(hooked.post(client, message_update(1, "one")))
        await until_started(hooked, "one")
        assert not await settled(answer)  # the handler runs and waits: no answer yet
        assert hooked.started == ["one"] and hooked.done == []
        hooked.gate("one").set()
        assert await asyncio.wait_for(answer, 5) == 200
        assert hooked.done == ["one"]


async def test_a_failing_handler_is_answered_200_after_the_error_handler_ran(hooked: Hooked) -> None:
    hooked.gate("fail 1").set()
    async with httpx.AsyncClient() as client:
        assert await hooked.post(client, message_update(2, "fail 1")) == 200
    assert hooked.errors == ["handler failed on fail 1"]  # ran before the answer (it sleeps first)


async def test_without_the_right_secret_403_and_no_handler_runs(hooked: Hooked) -> None:
    async with httpx.AsyncClient() as client:
        for secret in (None, "", "x" * 20, SECRET[:-1]):
            assert await hooked.post(client, message_update(3, "forged"), secret) == 403, secret
        response = await client.post(hooked.url, content=b"{}", timeout=10,
                                     headers={SECRET_HEADER: SECRET, "Content-Type": "text/plain"})
        assert response.status_code == 403
        response = await client.post(f"http://127.0.0.1:{hooked.port}/elsewhere", json=message_update(4, "x"),
                                     headers={SECRET_HEADER: SECRET}, timeout=10)
        assert response.status_code == 404
    assert hooked.started == []


async def test_concurrent_posts_are_handled_in_order_each_answered_when_its_own_is_done(hooked: Hooked) -> None:
    async with httpx.AsyncClient() as client:
        first = asyncio.create_task(hooked.post(client, message_update(5, "first")))
        await until_started(hooked, "first")
        assert not await settled(first)
        second = asyncio.create_task(hooked.post(client, message_update(6, "second")))
        assert not await settled(second)
        assert hooked.started == ["first"]  # one at a time, as the Application's own queue does
        hooked.gate("second").set()
        assert not await settled(second)  # its handler is free to finish, but has not started yet
        hooked.gate("first").set()
        assert await asyncio.wait_for(first, 5) == 200
        assert await asyncio.wait_for(second, 5) == 200
    assert hooked.done == ["first", "second"]


async def test_a_graceful_stop_refuses_new_updates_and_waits_for_the_one_being_handled(hooked: Hooked) -> None:
    async with httpx.AsyncClient() as client:
        busy = asyncio.create_task(hooked.post(client, message_update(7, "busy")))
        await until_started(hooked, "busy")  # counted as being handled before stop() is called
        assert not await settled(busy)
        stopping = asyncio.create_task(hooked.app.updater.stop())  # type: ignore[union-attr]
        assert not await settled(stopping)  # waits for the update being handled
        async with httpx.AsyncClient() as other:
            assert await hooked.post(other, message_update(8, "late")) == 503  # Telegram keeps it, posts it again
        hooked.gate("busy").set()
        assert await asyncio.wait_for(busy, 5) == 200
        await asyncio.wait_for(stopping, 5)
    assert hooked.done == ["busy"] and "late" not in hooked.started
    assert not hooked.app.updater.running  # type: ignore[union-attr]


async def test_a_refused_set_webhook_stops_the_server_and_is_raised() -> None:
    server = Hooked()
    server.world.fail_next("setWebhook", {"error_code": 400, "description": "Bad Request: bad webhook: HTTPS url must be provided"})
    await server.app.initialize()
    try:
        with pytest.raises(BadRequest, match="(?i)https url"):
            await server.app.updater.start_webhook(listen="127.0.0.1", port=server.port, url_path=PATH,  # type: ignore[union-attr]
                                                   webhook_url=server.url, secret_token=SECRET)
        assert not server.app.updater.running  # type: ignore[union-attr]
        with socket.socket() as probe:  # the port is free again
            probe.bind(("127.0.0.1", server.port))
    finally:
        await server.app.shutdown()


async def test_polling_is_not_this_updaters_job() -> None:
    world = OfflineTelegram()
    app = ApplicationBuilder().token(world.token).request(world.request).get_updates_request(world.request).build()
    with pytest.raises(RuntimeError, match="webhook"):
        await ConfirmingUpdater(app).start_polling()


# --- end to end ------------------------------------------------------------------------------------------------


BURST = 8


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as server:
        yield server


def all_delivered(client: Any) -> int:
    """Deliveries so far, once "Telegram" holds no update (the last step's barrier is answered after its calls)."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while (state := client.state())["queued"]:
        assert time.monotonic() < deadline, f"{state['queued']} updates still queued"
        time.sleep(0.05)
    return int(state["delivered"])


def ledger_rows(database: Path | str) -> dict[str, list[int]]:
    rows: dict[str, list[int]] = {}
    for row in query(database, "SELECT id, reference FROM ledger WHERE source = 'declaration' ORDER BY id"):
        rows.setdefault(row["reference"], []).append(row["id"])
    return rows


def test_kill9_in_the_middle_of_a_webhook_update_loses_nothing(emulator: Emulator, tmp_path: Path, backend: str,
                                                               request: pytest.FixtureRequest) -> None:
    client = emulator.client()
    database: Path | str = tmp_path / "branch.sqlite3"
    if backend == "postgres":
        database = request.getfixturevalue("postgres").new_database(migrated=True)
    bot = BotProcess(emulator, database, tmp_path, "first", webhook_port=free_port())
    again = BotProcess(emulator, database, tmp_path, "restarted", webhook_port=free_port())
    try:
        bot.start()
        people = People(client)
        cards = declarations_to_approve(people, client, database, BURST)  # type: ignore[arg-type]

        # The first tap's handler commits the approval, then its answerCallbackQuery is held by "Telegram":
        # the process is in the middle of that update when it gets SIGKILL, with the other taps behind it.
        delivered = all_delivered(client)
        client.post("/control/hold", {"method": "answerCallbackQuery"})
        presses = [client.press(RECORDER, RECORDER, message_id, data) for message_id, data in cards]
        deadline = time.monotonic() + STEP_TIMEOUT
        while client.state()["held"] == 0:
            assert time.monotonic() < deadline, "the first approval did not reach its answer"
            time.sleep(0.05)
        time.sleep(0.5)  # what a server answering on arrival would have been posted meanwhile
        first = f"decl:{cards[0][1].split(':')[2]}"
        before = ledger_rows(database)
        assert list(before) == [first]  # the held update's change is committed, nothing else yet
        bot.process.kill()  # type: ignore[union-attr]
        bot.process.wait(10)  # type: ignore[union-attr]
        client.post("/control/release", {})  # the dead process's held call goes through (it was made)
        deadline = time.monotonic() + STEP_TIMEOUT
        while client.state()["held"] and time.monotonic() < deadline:
            time.sleep(0.05)

        # "Telegram" was answered 2xx for none of the taps: it holds every one of them.
        state = client.state()
        assert state["delivered"] == delivered, "taps were confirmed before they were handled"
        assert state["queued"] == BURST

        restart = client.calls(0)[1]
        again.start()  # no replay by the test: "Telegram" posts the taps to the restarted bot
        people.cursor = restart
        calls = people.step(lambda: None, timeout=30)  # the barrier comes after every tap
        answered = {c["params"].get("callback_query_id") for c in calls if c["method"] == "answerCallbackQuery"}
        assert {p["callback_query"]["id"] for p in presses} <= answered  # each tap handled (again) and answered
        after = ledger_rows(database)
        assert set(after) == {f"decl:{data.split(':')[2]}" for _, data in cards}
        assert all(len(ids) == 1 for ids in after.values()), after  # once each
        assert after[first] == before[first]  # the row the dead process wrote is the one
        assert not query(database, "SELECT id FROM declarations WHERE status = 'pending'")
        all_delivered(client)  # nothing left at "Telegram" (the barrier is answered 2xx just after its calls)
        assert again.terminate(10.0) == 0, again.output()
    finally:
        client.post("/control/release", {})
        bot.kill()
        again.kill()
        print(bot.output()[-3000:], again.output()[-3000:])  # shown by pytest only when the test fails
    assert "Traceback" not in again.output(), again.output()[-3000:]


def test_sigterm_in_the_middle_of_a_webhook_update_finishes_it_then_exits(emulator: Emulator, tmp_path: Path) -> None:
    client = emulator.client()
    bot = BotProcess(emulator, tmp_path / "branch.sqlite3", tmp_path, "bot", webhook_port=free_port())
    try:
        bot.start()
        client.user(ZHANG, "张三", "zhangsan")
        delivered = all_delivered(client)
        client.post("/control/hold", {"method": "sendMessage"})
        client.text(ZHANG, ZHANG, "/start")  # its reply is held: the bot is in the middle of the update
        deadline = time.monotonic() + STEP_TIMEOUT
        while client.state()["held"] == 0:
            assert time.monotonic() < deadline, "/start did not reach its reply"
            time.sleep(0.05)
        bot.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + STEP_TIMEOUT
        while "webhook stopping" not in bot.output():
            assert time.monotonic() < deadline, bot.output()[-3000:]
            time.sleep(0.05)
        assert "1 being handled" in bot.output()
        time.sleep(0.5)
        assert bot.process.poll() is None  # type: ignore[union-attr]  # it waits for the update being handled
        late = message_update(900_001, "/start")
        late["message"]["chat"]["id"] = late["message"]["from"]["id"] = ZHANG
        assert post_update(bot.webhook_url, late, {SECRET_HEADER: bot.secret}) == 503  # not taken: Telegram keeps it
        client.post("/control/release", {})
        assert bot.process.wait(10) == 0, bot.output()  # type: ignore[union-attr]
        assert all_delivered(client) == delivered + 1  # /start answered 2xx once handled, not to be posted again
        replies = [c for c in client.calls(0)[0] if c["method"] == "sendMessage" and int(c["params"]["chat_id"]) == ZHANG]
        assert len(replies) == 1 and replies[0]["error"] is None
    finally:
        client.post("/control/release", {})
        bot.kill()
        print(bot.output()[-3000:])
    assert "Traceback" not in bot.output(), bot.output()[-3000:]
