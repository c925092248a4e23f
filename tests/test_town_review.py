"""Appeals (申诉) that reach the town: the town decides (uphold / order a correction, with a reason), the
branch writes the correction (a row whose reference names the appeal), everyone concerned is told.

Through the real handlers (bot.harness, FixedClock, engine.tick for the notice), asserting on the Bot API
calls and on the database. The town is made with the towns service and joined in storage directly: the
join-code flow is the town-core feature's and not under test here.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

from bot.domain.grading import GradeResult
from storage import grading as grading_repo
from storage import towns as towns_repo
from tests.conftest import TestHarness, count, rows, said
from tests.test_notices import APRIL_1, alerts, branch_at, only_notices, private_texts, record, tick, utc  # noqa: F401

TOWN_ADMIN, OTHER_ADMIN = 9001, 9003


async def in_town(h: TestHarness, b: SimpleNamespace) -> SimpleNamespace:
    """兰溪镇 with one administrator, the branch joined to it; and 另一镇 with its own administrator."""
    admin = h.user(TOWN_ADMIN, "镇组织委员", username="town_admin")
    other = h.user(OTHER_ADMIN, "别镇管理员", username="other_admin")
    town = await h.services.towns.create("兰溪镇", admin_id=admin.id, admin_name=admin.full_name, created_by=1)
    elsewhere = await h.services.towns.create("另一镇", admin_id=other.id, admin_name=other.full_name, created_by=1)
    async with h.db.transaction() as conn:
        assert await towns_repo.join(conn, b.branch.id, town.id)
    for person in (admin, other):
        await h.say(person, h.private(person), "/start")
    b.branch = await h.services.branches.by_id(b.branch.id)
    return SimpleNamespace(town=town, elsewhere=elsewhere, admin=admin, other=other)


async def objection_upheld_by_branch(h, clock, b) -> int:
    """李四 objects to 张三's entry in March's notice; the secretary keeps it. Returns the entry's id."""
    swept = await record(h, b, "zhang", "green_zone", "10", date(2026, 3, 25), "负责清扫村里的巷道")
    await tick(h, clock, APRIL_1 + timedelta(minutes=5))
    await h.say(b.lisi, h.private(b.lisi), f"/object {swept} 他只扫了自家门口")
    await h.tap(b.secretary, b.secretary.id, "维持原记录")
    assert (await rows(h, "SELECT status FROM objections"))[0]["status"] == "upheld"
    return swept


async def open_appeals(h: TestHarness, t: SimpleNamespace) -> int:
    """The town dashboard's open appeals, over its branches."""
    return sum(f.appeals for f in (await h.services.towns.dashboard(t.town.id, t.admin.id)).branches)


def card(h: TestHarness, user_id: int, prefix: str):
    for message in reversed(h.world.messages(user_id)):
        if any(data.startswith(prefix) for _, data in h.world.buttons(message)):
            return message
    raise LookupError(prefix)


