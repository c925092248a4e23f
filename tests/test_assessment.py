"""The monthly assessment (月度考评): the recorder's screens, bulk "good", "same as last month", re-assessing,
refusals of bad or crafted presses, the reminder before the notice and the defaults at the notice.

End to end through the offline Telegram (buttons pressed as a person would) and checked in the database;
the value rules are also checked for all inputs with hypothesis.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.clock import FixedClock
from bot.domain.assessment import (
    MonthError,
    assessed_items,
    default_value,
    default_month,
    good_value,
    level_of,
    parse_month,
    Claim,
    posts_held_on,
    valid_value,
    value_range,
    whole_values,
)
from bot.domain.calendar import CalendarSettings
from bot.domain.records import Role
from bot.domain.rulebook import AssessmentDefault
from bot.errors import DomainError
from bot.presets import preset
from bot.services import Actor, Services
from schedules import engine
from storage import members as member_repo
from storage.db import Database
from tests.conftest import MOMENT, count, popups, rows, said, setup_branch

ZHANGDIAN = preset("zhangdian")
XISHUI = preset("xishui")


# --- helpers -----------------------------------------------------------------------------------------


def exact_button(h, chat_id: int, label: str):
    """The newest bot message in the chat with a button whose text is exactly ``label``."""
    for message in reversed(h.world.messages(chat_id)):
        for text, data in h.world.buttons(message):
            if text == label:
                return message, data
    raise LookupError(f"no button '{label}' in chat {chat_id}")


async def press_exact(h, user, label: str):
    message, data = exact_button(h, user.id, label)
    return await h.press(user, message, data)


async def press_data(h, user, data: str):
    """Press crafted callback data on the newest bot message in the user's private chat."""
    return await h.press(user, h.world.last_message(user.id), data)


def alerts(calls) -> str:
    return "\n".join(str(c.params.get("text", "")) for c in popups(calls))


async def ledger(h, member_id: int, item: str | None = None) -> list[dict]:
    sql = "SELECT * FROM ledger WHERE member_id = ?" + (" AND item_code = ?" if item else "") + " ORDER BY id"
    return await rows(h, sql, member_id, *((item,) if item else ()))


def effective_sum(found: list[dict]) -> Decimal:
    reversed_ids = {r["reverses_id"] for r in found if r["reverses_id"] is not None}
    return sum((Decimal(r["value"]) for r in found if r["reverses_id"] is None and r["id"] not in reversed_ids), Decimal(0))


async def assess_member(h, b, assessor, name: str, picks: list[tuple[str, str | None]]) -> None:
    """Open the member's screen and give each item (level label, value label or None for single-value levels)."""
    await h.say(assessor, h.private(assessor), "/assess")
    await h.tap(assessor, assessor.id, name)
    await h.tap(assessor, assessor.id, "敬业爱岗")
    for level, value in picks:
        await h.tap(assessor, assessor.id, level)
        if value is not None:
            await press_exact(h, assessor, value)


# --- the screens (张店) ---------------------------------------------------------------------------


