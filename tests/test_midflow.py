"""A command sent in the middle of a multi-step flow, through the real Application.

Before (session of 2026-11-22): /roster or /meeting sent during /declare started the other flow while the
declaration stayed silently active, so the next text went to whichever conversation PTB tried first;
/declare during /meeting did the same the other way round; /role and /setup ran in the middle of a
/meeting in the group. Now: read-only commands are answered and the flow stays; any other command of the
bot is refused with one message naming the flow in progress (finish it or /cancel), nothing is written,
and the flow goes on; /cancel ends it; the flow's own command starts it over and says what was lost.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from telegram.ext import ConversationHandler

from bot.harness import plain
from handlers.common import FlowInProgress
from schedules import engine
from tests.conftest import card_message, count, declare, popups, rows, said
from tests.test_meetings import schedule
from tests.test_migrants import make_migrant, write_report
from tests.test_notices import APRIL_1, NOTICE_KINDS, branch_at, record, utc
from tests.test_rewards import jb  # noqa: F401  (fixture)

BUSY = "现在不能用：您正在"


async def to_place_step(h, person) -> None:
    """/declare up to the place step (item and date chosen)."""
    chat = h.private(person)
    await h.say(person, chat, "/declare")
    await h.tap(person, chat.id, "志愿服务岗位")
    await h.tap(person, chat.id, "为民办一件实事")
    await h.tap(person, chat.id, "今天")


def text(calls, chat_id: int) -> str:
    return plain(said(calls, chat_id))


async def test_declare_refuses_roster_and_meeting_answers_points_and_goes_on(h, b):
    chat = h.private(b.secretary)
    await to_place_step(h, b.secretary)

    for command in ("/roster", "/meeting", "/role @zhang_1000 deputy"):
        calls = await h.say(b.secretary, chat, command)
        reply = text(calls, chat.id)
        assert reply.startswith(command.split()[0] + " " + BUSY) and "申报积分（/declare）" in reply and "/cancel" in reply
        assert len([c for c in calls if c.method == "sendMessage"]) == 1  # one message, nothing else started
    assert await count(h, "roles", "member_id = ? AND role = 'deputy'", b.member_ids["zhang"]) == 0

    calls = await h.say(b.secretary, chat, "/points")  # read-only: answered as usual
    assert "王书记 的积分" in text(calls, chat.id) and BUSY not in text(calls, chat.id)
    calls = await h.say(b.secretary, chat, "/help")
    assert "/declare" in text(calls, chat.id) and BUSY not in text(calls, chat.id)

    calls = await h.say(b.secretary, chat, "村东头刘大爷家")  # the place: still the declaration's step
    assert "请讲清楚经过" in text(calls, chat.id)
    await h.say(b.secretary, chat, "帮刘大爷修好漏水的水管。")
    await h.tap(b.secretary, chat.id, "无照片")
    await h.tap(b.secretary, chat.id, "提交")
    found = await rows(h, "SELECT place FROM declarations")
    assert found == [{"place": "村东头刘大爷家"}]
    assert await count(h, "meetings") == 0

    calls = await h.say(b.secretary, chat, "/roster")  # the declaration is over: /roster works again
    assert "名册" in text(calls, chat.id) and BUSY not in text(calls, chat.id)


async def test_meeting_refuses_declare_and_its_deep_link_and_the_time_goes_to_the_meeting(h, b):
    chat = h.private(b.secretary)
    await h.say(b.secretary, chat, "/meeting")
    await h.tap(b.secretary, chat.id, "支部党员大会")
    for command in ("/declare", f"/start declare-{b.branch.id}"):
        calls = await h.say(b.secretary, chat, command)
        assert BUSY in text(calls, chat.id) and "安排会议（/meeting）" in text(calls, chat.id)
    calls = await h.say(b.secretary, chat, "/start")  # the welcome: a menu, answered
    assert BUSY not in text(calls, chat.id) and text(calls, chat.id)
    calls = await h.say(b.secretary, chat, "2026-03-25 14:30")
    assert "会议地点" in text(calls, chat.id)
    await h.say(b.secretary, chat, "村委会议室")
    await h.say(b.secretary, chat, "学习党章")
    await h.tap(b.secretary, chat.id, "发布")
    assert await count(h, "meetings") == 1 and await count(h, "declarations") == 0
    calls = await h.say(b.secretary, chat, "/cancel")  # nothing left in progress: no declaration was started
    assert "现在没有进行中的操作" in text(calls, chat.id)


async def test_a_flow_in_the_group_refuses_only_its_users_commands_in_that_group(h, b):
    await h.say(b.secretary, b.group, "/meeting")
    await h.tap(b.secretary, b.group.id, "主题党日")
    calls = await h.say(b.secretary, b.group, f"/role @{b.zhang.username} deputy")
    assert BUSY in text(calls, b.group.id) and "安排会议（/meeting）" in text(calls, b.group.id)
    calls = await h.say(b.secretary, b.group, "/setup")
    assert BUSY in text(calls, b.group.id)
    assert await count(h, "roles", "member_id = ? AND role = 'deputy'", b.member_ids["zhang"]) == 0
    calls = await h.say(b.secretary, b.group, "/meetings")  # read-only
    assert "的会议" in text(calls, b.group.id) and BUSY not in text(calls, b.group.id)
    assert await h.say(b.secretary, b.group, "/whatever@other_bot") == []  # another bot's: quiet as before

    # Someone else in the group, and the secretary in private: not in the middle of anything.
    calls = await h.say(b.zhang, b.group, "/declare")
    assert BUSY not in text(calls, b.group.id) and "私聊" in text(calls, b.group.id)
    calls = await h.say(b.secretary, h.private(b.secretary), f"/role @{b.lisi.username} deputy")
    assert BUSY not in text(calls, b.secretary.id)
    assert await count(h, "roles", "member_id = ? AND role = 'deputy'", b.member_ids["lisi"]) == 1

    calls = await h.say(b.secretary, b.group, "3月27日 9点半")
    assert "会议地点" in text(calls, b.group.id)


async def test_one_users_flow_does_not_hold_up_another_user(h, b):
    await to_place_step(h, b.zhang)
    number = await declare(h, b.lisi, place="村委会")  # lisi declares meanwhile, from start to end
    assert number is not None
    calls = await h.say(b.zhang, h.private(b.zhang), "村西头")
    assert "请讲清楚经过" in text(calls, b.zhang.id)


async def test_the_refusal_is_in_the_users_language(h, b):
    tom = h.user(1009, "Tom", username="tom", language="en")
    await h.say(tom, b.group, "/join")
    await h.tap(b.secretary, b.group.id, "同意")
    await h.say(tom, h.private(tom), "/start")
    chat = h.private(tom)
    await h.say(tom, chat, "/declare")
    calls = await h.say(tom, chat, "/report")
    assert text(calls, chat.id) == ("/report cannot be used now: you are in the middle of a declaration (/declare). "
                                    "Finish it first, or send /cancel to stop it, then try again. Nothing was changed.")


async def test_resending_the_flows_own_command_starts_over_and_says_what_was_lost(h, b):
    chat = h.private(b.zhang)
    await h.say(b.zhang, chat, "/declare")
    calls = await h.say(b.zhang, chat, "/declare")  # nothing entered yet: nothing to say
    assert "请选择类别" in text(calls, chat.id) and "已放弃" not in text(calls, chat.id)
    await to_place_step(h, b.zhang)
    await h.say(b.zhang, chat, "村东头")
    calls = await h.say(b.zhang, chat, "/declare")
    assert "请选择类别" in text(calls, chat.id) and "已重新开始申报积分（/declare），之前填写的内容已放弃。" in text(calls, chat.id)
    calls = await h.say(b.zhang, chat, "经过")  # the new draft waits for a category, not for a text
    assert "请讲清楚经过" not in text(calls, chat.id)
    calls = await h.say(b.zhang, chat, "/cancel")
    assert "已取消申报" in text(calls, chat.id)
    assert await count(h, "declarations") == 0


async def test_an_objection_waiting_for_its_reason(h, clock, monkeypatch):
    monkeypatch.setattr(engine, "PRODUCERS", [p for p in engine.PRODUCERS if p.kind in NOTICE_KINDS])
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0), preset="sanmenxia")
    entry = await record(h, b, "secretary", "green_zone", "10", date(2026, 3, 25), "清扫巷道")
    clock.set(APRIL_1 + timedelta(minutes=5))
    await engine.tick(h.app, clock.now())
    chat = h.private(b.zhang)
    await h.say(b.zhang, chat, f"/object {entry}")
    calls = await h.say(b.zhang, chat, "/declare")
    assert BUSY in text(calls, chat.id) and "异议理由" in text(calls, chat.id)
    calls = await h.say(b.zhang, chat, "/history")
    assert BUSY not in text(calls, chat.id)
    await h.say(b.zhang, chat, "书记那天不在村里")
    assert [r["reason"] for r in await rows(h, "SELECT reason FROM objections")] == ["书记那天不在村里"]
    assert await count(h, "declarations") == 0


async def test_a_reward_item_in_the_making_refuses_meeting_until_cancelled(h, jb):  # noqa: F811
    b = jb
    chat = h.private(b.secretary)
    await h.say(b.secretary, chat, "/catalog")
    await h.tap(b.secretary, chat.id, "新增物品")
    calls = await h.say(b.secretary, chat, "/meeting")
    assert BUSY in text(calls, chat.id) and "新增或修改兑换物品" in text(calls, chat.id)
    calls = await h.say(b.secretary, chat, "/passbook")
    assert BUSY not in text(calls, chat.id)
    await h.say(b.secretary, chat, "/cancel")
    calls = await h.say(b.secretary, chat, "/meeting")
    assert "请选择会议类型" in text(calls, chat.id)
    assert await count(h, "reward_items") == 1  # the towel of the fixture only


async def test_a_return_reason_and_a_leave_reason_refuse_other_flows(h, b):
    await make_migrant(h, b, b.zhang)
    await write_report(h, b.zhang, "本季度思想汇报。")
    rchat = h.private(b.recorder)
    await h.tap(b.recorder, b.recorder.id, "退回")
    calls = await h.say(b.recorder, rchat, "/declare")
    assert BUSY in text(calls, rchat.id) and "退回汇报的理由" in text(calls, rchat.id)
    calls = await h.say(b.recorder, rchat, "/migrants")
    assert BUSY not in text(calls, rchat.id)
    await h.say(b.recorder, rchat, "请写清楚参加了哪些活动")
    assert (await rows(h, "SELECT status FROM migrant_reports"))[0]["status"] == "returned"

    # Leave: asked from the group, its reason typed in private (one conversation per user, all chats).
    meeting_id = await schedule(h, b)
    await h.press(b.lisi, h.world.last_message(b.group.id), f"mt:lv:{meeting_id}")
    lchat = h.private(b.lisi)
    calls = await h.say(b.lisi, lchat, "/declare")
    assert BUSY in text(calls, lchat.id) and "填写请假理由" in text(calls, lchat.id)
    calls = await h.say(b.lisi, b.group, "/meetings")  # in the group the reason is not awaited
    assert BUSY not in text(calls, b.group.id)
    calls = await h.say(b.lisi, lchat, "外出务工，无法返回")
    assert "请假申请已提交" in text(calls, lchat.id)


async def test_the_roster_upload_and_a_migrant_report_refuse_too(h, b):
    chat = h.private(b.secretary)
    await h.say(b.secretary, chat, "/roster")
    calls = await h.say(b.secretary, chat, "/declare")
    assert BUSY in text(calls, chat.id) and "上传党员名册（/roster）" in text(calls, chat.id)
    calls = await h.say(b.secretary, chat, "/members")  # read-only
    assert BUSY not in text(calls, chat.id) and "张三" in text(calls, chat.id)
    calls = await h.say(b.secretary, chat, "/cancel")
    assert "已取消" in text(calls, chat.id)

    await make_migrant(h, b, b.zhang)
    zchat = h.private(b.zhang)
    await h.say(b.zhang, zchat, "/report")
    calls = await h.say(b.zhang, zchat, "/paid 30")  # changes something: refused, nothing recorded
    assert BUSY in text(calls, zchat.id) and "流动党员思想和工作汇报（/report）" in text(calls, zchat.id)
    assert await count(h, "dues_reports") == 0
    await h.say(b.zhang, zchat, "本季度思想汇报。")
    await h.tap(b.zhang, zchat.id, "无照片")
    await h.tap(b.zhang, zchat.id, "提交汇报")
    assert await count(h, "migrant_reports") == 1
    await h.say(b.zhang, zchat, "/paid 30")  # the report is in: now it is recorded
    assert await count(h, "dues_reports") == 1


async def test_a_press_that_would_start_another_flow_is_refused_in_that_chat_only(h, b):
    """Before: 不通过 (asks a reason) pressed during /declare started the reject conversation, and the
    reason typed next went to the declaration as its place."""
    number = await declare(h, b.zhang)
    card = card_message(h, b.recorder.id, number)
    await to_place_step(h, b.recorder)
    calls = await h.press(b.recorder, card, f"dc:rj:{number}")
    alerts = [plain(str(c.params.get("text", ""))) for c in popups(calls) if c.params.get("show_alert")]
    assert alerts == ["您正在申报积分（/declare），还没有完成。请先完成，或发送 /cancel 取消后再试。"]
    assert [c.method for c in calls] == ["answerCallbackQuery"]
    calls = await h.say(b.recorder, h.private(b.recorder), "村委会")  # the declaration's place, as asked
    assert "请讲清楚经过" in text(calls, b.recorder.id)
    calls = await h.press(b.recorder, card, f"dc:ok:{number}")  # deciding at once starts no flow: allowed
    assert (await rows(h, "SELECT status FROM declarations WHERE id = ?", number))[0]["status"] == "approved"


async def test_leave_pressed_in_the_group_during_a_private_flow_is_refused(h, b):
    """Leave's reason is typed in private (a conversation per user). Before: pressed in the group during a
    private /declare, the reason asked for went to the declaration as its place and no leave was asked."""
    meeting_id = await schedule(h, b)
    announcement = h.world.last_message(b.group.id)
    await to_place_step(h, b.zhang)
    calls = await h.press(b.zhang, announcement, f"mt:lv:{meeting_id}")
    alerts = [plain(str(c.params.get("text", ""))) for c in popups(calls) if c.params.get("show_alert")]
    assert alerts == ["您正在申报积分（/declare），还没有完成。请先完成，或发送 /cancel 取消后再试。"]
    assert not said(calls, b.zhang.id)  # no reason asked
    calls = await h.say(b.zhang, h.private(b.zhang), "村委会")
    assert "请讲清楚经过" in text(calls, b.zhang.id)
    await h.say(b.zhang, h.private(b.zhang), "/cancel")
    calls = await h.press(b.zhang, announcement, f"mt:lv:{meeting_id}")
    assert "请回复请假理由" in text(calls, b.zhang.id)
    await h.say(b.zhang, h.private(b.zhang), "外出务工，无法返回")
    assert [r["leave_status"] for r in await rows(h, "SELECT leave_status FROM meeting_attendance")] == ["pending"]


def test_every_conversation_ends_its_fallbacks_with_the_shared_refusal():
    """One helper for all; the reject reason (handlers/decide.py) is left to its owner."""
    from bot.app import build_application
    from bot.offline import OfflineTelegram

    world = OfflineTelegram()
    app = build_application(world.token, services=None, request=world.request, rate_limit=False, set_menus=False)  # type: ignore[arg-type]
    found = {h.name: h for group in app.handlers.values() for h in group if isinstance(h, ConversationHandler)}
    assert {"declare", "roster", "meeting", "meeting_leave", "migrant_report", "migrant_return", "notice-reason",
            "town-review-reason", "reward_catalog", "reward_merchants"} <= set(found)
    for name, conversation in found.items():
        assert isinstance(conversation.fallbacks[-1], FlowInProgress), name
        assert sum(isinstance(f, FlowInProgress) for f in conversation.fallbacks) == 1, name


async def test_a_reject_reason_refuses_other_flows(h, b):
    """/declare during a reject reason is refused (it used to start a declaration, declare's conversation
    being tried first, and the reason typed next was told "not what was asked": the rejection never
    happened); a read-only command is answered; the reason then rejects."""
    number = await declare(h, b.zhang)
    card = card_message(h, b.recorder.id, number)
    chat = h.private(b.recorder)
    await h.press(b.recorder, card, f"dc:rj:{number}")
    calls = await h.say(b.recorder, chat, "/declare")
    assert BUSY in text(calls, chat.id) and "填写驳回申报的理由" in text(calls, chat.id)
    calls = await h.say(b.recorder, chat, "/pending")
    assert BUSY not in text(calls, chat.id)
    await h.say(b.recorder, chat, "地点不对")
    assert (await rows(h, "SELECT status FROM declarations WHERE id = ?", number))[0]["status"] == "rejected"


async def test_a_refusal_that_cannot_be_sent_still_keeps_the_other_flow_out(h, b):
    """The guard's refusal fails (the message it replies to is gone): the error is reported, and the
    update still stops there — before, group 0 then started /declare on top of /meeting (two flows stacked)."""
    from tests.conftest import INTERNAL_ERROR

    chat = h.private(b.secretary)
    await h.say(b.secretary, chat, "/meeting")
    await h.tap(b.secretary, chat.id, "支部党员大会")
    h.world.fail_next("sendMessage", {"error_code": 400, "description": "Bad Request: message to be replied not found"})
    before = len(h.world.calls)
    calls = await h.say(b.secretary, chat, "/declare")
    assert "请选择类别" not in text(calls, chat.id), text(calls, chat.id)
    assert INTERNAL_ERROR in text(calls, chat.id)  # reported, as any unhandled error is
    calls = await h.say(b.secretary, chat, "/declare")  # the meeting flow is still the one in progress
    assert BUSY in text(calls, chat.id) and "请选择类别" not in text(calls, chat.id)
    # What this test provoked on purpose (the failed send and its error report) is not a health problem.
    h.world.calls[before:] = [c for c in h.world.calls[before:] if c.ok and INTERNAL_ERROR not in str(c.params.get("text", ""))]
