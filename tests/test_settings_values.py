"""/settings refuses what it cannot read (QA #3) and shows values as people write them (QA #13).

Through the real Application: the secretary types /settings in the group; the answer is checked, and the
branch's stored calendar (branches.calendar, JSON) is read back to see what changed — or that nothing did.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import rows, said

REMINDERS = "meeting_reminders_minutes"
MIGRANTS = "migrant_absences_count"


async def stored(h, b) -> dict:
    found = await rows(h, "SELECT calendar FROM branches WHERE id = ?", b.branch.id)
    return json.loads(found[0]["calendar"] or "{}")


def listed(calls, name: str) -> str:
    """The listing's line of one setting, e.g. '· meeting_reminders_minutes = 1440,60　会议提醒…'."""
    return next(line for line in said(calls).splitlines() if line.startswith(f"· {name} ="))


@pytest.mark.parametrize("typed, minutes", [
    ("1440，60", [1440, 60]),  # a full-width comma
    ("1440、60", [1440, 60]),
    ("1440 60", [1440, 60]),
    ("60, 1440,60", [1440, 60]),  # spaces after commas, a repeat, any order: largest first, once
    ("１２０", [120]),  # full-width digits
])
async def test_reminder_lists_take_chinese_separators(h, b, typed, minutes):
    calls = await h.say(b.secretary, b.group, f"/settings {REMINDERS} {typed}")
    assert f"已修改 {REMINDERS}。" in said(calls)
    assert (await stored(h, b))[REMINDERS] == minutes
    assert listed(calls, REMINDERS).startswith(f"· {REMINDERS} = {','.join(map(str, minutes))}　")


@pytest.mark.parametrize("typed", ["1天", "abc", "1440,abc", "0", "10081", "-60", "1440,,x", "1.5", "5,4,3,2,1,6"])
async def test_unreadable_reminders_are_refused_and_change_nothing(h, b, typed):
    await h.say(b.secretary, b.group, f"/settings {REMINDERS} 120,30")
    before = await stored(h, b)
    calls = await h.say(b.secretary, b.group, f"/settings {REMINDERS} {typed}")
    text = said(calls)
    assert f"“{typed}”不是会议提醒可用的值" in text and "1440,60" in text and "已修改" not in text
    assert await stored(h, b) == before and before[REMINDERS] == [120, 30]


async def test_no_reminders_only_when_said_so_and_shown_as_none(h, b):
    calls = await h.say(b.secretary, b.group, f"/settings {REMINDERS} 无")
    assert "已修改" in said(calls) and (await stored(h, b))[REMINDERS] == []
    assert listed(calls, REMINDERS).startswith(f"· {REMINDERS} = 无　")
    calls = await h.say(b.secretary, b.group, f"/settings {REMINDERS} none")
    assert (await stored(h, b))[REMINDERS] == []


@pytest.mark.parametrize("typed, value", [
    ("是", True), ("开", True), ("开启", True), ("yes", True), ("ON", True), ("true", True), ("1", True), ("ｙｅｓ", True),
    ("否", False), ("关", False), ("关闭", False), ("no", False), ("off", False), ("False", False), ("0", False),
])
async def test_yes_no_settings_take_the_listed_words(h, b, typed, value):
    await h.say(b.secretary, b.group, f"/settings {MIGRANTS} {'否' if value else '是'}")
    calls = await h.say(b.secretary, b.group, f"/settings {MIGRANTS} {typed}")
    assert f"已修改 {MIGRANTS}。" in said(calls)
    assert (await stored(h, b))[MIGRANTS] is value
    assert listed(calls, MIGRANTS).startswith(f"· {MIGRANTS} = {'是' if value else '否'}　")


@pytest.mark.parametrize("typed", ["不扣分", "abc", "maybe", "是的 吧", "2"])
async def test_other_words_are_refused_not_read_as_no(h, b, typed):
    await h.say(b.secretary, b.group, f"/settings {MIGRANTS} 是")
    calls = await h.say(b.secretary, b.group, f"/settings {MIGRANTS} {typed}")
    text = said(calls)
    assert f"“{typed}”不是 {MIGRANTS} 可用的值：请写 是 或 否" in text and "已修改" not in text
    assert (await stored(h, b))[MIGRANTS] is True


async def test_the_listing_shows_yes_no_in_the_readers_language(h, b):
    calls = await h.say(b.secretary, b.group, "/settings")
    line = listed(calls, MIGRANTS)
    assert line.startswith(f"· {MIGRANTS} = 否　") and "开/关" in line  # the help names the words it takes
    assert "False" not in said(calls) and "True" not in said(calls)
    await h.say(b.secretary, b.group, "/language en")
    calls = await h.say(b.secretary, b.group, f"/settings {MIGRANTS} on")
    text = said(calls)
    assert listed(calls, MIGRANTS).startswith(f"· {MIGRANTS} = yes　") and "False" not in text and "True" not in text
    calls = await h.say(b.secretary, b.group, f"/settings {MIGRANTS} perhaps")
    assert "“perhaps” is not a valid value for migrant_absences_count: write yes or no" in said(calls)


async def test_numbers_still_validated_and_the_member_refused(h, b):
    calls = await h.say(b.secretary, b.group, "/settings notice_day ３")  # full-width digit
    assert "已修改 notice_day。" in said(calls) and (await stored(h, b))["notice_day"] == 3
    calls = await h.say(b.secretary, b.group, "/settings notice_day 3天")
    assert "“3天”不是 notice_day 可用的值。" in said(calls) and (await stored(h, b))["notice_day"] == 3
    calls = await h.say(b.zhang, b.group, f"/settings {MIGRANTS} 是")
    assert "只有以下角色可以这样做" in said(calls) and (await stored(h, b))[MIGRANTS] is False
