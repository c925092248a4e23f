"""The confirm steps of /remove, /undo and a zero-out /record keep what the press needs in the database
(pending_confirms, under the token the buttons carry): a restart loses none, a double tap acts once,
only the sender (or, for /remove, a secretary) may press, and an hour later the button says it expired."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from bot.app import build_application
from bot.harness import plain
from bot.offline import OfflineTelegram
from tests.conftest import TestHarness, assert_healthy, count, member_row, popups, rows, said, setup_branch


class SameWorldHarness(TestHarness):
    """The bot started again (new Application, Database, Services) against the same Telegram, which keeps
    its chats and messages — the buttons sent before the restart are still there to press."""

    __test__ = False

    def __init__(self, url: str | Path, clock, world: OfflineTelegram):
        super().__init__(url, clock)
        self.world = world
        self.app = build_application(world.token, self.services, request=world.request, rate_limit=False, set_menus=False)


def alerts(calls) -> str:
    return "\n".join(plain(str(c.params.get("text", ""))) for c in popups(calls))


def button(h: TestHarness, chat_id: int, label: str):
    message, data = h.find_button(chat_id, label)
    assert len(data.encode()) <= 64
    return message, data


async def recorded(h: TestHarness, b, words: str) -> int:
    calls = await h.say(b.recorder, h.private(b.recorder), words)
    assert "已为" in said(calls, b.recorder.id), said(calls)
    return (await rows(h, "SELECT MAX(id) AS id FROM ledger"))[0]["id"]


async def reversals(h: TestHarness) -> int:
    return await count(h, "ledger", "reverses_id IS NOT NULL")


async def test_each_kind_of_confirm_works_after_a_restart(database_url, clock) -> None:
    async with TestHarness(database_url, clock) as before:
        b = await setup_branch(before)
        number = await recorded(before, b, "/record 3 study absent 缺席")
        await before.say(b.recorder, before.private(b.recorder), f"/undo {number} 记错了")
        await before.say(b.recorder, before.private(b.recorder), "/record 3 law_breaking 醉驾被行政拘留")
        await before.say(b.secretary, b.group, f"/remove {b.member_ids['lisi']} 因病去世")
        assert await count(before, "pending_confirms", "used_at IS NULL") == 3
        world = before.world
        assert_healthy(before)

    async with SameWorldHarness(database_url, clock, world) as h:  # the bot restarted: same database, same chats
        calls = await h.tap(b.recorder, b.recorder.id, "确认撤销")
        assert f"已撤销 张三 的记录 #{number}" in said(calls, b.recorder.id)
        assert "撤销了您的积分记录" in said(calls, b.zhang.id)
        assert await reversals(h) == 1

        calls = await h.tap(b.recorder, b.recorder.id, "确认记录")
        assert "违反法律法规" in said(calls, b.recorder.id) and "积分为 0" in said(calls, b.zhang.id)
        assert await count(h, "ledger", "item_code = 'law_breaking'") == 1

        calls = await h.tap(b.secretary, b.group.id, "确认移出")
        assert "已将" in said(calls, b.group.id) and "李四" in said(calls, b.group.id)
        assert (await member_row(h, b.lisi.id))["status"] == "left"
        assert await count(h, "pending_confirms", "used_at IS NULL") == 0
        assert_healthy(h)


async def test_cancel_after_a_restart_and_then_the_confirm_is_refused(database_url, clock) -> None:
    async with TestHarness(database_url, clock) as before:
        b = await setup_branch(before)
        number = await recorded(before, b, "/record 3 study absent 缺席")
        await before.say(b.recorder, before.private(b.recorder), f"/undo {number} 记错了")
        message, ok = button(before, b.recorder.id, "确认撤销")
        world = before.world
    async with SameWorldHarness(database_url, clock, world) as h:
        calls = await h.tap(b.recorder, b.recorder.id, "不撤销")
        assert "已取消，记录未撤销" in said(calls, b.recorder.id)
        calls = await h.press(b.recorder, message, ok)  # the Confirm of the same message, pressed late
        assert "已经按过了" in alerts(calls)
        assert await reversals(h) == 0
        assert_healthy(h)


async def test_a_double_tap_acts_once(h, b) -> None:
    number = await recorded(h, b, "/record 3 study absent 缺席")
    await h.say(b.recorder, h.private(b.recorder), f"/undo {number} 记错了")
    message, data = button(h, b.recorder.id, "确认撤销")
    first, second = h.world.press(b.recorder, message, data), h.world.press(b.recorder, message, data)
    before = len(h.world.calls)
    await asyncio.gather(h.feed(first), h.feed(second))  # two presses at once
    calls = h.world.calls[before:]
    assert await reversals(h) == 1
    answers = {c.params["callback_query_id"]: plain(str(c.params.get("text") or "")) for c in popups(calls)}
    assert len(answers) == 2 and sum("已经按过了，同一操作不会做两次" in t for t in answers.values()) == 1, answers
    assert said(calls, b.zhang.id).count("撤销了您的积分记录") == 1  # told once

    # a zero-out: its second tap neither writes nor tells anyone again
    await h.say(b.recorder, h.private(b.recorder), "/record 3 law_breaking 醉驾被行政拘留")
    message, data = button(h, b.recorder.id, "确认记录")
    calls = await h.press(b.recorder, message, data)
    assert "积分为 0" in said(calls, b.zhang.id)
    calls = await h.press(b.recorder, message, data)
    assert "已经按过了" in alerts(calls) and said(calls) == ""
    assert await count(h, "ledger", "item_code = 'law_breaking'") == 1


async def test_another_users_press_is_refused_and_the_senders_still_works(h, b) -> None:
    number = await recorded(h, b, "/record 3 study absent 缺席")
    await h.say(b.recorder, h.private(b.recorder), f"/undo {number} 记错了")
    message, data = button(h, b.recorder.id, "确认撤销")
    calls = await h.press(b.secretary, message, data)  # a crafted press: the secretary may undo, but did not send it
    assert "只有发送这条命令的人可以确认" in alerts(calls)
    calls = await h.press(b.secretary, message, data.replace(":ok:", ":no:"))  # nor cancel it
    assert "只有发送这条命令的人可以确认" in alerts(calls)
    assert await reversals(h) == 0 and await count(h, "pending_confirms", "used_at IS NULL") == 1
    # the token is no key to another kind's action, nor to another chat's
    calls = await h.press(b.recorder, message, "rz:ok:" + data.removeprefix("rv:ok:"))
    assert "这个确认按钮已失效，请重新发送 /record" in alerts(calls)
    group_message = h.world.last_message(b.group.id)
    calls = await h.press(b.recorder, group_message, data)
    assert "已失效" in alerts(calls)
    assert await reversals(h) == 0

    # /remove: a member may not confirm the secretary's removal; the secretary then may
    await h.say(b.secretary, b.group, f"/remove {b.member_ids['lisi']} 因病去世")
    message, data = button(h, b.group.id, "确认移出")
    calls = await h.press(b.zhang, message, data)
    assert "只有以下角色可以这样做" in alerts(calls)
    assert (await member_row(h, b.lisi.id))["status"] == "approved"
    calls = await h.tap(b.recorder, b.recorder.id, "确认撤销")
    assert await reversals(h) == 1
    calls = await h.press(b.secretary, message, data)
    assert (await member_row(h, b.lisi.id))["status"] == "left"


async def test_an_expired_confirm_says_so_and_writes_nothing(h, b, clock) -> None:
    number = await recorded(h, b, "/record 3 study absent 缺席")
    await h.say(b.recorder, h.private(b.recorder), f"/undo {number} 记错了")
    message, data = button(h, b.recorder.id, "确认撤销")
    start = clock.now()
    clock.set(start + timedelta(minutes=59))
    calls = await h.press(b.secretary, message, data)  # still open: the sender check applies
    assert "只有发送这条命令的人可以确认" in alerts(calls)
    clock.set(start + timedelta(hours=1))
    calls = await h.press(b.recorder, message, data)
    assert "这个确认按钮已过期（发出后 1 小时内未确认），没有做任何更改。如仍需要，请重新发送 /undo。" in alerts(calls)
    calls = await h.press(b.recorder, message, data.replace(":ok:", ":no:"))
    assert "已过期" in alerts(calls)
    assert await reversals(h) == 0

    english = h.user(b.recorder.id, b.recorder.full_name, username=b.recorder.username, language="en")
    calls = await h.press(english, message, data)
    assert "This confirm button has expired (it was not pressed within an hour of the command): nothing was changed." in alerts(calls)

    # sent again, it works; a week later the old step is swept when a new one is kept
    h.user(b.recorder.id, b.recorder.full_name, username=b.recorder.username)  # back to Chinese
    await h.say(b.recorder, h.private(b.recorder), f"/undo {number} 记错了")
    await h.tap(b.recorder, b.recorder.id, "确认撤销")
    assert await reversals(h) == 1
    clock.set(start + timedelta(days=7, hours=3))
    await h.say(b.secretary, b.group, f"/remove {b.member_ids['lisi']} 因病去世")
    assert await count(h, "pending_confirms") == 1
    calls = await h.press(b.recorder, message, data)
    assert "这个确认按钮已失效，请重新发送 /undo。" in alerts(calls)


async def test_a_refused_confirm_is_given_back(h, b) -> None:
    """The service refuses the press (the sender lost the role meanwhile): nothing is written, and the
    button works again once the reason is gone, until it expires — as a refusal left it before."""
    number = await recorded(h, b, "/record 3 study absent 缺席")
    await h.say(b.recorder, h.private(b.recorder), f"/undo {number} 记错了")
    async with h.db.transaction() as conn:
        await conn.execute("DELETE FROM roles WHERE member_id = ? AND role = 'recorder'", (b.member_ids["recorder"],))
    calls = await h.tap(b.recorder, b.recorder.id, "确认撤销")
    assert "只有以下角色可以这样做" in alerts(calls)
    assert await reversals(h) == 0 and await count(h, "pending_confirms", "used_at IS NULL") == 1
    await h.say(b.secretary, b.group, f"/role @{b.recorder.username} recorder")
    calls = await h.tap(b.recorder, b.recorder.id, "确认撤销")
    assert f"已撤销 张三 的记录 #{number}" in said(calls, b.recorder.id)
    assert await reversals(h) == 1 and await count(h, "pending_confirms", "used_at IS NULL") == 0