async def test_recorder_assesses_a_member_item_by_item_with_levels(h):
    b = await setup_branch(h, preset="zhangdian")
    zhang = b.member_ids["zhang"]
    calls = await h.say(b.recorder, h.private(b.recorder), "/assess")
    board = said(calls, b.recorder.id)
    assert "2026年3月 月度考评" in board and "已考评 0/4 人" in board
    assert "尚未考评：王书记、李记录、张三、李四" in board
    labels = [text for text, _ in h.world.buttons(h.world.last_message(b.recorder.id))]
    assert "🔒 李记录" in labels and "⬜ 张三" in labels  # the recorder's own assessment is the secretary's

    await h.tap(b.recorder, b.recorder.id, "张三")
    sheet = h.world.last_message(b.recorder.id)
    assert "张三" in sheet.text and "未考评" in sheet.text
    await h.tap(b.recorder, b.recorder.id, "敬业爱岗")
    levels = [text for text, _ in h.world.buttons(h.world.last_message(b.recorder.id))]
    assert levels[:4] == ["优秀 10", "良好 5–9", "一般 1–4", "较差 0"]
    await h.tap(b.recorder, b.recorder.id, "良好")
    assert [t for t, _ in h.world.buttons(h.world.last_message(b.recorder.id))][:5] == ["5", "6", "7", "8", "9"]
    calls = await press_exact(h, b.recorder, "7")
    assert "已记录：张三 · 敬业爱岗、完成本职工作 7" in alerts(calls)
    # the screen moved on to the next item of the same member
    assert "文明创建、志愿服务" in h.world.last_message(b.recorder.id).text.split("\n")[-1]
    await h.tap(b.recorder, b.recorder.id, "优秀")  # a single-value level writes at once
    await h.tap(b.recorder, b.recorder.id, "一般")
    await press_exact(h, b.recorder, "3")
    await h.tap(b.recorder, b.recorder.id, "良好")
    await press_exact(h, b.recorder, "15")
    final = h.world.last_message(b.recorder.id).text
    assert "7（良好）" in final and "10（优秀）" in final and "3（一般）" in final and "15（良好）" in final

    found = await ledger(h, zhang)
    assert [(r["item_code"], r["value"], r["source"], r["reference"], r["occurred_on"]) for r in found] == [
        ("job_performance", "7", "recorder", "assess:2026-03:job_performance:1", "2026-03-31"),
        ("volunteering", "10", "recorder", "assess:2026-03:volunteering:1", "2026-03-31"),
        ("unity_law", "3", "recorder", "assess:2026-03:unity_law:1", "2026-03-31"),
        ("carry_out_tasks", "15", "recorder", "assess:2026-03:carry_out_tasks:1", "2026-03-31"),
    ]
    assert await count(h, "assessments", "member_id = ? AND is_default = 0", zhang) == 4
    # the month's score: meetings 30 + dues 20 + 7 + 10 + 3 + 15
    member = await h.services.roster.member_of_id(zhang)
    standing = await h.services.points.standing(b.branch, member)
    assert standing.month.total == Decimal(85)
    await h.say(b.recorder, h.private(b.recorder), "/assess")
    assert "已考评 1/4 人" in h.world.last_message(b.recorder.id).text


async def test_a_double_tap_writes_once_and_reassessing_reverses(h):
    b = await setup_branch(h, preset="zhangdian")
    zhang = b.member_ids["zhang"]
    await assess_member(h, b, b.recorder, "张三", [("良好", "7")])
    stale_message, stale_data = exact_button(h, b.recorder.id, "优秀 10")  # the next item's screen
    first = await ledger(h, zhang)
    # pressing the old "7" again (same revision): nothing more is written
    calls = await press_data(h, b.recorder, f"as:v:{b.branch.id}:202603:{zhang}:0:7:0")
    assert "已经记录过了" in alerts(calls)
    assert await ledger(h, zhang) == first

    # re-assess job_performance to 9: the old row is reversed, a second revision appended
    await h.tap(b.recorder, b.recorder.id, "返回")  # from the next item's screen to 张三's screen
    await h.tap(b.recorder, b.recorder.id, "敬业爱岗")
    await h.tap(b.recorder, b.recorder.id, "良好")
    await press_exact(h, b.recorder, "9")
    rows_ = await ledger(h, zhang, "job_performance")
    assert [(r["value"], r["source"], r["reference"]) for r in rows_] == [
        ("7", "recorder", "assess:2026-03:job_performance:1"),
        ("-7", "correction", f"rev:{rows_[0]['id']}"),
        ("9", "recorder", "assess:2026-03:job_performance:2"),
    ]
    assert rows_[1]["reverses_id"] == rows_[0]["id"]
    assert effective_sum(rows_) == 9
    # a press from a screen drawn before the change (revision 1) is refused: nothing written
    calls = await press_data(h, b.recorder, f"as:v:{b.branch.id}:202603:{zhang}:0:5:1")
    assert "刚刚被修改过" in alerts(calls)
    assert len(await ledger(h, zhang, "job_performance")) == 3
    # the same value again on a fresh screen: no change, nothing written
    calls = await press_data(h, b.recorder, f"as:v:{b.branch.id}:202603:{zhang}:0:9:2")
    assert "没有变化" in alerts(calls)
    assert len(await ledger(h, zhang, "job_performance")) == 3
    assert stale_message is not None and stale_data.startswith("as:v:")


