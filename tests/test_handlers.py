"""The bot end to end: the real Application, handlers, services and SQLite, on the offline Telegram.

Each test asserts on the Bot API calls the bot made (method, chat, text, buttons) and on the
database. The ``h`` fixture (conftest) also fails a test whose bot ever sent its internal-error
message, made a Bot API call Telegram would refuse, or left a callback query unanswered.
"""

from __future__ import annotations

import pytest

from bot.harness import plain
from tests.conftest import (
    INTERNAL_ERROR,
    card_message,
    count,
    declare,
    member_row,
    popups,
    rows,
    said,
    setup_branch,
)

pytestmark = pytest.mark.asyncio


def alert_texts(calls) -> list[str]:
    return [str(c.params.get("text", "")) for c in popups(calls) if c.params.get("show_alert")]


# --- 1. /setup ---------------------------------------------------------------------------------------


async def test_setup_admin_only_with_four_presets_and_once(h):
    group = h.group(-1001000000001, "兰溪镇红星村党支部")
    admin = h.user(1001, "王书记")
    stranger = h.user(1009, "路人")
    h.world.set_admin(group.id, admin.id)
    await h.feed(h.world.bot_added(group, admin))

    calls = await h.say(stranger, group, "/setup")
    assert "只有群管理员可以设置支部" in said(calls, group.id)
    assert await count(h, "branches") == 0

    calls = await h.say(admin, group, "/setup")
    sent = [c for c in calls if c.method == "sendMessage"]
    assert len(sent) == 1 and sent[0].chat_id == group.id
    buttons = h.world.buttons(sent[0])
    assert [data for _, data in buttons] == ["setup:xishui", "setup:zhangdian", "setup:jiancaoping", "setup:sanmenxia"]
    assert len(buttons) == 4

    menu = h.world.last_message(group.id)
    calls = await h.press(stranger, menu, "setup:xishui")
    assert [c.method for c in calls] == ["getChatMember", "answerCallbackQuery"]
    assert popups(calls)[0].params.get("show_alert") is True
    assert "只有群管理员" in popups(calls)[0].params["text"]
    assert await count(h, "branches") == 0 and await count(h, "members") == 0

    calls = await h.press(admin, menu, "setup:xishui")
    assert popups(calls) and not popups(calls)[0].params.get("show_alert")
    assert "支部设置完成" in said(calls, group.id)
    branches = await rows(h, "SELECT * FROM branches")
    assert len(branches) == 1 and branches[0]["chat_id"] == group.id and branches[0]["preset"] == "xishui"
    secretary = await member_row(h, admin.id)
    assert secretary is not None and secretary["status"] == "approved"
    assert await rows(h, "SELECT role FROM roles WHERE member_id = ?", secretary["id"]) == [{"role": "secretary"}]

    calls = await h.say(admin, group, "/setup")
    assert "本群已经设为党支部" in said(calls, group.id)
    assert await count(h, "branches") == 1
    # the old preset menu pressed again creates nothing more
    calls = await h.press(admin, menu, "setup:sanmenxia")
    assert popups(calls)
    assert await count(h, "branches") == 1 and (await rows(h, "SELECT preset FROM branches"))[0]["preset"] == "xishui"


# --- 2. menus -----------------------------------------------------------------------------------------


async def test_command_menus_for_each_scope_and_language(h):
    calls = [c for c in h.world.calls if c.method == "setMyCommands"]
    assert all(c.ok for c in calls)
    seen = {(c.params["scope"]["type"], c.params.get("language_code")) for c in calls}
    for scope in ("all_private_chats", "all_group_chats", "all_chat_administrators"):
        for lang in ("zh", "en"):
            assert (scope, lang) in seen
    by_key = {(c.params["scope"]["type"], c.params.get("language_code")): c.params["commands"] for c in calls}
    assert {c["command"] for c in by_key[("all_chat_administrators", "zh")]} >= {"setup", "join", "role", "state"}
    assert {c["command"] for c in by_key[("all_group_chats", "zh")]} >= {"join", "declare"}
    assert "setup" not in {c["command"] for c in by_key[("all_group_chats", "zh")]}
    assert {c["command"] for c in by_key[("all_private_chats", "en")]} >= {"declare", "points", "history", "cancel"}
    zh = {c["command"]: c["description"] for c in by_key[("all_private_chats", "zh")]}
    en = {c["command"]: c["description"] for c in by_key[("all_private_chats", "en")]}
    assert zh["declare"] != en["declare"]


# --- 3. /join ------------------------------------------------------------------------------------------


