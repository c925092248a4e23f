"""Secretary succession (QA3 #3): a member who leaves the group loses their roles (announced, logged); with
no secretary left in the group a group administrator claims the role; a secretary's /role N secretary asks
"hand over (I step down)" or "add a second secretary".

Through the real Application and the offline Telegram: the service message "X left the group" and a
chat_member update are built as Telegram sends them; answers are read from the recorded Bot API calls and
the database (roles, role_changes, members)."""

from __future__ import annotations

import copy

import telegram

from tests.conftest import member_row, popups, rows, said


def left_group(h, user, chat) -> telegram.Update:
    """The service message Telegram sends when ``user`` leaves the group."""
    message = h.world._incoming_message(user, chat)
    message["left_chat_member"] = copy.deepcopy(h.world._users[user.id])
    return h.world._message_update(message)


def kicked(h, user, chat, by) -> telegram.Update:
    """A chat_member update: ``by`` removed ``user`` from the group."""
    who = copy.deepcopy(h.world._users[user.id])
    return h.world._make_update({"chat_member": {
        "chat": copy.deepcopy(h.world._chats[chat.id]), "from": copy.deepcopy(h.world._users[by.id]), "date": 1,
        "old_chat_member": {"status": "member", "user": who},
        "new_chat_member": {"status": "kicked", "user": copy.deepcopy(who), "until_date": 0},
    }})


async def roles_of(h, branch_id: int, member_id: int) -> set[str]:
    return {r["role"] for r in await rows(h, "SELECT role FROM roles WHERE branch_id = ? AND member_id = ?", branch_id, member_id)}


async def changes(h, branch_id: int) -> list[tuple]:
    found = await rows(h, "SELECT member_id, role, change, by_user FROM role_changes WHERE branch_id = ? ORDER BY id", branch_id)
    return [(r["member_id"], r["role"], r["change"], r["by_user"]) for r in found]


async def test_departed_secretary_loses_the_role_and_an_administrator_claims_it(h, b):
    secretary_id, zhang_id = b.member_ids["secretary"], b.member_ids["zhang"]
    calls = await h.feed(left_group(h, b.secretary, b.group))
    text = said(calls, b.group.id)
    assert "王书记 已离开本群，其在本支部的角色（书记）已取消" in text
    assert "本群管理员可在群里发送 /role 认领书记" in text
    assert "您已离开“兰溪镇红星村党支部”的群" in said(calls, b.secretary.id)
    assert await roles_of(h, b.branch.id, secretary_id) == set()
    assert (await member_row(h, b.secretary.id, b.branch.id))["status"] == "approved"  # still a party member
    assert await changes(h, b.branch.id) == [(secretary_id, "secretary", "left_group", None)]
    # The same departure reported again (a chat_member update too) changes and says nothing.
    assert said(await h.feed(left_group(h, b.secretary, b.group))) == ""

    # The departed secretary has no power left in private.
    calls = await h.say(b.secretary, h.private(b.secretary), f"/record {zhang_id} study absent 已离群的书记")
    assert "只有以下角色可以这样做" in said(calls)
    assert await rows(h, "SELECT id FROM ledger WHERE member_id = ? AND source != 'automatic'", zhang_id) == []

    # A member who is no group administrator is told who may take over.
    h.world.set_admin(b.group.id, b.secretary.id, admin=False)
    calls = await h.say(b.lisi, b.group, "/role @zhang_1000 secretary")
    assert "本群管理员可在群里发送 /role 认领书记" in said(calls) and not h.world.buttons(h.world.last_message(b.group.id))

    # An administrator gets the claim button; the press re-checks that the presser is an administrator.
    h.world.set_admin(b.group.id, b.zhang.id)
    calls = await h.say(b.zhang, b.group, "/role @zhang_1000 secretary")
    assert "您是本群管理员，可以认领书记" in said(calls)
    message, data = h.find_button(b.group.id, "由我担任书记")
    assert data == "sc:claim"
    refused = await h.press(b.lisi, message, data)
    assert "只有本群管理员可以认领书记" in popups(refused)[0].params["text"]
    assert await roles_of(h, b.branch.id, b.member_ids["lisi"]) == set()

    calls = await h.press(b.zhang, message, data)
    assert "张三（本群管理员）已认领本支部书记" in said(calls, b.group.id)
    assert await roles_of(h, b.branch.id, zhang_id) == {"secretary"}
    assert (await changes(h, b.branch.id))[-1] == (zhang_id, "secretary", "claimed", b.zhang.id)
    again = await h.press(b.zhang, message, data)
    assert "您已经是本支部书记了" in popups(again)[0].params["text"]
    assert len(await rows(h, "SELECT member_id FROM roles WHERE branch_id = ? AND role = 'secretary'", b.branch.id)) == 1

    # The new secretary works: appoints a recorder; /role from others is the usual refusal again.
    calls = await h.say(b.zhang, b.group, f"/role {b.member_ids['lisi']} recorder")
    assert "李四 现在是积分记录员" in said(calls)
    calls = await h.say(b.lisi, b.group, "/role @lisi_1000 secretary")
    assert "只有以下角色可以这样做：书记" in said(calls)