@pytest.mark.parametrize(
    "value",
    ["NaN", "sNaN", "Infinity", "-Infinity", "11", "-1", "1e999", "7.333", "abc", "0x7", "1_0"],
)
async def test_bad_or_crafted_values_are_refused_and_nothing_is_written(h, value):
    b = await setup_branch(h, preset="zhangdian")
    zhang = b.member_ids["zhang"]
    await h.say(b.recorder, h.private(b.recorder), "/assess")
    before = await count(h, "ledger")
    calls = await press_data(h, b.recorder, f"as:v:{b.branch.id}:202603:{zhang}:0:{value}:0")
    assert popups(calls) and popups(calls)[0].params.get("show_alert")
    assert "不在允许的范围内（0–10）" in alerts(calls)
    assert await count(h, "ledger") == before and await count(h, "assessments") == 0


async def test_crafted_presses_are_refused(h):
    b = await setup_branch(h, preset="zhangdian")
    other = await setup_branch(h, preset="zhangdian", chat_id=-1002000000002, title="另一个支部", base=2000)
    zhang, bid = b.member_ids["zhang"], b.branch.id
    await h.say(b.recorder, h.private(b.recorder), "/assess")
    cases = {
        f"as:v:{bid}:202603:{zhang}:9:5:0": "没有这个考评项目",  # item index out of range
        f"as:v:{bid}:202612:{zhang}:0:5:0": "将来的月份",  # a future month
        f"as:v:{bid}:202413:{zhang}:0:5:0": "看不懂这个月份",
        f"as:v:{bid}:202401:{zhang}:0:5:0": "最近12个月",
        f"as:v:{bid}:202603:{other.member_ids['zhang']}:0:5:0": "不在本月的考评名单",  # a member of another branch
        f"as:v:{other.branch.id}:202603:{other.member_ids['zhang']}:0:5:0": "您不是本支部已登记的党员",  # not theirs
        f"as:v:{bid}:202603:{b.member_ids['recorder']}:0:5:0": "不能考评自己",
        f"as:v:{bid}:202603:999999:0:5:0": "不在本月的考评名单",
        f"as:l:{bid}:202603:{zhang}:0:7": "没有这个考评项目",  # no such level
        "as:v:1:202603": "失效",  # malformed: the catch-all answers
    }
    for data, expected in cases.items():
        calls = await press_data(h, b.recorder, data)
        assert expected in alerts(calls), (data, alerts(calls))
    # the recorder cannot assess themself, whoever they ask
    calls = await press_data(h, b.secretary, f"as:v:{bid}:202603:{b.member_ids['secretary']}:0:5:0")
    assert "不能考评自己" in alerts(calls)
    # a member without a role: every press is refused, even a well-formed one
    await h.say(b.zhang, h.private(b.zhang), "/start")
    for data in (f"as:v:{bid}:202603:{b.member_ids['lisi']}:0:5:0", f"as:o:{bid}:202603:0", f"as:gy:{bid}:202603"):
        calls = await press_data(h, b.zhang, data)
        assert "只有以下角色可以这样做" in alerts(calls)
    calls = await h.say(b.zhang, h.private(b.zhang), "/assess")
    assert "只有以下角色可以这样做" in said(calls)
    assert await count(h, "ledger") == 0 and await count(h, "assessments") == 0


async def test_the_secretary_assesses_the_recorder(h):
    b = await setup_branch(h, preset="zhangdian")
    await h.say(b.secretary, h.private(b.secretary), "/assess")
    labels = [text for text, _ in h.world.buttons(h.world.last_message(b.secretary.id))]
    assert "⬜ 李记录" in labels and "🔒 王书记" in labels
    await h.tap(b.secretary, b.secretary.id, "李记录")
    await h.tap(b.secretary, b.secretary.id, "敬业爱岗")
    await h.tap(b.secretary, b.secretary.id, "优秀")
    found = await ledger(h, b.member_ids["recorder"])
    assert [(r["item_code"], r["value"]) for r in found] == [("job_performance", "10")]


