"""F2's QA4 follow-ups outside the succession buttons, through the real Application and the offline
Telegram: /setup following a branch into its upgraded supergroup says so once (QA4 #8), and /dues with the
month first (QA4 #7)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.conftest import count, rows, said
from tests.test_group_lifecycle import (NEW_ID, branch_at, forget_refusals, group_texts, only_notices,  # noqa: F401
                                       second_setup, supergroup)


async def test_setup_following_a_branch_past_a_bare_one_tells_the_group_once(h, clock, only_notices):  # noqa: F811
    """An administrator set up a bare branch in the supergroup first; the secretary's /setup there follows
    the real branch and retires the bare one: the group gets one message saying so, not two alike."""
    b = await branch_at(h, clock, datetime(2026, 3, 20, 2, 0, tzinfo=UTC))
    chat = supergroup(h, b)
    await second_setup(h, chat)
    before = len(h.world.calls)
    await h.say(b.secretary, chat, "/setup")
    texts = group_texts(h, NEW_ID, before)
    assert len(texts) == 1, texts
    assert "兰溪镇红星村党支部 及其全部记录已跟随到本群" in texts[0] and "已撤销" in texts[0]
    assert (await rows(h, "SELECT chat_id FROM branches WHERE id = ?", b.branch.id))[0]["chat_id"] == NEW_ID
    assert await count(h, "branches", "retired_at IS NOT NULL") == 1
    # /setup again there: the usual 'already set up' with the branch's settings
    assert "积分办法" in said(await h.say(b.secretary, chat, "/setup"), NEW_ID)
    forget_refusals(h, b.group.id, "upgraded to a supergroup")  # the getChat probe of the old group


async def test_setup_following_a_branch_into_an_empty_supergroup_still_describes_it(h, clock, only_notices):  # noqa: F811
    b = await branch_at(h, clock, datetime(2026, 3, 20, 2, 0, tzinfo=UTC))
    chat = supergroup(h, b)
    before = len(h.world.calls)
    await h.say(b.secretary, chat, "/setup")
    texts = group_texts(h, NEW_ID, before)
    assert len(texts) == 1 and "本群是 兰溪镇红星村党支部 原来的群升级成的超级群" in texts[0] and "积分办法" in texts[0]
    forget_refusals(h, b.group.id, "upgraded to a supergroup")


async def test_dues_mark_takes_the_month_first_too(h, b):
    """/dues 2026-03 3 paid, the month first as /dues 2026-03 and /dues correct 2026-03 … take it, marks the
    month as /dues 3 paid 2026-03 does (it answered 'no status “3”')."""
    chat = h.private(b.secretary)
    zhang_id, lisi_id = b.member_ids["zhang"], b.member_ids["lisi"]
    calls = await h.say(b.secretary, chat, f"/dues 2026-03 {zhang_id} paid")
    assert "已登记 2026-03：张三：按时足额" in said(calls, chat.id) and "这个状态" not in said(calls)
    calls = await h.say(b.secretary, chat, f"/dues 2026-3 {lisi_id} late 50")
    assert "已登记 2026-03：李四" in said(calls, chat.id)
    found = {r["member_id"]: (r["month"], r["status"]) for r in await rows(h, "SELECT * FROM dues WHERE branch_id = ?", b.branch.id)}
    assert found == {zhang_id: ("2026-03", "on_time"), lisi_id: ("2026-03", "late")}
    # two different months: neither is guessed, the usage is shown, nothing is written
    calls = await h.say(b.secretary, chat, f"/dues 2026-03 {b.member_ids['recorder']} paid 2026-02")
    assert "/dues 编号 状态 [金额] [月份]" in said(calls, chat.id)
    assert await count(h, "dues", "member_id = ?", b.member_ids["recorder"]) == 0
    # the month alone before a member: the usage, not 'no status'
    calls = await h.say(b.secretary, chat, f"/dues 2026-03 {zhang_id}")
    assert "/dues 编号 状态 [金额] [月份]" in said(calls, chat.id) and "这个状态" not in said(calls)
