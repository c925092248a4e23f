"""/town's unconfirmed figure (未签字确认) is the named period's notice only, on a line that names it; it added
the year's notices under one month's name (session 4's town leftover 2).

Through the real Application (the scheduler's notices, the confirm button, /town and its drill-down).
"""

from __future__ import annotations

from datetime import datetime

from tests.conftest import rows, said, setup_branch
from tests.test_town import joined, make_town
from tests.test_town_digest_entries import SH, notices_until


async def test_unconfirmed_is_the_named_periods_notice_only(h, clock):
    b = await setup_branch(h)
    t = await make_town(h)
    await joined(h, b, t)
    await notices_until(h, clock, 2026, 4)  # March's notice: nobody confirms it
    await notices_until(h, clock, 2026, 5)  # April's notice: 张三 confirms his line
    await h.tap(b.zhang, b.zhang.id, "✅ 确认无误")
    pending = await rows(h, "SELECT n.period_key, count(*) AS n FROM notice_members nm JOIN notices n ON n.id = nm.notice_id"
                            " WHERE nm.status = 'pending' GROUP BY n.period_key ORDER BY n.period_key")
    assert pending == [{"period_key": "2026-03", "n": 4}, {"period_key": "2026-04", "n": 3}]

    view = said(await h.say(t.admin, h.private(t.admin), "/town"))
    assert "2026年4月公示：" in view
    assert "2026年4月公示未签字确认 3 · 未决异议 0 · 未结申诉 0" in view  # was "未签字确认 7" (March's 4 + April's 3)
    assert "本期公示未签字确认 3" in view  # the totals line: this period's notices, as "本期公示未发" beside it
    assert "未签字确认 7" not in view
    drill = said(await h.tap(t.admin, t.admin.id, "1. 兰溪镇红星村党支部"))
    assert "2026年4月公示未签字确认 3" in drill


async def test_before_the_notice_is_out_no_unconfirmed_figure_is_shown_for_it(h, clock):
    b = await setup_branch(h)
    t = await make_town(h)
    await joined(h, b, t)
    await notices_until(h, clock, 2026, 4)  # March's notice, nobody confirms
    clock.set(datetime(2026, 5, 1, 8, 0, tzinfo=SH))  # April ended, its notice not due until 09:00
    view = said(await h.say(t.admin, h.private(t.admin), "/town"))
    assert "2026年4月公示：未到发布时间" in view
    assert "未签字确认" not in view.split("\n\n", 1)[1]  # nothing about a notice nobody was asked to sign yet
    assert "未决异议 0 · 未结申诉 0" in view


async def test_the_drill_down_in_english_says_the_same(h, clock):
    b = await setup_branch(h)
    t = await make_town(h)
    await joined(h, b, t)
    await notices_until(h, clock, 2026, 4)
    admin = h.user(t.admin.id, "Town Admin", language="en")
    await h.say(admin, h.private(admin), "/town")
    view = said(h.world.sent(admin.id)[-1:])
    assert "Notice for 3/2026: posted late\n3/2026 notice: 4 unconfirmed · 0 open objections · 0 open appeals" in view
    assert "4 unconfirmed on this period's notices" in view
    drill = said(await h.tap(admin, admin.id, "1. 兰溪镇红星村党支部"))
    assert "Members and their year 2026 so far: the figures the 3/2026 notice published, not live points" in drill
    assert "Objections to that notice are open until 2026-04-08 10:00" in drill
