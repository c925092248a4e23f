"""A member exempt now (不纳入积分管理) keeps the months they were scored in (QA4 findings 1, 2, 3, 6): what is
done about such a month — its dues (/paid, /dues N paid MONTH, /dues correct), an entry (/record) or a
declared deed (/declare) — goes by the state of that month, not today's; /points, /points YEAR and /chart
show the figure over the scored months, as /grade ranks it, saying since when the member is exempt; a
month the member was exempt in is refused, naming it. And the refusal of a /state change dated before
the last one gives advice that works. Through the real Application on both backends."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot.domain.records import NewLedgerRow, Source
from bot.i18n import format_points
from schedules import engine
from storage import ledger as ledger_repo
from tests.conftest import TestHarness, popups, rows, said, setup_branch

SH = ZoneInfo("Asia/Shanghai")
YEAR = 2026


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def _ledger(h: TestHarness, member_id: int, item: str) -> list[dict]:
    """The member's rows of an item (values as Decimal, days as text, on either backend)."""
    found = await rows(h, "SELECT value, occurred_on FROM ledger WHERE member_id = ? AND item_code = ? ORDER BY id",
                       member_id, item)
    return [{"value": Decimal(str(r["value"])), "occurred_on": str(r["occurred_on"])} for r in found]


async def _exempt_from_april(h: TestHarness, clock):
    """A 浠水 branch from 2 March (dues kept from March, March open until the notice on 5 April 09:00);
    李四 and 张三 made exempt on 2 April, so from April: March is a month they were charged and scored in."""
    clock.set(utc(YEAR, 3, 2, 2, 0))
    b = await setup_branch(h)
    said(await h.say(b.secretary, h.private(b.secretary), "/settings notice_day 5"))
    clock.set(utc(YEAR, 4, 2, 2, 0))
    for name in ("lisi", "zhang"):
        shown = said(await h.say(b.secretary, b.group, f"/state {b.member_ids[name]} exempt 长期住院"), b.group.id)
        assert "不纳入积分管理" in shown
    return b


@pytest.mark.asyncio
async def test_dues_of_a_month_charged_are_kept_whatever_the_state_now(h: TestHarness, clock) -> None:
    b = await _exempt_from_april(h, clock)
    lisi, zhang = b.member_ids["lisi"], b.member_ids["zhang"]
    me, keeper = h.private(b.lisi), h.private(b.secretary)
    # his own report of March (owed): taken, waiting for the recorder; of April (exempt): refused, naming it
    said(await h.say(b.lisi, me, "/paid 2026-03"))
    assert [r["month"] for r in await rows(h, "SELECT month FROM dues_reports WHERE member_id = ?", lisi)] == ["2026-03"]
    shown = said(await h.say(b.lisi, me, "/paid 2026-04"), b.lisi.id)
    assert "2026-04" in shown and "不纳入积分管理" in shown
    assert len(await rows(h, "SELECT id FROM dues_reports WHERE member_id = ?", lisi)) == 1
    # /dues (his): March listed, April said to be exempt, no "I have paid" button for it
    calls = await h.say(b.lisi, me, "/dues")
    shown = said(calls, b.lisi.id)
    assert "2026-03" in shown and "在 2026-04 不纳入积分管理" in shown
    assert not [c for c in calls if c.method == "sendMessage" and c.params.get("reply_markup")]
    # the keeper: March recorded for him, April refused naming it
    said(await h.say(b.secretary, keeper, f"/dues {lisi} paid 2026-03"))
    assert [r["status"] for r in await rows(h, "SELECT status FROM dues WHERE member_id = ? AND month = '2026-03'", lisi)] == ["on_time"]
    shown = said(await h.say(b.secretary, keeper, f"/dues {lisi} paid 2026-04"), b.secretary.id)
    assert "李四 在 2026-04 不纳入积分管理" in shown
    assert not await rows(h, "SELECT id FROM dues WHERE member_id = ? AND month = '2026-04'", lisi)
    # 张三 did not pay March: the close books his deduction, and the keeper can correct it afterwards
    await engine.tick(h.app, datetime(YEAR, 4, 5, 9, 1, tzinfo=SH))
    assert [r["value"] for r in await _ledger(h, zhang, "dues")] == [Decimal(-10)]
    assert not await _ledger(h, lisi, "dues")
    shown = said(await h.say(b.secretary, keeper, f"/dues correct 2026-03 {zhang} paid 已补交"), b.secretary.id)
    assert "不纳入积分管理" not in shown
    values = [r["value"] for r in await _ledger(h, zhang, "dues")]
    assert values == [Decimal(-10), Decimal(10)] and sum(values) == 0
    # April, closed in May: nothing was charged, and a correction of it is refused naming the month
    await engine.tick(h.app, datetime(YEAR, 5, 5, 9, 1, tzinfo=SH))
    clock.set(utc(YEAR, 5, 6, 2, 0))
    shown = said(await h.say(b.secretary, keeper, f"/dues correct 2026-04 {zhang} paid 已补交"), b.secretary.id)
    assert "张三 在 2026-04 不纳入积分管理" in shown
    assert [r["value"] for r in await _ledger(h, zhang, "dues")] == [Decimal(-10), Decimal(10)]