async def test_join_needs_the_secretary_once(h):
    group = h.group(-1001000000001, "兰溪镇红星村党支部")
    secretary = h.user(1001, "王书记")
    member = h.user(1002, "李记录")
    newcomer = h.user(1003, "张三")
    h.world.set_admin(group.id, secretary.id)
    await h.say(secretary, group, "/setup")
    await h.tap(secretary, group.id, "浠水")
    await h.say(member, group, "/join")
    await h.tap(secretary, group.id, "同意")

    calls = await h.say(newcomer, group, "/join")
    sent = [c for c in calls if c.method == "sendMessage"]
    assert len(sent) == 1 and sent[0].chat_id == group.id
    assert "张三" in sent[0].params["text"] and "申请加入本支部" in sent[0].params["text"]
    row = await member_row(h, newcomer.id)
    assert row is not None and row["status"] == "pending"
    assert [d for _, d in h.world.buttons(sent[0])] == [f"join:ok:{row['id']}", f"join:no:{row['id']}"]
    request = h.world.last_message(group.id)

    # an approved member without a role, and the applicant themself
    for presser, refusal in ((member, "只有以下角色可以这样做"), (newcomer, "您不是本支部已登记的党员")):
        calls = await h.press(presser, request, f"join:ok:{row['id']}")
        assert alert_texts(calls) and refusal in alert_texts(calls)[0]
        assert not [c for c in calls if c.method == "editMessageText"]
        assert (await member_row(h, newcomer.id))["status"] == "pending"

    calls = await h.press(secretary, request, f"join:ok:{row['id']}")
    assert (await member_row(h, newcomer.id))["status"] == "approved"
    assert "已加入本支部" in said(calls, group.id)
    assert "欢迎加入" in said(calls, newcomer.id)
    assert not h.world.buttons(h.world.message_by_id(group.id, request.message_id))

    calls = await h.press(secretary, request, f"join:ok:{row['id']}")
    assert alert_texts(calls) and "已经处理过了" in alert_texts(calls)[0]
    calls = await h.press(secretary, request, f"join:no:{row['id']}")
    assert alert_texts(calls) and "已经处理过了" in alert_texts(calls)[0]
    assert (await member_row(h, newcomer.id))["status"] == "approved"

    calls = await h.say(newcomer, group, "/join")
    assert "您已经是本支部的党员了" in said(calls, group.id)
    assert await count(h, "members", "user_id = ?", newcomer.id) == 1


# --- 4. declaring, happy path -------------------------------------------------------------------------


async def test_declare_and_approve_writes_one_ledger_row(h, b):
    chat = h.private(b.zhang)
    calls = await h.say(b.zhang, b.group, "/declare")
    buttons = h.world.buttons([c for c in calls if c.method == "sendMessage"][0])
    assert buttons and buttons[0][1] == f"https://t.me/branch_points_bot?start=declare-{b.branch.id}"

    calls = await h.say(b.zhang, chat, "/declare")
    assert "请选择类别" in said(calls, chat.id)
    assert ("志愿服务岗位贡献", "dl:c:posts") in h.world.buttons(h.world.last_message(chat.id))
    calls = await h.tap(b.zhang, chat.id, "志愿服务岗位")
    assert "请选择事项" in said(calls, chat.id)
    calls = await h.tap(b.zhang, chat.id, "为民办一件实事")
    assert "是哪一天做的" in said(calls, chat.id) and "2026-03-01 至 2026-03-20" in said(calls, chat.id)
    calls = await h.tap(b.zhang, chat.id, "今天")
    assert "日期：2026-03-20" in said(calls, chat.id) and "在什么地方" in said(calls, chat.id)
    calls = await h.say(b.zhang, chat, "村东头刘大爷家")
    assert "请讲清楚经过" in said(calls, chat.id)
    calls = await h.say(b.zhang, chat, "帮行动不便的刘大爷打扫院子。")
    assert "照片" in said(calls, chat.id)
    calls = await h.send_photo(b.zhang, chat)
    confirm = said(calls, chat.id)
    assert "请核对申报内容" in confirm and "村东头刘大爷家" in confirm and "照片：有" in confirm
    assert await count(h, "declarations") == 0

    calls = await h.tap(b.zhang, chat.id, "提交")
    assert "已提交" in said(calls, chat.id)
    declarations = await rows(h, "SELECT * FROM declarations")
    assert len(declarations) == 1
    d = declarations[0]
    assert (d["status"], d["item_code"], d["value"], d["occurred_on"], d["member_id"]) == (
        "pending", "post_deed", "10", "2026-03-20", b.member_ids["zhang"])
    assert d["photo_file_id"]
    number = d["id"]
    # the recorder gets the photo, then the card with Approve / Reject; nobody else does
    to_recorder = [c for c in calls if c.chat_id == b.recorder.id]
    assert [c.method for c in to_recorder] == ["sendPhoto", "sendMessage"]
    card = to_recorder[1]
    assert f"申报 #{number}" in card.params["text"] and "张三" in card.params["text"]
    assert h.world.buttons(card) == [("✅ 通过 10分", f"dc:ok:{number}"), ("✖ 不通过", f"dc:rj:{number}")]
    assert not [c for c in calls if c.chat_id == b.secretary.id]
    assert await count(h, "ledger") == 0

    message = card_message(h, b.recorder.id, number)
    calls = await h.press(b.recorder, message, f"dc:ok:{number}")
    ledger = await rows(h, "SELECT * FROM ledger")
    assert len(ledger) == 1
    row = ledger[0]
    assert (row["source"], row["reference"], row["value"], row["item_code"], row["member_id"], row["actor_id"]) == (
        "declaration", f"decl:{number}", "10", "post_deed", b.member_ids["zhang"], b.member_ids["recorder"])
    assert row["occurred_on"] == "2026-03-20"
    d = (await rows(h, "SELECT * FROM declarations WHERE id = ?", number))[0]
    assert (d["status"], d["decided_value"], d["decided_by"]) == ("approved", "10", b.member_ids["recorder"])
    edits = [c for c in calls if c.method == "editMessageText"]
    assert len(edits) == 1 and edits[0].chat_id == b.recorder.id and int(edits[0].params["message_id"]) == message.message_id
    assert "已通过" in edits[0].params["text"] and not h.world.buttons(edits[0])
    assert "已通过，记 10分" in said(calls, b.zhang.id)
    assert popups(calls) and "已通过" in popups(calls)[0].params["text"]

    calls = await h.press(b.recorder, message, f"dc:ok:{number}")  # the same press, again
    assert alert_texts(calls) == ["这条申报已经处理过了。"]
    assert not [c for c in calls if c.method in ("sendMessage", "editMessageText")]
    assert await count(h, "ledger") == 1


