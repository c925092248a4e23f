"""尖草坪 through the real Application: a probationary member is graded like anyone (seed 001 bands every member;
only 浠水's seed 004 says 预备党员…不确定等次). A zero-out makes them 不合格 (直接確定為不合格黨員): the /grade
preview and the group's publicity show the band and the rank — before, "0 分（不定等次）" and "预备党员，不定等次".

Base 80 and nothing else for 王书记, 李记录 and 张三 (rank 1, 80至89分); 李四, probationary, detained in March
(a zero-out): 0, 60分以下：不合格党员, rank 4.
"""

from __future__ import annotations

from decimal import Decimal

from tests.conftest import member_row, said
from tests.test_year_end_presets import alerts, close_month, grade_lines, new_branch, noon, record, texts


async def test_jiancaoping_probationary_member_with_a_zero_out_is_unqualified(h, clock) -> None:
    b = await new_branch(h, clock, "jiancaoping", "尖草坪区某社区党支部")
    lisi = b.member_ids["lisi"]
    await h.say(b.secretary, b.group, f"/state {lisi} probationary")
    assert (await member_row(h, b.lisi.id, b.branch.id))["state"] == "probationary"
    clock.set(noon(2026, 3, 15))
    assert "已为 李四 记录" in await record(h, b, "recorder", f"/record {lisi} detention 3-12 受到行政拘留处罚")
    await close_month(h, clock, 2026, 12)
    clock.set(noon(2027, 1, 2))
    sec = b.secretary
    shown = said(await h.say(sec, h.private(sec), "/grade 2026"), sec.id)
    assert "4. 李四　0 分　60分以下：不合格党员" in shown, shown
    assert "不定等次" not in shown and "预备党员" not in shown
    assert "1. 张三　80 分　80至89分" in shown
    lines = await grade_lines(h, b)
    line = lines["李四"]
    assert (line.figure, line.graded, line.band_code, line.rank, line.flags) == (Decimal("0.00"), True, "unqualified", 4, ["zeroed"])
    calls = await h.tap(sec, sec.id, "确认并公示")
    assert "正在公示" in alerts(calls), alerts(calls)
    assert "4. 李四　0 分　60分以下：不合格党员" in texts(h, b.group.id)
