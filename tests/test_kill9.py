"""Kill -9 in the middle of writes: the bot process (`python -m bot run`) against the Bot API emulator on
127.0.0.1. Members declare 30 deeds over HTTP; the recorder taps Approve on all 30 cards at once; once
some approvals have been confirmed to people the process gets SIGKILL — no signal handler, no shutdown.

Then, before anything opens the database again: ``PRAGMA integrity_check`` is "ok"; every approval the
bot had confirmed to someone (the recorder's popup, the card edited, the member told "已通过") has its
ledger row; no ledger row exists twice; a declaration is approved exactly when its ledger row exists
(the decision and the row are one transaction).

The bot is restarted on the same database. The whole batch of 30 presses is delivered again with the
same update_ids (what Telegram does with a batch the bot never confirmed — since bot/polling.py the bot
confirms a batch only after handling it, and tests/test_confirm_after_handling.py checks that without a
replay; here the replay stands for redelivery in general): the presses the killed process never
handled are approved now, and the ones it had done change nothing — no new ledger row, the member is not
told twice. A second replay (new update_ids) changes nothing at all.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.emulator import Emulator
from tests.test_e2e_process import (
    LISI,
    RECORDER,
    STEP_TIMEOUT,
    ZHANG,
    BotProcess,
    People,
    declarations_to_approve,
    plain,
    query,
    said,
)

BURST = 30
KILL_AFTER = 5  # confirmed approvals before the SIGKILL
_NUMBER = re.compile(r"#(\d+)")


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as server:
        yield server


def confirmed_approvals(calls: list[dict]) -> set[int]:
    """Declarations whose approval the bot told someone about: a popup, an edited card, a member's message."""
    numbers: set[int] = set()
    for call in calls:
        if call["error"] is not None or call["method"] not in ("answerCallbackQuery", "editMessageText", "sendMessage"):
            continue
        text = plain(str(call["params"].get("text", "")))
        if "已通过" in text and (match := _NUMBER.search(text.split("已通过")[0].rsplit("申报", 1)[-1])):
            numbers.add(int(match.group(1)))
    return numbers


def ledger_state(database: Path) -> dict[str, list[tuple[int, str]]]:
    """reference → [(ledger id, value)] of the declarations' rows."""
    state: dict[str, list[tuple[int, str]]] = {}
    for row in query(database, "SELECT id, reference, value FROM ledger WHERE source = 'declaration' ORDER BY id"):
        state.setdefault(row["reference"], []).append((row["id"], row["value"]))
    return state


def check_consistent(database: Path) -> dict[str, list[tuple[int, str]]]:
    """Integrity, no duplicate rows, approved ⇔ ledger row; returns the ledger state."""
    with sqlite3.connect(database, timeout=10) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    state = ledger_state(database)
    assert all(len(rows) == 1 for rows in state.values()), {k: v for k, v in state.items() if len(v) > 1}
    approved = {f"decl:{r['id']}" for r in query(database, "SELECT id FROM declarations WHERE status = 'approved'")}
    assert approved == set(state), (approved ^ set(state))
    assert sum(len(rows) for rows in state.values()) == len(approved)  # no row under any other reference either
    return state


def told(calls: list[dict], user_ids: set[int]) -> list[str]:
    return [plain(str(c["params"].get("text", ""))) for c in calls if c["method"] == "sendMessage"
            and c["error"] is None and int(c["params"].get("chat_id", 0)) in user_ids and "已通过" in str(c["params"].get("text", ""))]


def test_kill9_during_a_burst_of_approvals(emulator: Emulator, tmp_path: Path) -> None:
    client = emulator.client()
    database = tmp_path / "branch.sqlite3"
    bot = BotProcess(emulator, database, tmp_path, name="first")
    again = BotProcess(emulator, database, tmp_path, name="restarted")
    try:
        bot.start()
        people = People(client)
        cards = declarations_to_approve(people, client, database, BURST)  # (message id, Approve data) of each card
        assert len(query(database, "SELECT id FROM declarations WHERE status = 'pending'")) == BURST

        # The burst: 30 taps queued at once; SIGKILL once a few approvals were confirmed.
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
        time.sleep(0.2)  # let the emulator finish recording what reached it before the process died
        before_restart, _ = client.calls(since)
        confirmed = confirmed_approvals(before_restart)
        assert KILL_AFTER <= len(confirmed) < BURST, f"not killed in the middle: {len(confirmed)} confirmed"

        # The database as the dead process left it.
        state = check_consistent(database)
        for number in confirmed:
            assert f"decl:{number}" in state, f"declaration #{number} was confirmed but has no ledger row"
        members_told = told(before_restart, {ZHANG, LISI})
        assert len(members_told) == len(set(members_told))

        # Restart on the same database; the whole batch comes again with the same update_ids.
        for press in presses:
            client.update(press)
        again.start()
        people.cursor = since
        since_burst = people.step(lambda: None, timeout=30)  # every call from the burst on, once the replay is done
        state_after = check_consistent(database)
        assert len(state_after) == BURST  # the presses the dead process never handled are approved now
        assert all(state_after[ref] == rows for ref, rows in state.items())  # the rows it had written: unchanged
        every_told = told(since_burst, {ZHANG, LISI})
        # Each member is told at most once per approval (one whose process died between the commit and the
        # message is not told again: the replay finds it decided), and only of approvals that exist.
        assert len(every_told) == len(set(every_told)) >= BURST - 2
        assert {f"decl:{n}" for n in confirmed_approvals(since_burst)} <= set(state_after)

        # A second replay, as new updates: nothing changes, nobody is told anything new.
        calls = people.step(lambda: [client.update({k: v for k, v in p.items() if k != "update_id"}) for p in presses])
        assert ledger_state(database) == state_after
        assert not told(calls, {ZHANG, LISI})
        assert "申报" not in said(calls, ZHANG) + said(calls, LISI)  # (scheduled reminders may come meanwhile)
        answered = {c["params"].get("callback_query_id") for c in calls if c["method"] == "answerCallbackQuery"}
        assert {p["callback_query"]["id"] for p in presses} <= answered
        assert "已经处理过了" in "\n".join(plain(str(c["params"].get("text", ""))) for c in calls)

        assert again.terminate(10.0) == 0, again.output()
    finally:
        bot.kill()
        again.kill()
        print(bot.output()[-3000:], again.output()[-3000:])  # shown by pytest only when the test fails
    secret = emulator.token.split(":", 1)[1]
    assert secret not in bot.output() + again.output()