async def test_appeal_reaches_the_town_which_orders_a_correction_the_branch_writes(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0), preset="sanmenxia")
    t = await in_town(h, b)
    swept = await objection_upheld_by_branch(h, clock, b)

    # 李四 appeals: the branch's record as before, plus the town's appeal and its card to the administrator.
    calls = await h.say(b.lisi, h.private(b.lisi), "/appeal 1 村民都看见他只扫了自家门口")
    assert "已记录您对异议 #1 处理结果的申诉" in said(calls) and "申诉已报送兰溪镇" in said(calls)
    appeal = (await rows(h, "SELECT * FROM town_appeals"))[0]
    assert appeal["objection_id"] == 1 and appeal["town_id"] == t.town.id and appeal["status"] == "open"
    assert appeal["appellant_id"] == b.member_ids["lisi"] and appeal["reason"] == "村民都看见他只扫了自家门口"
    admin_card = card(h, t.admin.id, "tv:")
    assert "申诉 #1" in (admin_card.text or "") and "支部的处理：维持原记录" in (admin_card.text or "")
    assert [d for _, d in h.world.buttons(admin_card)] == ["tv:au:1", "tv:ac:1"]
    assert not [m for m in h.world.messages(t.other.id) if "申诉 #1" in (m.text or "")]  # another town sees nothing
    assert "申诉：李四 对异议 #1" in private_texts(h, b.secretary)  # the branch is told as before

    # The buttons carry no authority: the branch's secretary, a member, another town's administrator.
    for person in (b.secretary, b.zhang, t.other):
        calls = await h.press(person, admin_card, "tv:ac:1")
        assert "只有该支部所属镇（党总支）的管理员可以这样做" in alerts(calls)
    assert (await rows(h, "SELECT status FROM town_appeals"))[0]["status"] == "open"

    # The administrator orders a correction: asked for a reason (an empty one is asked again).
    calls = await h.press(t.admin, admin_card, "tv:ac:1")
    assert "责成支部更正申诉 #1。请写明理由" in said(calls, t.admin.id)
    calls = await h.say(t.admin, h.private(t.admin), "   ")
    assert "请写明理由" in said(calls, t.admin.id)
    calls = await h.say(t.admin, h.private(t.admin), "经走访核实，只打扫了自家门口")
    decided = (await rows(h, "SELECT * FROM town_appeals"))[0]
    assert decided["status"] == "correction_ordered" and decided["decided_by"] == t.admin.id
    assert decided["target_ledger_id"] == swept and decided["correction_kind"] == "reverse"
    assert decided["decision_reason"] == "经走访核实，只打扫了自家门口"
    assert await count(h, "ledger", "reverses_id = ?", swept) == 0  # the town writes nothing in the ledger
    assert await open_appeals(h, t) == 1  # decided, but the ordered correction is not written yet
    assert "申诉 #1 已作出决定" in said(calls, t.admin.id)
    assert "兰溪镇责成支部更正（镇组织委员）" in (h.world.message_by_id(t.admin.id, admin_card.message_id).text or "")
    assert "您的申诉 #1（异议 #1）兰溪镇已作出决定" in private_texts(h, b.lisi)
    assert "兰溪镇责成支部更正：撤销记录 #" in private_texts(h, b.zhang)  # the member whose points

    # Deciding again: a clear message, nothing changes.
    calls = await h.press(t.admin, admin_card, "tv:au:1")
    assert "申诉 #1 已经作出决定（责成更正）" in alerts(calls)

    # The branch writes it: the button is the secretary's; a member and the recorder are refused.
    apply_card = card(h, b.secretary.id, "tv:ap:")
    assert "写入更正" in str(h.world.buttons(apply_card))
    for person in (b.zhang, b.recorder, t.admin):
        calls = await h.press(person, apply_card, "tv:ap:1")
        assert alerts(calls)
    assert await count(h, "ledger", "reverses_id = ?", swept) == 0
    calls = await h.press(b.secretary, apply_card, "tv:ap:1")
    assert "已按申诉 #1 的决定写入更正" in "\n".join(str(c.params.get("text")) for c in calls if c.method == "answerCallbackQuery")
    reversal = (await rows(h, "SELECT * FROM ledger WHERE reverses_id = ?", swept))[0]
    assert reversal["reference"] == "appeal:1" and reversal["source"] == "correction"
    assert reversal["reason"] == "申诉 #1：经走访核实，只打扫了自家门口"  # the branch's language, from the catalog
    assert Decimal(reversal["value"]) == Decimal(-10) and reversal["actor_id"] == b.member_ids["secretary"]
    corrected = (await rows(h, "SELECT * FROM town_appeals"))[0]
    assert corrected["status"] == "corrected" and corrected["correction_id"] == reversal["id"]
    assert corrected["applied_by"] == b.member_ids["secretary"]
    assert "支部已按兰溪镇的决定更正" in private_texts(h, b.lisi)
    assert f"已按申诉 #1 的决定写入更正（记录 #{reversal['id']}）" in private_texts(h, t.admin)
    assert await open_appeals(h, t) == 0

    # A double tap writes nothing more.
    ledger_rows = await count(h, "ledger")
    calls = await h.press(b.secretary, apply_card, "tv:ap:1")
    assert "申诉 #1 的更正已经写入" in alerts(calls)
    assert await count(h, "ledger") == ledger_rows