async def test_unreachable_recorder_leaves_the_declaration_for_pending(h, b):
    h.world.block(b.recorder.id)
    number = await declare(h, b.zhang)
    assert (await rows(h, "SELECT status FROM declarations WHERE id = ?", number))[0]["status"] == "pending"
    assert "记录员暂时收不到私信" in said(h.world.sent(b.zhang.id)[-1:])
    h.world.unblock(b.recorder.id)
    calls = await h.say(b.recorder, h.private(b.recorder), "/pending")
    assert f"申报 #{number}" in said(calls, b.recorder.id)
    await h.tap(b.recorder, b.recorder.id, "通过")
    assert await count(h, "ledger", "reference = ?", f"decl:{number}") == 1


# --- 5. bad input in /declare -------------------------------------------------------------------------


async def _to_date_step(h, person):
    chat = h.private(person)
    await h.say(person, chat, "/declare")
    await h.tap(person, chat.id, "志愿服务岗位")
    await h.tap(person, chat.id, "为民办一件实事")
    return chat


async def test_declare_refuses_bad_input_and_cancels(h, b):
    chat = await _to_date_step(h, b.zhang)
    for typed, expected in (
        ("2026-03-25", "不能申报将来的日期"),
        ("2026-01-10", "不在可申报的期间内（2026-03-01 至 2026-03-20）"),
        ("三月的某一天", "看不懂这个日期"),
        ("2026-02-30", "看不懂这个日期"),
    ):
        calls = await h.say(b.zhang, chat, typed)
        assert expected in said(calls, chat.id), typed
    calls = await h.say(b.zhang, chat, "2026-03-05")
    assert "日期：2026-03-05" in said(calls, chat.id)

    for typed in ("     ", "\u200b", "\u200b \u200d\u2060"):
        calls = await h.say(b.zhang, chat, typed)
        assert "内容不能为空" in said(calls, chat.id), repr(typed)
    calls = await h.say(b.zhang, chat, "村委会")
    assert "请讲清楚经过" in said(calls, chat.id)

    calls = await h.say(b.zhang, chat, "好" * 5000)
    assert "内容太长（最多 1000 个字）" in said(calls, chat.id)
    calls = await h.say(b.zhang, chat, "帮邻居修水管。")
    assert "照片" in said(calls, chat.id)

    calls = await h.say(b.zhang, chat, "/cancel")
    assert "已取消申报" in said(calls, chat.id)
    calls = await h.say(b.zhang, chat, "还有话说")  # the flow is over: nothing picks this up
    assert await count(h, "declarations") == 0

    # the Cancel button, at the place step
    await _to_date_step(h, b.zhang)
    await h.tap(b.zhang, chat.id, "今天")
    calls = await h.tap(b.zhang, chat.id, "取消")
    assert "已取消申报" in said(calls, chat.id)
    assert popups(calls)
    await h.say(b.zhang, chat, "村委会")
    # and at the confirm step
    await declare(h, b.zhang, submit=False)
    message, _ = h.find_button(chat.id, "提交")
    calls = await h.tap(b.zhang, chat.id, "取消")
    assert "已取消申报" in said(calls, chat.id)
    calls = await h.press(b.zhang, message, "dl:ok")  # the submit button of the cancelled flow
    assert popups(calls) and "已失效" in popups(calls)[0].params.get("text", "")
    assert await count(h, "declarations") == 0
    assert not h.world.sent(b.recorder.id)[-1].params.get("text", "").startswith("📝")


# --- 6. an item that may not be declared --------------------------------------------------------------


async def test_crafted_undeclarable_item_is_refused(h, b):
    chat = h.private(b.zhang)
    await h.say(b.zhang, chat, "/declare")
    await h.tap(b.zhang, chat.id, "志愿服务岗位")
    items = h.world.last_message(chat.id)
    for code in ("study", "political_discipline", "post_duty", "nonexistent"):
        calls = await h.press(b.zhang, items, f"dl:i:{code}")
        assert alert_texts(calls) == ["这个事项不能由党员申报。"], code
        assert not [c for c in calls if c.method in ("sendMessage", "editMessageText")]
    # the flow is still at the item step: a legal item goes on to the date
    calls = await h.tap(b.zhang, chat.id, "为民办一件实事")
    assert "是哪一天做的" in said(calls, chat.id)
    assert await count(h, "declarations") == 0


# --- 7. authority -------------------------------------------------------------------------------------


