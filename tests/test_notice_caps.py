"""The monthly notice says when an item's ceiling cut what its entries add up to (QA #21): three
为民办一件实事 +10 listed, 20 counted (10 a post, 2 posts)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from schedules import engine
from tests.conftest import declare, said, setup_branch

SH = ZoneInfo("Asia/Shanghai")


async def test_the_notice_says_a_ceiling_applied(h, clock):
    b = await setup_branch(h)
    for number in range(3):
        await declare(h, b.zhang, text=f"第{number + 1}件实事")
        await h.tap(b.recorder, b.recorder.id, "通过")
    await declare(h, b.lisi, text="一件实事")
    await h.tap(b.recorder, b.recorder.id, "通过")
    clock.set(datetime(2026, 4, 1, 9, 0, tzinfo=SH))
    before = len(h.world.calls)
    await engine.tick(h.app, clock.now())
    notice = said(h.world.calls[before:], b.group.id)
    zhang = notice.split("张三：", 1)[1].split("\n\n", 1)[0]
    assert zhang.count("为民办一件实事 +10") == 3
    assert "※ 为民办一件实事：本期记录合计 +30 分，按上限计 20 分" in zhang
    lisi = notice.split("李四：", 1)[1].split("\n\n", 1)[0]
    assert "※" not in lisi  # one deed: under the ceiling, nothing to explain
