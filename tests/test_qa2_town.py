"""QA2 N6/N10: the town's filing and digest are bounded by when the town and its branches existed; the
overdue reminder counts hours, not calendar days, whatever the clock's zone.

Through the real Application (/town, its filing button, /townfile, the scheduler's tick)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from openpyxl import load_workbook

from schedules import engine
from tests.conftest import declare, rows, said, setup_branch
from tests.test_town import joined, make_town

SH = ZoneInfo("Asia/Shanghai")


def filing_buttons(h, chat_id: int) -> tuple[object, list[str]]:
    for message in reversed(h.world.messages(chat_id)):
        found = [d for _, d in h.world.buttons(message) if d.startswith("tv:f:")]
        if found:
            return message, found
    raise LookupError("no filing button")


def documents(calls) -> list:
    return [c for c in calls if c.method == "sendDocument"]


async def test_a_town_begun_this_year_offers_this_years_filing_only(h, clock):
    # 20 March 2026 (the harness's moment): the town and its only branch begin now.
    b = await setup_branch(h)
    t = await make_town(h)
    await joined(h, b, t)
    await h.say(t.admin, h.private(t.admin), "/town")
    message, data = filing_buttons(h, t.admin.id)
    assert data == [f"tv:f:{t.town.id}:2026"]  # was 2025, a year in which nothing existed
    calls = await h.press(t.admin, message, data[0])
    sent = documents(calls)
    assert len(sent) == 1 and "2026年度全镇备案表" in str(sent[0].params.get("caption"))
    # a year before the town and its branches: refused, saying which year to ask for, no workbook
    for year in ("2025", "2024"):
        calls = await h.say(t.admin, h.private(t.admin), f"/townfile {year}")
        assert not documents(calls)
        assert f"从 2026 年开始使用本系统，没有 {year} 年度的备案" in said(calls, t.admin.id)
    # a crafted press for 2025 is refused the same way (and answered)
    calls = await h.press(t.admin, message, f"tv:f:{t.town.id}:2025")
    assert not documents(calls) and any(c.method == "answerCallbackQuery" for c in calls)


async def test_a_branch_is_not_listed_for_a_year_before_it_existed(h, clock):
    clock.set(datetime(2025, 9, 1, 2, 0, tzinfo=UTC))
    old = await setup_branch(h)
    t = await make_town(h)
    await joined(h, old, t)
    clock.set(datetime(2026, 3, 20, 2, 0, tzinfo=UTC))
    new = await setup_branch(h, chat_id=-1001000000002, title="兰溪镇新村党支部", base=2000)
    await joined(h, new, t)
    calls = await h.say(t.admin, h.private(t.admin), "/townfile 2025")
    sent = documents(calls)
    assert len(sent) == 1
    assert "共 1 个支部" in str(sent[0].params.get("caption"))  # 新村 did not exist in 2025
    import io
    book = load_workbook(io.BytesIO(sent[0].files["document"][1]))
    cells = " ".join(str(v) for ws in book.worksheets for row in ws.iter_rows(values_only=True) for v in row if v)
    assert old.branch.title in cells and "兰溪镇新村党支部" not in cells
    calls = await h.say(t.admin, h.private(t.admin), "/townfile 2026")
    assert "共 2 个支部" in str(documents(calls)[0].params.get("caption"))


async def test_no_digest_for_a_month_before_the_town_existed(h, clock):
    b = await setup_branch(h)
    t = await make_town(h)  # 20 March 2026
    await joined(h, b, t)
    clock.set(datetime(2026, 3, 21, 9, 1, tzinfo=SH))
    done = await engine.tick(h.app, clock.now())
    assert not [d for d in done if d[1] == "town_digest"]  # February: neither the town nor the branch existed
    assert not [c for c in h.world.sent(t.admin.id) if "积分工作汇总" in str(c.params.get("text"))]
    clock.set(datetime(2026, 4, 1, 9, 10, tzinfo=SH))
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "town_digest", f"{t.town.id}:2026-03", "done") in done  # March: the town's first month


async def test_the_overdue_reminder_waits_the_full_three_days(h, clock):
    b = await setup_branch(h)
    t = await make_town(h)
    await joined(h, b, t)
    await declare(h, b.zhang)  # 20 March 10:00 in Shanghai
    before = len(h.world.sent(b.secretary.id))
    clock.set(datetime(2026, 3, 23, 9, 1, tzinfo=SH))  # 71 hours later (a clock reading Shanghai time)
    done = await engine.tick(h.app, clock.now())
    assert not [d for d in done if d[1] == "town_remind"]
    assert "等待审核超过" not in said(h.world.sent(b.secretary.id)[before:])
    clock.set(datetime(2026, 3, 24, 9, 1, tzinfo=SH))  # 95 hours
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "town_remind", "2026-03-24", "done") in done
    assert "有 1 条申报等待审核超过 3 天" in said(h.world.sent(b.secretary.id)[before:])


async def test_the_drill_down_writes_figures_as_everywhere_else(h, clock):
    b = await setup_branch(h)
    t = await make_town(h)
    await joined(h, b, t)
    await h.say(b.recorder, h.private(b.recorder), "/record 3 study absent 缺席学习")  # 张三 −5 in March
    for day in range(1, 4):  # March's notice is posted in the first days of April
        clock.set(datetime(2026, 4, day, 10, 0, tzinfo=SH))
        await engine.tick(h.app, clock.now())
    stored = {r["year_score"] for r in await rows(h, "SELECT year_score FROM notice_members")}
    assert "60.00" in stored  # what the notice stored, as text
    await h.say(t.admin, h.private(t.admin), "/town")
    view = said(await h.tap(t.admin, t.admin.id, "1. 兰溪镇红星村党支部"))
    assert "1. 王书记　60\n" in view and "3. 张三　55\n" in view  # as /points and the notice say
    assert ".00" not in view


async def test_town_sees_a_filed_year_reopened_by_the_branch(h, clock, monkeypatch):
    from tests import test_grading_flow as flow

    monkeypatch.setattr(engine, "PRODUCERS", [p for p in engine.PRODUCERS if p.kind in flow.KINDS])
    # the project's simulated 浠水 year, finalised and filed with the town
    b = await flow.xishui_year(h, clock)
    t = await make_town(h)
    await joined(h, b, t)
    await flow.tick(h, clock, flow.utc(2027, 1, 1, 1, 1))
    clock.set(flow.utc(2027, 1, 2, 2, 0))
    sec = b.secretary
    await h.say(sec, h.private(sec), "/grade 2026")
    await h.tap(sec, sec.id, "☐ 张三")
    message, data = h.find_button(sec.id, "确认并公示")
    await h.press(sec, message, data)
    await h.say(t.admin, h.private(t.admin), "/townqueue")
    message, data = next((m, d) for m in reversed(h.world.messages(t.admin.id))
                         for _, d in h.world.buttons(m) if d.startswith("tv:ra:"))
    await h.press(t.admin, message, data)
    await flow.tick(h, clock, flow.utc(2027, 1, 10, 2, 1))
    message, data = h.find_button(sec.id, "定级并锁定")
    await h.press(sec, message, data)
    assert await rows(h, "SELECT year FROM town_filings") == [{"year": 2026}]
    view = said(await h.say(t.admin, h.private(t.admin), "/town"))
    assert "2026年度（已定级）" in view
    assert "重新开放" not in view

    clock.set(flow.utc(2027, 1, 15, 2, 0))
    before = len(h.world.sent(t.admin.id))
    await h.say(sec, h.private(sec), "/reopen 2026 李记录3月缺席系请假，需更正")
    told = said(h.world.sent(t.admin.id)[before:])
    assert told.count("已重新开放2026年度积分（王书记），原报镇备案作废") == 1 and "李记录3月缺席系请假" in told
    await h.say(sec, h.private(sec), "/reopen 2026 再来一次")  # refused (already re-opened): nobody told twice
    assert said(h.world.sent(t.admin.id)[before:]).count("原报镇备案作废") == 1
    view = said(await h.say(t.admin, h.private(t.admin), "/town"))
    assert "2026年度评定结果已报镇备案，后被支部重新开放（原备案作废）" in view
    assert "尚无年度评定结果" not in view
    drill = said(await h.tap(t.admin, t.admin.id, "1. 兰溪镇红星村党支部"))
    assert "重新开放（原备案作废）" in drill
