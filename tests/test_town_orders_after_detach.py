"""A correction the town ordered (责成更正) stands after the branch leaves the town (session 4's town leftover 4).

Decided: the order stands. The town decided while the branch was its own; a town's decision is final (one live
appeal per objection); the appellant and the member concerned were told it was ordered; leaving is the town's
act and must not undo a decision the branch has yet to carry out. So the detach leaves it 'correction_ordered'
(only undecided appeals close), tells the secretaries it still stands and gives each order its own message with
the button that writes it; once written, the appellant and the town that ordered it are told, as before.

Through the real Application (/appeal, the town's buttons and reason, the write button), the detach through the
towns service and ``tell_detached`` as the operator's command line does it.
"""

from __future__ import annotations

from handlers.town import tell_detached
from tests.conftest import count, rows, said
from tests.test_grading_flow import as_actor
from tests.test_notices import alerts, branch_at, only_notices, private_texts, utc  # noqa: F401
from tests.test_town_review import card, in_town, objection_upheld_by_branch


async def ordered_then_detached(h, clock):
    """李四 appeals objection #1 to 兰溪镇, which orders a correction; then the branch leaves the town."""
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0), preset="sanmenxia")
    t = await in_town(h, b)
    swept = await objection_upheld_by_branch(h, clock, b)
    await h.say(b.lisi, h.private(b.lisi), "/appeal 1 村民都看见他只扫了自家门口")
    await h.press(t.admin, card(h, t.admin.id, "tv:ac:1"), "tv:ac:1")
    await h.say(t.admin, h.private(t.admin), "经走访核实，只打扫了自家门口")
    assert (await rows(h, "SELECT status FROM town_appeals"))[0]["status"] == "correction_ordered"
    detached = await h.services.towns.detach(t.town.id, as_actor(t.admin), b.branch.id)
    return b, t, swept, detached


async def test_an_ordered_correction_stands_after_the_detach_and_the_branch_writes_it(h, clock, only_notices):
    b, t, swept, detached = await ordered_then_detached(h, clock)
    assert detached.appeals == [] and [a.id for a in detached.orders] == [1]
    assert (await rows(h, "SELECT status FROM town_appeals"))[0]["status"] == "correction_ordered"  # not closed
    assert (await rows(h, "SELECT town_id FROM branches WHERE id = ?", b.branch.id))[0]["town_id"] is None

    before = len(h.world.sent(b.secretary.id))
    assert await tell_detached(h.app, detached) >= 1
    told = said(h.world.sent(b.secretary.id)[before:])
    assert "本支部“兰溪镇红星村党支部”已退出“兰溪镇”" in told
    assert "“兰溪镇”已责成更正、支部尚未写入的申诉 #1 仍然有效：退出该镇不撤销镇已作出的决定" in told
    order = card(h, b.secretary.id, "tv:ap:1")  # its own message, with the button that writes it
    assert "申诉 #1（异议 #1）：“兰溪镇”责成支部更正，理由：经走访核实，只打扫了自家门口" in (order.text or "")
    assert [d for _, d in h.world.buttons(order)] == ["tv:ap:1"]
    assert "仍然有效" not in said(h.world.sent(b.zhang.id))  # members are not the ones to write it

    # The button carries no authority: a member and the old town's administrator are refused.
    for person in (b.zhang, t.admin):
        assert alerts(await h.press(person, order, "tv:ap:1"))
    assert await count(h, "ledger", "reverses_id = ?", swept) == 0

    # The secretary writes it: the reversing row names the appeal; the appellant and the old town are told.
    await h.press(b.secretary, order, "tv:ap:1")
    reversal = (await rows(h, "SELECT * FROM ledger WHERE reverses_id = ?", swept))[0]
    assert reversal["reference"] == "appeal:1" and reversal["source"] == "correction"
    decided = (await rows(h, "SELECT status, correction_id FROM town_appeals"))[0]
    assert decided == {"status": "corrected", "correction_id": reversal["id"]}
    assert "支部已按兰溪镇的决定更正" in private_texts(h, b.lisi)
    assert f"已按申诉 #1 的决定写入更正（记录 #{reversal['id']}）" in private_texts(h, t.admin)

    # The decision was final: the objection is not appealed again; a second press writes nothing.
    assert "异议 #1 已经申诉过了" in said(await h.say(b.lisi, h.private(b.lisi), "/appeal 1 再申诉"))
    ledger_rows = await count(h, "ledger")
    assert "申诉 #1 的更正已经写入" in alerts(await h.press(b.secretary, order, "tv:ap:1"))
    assert await count(h, "ledger") == ledger_rows and await count(h, "town_appeals") == 1


async def test_a_standing_order_is_not_another_towns_to_count(h, clock, only_notices):
    from tests.test_town import code_from

    b, t, _, detached = await ordered_then_detached(h, clock)
    await tell_detached(h.app, detached)
    await h.say(b.secretary, b.group, f"/jointown {await code_from(h, t.other)}")  # 另一镇
    # the order is 兰溪镇's, written for 兰溪镇: the next town neither counts it nor decides it
    assert sum(f.appeals for f in (await h.services.towns.dashboard(t.elsewhere.id, t.other.id)).branches) == 0
    assert "未结申诉 0" in said(await h.say(t.other, h.private(t.other), "/town"))
    assert await count(h, "town_appeals") == 1  # nothing forwarded: the objection's appeal was decided
    await h.press(b.secretary, card(h, b.secretary.id, "tv:ap:1"), "tv:ap:1")
    assert (await rows(h, "SELECT status FROM town_appeals"))[0]["status"] == "corrected"
    assert "已按申诉 #1 的决定写入更正" in private_texts(h, t.admin)
    assert "已按申诉 #1 的决定写入更正" not in private_texts(h, t.other)
