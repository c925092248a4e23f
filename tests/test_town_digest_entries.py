"""The town's monthly digest: "记分 N 条" counts the entries recorded about the members that month that still
stand, not the assessment defaults the bot writes at the notice for everyone nobody assessed (they made a branch
with no activity look busy: one row per member), nor rows taken back (session 4's town leftover 1).

Through the real Application (/record, /undo and its button, the scheduler's tick) on the offline fake Telegram.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from schedules import engine
from tests.conftest import count, rows, setup_branch
from tests.test_town import joined, make_town

SH = ZoneInfo("Asia/Shanghai")


async def notices_until(h, clock, year: int, month: int) -> None:
    """The scheduler on the first three days of the month at 10:00: the month before's notice (and the
    town's digest on the 1st)."""
    for day in range(1, 4):
        clock.set(datetime(year, month, day, 10, 0, tzinfo=SH))
        await engine.tick(h.app, clock.now())


def digest_of(h, admin_id: int, month: str) -> str:
    found = [str(c.params.get("text")) for c in h.world.sent(admin_id) if month in str(c.params.get("text"))
             and "积分工作汇总" in str(c.params.get("text"))]
    assert len(found) == 1, found
    return found[0]


async def test_the_digest_counts_recorded_entries_not_the_bots_assessment_defaults(h, clock):
    busy = await setup_branch(h)
    quiet = await setup_branch(h, chat_id=-1001000000002, title="兰溪镇新村党支部", base=2000)
    t = await make_town(h)
    await joined(h, busy, t)
    await joined(h, quiet, t)
    # 红星村: two real entries in March, one of them taken back (/undo): one entry stands
    await h.say(busy.recorder, h.private(busy.recorder), "/record 3 study absent 3月5日无故缺席")
    await h.say(busy.recorder, h.private(busy.recorder), "/record 4 study absent 3月6日无故缺席")
    mistaken = (await rows(h, "SELECT id FROM ledger WHERE member_id = ?", busy.member_ids["lisi"]))[0]["id"]
    await h.say(busy.recorder, h.private(busy.recorder), f"/undo {mistaken} 李四当天请过假")
    await h.tap(busy.recorder, busy.recorder.id, "✅ 确认撤销")
    assert await count(h, "ledger", "reverses_id = ?", mistaken) == 1

    await notices_until(h, clock, 2026, 4)
    # the notice gave every unassessed member the post-duty default: 4 rows per branch, each worth 0
    defaults = await rows(h, "SELECT branch_id, value FROM ledger WHERE source = 'automatic' AND reference LIKE 'assess:%'")
    assert len(defaults) == 8 and {r["value"] for r in defaults} == {"0"}
    text = digest_of(h, t.admin.id, "2026年3月")
    assert "兰溪镇红星村党支部</b>：申报 0（通过 0，退回 0）· 记分 1 条" in text  # was 记分 7 条 (1 + 1 + its reversal + 4)
    assert "兰溪镇新村党支部</b>：申报 0（通过 0，退回 0）· 记分 0 条" in text  # was 记分 4 条: nothing happened there


async def test_a_month_with_only_defaults_says_there_was_no_activity(h, clock):
    b = await setup_branch(h)
    t = await make_town(h)
    await joined(h, b, t)
    await notices_until(h, clock, 2026, 4)
    assert await count(h, "ledger", "source = 'automatic'") == 4
    text = digest_of(h, t.admin.id, "2026年3月")
    assert "记分 0 条" in text and "本月各支部没有积分活动记录" in text
