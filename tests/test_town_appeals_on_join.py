"""An appeal (申诉) made while the branch was in no town reaches the town the branch joins (session 4's town
leftover 5).

Decided: forwarded, not "appeal again". In the join's transaction each objection of the branch whose appealed
flag is set and which has no live town appeal becomes an open appeal to the new town, with the appellant and the
reason they gave; the town's administrators get its card, the appellant hears where it went, the group hears
how many went. An appeal already decided by a town (live) is not forwarded: that decision is final; one closed
by an earlier detach had its flag cleared (its appellant was told to appeal again), so it is not either.

Through the real Application (/appeal, /towncode, /jointown, the town's buttons and reason, /town).
"""

from __future__ import annotations

from tests.conftest import count, rows, said
from tests.test_grading_flow import as_actor
from tests.test_notices import alerts, branch_at, only_notices, private_texts, utc  # noqa: F401
from tests.test_town import code_from, make_town
from tests.test_town_review import card, in_town, objection_upheld_by_branch


async def test_an_appeal_made_in_no_town_reaches_the_town_the_branch_joins(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0), preset="sanmenxia")
    t = await make_town(h)
    await objection_upheld_by_branch(h, clock, b)
    calls = await h.say(b.lisi, h.private(b.lisi), "/appeal 1 村民都看见他只扫了自家门口")
    assert "已记录您对异议 #1 处理结果的申诉" in said(calls) and "报送" not in said(calls)  # no town: the branch's
    assert await count(h, "town_appeals") == 0

    calls = await h.say(b.secretary, b.group, f"/jointown {await code_from(h, t.admin)}")
    group = said(calls, b.group.id)
    assert "已加入“兰溪镇”" in group
    assert "本支部加入前提出、尚无上级决定的申诉 1 件（#1）已一并报送“兰溪镇”，由镇里调查决定。" in group
    forwarded = await rows(h, "SELECT objection_id, town_id, appellant_id, reason, status FROM town_appeals")
    assert forwarded == [{"objection_id": 1, "town_id": t.town.id, "appellant_id": b.member_ids["lisi"],
                          "reason": "村民都看见他只扫了自家门口", "status": "open"}]
    assert "支部“兰溪镇红星村党支部”已用加入码加入“兰溪镇”。\n该支部加入前有 1 件申诉尚无上级决定（#1）" \
        in private_texts(h, t.admin)
    admin_card = card(h, t.admin.id, "tv:au:1")
    assert "申诉 #1" in (admin_card.text or "") and "村民都看见他只扫了自家门口" in (admin_card.text or "")
    assert [d for _, d in h.world.buttons(admin_card)] == ["tv:au:1", "tv:ac:1"]
    assert "您对异议 #1 处理结果的申诉（提出时本支部不属于任何镇）已报送“兰溪镇”，编号为申诉 #1" in private_texts(h, b.lisi)
    assert "已报送“兰溪镇”，编号为申诉" not in private_texts(h, b.zhang)  # not the appellant
    assert "未结申诉 1" in said(await h.say(t.admin, h.private(t.admin), "/town"))

    # Redelivered, the join is refused (already a member) and forwards nothing again; /appeal again is refused.
    calls = await h.feed(next(u for u in reversed(h.fed) if u.message and (u.message.text or "").startswith("/jointown")))
    assert "已经属于“兰溪镇”" in said(calls, b.group.id)
    assert "异议 #1 已经申诉过了" in said(await h.say(b.lisi, h.private(b.lisi), "/appeal 1 再点一次"))
    assert await count(h, "town_appeals") == 1

    # The town decides it as any appeal.
    await h.press(t.admin, admin_card, "tv:au:1")
    await h.say(t.admin, h.private(t.admin), "支部核实无误")
    assert (await rows(h, "SELECT status FROM town_appeals"))[0]["status"] == "upheld"
    assert "兰溪镇维持支部的处理。理由：支部核实无误" in private_texts(h, b.lisi)
    assert "未结申诉 0" in said(await h.say(t.admin, h.private(t.admin), "/town"))


async def test_a_decided_appeal_does_not_follow_the_branch_to_its_next_town(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0), preset="sanmenxia")
    t = await in_town(h, b)
    await objection_upheld_by_branch(h, clock, b)
    await h.say(b.lisi, h.private(b.lisi), "/appeal 1 不服")
    await h.press(t.admin, card(h, t.admin.id, "tv:au:1"), "tv:au:1")
    await h.say(t.admin, h.private(t.admin), "支部核实无误")
    await h.services.towns.detach(t.town.id, as_actor(t.admin), b.branch.id)
    calls = await h.say(b.secretary, b.group, f"/jointown {await code_from(h, t.other)}")
    assert "已加入“另一镇”" in said(calls, b.group.id) and "申诉" not in said(calls, b.group.id)
    assert [(r["town_id"], r["status"]) for r in await rows(h, "SELECT town_id, status FROM town_appeals")] == [
        (t.town.id, "upheld")]
    assert not [m for m in h.world.messages(t.other.id) if "申诉 #" in (m.text or "")]
    assert "异议 #1 已经申诉过了" in said(await h.say(b.lisi, h.private(b.lisi), "/appeal 1 请另一镇复核"))


async def test_an_appeal_made_while_detached_reaches_the_next_town_but_a_closed_one_waits_for_the_appellant(
        h, clock, only_notices):
    from datetime import date, timedelta

    from tests.test_notices import APRIL_1, record, tick

    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0), preset="sanmenxia")
    t = await in_town(h, b)
    first = await record(h, b, "zhang", "green_zone", "10", date(2026, 3, 25), "清扫巷道")
    second = await record(h, b, "lisi", "green_zone", "10", date(2026, 3, 26), "修路灯")
    await tick(h, clock, APRIL_1 + timedelta(minutes=5))
    await h.say(b.lisi, h.private(b.lisi), f"/object {first} 没有扫")
    await h.tap(b.secretary, b.secretary.id, "维持原记录")
    await h.say(b.zhang, h.private(b.zhang), f"/object {second} 路灯没修好")
    await h.tap(b.secretary, b.secretary.id, "维持原记录")
    await h.say(b.lisi, h.private(b.lisi), "/appeal 1 不服")  # to 兰溪镇, closed undecided by the detach
    await h.services.towns.detach(t.town.id, as_actor(t.admin), b.branch.id)
    await h.say(b.zhang, h.private(b.zhang), "/appeal 2 路灯修好了")  # in no town: the branch's appeal
    await h.say(b.secretary, b.group, f"/jointown {await code_from(h, t.other)}")
    appeals = await rows(h, "SELECT id, objection_id, town_id, status FROM town_appeals ORDER BY id")
    assert appeals == [{"id": 1, "objection_id": 1, "town_id": t.town.id, "status": "closed"},
                       {"id": 2, "objection_id": 2, "town_id": t.elsewhere.id, "status": "open"}]
    assert [d for _, d in h.world.buttons(card(h, t.other.id, "tv:au:2"))] == ["tv:au:2", "tv:ac:2"]
    assert "编号为申诉 #2" in private_texts(h, b.zhang)
    # 李四's closed appeal was not forwarded: he was told to appeal again, and may
    assert "申诉已报送另一镇" in said(await h.say(b.lisi, h.private(b.lisi), "/appeal 1 请另一镇复核"))
    assert await count(h, "town_appeals", "status = 'open'") == 2
