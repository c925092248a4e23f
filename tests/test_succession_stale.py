"""Stale presses on the choice after /role N secretary (QA4 #4, #5): "移交" (hand over: I step down) and
"保留" (keep both) stay on the message, and may be pressed after the roles changed — the appointment
withdrawn by /role N -secretary, the appointee or the sender gone from the group, the hand-over already
made. Each press re-checks, in the write transaction, that the choice still describes the roles; if not
it is refused by a popup (the presser's language) and nothing changes or is posted. A hand-over never
leaves the branch without a secretary in the group.

Through the real Application and the offline Telegram; assertions on the recorded Bot API calls and the
database (roles, role_changes)."""

from __future__ import annotations

from tests.conftest import popups, rows, said
from tests.test_succession import changes, left_group, roles_of


async def secretaries(h, b) -> list[int]:
    found = await rows(h, "SELECT member_id FROM roles WHERE branch_id = ? AND role = 'secretary' ORDER BY member_id", b.branch.id)
    return [r["member_id"] for r in found]


def popup_text(calls) -> str:
    return "\n".join(str(c.params.get("text", "")) for c in popups(calls))


def posted(calls) -> list:
    """Whatever the press sent or edited (a refused press: nothing)."""
    return [c for c in calls if c.method in ("sendMessage", "editMessageText")]


async def appoint(h, b, member_id: int, chat=None):
    """/role N secretary by the secretary; the choice's message and its two buttons' data."""
    chat = chat or b.group
    await h.say(b.secretary, chat, f"/role {member_id} secretary")
    message, quit_data = h.find_button(chat.id, "移交")
    keep_data = next(d for _, d in h.world.buttons(message) if d.startswith("ss:keep"))
    return message, quit_data, keep_data


def gone_from_the_group(h, user) -> None:
    """Telegram answers getChatMember for ``user`` with 'left' (a departure the bot did not see)."""
    answer = h.world._handlers["getchatmember"]

    def left(params, files):
        found = answer(params, files)
        if int(params["user_id"]) == user.id:
            found = {"status": "left", "user": found["user"]}
        return found

    h.world._handlers["getchatmember"] = left


async def test_hand_over_after_the_appointment_was_withdrawn_changes_nothing(h, b):
    secretary_id, zhang_id = b.member_ids["secretary"], b.member_ids["zhang"]
    message, quit_data, keep_data = await appoint(h, b, zhang_id)
    await h.say(b.secretary, b.group, f"/role {zhang_id} -secretary")
    assert await secretaries(h, b) == [secretary_id]

    calls = await h.press(b.secretary, message, quit_data)
    assert "张三 已不是书记（任命已取消，或其已离开本群），这个选择已不适用，没有任何改动" in popup_text(calls)
    assert f"/role {zhang_id} secretary" in popup_text(calls)
    assert posted(calls) == [] and "您已被任命" not in said(calls)
    assert await secretaries(h, b) == [secretary_id]
    assert await changes(h, b.branch.id) == [(zhang_id, "secretary", "added", b.secretary.id)]

    # "keep" on the same message says nothing false either
    calls = await h.press(b.secretary, message, keep_data)
    assert "张三 已不是书记" in popup_text(calls) and posted(calls) == []

    # in English for an English-speaking presser
    h.world._users[b.secretary.id]["language_code"] = "en"
    calls = await h.press(b.secretary, message, quit_data)
    assert "张三 is no longer a secretary (appointment withdrawn, or left the group)" in popup_text(calls)
    assert "nothing was changed" in popup_text(calls) and posted(calls) == []
    assert await secretaries(h, b) == [secretary_id]


async def test_hand_over_to_an_appointee_who_left_the_group_changes_nothing(h, b):
    secretary_id, lisi_id = b.member_ids["secretary"], b.member_ids["lisi"]
    message, quit_data, _ = await appoint(h, b, lisi_id)
    await h.feed(left_group(h, b.lisi, b.group))
    assert await secretaries(h, b) == [secretary_id]

    calls = await h.press(b.secretary, message, quit_data)
    assert "李四 已不是书记" in popup_text(calls) and posted(calls) == []
    assert await secretaries(h, b) == [secretary_id]
    assert await roles_of(h, b.branch.id, lisi_id) == set()
    assert [c[2] for c in await changes(h, b.branch.id)] == ["added", "left_group"]


async def test_hand_over_asks_telegram_whether_the_appointee_is_still_in_the_group(h, b):
    """A departure the bot never saw: the press asks getChatMember, the appointee's role is dropped
    (announced, logged) and the hand-over refused — the sender stays secretary."""
    secretary_id, zhang_id = b.member_ids["secretary"], b.member_ids["zhang"]
    message, quit_data, keep_data = await appoint(h, b, zhang_id)
    gone_from_the_group(h, b.zhang)

    calls = await h.press(b.secretary, message, quit_data)
    assert "张三 已离开本群，其在本支部的角色（书记）已取消" in said(calls, b.group.id)
    assert "张三 已不是书记" in popup_text(calls)
    assert "移交给" not in said(calls) and "您已被任命" not in said(calls)
    assert await secretaries(h, b) == [secretary_id]
    assert [c[2] for c in await changes(h, b.branch.id)] == ["added", "left_group"]

    calls = await h.press(b.secretary, message, keep_data)
    assert "张三 已不是书记" in popup_text(calls) and posted(calls) == []


