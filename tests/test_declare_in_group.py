"""/declare sent in a group: a member of the branch gets the link to declare privately; someone not (or
no longer) on its roll — transferred out, never joined — is told so there, instead of a link that would
only refuse them. Through the real Application."""

from __future__ import annotations

from tests.conftest import TestHarness, rows, said, setup_branch


def link_buttons(h: TestHarness, calls) -> list[str]:
    return [url for c in calls if c.method == "sendMessage" for url in
            (b.get("url", "") for row in (c.params.get("reply_markup") or {}).get("inline_keyboard", []) for b in row) if url]


async def test_a_member_transferred_out_is_told_he_is_no_longer_here(h: TestHarness) -> None:
    b = await setup_branch(h)
    b2 = await setup_branch(h, chat_id=-1001000000002, title="二号支部", base=2000)
    calls = await h.say(b.zhang, b.group, "/declare")  # still here: the private link
    assert "申报积分请私聊我" in said(calls) and any("start=declare-" in u for u in link_buttons(h, calls))

    await h.say(b.secretary, b.group, f"/transfer @{b.zhang.username} {b2.group.id}")
    code = (await rows(h, "SELECT code FROM member_transfers WHERE status = 'pending'"))[0]["code"]
    await h.say(b2.secretary, b2.group, f"/accepttransfer {code}")
    assert (await rows(h, "SELECT status FROM members WHERE branch_id = ? AND user_id = ?", b.branch.id, b.zhang.id))[0]["status"] == "left"

    calls = await h.say(b.zhang, b.group, "/declare")
    assert "组织关系已从本支部（兰溪镇红星村党支部）转到“二号支部”" in said(calls, b.group.id)
    assert "请私聊我" not in said(calls) and not link_buttons(h, calls)
    calls = await h.say(b.zhang, b2.group, "/declare")  # in the new branch's group: the link
    assert any(f"start=declare-{b2.branch.id}" in u for u in link_buttons(h, calls))

    stranger = h.user(1777, "路人")
    calls = await h.say(stranger, b.group, "/declare")
    assert "在册党员" in said(calls) and "/join" in said(calls) and not link_buttons(h, calls)