async def test_the_town_upholds_and_a_withdrawal_is_reinstated_by_the_branch(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0), preset="sanmenxia")
    t = await in_town(h, b)
    first = await record(h, b, "zhang", "green_zone", "10", date(2026, 3, 25), "清扫巷道")
    second = await record(h, b, "lisi", "green_zone", "10", date(2026, 3, 26), "修路灯")
    await tick(h, clock, APRIL_1 + timedelta(minutes=5))
    await h.say(b.lisi, h.private(b.lisi), f"/object {first} 没有扫")
    await h.tap(b.secretary, b.secretary.id, "维持原记录")
    await h.say(b.zhang, h.private(b.zhang), f"/object {second} 路灯没修好")
    await h.tap(b.secretary, b.secretary.id, "撤销该分")
    assert await count(h, "ledger", "reverses_id = ?", second) == 1

    # Objection 1 (kept by the branch): appealed by 李四, upheld by the town, with a reason.
    await h.say(b.lisi, h.private(b.lisi), "/appeal 1 不服")
    calls = await h.tap(t.admin, t.admin.id, "维持支部处理")
    assert "维持支部对申诉 #1 的处理" in said(calls, t.admin.id)
    await h.say(t.admin, h.private(t.admin), "支部核实无误")
    upheld = (await rows(h, "SELECT * FROM town_appeals WHERE objection_id = 1"))[0]
    assert upheld["status"] == "upheld" and upheld["target_ledger_id"] is None
    assert "兰溪镇维持支部的处理。理由：支部核实无误" in private_texts(h, b.lisi)
    assert "兰溪镇维持支部的处理" in private_texts(h, b.zhang)
    assert "兰溪镇对 兰溪镇红星村党支部 的申诉 #1 作出了决定" in private_texts(h, b.secretary)
    assert not [m for m in h.world.messages(b.secretary.id) if any(d == "tv:ap:1" for _, d in h.world.buttons(m))]

    # Objection 2 (withdrawn by the branch): 李四 appeals; the town restores the points; the branch writes
    # a reinstating row (a reversed reversal would not count again).
    await h.say(b.lisi, h.private(b.lisi), "/appeal 2 路灯修好了，有照片")
    admin_card = card(h, t.admin.id, "tv:ac:2")
    await h.press(t.admin, admin_card, "tv:ac:2")
    await h.say(t.admin, h.private(t.admin), "照片证明已修好")
    ordered = (await rows(h, "SELECT * FROM town_appeals WHERE objection_id = 2"))[0]
    assert ordered["correction_kind"] == "reinstate" and ordered["target_ledger_id"] == second
    # 李四's own points: he may not write the correction though he is... only the secretary and the deputy may.
    await h.say(b.secretary, b.group, f"/role @{b.lisi.username} deputy")
    apply_card = card(h, b.secretary.id, "tv:ap:2")
    calls = await h.press(b.lisi, apply_card, "tv:ap:2")
    assert "涉及您本人的积分" in alerts(calls)
    await h.press(b.secretary, apply_card, "tv:ap:2")
    restored = (await rows(h, "SELECT * FROM ledger WHERE reference = 'appeal:2'"))[0]
    assert restored["reverses_id"] is None and Decimal(restored["value"]) == Decimal(10)
    assert restored["member_id"] == b.member_ids["lisi"] and restored["occurred_on"] == "2026-03-26"
    standing = await h.services.points.standing(b.branch, await h.services.roster.member_of_id(b.member_ids["lisi"]))
    assert standing.year.figure == Decimal(110)  # 三门峡: base 100 + the restored 10


