"""The town's drill-down into a branch shows what the branch published, and says so (session 4's town leftover 3).

Seed 004: 每月将党员得分情况进行公示……公示无异议后报镇组织办备案; the town reviews the branch's points work and
never reads or writes its ledger (docs/design.md). So the figures are the last sent notice's, not live ones: the
view names that notice and its year (in January: last year's December, not "this year"), says corrections made
since show in the next notice, and while the notice's objection window is open, until when.

Through the real Application (/record, the scheduler's notices, /points, /town and its drill-down button).
"""

from __future__ import annotations

from datetime import date, datetime

from schedules import engine
from tests.conftest import rows, said, setup_branch
from tests.test_notices import record
from tests.test_town import joined, make_town
from tests.test_town_digest_entries import SH, notices_until


async def test_the_drill_down_shows_the_published_figures_and_says_which(h, clock):
    b = await setup_branch(h)
    t = await make_town(h)
    await joined(h, b, t)
    await h.say(b.recorder, h.private(b.recorder), "/record 3 study absent 3月5日无故缺席")
    await notices_until(h, clock, 2026, 4)
    published = {r["member_id"]: r["year_score"] for r in await rows(h, "SELECT member_id, year_score FROM notice_members")}
    assert published[b.member_ids["zhang"]] == "55.00"
    # a late entry dated in March changes 张三's live year figure (his /points), not the published one
    await record(h, b, "zhang", "study", "-5", date(2026, 3, 28), "3月28日无故缺席（补记）", event="absent")
    assert "本年至今：50分" in said(await h.say(b.zhang, h.private(b.zhang), "/points"))

    await h.say(t.admin, h.private(t.admin), "/town")
    drill = said(await h.tap(t.admin, t.admin.id, "1. 兰溪镇红星村党支部"))
    assert "党员及2026年累计积分：2026年3月公示所公布的数字，不是实时积分（此后的更正见下一次公示" in drill
    assert "该次公示的异议期至 2026-04-08 10:00，数字可能因异议而更正。" in drill  # the window is still open
    assert "3. 张三　55\n" in drill  # as published, not the live 50

    clock.set(datetime(2026, 4, 20, 10, 0, tzinfo=SH))  # the window has closed: no longer said
    await h.say(t.admin, h.private(t.admin), "/town")
    drill = said(await h.tap(t.admin, t.admin.id, "1. 兰溪镇红星村党支部"))
    assert "2026年3月公示所公布的数字" in drill and "异议期至" not in drill


async def test_in_january_the_drill_down_names_last_years_december_not_this_year(h, clock):
    b = await setup_branch(h)
    t = await make_town(h)
    await joined(h, b, t)
    clock.set(datetime(2027, 1, 2, 10, 0, tzinfo=SH))  # the bot catches up December's notice (late)
    await engine.tick(h.app, clock.now())
    assert await rows(h, "SELECT period_key FROM notices WHERE sent_at IS NOT NULL ORDER BY id DESC LIMIT 1") == [
        {"period_key": "2026-12"}]
    await h.say(t.admin, h.private(t.admin), "/town")
    drill = said(await h.tap(t.admin, t.admin.id, "1. 兰溪镇红星村党支部"))
    assert "党员及2026年累计积分：2026年12月公示所公布的数字" in drill  # was "党员及本年度累计积分" in 2027
    assert "本年度" not in drill
