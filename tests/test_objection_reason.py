"""The correction row an upheld objection writes carries a reason members read later (/history): it is
the branch language's catalog text (objection.correction_note), stored as plain text and escaped when
shown — like the monthly assessment's and the town's correction reasons. Through the real Application."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.clock import FixedClock
from schedules import engine
from tests.conftest import TestHarness, rows, said, setup_branch

SH = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("language", ["zh", "en"])
async def test_the_correction_reason_is_in_the_branch_language(h: TestHarness, clock: FixedClock, language: str) -> None:
    b = await setup_branch(h)
    if language == "en":
        await h.say(b.secretary, b.group, "/language en")
        assert (await rows(h, "SELECT language FROM branches WHERE id = ?", b.branch.id))[0]["language"] == "en"
    await h.say(b.recorder, h.private(b.recorder), "/record 3 post_duty 8 巡逻")
    entry = (await rows(h, "SELECT id FROM ledger"))[0]["id"]
    clock.set(datetime(2026, 4, 1, 9, 0, tzinfo=SH))
    await engine.tick(h.app, clock.now())  # the March notice opens its objection window
    reason = '他没有巡逻 <b>&"'
    await h.say(b.lisi, h.private(b.lisi), f"/object {entry} {reason}")
    await h.tap(b.secretary, b.secretary.id, "撤销该分")  # the secretary's private chat: his Telegram's zh

    reversal = (await rows(h, "SELECT reason, source FROM ledger WHERE reverses_id = ?", entry))[0]
    expected = f"异议 #1：{reason}" if language == "zh" else f"objection #1: {reason}"
    assert reversal["source"] == "correction" and reversal["reason"] == expected  # stored unescaped

    calls = await h.say(b.zhang, h.private(b.zhang), "/history")  # 张三's Telegram is zh: the stored text
    assert expected in said(calls, b.zhang.id)
    sent = "".join(str(c.params.get("text", "")) for c in calls if c.method == "sendMessage")
    assert "&lt;b&gt;&amp;" in sent and "<b>&" not in sent  # escaped when shown