async def test_a_dispute_appeal_picks_the_entry_and_a_locked_year_refuses_the_correction(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
    t = await in_town(h, b)
    absent = await record(h, b, "zhang", "study", "-5", date(2026, 3, 10), "缺席学习", event="absent")
    await tick(h, clock, APRIL_1 + timedelta(minutes=5))
    await h.tap(b.zhang, b.zhang.id, "有异议")
    await h.say(b.zhang, h.private(b.zhang), "那天我请过假")
    await h.tap(b.secretary, b.secretary.id, "维持")
    assert (await rows(h, "SELECT kind, status FROM objections"))[0] == {"kind": "dispute", "status": "upheld"}
    await h.say(b.zhang, h.private(b.zhang), "/appeal 1 有请假条")

    # Ordering a correction of a dispute: the administrator picks which of 张三's entries.
    calls = await h.tap(t.admin, t.admin.id, "责成更正")
    assert "请选择要更正的张三的记录" in said(calls, t.admin.id)
    picker = card(h, t.admin.id, "tv:ae:")
    assert [d for _, d in h.world.buttons(picker)][0] == f"tv:ae:1:{absent}"
    calls = await h.press(t.other, picker, f"tv:ae:1:{absent}")  # another town's administrator
    assert "只有该支部所属镇" in alerts(calls)
    await h.press(t.admin, picker, f"tv:ae:1:{absent}")
    await h.say(t.admin, h.private(t.admin), "请假条属实")
    assert (await rows(h, "SELECT target_ledger_id FROM town_appeals"))[0]["target_ledger_id"] == absent

    # The year is finalised before the branch writes it: refused with the year's message, nothing written.
    async with h.db.transaction() as conn:  # the lock as finalisation writes it (the year end is not under test)
        notice = (await rows(h, "SELECT id FROM notices"))[0]["id"]
        stored = await grading_repo.create_round(
            conn, branch_id=b.branch.id, year=2026, rulebook_code="xishui", tie_choice=[], notice_id=notice,
            publicity_days=7, result=GradeResult(year=2026, rulebook_code="xishui", lines=[], distribution={}),
            upto=absent, confirmed_by=b.member_ids["secretary"], at=utc(2027, 1, 20))
        assert stored is not None
        assert await grading_repo.lock(conn, b.branch.id, 2026, stored.id, utc(2027, 1, 20))
    calls = await h.tap(b.secretary, b.secretary.id, "写入更正")
    assert "2026年度积分已定级锁定" in alerts(calls)
    assert await count(h, "ledger", "reverses_id = ?", absent) == 0
    assert (await rows(h, "SELECT status FROM town_appeals"))[0]["status"] == "correction_ordered"


async def test_a_branch_without_a_town_appeals_as_before(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0), preset="sanmenxia")
    admin = h.user(TOWN_ADMIN, "镇组织委员")
    await h.services.towns.create("兰溪镇", admin_id=admin.id, created_by=1)  # a town the branch did not join
    await objection_upheld_by_branch(h, clock, b)
    calls = await h.say(b.lisi, h.private(b.lisi), "/appeal 1 不服")
    assert "已记录您对异议 #1 处理结果的申诉" in said(calls) and "报送" not in said(calls)
    assert await count(h, "town_appeals") == 0
    assert (await rows(h, "SELECT appealed_by FROM objections"))[0]["appealed_by"] == b.member_ids["lisi"]
    assert "申诉：李四 对异议 #1" in private_texts(h, b.secretary)
    assert not h.world.sent(admin.id)


