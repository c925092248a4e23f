"""Meetings end to end: /meeting, the announcement's buttons, leave, reminders, check-in, the roll call
and closing into the ledger — on the offline Telegram, asserting on Bot API calls and the database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.meetings import (
    Attendance,
    AttendanceRecord,
    Booking,
    LeaveStatus,
    BookedRow,
    MeetingKind,
    booking,
    effective_status,
    parse_when,
    reconcile,
)
from bot.harness import plain
from bot.presets import preset
from schedules import engine
from storage import members as member_repo
from tests.conftest import TestHarness, count, popups, rows, said, setup_branch


TZ = "Asia/Shanghai"
START = datetime(2026, 3, 25, 6, 30, tzinfo=UTC)  # 2026-03-25 14:30 in Shanghai; the clock starts on 03-20 10:00


def alerts(calls) -> list[str]:
    return [plain(str(c.params.get("text", ""))) for c in popups(calls) if c.params.get("show_alert")]


def sent_since(h: TestHarness, before: int, chat_id: int | None = None):
    """Messages the bot sent after call number ``before`` (optionally in one chat)."""
    return [c for c in h.world.calls[before:] if c.method == "sendMessage" and c.ok and (chat_id is None or c.chat_id == chat_id)]


def popup_texts(calls) -> list[str]:
    return [plain(str(c.params.get("text", ""))) for c in popups(calls)]


async def schedule(h: TestHarness, b, *, kind: str = "支部党员大会", when: str = "2026-03-25 14:30",
                   place: str = "村委会议室", topic: str = "学习党章") -> int:
    chat = h.private(b.secretary)
    await h.say(b.secretary, chat, "/meeting")
    await h.tap(b.secretary, chat.id, kind)
    await h.say(b.secretary, chat, when)
    await h.say(b.secretary, chat, place)
    await h.say(b.secretary, chat, topic)
    await h.tap(b.secretary, chat.id, "发布")
    found = await rows(h, "SELECT id FROM meetings ORDER BY id DESC LIMIT 1")
    return found[0]["id"]


async def ledger_of(h: TestHarness, meeting_id: int) -> list[dict]:
    return await rows(h, "SELECT * FROM ledger WHERE reference LIKE ? ORDER BY id", f"meeting:{meeting_id}:%")


async def net(h: TestHarness, member_id: int, meeting_id: int) -> Decimal:
    """What the meeting costs the member now: its rows and every reversal of them (re-marks, corrections, objections)."""
    found = await rows(h, "SELECT value FROM ledger WHERE member_id = ?1 AND (reference LIKE ?2 OR reverses_id IN"
                          " (SELECT id FROM ledger WHERE reference LIKE ?2))", member_id, f"meeting:{meeting_id}:%")
    return sum((Decimal(r["value"]) for r in found), Decimal(0))


async def roll_message(h: TestHarness, user, meeting_id: int):
    """Open the roll call from /meetings in private; returns the roll call message."""
    chat = h.private(user)
    await h.say(user, chat, "/meetings")
    await h.tap(user, chat.id, f"点名 #{meeting_id}")
    return h.world.last_message(chat.id)


async def mark(h: TestHarness, user, message, meeting_id: int, member_id: int, status: str, page: int = 0):
    return await h.press(user, message, f"mt:m:{meeting_id}:{member_id}:{status}:{page}")


async def close(h: TestHarness, user, message, meeting_id: int, page: int = 0, *, confirm: bool = True):
    """Press Close on a roll call message and, where the bot asks to confirm the absences, confirm.
    Returns the calls of both presses."""
    calls = await h.press(user, message, f"mt:cl:{meeting_id}:{page}")
    asked = h.world.message_by_id(message.chat.id, message.message_id)
    confirm_data = [d for _, d in h.world.buttons(asked) if d.startswith(f"mt:cf:{meeting_id}:")]
    if confirm and confirm_data:
        calls += await h.press(user, asked, confirm_data[0])
    return calls


def closed_popup(calls) -> str:
    return next(t for t in popup_texts(calls) if "已结束" in t)


# --- scheduling ----------------------------------------------------------------------------------------


async def test_schedule_in_private_announces_in_the_group_once(h, b):
    meeting_id = await schedule(h, b)
    meeting = (await rows(h, "SELECT * FROM meetings"))[0]
    assert meeting["kind"] == "branch_meeting" and meeting["starts_at"] == "2026-03-25T06:30:00+00:00"
    assert meeting["place"] == "村委会议室" and meeting["topic"] == "学习党章" and meeting["status"] == "scheduled"
    announcement = h.world.last_message(b.group.id)
    assert "支部党员大会" in announcement.text and "2026-03-25（周三）14:30" in announcement.text and "学习党章" in announcement.text
    assert [d for _, d in h.world.buttons(announcement)] == [f"mt:go:{meeting_id}", f"mt:lv:{meeting_id}"]
    assert (meeting["announce_chat_id"], meeting["announce_message_id"]) == (b.group.id, announcement.message_id)
    assert "已安排" in plain(h.world.last_message(b.secretary.id).text)

    # the confirmation replayed: the same meeting, nothing announced twice
    branch = b.branch
    from bot.services import Actor
    from bot.services.meetings import MeetingDraft
    secretary = Actor(user_id=b.secretary.id, name="王书记")
    draft = MeetingDraft(kind=MeetingKind.COMMITTEE, starts_at=START, place="x", topic="y")
    first, created = await h.services.meetings.schedule(branch, secretary, draft, client_key="k1")
    again, created_again = await h.services.meetings.schedule(branch, secretary, draft, client_key="k1")
    assert created and not created_again and first.id == again.id
    assert await count(h, "meetings") == 2


async def test_schedule_in_the_group_with_forced_replies(h, b):
    await h.say(b.secretary, b.group, "/meeting")
    calls = await h.tap(b.secretary, b.group.id, "主题党日")
    prompt = [c for c in calls if c.method == "sendMessage"][-1]
    assert prompt.params["reply_markup"].get("force_reply") is True and prompt.params["reply_markup"].get("selective") is True
    await h.say(b.secretary, b.group, "3月27日 9点半")
    await h.say(b.secretary, b.group, "党员活动室")
    await h.say(b.secretary, b.group, "清扫村道")
    await h.tap(b.secretary, b.group.id, "发布")
    meeting = (await rows(h, "SELECT * FROM meetings"))[0]
    assert meeting["kind"] == "theme_day" and meeting["starts_at"] == "2026-03-27T01:30:00+00:00"


async def test_bad_input_gets_a_clear_message_and_saves_nothing(h, b):
    chat = h.private(b.secretary)
    calls = await h.say(b.zhang, h.private(b.zhang), "/meeting")
    assert "只有以下角色可以这样做" in said(calls)
    await h.say(b.secretary, chat, "/meeting")
    await h.tap(b.secretary, chat.id, "党课")
    for text, refusal in (("2026-03-19 14:30", "已经过去了"), ("2026-03-20 09:00", "已经过去了"),
                          ("下周二下午", "看不懂这个时间"), ("2026-02-30 10:00", "看不懂这个时间"),
                          ("2026-03-25 25:00", "看不懂这个时间"), ("2028-03-25 10:00", "最多只能提前")):
        calls = await h.say(b.secretary, chat, text)
        assert refusal in said(calls, chat.id), text
    await h.say(b.secretary, chat, "2026-03-25 14:30")
    calls = await h.say(b.secretary, chat, "地" * 5000)
    assert "内容太长" in said(calls, chat.id)
    await h.say(b.secretary, chat, "会议室")
    calls = await h.say(b.secretary, chat, "题" * 5000)
    assert "内容太长" in said(calls, chat.id) and "5000" in said(calls, chat.id)
    assert await count(h, "meetings") == 0
    await h.say(b.secretary, chat, "<b>学习</b> & 讨论")
    calls = await h.tap(b.secretary, chat.id, "取消")
    assert "未安排会议" in said(calls, chat.id)
    assert await count(h, "meetings") == 0
    # user text is escaped, never markup
    meeting_id = await schedule(h, b, topic="<b>学习</b> & 讨论")
    announcement = [c for c in h.world.sent(b.group.id) if c.method == "sendMessage"][-1]
    assert "&lt;b&gt;学习&lt;/b&gt; &amp; 讨论" in announcement.params["text"] and meeting_id


# --- answers and leave -----------------------------------------------------------------------------------


async def test_attend_and_leave_approved_by_the_secretary(h, b):
    meeting_id = await schedule(h, b)
    announcement = h.world.last_message(b.group.id)
    calls = await h.press(b.zhang, announcement, f"mt:go:{meeting_id}")
    assert popup_texts(calls) == ["已登记：您将参加会议。"]
    assert "已报名参加 1 人" in h.world.last_message(b.group.id).text or "已报名参加 1 人" in plain(
        h.world.message_by_id(b.group.id, announcement.message_id).text)
    calls = await h.press(b.zhang, announcement, f"mt:go:{meeting_id}")
    assert popup_texts(calls) == ["您已经登记参加了。"]

    # lisi asks for leave: the reason is asked privately; an overlong reason saves nothing
    calls = await h.press(b.lisi, announcement, f"mt:lv:{meeting_id}")
    assert "请在与我的私聊中填写请假理由" in popup_texts(calls)[0]
    assert "请回复请假理由" in said(calls, b.lisi.id)
    calls = await h.say(b.lisi, h.private(b.lisi), "理" * 5000)
    assert "内容太长" in said(calls, b.lisi.id)
    assert await count(h, "meeting_attendance", "leave_status IS NOT NULL") == 0
    calls = await h.say(b.lisi, h.private(b.lisi), "外出务工，无法返回")
    assert "请假申请已提交" in said(calls, b.lisi.id)
    card_calls = [c for c in calls if c.method == "sendMessage" and c.chat_id == b.secretary.id]
    assert card_calls and "外出务工" in card_calls[0].params["text"]
    lisi_id = b.member_ids["lisi"]
    assert [d for _, d in h.world.buttons(card_calls[0])] == [f"mt:la:{meeting_id}:{lisi_id}", f"mt:lr:{meeting_id}:{lisi_id}"]
    assert "请假 1 人" in plain(h.world.message_by_id(b.group.id, announcement.message_id).text)
    calls = await h.press(b.lisi, announcement, f"mt:lv:{meeting_id}")
    assert alerts(calls) == ["您的请假申请已提交，正在等待批准。"]

    card = h.world.message_by_id(b.secretary.id, card_calls[0].result["message_id"])
    for presser in (b.recorder, b.lisi):  # not a secretary or deputy
        calls = await h.press(presser, card, f"mt:la:{meeting_id}:{lisi_id}")
        assert alerts(calls) and "只有以下角色" in alerts(calls)[0]
    assert (await rows(h, "SELECT leave_status FROM meeting_attendance WHERE member_id = ?", lisi_id))[0]["leave_status"] == "pending"
    calls = await h.press(b.secretary, card, f"mt:la:{meeting_id}:{lisi_id}")
    assert "已准假" in said(calls, b.secretary.id) and "您的请假已获批准" in said(calls, b.lisi.id)
    calls = await h.press(b.secretary, card, f"mt:lr:{meeting_id}:{lisi_id}")
    assert alerts(calls) == ["这条请假申请已经处理过了。"]
    assert (await rows(h, "SELECT leave_status FROM meeting_attendance WHERE member_id = ?", lisi_id))[0]["leave_status"] == "approved"


async def test_leave_goes_to_the_group_when_no_manager_is_reachable(h, b):
    meeting_id = await schedule(h, b)
    h.world.block(b.secretary.id)
    await h.press(b.zhang, h.world.last_message(b.group.id), f"mt:lv:{meeting_id}")
    calls = await h.say(b.zhang, h.private(b.zhang), "生病住院")
    assert "已把请假申请发到支部群里" in said(calls, b.zhang.id)
    posted = [c for c in calls if c.method == "sendMessage" and c.chat_id == b.group.id and "生病住院" in c.params["text"]]
    assert posted and h.world.buttons(posted[0])
    h.world.unblock(b.secretary.id)
    calls = await h.tap(b.secretary, b.group.id, "不准假")
    assert "未准假" in said(calls, b.group.id) and "未获批准" in said(calls, b.zhang.id)


# --- reminders and restart safety ---------------------------------------------------------------------


async def test_reminders_once_privately_to_those_who_have_not_answered(h, b, clock, database_url):
    meeting_id = await schedule(h, b)
    await h.press(b.zhang, h.world.last_message(b.group.id), f"mt:go:{meeting_id}")
    before = len(h.world.calls)
    clock.set(START - timedelta(days=1) + timedelta(minutes=1))
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "meeting_reminder", f"{meeting_id}:1440", "done") in done
    group = [c for c in sent_since(h, before, b.group.id) if "会议提醒" in c.params["text"]]
    assert len(group) == 1 and h.world.buttons(group[0]) == [("✅ 参加", f"mt:go:{meeting_id}"), ("📝 请假", f"mt:lv:{meeting_id}")]
    reminded = {c.chat_id for c in sent_since(h, before) if "还没有回复" in c.params["text"]}
    assert reminded == {b.secretary.id, b.recorder.id, b.lisi.id}  # zhang answered
    assert [k for _, k_, k, _ in await engine.tick(h.app, clock.now()) if k_ == "meeting_reminder"] == []
    async with TestHarness(database_url, clock) as restarted:  # a restart: nothing again
        assert [r for r in await engine.tick(restarted.app, clock.now()) if r[1] == "meeting_reminder"] == []

    # the bot was down across the one-hour reminder: it is recorded as skipped, not sent
    before = len(h.world.calls)
    clock.set(START - timedelta(minutes=30))
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "meeting_reminder", f"{meeting_id}:60", "skipped") in done
    assert not [c for c in sent_since(h, before) if "会议提醒" in c.params["text"]]


async def test_a_cancelled_meeting_is_not_reminded(h, b, clock):
    meeting_id = await schedule(h, b)
    chat = h.private(b.secretary)
    await h.say(b.secretary, chat, "/meetings")
    calls = await h.tap(b.secretary, chat.id, f"取消 #{meeting_id}")
    assert "已取消" in said(calls, b.group.id)
    assert (await rows(h, "SELECT status FROM meetings"))[0]["status"] == "cancelled"
    clock.set(START - timedelta(minutes=59))
    before = len(h.world.calls)
    await engine.tick(h.app, clock.now())
    assert not [c for c in sent_since(h, before) if "会议提醒" in c.params["text"]]
    announcement = (await rows(h, "SELECT announce_message_id FROM meetings"))[0]["announce_message_id"]
    calls = await h.press(b.zhang, h.world.message_by_id(b.group.id, announcement), f"mt:go:{meeting_id}")
    assert alerts(calls) == ["这次会议已经取消。"]


# --- check-in, roll call, close --------------------------------------------------------------------------


async def test_checkin_roll_call_and_close_book_the_xishui_rules_once(h, b, clock):
    ids = b.member_ids
    meeting_id = await schedule(h, b)
    # lisi's leave is approved beforehand
    await h.press(b.lisi, h.world.last_message(b.group.id), f"mt:lv:{meeting_id}")
    await h.say(b.lisi, h.private(b.lisi), "家中有事")
    await h.tap(b.secretary, b.secretary.id, "✅ 准假")

    clock.set(START - timedelta(minutes=31))
    await engine.tick(h.app, clock.now())
    assert not [c for c in h.world.sent(b.group.id) if "开始签到" in str(c.params.get("text", ""))]
    clock.set(START - timedelta(minutes=30))
    await engine.tick(h.app, clock.now())
    checkin, _ = h.find_button(b.group.id, "签到")
    assert "开始签到" in checkin.text and h.world.buttons(checkin) == [("🖊 签到", f"mt:ci:{meeting_id}")]
    clock.set(START + timedelta(minutes=5))
    calls = await h.press(b.zhang, checkin, f"mt:ci:{meeting_id}")
    assert popup_texts(calls) == ["✅ 签到成功。"]
    calls = await h.press(b.zhang, checkin, f"mt:ci:{meeting_id}")
    assert popup_texts(calls) == ["您已经签到过了。"]

    roll = await roll_message(h, b.recorder, meeting_id)
    assert "张三：出席（已签到）" in plain(roll.text) and "李四：请假（已准假）" in plain(roll.text)
    assert "李记录：缺席" in plain(roll.text)
    calls = await mark(h, b.recorder, roll, meeting_id, ids["secretary"], "l")
    assert popup_texts(calls) == ["王书记：迟到"]
    calls = await mark(h, b.recorder, roll, meeting_id, ids["recorder"], "p")
    assert alerts(calls) == ["不能审核自己的申报或给自己记分。"]  # may_score: nobody scores themselves
    assert await count(h, "ledger") == 0  # nothing is booked before the close

    clock.set(START + timedelta(minutes=40))
    calls = await close(h, b.recorder, h.world.last_message(b.recorder.id), meeting_id)
    assert "出席 1，迟到 1，早退 0，请假 1，缺席 1" in closed_popup(calls)
    booked = {(r["member_id"], r["item_code"], r["event_code"], r["value"], r["source"]) for r in await ledger_of(h, meeting_id)}
    assert booked == {
        (ids["recorder"], "org_life", "absent", "-5", "automatic"),
        (ids["secretary"], "org_life", "late", "-2", "automatic"),
        (ids["lisi"], "org_life", "leave", "-2", "automatic"),
    }
    rows_now = await ledger_of(h, meeting_id)
    assert all(r["occurred_on"] == "2026-03-25" for r in rows_now)
    assert {r["reference"] for r in rows_now} == {f"meeting:{meeting_id}:absent:1", f"meeting:{meeting_id}:late:1",
                                                   f"meeting:{meeting_id}:leave:1"}
    announcement = (await rows(h, "SELECT announce_message_id FROM meetings"))[0]["announce_message_id"]
    assert "会议已结束" in h.world.message_by_id(b.group.id, announcement).text
    assert not h.world.buttons(h.world.message_by_id(b.group.id, announcement))

    # closing twice writes nothing more
    calls = await h.press(b.recorder, h.world.messages(b.recorder.id)[-2], f"mt:cf:{meeting_id}:0:1")
    assert "此前已结束" in popup_texts(calls)[0]
    calls = await h.press(b.recorder, h.world.messages(b.recorder.id)[-2], f"mt:cl:{meeting_id}:0")
    assert "此前已结束" in popup_texts(calls)[0]
    assert len(await ledger_of(h, meeting_id)) == 3

    # re-marking after the close: a reversing row and a new one, only the difference
    roll = await roll_message(h, b.secretary, meeting_id)
    calls = await mark(h, b.secretary, roll, meeting_id, ids["recorder"], "p")
    assert "积分变动 +5" in popup_texts(calls)[0]
    assert await net(h, ids["recorder"], meeting_id) == 0
    reversal = (await ledger_of(h, meeting_id))[-1]
    assert reversal["source"] == "correction" and reversal["reverses_id"] is not None and reversal["value"] == "5"
    calls = await mark(h, b.secretary, roll, meeting_id, ids["recorder"], "p")  # a double tap
    assert len(await ledger_of(h, meeting_id)) == 4
    await mark(h, b.secretary, roll, meeting_id, ids["recorder"], "e")
    assert await net(h, ids["recorder"], meeting_id) == Decimal(-2)
    assert (await ledger_of(h, meeting_id))[-1]["reference"] == f"meeting:{meeting_id}:early:2"
    await mark(h, b.secretary, roll, meeting_id, ids["recorder"], "a")
    assert await net(h, ids["recorder"], meeting_id) == Decimal(-5)
    assert len(await ledger_of(h, meeting_id)) == 7
    # the recorder's own attendance is for the secretary or deputy only; the secretary's for others
    calls = await mark(h, b.recorder, roll, meeting_id, ids["secretary"], "p")
    assert "积分变动 +2" in popup_texts(calls)[0]


async def test_party_lecture_books_study_and_the_zhangdian_values(h):
    b = await setup_branch(h, preset="zhangdian")
    clock = h.services.clock
    meeting_id = await schedule(h, b, kind="党课")
    clock.set(START)
    roll = await roll_message(h, b.secretary, meeting_id)
    await mark(h, b.secretary, roll, meeting_id, b.member_ids["recorder"], "l")
    await mark(h, b.secretary, roll, meeting_id, b.member_ids["zhang"], "v")
    await mark(h, b.secretary, roll, meeting_id, b.member_ids["lisi"], "p")
    await close(h, b.secretary, h.world.last_message(b.secretary.id), meeting_id)
    booked = {(r["member_id"], r["item_code"], r["event_code"], r["value"]) for r in await ledger_of(h, meeting_id)}
    # 张店: absence -10, leave -2; being late costs nothing under this scheme
    assert booked == {(b.member_ids["secretary"], "meetings", "absent", "-10"), (b.member_ids["zhang"], "meetings", "leave", "-2")}


async def test_xishui_party_lecture_is_study(h, b, clock):
    meeting_id = await schedule(h, b, kind="党课")
    clock.set(START + timedelta(hours=1))
    roll = await roll_message(h, b.secretary, meeting_id)
    await close(h, b.secretary, roll, meeting_id)
    assert {r["item_code"] for r in await ledger_of(h, meeting_id)} == {"study"}


async def test_exempt_members_are_not_counted_and_migrants_follow_the_setting(h, b, clock):
    ids = b.member_ids
    await h.say(b.secretary, b.group, f"/state {ids['zhang']} exempt 年老体弱")
    await h.say(b.secretary, b.group, f"/state {ids['lisi']} migrant")
    first = await schedule(h, b)
    calls = await h.press(b.zhang, h.world.last_message(b.group.id), f"mt:go:{first}")
    assert alerts(calls) == ["您不纳入积分管理，无需回复会议通知。"]
    clock.set(START + timedelta(hours=1))
    roll = await roll_message(h, b.secretary, first)
    assert "张三" not in plain(roll.text) and "李四：缺席" in plain(roll.text)
    calls = await mark(h, b.secretary, roll, first, ids["zhang"], "a")
    assert alerts(calls) == ["该党员不在这次会议的点名名单上。"]
    await close(h, b.secretary, roll, first)
    members = {r["member_id"] for r in await ledger_of(h, first)}
    assert members == {ids["secretary"], ids["recorder"]}  # the migrant's absence is not deducted by default; the exempt not counted
    assert (await rows(h, "SELECT counted FROM meeting_attendance WHERE meeting_id = ? AND member_id = ?", first, ids["zhang"])) in ([], [{"counted": 0}])

    await h.say(b.secretary, b.group, "/settings migrant_absences_count true")
    clock.set(datetime(2026, 3, 26, 2, 0, tzinfo=UTC))
    second = await schedule(h, b, when="2026-03-27 10:00")
    clock.set(datetime(2026, 3, 27, 3, 0, tzinfo=UTC))
    roll = await roll_message(h, b.secretary, second)
    await close(h, b.secretary, roll, second)
    assert (ids["lisi"], "-5") in {(r["member_id"], r["value"]) for r in await ledger_of(h, second)}


async def test_roll_call_and_close_need_a_recorder_or_secretary(h, b, clock):
    meeting_id = await schedule(h, b)
    announcement = h.world.last_message(b.group.id)
    calls = await h.press(b.recorder, announcement, f"mt:rc:{meeting_id}")
    assert alerts(calls) and "点名从" in alerts(calls)[0]  # not open yet
    calls = await h.press(b.secretary, announcement, f"mt:cl:{meeting_id}")
    assert alerts(calls) and "会议还没开始" in alerts(calls)[0]
    clock.set(START + timedelta(minutes=10))
    for data in (f"mt:rc:{meeting_id}", f"mt:m:{meeting_id}:{b.member_ids['lisi']}:p:0", f"mt:cl:{meeting_id}:0",
                 f"mt:cx:{meeting_id}", f"mt:pg:{meeting_id}:0"):
        calls = await h.press(b.zhang, announcement, data)
        assert alerts(calls) and "只有以下角色" in alerts(calls)[0], data
    stranger = h.user(5005, "路人")
    calls = await h.press(stranger, announcement, f"mt:go:{meeting_id}")
    assert alerts(calls) and "不是本支部已登记的党员" in alerts(calls)[0]
    calls = await h.press(b.zhang, announcement, "mt:zz:1")
    assert popups(calls)
    assert await count(h, "ledger") == 0 and (await rows(h, "SELECT status FROM meetings"))[0]["status"] == "scheduled"
    # the roll-call nudge goes to the recorder once the check-in window has closed
    clock.set(START + timedelta(minutes=31))
    before = len(h.world.calls)
    await engine.tick(h.app, clock.now())
    nudges = [c for c in sent_since(h, before, b.recorder.id) if "请点名并结束会议" in c.params["text"]]
    assert len(nudges) == 1 and h.world.buttons(nudges[0]) == [(f"📋 点名 #{meeting_id}", f"mt:rc:{meeting_id}")]


async def test_a_large_roll_call_is_paginated(h, b, clock):
    async with h.db.transaction() as conn:
        for n in range(10):
            await member_repo.add_approved(conn, branch_id=b.branch.id, name=f"党员{n:02d}", joined_on="2026-01-01")
    meeting_id = await schedule(h, b)
    clock.set(START)
    roll = await roll_message(h, b.secretary, meeting_id)
    assert "第 1/2 页" in plain(roll.text)
    data = [d for _, d in h.world.buttons(roll)]
    assert f"mt:pg:{meeting_id}:1" in data and all(len(d.encode()) <= 64 for d in data)
    await h.press(b.secretary, roll, f"mt:pg:{meeting_id}:1")
    assert "第 2/2 页" in plain(h.world.last_message(b.secretary.id).text)
    await close(h, b.secretary, h.world.last_message(b.secretary.id), meeting_id, 1)
    assert len(await ledger_of(h, meeting_id)) == 14  # nobody checked in or was marked: all absent


# --- review fixes ----------------------------------------------------------------------------------------


async def test_a_deduction_withdrawn_by_a_correction_or_objection_stays_withdrawn(h, b, clock):
    """Finding 3: a meeting's row that something else reversed is settled; Close again, the same mark,
    or a re-mark back to the same status never books it again."""
    from bot.services import Actor
    from storage import ledger as ledger_repo

    ids = b.member_ids
    meeting_id = await schedule(h, b)
    clock.set(START + timedelta(minutes=40))
    roll = await roll_message(h, b.secretary, meeting_id)
    await mark(h, b.secretary, roll, meeting_id, ids["recorder"], "p")
    await close(h, b.secretary, h.world.last_message(b.secretary.id), meeting_id)
    zhang_row = next(r for r in await ledger_of(h, meeting_id) if r["member_id"] == ids["zhang"])
    assert (zhang_row["value"], zhang_row["reference"]) == ("-5", f"meeting:{meeting_id}:absent:1")

    # the deduction is withdrawn by a correction (the same holds for an upheld objection's reversal)
    secretary = Actor(user_id=b.secretary.id, name="王书记")
    await h.services.points.reverse(b.branch, secretary, zhang_row["id"], "异议成立：当天在镇里开会")
    assert await net(h, ids["zhang"], meeting_id) == 0
    booked_before = len(await ledger_of(h, meeting_id))

    # Close again: the stale confirmation and the Close button book nothing
    old_roll = h.world.last_message(b.secretary.id)
    await h.press(b.secretary, old_roll, f"mt:cf:{meeting_id}:0:2")
    await h.press(b.secretary, old_roll, f"mt:cl:{meeting_id}:0")
    assert len(await ledger_of(h, meeting_id)) == booked_before and await net(h, ids["zhang"], meeting_id) == 0

    # marking the status he already had changes nothing either
    roll = await roll_message(h, b.secretary, meeting_id)
    await mark(h, b.secretary, roll, meeting_id, ids["zhang"], "a")
    assert len(await ledger_of(h, meeting_id)) == booked_before
    # a different status is booked; back to "absent", the withdrawn deduction is not booked again
    calls = await mark(h, b.secretary, roll, meeting_id, ids["zhang"], "l")
    assert "积分变动 -2" in popup_texts(calls)[0] and await net(h, ids["zhang"], meeting_id) == Decimal(-2)
    await mark(h, b.secretary, roll, meeting_id, ids["zhang"], "a")
    assert await net(h, ids["zhang"], meeting_id) == 0
    refs = [r["reference"] for r in await ledger_of(h, meeting_id) if r["member_id"] == ids["zhang"]]
    assert refs.count(f"meeting:{meeting_id}:absent:1") == 1 and not [r for r in refs if r.startswith(f"meeting:{meeting_id}:absent:") and r != refs[0]]

    # an objection's reversal ("obj:…") settles a row in the same way
    lisi_row = next(r for r in await ledger_of(h, meeting_id) if r["member_id"] == ids["lisi"])
    async with h.db.transaction() as conn:
        original = await ledger_repo.by_id(conn, lisi_row["id"])
        await ledger_repo.reverse(conn, original, reference="obj:1", actor_id=ids["secretary"], reason="objection #1")
    await mark(h, b.secretary, roll, meeting_id, ids["lisi"], "a")
    await h.press(b.secretary, old_roll, f"mt:cl:{meeting_id}:0")
    assert await net(h, ids["lisi"], meeting_id) == 0
    # the others' bookings are untouched
    assert await net(h, ids["secretary"], meeting_id) == Decimal(-5) and await net(h, ids["recorder"], meeting_id) == 0


async def test_a_started_meeting_cannot_be_cancelled_even_by_a_stale_button(h, b, clock):
    """Finding 11: the rule lives in the service, not only in which buttons /meetings shows."""
    meeting_id = await schedule(h, b)
    chat = h.private(b.secretary)
    await h.say(b.secretary, chat, "/meetings")
    listing, _ = h.find_button(chat.id, f"取消 #{meeting_id}")
    clock.set(START + timedelta(minutes=5))
    calls = await h.press(b.secretary, listing, f"mt:cx:{meeting_id}")
    assert alerts(calls) and "不能再取消" in alerts(calls)[0]
    assert (await rows(h, "SELECT status FROM meetings"))[0]["status"] == "scheduled"
    assert not [c for c in calls if c.chat_id == b.group.id and c.method == "sendMessage"]
    clock.set(START + timedelta(minutes=40))
    await close(h, b.secretary, await roll_message(h, b.secretary, meeting_id), meeting_id)
    assert len(await ledger_of(h, meeting_id)) == 4  # the absences stand


async def test_roll_call_marks_the_unmarked_present_and_close_asks_before_booking_absences(h, b, clock):
    """Finding 14: "mark all unmarked present", and a confirmation naming who will be booked absent."""
    ids = b.member_ids
    meeting_id = await schedule(h, b)
    clock.set(START + timedelta(minutes=5))
    await h.press(b.zhang, h.world.last_message(b.group.id), f"mt:ci:{meeting_id}")  # no check-in button needed
    clock.set(START + timedelta(minutes=40))
    roll = await roll_message(h, b.recorder, meeting_id)
    labels = dict(h.world.buttons(roll))
    assert "✅ 未点名的 3 人记为出席" in labels

    # Close first asks: three would be booked absent, −5 each under 浠水's rules
    calls = await h.press(b.recorder, roll, f"mt:cl:{meeting_id}:0")
    asked = h.world.message_by_id(roll.chat.id, roll.message_id)
    assert "3 人将按无故缺席记分（本支部细则每人 -5）：王书记、李记录、李四" in plain(asked.text)
    assert [d for _, d in h.world.buttons(asked)] == [f"mt:cf:{meeting_id}:0:3", f"mt:pg:{meeting_id}:0"]
    assert await count(h, "ledger") == 0 and (await rows(h, "SELECT status FROM meetings"))[0]["status"] == "scheduled"
    await h.press(b.recorder, asked, f"mt:pg:{meeting_id}:0")  # back to the roll
    roll = h.world.message_by_id(roll.chat.id, roll.message_id)
    assert "📋 点名" in roll.text

    # everyone unmarked present, except the recorder's own attendance (someone else marks it)
    calls = await h.press(b.recorder, roll, f"mt:ap:{meeting_id}:0")
    assert popup_texts(calls)[0] == "已将 2 人记为出席。\n以下党员须由他人点名：李记录"
    marks = {r["member_id"]: r["mark"] for r in await rows(h, "SELECT member_id, mark FROM meeting_attendance WHERE meeting_id = ?", meeting_id)}
    assert marks == {ids["secretary"]: "present", ids["lisi"]: "present", ids["zhang"]: None}
    roll = h.world.message_by_id(roll.chat.id, roll.message_id)
    assert "✅ 未点名的 1 人记为出席" in dict(h.world.buttons(roll))

    # the confirmation carries the count it showed: a roll that changed since is not closed
    calls = await h.press(b.recorder, roll, f"mt:cf:{meeting_id}:0:3")
    assert alerts(calls) and "点名有变化：现在有 1 人" in alerts(calls)[0]
    assert (await rows(h, "SELECT status FROM meetings"))[0]["status"] == "scheduled"
    calls = await close(h, b.recorder, roll, meeting_id)
    assert "出席 3，迟到 0，早退 0，请假 0，缺席 1" in closed_popup(calls)
    assert [(r["member_id"], r["value"]) for r in await ledger_of(h, meeting_id)] == [(ids["recorder"], "-5")]

    # with nobody to be booked absent, Close closes at once
    second = await schedule(h, b, when="2026-03-28 10:00")
    clock.set(datetime(2026, 3, 28, 3, 0, tzinfo=UTC))
    roll = await roll_message(h, b.secretary, second)
    await h.press(b.secretary, roll, f"mt:ap:{second}:0")
    roll = await roll_message(h, b.recorder, second)
    await mark(h, b.recorder, roll, second, ids["secretary"], "p")
    calls = await h.press(b.recorder, roll, f"mt:ap:{second}:0")  # idempotent: nobody left but the recorder
    await mark(h, b.secretary, await roll_message(h, b.secretary, second), second, ids["recorder"], "p")
    roll = await roll_message(h, b.recorder, second)
    assert not [d for _, d in h.world.buttons(roll) if d.startswith("mt:ap:")]
    calls = await h.press(b.recorder, roll, f"mt:cl:{second}:0")
    assert "已结束" in popup_texts(calls)[0] and await count(h, "ledger", "reference LIKE ?", f"meeting:{second}:%") == 0
    assert (await rows(h, "SELECT status FROM meetings WHERE id = ?", second))[0]["status"] == "closed"
    # after the close, the bulk button is refused (corrections are one by one)
    calls = await h.press(b.recorder, roll, f"mt:ap:{second}:0")
    assert alerts(calls) == ["会议已经结束，请逐个更正点名。"]


async def test_the_secretarys_own_leave_is_decided_by_someone_else(h, b):
    """Finding 15: with no deputy, the recorder (or supervisor) decides the secretary's leave; with a
    deputy, the deputy; with nobody, the request is refused before a reason is typed."""
    ids = b.member_ids
    meeting_id = await schedule(h, b)
    announcement = h.world.last_message(b.group.id)
    await h.press(b.secretary, announcement, f"mt:lv:{meeting_id}")
    calls = await h.say(b.secretary, h.private(b.secretary), "去县里开会")
    assert "请假申请已提交" in said(calls, b.secretary.id) and "收不到私信" not in said(calls)
    card = [c for c in calls if c.method == "sendMessage" and c.chat_id == b.recorder.id]
    assert card and "去县里开会" in card[0].params["text"]
    card_message = h.world.message_by_id(b.recorder.id, card[0].result["message_id"])
    calls = await h.press(b.secretary, card_message, f"mt:la:{meeting_id}:{ids['secretary']}")
    assert alerts(calls) == ["不能处理自己的请假，须由其他负责人处理。"]
    calls = await h.press(b.recorder, card_message, f"mt:la:{meeting_id}:{ids['secretary']}")
    assert "已准假（李记录）" in said(calls, b.recorder.id) and "您的请假已获批准" in said(calls, b.secretary.id)

    # with a deputy, the deputy decides the secretary's leave, and the recorder may not
    await h.say(b.secretary, b.group, "/role @zhang_1000 deputy")
    second = await schedule(h, b, when="2026-03-26 14:30")
    await h.press(b.secretary, h.world.last_message(b.group.id), f"mt:lv:{second}")
    calls = await h.say(b.secretary, h.private(b.secretary), "出差")
    assert [c.chat_id for c in calls if c.method == "sendMessage" and "出差" in c.params["text"]] == [b.zhang.id]
    calls = await h.press(b.recorder, card_message, f"mt:la:{second}:{ids['secretary']}")
    assert alerts(calls) and "只有以下角色可以这样做：书记、副书记" in alerts(calls)[0]
    await h.tap(b.zhang, b.zhang.id, "准假")
    assert (await rows(h, "SELECT leave_status FROM meeting_attendance WHERE meeting_id = ?", second))[0]["leave_status"] == "approved"

    # nobody else could decide: refused up front, nothing saved
    await h.say(b.secretary, b.group, "/role @zhang_1000 -deputy")
    await h.say(b.secretary, b.group, "/role @li_1000 -recorder")
    third = await schedule(h, b, when="2026-03-27 14:30")
    calls = await h.press(b.secretary, h.world.last_message(b.group.id), f"mt:lv:{third}")
    assert alerts(calls) and "没有其他人能批准您的请假" in alerts(calls)[0]
    assert not said(calls, b.secretary.id)
    assert await count(h, "meeting_attendance", "meeting_id = ? AND leave_status IS NOT NULL", third) == 0
    # an ordinary member's leave still goes to the secretary
    await h.press(b.lisi, h.world.last_message(b.group.id), f"mt:lv:{third}")
    calls = await h.say(b.lisi, h.private(b.lisi), "外出")
    assert [c.chat_id for c in calls if c.method == "sendMessage" and "外出" in c.params["text"]] == [b.secretary.id]


async def test_approving_a_leave_does_not_edit_an_announcement_that_did_not_change(h, b):
    meeting_id = await schedule(h, b)
    announcement = h.world.last_message(b.group.id)
    for person, reason in ((b.lisi, "外出务工"), (b.zhang, "生病")):
        await h.press(person, announcement, f"mt:lv:{meeting_id}")
        await h.say(person, h.private(person), reason)
    assert "请假 2 人" in plain(h.world.message_by_id(b.group.id, announcement.message_id).text)
    lisi_card, _ = h.find_button(b.secretary.id, "准假")
    calls = await h.press(b.secretary, lisi_card, f"mt:la:{meeting_id}:{b.member_ids['lisi']}")
    assert not [c for c in calls if c.method == "editMessageText" and c.chat_id == b.group.id]
    calls = await h.press(b.secretary, lisi_card, f"mt:lr:{meeting_id}:{b.member_ids['zhang']}")
    edits = [c for c in calls if c.method == "editMessageText" and c.chat_id == b.group.id]
    assert len(edits) == 1 and edits[0].ok and "请假 1 人" in plain(edits[0].params["text"])


async def test_reminders_go_on_when_the_group_or_a_member_cannot_be_reached(h, b, clock):
    """The group send survives the bot's removal (the branch is marked unreachable); private sends go
    through handlers.common.send_private, and a member who blocked the bot is skipped next time."""
    meeting_id = await schedule(h, b)
    await h.app.bot.leave_chat(b.group.id)
    h.world.block(b.zhang.id)
    clock.set(START - timedelta(days=1) + timedelta(minutes=1))
    before = len(h.world.calls)
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "meeting_reminder", f"{meeting_id}:1440", "done") in done
    reminded = {c.chat_id for c in sent_since(h, before) if "还没有回复" in c.params["text"]}
    assert reminded == {b.secretary.id, b.recorder.id, b.lisi.id}
    assert not (await h.services.branches.by_id(b.branch.id)).reachable
    assert (await rows(h, "SELECT reachable FROM members WHERE id = ?", b.member_ids["zhang"]))[0]["reachable"] == 0
    h.world.unblock(b.zhang.id)
    clock.set(START - timedelta(minutes=59))
    before = len(h.world.calls)
    await engine.tick(h.app, clock.now())
    assert b.zhang.id not in {c.chat_id for c in sent_since(h, before) if "还没有回复" in c.params["text"]}
    assert not [c for c in h.world.calls[before:] if c.method == "sendMessage" and c.chat_id == b.zhang.id]
    # the refusals this test caused itself are not the bot's fault (the teardown checks the rest)
    h.world.calls[:] = [c for c in h.world.calls if c.ok or "not a member" not in str((c.error or {}).get("description"))]


# --- the pure rules ------------------------------------------------------------------------------------


def test_parse_when_formats() -> None:
    today = date(2026, 3, 20)
    expect = datetime(2026, 3, 25, 6, 30, tzinfo=UTC)
    for text in ("2026-03-25 14:30", "2026/3/25 14:30", "2026.03.25 14：30", "2026年3月25日 14:30", "2026年3月25日14点30分",
                 "3-25 14:30", "3月25日 14点半", " 2026-03-25T14:30 "):
        moment = parse_when(text, today, TZ)
        assert moment is not None and moment == expect, text
    for text in ("", "明天下午", "14:30", "2026-13-01 10:00", "2026-02-29 10:00", "2026-03-25 24:00", "2026-03-25 10:60",
                 "9" * 5000):
        assert parse_when(text, today, TZ) is None, text
    assert parse_when("1-5 9:00", date(2026, 12, 20), TZ).year == 2027  # a date long past this year means next year


STATUSES = st.sampled_from(list(Attendance))
KINDS = st.sampled_from(list(MeetingKind))
PRESETS = st.sampled_from(["xishui", "zhangdian", "jiancaoping", "sanmenxia"])


@settings(max_examples=200, deadline=None)
@given(preset_code=PRESETS, kind=KINDS, statuses=st.lists(STATUSES, min_size=1, max_size=8), migrant=st.booleans(),
       count_migrants=st.booleans())
def test_any_sequence_of_marks_nets_to_what_the_last_one_costs(preset_code, kind, statuses, migrant, count_migrants) -> None:
    """However often a member is re-marked, the live rows book exactly the last status, once; the ledger
    only grows (reversals, never edits) and its sum equals that status's cost."""
    rulebook = preset(preset_code)
    ledger: list[tuple[int, Decimal, int | None]] = []  # (id, value, reverses)
    live: list[BookedRow] = []
    for status in statuses:
        desired = booking(rulebook, kind, status, migrant=migrant, migrant_absences_count=count_migrants)
        to_reverse, to_add = reconcile(live, desired)
        for row in to_reverse:
            ledger.append((len(ledger) + 1, -row.value, row.id))
            live.remove(row)
        if to_add is not None:
            ledger.append((len(ledger) + 1, to_add.value, None))
            live.append(BookedRow(id=len(ledger), status=to_add.status, item_code=to_add.item_code,
                                event_code=to_add.event_code, value=to_add.value))
        assert len(live) <= 1
        assert sum(v for _, v, _ in ledger) == (desired.value if desired else 0)
        assert reconcile(live, desired) == ([], None)  # closing again changes nothing
    reversed_ids = [r for _, _, r in ledger if r is not None]
    assert len(reversed_ids) == len(set(reversed_ids))  # nothing reversed twice


