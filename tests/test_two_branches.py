"""A member of two branches (QA3 #4, #5): /branch cannot switch in the middle of /declare (the draft was
filed in the branch switched away from), the review names the branch; private refusals and receipts that
say "本支部" name the branch the chat works with and point to /branch; single-branch texts are unchanged.

Through the real Application: 张三 is in 红星村 (A) and 白鹤村 (B, where he is the recorder)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.conftest import declare, member_row, popups, rows, said, setup_branch

WHICH_B = "当前支部：兰溪镇白鹤村党支部（您在 2 个支部，切换支部：/branch）"


@pytest.fixture
async def two(h, b) -> SimpleNamespace:
    other = await setup_branch(h, chat_id=-1001000000002, title="兰溪镇白鹤村党支部", base=2000)
    await h.say(b.zhang, other.group, "/join")
    await h.tap(other.secretary, other.group.id, "同意")
    await h.say(other.secretary, other.group, f"/role @{b.zhang.username} recorder")
    chat = h.private(b.zhang)
    await h.say(b.zhang, chat, "/branch")
    await h.tap(b.zhang, chat.id, "白鹤村")
    return SimpleNamespace(a=b, b=other, chat=chat)


async def context_of(h, user_id: int) -> int:
    return (await rows(h, "SELECT branch_id FROM user_context WHERE user_id = ?", user_id))[0]["branch_id"]


async def test_switching_branch_waits_for_the_declaration_in_progress(h, two):
    zhang, chat, a, b = two.a.zhang, two.chat, two.a.branch, two.b.branch
    await h.say(zhang, chat, "/declare")
    await h.tap(zhang, chat.id, "志愿服务岗位")
    calls = await h.say(zhang, chat, "/branch")  # answered (read-only), without the buttons
    assert "现在操作的是：兰溪镇白鹤村党支部" in said(calls) and "现在不能切换支部" in said(calls)
    assert not h.world.buttons(h.world.last_message(chat.id))
    # A press on /branch's buttons sent before the flow began: refused as well.
    listing = next(m for m in reversed(h.world.messages(chat.id)) if "已切换到" in (m.text or ""))
    calls = await h.press(zhang, listing, f"br:{a.id}")
    assert "您正在申报积分（/declare），还没有完成，现在不能切换支部" in popups(calls)[0].params["text"]
    assert "已切换到" not in said(calls)
    assert await context_of(h, zhang.id) == b.id
    await h.tap(zhang, chat.id, "为民办一件实事")
    await h.tap(zhang, chat.id, "今天")
    await h.say(zhang, chat, "村东头")
    await h.say(zhang, chat, "帮刘大爷修水管")
    calls = await h.tap(zhang, chat.id, "无照片")
    assert "请核对申报内容" in said(calls) and "支部：兰溪镇白鹤村党支部" in said(calls)
    await h.tap(zhang, chat.id, "提交")
    found = await rows(h, "SELECT d.branch_id FROM declarations d JOIN members m ON m.id = d.member_id WHERE m.user_id = ?", zhang.id)
    assert [r["branch_id"] for r in found] == [b.id]
    # The flow over, the switch works.
    await h.say(zhang, chat, "/branch")
    calls = await h.tap(zhang, chat.id, "红星村")
    assert "已切换到 兰溪镇红星村党支部" in said(calls) and await context_of(h, zhang.id) == a.id


async def test_refusals_and_receipts_name_the_branch_for_a_member_of_several(h, two):
    a, zhang, chat = two.a, two.a.zhang, two.chat
    # An entry of A's (about 张三 himself), looked for while the chat works with B.
    await h.say(a.recorder, h.private(a.recorder), f"/record {a.member_ids['zhang']} study absent 3月5日缺席")
    entry = (await rows(h, "SELECT id FROM ledger WHERE branch_id = ? AND source != 'automatic' ORDER BY id DESC", a.branch.id))[0]["id"]

    calls = await h.say(zhang, chat, f"/undo {entry} 记错了")
    assert f"本支部没有编号为 #{entry} 的积分记录" in said(calls) and WHICH_B in said(calls)
    calls = await h.say(zhang, chat, f"/object {entry} 当天在外地出差")
    assert f"本支部没有编号为 #{entry} 的积分记录" in said(calls) and WHICH_B in said(calls)
    calls = await h.say(zhang, chat, f"/history {a.member_ids['lisi']}")
    assert f"找不到党员“{a.member_ids['lisi']}”" in said(calls) and WHICH_B in said(calls)
    calls = await h.say(zhang, chat, f"/record {a.member_ids['lisi']} study absent 缺席")
    assert WHICH_B in said(calls)
    calls = await h.say(zhang, chat, "/paid 30")
    assert "已报告" in said(calls) and WHICH_B in said(calls)
    calls = await h.say(zhang, chat, "/start")
    text = said(calls)
    assert "您已加入 2 个支部。" in text and WHICH_B in text
    assert text.index(WHICH_B) < text.index("积分记录员")  # before the role section it is about


async def test_single_branch_texts_are_unchanged(h, b):
    recorder = b.recorder
    chat = h.private(recorder)
    calls = await h.say(recorder, chat, "/undo 99999 记错了")
    assert said(calls) == "本支部没有编号为 #99999 的积分记录。记录编号见 /history。"
    calls = await h.say(recorder, chat, "/history 99999")
    assert said(calls) == "找不到党员“99999”。可用 /members 查看编号。"
    calls = await h.say(b.zhang, h.private(b.zhang), "/object 99999 理由")
    assert said(calls) == "本支部没有编号为 #99999 的积分记录。请发送 /object 查看可提出异议的记录。"
    calls = await h.say(b.zhang, h.private(b.zhang), "/paid 30")
    assert "已报告" in said(calls) and "当前支部" not in said(calls)
    calls = await h.say(b.zhang, h.private(b.zhang), "/start")
    assert "当前支部" not in said(calls)
    assert (await member_row(h, b.zhang.id))["status"] == "approved"


async def test_declaration_review_names_the_branch(h, b):
    number = await declare(h, b.zhang, submit=False)
    assert number is None
    review = h.world.last_message(b.zhang.id).text or ""
    assert "请核对申报内容" in review and review.endswith("支部：兰溪镇红星村党支部")
