"""Party dues: the recorder's roster and buttons, members' "I have paid", reminders, the month close,
corrections after it, and bad input — through the real handlers, services, SQLite and the tick."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.calendar import CalendarSettings
from bot.domain.dues import (
    AMOUNT_MAX,
    DuesRecord,
    DuesStatus,
    close_moment,
    dues_charge,
    last_day,
    parse_amount,
    reminder_moments,
    shift_month,
)
from bot.domain.records import Branch, LedgerRow, Member
from bot.domain.rulebook import Trigger
from bot.domain.scoring import Entry, month_score
from bot.harness import plain
from bot.i18n import Translator
from bot.presets import PRESET_CODES, preset
from bot.services.dues import DuesRoster, RosterLine
from handlers.dues import roster_view
from schedules import engine
from storage import ledger as ledger_repo
from tests.conftest import count, popups, rows, said, setup_branch

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(y: int, m: int, d: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(y, m, d, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


async def dues_rows(h, branch_id: int, month: str) -> dict[int, dict]:
    return {r["member_id"]: r for r in await rows(h, "SELECT * FROM dues WHERE branch_id = ? AND month = ?", branch_id, month)}


def alerts(calls) -> str:
    return "\n".join(str(c.params.get("text", "")) for c in popups(calls) if c.params.get("show_alert"))


# --- the recorder's roster ----------------------------------------------------------------------


async def test_roster_buttons_and_all_the_rest_paid(h, b):
    chat = h.private(b.recorder)
    calls = await h.say(b.recorder, chat, "/dues")
    text = said(calls, chat.id)
    assert "2026-03" in text and "张三" in text and "未登记 4" in text
    assert all(len(data.encode()) <= 64 for _, data in h.world.buttons(h.world.last_message(chat.id)))

    await h.tap(b.recorder, chat.id, "张三")  # the member's status buttons
    calls = await h.tap(b.recorder, chat.id, "未缴纳")
    assert "张三：未缴纳" in plain_popup(calls)
    again = await h.tap(b.recorder, chat.id, "张三")
    assert popups(again)
    await h.tap(b.recorder, chat.id, "未缴纳")  # a second tap: the same state, nothing new

    await h.tap(b.recorder, chat.id, "其余全部按时足额")
    assert "尚未登记的 3 名党员" in said(h.world.sent(chat.id)[-1:], chat.id)
    calls = await h.tap(b.recorder, chat.id, "确认标记")
    assert "李记录" in alerts(calls)  # the recorder's own dues are left for the secretary
    statuses = await dues_rows(h, b.branch.id, "2026-03")
    assert {k: v["status"] for k, v in statuses.items()} == {
        b.member_ids["zhang"]: "unpaid", b.member_ids["secretary"]: "on_time", b.member_ids["lisi"]: "on_time"}
    assert statuses[b.member_ids["lisi"]]["marked_by"] == b.member_ids["recorder"]

    # The confirm button pressed again: everyone left is already recorded or not the recorder's to mark.
    message, data = h.find_button(chat.id, "张三")
    calls = await h.press(b.recorder, message, data.replace("du:m:", "du:A:").rsplit(":", 2)[0])
    assert await count(h, "dues") == 3

    # The secretary records the recorder's dues, with an amount, by command.
    calls = await h.say(b.secretary, h.private(b.secretary), f"/dues @{b.recorder.username} paid 50")
    assert "李记录：按时足额（50元）" in said(calls)
    assert (await dues_rows(h, b.branch.id, "2026-03"))[b.member_ids["recorder"]]["amount"] == "50"


def plain_popup(calls) -> str:
    return "\n".join(str(c.params.get("text", "")) for c in popups(calls))


async def test_all_paid_except_by_command(h, b):
    sec = h.private(b.secretary)
    calls = await h.say(b.secretary, sec, f"/dues allpaid except @{b.zhang.username} 李四")
    assert "已把 2026-03 的 1 名党员标为按时足额" in said(calls, sec.id)  # the recorder; not the secretary herself
    assert "须由别人登记" in said(calls, sec.id) and "王书记" in said(calls, sec.id)
    statuses = await dues_rows(h, b.branch.id, "2026-03")
    assert {m: r["status"] for m, r in statuses.items()} == {b.member_ids["recorder"]: "on_time"}
    calls = await h.say(b.secretary, sec, "/dues allpaid sometimes")
    assert "用法" in said(calls, sec.id)


async def test_only_keepers_mark_and_nobody_marks_their_own(h, b):
    zhang_chat = h.private(b.zhang)
    await h.say(b.zhang, zhang_chat, "/dues")  # a member sees their own status, not the roster
    mine = h.world.last_message(zhang_chat.id)
    assert "张三 的党费" in (mine.text or "") and "未登记" in (mine.text or "")
    crafted = f"du:s:{b.branch.id}:202603:{b.member_ids['lisi']}:o:0"
    calls = await h.press(b.zhang, mine, crafted)
    assert "只有以下角色可以这样做" in alerts(calls)
    calls = await h.press(b.zhang, mine, f"du:A:{b.branch.id}:202603")
    assert alerts(calls)
    calls = await h.say(b.recorder, h.private(b.recorder), f"/dues @{b.recorder.username} paid")
    assert "不能审核自己的申报或给自己记分" in said(calls)
    assert await count(h, "dues") == 0


async def test_bad_input_is_refused_and_saves_nothing(h, b):
    zhang_chat = h.private(b.zhang)
    for text, expected in (("/paid abc", "不是有效的金额"), ("/paid -5", "不是有效的金额"), ("/paid 0", "不是有效的金额"),
                           ("/paid 12.345", "不是有效的金额"), ("/paid 2026-05", "还没到"), ("/paid 2027-05", "太远")):
        calls = await h.say(b.zhang, zhang_chat, text)
        assert expected in said(calls, zhang_chat.id), text
    rec = h.private(b.recorder)
    for text, expected in ((f"/dues @{b.zhang.username} paid abc", "不是有效的金额"),
                           (f"/dues @{b.zhang.username} sometimes", "没有“sometimes”这个状态"),
                           (f"/dues @{b.zhang.username} paid 2025-01", "不在登记范围内"),
                           ("/dues @nobody paid", "找不到党员")):
        calls = await h.say(b.recorder, rec, text)
        assert expected in said(calls, rec.id), text
    assert await count(h, "dues") == 0 and await count(h, "dues_reports") == 0


# --- a member's "I have paid" -----------------------------------------------------------------------


async def test_member_reports_paid_and_the_recorder_confirms_once(h, b):
    zhang_chat, rec = h.private(b.zhang), h.private(b.recorder)
    calls = await h.say(b.zhang, zhang_chat, "/paid 50")
    assert "已报告 2026-03 党费已缴纳（50元）" in said(calls, zhang_chat.id)
    assert "党费缴纳报告" in said(calls, rec.id) and "张三" in said(calls, rec.id)
    calls = await h.say(b.zhang, zhang_chat, "/paid 50")  # a second report while one waits
    assert "正在等待记录员确认" in said(calls, zhang_chat.id)
    assert await count(h, "dues_reports") == 1

    card = h.world.last_message(rec.id)
    calls = await h.tap(b.recorder, rec.id, "确认已缴")
    assert "已确认：按时足额" in said(calls, rec.id)
    assert "您 2026-03 的党费已登记：按时足额" in said(calls, zhang_chat.id)
    row = (await dues_rows(h, b.branch.id, "2026-03"))[b.member_ids["zhang"]]
    assert row["status"] == "on_time" and row["amount"] == "50"
    report_id = (await rows(h, "SELECT id FROM dues_reports"))[0]["id"]
    calls = await h.press(b.recorder, card, f"du:ok:{report_id}")  # a double tap on the old card
    assert "已经处理过" in plain_popup(calls)

    calls = await h.say(b.zhang, zhang_chat, "/paid")
    assert "已登记为已缴纳" in said(calls, zhang_chat.id)
    assert await count(h, "dues_reports") == 1


async def test_a_report_whose_recorder_chat_is_gone_is_kept_and_the_member_told(h, b):
    zhang_chat = h.private(b.zhang)
    h.world.fail_next("sendMessage", {"error_code": 400, "description": "Bad Request: chat not found"})  # the card
    calls = await h.say(b.zhang, zhang_chat, "/paid 50")
    assert "已报告 2026-03 党费已缴纳" in said(calls, zhang_chat.id) and "记录员暂时收不到私信" in said(calls, zhang_chat.id)
    assert await count(h, "dues_reports") == 1 and await count(h, "dues_report_messages") == 0
    failed = [c for c in h.world.calls if not c.ok]
    assert [c.chat_id for c in failed] == [b.recorder.id]
    h.world.calls.remove(failed[0])  # the one failure this test provoked


async def test_i_have_paid_button_and_reject(h, b):
    lisi_chat, rec = h.private(b.lisi), h.private(b.recorder)
    await h.say(b.lisi, lisi_chat, "/dues")
    calls = await h.tap(b.lisi, lisi_chat.id, "我已缴纳")
    assert "金额：未填写" in said(calls, rec.id)
    calls = await h.tap(b.recorder, rec.id, "不属实")
    assert "未被确认" in said(calls, lisi_chat.id)
    reports = await rows(h, "SELECT status FROM dues_reports")
    assert reports == [{"status": "rejected"}]
    assert await count(h, "dues") == 0


# --- reminders --------------------------------------------------------------------------------------


async def test_reminders_go_to_the_unpaid_privately_with_a_summary(h, b, clock):
    await h.say(b.recorder, h.private(b.recorder), f"/dues @{b.zhang.username} paid 2026-04")
    await h.say(b.secretary, b.group, f"/state @{b.lisi.username} exempt 年老体弱")
    clock.set(local(2026, 4, 5, 9, 1))
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "dues_reminder", "2026-04:first", "done") in done
    assert "2026-04 的党费尚未登记为已缴纳" in said(h.world.sent(b.secretary.id), b.secretary.id)
    assert "2026-04 的党费尚未登记为已缴纳" in said(h.world.sent(b.recorder.id), b.recorder.id)
    assert not h.world.sent(b.zhang.id) or "2026-04 的党费尚未" not in said(h.world.sent(b.zhang.id))
    assert "2026-04 的党费尚未" not in said(h.world.sent(b.lisi.id))  # exempt: not asked
    assert "尚未缴纳 2 人：王书记、李记录" in said(h.world.sent(b.recorder.id))
    assert await engine.tick(h.app, clock.now()) == []

    # The reminder's button: the secretary says they have paid; the recorder gets the card.
    calls = await h.tap(b.secretary, b.secretary.id, "我已缴纳")
    assert "党费缴纳报告" in said(calls, b.recorder.id)

    # A reminder whose moment passed while the bot was down is skipped, not sent late.
    clock.set(local(2026, 4, 28, 12, 0))  # the last reminder was due 28 April 09:00
    before = len(h.world.sent(b.recorder.id))
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "dues_reminder", "2026-04:last", "skipped") in done
    assert len(h.world.sent(b.recorder.id)) == before


async def test_one_member_whose_chat_is_gone_does_not_stop_the_reminders(h, b, clock):
    clock.set(local(2026, 4, 5, 9, 1))
    # The first reminder of the round meets a deleted account ("chat not found", a 400, not a 403).
    h.world.fail_next("sendMessage", {"error_code": 400, "description": "Bad Request: chat not found"})
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "dues_reminder", "2026-04:first", "done") in done
    failed = [c for c in h.world.calls if not c.ok]
    assert len(failed) == 1
    lost = failed[0].chat_id
    reminded = {c.chat_id for c in h.world.calls if c.ok and c.method == "sendMessage"
                and "2026-04 的党费尚未登记为已缴纳" in plain(str(c.params.get("text", "")))}
    everyone = {b.secretary.id, b.recorder.id, b.zhang.id, b.lisi.id}
    assert reminded == everyone - {lost}  # the others were all reminded
    names = {b.secretary.id: "王书记", b.recorder.id: "李记录", b.zhang.id: "张三", b.lisi.id: "李四"}
    summary = said(h.world.sent(b.recorder.id))
    assert "尚未缴纳 4 人" in summary and f"收不到私信，请当面或电话提醒：{names[lost]}" in summary
    h.world.calls.remove(failed[0])  # the one failure this test provoked (the fixture checks there is no other)


# --- the month close ----------------------------------------------------------------------------------


async def test_a_close_that_failed_is_tried_again_on_a_later_tick_and_books_once(h, b, clock, monkeypatch):
    await h.say(b.recorder, h.private(b.recorder), f"/dues @{b.zhang.username} late")
    real_append, attempts = ledger_repo.append, []

    async def flaky_append(conn, row):
        attempts.append(row.reference)
        if len(attempts) == 1:
            raise RuntimeError("disk I/O error")  # half-way through the close's transaction
        return await real_append(conn, row)

    monkeypatch.setattr(ledger_repo, "append", flaky_append)
    clock.set(local(2026, 4, 1, 9, 0))
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "dues_close", "2026-03", "failed") in done
    # Nothing of the failed close stayed: the month is open, nothing booked.
    assert await count(h, "dues_closed") == 0 and await count(h, "ledger", "item_code = 'dues'") == 0
    clock.set(local(2026, 4, 1, 9, 1))
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "dues_close", "2026-03", "done") in done
    ledger = {r["member_id"]: (r["event_code"], r["value"]) for r in await rows(h, "SELECT * FROM ledger WHERE reference = 'dues:2026-03'")}
    assert ledger == {b.member_ids["zhang"]: ("late", "-3"), b.member_ids["secretary"]: ("not_standard", "-10"),
                      b.member_ids["recorder"]: ("not_standard", "-10"), b.member_ids["lisi"]: ("not_standard", "-10")}
    assert "2026-03 党费已结账" in said(h.world.sent(b.recorder.id))
    for minute in (2, 3):  # done: not run again
        clock.set(local(2026, 4, 1, 9, minute))
        assert all(k != "dues_close" for _, k, _, _ in await engine.tick(h.app, clock.now()))
    assert await count(h, "ledger", "item_code = 'dues'") == 4


async def test_a_correction_does_not_reverse_twice_what_an_objection_already_took_back(h, b, clock):
    await h.say(b.recorder, h.private(b.recorder), f"/dues @{b.zhang.username} late")
    clock.set(local(2026, 4, 1, 9, 0))
    await engine.tick(h.app, clock.now())
    booked = (await rows(h, "SELECT * FROM ledger WHERE reference = 'dues:2026-03' AND member_id = ?", b.member_ids["zhang"]))[0]
    async with h.db.transaction() as conn:  # e.g. an objection upheld: the row was already reversed
        original = LedgerRow(**booked)
        assert await ledger_repo.reverse(conn, original, reference=f"obj:{original.id}", actor_id=None, reason="异议")
    sec = h.private(b.secretary)
    calls = await h.say(b.secretary, sec, f"/dues correct 2026-03 @{b.zhang.username} paid 3月25日已按时缴纳")
    assert "逾期缴纳 → 按时足额" in said(calls, sec.id)
    reversals = await rows(h, "SELECT * FROM ledger WHERE reverses_id = ?", booked["id"])
    assert [r["reference"] for r in reversals] == [f"obj:{booked['id']}"]




async def test_zhangdian_month_close_books_once_and_corrections_reverse(h, clock):
    b = await setup_branch(h, preset="zhangdian")
    rec, sec = h.private(b.recorder), h.private(b.secretary)
    await h.say(b.recorder, rec, f"/dues @{b.secretary.username} paid 30")
    await h.say(b.recorder, rec, f"/dues @{b.zhang.username} late")
    await h.say(b.recorder, rec, f"/dues @{b.lisi.username} short 10")
    # the recorder's own dues: nothing recorded, so unpaid at the close

    clock.set(local(2026, 4, 1, 8, 59))
    assert all(k != "dues_close" for _, k, _, _ in await engine.tick(h.app, clock.now()))
    clock.set(local(2026, 4, 1, 9, 0))
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "dues_close", "2026-03", "done") in done
    ledger = {r["member_id"]: r for r in await rows(h, "SELECT * FROM ledger WHERE reference = 'dues:2026-03'")}
    assert {m: (r["item_code"], r["event_code"], r["value"]) for m, r in ledger.items()} == {
        b.member_ids["zhang"]: ("dues", "late", "-10"),
        b.member_ids["lisi"]: ("dues", "short", "-10"),
        b.member_ids["recorder"]: ("dues", "unpaid", "-20"),
    }
    assert {r["occurred_on"] for r in ledger.values()} == {"2026-03-31"} and {r["source"] for r in ledger.values()} == {"automatic"}
    assert "2026-03 党费已结账：按时 1 · 逾期 1 · 不足额 1 · 未缴 1" in said(h.world.sent(b.recorder.id))
    statuses = await dues_rows(h, b.branch.id, "2026-03")
    assert statuses[b.member_ids["recorder"]]["status"] == "unpaid" and statuses[b.member_ids["recorder"]]["marked_by"] is None

    # Once per member per month: later ticks and restarts book nothing more.
    clock.set(local(2026, 4, 2, 9, 0))
    await engine.tick(h.app, clock.now())
    assert await count(h, "ledger", "reference LIKE 'dues:%'") == 3

    # A closed month cannot be marked directly …
    calls = await h.say(b.recorder, rec, f"/dues @{b.zhang.username} paid 2026-03")
    assert "已经结账，不能直接修改" in said(calls, rec.id)
    calls = await h.say(b.recorder, rec, "/dues 2026-03")
    assert "已结账" in said(calls, rec.id) and not any(d.startswith("du:m:") for _, d in h.world.buttons(h.world.last_message(rec.id)))
    # … only corrected, with a reason: a reversing row, and the new status's row under a revision reference.
    calls = await h.say(b.secretary, sec, f"/dues correct 2026-03 @{b.zhang.username} paid")
    assert "理由" in said(calls, sec.id)
    calls = await h.say(b.secretary, sec, f"/dues correct 2026-03 @{b.zhang.username} paid 3月25日已按时缴纳，漏登")
    assert "逾期缴纳 → 按时足额" in said(calls, sec.id)
    zhang_rows = await rows(h, "SELECT * FROM ledger WHERE member_id = ? AND item_code = 'dues' ORDER BY id", b.member_ids["zhang"])
    assert [(r["value"], r["source"], r["reference"]) for r in zhang_rows] == [
        ("-10", "automatic", "dues:2026-03"), ("10", "correction", f"rev:{zhang_rows[0]['id']}")]
    assert zhang_rows[1]["reverses_id"] == zhang_rows[0]["id"]
    calls = await h.say(b.secretary, sec, f"/dues correct 2026-03 @{b.zhang.username} unpaid 核实后确认未缴")
    zhang_rows = await rows(h, "SELECT * FROM ledger WHERE member_id = ? AND item_code = 'dues' ORDER BY id", b.member_ids["zhang"])
    assert (zhang_rows[-1]["value"], zhang_rows[-1]["event_code"], zhang_rows[-1]["reference"]) == ("-20", "unpaid", "dues:2026-03:r2")
    calls = await h.say(b.secretary, sec, f"/dues correct 2026-03 @{b.zhang.username} unpaid 再来一次")
    assert "无需更正" in said(calls, sec.id)
    row = (await dues_rows(h, b.branch.id, "2026-03"))[b.member_ids["zhang"]]
    assert (row["status"], row["revision"], row["ledger_id"]) == ("unpaid", 2, zhang_rows[-1]["id"])

    # The month's dues points per the rulebook: on time 20, late/short 10, unpaid 0.
    rulebook = preset("zhangdian")
    for name, expected in (("secretary", 20), ("lisi", 10), ("recorder", 0), ("zhang", 0)):
        entries = [Entry(id=r["id"], item_code=r["item_code"], value=Decimal(r["value"]), occurred_on=date.fromisoformat(r["occurred_on"]),
                         event_code=r["event_code"], reverses_id=r["reverses_id"])
                   for r in await rows(h, "SELECT * FROM ledger WHERE member_id = ?", b.member_ids[name])]
        score = month_score(rulebook, entries, 2026, 3)
        obligations = next(c for c in score.categories if c.code == "obligations")
        assert obligations.points == 30 + expected, name


async def test_xishui_close_late_minus_3_and_exempt_not_charged(h, b, clock):
    rec = h.private(b.recorder)
    await h.say(b.recorder, rec, f"/dues @{b.zhang.username} 逾期")
    await h.say(b.secretary, b.group, f"/state @{b.lisi.username} exempt 长期病卧")
    calls = await h.say(b.recorder, rec, "/dues")
    assert "李四" not in said(calls, rec.id)  # exempt: not on the roster
    clock.set(local(2026, 4, 3, 9, 0))  # the bot was down over the close: it catches up
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "dues_close", "2026-03", "done") in done
    ledger = {r["member_id"]: (r["item_code"], r["event_code"], r["value"])
              for r in await rows(h, "SELECT * FROM ledger WHERE reference = 'dues:2026-03'")}
    assert ledger == {
        b.member_ids["zhang"]: ("dues", "late", "-3"),
        b.member_ids["secretary"]: ("dues", "not_standard", "-10"),
        b.member_ids["recorder"]: ("dues", "not_standard", "-10"),
    }
    assert "补做" in said(h.world.sent(b.recorder.id))


async def test_a_month_with_nothing_recorded_charges_nobody_but_can_be_corrected(h, b, clock):
    clock.set(local(2026, 4, 1, 9, 0))
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "dues_close", "2026-03", "done") in done
    assert await count(h, "ledger", "item_code = 'dues'") == 0 and await count(h, "dues") == 0
    assert "没有登记任何缴纳情况" in said(h.world.sent(b.recorder.id))
    sec = h.private(b.secretary)
    calls = await h.say(b.secretary, sec, f"/dues correct 2026-03 @{b.zhang.username} unpaid 张三3月确未缴纳")
    assert "未登记 → 未缴纳" in said(calls, sec.id)
    ledger = await rows(h, "SELECT * FROM ledger WHERE item_code = 'dues'")
    assert [(r["member_id"], r["event_code"], r["value"], r["reference"]) for r in ledger] == [
        (b.member_ids["zhang"], "not_standard", "-10", "dues:2026-03:r1")]
    calls = await h.say(b.secretary, sec, f"/dues correct 2026-03 @{b.zhang.username} paid 50 查到了缴费记录")
    ledger = await rows(h, "SELECT * FROM ledger WHERE item_code = 'dues' ORDER BY id")
    assert [(r["value"], r["source"], r["reverses_id"]) for r in ledger] == [("-10", "automatic", None), ("10", "correction", ledger[0]["id"])]
    calls = await h.say(b.recorder, h.private(b.recorder), "/dues 2026-03")
    assert "张三：按时足额（50元）" in said(calls) and "李四：未登记" in said(calls)


async def test_member_report_goes_to_last_month_until_it_closes(h, b, clock):
    await h.say(b.secretary, b.group, "/settings notice_day 5")
    clock.set(local(2026, 4, 2, 10, 0))  # March closes on 5 April
    zhang_chat = h.private(b.zhang)
    calls = await h.say(b.zhang, zhang_chat, "/paid 40")
    assert "已报告 2026-03 党费已缴纳" in said(calls, zhang_chat.id)
    await h.tap(b.recorder, b.recorder.id, "确认已缴")
    row = (await dues_rows(h, b.branch.id, "2026-03"))[b.member_ids["zhang"]]
    assert row["status"] == "late"  # reported after the month ended
    calls = await h.say(b.zhang, zhang_chat, "/paid 40")
    assert "已报告 2026-04 党费已缴纳" in said(calls, zhang_chat.id)


# --- pure rules, for all inputs ---------------------------------------------------------------------


def test_automatic_charge_values():
    """A fixed item books its value; an allotment event its value, or for a ranged event its mildest
    loss (max); an unbound event costs nothing."""
    xishui = preset("xishui")
    item, event, value = xishui.automatic_charge("dues.late")
    assert (item.code, event and event.code, value) == ("dues", "late", Decimal("-3"))
    ranged = xishui.model_copy(update={"automatic": {"dues.late": "post_claim:reduce"}})
    item, event, value = ranged.automatic_charge("dues.late")
    assert (item.code, event.code, value) == ("post_claim", "reduce", Decimal("-1"))
    sanmenxia = preset("sanmenxia")
    assert sanmenxia.automatic_charge("dues.late") is None
    item, event, value = sanmenxia.automatic_charge("dues.unpaid")
    assert (item.code, event, value) == ("unpaid_dues", None, Decimal("-5"))
    assert dues_charge(ranged, DuesStatus.LATE).value == Decimal("-1")


@pytest.mark.parametrize("code", PRESET_CODES)
def test_every_dues_charge_is_a_legal_automatic_entry(code):
    rulebook = preset(code)
    assert dues_charge(rulebook, DuesStatus.ON_TIME) is None
    for status in DuesStatus:
        charge = dues_charge(rulebook, status)
        if charge is None:
            continue
        item = rulebook.item(charge.item_code)
        assert item is not None and Trigger.AUTOMATIC in item.triggers
        assert item.allows(charge.value, charge.event_code) and charge.value < 0


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20))
def test_parse_amount_never_raises_and_accepts_only_money(text):
    value = parse_amount(text)
    if value is not None:
        assert Decimal(0) < value <= AMOUNT_MAX and value.as_tuple().exponent >= -2


@settings(max_examples=200, deadline=None)
@given(st.integers(2000, 2100), st.integers(1, 12), st.integers(1, 31), st.integers(0, 23), st.integers(0, 27),
       st.sampled_from(["Asia/Shanghai", "UTC", "America/New_York"]))
def test_reminders_come_before_the_close_after_the_month(year, month, notice_day, hour, days_before, tz):
    key = f"{year:04d}-{month:02d}"
    settings_ = CalendarSettings(notice_day=notice_day, notice_hour=hour, dues_last_reminder_days_before_close=days_before)
    close = close_moment(key, settings_, tz)
    assert close.date() > last_day(key) and close.date() <= last_day(shift_month(key, 1))
    moments = reminder_moments(key, settings_, tz)
    assert moments["last"] <= close
    assert "first" not in moments or moments["first"] < moments["last"]


def test_a_long_roster_pages_within_telegram_limits():
    branch = Branch(**{"id": 1, "chat_id": -1, "title": "支部" * 30, "preset": "xishui", "custom_items": "[]",
                  "timezone": "Asia/Shanghai", "language": "zh", "reachable": True, "created_by": 1,
                  "created_at": datetime(2026, 1, 1, tzinfo=UTC)})
    lines = []
    for number in range(1, 121):
        member = Member(id=100000 + number, branch_id=1, user_id=number, username=None, name="很长的名字" * 12,
                        status="approved", state="active", state_reason=None, joined_on=date(2026, 1, 1), left_on=None,
                        language=None, reachable=True)
        record = DuesRecord(id=number, branch_id=1, member_id=member.id, month="2026-03", status=DuesStatus.SHORT,
                            amount=Decimal("999999.99"), marked_by=1, marked_at=datetime(2026, 3, 1, tzinfo=UTC),
                            revision=0, ledger_id=None) if number % 2 else None
        lines.append(RosterLine(member, record, None))
    roster = DuesRoster(branch=branch, month="2026-03", closed=False, lines=lines, first_month="2026-01", current_month="2026-03")
    for page in range(8):
        text, markup = roster_view(Translator("zh"), roster, page)
        assert len(text) < 4096
        buttons = [b for row in markup.inline_keyboard for b in row]
        assert len(buttons) <= 30 and all(len(b.callback_data.encode()) <= 64 for b in buttons)


async def test_an_english_speaking_member_reads_english(h, b):
    lisi = h.user(b.lisi.id, "李四", username=b.lisi.username, language="en")
    chat = h.private(lisi)
    calls = await h.say(lisi, chat, "/paid -5")
    assert "is not a valid amount" in said(calls, chat.id)
    calls = await h.say(lisi, chat, "/dues")
    assert "party dues" in said(calls, chat.id) and "not recorded" in said(calls, chat.id)
    calls = await h.tap(lisi, chat.id, "I have paid")
    assert "reported your dues for 2026-03 as paid" in said(calls, chat.id)
    assert "党费缴纳报告" in said(calls, b.recorder.id)  # the recorder reads their own language
