"""/declare in a group by someone a transfer (组织关系转接) keeps off its roll: a member transferred out is
told where they went (the branch they are in now); a member whose transfer to this branch still waits for
its secretary is told so, and where to declare meanwhile. Someone never on the roll gets the general
answer. Through the real Application, both backends."""

from __future__ import annotations

from tests.conftest import TestHarness, rows, said, setup_branch


async def _transfer(h: TestHarness, src, dst, user) -> str:
    await h.say(src.secretary, src.group, f"/transfer @{user.username} {dst.group.id}")
    return (await rows(h, "SELECT code FROM member_transfers WHERE status = 'pending'"))[0]["code"]


async def test_declare_tells_where_a_transferred_member_went_or_that_the_transfer_waits(h: TestHarness) -> None:
    b = await setup_branch(h)
    b2 = await setup_branch(h, chat_id=-1001000000002, title="二号支部", base=2000)
    b3 = await setup_branch(h, chat_id=-1001000000003, title="三号<支部>", base=3000)
    code = await _transfer(h, b, b2, b.zhang)
    # waiting: in the receiving group he is told his transfer waits, and to declare in the old group meanwhile
    text = said(await h.say(b.zhang, b2.group, "/declare"), b2.group.id)
    assert "正从“兰溪镇红星村党支部”转入本支部（二号支部），还在等待本支部书记接收" in text
    # in the old group he is still on the roll: the private link
    assert "申报积分请私聊我" in said(await h.say(b.zhang, b.group, "/declare"), b.group.id)
    # a third branch the transfer is not addressed to: the general answer
    assert "在册党员" in said(await h.say(b.zhang, b3.group, "/declare"), b3.group.id)

    await h.say(b2.secretary, b2.group, f"/accepttransfer {code}")
    text = said(await h.say(b.zhang, b.group, "/declare"), b.group.id)
    assert "组织关系已从本支部（兰溪镇红星村党支部）转到“二号支部”" in text and "在册党员" not in text
    # and on to a third branch: the old group names where he is now (escaped)
    code = await _transfer(h, b2, b3, b.zhang)
    await h.say(b3.secretary, b3.group, f"/accepttransfer {code}")
    calls = await h.say(b.zhang, b.group, "/declare")
    assert "转到“三号<支部>”" in said(calls, b.group.id)
    assert "三号&lt;支部&gt;" in str(calls[-1].params["text"])

    stranger = h.user(1777, "路人")
    text = said(await h.say(stranger, b.group, "/declare"), b.group.id)
    assert "在册党员" in text and "/join" in text
