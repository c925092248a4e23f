"""An appeal (申诉) closed because its branch left the town can be made again (migration 0023).

The rule: an objection has at most one live appeal (open or decided — the town's decision is final), enforced
by the partial unique index ``town_appeals_live``; appeals closed by a detach are history, every row kept. The
detach clears the objection's appealed flag in its transaction, so /appeal works again: to the town the branch
is in by then (a new row), or, without a town, as a branch's appeal (the flag, the secretary told).

Through the real handlers (bot.harness); the detach through the towns service and ``tell_detached`` as the
operator's command line does it; joining again with a real /towncode and /jointown.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest

from handlers.town import tell_detached
from storage import town_review as town_repo
from storage.errors import INTEGRITY_ERRORS
from tests.conftest import TestHarness, count, rows, said
from tests.test_grading_flow import as_actor
from tests.test_notices import alerts, branch_at, only_notices, private_texts, utc  # noqa: F401
from tests.test_town import code_from
from tests.test_town_review import card, in_town, objection_upheld_by_branch, open_appeals


async def appealed_then_detached(h: TestHarness, clock):
    """李四's appeal of objection #1 reaches 兰溪镇 (appeal #1), then the branch leaves the town."""
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0), preset="sanmenxia")
    t = await in_town(h, b)
    await objection_upheld_by_branch(h, clock, b)
    await h.say(b.lisi, h.private(b.lisi), "/appeal 1 不服")
    first_card = card(h, t.admin.id, "tv:au:1")
    detached = await h.services.towns.detach(t.town.id, as_actor(t.admin), b.branch.id)
    assert [a.id for a in detached.appeals] == [1]
    assert await tell_detached(h.app, detached) >= 1
    return b, t, first_card


async def test_a_closed_appeal_is_made_again_after_joining_the_town_again(h, clock, only_notices):
    b, t, first_card = await appealed_then_detached(h, clock)

    # Closed, kept, and the objection may be appealed again; the appellant and the secretary are told how.
    closed = (await rows(h, "SELECT * FROM town_appeals"))[0]
    assert closed["status"] == "closed" and closed["reason"] == "不服" and closed["appellant_id"] == b.member_ids["lisi"]
    objection = (await rows(h, "SELECT appealed_by, appealed_at, appeal_reason FROM objections"))[0]
    assert objection == {"appealed_by": None, "appealed_at": None, "appeal_reason": None}
    assert "您对异议 #1 的申诉 #1 未经镇决定即关闭" in private_texts(h, b.lisi)
    assert "/appeal 1 申诉理由" in private_texts(h, b.lisi)
    assert "申诉人如仍不服，可以重新申诉" in private_texts(h, b.secretary)
    assert "未经镇决定即关闭" not in private_texts(h, b.zhang)  # not the appellant: not told

    # The branch joins the town again (a code from the administrator, /jointown in the group).
    code = await code_from(h, t.admin)
    assert "已加入" in said(await h.say(b.secretary, b.group, f"/jointown {code}"), b.group.id)

    # 李四 appeals again: a new appeal (#2) next to the closed one; the administrator gets its card.
    calls = await h.say(b.lisi, h.private(b.lisi), "/appeal 1 镇里还没看过就关了，再次申诉")
    assert "已记录您对异议 #1 处理结果的申诉" in said(calls) and "申诉已报送兰溪镇" in said(calls)
    history = await rows(h, "SELECT id, status, town_id, reason FROM town_appeals WHERE objection_id = 1 ORDER BY id")
    assert history == [{"id": 1, "status": "closed", "town_id": t.town.id, "reason": "不服"},
                       {"id": 2, "status": "open", "town_id": t.town.id, "reason": "镇里还没看过就关了，再次申诉"}]
    second_card = card(h, t.admin.id, "tv:au:2")
    assert [d for _, d in h.world.buttons(second_card)] == ["tv:au:2", "tv:ac:2"]
    assert await open_appeals(h, t) == 1
    assert "申诉：李四 对异议 #1" in private_texts(h, b.secretary)

    # A double tap and a redelivered update: refused, still one open appeal.
    calls = await h.say(b.lisi, h.private(b.lisi), "/appeal 1 再点一次")
    assert "异议 #1 已经申诉过了" in said(calls)
    calls = await h.feed(h.fed[-1])
    assert "异议 #1 已经申诉过了" in said(calls)
    assert await count(h, "town_appeals", "objection_id = 1 AND status = 'open'") == 1
    assert await count(h, "town_appeals") == 2

    # The old card stays closed; the new one is decided as usual.
    calls = await h.press(t.admin, first_card, "tv:au:1")
    assert "申诉 #1 已关闭（支部已退出该镇）" in alerts(calls)
    await h.press(t.admin, second_card, "tv:au:2")
    await h.say(t.admin, h.private(t.admin), "支部核实无误")
    assert [r["status"] for r in await rows(h, "SELECT status FROM town_appeals ORDER BY id")] == ["closed", "upheld"]
    assert "兰溪镇维持支部的处理。理由：支部核实无误" in private_texts(h, b.lisi)

    # The town's decision is final: no third appeal.
    calls = await h.say(b.lisi, h.private(b.lisi), "/appeal 1 还是不服")
    assert "异议 #1 已经申诉过了" in said(calls)
    assert await count(h, "town_appeals") == 2