async def test_hand_over_to_a_member_without_telegram_is_refused(h, b):
    """A roster member not (yet) on Telegram can be made secretary, but handing over to them would leave
    no secretary who can act in the group."""
    chat = h.private(b.secretary)
    await h.say(b.secretary, chat, "/roster")
    await h.send_document(b.secretary, chat, "roster.csv", "姓名,性别\n赵六,女\n".encode())
    zhao_id = (await rows(h, "SELECT id FROM members WHERE name = '赵六' AND user_id IS NULL"))[0]["id"]
    message, quit_data, _ = await appoint(h, b, zhao_id)
    assert await secretaries(h, b) == sorted([b.member_ids["secretary"], zhao_id])

    calls = await h.press(b.secretary, message, quit_data)
    assert "赵六 尚未在 Telegram 加入本支部，移交后将没有能在群里履职的书记，所以不能移交，没有任何改动" in popup_text(calls)
    assert posted(calls) == []
    assert await secretaries(h, b) == sorted([b.member_ids["secretary"], zhao_id])
    assert [c[2] for c in await changes(h, b.branch.id)] == ["added"]


async def test_keep_after_the_hand_over_announces_nothing(h, b):
    secretary_id, recorder_id = b.member_ids["secretary"], b.member_ids["recorder"]
    message, quit_data, keep_data = await appoint(h, b, recorder_id)
    calls = await h.press(b.secretary, message, quit_data)
    assert "王书记 已将书记移交给 李记录" in said(calls, b.group.id)

    calls = await h.press(b.secretary, message, keep_data)
    assert "书记已经移交给 李记录 了" in popup_text(calls)
    assert posted(calls) == [] and "仍是书记" not in said(calls)
    assert await secretaries(h, b) == [recorder_id]

    # even once the new secretary has appointed the former one again, the old message's buttons are spent
    await h.say(b.recorder, b.group, f"/role {secretary_id} secretary")
    for data in (keep_data, quit_data):
        calls = await h.press(b.secretary, message, data)
        assert "书记已经移交给 李记录 了" in popup_text(calls) and posted(calls) == []
    assert await secretaries(h, b) == sorted([secretary_id, recorder_id])


async def test_a_sender_who_left_the_group_can_neither_keep_nor_hand_over(h, b):
    zhang_id = b.member_ids["zhang"]
    message, quit_data, keep_data = await appoint(h, b, zhang_id)
    await h.feed(left_group(h, b.secretary, b.group))
    assert await secretaries(h, b) == [zhang_id]

    for data in (keep_data, quit_data):
        calls = await h.press(b.secretary, message, data)
        assert "您已不是本支部书记，这个选择已不适用，没有任何改动" in popup_text(calls)
        assert "书记已经移交" not in popup_text(calls) and posted(calls) == []
    assert await secretaries(h, b) == [zhang_id]
    assert [c[2] for c in await changes(h, b.branch.id)] == ["added", "left_group"]


async def test_a_sender_telegram_says_is_gone_cannot_keep(h, b):
    """The sender left without the bot seeing it and presses "keep" in private: the press finds out,
    drops the sender's role (announced) and does not claim they remain secretary."""
    zhang_id = b.member_ids["zhang"]
    chat = h.private(b.secretary)
    message, _, keep_data = await appoint(h, b, zhang_id, chat)
    gone_from_the_group(h, b.secretary)
    calls = await h.press(b.secretary, message, keep_data)
    assert "王书记 已离开本群" in said(calls, b.group.id)
    assert "您已不是本支部书记" in popup_text(calls) and "仍是书记" not in said(calls)
    assert await secretaries(h, b) == [zhang_id]


async def test_keep_and_hand_over_still_work_while_they_apply(h, b):
    secretary_id, zhang_id, lisi_id = b.member_ids["secretary"], b.member_ids["zhang"], b.member_ids["lisi"]
    message, _, keep_data = await appoint(h, b, zhang_id)
    calls = await h.press(b.secretary, message, keep_data)
    assert "张三 已增设为书记，王书记 仍是书记" in said(calls, b.group.id)
    assert await secretaries(h, b) == sorted([secretary_id, zhang_id])

    message, quit_data, _ = await appoint(h, b, lisi_id)
    calls = await h.press(b.secretary, message, quit_data)
    assert "王书记 已将书记移交给 李四" in said(calls, b.group.id)
    assert await secretaries(h, b) == sorted([zhang_id, lisi_id])