async def test_only_the_right_decider_may_decide(h, b):
    number = await declare(h, b.zhang)
    assert number is not None
    card = card_message(h, b.recorder.id, number)

    # a plain member crafts the approve data on a message of their own
    lisi_message = h.world.last_message(b.lisi.id)
    calls = await h.press(b.lisi, lisi_message, f"dc:ok:{number}")
    assert alert_texts(calls) == ["您没有审核这条申报的权限。"]
    calls = await h.press(b.lisi, lisi_message, f"dc:v:{number}:10")
    assert alert_texts(calls) == ["您没有审核这条申报的权限。"]
    calls = await h.press(b.lisi, lisi_message, f"dc:rj:{number}")
    assert alert_texts(calls) == ["您没有审核这条申报的权限。"]
    calls = await h.say(b.lisi, h.private(b.lisi), "我觉得不行")  # not in a reject conversation
    assert await count(h, "ledger") == 0
    # the declarant on their own declaration
    calls = await h.press(b.zhang, h.world.last_message(b.zhang.id), f"dc:ok:{number}")
    assert alert_texts(calls) and alert_texts(calls)[0] in ("您没有审核这条申报的权限。", "不能审核自己的申报或给自己记分。")
    assert await count(h, "ledger") == 0
    assert (await rows(h, "SELECT status FROM declarations WHERE id = ?", number))[0]["status"] == "pending"

    # the recorder's own declaration goes to the secretary, and the recorder cannot approve it
    before = len(h.world.calls)
    own = await declare(h, b.recorder, "加分项", "参与“七一”“十一”系列活动")
    later = h.world.calls[before:]
    cards = [c for c in later if c.method == "sendMessage" and f"申报 #{own}（" in c.params.get("text", "")]
    assert [c.chat_id for c in cards] == [b.secretary.id]
    calls = await h.press(b.recorder, h.world.last_message(b.recorder.id), f"dc:ok:{own}")
    assert alert_texts(calls) == ["不能审核自己的申报或给自己记分。"]
    # a secretary may decide it
    calls = await h.press(b.secretary, card_message(h, b.secretary.id, own), f"dc:ok:{own}")
    assert await count(h, "ledger", "reference = ?", f"decl:{own}") == 1

    # a declaration of another branch, named by this branch's recorder
    other = await setup_branch(h, chat_id=-1001000000002, title="另一个支部", base=2000)
    foreign = await declare(h, other.zhang)
    assert foreign is not None
    assert card_message(h, other.recorder.id, foreign)
    for data in (f"dc:ok:{foreign}", f"dc:v:{foreign}:10", f"dc:adj:{foreign}", f"dc:rj:{foreign}", f"dc:bk:{foreign}"):
        calls = await h.press(b.recorder, card, data)
        assert alert_texts(calls) == ["您没有审核这条申报的权限。"], data
        assert not [c for c in calls if c.method.startswith(("send", "edit"))], data
    assert (await rows(h, "SELECT status FROM declarations WHERE id = ?", foreign))[0]["status"] == "pending"
    assert await count(h, "ledger", "branch_id = ?", other.branch.id) == 0

    # unknown and oversized data, and a number that does not exist
    before_ledger = await rows(h, "SELECT * FROM ledger")
    before_decl = await rows(h, "SELECT * FROM declarations")
    for data in ("zz:1", "x" * 64, "dc:ok:999999", "dc:ok:", "dc:ok:1:2:3", "join:ok:999", "setup:nope", "dl:ok", "dl:i:post_deed"):
        calls = await h.press(b.recorder, card, data)
        assert popups(calls), data
        assert not [c for c in calls if c.method.startswith(("send", "edit"))], data
    assert await rows(h, "SELECT * FROM ledger") == before_ledger
    assert await rows(h, "SELECT * FROM declarations") == before_decl

    # the original recorder still decides the first one
    await h.press(b.recorder, card, f"dc:ok:{number}")
    assert await count(h, "ledger", "reference = ?", f"decl:{number}") == 1
    answered = {c.params["callback_query_id"] for c in h.world.calls if c.method == "answerCallbackQuery"}
    assert set(h.query_ids) <= answered


# --- 8. reject ----------------------------------------------------------------------------------------


async def test_reject_needs_a_reason_which_is_stored_and_escaped(h, b):
    number = await declare(h, b.zhang)
    recorder_chat = h.private(b.recorder)
    calls = await h.tap(b.recorder, b.recorder.id, "不通过")
    assert f"请回复不通过申报 #{number}（张三）的理由" in said(calls, b.recorder.id)
    for empty in ("   ", "\u200b\u200b"):
        calls = await h.say(b.recorder, recorder_chat, empty)
        assert "请写明理由" in said(calls, b.recorder.id)
    calls = await h.say(b.recorder, recorder_chat, "x" * 501)
    assert "内容太长（最多 500 个字）" in said(calls, b.recorder.id)
    assert (await rows(h, "SELECT status FROM declarations WHERE id = ?", number))[0]["status"] == "pending"

    reason = "<b>no</b> & <script>"
    calls = await h.say(b.recorder, recorder_chat, reason)
    d = (await rows(h, "SELECT * FROM declarations WHERE id = ?", number))[0]
    assert (d["status"], d["decision_reason"], d["decided_value"]) == ("rejected", reason, None)
    assert await count(h, "ledger") == 0
    told = [c for c in calls if c.method == "sendMessage" and c.chat_id == b.zhang.id]
    assert len(told) == 1
    assert "&lt;b&gt;no&lt;/b&gt; &amp; &lt;script&gt;" in told[0].params["text"]
    assert "未通过" in told[0].params["text"]
    assert reason in h.world.last_message(b.zhang.id).text  # what the member reads
    edits = [c for c in calls if c.method == "editMessageText"]
    assert len(edits) == 1 and "&lt;script&gt;" in edits[0].params["text"]
    edited = h.world.message_by_id(b.recorder.id, int(edits[0].params["message_id"]))
    calls = await h.press(b.recorder, edited, f"dc:ok:{number}")
    assert alert_texts(calls) == ["这条申报已经处理过了。"]
    assert await count(h, "ledger") == 0