@pytest.mark.asyncio
async def test_record_and_declare_go_by_the_month_of_the_entry(h: TestHarness, clock) -> None:
    b = await _exempt_from_april(h, clock)
    lisi = b.member_ids["lisi"]
    recorder = h.private(b.recorder)
    # March (scored): recorded; April (exempt): refused, naming April
    shown = said(await h.say(b.recorder, recorder, f"/record {lisi} study absent 3-25 三月缺席"), b.recorder.id)
    assert "已为 李四 记录" in shown
    shown = said(await h.say(b.recorder, recorder, f"/record {lisi} study absent 4-01 四月缺席"), b.recorder.id)
    assert "李四 在 2026-04 不纳入积分管理" in shown
    assert [r["occurred_on"] for r in await _ledger(h, lisi, "study")] == ["2026-03-25"]
    # /declare in the grace days: a March deed is taken; an April one is refused, naming April
    me = h.private(b.lisi)

    async def declare_on(day: str) -> str:
        calls = await h.say(b.lisi, me, "/declare")
        await h.tap(b.lisi, me.id, "志愿服务岗位")
        await h.tap(b.lisi, me.id, "为民办一件实事")
        await h.say(b.lisi, me, day)
        await h.say(b.lisi, me, "村东头")
        await h.say(b.lisi, me, "帮刘大爷修水管。")
        await h.tap(b.lisi, me.id, "无照片")
        calls += await h.tap(b.lisi, me.id, "提交")  # a refusal comes as an alert on the press
        return said(calls, b.lisi.id) + "\n".join(str(c.params.get("text", "")) for c in popups(calls))

    assert "无需申报" not in await declare_on("3-28")
    found = await rows(h, "SELECT occurred_on FROM declarations WHERE member_id = ?", lisi)
    assert [str(r["occurred_on"]) for r in found] == ["2026-03-28"]
    # April ("today"): refused at the date step, before the place and the text are asked
    calls = await h.say(b.lisi, me, "/declare")
    await h.tap(b.lisi, me.id, "志愿服务岗位")
    await h.tap(b.lisi, me.id, "为民办一件实事")
    shown = said(await h.tap(b.lisi, me.id, "今天"), b.lisi.id)
    assert "您在 2026-04 不纳入积分管理" in shown and "地点" not in shown
    said(await h.say(b.lisi, me, "/cancel"))
    assert len(await rows(h, "SELECT id FROM declarations WHERE member_id = ?", lisi)) == 1
    # after the grace days only April is open: /declare is refused as before
    clock.set(utc(YEAR, 4, 10, 2, 0))
    assert "无需申报" in said(await h.say(b.lisi, me, "/declare"), b.lisi.id)


async def _put(h: TestHarness, b, member_id: int, item: str, value: str, day: date) -> None:
    async with h.db.transaction() as conn:
        row = await ledger_repo.append(conn, NewLedgerRow(
            branch_id=b.branch.id, member_id=member_id, item_code=item, value=Decimal(value), occurred_on=day,
            source=Source.RECORDER, reference=f"t:{member_id}:{item}:{day}:{value}", actor_id=b.member_ids["secretary"],
            reason=f"考评 {day}"))
    assert row is not None