async def test_everyone_good_then_exceptions(h):
    b = await setup_branch(h, preset="zhangdian")
    await assess_member(h, b, b.recorder, "李四", [("优秀", None)])  # one item of 李四 already given
    await h.say(b.recorder, h.private(b.recorder), "/assess")
    await h.tap(b.recorder, b.recorder.id, "其余全部记为")
    assert "确定把所有尚未考评的项目" in h.world.last_message(b.recorder.id).text
    confirm, data = exact_button(h, b.recorder.id, "确定")
    calls = await h.press(b.recorder, confirm, data)
    assert "已记为“良好”：11 项" in alerts(calls)  # 王书记 4 + 张三 4 + 李四 3
    assert "李记录" in alerts(calls)  # the recorder's own: left for the secretary
    by_member = {}
    for r in await rows(h, "SELECT member_id, item_code, value FROM ledger WHERE reverses_id IS NULL"):
        by_member.setdefault(r["member_id"], {})[r["item_code"]] = r["value"]
    assert by_member[b.member_ids["zhang"]] == {"job_performance": "7", "volunteering": "7", "unity_law": "7",
                                                "carry_out_tasks": "14.5"}
    assert by_member[b.member_ids["lisi"]]["job_performance"] == "10"  # kept, not overwritten
    assert b.member_ids["recorder"] not in by_member
    # a second confirmation finds nothing left to write
    calls = await h.press(b.recorder, confirm, data)
    assert "已记为“良好”：0 项" in alerts(calls)
    assert await count(h, "ledger") == 11 + 1
    # then an exception: 张三 was only fair at his job
    await h.tap(b.recorder, b.recorder.id, "张三")
    await h.tap(b.recorder, b.recorder.id, "敬业爱岗")
    await h.tap(b.recorder, b.recorder.id, "一般")
    await press_exact(h, b.recorder, "2")
    assert effective_sum(await ledger(h, b.member_ids["zhang"], "job_performance")) == 2


async def test_same_as_last_month(h, clock):
    b = await setup_branch(h, preset="zhangdian")
    async with h.db.transaction() as conn:  # 张三 belonged to the branch in February too
        await conn.execute("UPDATE members SET joined_on = '2026-01-10' WHERE id = ?", (b.member_ids["zhang"],))
    await h.say(b.recorder, h.private(b.recorder), "/assess 2026-02")
    assert "2026年2月" in h.world.last_message(b.recorder.id).text
    await h.tap(b.recorder, b.recorder.id, "张三")
    await h.tap(b.recorder, b.recorder.id, "敬业爱岗")
    await h.tap(b.recorder, b.recorder.id, "良好")
    await press_exact(h, b.recorder, "8")
    await h.tap(b.recorder, b.recorder.id, "优秀")
    feb = await ledger(h, b.member_ids["zhang"])
    assert {r["occurred_on"] for r in feb} == {"2026-02-28"}

    await h.say(b.recorder, h.private(b.recorder), "/assess 3月")
    await h.tap(b.recorder, b.recorder.id, "张三")
    assert "上月：敬业爱岗、完成本职工作 8、文明创建、志愿服务 10" in h.world.last_message(b.recorder.id).text
    calls = await h.tap(b.recorder, b.recorder.id, "同上月")
    assert "已按上月填入 2 项" in alerts(calls) and "上月没有可用分值的项目" in alerts(calls)
    march = [r for r in await ledger(h, b.member_ids["zhang"]) if r["occurred_on"] == "2026-03-31"]
    assert [(r["item_code"], r["value"], r["reference"]) for r in march] == [
        ("job_performance", "8", "assess:2026-03:job_performance:1"),
        ("volunteering", "10", "assess:2026-03:volunteering:1"),
    ]
    calls = await press_data(h, b.recorder, f"as:s:{b.branch.id}:202603:{b.member_ids['zhang']}")  # again
    assert "已按上月填入 0 项" in alerts(calls)


async def test_month_arguments(h):
    b = await setup_branch(h, preset="zhangdian")
    chat = h.private(b.recorder)
    assert "还不能考评将来的月份" in said(await h.say(b.recorder, chat, "/assess 2026-04"))
    assert "看不懂这个月份" in said(await h.say(b.recorder, chat, "/assess 十三月"))
    assert "只能考评最近12个月" in said(await h.say(b.recorder, chat, "/assess 2025-02"))
    assert "2025年12月" in said(await h.say(b.recorder, chat, "/assess 12"))  # December: last year's
    assert "私聊" in said(await h.say(b.recorder, b.group, "/assess"))


async def test_a_scheme_without_assessed_items_says_so(h):
    b = await setup_branch(h, preset="sanmenxia")
    assert "没有月度考评项目" in said(await h.say(b.recorder, h.private(b.recorder), "/assess"))


# --- 浠水: post duties per claimed post -----------------------------------------------------------


