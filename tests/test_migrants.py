"""Migrant members' quarterly reports: the ask, the /report flow, the recorder's review, the reminder,
and a missing report at the quarter's close — through the real handlers, services, SQLite and the tick."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

import bot.services.migrants as migrant_service
from bot.domain.calendar import CalendarSettings
from bot.domain.dues import REPORT_MAX, migrant_close_moment, migrant_remind_moment, quarter_bounds, quarter_of, shift_quarter
from bot.presets import preset
from schedules import engine
from storage import migrants as migrant_repo
from tests.conftest import count, popups, rows, said

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(y: int, m: int, d: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(y, m, d, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def alerts(calls) -> str:
    return "\n".join(str(c.params.get("text", "")) for c in popups(calls) if c.params.get("show_alert"))


async def make_migrant(h, b, person) -> None:
    await h.say(b.secretary, b.group, f"/state @{person.username} migrant")


async def write_report(h, person, text: str, *, photo: bool = False, start: str = "/report") -> None:
    chat = h.private(person)
    if start == "/report":
        await h.say(person, chat, "/report")
    else:
        await h.tap(person, chat.id, start)
    await h.say(person, chat, text)
    if photo:
        await h.send_photo(person, chat)
    else:
        await h.tap(person, chat.id, "无照片")
    await h.tap(person, chat.id, "提交汇报")


async def test_quarter_ask_close_of_the_last_quarter_and_a_report_returned_then_accepted(h, b, clock):
    await make_migrant(h, b, b.zhang)
    clock.set(local(2026, 4, 1, 9, 0))
    done = await engine.tick(h.app, clock.now())
    # Q1 closes first (张三 sent nothing: recorded, listed, nothing deducted), then Q2 is asked for.
    order = [(k, key) for _, k, key, _ in done if k.startswith("migrant_")]
    assert order == [("migrant_close", "2026-Q1"), ("migrant_ask", "2026-Q2")]
    assert await rows(h, "SELECT member_id, quarter, ledger_id FROM migrant_missing") == [
        {"member_id": b.member_ids["zhang"], "quarter": "2026-Q1", "ledger_id": None}]
    listing = said(h.world.sent(b.recorder.id))
    assert "2026-Q1 已结束，1 名流动党员未提交思想和工作汇报：张三" in listing and "未扣分" in listing
    assert "请提交 2026-Q2 的思想和工作汇报" in said(h.world.sent(b.zhang.id))
    assert "2026-Q2 的思想和工作汇报" not in said(h.world.sent(b.lisi.id))  # not migrant: not asked
    assert await count(h, "ledger", "reference LIKE 'migrant:%'") == 0

    await write_report(h, b.zhang, "本季度在广东务工，坚持每周学习党章，参加了当地流动党员活动。", photo=True, start="写季度汇报")
    report = (await rows(h, "SELECT * FROM migrant_reports"))[0]
    assert (report["quarter"], report["status"]) == ("2026-Q2", "submitted") and report["photo_file_id"]
    card = said(h.world.sent(b.recorder.id)[-1:])
    assert f"季度汇报 #{report['id']}" in card and "广东务工" in card
    assert h.world.sent(b.recorder.id, "sendPhoto")

    calls = await h.tap(b.recorder, b.recorder.id, "退回")
    assert "请回复退回汇报" in said(calls, b.recorder.id)
    calls = await h.say(b.recorder, h.private(b.recorder), "请写清楚参加了哪些活动")
    assert "被退回" in said(calls, b.zhang.id) and "请写清楚参加了哪些活动" in said(calls, b.zhang.id)
    assert (await rows(h, "SELECT status, reason FROM migrant_reports"))[0] == {"status": "returned", "reason": "请写清楚参加了哪些活动"}

    await write_report(h, b.zhang, "补充：5月参加了深圳流动党员党支部的主题党日，6月参加志愿服务两次。")
    calls = await h.tap(b.recorder, b.recorder.id, "通过")
    assert "已通过" in said(calls, b.zhang.id)
    statuses = [r["status"] for r in await rows(h, "SELECT status FROM migrant_reports ORDER BY id")]
    assert statuses == ["returned", "accepted"]
    second = (await rows(h, "SELECT id FROM migrant_reports ORDER BY id DESC LIMIT 1"))[0]["id"]
    calls = await h.press(b.recorder, h.world.last_message(b.recorder.id), f"mg:ok:{second}")
    assert "已经审核过了" in alerts(calls)
    calls = await h.say(b.zhang, h.private(b.zhang), "/report")
    assert "已经通过" in said(calls, b.zhang.id)
    assert await count(h, "migrant_reports") == 2

    calls = await h.say(b.recorder, h.private(b.recorder), "/migrants")
    assert "张三：已通过" in said(calls, b.recorder.id)
    calls = await h.say(b.recorder, h.private(b.recorder), "/migrants 2026-q1")
    assert "张三：未提交（已记录）" in said(calls, b.recorder.id)


async def test_bad_input_and_authority(h, b):
    calls = await h.say(b.lisi, h.private(b.lisi), "/report")
    assert "只有流动党员" in said(calls, b.lisi.id)
    await make_migrant(h, b, b.zhang)
    chat = h.private(b.zhang)
    await h.say(b.zhang, chat, "/report")
    calls = await h.say(b.zhang, chat, "很" * 5000)
    assert f"最多 {REPORT_MAX} 字" in said(calls, chat.id)
    assert await count(h, "migrant_reports") == 0
    calls = await h.tap(b.zhang, chat.id, "取消")
    assert "未保存任何内容" in said(calls, chat.id)
    assert await count(h, "migrant_reports") == 0

    await write_report(h, b.zhang, "本季度思想汇报。")
    report_id = (await rows(h, "SELECT id FROM migrant_reports"))[0]["id"]
    lisi_view = h.world.last_message(b.lisi.id)
    calls = await h.press(b.lisi, lisi_view, f"mg:ok:{report_id}")
    assert "没有审核这份汇报的权限" in alerts(calls)
    calls = await h.press(b.lisi, lisi_view, f"mg:rt:{report_id}")
    assert "没有审核这份汇报的权限" in alerts(calls)
    calls = await h.press(b.zhang, h.world.last_message(b.zhang.id), f"mg:ok:{report_id}")
    assert alerts(calls)
    assert (await rows(h, "SELECT status FROM migrant_reports"))[0]["status"] == "submitted"
    calls = await h.say(b.zhang, chat, "/report")  # one live report per quarter
    assert "已经提交，正在等待审核" in said(calls, chat.id)


async def test_a_report_whose_reviewer_chat_is_gone_is_kept_and_the_member_told(h, b):
    await make_migrant(h, b, b.zhang)
    chat = h.private(b.zhang)
    await h.say(b.zhang, chat, "/report")
    await h.say(b.zhang, chat, "本季度思想汇报。")
    await h.send_photo(b.zhang, chat)
    h.world.fail_next("sendPhoto", {"error_code": 400, "description": "Bad Request: chat not found"})
    h.world.fail_next("sendMessage", {"error_code": 400, "description": "Bad Request: chat not found"})
    calls = await h.tap(b.zhang, chat.id, "提交汇报")
    assert "已提交" in said(calls, chat.id) and "记录员暂时收不到私信" in said(calls, chat.id)
    assert await count(h, "migrant_reports") == 1 and await count(h, "migrant_report_messages") == 0
    failed = [c for c in h.world.calls if not c.ok]
    assert sorted(c.method for c in failed) == ["sendMessage", "sendPhoto"] and {c.chat_id for c in failed} == {b.recorder.id}
    for call in failed:  # the failures this test provoked
        h.world.calls.remove(call)


async def test_a_recorders_own_report_goes_to_the_secretary(h, b):
    await make_migrant(h, b, b.recorder)
    await write_report(h, b.recorder, "记录员本季度在外地的思想和工作汇报。")
    assert "季度汇报" in said(h.world.sent(b.secretary.id)[-1:])
    assert "季度汇报 #" not in said(h.world.sent(b.recorder.id, "sendMessage")[-1:])
    report_id = (await rows(h, "SELECT id FROM migrant_reports"))[0]["id"]
    calls = await h.press(b.recorder, h.world.last_message(b.recorder.id), f"mg:ok:{report_id}")
    assert "不能审核自己的汇报" in alerts(calls)
    await h.tap(b.secretary, b.secretary.id, "通过")
    assert (await rows(h, "SELECT status FROM migrant_reports"))[0]["status"] == "accepted"


async def test_reminder_then_missing_report_is_recorded_and_booked_where_the_rulebook_says(h, b, clock, monkeypatch):
    await make_migrant(h, b, b.zhang)
    await make_migrant(h, b, b.lisi)
    await write_report(h, b.lisi, "李四本季度的思想和工作汇报。")  # sent, not yet reviewed: not missing
    clock.set(local(2026, 3, 24, 9, 5))  # a week before the quarter's end
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "migrant_remind", "2026-Q1", "done") in done
    assert "还没有提交 2026-Q1" in said(h.world.sent(b.zhang.id))
    assert "还没有提交 2026-Q1" not in said(h.world.sent(b.lisi.id))
    assert "尚未提交思想和工作汇报的流动党员 1 人：张三" in said(h.world.sent(b.recorder.id))

    # A branch whose rules deduct for a missing report (no preset does today).
    bound = preset("sanmenxia").model_copy(update={"automatic": {"migrant.missing_report": "skip_org_life"}})
    monkeypatch.setattr(migrant_service, "rulebook_of", lambda branch: bound)
    clock.set(local(2026, 4, 1, 12, 0))  # the bot was down at 09:00: the close catches up
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "migrant_close", "2026-Q1", "done") in done
    ledger = await rows(h, "SELECT * FROM ledger WHERE reference LIKE 'migrant:%'")
    assert [(r["member_id"], r["item_code"], r["value"], r["occurred_on"], r["reference"]) for r in ledger] == [
        (b.member_ids["zhang"], "skip_org_life", "-5", "2026-03-31", "migrant:2026-Q1")]
    missing = await rows(h, "SELECT member_id, ledger_id FROM migrant_missing")
    assert missing == [{"member_id": b.member_ids["zhang"], "ledger_id": ledger[0]["id"]}]
    assert "每人 -5 分" in said(h.world.sent(b.recorder.id)) and "补做" in said(h.world.sent(b.recorder.id))
    await engine.tick(h.app, clock.now())
    assert await count(h, "ledger", "reference LIKE 'migrant:%'") == 1

    # The closed quarter takes no more reports; a new one goes to Q2.
    await write_report(h, b.zhang, "迟到的一季度汇报。")
    assert (await rows(h, "SELECT quarter FROM migrant_reports ORDER BY id DESC LIMIT 1"))[0]["quarter"] == "2026-Q2"


async def test_a_report_returned_after_the_close_is_sent_again_for_that_quarter(h, b, clock):
    await make_migrant(h, b, b.zhang)
    await write_report(h, b.zhang, "一季度在外务工，坚持学习。")  # 20 March: in time for Q1
    clock.set(local(2026, 4, 1, 9, 0))
    await engine.tick(h.app, clock.now())  # Q1 closes: a report was sent, so nothing is missing
    assert await count(h, "migrant_missing") == 0

    clock.set(local(2026, 4, 2, 10, 0))  # the recorder reviews it after the close and returns it
    await h.tap(b.recorder, b.recorder.id, "退回")
    calls = await h.say(b.recorder, h.private(b.recorder), "请写清楚参加了哪些活动")
    told = said(calls, b.zhang.id)
    assert "2026-Q1 的思想和工作汇报被退回" in told and "仍可修改后发送 /report 重新提交这个季度的汇报，截止 2026-07-01 09:00" in told

    calls = await h.say(b.zhang, h.private(b.zhang), "/report")  # goes to the returned quarter, not Q2
    assert "2026-Q1 思想和工作汇报" in said(calls, b.zhang.id)
    await h.say(b.zhang, h.private(b.zhang), "补充：参加了当地流动党员党支部的两次主题党日。")
    await h.tap(b.zhang, b.zhang.id, "无照片")
    calls = await h.tap(b.zhang, b.zhang.id, "提交汇报")
    assert "（2026-Q1）已提交" in said(calls, b.zhang.id)
    assert [(r["quarter"], r["status"]) for r in await rows(h, "SELECT * FROM migrant_reports ORDER BY id")] == [
        ("2026-Q1", "returned"), ("2026-Q1", "submitted")]
    await h.tap(b.recorder, b.recorder.id, "通过")
    calls = await h.say(b.recorder, h.private(b.recorder), "/migrants 2026-Q1")
    assert "张三：已通过" in said(calls, b.recorder.id)
    calls = await h.say(b.zhang, h.private(b.zhang), "/report")  # Q1 is done: now this quarter
    assert "2026-Q2 思想和工作汇报" in said(calls, b.zhang.id)
    await h.tap(b.zhang, b.zhang.id, "取消")
    clock.set(local(2026, 7, 1, 9, 0))
    await engine.tick(h.app, clock.now())
    assert await rows(h, "SELECT quarter FROM migrant_missing ORDER BY quarter") == [{"quarter": "2026-Q2"}]


async def test_a_returned_report_not_sent_again_is_missing_at_the_next_close(h, b, clock, monkeypatch):
    await make_migrant(h, b, b.zhang)
    await write_report(h, b.zhang, "一季度汇报。")
    clock.set(local(2026, 4, 1, 9, 0))
    await engine.tick(h.app, clock.now())
    clock.set(local(2026, 4, 2, 10, 0))
    await h.tap(b.recorder, b.recorder.id, "退回")
    await h.say(b.recorder, h.private(b.recorder), "内容太简单")
    await write_report(h, b.zhang, "修改后的一季度汇报。")  # /report offers Q1 again …
    await h.tap(b.recorder, b.recorder.id, "退回")  # … and returned once more
    await h.say(b.recorder, h.private(b.recorder), "还是太简单")
    await write_report(h, b.zhang, "再次修改的一季度汇报。")
    assert [(r["quarter"], r["status"]) for r in await rows(h, "SELECT * FROM migrant_reports ORDER BY id")] == [
        ("2026-Q1", "returned"), ("2026-Q1", "returned"), ("2026-Q1", "submitted")]
    await h.tap(b.recorder, b.recorder.id, "退回")
    await h.say(b.recorder, h.private(b.recorder), "第三次退回")
    assert len(await migrant_repo.revisable(h.db.conn, b.branch.id)) == 1

    bound = preset("sanmenxia").model_copy(update={"automatic": {"migrant.missing_report": "skip_org_life"}})
    monkeypatch.setattr(migrant_service, "rulebook_of", lambda branch: bound)
    clock.set(local(2026, 7, 1, 9, 0))  # Q2 closes: Q2 sent nothing, Q1's returned report was not sent again
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "migrant_close", "2026-Q2", "done") in done
    missing = await rows(h, "SELECT quarter, ledger_id FROM migrant_missing ORDER BY quarter")
    assert [m["quarter"] for m in missing] == ["2026-Q1", "2026-Q2"] and all(m["ledger_id"] for m in missing)
    ledger = await rows(h, "SELECT reference, value, occurred_on FROM ledger WHERE reference LIKE 'migrant:%' ORDER BY id")
    assert ledger == [{"reference": "migrant:2026-Q2", "value": "-5", "occurred_on": "2026-06-30"},
                      {"reference": "migrant:2026-Q1", "value": "-5", "occurred_on": "2026-03-31"}]
    listing = said(h.world.sent(b.recorder.id))
    assert "逾期未重新提交，已记为未提交：张三（2026-Q1）" in listing
    calls = await h.say(b.recorder, h.private(b.recorder), "/migrants 2026-Q1")
    assert "张三：未提交（已记录）" in said(calls, b.recorder.id)
    calls = await h.say(b.zhang, h.private(b.zhang), "/report")  # too late for Q1 now
    assert "2026-Q3 思想和工作汇报" in said(calls, b.zhang.id)
    await h.tap(b.zhang, b.zhang.id, "取消")


async def test_a_report_returned_before_the_close_and_not_sent_again_is_missing_at_that_close(h, b, clock):
    await make_migrant(h, b, b.zhang)
    await write_report(h, b.zhang, "一季度汇报。")
    await h.tap(b.recorder, b.recorder.id, "退回")
    await h.say(b.recorder, h.private(b.recorder), "请补充")
    assert "截止" not in said(h.world.sent(b.zhang.id)[-1:])  # the quarter is open: the ordinary message
    clock.set(local(2026, 4, 1, 9, 0))
    await engine.tick(h.app, clock.now())
    assert await rows(h, "SELECT quarter FROM migrant_missing") == [{"quarter": "2026-Q1"}]
    calls = await h.say(b.zhang, h.private(b.zhang), "/report")
    assert "2026-Q2 思想和工作汇报" in said(calls, b.zhang.id)
    await h.tap(b.zhang, b.zhang.id, "取消")


async def test_the_quarter_closes_at_the_branchs_notice_moment_before_the_notice(h, b, clock):
    await make_migrant(h, b, b.zhang)
    await h.say(b.secretary, b.group, "/settings notice_hour 7")
    clock.set(local(2026, 4, 1, 7, 0))
    done = await engine.tick(h.app, clock.now())
    kinds = [kind for _, kind, _, _ in done]
    assert (b.branch.id, "migrant_close", "2026-Q1", "done") in done
    assert "notice" in kinds and kinds.index("migrant_close") < kinds.index("notice")
    assert await rows(h, "SELECT quarter FROM migrant_missing") == [{"quarter": "2026-Q1"}]


async def test_a_migrant_close_that_failed_is_tried_again(h, b, clock, monkeypatch):
    await make_migrant(h, b, b.zhang)
    real, attempts = migrant_repo.record_missing, []

    async def flaky(conn, *args):
        attempts.append(args)
        if len(attempts) == 1:
            raise RuntimeError("disk I/O error")
        return await real(conn, *args)

    monkeypatch.setattr(migrant_repo, "record_missing", flaky)
    clock.set(local(2026, 4, 1, 9, 0))
    assert (b.branch.id, "migrant_close", "2026-Q1", "failed") in await engine.tick(h.app, clock.now())
    assert await count(h, "migrant_closed") == 0 and await count(h, "migrant_missing") == 0
    clock.set(local(2026, 4, 1, 9, 1))
    assert (b.branch.id, "migrant_close", "2026-Q1", "done") in await engine.tick(h.app, clock.now())
    assert await count(h, "migrant_missing") == 1
    assert "2026-Q1 已结束，1 名流动党员未提交" in said(h.world.sent(b.recorder.id))


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=datetime(2000, 1, 1).date(), max_value=datetime(2099, 12, 31).date()))
def test_quarters_are_contiguous_and_moments_ordered(day):
    key = quarter_of(day)
    first, last = quarter_bounds(key)
    assert first <= day <= last
    assert quarter_bounds(shift_quarter(key, 1))[0] == last.fromordinal(last.toordinal() + 1)
    assert shift_quarter(shift_quarter(key, 3), -3) == key
    tz = "Asia/Shanghai"
    assert migrant_remind_moment(key, tz).date() < last < migrant_close_moment(key, CalendarSettings(), tz).date()