async def test_an_administrator_outside_the_roll_who_claims_becomes_a_member(h, b):
    await h.feed(left_group(h, b.secretary, b.group))
    outsider = h.user(1999, "赵管理", username="zhao")
    h.world.set_admin(b.group.id, outsider.id)
    await h.say(outsider, b.group, "/role")
    calls = await h.tap(outsider, b.group.id, "由我担任书记")
    assert "赵管理（本群管理员）已认领本支部书记" in said(calls)
    row = await member_row(h, outsider.id, b.branch.id)
    assert row is not None and row["status"] == "approved"
    assert await roles_of(h, b.branch.id, row["id"]) == {"secretary"}


async def test_a_recorder_removed_from_the_group_loses_the_role_without_a_vacancy(h, b):
    recorder_id = b.member_ids["recorder"]
    calls = await h.feed(kicked(h, b.recorder, b.group, b.secretary))
    text = said(calls, b.group.id)
    assert "李记录 已离开本群，其在本支部的角色（积分记录员）已取消" in text and "认领书记" not in text
    assert await roles_of(h, b.branch.id, recorder_id) == set()
    assert await changes(h, b.branch.id) == [(recorder_id, "recorder", "left_group", None)]
    # With a secretary in the group, an administrator's /role is the usual refusal, no claim.
    h.world.set_admin(b.group.id, b.zhang.id)
    calls = await h.say(b.zhang, b.group, "/role @zhang_1000 secretary")
    assert "只有以下角色可以这样做：书记" in said(calls) and "认领" not in said(calls)
    # A plain member leaving says nothing.
    assert said(await h.feed(left_group(h, b.lisi, b.group))) == ""


async def test_secretary_hands_over_and_steps_down(h, b):
    secretary_id, zhang_id = b.member_ids["secretary"], b.member_ids["zhang"]
    calls = await h.say(b.secretary, b.group, f"/role {zhang_id} secretary")
    assert "张三 现在是书记，您也仍是书记" in said(calls) and "这是移交吗" in said(calls)
    assert await roles_of(h, b.branch.id, zhang_id) == {"secretary"}
    message, data = h.find_button(b.group.id, "移交")
    assert len(data.encode()) <= 64 and data == f"ss:quit:{b.branch.id}:{zhang_id}:{secretary_id}"
    for other in (b.lisi, b.zhang):  # only the secretary who sent it; the data carries no authority
        refused = await h.press(other, message, data)
        assert "只有发出这条任命的书记可以选择" in popups(refused)[0].params["text"]
    assert await roles_of(h, b.branch.id, secretary_id) == {"secretary"}
    calls = await h.press(b.secretary, message, data)
    assert "王书记 已将书记移交给 张三：张三 现在是书记，王书记 不再担任书记" in said(calls, b.group.id)
    assert "您已被任命为“兰溪镇红星村党支部”的书记" in said(calls, b.zhang.id)
    assert await roles_of(h, b.branch.id, zhang_id) == {"secretary"}
    assert await roles_of(h, b.branch.id, secretary_id) == set()
    assert await changes(h, b.branch.id) == [(zhang_id, "secretary", "added", b.secretary.id),
                                             (zhang_id, "secretary", "handed_over", b.secretary.id),
                                             (secretary_id, "secretary", "stepped_down", b.secretary.id)]
    again = await h.press(b.secretary, message, data)  # a second tap: the former secretary's press changes nothing
    assert "书记已经移交给 张三 了" in popups(again)[0].params["text"]
    assert await roles_of(h, b.branch.id, zhang_id) == {"secretary"} and await roles_of(h, b.branch.id, secretary_id) == set()
    listing = said(await h.say(b.zhang, b.group, "/members"))
    assert listing.count("· 书记") == 1 and f"#{zhang_id} 张三（正式党员） · 书记" in listing