async def test_post_duty_scales_with_the_posts_held(h):
    b = await setup_branch(h)  # 浠水
    zhang = b.member_ids["zhang"]
    await h.say(b.recorder, h.private(b.recorder), "/assess")
    await h.tap(b.recorder, b.recorder.id, "张三")
    assert "尚未认领岗位（暂按 2 个岗位计分）" in h.world.last_message(b.recorder.id).text
    await h.tap(b.recorder, b.recorder.id, "爱岗敬业")
    values = [t for t, _ in h.world.buttons(h.world.last_message(b.recorder.id))]
    assert values[:21] == [str(v) for v in range(21)]  # 0-10 per post, two posts (never claimed: the seed's 2)
    await press_exact(h, b.recorder, "17")
    assert effective_sum(await ledger(h, zhang, "post_duty")) == 17

    # the secretary sets 张三 to one post: the range is now 0-10 and 15 is refused
    await h.say(b.secretary, b.group, "/posts set @zhang_1000 3")
    calls = await press_data(h, b.recorder, f"as:v:{b.branch.id}:202603:{zhang}:0:15:1")
    assert "0–10" in alerts(calls)
    await h.say(b.recorder, h.private(b.recorder), "/assess")
    await h.tap(b.recorder, b.recorder.id, "张三")
    assert "认领岗位：治安巡逻志愿服务岗（每月至少2次）（按 1 个岗位计分）" in h.world.last_message(b.recorder.id).text


async def test_a_recorded_post_duty_counts_and_is_replaced_by_the_assessment(h):
    b = await setup_branch(h)
    await h.say(b.recorder, h.private(b.recorder), "/record @zhang_1000 post_duty 8 治安巡逻岗本月巡逻3次")
    await h.say(b.recorder, h.private(b.recorder), "/assess")
    assert "张三" not in h.world.last_message(b.recorder.id).text.split("尚未考评：")[1]
    await h.tap(b.recorder, b.recorder.id, "张三")
    await h.tap(b.recorder, b.recorder.id, "爱岗敬业")
    await press_exact(h, b.recorder, "12")
    rows_ = await ledger(h, b.member_ids["zhang"], "post_duty")
    assert [(r["value"], r["source"]) for r in rows_] == [("8", "recorder"), ("-8", "correction"), ("12", "recorder")]
    assert effective_sum(rows_) == 12


async def test_a_past_month_is_assessed_with_the_posts_held_then(h, clock):
    """Finding 4: 张三 held one post in March and two from April; March's range stays 0-10."""
    b = await setup_branch(h)
    zhang = b.member_ids["zhang"]
    await h.say(b.secretary, b.group, "/posts set @zhang_1000 3")
    clock.set(datetime(2026, 4, 2, 2, 0, tzinfo=UTC))
    await h.say(b.secretary, b.group, "/posts set @zhang_1000 3 5")
    await h.say(b.recorder, h.private(b.recorder), "/assess 2026-03")
    await h.tap(b.recorder, b.recorder.id, "张三")
    assert "认领岗位：治安巡逻志愿服务岗（每月至少2次）（按 1 个岗位计分）" in h.world.last_message(b.recorder.id).text
    await h.tap(b.recorder, b.recorder.id, "爱岗敬业")
    values = [t for t, _ in h.world.buttons(h.world.last_message(b.recorder.id))]
    assert values[:12] == [str(v) for v in range(11)] + ["返回"]
    calls = await press_data(h, b.recorder, f"as:v:{b.branch.id}:202603:{zhang}:0:15:0")
    assert "0–10" in alerts(calls) and not await ledger(h, zhang, "post_duty")
    await press_exact(h, b.recorder, "9")
    assert [(r["value"], r["occurred_on"]) for r in await ledger(h, zhang, "post_duty")] == [("9", "2026-03-31")]
    await h.say(b.recorder, h.private(b.recorder), "/assess 2026-04")
    await h.tap(b.recorder, b.recorder.id, "张三")
    assert "（按 2 个岗位计分）" in h.world.last_message(b.recorder.id).text


