"""Small things a reader trips over (third round): each through the real Application."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.services.branches import rulebook_of
from schedules import engine
from tests.conftest import TestHarness, popups, rows, said, setup_branch


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- 尖草坪's grade preview: a band label that holds its threshold ------------------------------------------


async def test_a_band_label_in_two_parts_reads_cleanly_before_its_count(h: TestHarness, clock) -> None:
    """尖草坪's lowest band is labelled "60分以下：不合格党员": before a count it read "60分以下：不合格党员：2 人"."""
    clock.set(utc(2026, 1, 5, 2, 0))
    b = await setup_branch(h, preset="jiancaoping", title="尖草坪区某社区党支部")
    clock.set(utc(2027, 1, 2, 2, 0))
    shown = said(await h.say(b.secretary, h.private(b.secretary), "/grade 2026"), b.secretary.id)
    assert "90分及以上：" in shown and "80至89分：" in shown and "60至79分：" in shown
    assert "60分以下（不合格党员）：0 人" in shown and "不合格党员：" not in shown

    english = h.user(b.secretary.id, b.secretary.full_name, username=b.secretary.username, language="en")
    shown = said(await h.say(english, h.private(english), "/grade 2026"), english.id)
    assert "Below 60 (unqualified): 0" in shown and "unqualified: 0" not in shown


# --- /additem's usage names a category the branch's rulebook has --------------------------------------------


@pytest.mark.parametrize("preset", ["xishui", "zhangdian", "jiancaoping", "sanmenxia"])
async def test_the_additem_example_names_a_category_of_the_branch_and_works_as_shown(h: TestHarness, preset: str) -> None:
    """The example named `bonus`, which 尖草坪, 张店 and 三门峡 do not have: copied, it was refused."""
    b = await setup_branch(h, preset=preset)
    shown = said(await h.say(b.secretary, b.group, "/additem"), b.group.id)
    example = next(line for line in shown.splitlines() if line.startswith("例："))
    category = example.split()[1]
    codes = [c.code for c in rulebook_of(await h.services.branches.by_id(b.branch.id)).categories]
    assert category in codes and f"类别代码：{', '.join(codes)}" in shown
    calls = await h.say(b.secretary, b.group, example.removeprefix("例："))  # sent as shown: accepted
    assert "种植连翘50亩以上" in said(calls, b.group.id)
    assert "own_forsythia" in [i.code for i in rulebook_of(await h.services.branches.by_id(b.branch.id)).category(category).items]


# --- a flow's own start button pressed in the middle of it --------------------------------------------------


async def test_the_start_button_of_the_flow_in_progress_says_the_earlier_input_was_dropped(h: TestHarness, b, clock) -> None:
    """/report's start button (the quarter's ask) pressed after the text was typed: the flow starts over, as
    /report sent again does, and now says so (it silently dropped the text before)."""
    await h.say(b.secretary, b.group, f"/state @{b.zhang.username} migrant")
    clock.set(utc(2026, 4, 1, 1, 0))  # 09:00 in Shanghai on the 1st: Q2's ask, with its button
    await engine.tick(h.app, clock.now())
    chat = h.private(b.zhang)
    calls = await h.tap(b.zhang, chat.id, "写季度汇报")  # at the first step: nothing to drop, nothing said
    assert "思想和工作汇报" in said(calls, chat.id) and "已重新开始" not in said(calls, chat.id)
    calls = await h.tap(b.zhang, chat.id, "写季度汇报")
    assert "已重新开始" not in said(calls, chat.id)
    await h.say(b.zhang, chat, "本季度在广东务工，坚持每周学习党章。")
    calls = await h.tap(b.zhang, chat.id, "写季度汇报")
    shown = said(calls, chat.id)
    assert "请用一条消息写下本季度的思想和工作情况" in shown
    assert "已重新开始填写流动党员思想和工作汇报（/report），之前填写的内容已放弃。" in shown
    assert len(popups(calls)) == 1  # the press answered once
    # the flow is at its first step again: the next text is the report's text
    await h.say(b.zhang, chat, "重写：本季度参加了当地流动党员活动。")
    await h.tap(b.zhang, chat.id, "无照片")
    await h.tap(b.zhang, chat.id, "提交汇报")
    assert [r["body"] for r in await rows(h, "SELECT body FROM migrant_reports")] == ["重写：本季度参加了当地流动党员活动。"]


# --- every command of the bot has an answer of its own in private ------------------------------------------


async def test_every_command_of_the_bot_is_answered_in_private_by_its_own_handlers(h: TestHarness, b) -> None:
    """What made error.command_not_now dead (and let it go): a command of the bot sent in private never
    reaches the catch-all for unknown commands — a group's command says to use it in the group, one sent
    in the middle of a flow is the flow's (mid_flow_guard). A command added later with group handlers
    only would be answered "there is no such command" in private: this test names it."""
    from handlers.common import known_commands

    stranger = h.user(5555, "路人")
    names = sorted(known_commands(h.app) - {"cancel"})  # /cancel with nothing going on: its own reply (test_small_fixes)
    assert len(names) > 40
    mistaken = []
    for person in (b.zhang, stranger):
        for name in names:
            calls = await h.say(person, h.private(person), f"/{name}")
            answered = [c for c in calls if c.method.startswith("send") and c.chat_id == person.id]
            if not answered or f"没有 /{name} 这个命令" in said(calls):
                mistaken.append((person.full_name, name))
            await h.say(person, h.private(person), "/cancel")  # out of any flow it started
    assert mistaken == []