# --- 9. adjusting a ranged item (张店) ----------------------------------------------------------------


async def test_adjust_ranged_value(h):
    b = await setup_branch(h, preset="zhangdian")
    number = await declare(h, b.zhang, "激励加分", "获区级以上表扬或表彰", place="区政府", text="获区级表彰")
    d = (await rows(h, "SELECT * FROM declarations WHERE id = ?", number))[0]
    assert (d["item_code"], d["value"]) == ("district_praise", "5")
    card = card_message(h, b.recorder.id, number)
    card_buttons = dict((data, label) for label, data in h.world.buttons(card))
    assert f"dc:adj:{number}" in card_buttons and f"dc:rj:{number}" in card_buttons

    calls = await h.press(b.recorder, card, f"dc:adj:{number}")
    markup = [c for c in calls if c.method == "editMessageReplyMarkup"]
    assert len(markup) == 1
    values = h.world.buttons(markup[0])
    assert [t for t, _ in values][:-1] == [str(v) for v in range(5, 21)]
    assert values[-1][1] == f"dc:bk:{number}"
    card = h.world.message_by_id(b.recorder.id, card.message_id)

    for data in (f"dc:v:{number}:99", f"dc:v:{number}:NaN", f"dc:v:{number}:4", f"dc:v:{number}:-5",
                 f"dc:v:{number}:Infinity", f"dc:v:{number}:sNaN", f"dc:v:{number}:abc"):
        calls = await h.press(b.recorder, card, data)
        assert alert_texts(calls) == ["这个分值不在该事项允许的范围内。"], data
    assert await count(h, "ledger") == 0
    assert (await rows(h, "SELECT status FROM declarations WHERE id = ?", number))[0]["status"] == "pending"

    calls = await h.press(b.recorder, card, f"dc:bk:{number}")  # back to the card's own buttons
    assert [d for _, d in h.world.buttons(h.world.message_by_id(b.recorder.id, card.message_id))] == list(card_buttons)
    await h.press(b.recorder, card, f"dc:adj:{number}")
    calls = await h.tap(b.recorder, b.recorder.id, "12")
    ledger = await rows(h, "SELECT * FROM ledger")
    assert len(ledger) == 1 and ledger[0]["value"] == "12" and ledger[0]["reference"] == f"decl:{number}"
    assert (await rows(h, "SELECT decided_value FROM declarations WHERE id = ?", number))[0]["decided_value"] == "12"
    assert "记 12分" in said(calls, b.zhang.id)
    calls = await h.press(b.recorder, card, f"dc:v:{number}:20")
    assert alert_texts(calls) == ["这条申报已经处理过了。"]
    assert await count(h, "ledger") == 1


# --- 10. queries --------------------------------------------------------------------------------------


async def test_points_rules_history_pending(h, b):
    number = await declare(h, b.zhang)
    await h.tap(b.recorder, b.recorder.id, "通过")
    recorder_chat = h.private(b.recorder)
    calls = await h.say(b.recorder, recorder_chat, "/record @zhang_1000 study absent 3月5日集中学习无故缺席")
    assert "已为 张三 记录" in said(calls, b.recorder.id)
    ledger = await rows(h, "SELECT * FROM ledger ORDER BY id")
    assert [(r["item_code"], r["event_code"], r["value"], r["source"]) for r in ledger] == [
        ("post_deed", None, "10", "declaration"), ("study", "absent", "-5", "recorder")]

    chat = h.private(b.zhang)
    calls = await h.say(b.zhang, chat, "/points")
    text = said(calls, chat.id)
    # month: obligations 40 - 5 = 35; posts: 2 claimed posts x 10 + the deed 10 = 30 -> 65
    assert "本月得分：65分" in text
    assert "履行党员义务：35 / 40" in text and "志愿服务岗位贡献：30 / 60" in text
    assert "本年至今：65分（1 个月平均分，加分项 0 分）" in text
    assert "当前等次：基本合格 ★★★" in text
    assert "无故缺席 -5" in text and "为民办一件实事 +10" in text
    standing = await h.services.points.standing(b.branch, await h.services.roster.member_of(b.branch, b.zhang.id))
    assert standing.month.total == 65 and standing.published == 65 and standing.band.stars == 3

    calls = await h.say(b.zhang, b.group, "/points")
    sent = [c for c in calls if c.method == "sendMessage"]
    assert sent and sent[0].chat_id == b.group.id and "请私聊我查看" in sent[0].params["text"]
    assert h.world.buttons(sent[0]) == [("打开私聊", "https://t.me/branch_points_bot?start=points")]
    assert "本月得分" not in said(calls)

    calls = await h.say(b.zhang, chat, "/history")
    text = said(calls, chat.id)
    assert "积分明细（最近 2 条）" in text and "学习教育 · 无故缺席" in text and "为民办一件实事" in text

    pending = await declare(h, b.lisi, "加分项", "受县级表彰")
    calls = await h.say(b.recorder, recorder_chat, "/pending")
    sent = [c for c in calls if c.method == "sendMessage"]
    assert "待审核的申报共 1 条" in sent[0].params["text"]
    assert f"申报 #{pending}" in sent[1].params["text"] and h.world.buttons(sent[1])[0][1] == f"dc:ok:{pending}"
    assert f"申报 #{number}" not in said(calls)
    # the copy from /pending is a card too: deciding there edits both copies
    calls = await h.press(b.recorder, h.world.message_by_id(b.recorder.id, sent[1].result["message_id"]), f"dc:ok:{pending}")
    assert len([c for c in calls if c.method == "editMessageText"]) == 2

    calls = await h.say(b.lisi, h.private(b.lisi), "/pending")
    assert "只有以下角色可以这样做" in said(calls, b.lisi.id)
    calls = await h.say(b.zhang, chat, "/history @lisi_1000")
    assert "只有以下角色可以这样做" in said(calls, b.zhang.id)
    calls = await h.say(b.recorder, recorder_chat, "/points @zhang_1000")
    assert "本月得分：65分" in said(calls, b.recorder.id)