def test_what_attendance_costs_per_scheme() -> None:
    xishui, zhangdian, sanmenxia = preset("xishui"), preset("zhangdian"), preset("sanmenxia")
    cost = lambda rb, kind, status, migrant=False: booking(rb, kind, status, migrant=migrant, migrant_absences_count=False)  # noqa: E731
    assert cost(xishui, MeetingKind.BRANCH_MEETING, Attendance.ABSENT) == Booking(Attendance.ABSENT, "org_life", "absent", Decimal(-5))
    assert cost(xishui, MeetingKind.THEME_DAY, Attendance.LATE).value == Decimal(-2)
    assert cost(xishui, MeetingKind.PARTY_LECTURE, Attendance.LEAVE).item_code == "study"
    assert cost(xishui, MeetingKind.BRANCH_MEETING, Attendance.PRESENT) is None
    assert cost(xishui, MeetingKind.BRANCH_MEETING, Attendance.ABSENT, migrant=True) is None
    assert cost(xishui, MeetingKind.BRANCH_MEETING, Attendance.LATE, migrant=True) is not None
    assert cost(zhangdian, MeetingKind.COMMITTEE, Attendance.ABSENT).value == Decimal(-10)
    assert cost(zhangdian, MeetingKind.COMMITTEE, Attendance.EARLY) is None
    assert cost(sanmenxia, MeetingKind.GROUP_MEETING, Attendance.LEAVE) is None  # an excused leave costs nothing there
    assert cost(sanmenxia, MeetingKind.GROUP_MEETING, Attendance.ABSENT) == Booking(Attendance.ABSENT, "skip_org_life", None, Decimal(-5))


