"""/record's and /additem's value and date checks, /points' figures as the notice publishes them, and
/points YEAR (QA #5, #6, #7, #15)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from bot.domain.records import NewLedgerRow, Source
from bot.harness import plain
from schedules import engine
from storage import ledger as ledger_repo
from tests.conftest import assert_healthy, count, rows, said, setup_branch
from tests.test_grading_flow import only_year_end, xishui_year  # noqa: F401 (a fixture)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def record(h, b, words: str) -> str:
    return said(await h.say(b.recorder, h.private(b.recorder), words), b.recorder.id)


async def test_a_date_before_the_member_joined_or_after_they_left_is_refused_saying_why(h, b) -> None:
    # the members joined on 2026-03-20: February is no month of theirs, so −10 there would count nowhere
    refused = await record(h, b, "/record 3 law violation 2-10 家属违纪")
    assert "张三 于 2026-03-20 加入本支部，2026-02-10 所在的月份不是其积分月份" in refused
    assert "不会计入任何月份" in refused
    assert await count(h, "ledger") == 0
    assert "已为 张三 记录" in await record(h, b, "/record 3 study absent 3-05 缺席")  # the month they joined counts
    await h.db.conn.execute("UPDATE members SET left_on = '2026-02-28' WHERE id = ?", (b.member_ids["lisi"],))
    await h.db.conn.commit()
    assert "李四 已于 2026-02-28 离开本支部，2026-03-20 所在的月份不是其积分月份" in await record(h, b, "/record 4 study absent 缺席")
    assert await count(h, "ledger") == 1
    assert_healthy(h)


async def test_a_fixed_item_takes_no_other_value(h, b) -> None:
    assert "该事项分值固定为 3 分，不能写其他分值" in await record(h, b, "/record 3 honor_city 5 超值")
    assert "该事项分值固定为 -5 分" in await record(h, b, "/record 3 study absent 5 缺席")
    assert await count(h, "ledger") == 0
    # the item's own value typed out is taken as said, and is not put into the reason
    assert "受市级表彰 +3（记录员）表彰 #" not in (done := await record(h, b, "/record 3 honor_city 3 市里表彰"))
    assert "受市级表彰 +3（记录员）市里表彰" in done
    assert "学习教育 · 无故缺席 -5（记录员）缺席" in await record(h, b, "/record 3 study absent -5 3-05 缺席")
    assert [r["reason"] for r in await rows(h, "SELECT reason FROM ledger ORDER BY id")] == ["市里表彰", "缺席"]
    assert_healthy(h)


async def test_values_have_at_most_the_rulebooks_places(h, b) -> None:
    assert "分值最多保留 2 位小数" in await record(h, b, "/record 3 post_duty 7.123456 小数")
    assert "分值最多保留 2 位小数" in await record(h, b, "/record 3 post_duty 7.125 小数")
    assert "爱岗敬业、充分履职 +7.25（记录员）" in await record(h, b, "/record 3 post_duty 7.25 小数")
    assert [r["value"] for r in await rows(h, "SELECT value FROM ledger")] == ["7.25"]
    assert_healthy(h)


async def test_points_shows_the_month_as_the_notice_publishes_it(h, clock, monkeypatch) -> None:
    """A row of more places than the rulebook's (written before values were checked) is published rounded:
    /points shows the same rounded figures as the notice, never 87.125 next to the notice's 87.13."""
    monkeypatch.setattr(engine, "PRODUCERS", [p for p in engine.PRODUCERS if p.kind in ("notice", "notice_remind", "notice_close")])
    clock.set(utc(2026, 3, 20, 2, 0))
    b = await setup_branch(h)
    await h.db.conn.execute("UPDATE branches SET created_at = ? WHERE id = ?", (utc(2026, 3, 20, 2, 0).isoformat(), b.branch.id))
    await h.db.conn.commit()
    async with h.db.transaction() as conn:
        await ledger_repo.append(conn, NewLedgerRow(
            branch_id=b.branch.id, member_id=b.member_ids["zhang"], item_code="post_duty", value=Decimal("7.125"),
            occurred_on=date(2026, 3, 20), source=Source.RECORDER, reference="old:1", actor_id=b.member_ids["recorder"], reason="旧数据"))
    mine = said(await h.say(b.zhang, h.private(b.zhang), "/points"), b.zhang.id)
    assert "本月得分：67.13分" in mine and "志愿服务岗位贡献：27.13 / 60" in mine and "本年至今：67.13分" in mine
    clock.set(utc(2026, 3, 31, 23, 0))
    await engine.tick(h.app, utc(2026, 4, 1, 1, 1))
    notice = "\n".join(plain(str(c.params["text"])) for c in h.world.sent(b.group.id, "sendMessage"))
    assert "张三：本月 67.13 分，全年至今 67.13 分" in notice
    assert_healthy(h)


