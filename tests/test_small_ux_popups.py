"""Answers that were missing or in the wrong language: /cancel in a group (QA #22), and a refused press's
popup, which only the presser sees, in the presser's language (H8's note on handlers/common.refusal)."""

from __future__ import annotations

import re

from tests.conftest import popups, said, setup_branch


async def test_cancel_in_a_group_with_nothing_going_on_is_answered(h):
    b = await setup_branch(h)
    calls = await h.say(b.zhang, b.group, "/cancel")
    assert said(calls, b.group.id) == "现在没有进行中的操作，不需要取消。"
    private = said(await h.say(b.zhang, h.private(b.zhang), "/cancel"))
    assert private == "现在没有进行中的操作，不需要取消。"  # the same words as in private


async def test_cancel_in_a_group_still_cancels_a_flow_started_there(h):
    b = await setup_branch(h)
    await h.say(b.secretary, b.group, "/meeting")
    calls = await h.say(b.secretary, b.group, "/cancel")
    assert said(calls, b.group.id) == "已取消，未安排会议。"  # the flow's own /cancel comes first
    calls = await h.say(b.secretary, b.group, "/cancel")
    assert said(calls, b.group.id) == "现在没有进行中的操作，不需要取消。"


async def test_a_refused_press_in_a_zh_group_is_told_in_the_presser_s_language(h):
    b = await setup_branch(h)
    zhao = h.user(1005, "赵五", username="zhao")
    await h.say(zhao, b.group, "/join")  # a join card in the (zh) group
    zhang_en = h.user(b.zhang.id, "Zhang San", username=b.zhang.username, language="en")
    calls = await h.tap(zhang_en, b.group.id, "同意")  # not the secretary: refused
    shown = [str(c.params.get("text", "")) for c in popups(calls)]
    assert shown and shown[0] and not re.search(r"[\u4e00-\u9fff]", shown[0]), shown
    calls = await h.tap(b.lisi, b.group.id, "同意")  # a zh presser reads Chinese
    assert re.search(r"[\u4e00-\u9fff]", str(popups(calls)[0].params.get("text", "")))
    assert "已加入" not in said(calls, b.group.id)  # nobody was let in by either press


