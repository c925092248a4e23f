"""A batch of updates is confirmed to Telegram only after it has been handled (bot/polling.py).

End to end (the bot as its own process against the Bot API emulator, which forgets an update only when a
later getUpdates offset confirms it, as Telegram does): 20 Approve taps are queued at once and the process
is killed with SIGKILL once a few have been confirmed to people. At that moment the offset that confirms
the batch has not been sent. The restarted bot gets the whole batch again from "Telegram" by itself —
nothing is replayed by the test — and handles it: every declaration approved, exactly one ledger row
each, the rows the dead process wrote unchanged, and nobody told twice.

In process: the getUpdates request waits for the Application's queue to be empty of unhandled updates;
other requests never wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.emulator import Emulator
from bot.offline import OfflineTelegram
from bot.polling import ConfirmAfterHandling
from tests.test_e2e_process import LISI, RECORDER, STEP_TIMEOUT, ZHANG, BotProcess, People, declarations_to_approve
from tests.test_kill9 import check_consistent, confirmed_approvals, query, told

BURST = 20
KILL_AFTER = 4


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as server:
        yield server


def test_a_batch_cut_by_kill9_comes_again_from_telegram_and_is_handled_once(emulator: Emulator, tmp_path: Path) -> None:
    client = emulator.client()
    database = tmp_path / "branch.sqlite3"
    bot = BotProcess(emulator, database, tmp_path, name="first")
    again = BotProcess(emulator, database, tmp_path, name="restarted")
    try:
        bot.start()
        people = People(client)
        cards = declarations_to_approve(people, client, database, BURST)

        since = client.calls(0)[1]
        presses = [client.press(RECORDER, RECORDER, message_id, data) for message_id, data in cards]
        deadline = time.monotonic() + STEP_TIMEOUT
        cursor, seen = since, []
        while len(confirmed_approvals(seen)) < KILL_AFTER:
            assert time.monotonic() < deadline, "the approvals did not start"
            calls, cursor = client.calls(cursor, wait=0.5)
            seen.extend(calls)
        bot.process.kill()  # type: ignore[union-attr]
        bot.process.wait(10)  # type: ignore[union-attr]
        time.sleep(0.2)
        before_restart, _ = client.calls(since)
        confirmed = confirmed_approvals(before_restart)
        assert KILL_AFTER <= len(confirmed) < BURST, f"not killed in the middle: {len(confirmed)} confirmed"
        # "Telegram" forgot only presses that had been handled: every press below the confirmed offset has
        # its ledger row; the presses fetched and not handled are still held there
        state = check_consistent(database)
        assert {f"decl:{n}" for n in confirmed} <= set(state)
        offset = client.state()["confirmed"]
        assert offset <= max(p["update_id"] for p in presses), "the whole burst was confirmed before the kill"
        forgotten = [p for p in presses if p["update_id"] < offset]
        assert {f"decl:{p['callback_query']['data'].rsplit(':', 1)[1]}" for p in forgotten} <= set(state)

        again.start()  # no replay by the test: the restarted bot gets the batch from getUpdates
        people.cursor = since
        since_burst = people.step(lambda: None, timeout=30)
        state_after = check_consistent(database)
        assert len(state_after) == BURST
        assert all(state_after[ref] == rows for ref, rows in state.items())
        every_told = told(since_burst, {ZHANG, LISI})
        assert len(every_told) == len(set(every_told)) >= BURST - 2
        assert len(query(database, "SELECT id FROM declarations WHERE status = 'pending'")) == 0
        assert again.terminate(10.0) == 0, again.output()
        # a graceful stop confirms what was handled: nothing of the batch is left at "Telegram"
        assert client.state()["confirmed"] > max(p["update_id"] for p in presses)
    finally:
        bot.kill()
        again.kill()
        print(bot.output()[-3000:], again.output()[-3000:])  # shown by pytest only when the test fails


async def test_get_updates_waits_until_the_fetched_updates_are_handled() -> None:
    world = OfflineTelegram()
    request = ConfirmAfterHandling(world.request)
    queue: asyncio.Queue[object] = asyncio.Queue()
    request.bind(queue)
    await request.initialize()
    base = f"https://api.telegram.org/bot{world.token}"
    await queue.put("a fetched update")
    polling = asyncio.create_task(request.do_request(f"{base}/getUpdates", "POST"))
    sending = asyncio.create_task(request.do_request(f"{base}/getMe", "POST"))
    await asyncio.wait_for(sending, 5)  # other calls never wait
    await asyncio.sleep(0.05)
    assert not polling.done()  # the next getUpdates (the confirming offset) waits for the handler
    queue.get_nowait()
    queue.task_done()
    status, _ = await asyncio.wait_for(polling, 5)
    assert status == 200
    await request.shutdown()