async def test_points_rounds_a_sum_schemes_month_and_categories(h) -> None:
    b = await setup_branch(h, preset="jiancaoping")
    async with h.db.transaction() as conn:
        await ledger_repo.append(conn, NewLedgerRow(
            branch_id=b.branch.id, member_id=b.member_ids["zhang"], item_code="study_lead", value=Decimal("2.005"),
            occurred_on=date(2026, 3, 20), source=Source.RECORDER, reference="old:1", actor_id=b.member_ids["recorder"], reason="旧数据"))
    mine = said(await h.say(b.zhang, h.private(b.zhang), "/points"), b.zhang.id)
    assert "本月增减：+2.01分" in mine and "+2.01" in mine.split("本年累计")[1]
    assert "2.005" not in mine.split("最近记录")[0]
    assert_healthy(h)


async def test_additem_values_are_bounded_and_signed_by_their_category(h, b) -> None:
    async def add(words: str) -> str:
        return said(await h.say(b.secretary, b.group, words), b.group.id)
    assert "最多 100 分" in await add("/additem bonus mega 1000000 超级贡献")
    assert "最多 100 分" in await add("/additem bonus mega -101 超级扣分")
    assert "最多保留 2 位小数" in await add("/additem bonus frac 0.333 小数")
    assert "类别「bonus」只有加分项目，分值须为正数" in await add("/additem bonus neg -5 负分")
    assert "类别「zero_out」只有扣分项目，分值须为负数" in await add("/additem zero_out pos 5 正分")
    assert "已增加本支部自定项目：种连翘（15分，代码 forsythia）" in await add("/additem bonus forsythia 15 种连翘")
    assert "已增加本支部自定项目" in await add("/additem obligations litter -2.5 乱扔垃圾")  # an allotment category: either sign
    codes = [c["item"]["code"] for c in __import__("json").loads((await rows(h, "SELECT custom_items FROM branches"))[0]["custom_items"])]
    assert codes == ["forsythia", "litter"]
    assert_healthy(h)


async def test_points_year_shows_a_past_years_figure_as_the_year_end_does(h, clock, only_year_end) -> None:  # noqa: F811
    b = await xishui_year(h, clock)
    clock.set(utc(2027, 1, 5, 2, 0))

    async def points(person, words: str) -> str:
        return said(await h.say(person, h.private(person), words), person.id)

    zhang = await points(b.zhang, "/points 2026")
    assert "张三 的 2026 年度积分（兰溪镇红星村党支部）" in zhang and "全年：85分（12 个月平均分" in zhang
    assert "按全年积分的等次" not in zhang and "/grade" not in zhang and "定级后在此显示" in zhang  # no band as a grade (QA2 N2)
    assert "本月" not in zhang
    assert "全年：59.17分（12 个月平均分" in await points(b.recorder, "/points 2026")  # no member #2026: the year
    assert "全年：60分（6 个月平均分" in await points(b.sun, "/points 2026")  # joined in July
    assert "全年：58分" in await points(b.secretary, f"/points {b.member_ids['zhao']} 2026")
    assert "不纳入积分管理" in await points(b.qian, "/points 2026")
    assert "孙八 在 2025 年没有计入积分的月份" in await points(b.sun, "/points 2025")
    assert "2028年还没有到" in await points(b.zhang, "/points 2028")
    assert "张三 的积分（兰溪镇红星村党支部，2027年1月）" in await points(b.zhang, "/points 2027")  # this year: as /points
    # a member looking at someone else is still refused, naming every role that may
    assert "只有以下角色可以这样做：积分记录员、书记、副书记" in await points(b.zhang, f"/points {b.member_ids['lisi']} 2026")
    assert_healthy(h)
