"""The secretary's year-end and objection commands, and /unconfirmed, sent in the group (QA #8, #22).

Each answers with its own "send me /… in private" line and the button that opens the private chat,
never the members' objection text, and never lists anything in front of the branch. Through the real
Application: the recorded Bot API calls and the database.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from schedules import engine
from tests.conftest import count, said

SHANGHAI = ZoneInfo("Asia/Shanghai")
OBJECT_TEXT = "异议请私聊我提交"  # the members' /object pointer: not for these commands


def private_button(h, calls) -> list[tuple[str, str]]:
    return [button for call in calls for button in h.world.buttons(call)]


@pytest.mark.parametrize("command, expected", [
    ("/grade", "年度评定请私聊我发送 /grade"),
    ("/grade 2026", "年度评定请私聊我发送 /grade"),
    ("/grade finalise 2026", "年度评定请私聊我发送 /grade"),
    ("/reopen 2026 理由", "重新开放年度请私聊我发送 /reopen 年份 理由"),
    ("/objections", "处理异议请私聊我发送 /objections"),
    ("/unconfirmed", "尚未确认的名单请私聊我查看"),
])
async def test_each_command_points_to_the_private_chat_in_its_own_words(h, b, command, expected):
    calls = await h.say(b.secretary, b.group, command)
    text = said(calls, b.group.id)
    assert expected in text and OBJECT_TEXT not in text
    assert private_button(h, calls) == [("私聊机器人", f"https://t.me/{h.app.bot.username}")]
    assert await count(h, "grade_rounds") == 0 and await count(h, "grade_reopens") == 0


async def test_unconfirmed_in_the_group_names_nobody_and_works_in_private(h, b, clock):
    clock.set(datetime(2026, 4, 1, 9, 0, tzinfo=SHANGHAI))
    await engine.tick(h.app, clock.now())  # March's notice: everyone is asked to confirm
    await h.tap(b.zhang, b.zhang.id, "确认无误")
    calls = await h.say(b.recorder, b.group, "/unconfirmed")
    text = said(calls)
    assert "尚未确认的名单请私聊我查看" in text
    for name in ("王书记", "李记录", "李四"):
        assert name not in text
    assert all(c.chat_id == b.group.id for c in calls if c.method == "sendMessage")
    calls = await h.say(b.recorder, h.private(b.recorder), "/unconfirmed")
    text = said(calls, b.recorder.id)
    assert "尚未确认的党员 3 人" in text and "李四：未确认" in text and "张三" not in text


async def test_the_english_pointer(h, b):
    await h.say(b.secretary, b.group, "/language en")
    en = h.user(b.secretary.id, b.secretary.full_name, username=b.secretary.username, language="en")
    calls = await h.say(en, b.group, "/grade")
    assert "Send /grade (or /grade YEAR) to me in private" in said(calls)
    calls = await h.say(en, b.group, "/objections")
    assert "Send /objections to me in private" in said(calls)