async def test_an_assessment_withdrawn_on_objection_is_unassessed_again(h, clock):
    """Finding 7: the objection's reversal takes the value away; the screen says so and the same value
    can be given again (a new revision)."""
    b = await setup_branch(h, preset="zhangdian")
    zhang = b.member_ids["zhang"]
    await assess_member(h, b, b.recorder, "张三", [("良好", "7")])
    given_row = (await ledger(h, zhang, "job_performance"))[0]
    clock.set(datetime(2026, 4, 1, 1, 5, tzinfo=UTC))
    await engine.tick(h.app, clock.now())  # March's notice (and defaults for the other items)
    await h.say(b.lisi, h.private(b.lisi), f"/object {given_row['id']} 张三本月多次缺岗")
    await h.tap(b.secretary, b.secretary.id, "撤销该分")
    assert (await rows(h, "SELECT * FROM ledger WHERE reverses_id = ?", given_row["id"]))  # withdrawn

    await h.say(b.recorder, h.private(b.recorder), "/assess 2026-03")
    assert "张三" in h.world.last_message(b.recorder.id).text.split("尚未考评：")[1]
    assert zhang in [m.id for m in await h.services.assessment.unassessed(b.branch, 2026, 3)]
    await h.tap(b.recorder, b.recorder.id, "张三")
    assert "敬业爱岗、完成本职工作：未考评" in h.world.last_message(b.recorder.id).text
    await h.tap(b.recorder, b.recorder.id, "敬业爱岗")
    await h.tap(b.recorder, b.recorder.id, "良好")
    calls = await press_exact(h, b.recorder, "7")  # the same value again (the screen's revision is 1)
    assert "已记录：张三 · 敬业爱岗、完成本职工作 7" in alerts(calls)
    found = await ledger(h, zhang, "job_performance")
    assert [(r["value"], r["reference"]) for r in found][-1] == ("7", "assess:2026-03:job_performance:2")
    assert effective_sum(found) == 7
    assert await count(h, "ledger", "reverses_id = ?", given_row["id"]) == 1  # not reversed a second time


async def test_english_lists_use_the_english_separator(h, clock):
    """Finding 17: an English reader's lists are joined with ", ", a Chinese reader's with "、"."""
    b = await setup_branch(h, preset="zhangdian")
    recorder = h.user(b.recorder.id, b.recorder.first_name, username=b.recorder.username, language="en")
    board = said(await h.say(recorder, h.private(recorder), "/assess"), recorder.id)
    assert "Not yet assessed: 王书记, 李记录, 张三, 李四" in board and "、" not in board
    async with h.db.transaction() as conn:  # the reminder follows the language the member row keeps
        await conn.execute("UPDATE members SET language = 'en' WHERE id = ?", (b.member_ids["recorder"],))
    clock.set(datetime(2026, 3, 30, 1, 0, tzinfo=UTC))
    before = len(h.world.calls)
    await engine.tick(h.app, clock.now())
    assert "not yet assessed: 王书记, 李记录, 张三, 李四" in said(h.world.calls[before:], recorder.id)
    assert "王书记、李记录、张三、李四" in said(h.world.calls[before:], b.secretary.id)


# --- the reminder and the defaults (schedules) ---------------------------------------------------------