async def test_a_closed_appeal_goes_to_the_next_town_or_to_the_branch_alone(h, clock, only_notices):
    b, t, _ = await appealed_then_detached(h, clock)
    admin_messages = len(h.world.messages(t.admin.id))

    # In no town: the appeal is the branch's as before (the flag, the secretary told), nothing for the old town.
    calls = await h.say(b.zhang, h.private(b.zhang), "/appeal 1 我确实扫了")  # the member concerned, this time
    assert "已记录您对异议 #1 处理结果的申诉" in said(calls) and "报送" not in said(calls)
    assert (await rows(h, "SELECT appealed_by FROM objections"))[0]["appealed_by"] == b.member_ids["zhang"]
    assert await count(h, "town_appeals") == 1
    assert "申诉：张三 对异议 #1" in private_texts(h, b.secretary)
    assert len(h.world.messages(t.admin.id)) == admin_messages


async def test_a_closed_appeal_reaches_the_town_the_branch_joined_next(h, clock, only_notices):
    b, t, _ = await appealed_then_detached(h, clock)
    admin_messages = len(h.world.messages(t.admin.id))
    code = await code_from(h, t.other)  # 另一镇's administrator
    await h.say(b.secretary, b.group, f"/jointown {code}")

    calls = await h.say(b.lisi, h.private(b.lisi), "/appeal 1 请另一镇复核")
    assert "申诉已报送另一镇" in said(calls)
    second = (await rows(h, "SELECT * FROM town_appeals WHERE id = 2"))[0]
    assert second["town_id"] == t.elsewhere.id and second["status"] == "open" and second["objection_id"] == 1
    assert [d for _, d in h.world.buttons(card(h, t.other.id, "tv:au:2"))] == ["tv:au:2", "tv:ac:2"]
    assert len(h.world.messages(t.admin.id)) == admin_messages  # the town it left hears nothing of it