@pytest.mark.asyncio
async def test_points_and_chart_of_a_member_exempt_now_count_the_months_scored_before(h: TestHarness, clock) -> None:
    clock.set(utc(YEAR, 1, 5, 2, 0))
    b = await setup_branch(h)
    lisi, zhang = b.member_ids["lisi"], b.member_ids["zhang"]
    said(await h.say(b.secretary, b.group, f"/state {zhang} exempt 年老体弱"), b.group.id)  # the whole year
    for month in range(1, 7):  # 李四: full marks January–June, exempt from 3 July
        await _put(h, b, lisi, "post_duty", "20", date(YEAR, month, 28))
        await _put(h, b, lisi, "post_deed", "10", date(YEAR, month, 27))
        await _put(h, b, lisi, "post_deed", "10", date(YEAR, month, 26))
    clock.set(utc(YEAR, 7, 3, 2, 0))
    said(await h.say(b.secretary, b.group, f"/state {lisi} exempt 年老体弱"), b.group.id)
    clock.set(utc(YEAR, 9, 10, 2, 0))
    branch = await h.services.branches.by_id(b.branch.id)
    member = await h.services.roster.member_of_id(lisi)
    standing = await h.services.points.standing(branch, member)
    assert list(standing.counted) == [(YEAR, m) for m in range(1, 7)] and standing.exempt_since == date(YEAR, 7, 1)
    figure = format_points(standing.published)
    for user, text in ((b.lisi, "/points"), (b.lisi, "/points 2026"), (b.secretary, f"/points {lisi}")):
        shown = said(await h.say(user, h.private(user), text), user.id)
        assert "不纳入积分管理（自2026年7月起" in shown and "6 个月平均分" in shown and f"{figure}分" in shown, (text, shown)
        assert "本月得分" not in shown  # September is exempt: no month's score
    calls = await h.say(b.lisi, h.private(b.lisi), "/chart")
    [photo] = [c for c in calls if c.method == "sendPhoto"]
    assert "本月仍在进行中" not in str(photo.params.get("caption"))  # September is not drawn
    # exempt the whole year: as before
    shown = said(await h.say(b.secretary, h.private(b.secretary), f"/points {zhang}"), b.secretary.id)
    assert "张三 不纳入积分管理（年老体弱）" in shown and "平均分" not in shown
    assert "张三 不纳入积分管理（年老体弱）" in said(await h.say(b.zhang, h.private(b.zhang), "/points"), b.zhang.id)
    assert "没有积分趋势" in said(await h.say(b.zhang, h.private(b.zhang), "/chart"), b.zhang.id)
    # the year's grade and /points 2026 in January agree
    clock.set(utc(YEAR + 1, 1, 5, 2, 0))
    line = (await h.services.grading.compute(branch, YEAR)).line(lisi)
    assert line.graded and line.figure == standing.published
    shown = said(await h.say(b.lisi, h.private(b.lisi), "/points 2026"), b.lisi.id)
    assert f"全年：{figure}分（6 个月平均分" in shown and "自2026年7月起" in shown


@pytest.mark.asyncio
async def test_a_state_change_before_the_last_one_is_refused_with_advice_that_works(h: TestHarness, clock) -> None:
    clock.set(utc(YEAR, 1, 5, 2, 0))
    b = await setup_branch(h)
    lisi = b.member_ids["lisi"]
    clock.set(utc(YEAR, 6, 10, 2, 0))
    said(await h.say(b.secretary, b.group, f"/state {lisi} exempt 2026-05 长期生病"), b.group.id)
    shown = said(await h.say(b.secretary, b.group, f"/state {lisi} active 2026-03"), b.group.id)
    assert "2026-05 以前各月的状态已不能用 /state 更改" in shown and f"/state {lisi} 状态 2026-05" in shown
    assert "请先自" not in shown  # the old advice, which could not work
    # the advice: set from 2026-05 again (the later change of the month holds)
    shown = said(await h.say(b.secretary, b.group, f"/state {lisi} active 2026-05"), b.group.id)
    assert "自 2026-05 起设为" in shown
    member = await h.services.roster.member_of_id(lisi)
    standing = await h.services.points.standing(await h.services.branches.by_id(b.branch.id), member)
    assert list(standing.counted) == [(YEAR, m) for m in range(1, 6)]  # May scored again (June still running)
    # in English too
    said(await h.say(b.secretary, b.group, "/language en"), b.group.id)
    shown = said(await h.say(b.secretary, b.group, f"/state {lisi} exempt 2026-04 ill"), b.group.id)
    assert "can no longer be changed with /state" in shown and f"/state {lisi} status 2026-05" in shown


@pytest.mark.asyncio
async def test_paid_without_a_month_is_about_a_month_owed(h: TestHarness, clock) -> None:
    """Exempt in March, active again from April: on 2 April (March still open) a bare /paid is about April
    — it was about March, a month he owed nothing for — and /paid 2026-03 is refused naming March."""
    clock.set(utc(YEAR, 3, 2, 2, 0))
    b = await setup_branch(h)
    lisi = b.member_ids["lisi"]
    said(await h.say(b.secretary, h.private(b.secretary), "/settings notice_day 5"))
    said(await h.say(b.secretary, b.group, f"/state {lisi} exempt 长期住院"), b.group.id)
    clock.set(utc(YEAR, 4, 2, 2, 0))
    said(await h.say(b.secretary, b.group, f"/state {lisi} active"), b.group.id)
    me = h.private(b.lisi)
    assert "在 2026-03 不纳入积分管理" in said(await h.say(b.lisi, me, "/paid 2026-03"), b.lisi.id)
    said(await h.say(b.lisi, me, "/paid"))
    assert [r["month"] for r in await rows(h, "SELECT month FROM dues_reports WHERE member_id = ?", lisi)] == ["2026-04"]
    shown = said(await h.say(b.lisi, me, "/dues"), b.lisi.id)
    assert "2026-04" in shown and "2026-03" not in shown  # March owed nothing: not listed