async def test_rules_lists_the_items(h):
    b = await setup_branch(h, preset="sanmenxia")
    calls = await h.say(b.zhang, h.private(b.zhang), "/rules")
    text = said(calls, b.zhang.id)
    assert "积分细则" in text and "三门峡" in text
    assert "义务为群众修理机械" in text or "repair_machinery" in text
    assert "repair_machinery" in text and "不参加组织生活：-5" in text
    calls = await h.say(b.zhang, b.group, "/rules")
    assert "repair_machinery" in said(calls, b.group.id)


async def test_rules_with_bands(h, b):
    calls = await h.say(b.zhang, h.private(b.zhang), "/rules")
    text = said(calls, b.zhang.id)
    assert "为民办一件实事：+10" in text and "post_deed" in text and "基本合格" in text
    assert INTERNAL_ERROR not in text


async def test_points_deep_link_from_the_group(h, b):
    calls = await h.say(b.zhang, b.group, "/points")
    link = h.world.buttons([c for c in calls if c.method == "sendMessage"][0])[0][1]
    assert link.endswith("?start=points")
    calls = await h.say(b.zhang, h.private(b.zhang), "/start points")  # what Telegram sends for the link
    assert "本月得分" in said(calls, b.zhang.id)


# --- 11. English ----------------------------------------------------------------------------------------


async def test_english_user_gets_english_in_private(h, b):
    zhao = h.user(1005, "Zhao Wu", username="zhaowu", language="en")
    await h.say(zhao, b.group, "/join")
    calls = await h.tap(b.secretary, b.group.id, "同意")
    assert "已加入本支部" in said(calls, b.group.id)  # the group speaks the branch's language
    chat = h.private(zhao)
    calls = await h.say(zhao, chat, "/start")
    assert "Hello!" in said(calls, chat.id) and "/declare declare points" in said(calls, chat.id)
    calls = await h.say(zhao, chat, "/help")
    assert "Members" in said(calls, chat.id)
    number = await declare(h, zhao, "Volunteer posts", "One practical thing", place="Village square", text="Taught villagers.")
    assert "Declaration #" in said(h.world.sent(chat.id)[-1:])
    card = card_message(h, b.recorder.id, number)
    assert "申报" in card.text  # the recorder reads Chinese
    calls = await h.press(b.recorder, card, f"dc:ok:{number}")
    assert "Your declaration" in said(calls, zhao.id) and "10 points" in said(calls, zhao.id)
    calls = await h.say(zhao, chat, "/points")
    text = said(calls, chat.id)
    assert "Points of Zhao Wu" in text and "Score this month" in text
    calls = await h.say(zhao, chat, "/declare")
    await h.tap(zhao, chat.id, "Volunteer posts")
    await h.tap(zhao, chat.id, "One practical thing")
    calls = await h.say(zhao, chat, "2026-03-25")
    assert "future" in said(calls, chat.id).lower()
    calls = await h.say(zhao, chat, "/cancel")
    assert INTERNAL_ERROR not in said(calls)
    for call in h.world.sent(chat.id)[1:]:  # every private text after the welcome has no Chinese in its own words
        text = plain(call.params.get("text", ""))
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in text.replace("兰溪镇红星村党支部", "").replace("李记录", "")), text


async def test_english_member_is_welcomed_in_english(h, b):
    zhao = h.user(1005, "Zhao Wu", username="zhaowu", language="en")
    await h.say(zhao, b.group, "/join")
    calls = await h.tap(b.secretary, b.group.id, "同意")
    welcome = said(calls, zhao.id)
    assert "Welcome" in welcome and "欢迎" not in welcome


# --- 12. HTML escaping and length ---------------------------------------------------------------------


