"""Meetings: a popup under the group's announcement is the presser's alone, so it is in their language;
cancelling a meeting drops its buttons from the secretary's /meetings message and tells privately, once,
the members who had answered (attending, leave asked or granted). Through the real Application."""

from __future__ import annotations

from bot.harness import plain
from tests.conftest import TestHarness, popups, rows, said
from tests.test_meetings import alerts, schedule, sent_since


def popup_texts(calls) -> list[str]:
    return [plain(str(c.params.get("text", ""))) for c in popups(calls)]


async def test_popups_under_a_zh_groups_announcement_follow_the_pressers_language(h: TestHarness, b) -> None:
    eve = h.user(1009, "Eve English", username="eve", language="en")
    await h.say(eve, b.group, "/join")
    await h.tap(b.secretary, b.group.id, "同意")
    await h.say(eve, h.private(eve), "/start")
    meeting_id = await schedule(h, b)
    announcement = h.world.last_message(b.group.id)

    calls = await h.press(eve, announcement, f"mt:lv:{meeting_id}")
    assert popup_texts(calls) == ["Please give the reason in your private chat with me."]
    assert "Please reply with the reason" in said(calls, eve.id)
    await h.say(eve, h.private(eve), "Family emergency")
    calls = await h.press(eve, announcement, f"mt:go:{meeting_id}")
    assert popup_texts(calls) == ["Noted: you will attend."]
    calls = await h.press(b.zhang, announcement, f"mt:go:{meeting_id}")  # a zh member: zh, as before
    assert popup_texts(calls) == ["已登记：您将参加会议。"]
    # what the whole group reads stays in the branch's language
    assert "已报名参加 2 人" in plain(h.world.message_by_id(b.group.id, announcement.message_id).text or "")


async def test_cancelling_drops_the_buttons_and_tells_those_who_answered_once(h: TestHarness, b) -> None:
    meeting_id = await schedule(h, b)
    other_id = await schedule(h, b, when="2026-03-26 14:30", topic="学习党史")
    announcement = h.world.message_by_id(b.group.id, (await rows(
        h, "SELECT announce_message_id FROM meetings WHERE id = ?", meeting_id))[0]["announce_message_id"])
    await h.press(b.zhang, announcement, f"mt:go:{meeting_id}")
    await h.press(b.lisi, announcement, f"mt:lv:{meeting_id}")
    await h.say(b.lisi, h.private(b.lisi), "出差")
    await h.press(b.secretary, announcement, f"mt:go:{meeting_id}")  # the secretary answered too

    chat = h.private(b.secretary)
    await h.say(b.secretary, chat, "/meetings")
    listing, data = h.find_button(chat.id, f"取消 #{meeting_id}")
    assert data == f"mt:cx:{meeting_id}"
    calls = await h.press(b.recorder, listing, data)  # not an organiser: refused, nothing changes
    assert alerts(calls) and not [c for c in calls if c.method == "editMessageReplyMarkup"]

    before = len(h.world.calls)
    calls = await h.press(b.secretary, listing, data)
    assert popup_texts(calls) == [f"已取消会议 #{meeting_id}。"]
    assert (await rows(h, "SELECT status FROM meetings WHERE id = ?", meeting_id))[0]["status"] == "cancelled"
    buttons = [d for _, d in h.world.buttons(h.world.message_by_id(chat.id, listing.message_id))]
    assert f"mt:cx:{meeting_id}" not in buttons and f"mt:cx:{other_id}" in buttons  # the other meeting's stays
    told = {c.chat_id: plain(str(c.params["text"])) for c in sent_since(h, before) if "以下会议已取消" in str(c.params["text"])}
    assert set(told) == {b.zhang.id, b.lisi.id}  # the recorder never answered; the secretary cancelled it
    assert "学习党章" in told[b.zhang.id] and f"#{meeting_id}" in told[b.lisi.id]
    assert "已取消" in said(calls, b.group.id)

    before = len(h.world.calls)  # the same press again (a double tap, a redelivered update): refused, nobody told again
    calls = await h.press(b.secretary, listing, data)
    assert alerts(calls) == ["这次会议已经取消。"]
    assert not sent_since(h, before)