def test_effective_status() -> None:
    moment = datetime(2026, 3, 25, tzinfo=UTC)
    assert effective_status(None) is Attendance.ABSENT
    record = AttendanceRecord(meeting_id=1, member_id=1, leave_status=LeaveStatus.APPROVED)
    assert effective_status(record) is Attendance.LEAVE
    assert effective_status(record.model_copy(update={"leave_status": LeaveStatus.REFUSED})) is Attendance.ABSENT
    assert effective_status(record.model_copy(update={"leave_status": LeaveStatus.PENDING})) is Attendance.ABSENT
    assert effective_status(record.model_copy(update={"checked_in_at": moment})) is Attendance.PRESENT
    assert effective_status(record.model_copy(update={"checked_in_at": moment, "mark": Attendance.LATE})) is Attendance.LATE


@settings(max_examples=200, deadline=None)
@given(preset_code=PRESETS, kind=KINDS, steps=st.lists(st.one_of(STATUSES, st.just("withdraw")), min_size=1, max_size=10))
def test_a_withdrawn_booking_is_never_booked_again(preset_code, kind, steps) -> None:
    """Marks interleaved with outside withdrawals (an objection, a correction) of whatever is live: at
    most one row is live; the net is the last status's cost, or 0 when that cost was withdrawn."""
    rulebook = preset(preset_code)
    ledger: list[tuple[int, Decimal, int | None]] = []
    live: list[BookedRow] = []
    settled: list[BookedRow] = []
    desired = None
    for step in steps:
        if step == "withdraw":
            for row in live:
                ledger.append((len(ledger) + 1, -row.value, row.id))
                settled.append(row)
            live = []
            continue
        desired = booking(rulebook, kind, step, migrant=False, migrant_absences_count=False)
        to_reverse, to_add = reconcile(live, desired, settled)
        for row in to_reverse:
            ledger.append((len(ledger) + 1, -row.value, row.id))
            live.remove(row)
        if to_add is not None:
            ledger.append((len(ledger) + 1, to_add.value, None))
            live.append(BookedRow(id=len(ledger), status=to_add.status, item_code=to_add.item_code,
                                  event_code=to_add.event_code, value=to_add.value))
        assert len(live) <= 1
        withdrawn = desired is not None and any(r.books(desired) for r in settled)
        assert sum(v for _, v, _ in ledger) == (0 if desired is None or withdrawn else desired.value)
        assert reconcile(live, desired, settled) == ([], None)  # closing again changes nothing
    reversed_ids = [r for _, _, r in ledger if r is not None]
    assert len(reversed_ids) == len(set(reversed_ids))