async def test_concurrent_appeals_make_one_open_appeal_and_the_database_refuses_a_second(h, clock, only_notices):
    b, t, _ = await appealed_then_detached(h, clock)
    code = await code_from(h, t.admin)
    await h.say(b.secretary, b.group, f"/jointown {code}")

    # Two /appeal at once (李四 and 张三 both may appeal objection #1): one wins, the other is refused.
    first, second = await asyncio.gather(h.say(b.lisi, h.private(b.lisi), "/appeal 1 一"),
                                         h.say(b.zhang, h.private(b.zhang), "/appeal 1 二"))
    replies = [said(first + second, person.id) for person in (b.lisi, b.zhang)]  # the calls interleave
    assert sorted("已记录您对异议 #1 处理结果的申诉" in r for r in replies) == [False, True]
    assert sorted("异议 #1 已经申诉过了" in r for r in replies) == [False, True]
    assert await count(h, "town_appeals", "status = 'open'") == 1 and await count(h, "town_appeals") == 2

    # Beneath the services: a second live appeal of the objection is not written (ON CONFLICT), and a plain
    # insert is refused by the partial unique index.
    async with h.db.transaction() as conn:
        assert await town_repo.add_appeal(conn, objection_id=1, branch_id=b.branch.id, town_id=t.town.id,
                                          appellant_id=b.member_ids["lisi"], reason="again", at=clock.now()) is None
    with pytest.raises(INTEGRITY_ERRORS):
        async with h.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO town_appeals (objection_id, branch_id, town_id, appellant_id, reason, status, created_at)"
                " VALUES (1, ?, ?, ?, 'x', 'upheld', '2026-04-02T00:00:00+00:00')",
                (b.branch.id, t.town.id, b.member_ids["lisi"]))
    assert await count(h, "town_appeals") == 2


async def test_migration_0023_keeps_every_appeal_and_reopens_the_objections_a_detach_closed(h, clock, only_notices,
                                                                                           backend):
    """0023 rebuilds town_appeals (objection_id no longer UNIQUE; one live appeal per objection): run again
    on a database as an earlier detach left it — an appeal closed, its objection still flagged — every row
    keeps its id, the next id follows (PostgreSQL's sequence moved past the copied ids), the stuck objection
    may be appealed again and the objection with a live appeal keeps its flag."""
    from storage.db import migrations
    from storage.dialect import statements
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
    await h.say(b.lisi, h.private(b.lisi), "/appeal 1 不服")
    await h.services.towns.detach(t.town.id, as_actor(t.admin), b.branch.id)
    await h.say(b.secretary, b.group, f"/jointown {await code_from(h, t.admin)}")
    await h.say(b.zhang, h.private(b.zhang), "/appeal 2 路灯修好了")
    async with h.db.transaction() as conn:  # objection 1 as a detach before 0023 left it: still flagged
        await conn.execute("UPDATE objections SET appealed_by = ?, appealed_at = '2026-04-01T03:00:00+00:00',"
                           " appeal_reason = '不服' WHERE id = 1", (b.member_ids["lisi"],))
    before = await rows(h, "SELECT * FROM town_appeals ORDER BY id")
    assert [(r["objection_id"], r["status"]) for r in before] == [(1, "closed"), (2, "open")]
    assert "异议 #1 已经申诉过了" in said(await h.say(b.lisi, h.private(b.lisi), "/appeal 1 再次申诉"))

    name, sql = next((n, s) for _, n, s in migrations() if n.startswith("0023_"))
    if backend == "postgres":
        from storage.dialect import translate_migration
        from storage.postgres import migration_twin

        sql = translate_migration(name, sql, migration_twin(name))
    for statement in statements(sql):  # one by one, each committed (the runner does it in one transaction)
        await h.db.conn.execute(statement)
    await h.db.conn.commit()

    assert await rows(h, "SELECT * FROM town_appeals ORDER BY id") == before
    flags = await rows(h, "SELECT id, appealed_by FROM objections ORDER BY id")
    assert flags == [{"id": 1, "appealed_by": None}, {"id": 2, "appealed_by": b.member_ids["zhang"]}]
    calls = await h.say(b.lisi, h.private(b.lisi), "/appeal 1 再次申诉")
    assert "申诉已报送兰溪镇" in said(calls)
    assert [(r["id"], r["objection_id"], r["status"]) for r in await rows(h, "SELECT * FROM town_appeals ORDER BY id")] == [
        (1, 1, "closed"), (2, 2, "open"), (3, 1, "open")]
    assert "异议 #2 已经申诉过了" in said(await h.say(b.zhang, h.private(b.zhang), "/appeal 2 再点一次"))
    assert await count(h, "town_appeals") == 3