async def test_hostile_name_is_escaped_and_cleaned(h, b):
    evil = h.user(1006, "<b>Evil</b> \u202eRTL")
    calls = await h.say(evil, b.group, "/join")
    sent = [c for c in calls if c.method == "sendMessage"][0]
    assert "&lt;b&gt;Evil&lt;/b&gt;" in sent.params["text"]
    assert "<b>Evil</b>" in h.world.last_message(b.group.id).text  # shown as typed, not as markup
    row = await member_row(h, evil.id)
    assert row["name"] == "<b>Evil</b> RTL" and "\u202e" not in row["name"]
    await h.tap(b.secretary, b.group.id, "同意")
    chat = h.private(evil)
    number = await declare(h, evil, place="<i>here</i> & there", text="</b><a href='x'>click</a> \u202e")
    card = [c for c in h.world.sent(b.recorder.id) if f"申报 #{number}（" in c.params.get("text", "")][-1]
    assert "&lt;b&gt;Evil&lt;/b&gt;" in card.params["text"] and "&lt;i&gt;here&lt;/i&gt; &amp; there" in card.params["text"]
    await h.tap(b.recorder, b.recorder.id, "通过")
    calls = await h.say(b.secretary, b.group, "/members")
    assert "&lt;b&gt;Evil&lt;/b&gt; RTL" in said(calls, b.group.id) or "<b>Evil</b> RTL" in said(calls, b.group.id)
    calls = await h.say(evil, chat, "/points")
    assert "<b>Evil</b> RTL" in said(calls, chat.id)
    # a long roster listing stays within the limit (split into several messages)
    csv = "姓名\n" + "\n".join(f"党员{i:04d}{'长' * 50}" for i in range(120))
    await h.say(b.secretary, h.private(b.secretary), "/roster")
    await h.send_document(b.secretary, h.private(b.secretary), "roster.csv", csv.encode())
    calls = await h.say(b.secretary, b.group, "/members")
    listing = [c for c in calls if c.method == "sendMessage"]
    assert len(listing) >= 2 and all(len(plain(c.params["text"])) <= 4096 for c in listing)
    # everything sent in this test is within Telegram's limit and not the internal error
    for call in h.world.calls:
        if call.method in ("sendMessage", "editMessageText"):
            assert call.ok, call.error
            assert len(plain(call.params["text"])) <= 4096
            assert INTERNAL_ERROR not in call.params["text"]


async def test_pending_card_with_escaped_text_is_one_intact_message(h, b):
    description = "&" * 1000  # 1000 characters as typed, 5000 once escaped
    number = await declare(h, b.zhang, text=description)
    assert (await rows(h, "SELECT description FROM declarations WHERE id = ?", number))[0]["description"] == description
    calls = await h.say(b.recorder, h.private(b.recorder), "/pending")
    cards = [c for c in calls if c.method == "sendMessage" and "申报" in c.params["text"] and "待审核" not in c.params["text"]]
    assert len(cards) == 1
    assert description in h.world.message_by_id(b.recorder.id, cards[0].result["message_id"]).text


async def test_role_refusal_names_roles_in_the_users_language(h, b):
    calls = await h.say(b.zhang, b.group, "/role @lisi_1000 recorder")
    text = said(calls, b.group.id)
    assert "只有以下角色可以这样做" in text and "secretary" not in text and "书记" in text


async def test_popup_shows_a_name_as_typed(h, b):
    evil = h.user(1006, "A & <B>")
    await h.say(evil, b.group, "/join")
    calls = await h.tap(b.secretary, b.group.id, "同意")
    text = popups(calls)[0].params["text"]
    assert "A & <B>" in text and "&amp;" not in text


# --- 13. replayed updates -----------------------------------------------------------------------------


async def test_replayed_submit_and_approve_change_nothing(h, b):
    await declare(h, b.zhang, submit=False)
    chat = h.private(b.zhang)
    message, data = h.find_button(chat.id, "提交")
    submit = h.world.press(b.zhang, message, data)
    await h.feed(submit)
    await h.feed(submit)
    declarations = await rows(h, "SELECT * FROM declarations")
    assert len(declarations) == 1
    number = declarations[0]["id"]
    cards = [c for c in h.world.sent(b.recorder.id) if c.method == "sendMessage" and f"申报 #{number}（" in c.params["text"]]
    assert len(cards) == 1

    card = card_message(h, b.recorder.id, number)
    approve = h.world.press(b.recorder, card, f"dc:ok:{number}")
    await h.feed(approve)
    calls = await h.feed(approve)
    assert alert_texts(calls) == ["这条申报已经处理过了。"]
    assert await count(h, "ledger") == 1 and await count(h, "declarations") == 1
    told = [c for c in h.world.sent(b.zhang.id) if "已通过" in c.params.get("text", "")]
    assert len(told) == 1

    record = h.world.text(b.recorder, h.private(b.recorder), "/record @zhang_1000 study absent 缺席")
    await h.feed(record)
    calls = await h.feed(record)
    assert "已经保存过了" in said(calls, b.recorder.id)
    assert await count(h, "ledger") == 2


# --- 14. CSV roster -----------------------------------------------------------------------------------