async def test_hand_over_from_private_is_announced_in_the_group(h, b):
    chat = h.private(b.secretary)
    await h.say(b.secretary, chat, f"/role {b.member_ids['lisi']} secretary")
    calls = await h.tap(b.secretary, chat.id, "移交")
    assert "王书记 已将书记移交给 李四" in said(calls, chat.id) and "王书记 已将书记移交给 李四" in said(calls, b.group.id)
    assert await roles_of(h, b.branch.id, b.member_ids["secretary"]) == set()


async def test_secretary_keeps_a_second_secretary(h, b):
    secretary_id, zhang_id = b.member_ids["secretary"], b.member_ids["zhang"]
    await h.say(b.secretary, h.private(b.secretary), f"/role {zhang_id} secretary")
    calls = await h.tap(b.secretary, b.secretary.id, "保留")
    assert "张三 已增设为书记，王书记 仍是书记" in said(calls)
    assert await roles_of(h, b.branch.id, zhang_id) == {"secretary"}
    assert await roles_of(h, b.branch.id, secretary_id) == {"secretary"}
    assert (await changes(h, b.branch.id)) == [(zhang_id, "secretary", "added", b.secretary.id)]
    # Naming someone who already is secretary, or a role other than secretary: no question asked.
    calls = await h.say(b.secretary, b.group, f"/role {zhang_id} secretary")
    assert "张三 已经是书记" in said(calls) and not h.world.buttons(h.world.last_message(b.group.id))


async def test_a_departure_the_bot_did_not_see_is_found_when_role_is_sent(h, b):
    """The secretary left while the bot saw no service message: /role from an administrator asks Telegram
    (getChatMember) about each secretary; one who is 'left' loses the role then, and the claim is offered."""
    secretary_id = b.member_ids["secretary"]
    answer = h.world._handlers["getchatmember"]

    def left_for_the_secretary(params, files):
        found = answer(params, files)
        if int(params["user_id"]) == b.secretary.id:
            found = {"status": "left", "user": found["user"]}
        return found

    h.world._handlers["getchatmember"] = left_for_the_secretary
    h.world.set_admin(b.group.id, b.zhang.id)
    calls = await h.say(b.zhang, b.group, "/role")
    text = said(calls, b.group.id)
    assert "王书记 已离开本群，其在本支部的角色（书记）已取消" in text and "您是本群管理员，可以认领书记" in text
    assert await roles_of(h, b.branch.id, secretary_id) == set()
    assert await changes(h, b.branch.id) == [(secretary_id, "secretary", "left_group", None)]
    await h.tap(b.zhang, b.group.id, "由我担任书记")
    assert await roles_of(h, b.branch.id, b.member_ids["zhang"]) == {"secretary"}


async def test_coming_back_restores_no_role(h, b):
    recorder_id = b.member_ids["recorder"]
    await h.feed(left_group(h, b.recorder, b.group))
    await h.say(b.recorder, b.group, "/join")  # back in the group: still a member, nothing to approve
    assert (await member_row(h, b.recorder.id, b.branch.id))["status"] == "approved"
    assert await roles_of(h, b.branch.id, recorder_id) == set()
    calls = await h.say(b.recorder, h.private(b.recorder), f"/record {b.member_ids['zhang']} study absent 缺席")
    assert "只有以下角色可以这样做" in said(calls)
    await h.say(b.secretary, b.group, f"/role {recorder_id} recorder")  # appointed again
    assert await roles_of(h, b.branch.id, recorder_id) == {"recorder"}


async def test_a_late_claim_names_the_secretaries_in_place_with_the_languages_separator(h, b):
    """A claim pressed after the post was filled (and a second secretary added) is refused, naming both
    secretaries joined as Chinese joins a list (、), not with an inline ", "."""
    await h.feed(left_group(h, b.secretary, b.group))
    h.world.set_admin(b.group.id, b.secretary.id, admin=False)
    h.world.set_admin(b.group.id, b.zhang.id)
    h.world.set_admin(b.group.id, b.recorder.id)
    await h.say(b.recorder, b.group, "/role @zhang_1000 secretary")
    late_message, late_data = h.find_button(b.group.id, "由我担任书记")  # the recorder's own claim button
    await h.say(b.zhang, b.group, "/role @zhang_1000 secretary")
    message, data = h.find_button(b.group.id, "由我担任书记")
    await h.press(b.zhang, message, data)
    await h.say(b.zhang, b.group, f"/role {b.member_ids['lisi']} secretary")  # granted at once: two secretaries
    refused = await h.press(b.recorder, late_message, late_data)
    assert "本支部已有书记：张三、李四" in popups(refused)[0].params["text"]
