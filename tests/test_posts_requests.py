"""/posts claim: no numbers is no request (the bot asks for them); the same posts asked for again while a
request for them still waits make no second request (one conditional insert, storage.post_requests),
whether by command, by the buttons or by two messages at once; after a decision they may be asked again.
Through the real Application."""

from __future__ import annotations

import asyncio

from tests.conftest import TestHarness, count, popups, rows, said


def cards(h: TestHarness, chat_id: int) -> list[str]:
    return [t for t in (str(c.params.get("text", "")) for c in h.world.sent(chat_id)) if "岗位认领申请 #" in t]


async def test_claim_without_numbers_asks_for_them(h: TestHarness, b) -> None:
    for text in ("/posts claim", "/posts 认领", "/posts claim ，、"):
        calls = await h.say(b.zhang, h.private(b.zhang), text)
        assert "请写岗位编号" in said(calls) and "无需申请" not in said(calls), text
    assert await count(h, "post_requests") == 0


async def test_the_same_request_twice_makes_one(h: TestHarness, b) -> None:
    chat = h.private(b.zhang)
    calls = await h.say(b.zhang, chat, "/posts claim 3 5")
    assert "已提交认领申请" in said(calls)
    calls = await h.say(b.zhang, chat, "/posts claim 5，3")  # the same posts, written differently
    assert "申请 #1 已经提交过了" in said(calls)
    # the buttons, choosing the same two posts
    await h.say(b.zhang, chat, "/posts")
    await h.tap(b.zhang, b.zhang.id, "申请调整认领")
    await h.tap(b.zhang, b.zhang.id, "3. 治安巡逻")
    await h.tap(b.zhang, b.zhang.id, "5. 环境卫生")
    calls = await h.tap(b.zhang, b.zhang.id, "提交申请")
    assert "申请 #1 已经提交过了" in "\n".join(str(c.params.get("text", "")) for c in popups(calls))
    # two messages at once
    await asyncio.gather(h.say(b.zhang, chat, "/posts claim 3 5"), h.say(b.zhang, chat, "/posts claim 3 5"))
    assert [(r["id"], r["status"]) for r in await rows(h, "SELECT id, status FROM post_requests")] == [(1, "pending")]
    assert len(cards(h, b.secretary.id)) == 1  # the secretary was asked once

    # other posts: a new request replaces the waiting one, as before
    await h.say(b.zhang, chat, "/posts claim 4")
    assert [r["status"] for r in await rows(h, "SELECT status FROM post_requests ORDER BY id")] == ["withdrawn", "pending"]
    # refused, then asked again: a new request (only a waiting one blocks the same posts)
    await h.tap(b.secretary, b.secretary.id, "不同意")
    calls = await h.say(b.zhang, chat, "/posts claim 4")
    assert "已提交认领申请" in said(calls)
    assert [r["status"] for r in await rows(h, "SELECT status FROM post_requests ORDER BY id")] == ["withdrawn", "rejected", "pending"]