async def test_roster_csv_import(h, b):
    chat = h.private(b.secretary)
    calls = await h.say(b.secretary, chat, "/roster")
    assert "CSV" in said(calls, chat.id)
    good = "姓名,性别,联系电话,状态\n王五,男,13800000001,正式\n赵六,女,13800000002,预备\n钱七,男,,\n".encode()
    calls = await h.send_document(b.secretary, chat, "roster.csv", good)
    assert "已导入 3 名党员" in said(calls, chat.id)
    added = await rows(h, "SELECT name, sex, phone, state, status, user_id FROM members WHERE user_id IS NULL ORDER BY id")
    assert added == [
        {"name": "王五", "sex": "男", "phone": "13800000001", "state": "active", "status": "approved", "user_id": None},
        {"name": "赵六", "sex": "女", "phone": "13800000002", "state": "probationary", "status": "approved", "user_id": None},
        {"name": "钱七", "sex": "男", "phone": "", "state": "active", "status": "approved", "user_id": None},
    ]

    await h.say(b.secretary, chat, "/roster")
    bad = "\ufeff姓名,性别,联系电话,状态\n孙八,男,1,正式\n周九,女,2,党员\n".encode()
    calls = await h.send_document(b.secretary, chat, "bad.csv", bad)
    text = said(calls, chat.id)
    assert "第 3 行" in text and "党员" in text and "未保存任何内容" in text
    assert await count(h, "members", "name IN ('孙八', '周九')") == 0
    calls = await h.say(b.secretary, chat, "随便说说")
    assert "请发送 CSV 文件" in said(calls, chat.id)
    calls = await h.say(b.secretary, chat, "/cancel")
    assert "已取消" in said(calls, chat.id)

    calls = await h.say(b.zhang, h.private(b.zhang), "/roster")
    assert "只有以下角色可以这样做：书记" in said(calls, b.zhang.id)
    calls = await h.send_document(b.zhang, h.private(b.zhang), "roster.csv", good)
    assert await count(h, "members", "user_id IS NULL") == 3
    calls = await h.say(b.secretary, b.group, "/roster")
    assert "请私聊我" in said(calls, b.group.id)

    # a roster person who joins is matched to their row
    wang = h.user(1007, "王五")
    await h.say(wang, b.group, "/join")
    await h.tap(b.secretary, b.group.id, "同意")
    rows_wang = await rows(h, "SELECT * FROM members WHERE name = '王五'")
    assert len(rows_wang) == 1 and rows_wang[0]["user_id"] == wang.id and rows_wang[0]["phone"] == "13800000001"


# --- 15. /role and /state -----------------------------------------------------------------------------


async def test_roles_and_states(h, b):
    lisi_id = b.member_ids["lisi"]
    calls = await h.say(b.secretary, b.group, "/role @lisi_1000 recorder")
    assert "李四 现在是积分记录员" in said(calls, b.group.id)
    assert {r["role"] for r in await rows(h, "SELECT role FROM roles WHERE member_id = ?", lisi_id)} == {"recorder"}
    calls = await h.say(b.secretary, b.group, "/role @lisi_1000 recorder")
    assert "已经是" in said(calls, b.group.id)
    calls = await h.say(b.secretary, b.group, "/role @lisi_1000 -recorder")
    assert await count(h, "roles", "member_id = ?", lisi_id) == 0
    calls = await h.say(b.secretary, b.group, "/role @lisi_1000 emperor")
    assert "没有“emperor”这个角色" in said(calls, b.group.id)
    calls = await h.say(b.secretary, b.group, f"/role {b.member_ids['secretary']} -secretary")
    assert "不能取消唯一一位书记" in said(calls, b.group.id)

    calls = await h.say(b.secretary, b.group, f"/state {lisi_id} probationary")
    assert "李四 的状态已设为：预备党员" in said(calls, b.group.id)
    assert (await member_row(h, b.lisi.id))["state"] == "probationary"
    calls = await h.say(b.secretary, b.group, f"/state {lisi_id} exempt")
    assert "须写明原因" in said(calls, b.group.id)
    assert (await member_row(h, b.lisi.id))["state"] == "probationary"
    calls = await h.say(b.secretary, b.group, f"/state {lisi_id} exempt 年老体弱")
    assert "不纳入积分管理" in said(calls, b.group.id) and "年老体弱" in said(calls, b.group.id)
    row = await member_row(h, b.lisi.id)
    assert (row["state"], row["state_reason"]) == ("exempt", "年老体弱")

    for who, command in ((b.zhang, "/role @zhang_1000 recorder"), (b.recorder, "/role @lisi_1000 secretary"),
                         (b.zhang, f"/state {lisi_id} active")):
        calls = await h.say(who, b.group, command)
        assert "只有以下角色可以这样做" in said(calls, b.group.id), command
    assert await count(h, "roles", "member_id IN (?, ?)", b.member_ids["zhang"], lisi_id) == 0
    assert (await member_row(h, b.lisi.id))["state"] == "exempt"

    calls = await h.say(b.lisi, h.private(b.lisi), "/declare")
    assert "您不纳入积分管理，无需申报" in said(calls, b.lisi.id)
    calls = await h.say(b.lisi, h.private(b.lisi), "/points")
    assert "不纳入积分管理（年老体弱）" in said(calls, b.lisi.id)
    assert await count(h, "declarations") == 0