async def test_the_dashboard_counts_the_open_appeals_only(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0), preset="sanmenxia")
    t = await in_town(h, b)
    await objection_upheld_by_branch(h, clock, b)
    assert await open_appeals(h, t) == 0
    await h.say(b.lisi, h.private(b.lisi), "/appeal 1 不服")
    assert await open_appeals(h, t) == 1
    assert "未结申诉 1" in said(await h.say(t.admin, h.private(t.admin), "/town"))

    # Upheld by the town: decided, no longer open (the objection keeps its appealed_at).
    await h.tap(t.admin, t.admin.id, "维持支部处理")
    await h.say(t.admin, h.private(t.admin), "支部核实无误")
    assert (await rows(h, "SELECT appealed_at FROM objections"))[0]["appealed_at"] is not None
    assert await open_appeals(h, t) == 0
    assert "未结申诉 0" in said(await h.say(t.admin, h.private(t.admin), "/town"))


async def test_a_branch_leaving_its_town_closes_its_open_appeals(h, clock, only_notices):
    from handlers.town import tell_detached
    from tests.test_grading_flow import as_actor

    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0), preset="sanmenxia")
    t = await in_town(h, b)
    await objection_upheld_by_branch(h, clock, b)
    await h.say(b.lisi, h.private(b.lisi), "/appeal 1 不服")
    admin_card = card(h, t.admin.id, "tv:au:1")

    detached = await h.services.towns.detach(t.town.id, as_actor(t.admin), b.branch.id)
    assert [a.id for a in detached.appeals] == [1] and detached.reviews == []
    closed = (await rows(h, "SELECT * FROM town_appeals"))[0]
    assert closed["status"] == "closed" and closed["decided_by"] is None and closed["decided_at"] is not None
    assert await tell_detached(h.app, detached) >= 1
    assert "尚待兰溪镇决定的申诉 #1 已关闭" in private_texts(h, b.secretary)
    shown = h.world.message_by_id(t.admin.id, admin_card.message_id)
    assert "申诉未经镇决定即关闭" in (shown.text or "") and not h.world.buttons(shown)
    calls = await h.press(t.admin, admin_card, "tv:au:1")
    assert "申诉 #1 已关闭（支部已退出该镇）" in alerts(calls)
    assert (await rows(h, "SELECT status FROM town_appeals"))[0]["status"] == "closed"


async def test_appeals_nobody_could_decide_wait_in_the_town_queue(h, clock, only_notices, monkeypatch):
    from bot.services import town_review as town_review_service

    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0), preset="sanmenxia")
    t = await in_town(h, b)
    first = await record(h, b, "zhang", "green_zone", "10", date(2026, 3, 25), "清扫巷道")
    second = await record(h, b, "lisi", "green_zone", "10", date(2026, 3, 26), "修路灯")
    await tick(h, clock, APRIL_1 + timedelta(minutes=5))
    await h.say(b.lisi, h.private(b.lisi), f"/object {first} 没有扫")
    await h.tap(b.secretary, b.secretary.id, "维持原记录")
    await h.say(b.zhang, h.private(b.zhang), f"/object {second} 路灯没修好")
    await h.tap(b.secretary, b.secretary.id, "维持原记录")

    # The only administrator cannot be reached when the appeals come: no card reaches anyone.
    h.world.block(t.admin.id)
    await h.say(b.lisi, h.private(b.lisi), "/appeal 1 不服")
    await h.say(b.zhang, h.private(b.zhang), "/appeal 2 路灯修好了")
    h.world.unblock(t.admin.id)
    assert not [m for m in h.world.messages(t.admin.id) if "申诉 #" in (m.text or "")]

    # An administrator added later finds both in /townqueue, a page at a time, with the decision buttons.
    late = h.user(9005, "新管理员")
    await h.services.towns.add_admin(t.town.id, None, late.id, "新管理员")
    monkeypatch.setattr(town_review_service, "QUEUE_PAGE", 1)
    calls = await h.say(late, h.private(late), "/townqueue")
    assert "等待您决定的事项：申诉 2 件，年度审核 0 件" in said(calls, late.id)
    first_card = card(h, late.id, "tv:au:1")
    assert [d for _, d in h.world.buttons(first_card)] == ["tv:au:1", "tv:ac:1"]
    assert "申诉 #2" not in said(calls, late.id) and "还有更多待决定事项" in said(calls, late.id)
    calls = await h.tap(late, late.id, "下一批")
    assert "申诉 #2" in said(calls, late.id) and "还有更多" not in said(calls, late.id)
    assert card(h, late.id, "tv:au:2")

    # Decided from the queue's card: every remembered copy shows the decision; the queue shrinks.
    await h.press(late, first_card, "tv:au:1")
    await h.say(late, h.private(late), "支部核实无误")
    assert (await rows(h, "SELECT status FROM town_appeals WHERE id = 1"))[0]["status"] == "upheld"
    shown = h.world.message_by_id(late.id, first_card.message_id)
    assert "兰溪镇维持支部的处理" in (shown.text or "") and not h.world.buttons(shown)
    calls = await h.say(t.admin, h.private(t.admin), "/townqueue")
    assert "申诉 1 件" in said(calls, t.admin.id) and "申诉 #2" in said(calls, t.admin.id)

    # The dashboard links the queue; someone who administers no town is refused.
    await h.say(t.admin, h.private(t.admin), "/town")
    calls = await h.tap(t.admin, t.admin.id, "待镇决定事项")
    assert "申诉 #2" in said(calls, t.admin.id)
    calls = await h.say(b.secretary, h.private(b.secretary), "/townqueue")
    assert "只有该支部所属镇（党总支）的管理员可以这样做" in said(calls, b.secretary.id)
    message, _ = h.find_button(t.admin.id, "待镇决定事项")
    calls = await h.press(b.secretary, message, "tv:q:a:0")
    assert "只有该支部所属镇" in alerts(calls)