async def test_reminder_before_the_notice_then_defaults_at_the_notice(h, clock):
    b = await setup_branch(h, preset="zhangdian")
    await assess_member(h, b, b.recorder, "张三", [("良好", "7"), ("优秀", None), ("一般", "3"), ("良好", "15")])
    await assess_member(h, b, b.recorder, "李四", [("优秀", None)])
    # two days before the notice (1 April 09:00 in Shanghai): the recorder is reminded
    clock.set(datetime(2026, 3, 30, 1, 0, tzinfo=UTC))
    before = len(h.world.calls)
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "assessment_reminder", "2026-03", "done") in done
    reminder = said(h.world.calls[before:], b.recorder.id)
    assert "2026年3月月度考评提醒" in reminder and "还有 3 名党员未考评：王书记、李记录、李四" in reminder
    # the recorder is unassessed themself, so the secretary is reminded too; members are not
    assert "考评提醒" in said(h.world.calls[before:], b.secretary.id)
    assert "考评提醒" not in said(h.world.calls[before:], b.zhang.id)
    assert (b.branch.id, "assessment_reminder", "2026-03", "done") not in await engine.tick(h.app, clock.now())

    # at the notice: every item nobody assessed gets its default (张店: 0), once
    clock.set(datetime(2026, 4, 1, 1, 0, tzinfo=UTC))
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "assessment_default", "2026-03", "done") in done
    defaulted = await h.services.assessment.defaulted_members(b.branch.id, 2026, 3)
    assert defaulted == sorted([b.member_ids["secretary"], b.member_ids["recorder"], b.member_ids["lisi"]])
    vanguard = {i.code for i in assessed_items(ZHANGDIAN)}
    lisi = [r for r in await ledger(h, b.member_ids["lisi"]) if r["item_code"] in vanguard]  # (dues close the month too)
    assert [(r["item_code"], r["value"], r["source"]) for r in lisi] == [
        ("job_performance", "10", "recorder"), ("volunteering", "0", "automatic"),
        ("unity_law", "0", "automatic"), ("carry_out_tasks", "0", "automatic"),
    ]
    assert all("未考评，按默认分计入" in (r["reason"] or "") for r in lisi[1:])
    total = await count(h, "assessments")
    await engine.tick(h.app, clock.now())
    assert await h.services.assessment.apply_defaults(b.branch, 2026, 3, "again") == []  # safe to repeat
    assert await count(h, "assessments") == total == 5 + 11  # 张三 4 + 李四 1 assessed; 11 defaults

    # the committee's result entered later replaces the default (the default row is reversed)
    await h.say(b.secretary, h.private(b.secretary), "/assess 2026-03")
    await h.tap(b.secretary, b.secretary.id, "李记录")
    assert "0（较差）（默认分，未考评）" in h.world.last_message(b.secretary.id).text
    await h.tap(b.secretary, b.secretary.id, "敬业爱岗")
    await h.tap(b.secretary, b.secretary.id, "良好")
    await press_exact(h, b.secretary, "6")
    rows_ = await ledger(h, b.member_ids["recorder"], "job_performance")
    assert [(r["value"], r["source"]) for r in rows_] == [("0", "automatic"), ("0", "correction"), ("6", "recorder")]
    assert b.member_ids["recorder"] in await h.services.assessment.defaulted_members(b.branch.id, 2026, 3)  # 3 items left


async def test_a_late_reminder_is_skipped_and_nobody_unassessed_means_no_reminder(h, clock):
    b = await setup_branch(h, preset="zhangdian")
    clock.set(datetime(2026, 3, 31, 1, 0, tzinfo=UTC))  # a day after the reminder's moment: too late
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "assessment_reminder", "2026-03", "skipped") in done
    assert "考评提醒" not in said(h.world.calls)


async def test_defaults_middle_of_good_and_per_item_default():
    rulebook = ZHANGDIAN.model_copy(update={"settings": ZHANGDIAN.settings.model_copy(
        update={"assessment_default": AssessmentDefault.MIDDLE_OF_GOOD})})
    by_code = {i.code: i for i in assessed_items(rulebook)}
    assert default_value(by_code["job_performance"], rulebook, 1) == 7
    assert default_value(by_code["carry_out_tasks"], rulebook, 1) == Decimal("14.5")
    assert default_value(by_code["job_performance"], ZHANGDIAN, 1) == 0
    duty = assessed_items(XISHUI)[0]
    assert duty.code == "post_duty" and good_value(duty, 2) == 10 and default_value(duty, XISHUI, 2) == 0
    with_default = duty.model_copy(update={"default": Decimal(6)})
    assert default_value(with_default, XISHUI, 2) == 12  # per post


# --- properties --------------------------------------------------------------------------------------

ITEMS = [(rb, item) for rb in (ZHANGDIAN, XISHUI) for item in assessed_items(rb)]


@given(st.sampled_from(ITEMS), st.integers(min_value=0, max_value=4), st.sampled_from(list(AssessmentDefault)))
def test_good_and_default_values_are_always_allowed(pair, posts, setting):
    rulebook, item = pair
    rulebook = rulebook.model_copy(update={"settings": rulebook.settings.model_copy(update={"assessment_default": setting})})
    low, high = value_range(item, posts)
    for value in (good_value(item, posts), default_value(item, rulebook, posts)):
        assert low <= value <= high and valid_value(item, value, posts)
    for value in whole_values(low, high):
        assert valid_value(item, value, posts)
        if item.levels:
            assert level_of(item, value, posts) is not None


@given(st.sampled_from(ITEMS), st.integers(min_value=0, max_value=4),
       st.one_of(st.decimals(allow_nan=True, allow_infinity=True), st.integers(-1000, 1000).map(Decimal)))