async def test_a_correction_whose_entry_was_reversed_by_something_else_is_refused_and_the_town_told(h, clock, only_notices):
    from storage import ledger as ledger_repo

    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0), preset="sanmenxia")
    t = await in_town(h, b)
    swept = await objection_upheld_by_branch(h, clock, b)
    await h.say(b.lisi, h.private(b.lisi), "/appeal 1 村民都看见他只扫了自家门口")
    await h.press(t.admin, card(h, t.admin.id, "tv:ac:1"), "tv:ac:1")
    await h.say(t.admin, h.private(t.admin), "经走访核实")
    assert (await rows(h, "SELECT status FROM town_appeals"))[0]["status"] == "correction_ordered"

    # Before the branch writes it, the entry is reversed by something that is not this appeal's correction.
    async with h.db.transaction() as conn:
        entry = await ledger_repo.by_id(conn, swept)
        assert entry is not None
        other = await ledger_repo.reverse(conn, entry, reference="objection:9", actor_id=b.member_ids["secretary"],
                                          reason="另行撤销")
        assert other is not None
    ledger_rows = await count(h, "ledger")

    # The secretary is refused with the reason; that row is not recorded as the appeal's correction.
    apply_card = card(h, b.secretary.id, "tv:ap:")
    calls = await h.press(b.secretary, apply_card, "tv:ap:1")
    assert f"已被记录 #{other.id} 撤销（不是按本申诉写入的），本申诉的更正无法记入" in alerts(calls)
    stored = (await rows(h, "SELECT * FROM town_appeals"))[0]
    assert stored["status"] == "correction_ordered" and stored["correction_id"] is None and stored["applied_by"] is None
    assert await count(h, "ledger") == ledger_rows
    told = f"兰溪镇红星村党支部 无法写入申诉 #1 责成的更正：记录 #{swept} 已被记录 #{other.id} 撤销"
    assert told in private_texts(h, t.admin)

    # Pressed again: refused again; the town is not told twice.
    calls = await h.press(b.secretary, apply_card, "tv:ap:1")
    assert "本申诉的更正无法记入" in alerts(calls)
    assert private_texts(h, t.admin).count(told) == 1