def test_valid_values_lie_in_the_range_with_two_places(pair, posts, value):
    _, item = pair
    low, high = value_range(item, posts)
    ok = valid_value(item, value, posts)
    if ok:
        assert value.is_finite() and low <= value <= high and value == value.quantize(Decimal("0.01"))
    elif value.is_finite() and low <= value <= high:
        assert value != value.quantize(Decimal("0.01"))


@given(st.text(max_size=12))
def test_parse_month_accepts_or_refuses_cleanly(text):
    today = date(2026, 3, 20)
    try:
        year, month = parse_month(text, today)
    except MonthError as exc:
        assert exc.reason in ("bad", "future", "too_old")
    else:
        assert (2025, 3) <= (year, month) <= (2026, 3)


def test_default_month_switches_at_the_notice():
    settings = CalendarSettings()
    tz = "Asia/Shanghai"
    assert default_month(date(2026, 4, 1), datetime(2026, 4, 1, 0, 59, tzinfo=UTC), settings, tz) == (2026, 3)
    assert default_month(date(2026, 4, 1), datetime(2026, 4, 1, 1, 0, tzinfo=UTC), settings, tz) == (2026, 4)
    day = date(2026, 3, 31)
    assert posts_held_on(ZHANGDIAN, [], day) == 1 and posts_held_on(XISHUI, [], day) == 2
    assert posts_held_on(XISHUI, [Claim(date(2026, 3, 1))], day) == 1


# A random sequence of presses, valid or not: what the ledger holds for each (member, item) is exactly
# the last value accepted, and a refused press writes nothing.
PRESS = st.tuples(st.integers(0, 1), st.integers(0, 3),
                  st.one_of(st.integers(-2, 22).map(Decimal), st.sampled_from([Decimal("NaN"), Decimal("7.5"), Decimal("3.25")])))


async def _branch_with_members(tmp: Path) -> tuple[Services, Database, object, list]:
    db = await Database(tmp / "a.sqlite3").open()
    services = Services(db, FixedClock(MOMENT))
    secretary = Actor(user_id=1, name="书记")
    branch = await services.branches.setup(chat_id=-100, title="支部", actor=secretary, preset_code="zhangdian", is_admin=True)
    async with db.transaction() as conn:
        members = [await member_repo.add_approved(conn, branch_id=branch.id, name=f"党员{i}", joined_on="2026-01-01",
                                                  user_id=10 + i) for i in range(2)]
        recorder = await member_repo.add_approved(conn, branch_id=branch.id, name="记录员", joined_on="2026-01-01", user_id=99)
        await member_repo.grant(conn, branch.id, recorder.id, Role.RECORDER, granted_by=None)
    return services, db, branch, members


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(PRESS, min_size=1, max_size=12))
def test_the_ledger_holds_the_last_accepted_value(tmp_path, presses):
    async def scenario() -> None:
        services, db, branch, members = await _branch_with_members(Path(tempfile.mkdtemp(dir=tmp_path)))
        recorder = Actor(user_id=99, name="记录员")
        items = assessed_items(ZHANGDIAN)
        model: dict[tuple[int, str], Decimal] = {}
        try:
            for who, index, value in presses:
                member = members[who]
                before = await _ledger_count(db)
                try:
                    await services.assessment.assess(branch, recorder, 2026, 3, member.id, index, value, None, "r")
                except DomainError:
                    assert await _ledger_count(db) == before  # refused: nothing written
                    low, high = value_range(items[index], 1)
                    assert not (value.is_finite() and low <= value <= high and value == value.quantize(Decimal("0.01")))
                else:
                    model[(member.id, items[index].code)] = value
            async with db.read() as conn:
                async with conn.execute("SELECT member_id, item_code, value, id, reverses_id FROM ledger") as cursor:
                    found = [dict(r) for r in await cursor.fetchall()]
            for (member_id, code), value in model.items():
                mine = [r for r in found if r["member_id"] == member_id and r["item_code"] == code]
                assert effective_sum(mine) == value
            assert {(r["member_id"], r["item_code"]) for r in found} == set(model)
        finally:
            await db.close()

    asyncio.run(scenario())


async def _ledger_count(db: Database) -> int:
    async with db.read() as conn:
        async with conn.execute("SELECT count(*) FROM ledger") as cursor:
            return int((await cursor.fetchone())[0])
