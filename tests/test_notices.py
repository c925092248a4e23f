"""The public notice (公示), objections (异议), appeals (申诉) and confirmations (签字确认), end to end.

Time moves with the FixedClock; scheduled work runs with ``schedules.engine.tick``. Each test asserts
on the Bot API calls (group posts, private messages, buttons, popups) and on the database.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.clock import FixedClock
from bot.domain.calendar import period_of_month
from bot.domain.meetings import MeetingKind
from bot.domain.notice import corrections, summarise
from bot.domain.records import LedgerRow, Source
from bot.domain.rulebook import Period
from bot.domain.scoring import Entry, effective, month_score, publish
from bot.harness import plain
from bot.i18n import format_points
from bot.presets import preset
from bot.services import Actor
from bot.services.branches import rulebook_of
from bot.services.meetings import MeetingDraft
from storage import ledger as ledger_repo
from handlers.common import visible_length
from handlers.notices import pack
from schedules import engine
from tests.conftest import TestHarness, assert_healthy, count, popups, rows, said, setup_branch

NOTICE_KINDS = ("notice", "notice_remind", "notice_close")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


APRIL_1 = utc(2026, 4, 1, 1, 0)  # 09:00 in Asia/Shanghai: March's notice is due


@pytest.fixture
def only_notices(monkeypatch):
    """The notice producers alone, so other features' scheduled work does not change what is published."""
    monkeypatch.setattr(engine, "PRODUCERS", [p for p in engine.PRODUCERS if p.kind in NOTICE_KINDS])


# --- helpers ----------------------------------------------------------------------------------------


async def pin_created(h: TestHarness, branch_id: int, moment: datetime) -> None:
    """The branch's created_at as of the test's clock (storage stamps it with the wall clock)."""
    await h.db.conn.execute("UPDATE branches SET created_at = ? WHERE id = ?", (moment.isoformat(), branch_id))
    await h.db.conn.commit()


async def branch_at(h: TestHarness, clock: FixedClock, moment: datetime, **kwargs) -> SimpleNamespace:
    clock.set(moment)
    b = await setup_branch(h, **kwargs)
    await pin_created(h, b.branch.id, moment)
    b.branch = await h.services.branches.by_id(b.branch.id)
    return b


def as_actor(user) -> Actor:
    return Actor(user_id=user.id, name=user.full_name, username=user.username, language=user.language_code)


async def record(h: TestHarness, b: SimpleNamespace, who: str, item: str, value: str, day: date, reason: str,
                 event: str | None = None) -> int:
    """A recorder's entry through the service; returns the ledger id."""
    target = await h.services.roster.member_of_id(b.member_ids[who])
    row = await h.services.points.record(b.branch, as_actor(b.recorder), target, item, Decimal(value), day, reason,
                                         reference=f"test:{who}:{item}:{day}:{reason[:20]}", event_code=event)
    assert row is not None
    return row.id


async def tick(h: TestHarness, clock: FixedClock, moment: datetime | None = None) -> list[tuple[int, str, str, str]]:
    if moment is not None:
        clock.set(moment)
    return await engine.tick(h.app, clock.now())


def posts(h: TestHarness, chat_id: int, marker: str = "积分公示") -> list[str]:
    return [plain(str(c.params["text"])) for c in h.world.sent(chat_id, "sendMessage") if marker in str(c.params["text"])]


def notice_posts(h: TestHarness, b: SimpleNamespace) -> list[str]:
    """The group messages of the notice itself (header and continuation), in order."""
    texts = [plain(str(c.params["text"])) for c in h.world.sent(b.group.id, "sendMessage")]
    start = next((i for i, t in enumerate(texts) if "党员积分公示" in t), None)
    if start is None:
        return []
    result = [texts[start]]
    for text in texts[start + 1:]:
        if "党员积分公示" in text or "异议 #" in text or "异议期已结束" in text:
            break
        result.append(text)
    return result


def last_notice(h: TestHarness, b: SimpleNamespace) -> list[str]:
    """The messages of the latest notice in the group."""
    texts = [plain(str(c.params["text"])) for c in h.world.sent(b.group.id, "sendMessage") if c.ok]
    start = max(i for i, t in enumerate(texts) if "党员积分公示" in t)
    return [texts[start]] + [t for t in texts[start + 1:] if "异议 #" not in t and "异议期已结束" not in t]


def private_texts(h: TestHarness, user) -> str:
    return "\n".join(plain(str(c.params.get("text", ""))) for c in h.world.sent(user.id))


def confirm_message(h: TestHarness, user):
    for message in reversed(h.world.messages(user.id)):
        if any(data.startswith("nt:cf:") for _, data in h.world.buttons(message)):
            return message
    raise LookupError("no confirmation message")


def alerts(calls) -> str:
    return "\n".join(plain(str(c.params.get("text", ""))) for c in popups(calls) if c.params.get("show_alert"))


@contextlib.asynccontextmanager
async def restarted(path: Path, clock: FixedClock, b: SimpleNamespace) -> AsyncIterator[TestHarness]:
    """The bot started again on the same database (the offline Telegram knows the same people)."""
    async with TestHarness(path, clock) as h:
        h.group(b.group.id, b.group.title)
        for person in (b.secretary, b.recorder, b.zhang, b.lisi):
            h.user(person.id, person.first_name, username=person.username)
        yield h
        assert_healthy(h)


# --- the notice ---------------------------------------------------------------------------------------


async def test_notice_posts_once_with_scores_entries_reasons_and_asks_each_member_to_confirm(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
    absent = await record(h, b, "zhang", "study", "-5", date(2026, 3, 10), "3月10日学习无故缺席", event="absent")
    duty = await record(h, b, "zhang", "post_duty", "8", date(2026, 3, 20), "本月巡逻3次")
    lisi_law = await record(h, b, "lisi", "law", "-10", date(2026, 3, 18), "家属违规<b>搭建</b>", event="violation")

    assert not [d for d in await tick(h, clock, APRIL_1 - timedelta(minutes=1)) if d[1] == "notice"]
    assert await count(h, "notices") == 0

    done = await tick(h, clock, APRIL_1 + timedelta(minutes=1))
    assert (b.branch.id, "notice", "2026-03", "done") in done
    texts = notice_posts(h, b)
    assert len(texts) == 1
    text = texts[0]
    assert "兰溪镇红星村党支部 2026年3月 党员积分公示" in text
    assert "补发" not in text  # on time
    assert "异议期）至 2026-04-08 09:01" in text
    rulebook = rulebook_of(b.branch)
    ledger = [Entry(id=r["id"], item_code=r["item_code"], value=Decimal(r["value"]), occurred_on=date.fromisoformat(r["occurred_on"]),
                    event_code=r["event_code"], reverses_id=r["reverses_id"]) for r in await rows(h, "SELECT * FROM ledger")]
    for who, name in (("zhang", "张三"), ("lisi", "李四"), ("secretary", "王书记"), ("recorder", "李记录")):
        mine = [e for e in ledger if e.id in {r["id"] for r in await rows(h, "SELECT id FROM ledger WHERE member_id = ?", b.member_ids[who])}]
        expected = publish(month_score(rulebook, mine, 2026, 3).total)
        assert f"{name}：本月 {format_points(expected)} 分" in text
    assert "张三：本月 63 分" in text  # 40 - 5 + (2 posts x 10 claimed + 8 duties)
    assert f"#{absent} 03-10 学习教育 · 无故缺席 -5　3月10日学习无故缺席" in text
    assert f"#{duty} 03-20 爱岗敬业、充分履职 +8　本月巡逻3次" in text
    assert f"#{lisi_law}" in text and "家属违规<b>搭建</b>" in text  # user text shown as text, never markup
    assert text.count("本期无加减分") == 2  # the secretary and the recorder: listed with nothing changed

    notice = (await rows(h, "SELECT * FROM notices"))[0]
    assert notice["period_key"] == "2026-03" and notice["late"] == 0
    assert notice["closes_at"] == "2026-04-08T01:01:00+00:00"
    assert {r["ledger_id"] for r in await rows(h, "SELECT ledger_id FROM notice_entries")} == {absent, duty, lisi_law}
    assert {r["status"] for r in await rows(h, "SELECT status FROM notice_members")} == {"pending"}
    assert await count(h, "notice_members") == 4
    for person in (b.secretary, b.recorder, b.zhang, b.lisi):
        message = confirm_message(h, person)
        assert [d for _, d in h.world.buttons(message)] == [f"nt:cf:{notice['id']}", f"nt:ds:{notice['id']}"]
        assert "请确认本人本期积分" in (message.text or "")
    assert "张三：本月 63 分" in (confirm_message(h, b.zhang).text or "")

    before = len(h.world.calls)
    assert [d for d in await tick(h, clock) if d[1] == "notice"] == []  # the next minute: nothing again
    assert await tick(h, clock, APRIL_1 + timedelta(hours=3)) == []
    assert not [c for c in h.world.calls[before:] if c.method == "sendMessage"]
    assert await count(h, "notices") == 1


async def test_restart_right_after_posting_and_two_restarts_in_a_row_never_post_twice(database_url, clock, only_notices):
    path = database_url
    async with TestHarness(path, clock) as h:
        b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
        await record(h, b, "zhang", "study", "-5", date(2026, 3, 10), "缺席", event="absent")
        await tick(h, clock, APRIL_1 + timedelta(minutes=1))
        assert len(notice_posts(h, b)) == 1
        assert_healthy(h)
    for minutes in (2, 3):  # restarted right after posting, then again
        async with restarted(path, clock, b) as h:
            assert [d for d in await tick(h, clock, APRIL_1 + timedelta(minutes=minutes)) if d[1] == "notice"] == []
            assert h.world.sent(b.group.id, "sendMessage") == []
            assert not [c for c in h.world.calls if c.method == "sendMessage"]
            assert await count(h, "notices") == 1 and await count(h, "notice_members") == 4
            assert await rows(h, "SELECT kind, key, outcome FROM effects WHERE kind = 'notice'") == [
                {"kind": "notice", "key": "2026-03", "outcome": "done"}]


async def test_down_across_the_first_catches_up_late_says_so_and_skips_a_reminder_whose_moment_passed(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
    await record(h, b, "zhang", "study", "-5", date(2026, 3, 10), "缺席", event="absent")
    await tick(h, clock, utc(2026, 4, 3, 5, 0))  # the bot was down from before the 1st until the 3rd
    text = notice_posts(h, b)[0]
    assert "本公示原定 2026-04-01 09:00 发布，当时未能发到群里（机器人未运行，或不在群中、无法发言），现补发" in text
    notice = (await rows(h, "SELECT * FROM notices"))[0]
    assert notice["late"] == 1 and notice["posted_at"] == "2026-04-03T05:00:00+00:00"
    assert notice["closes_at"] == "2026-04-10T05:00:00+00:00"  # the window counts from the late posting
    assert "异议期）至 2026-04-10 13:00" in text

    await h.tap(b.zhang, b.zhang.id, "确认无误")
    # Down again across the reminder (a day before the close) and the close itself.
    before = len(h.world.calls)
    done = await tick(h, clock, utc(2026, 4, 10, 6, 0))
    assert (b.branch.id, "notice_remind", "2026-03", "skipped") in done
    assert (b.branch.id, "notice_close", "2026-03", "done") in done
    sent = [c for c in h.world.calls[before:] if c.method == "sendMessage"]
    assert [c.chat_id for c in sent] == [b.group.id]  # no reminder to anyone
    summary = plain(str(sent[0].params["text"]))
    assert "2026年3月 积分公示的异议期已结束：收到异议 0 件" in summary and "未确认 3 人" in summary
    assert await tick(h, clock, utc(2026, 4, 10, 7, 0)) == []


async def test_reminder_on_time_goes_to_those_who_have_not_confirmed(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
    await tick(h, clock, APRIL_1 + timedelta(minutes=1))
    await h.tap(b.zhang, b.zhang.id, "确认无误")
    before = len(h.world.calls)
    done = await tick(h, clock, utc(2026, 4, 7, 1, 2))  # a day before the window closes
    assert (b.branch.id, "notice_remind", "2026-03", "done") in done
    reminded = {c.chat_id for c in h.world.calls[before:] if c.method == "sendMessage"}
    assert reminded == {b.secretary.id, b.recorder.id, b.lisi.id}
    assert "异议期将于 2026-04-08 09:01 结束" in private_texts(h, b.lisi)


async def test_notice_day_31_falls_on_the_last_day_of_february(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 1, 10, 2, 0))
    await h.services.calendar.change(b.branch, as_actor(b.secretary), "notice_day", "31")
    await record(h, b, "zhang", "study", "-5", date(2026, 1, 15), "一月缺席", event="absent")
    assert [d for d in await tick(h, clock, utc(2026, 2, 27, 2, 0)) if d[1] == "notice"] == []
    assert [d for d in await tick(h, clock, utc(2026, 2, 28, 0, 59)) if d[1] == "notice"] == []
    done = await tick(h, clock, utc(2026, 2, 28, 1, 1))
    assert (b.branch.id, "notice", "2026-01", "done") in done
    assert "2026年1月 党员积分公示" in notice_posts(h, b)[0]
    assert (await rows(h, "SELECT due_at, late FROM notices"))[0] == {"due_at": "2026-02-28T01:00:00+00:00", "late": 0}
    done = await tick(h, clock, utc(2026, 3, 31, 1, 1))  # February's on the 31st of March
    assert (b.branch.id, "notice", "2026-02", "done") in done
    assert [r["period_key"] for r in await rows(h, "SELECT period_key FROM notices ORDER BY id")] == ["2026-01", "2026-02"]


async def test_year_boundary_december_notice_on_the_first_of_january(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 12, 5, 2, 0))
    entry = await record(h, b, "zhang", "study", "-5", date(2026, 12, 10), "十二月缺席", event="absent")
    done = await tick(h, clock, utc(2027, 1, 1, 1, 1))
    assert [(k, key) for _, k, key, _ in done if k == "notice"] == [("notice", "2026-12")]  # not November: before the branch
    text = notice_posts(h, b)[0]
    assert "2026年12月 党员积分公示" in text and f"#{entry} 12-10" in text
    assert "张三：本月 55 分" in text  # 40 - 5 + 20 claimed posts
    notice = (await rows(h, "SELECT * FROM notices"))[0]
    assert (notice["first_day"], notice["last_day"]) == ("2026-12-01", "2026-12-31")


async def test_a_new_branch_gets_no_backlog_and_a_long_outage_at_most_two_notices(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
    assert [d for d in await tick(h, clock) if d[1] == "notice"] == []  # created in March: nothing for Jan/Feb
    await pin_created(h, b.branch.id, utc(2025, 1, 1))
    await h.db.conn.execute("UPDATE members SET joined_on = '2025-01-01'")
    await h.db.conn.commit()
    done = await tick(h, clock, utc(2026, 9, 15, 2, 0))  # down for months
    assert [key for _, k, key, _ in done if k == "notice"] == ["2026-07", "2026-08"]


async def test_quarterly_notice_and_the_seed_example_objection_upheld_points_withdrawn(h, clock, only_notices):
    """Seed 000: points for sweeping the lanes; he swept only his own doorways; the points were cancelled."""
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0), preset="sanmenxia")
    swept = await record(h, b, "zhang", "green_zone", "10", date(2026, 3, 25), "负责清扫村里的巷道")
    await tick(h, clock, APRIL_1 + timedelta(minutes=5))
    text = notice_posts(h, b)[0]
    assert "2026年第1季度 党员积分公示" in text
    assert "张三：本期 +10 分，全年累计 110 分" in text
    assert "李四：本期 0 分，全年累计 100 分" in text

    calls = await h.say(b.lisi, h.private(b.lisi), f"/object {swept} 他只扫了自家和亲戚家门口，没有扫巷道")
    assert f"已收到您对记录 #{swept}（张三）的异议，编号 #1" in said(calls, b.lisi.id)
    assert "他只扫了自家" not in "\n".join(posts(h, b.group.id, "异议"))  # private: nothing in the group
    card = h.world.last_message(b.secretary.id)
    assert "异议 #1" in (card.text or "") and "提出人：李四" in (card.text or "") and "负责清扫村里的巷道" in (card.text or "")
    assert [d for _, d in h.world.buttons(card)] == ["nt:up:1", "nt:wd:1"]

    # The recorder (not a decider) and the member himself press Withdraw: refused, nothing changes.
    for person in (b.recorder, b.zhang):
        calls = await h.press(person, card, "nt:wd:1")
        assert "只有以下角色可以这样做" in alerts(calls)
    assert await count(h, "ledger") == 1
    assert (await rows(h, "SELECT status FROM objections"))[0]["status"] == "open"

    calls = await h.tap(b.secretary, b.secretary.id, "撤销该分")
    assert "已撤销该分" in "\n".join(plain(str(c.params.get("text", ""))) for c in popups(calls))
    reversal = (await rows(h, "SELECT * FROM ledger WHERE reverses_id = ?", swept))[0]
    assert reversal["source"] == "correction" and Decimal(reversal["value"]) == Decimal(-10)
    assert reversal["reason"] == "异议 #1：他只扫了自家和亲戚家门口，没有扫巷道"  # the branch language (zh)
    objection = (await rows(h, "SELECT * FROM objections"))[0]
    assert objection["status"] == "withdrawn" and objection["reversal_id"] == reversal["id"]
    assert objection["decided_by"] == b.member_ids["secretary"]
    assert any(f"异议 #1 处理结果：经核实，张三 的记录 #{swept}" in t and "已撤销" in t for t in posts(h, b.group.id, "异议"))
    assert "该分已撤销" in private_texts(h, b.lisi)
    assert "该分已撤销。理由：他只扫了自家" in private_texts(h, b.zhang)
    assert "处理结果：已撤销该分（王书记）" in plain(h.world.last_message(b.secretary.id).text or "")
    standing = await h.services.points.standing(b.branch, await h.services.roster.member_of_id(b.member_ids["zhang"]))
    assert standing.year.figure == Decimal(100)

    # Deciding twice: a clear message, nothing more written.
    calls = await h.press(b.secretary, card, "nt:wd:1")
    assert "已经处理过了" in alerts(calls)
    calls = await h.press(b.secretary, card, "nt:up:1")
    assert "已经处理过了" in alerts(calls)
    assert await count(h, "ledger") == 2

    # An appeal upward by the member concerned: a flag and a record, once; the secretary is told.
    calls = await h.say(b.recorder, h.private(b.recorder), "/appeal 1 与我无关")
    assert "只有提出异议的人或被异议的党员本人可以申诉" in said(calls)
    calls = await h.say(b.zhang, h.private(b.zhang), "/appeal 1 我确实扫了全村的巷道，有村民可以作证")
    assert "已记录您对异议 #1 处理结果的申诉" in said(calls)
    appealed = (await rows(h, "SELECT * FROM objections"))[0]
    assert appealed["appealed_by"] == b.member_ids["zhang"] and "有村民可以作证" in appealed["appeal_reason"]
    assert "申诉：张三 对异议 #1" in private_texts(h, b.secretary)
    calls = await h.say(b.lisi, h.private(b.lisi), "/appeal 1 再申诉")
    assert "异议 #1 已经申诉过了" in said(calls)
    calls = await h.say(b.zhang, h.private(b.zhang), "/appeal")
    assert "用法：/appeal" in said(calls)
    assert (await rows(h, "SELECT appeal_reason FROM objections"))[0]["appeal_reason"] == appealed["appeal_reason"]


async def test_bad_objections_get_a_clear_message_and_change_nothing(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
    other = await setup_branch(h, chat_id=-1001000000002, title="另一个支部", base=2000)
    await pin_created(h, other.branch.id, utc(2026, 3, 20, 2, 0))
    other.branch = await h.services.branches.by_id(other.branch.id)
    entry = await record(h, b, "zhang", "study", "-5", date(2026, 3, 10), "缺席", event="absent")
    foreign = await record(h, other, "zhang", "study", "-5", date(2026, 3, 11), "别的支部", event="absent")
    await tick(h, clock, APRIL_1 + timedelta(minutes=1))
    lisi = h.private(b.lisi)

    async def objecting(text: str) -> str:
        return said(await h.say(b.lisi, lisi, text), b.lisi.id)

    assert "本支部没有编号为 #99999 的积分记录" in await objecting("/object 99999 不对")
    assert f"本支部没有编号为 #{foreign} 的积分记录" in await objecting(f"/object {foreign} 不对")
    assert "请写记录编号" in await objecting("/object abc 不对")
    assert "内容太长（最多 500 个字）" in await objecting(f"/object {entry} " + "很" * 5000)
    assert await count(h, "objections") == 0

    # Without a reason: asked for one; an overlong one is refused and asked again; then it is filed.
    assert "请写明您的理由" in await objecting(f"/object {entry}")
    assert "内容太长" in await objecting("长" * 501)
    assert "编号 #1" in await objecting("他那天请过假")
    assert "您已经对记录" in await objecting(f"/object {entry} 再说一遍")
    assert await count(h, "objections") == 1

    # In the group: objections are private.
    calls = await h.say(b.zhang, b.group, f"/object {entry} 群里说")
    assert "异议请私聊我提交" in said(calls, b.group.id)
    assert await count(h, "objections") == 1

    # An entry not in a posted notice (April's) cannot be objected to yet.
    april = await record(h, b, "zhang", "study", "-2", date(2026, 4, 1), "四月迟到", event="late")
    assert f"记录 #{april} 不在已发布的公示中" in await objecting(f"/object {april} 不对")

    # A non-decider pressing Uphold, then the decision, then deciding twice.
    card = h.world.last_message(b.secretary.id)
    for person in (b.zhang, b.lisi, b.recorder):
        calls = await h.press(person, card, "nt:up:1")
        assert "只有以下角色可以这样做" in alerts(calls)
    assert (await rows(h, "SELECT status FROM objections"))[0]["status"] == "open"
    await h.tap(b.secretary, b.secretary.id, "维持原记录")
    assert (await rows(h, "SELECT status FROM objections"))[0]["status"] == "upheld"
    assert any("维持不变" in t for t in posts(h, b.group.id, "异议 #1"))
    assert "经核实，维持原记录。如不服，可发送 /appeal 1" in private_texts(h, b.lisi)
    ledger_before = await count(h, "ledger")
    calls = await h.press(b.secretary, card, "nt:wd:1")
    assert "异议 #1 已经处理过了：维持原记录" in alerts(calls)
    assert await count(h, "ledger") == ledger_before
    assert (await rows(h, "SELECT status FROM objections"))[0]["status"] == "upheld"

    # After the window: refused.
    clock.set(utc(2026, 4, 8, 1, 2))
    calls = await h.say(b.zhang, h.private(b.zhang), f"/object {entry} 太晚了")
    assert "异议期已于 2026-04-08 09:01 结束" in said(calls, b.zhang.id)
    assert await count(h, "objections") == 1


async def test_object_lists_the_open_entries_with_buttons_and_pages(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
    ids = [await record(h, b, "zhang", "post_duty", "1", date(2026, 3, d), f"第{d}次") for d in range(1, 11)]
    calls = await h.say(b.lisi, h.private(b.lisi), "/object")
    assert "目前没有处于异议期的公示" in said(calls)
    await tick(h, clock, APRIL_1 + timedelta(minutes=1))

    calls = await h.say(b.lisi, h.private(b.lisi), "/object")
    listing = [c for c in calls if c.method == "sendMessage"][-1]
    data = [d for _, d in h.world.buttons(listing)]
    assert data[:8] == [f"nt:ob:{i}" for i in ids[:8]] and data[-1] == "nt:pg:1"
    assert "第 1/2 页" in plain(str(listing.params["text"]))
    await h.tap(b.lisi, b.lisi.id, "下一页")
    page = h.world.last_message(b.lisi.id)
    assert [d for _, d in h.world.buttons(page)] == [f"nt:ob:{ids[8]}", f"nt:ob:{ids[9]}", "nt:pg:0"]

    await h.tap(b.lisi, b.lisi.id, f"#{ids[9]} ")
    assert f"对记录 #{ids[9]}" in plain(h.world.last_message(b.lisi.id).text or "")
    await h.tap(b.lisi, b.lisi.id, "取消")
    assert await count(h, "objections") == 0
    calls = await h.press(b.lisi, page, f"nt:ob:{ids[9]}")
    await h.say(b.lisi, h.private(b.lisi), "第10次那天他不在村里")
    objection = (await rows(h, "SELECT * FROM objections"))[0]
    assert objection["ledger_id"] == ids[9] and objection["objector_id"] == b.member_ids["lisi"]
    assert objection["kind"] == "objection" and objection["reason"] == "第10次那天他不在村里"
    calls = await h.say(b.secretary, h.private(b.secretary), "/objections")
    assert "待处理的异议 1 件" in said(calls)
    assert [d for c in calls for _, d in h.world.buttons(c) if c.method == "sendMessage"] == ["nt:up:1", "nt:wd:1"]


async def test_confirm_dispute_and_who_has_not_confirmed(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
    await h.services.roster.import_roster(b.branch, as_actor(b.secretary), "姓名\n赵六\n".encode())
    await tick(h, clock, APRIL_1 + timedelta(minutes=1))
    assert "赵六：本月" in notice_posts(h, b)[0]
    notice_id = (await rows(h, "SELECT id FROM notices"))[0]["id"]

    calls = await h.tap(b.zhang, b.zhang.id, "确认无误")
    assert "已确认 2026年3月 积分" in "\n".join(str(c.params.get("text", "")) for c in popups(calls))
    assert (await rows(h, "SELECT status FROM notice_members WHERE member_id = ?", b.member_ids["zhang"]))[0]["status"] == "confirmed"
    calls = await h.press(b.zhang, confirm_message(h, b.zhang), f"nt:cf:{notice_id}")
    assert "您已经确认过本期积分了" in alerts(calls)
    calls = await h.press(b.zhang, confirm_message(h, b.zhang), f"nt:ds:{notice_id}")
    assert "您已经确认过本期积分了" in alerts(calls)
    # Pressing the button on someone else's message confirms one's own line only (buttons carry no identity).
    await h.press(b.recorder, confirm_message(h, b.zhang), f"nt:cf:{notice_id}")
    statuses = {r["member_id"]: r["status"] for r in await rows(h, "SELECT member_id, status FROM notice_members")}
    assert statuses[b.member_ids["recorder"]] == "confirmed" and statuses[b.member_ids["lisi"]] == "pending"

    await h.tap(b.lisi, b.lisi.id, "有异议")
    assert "请写明您对 2026年3月 本人积分" in plain(h.world.last_message(b.lisi.id).text or "")
    await h.say(b.lisi, h.private(b.lisi), "/cancel")
    assert await count(h, "objections") == 0
    await h.press(b.lisi, confirm_message(h, b.lisi), f"nt:ds:{notice_id}")
    calls = await h.say(b.lisi, h.private(b.lisi), "三月的党课我参加了，不应扣分")
    assert "已记录您对 2026年3月 积分的异议（#1）" in said(calls)
    dispute = (await rows(h, "SELECT * FROM objections"))[0]
    assert dispute["kind"] == "dispute" and dispute["ledger_id"] is None and dispute["member_id"] == b.member_ids["lisi"]
    assert (await rows(h, "SELECT status FROM notice_members WHERE member_id = ?", b.member_ids["lisi"]))[0]["status"] == "disputed"
    card = h.world.last_message(b.secretary.id)
    assert "积分异议 #1" in (card.text or "") and [d for _, d in h.world.buttons(card)] == ["nt:up:1", "nt:rs:1"]
    calls = await h.press(b.lisi, confirm_message(h, b.lisi), f"nt:cf:{notice_id}")
    assert "您已经对本期积分提出过异议" in alerts(calls)

    calls = await h.say(b.recorder, h.private(b.recorder), "/unconfirmed")
    text = said(calls)
    assert "尚未确认的党员 3 人" in text
    assert "王书记：未确认" in text and "李四：有异议" in text and "赵六：未确认（未绑定" in text
    assert "张三" not in text and "李记录" not in text
    calls = await h.say(b.zhang, h.private(b.zhang), "/unconfirmed")
    assert "只有以下角色可以这样做" in said(calls)
    calls = await h.say(b.secretary, h.private(b.secretary), "/unconfirmed 2026-02")  # private only (QA #22)
    assert "没有 2026-02 这期公示" in said(calls)

    await h.tap(b.secretary, b.secretary.id, "已核实处理")
    assert (await rows(h, "SELECT status FROM objections"))[0]["status"] == "resolved"
    assert "支部已核实并处理" in private_texts(h, b.lisi)
    assert await count(h, "ledger", "source = 'correction'") == 0  # a dispute's outcome writes no points itself


async def test_a_long_notice_is_split_under_4096_and_keeps_each_member_together(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
    names = [f"党员{i:02d}" for i in range(40)]
    await h.services.roster.import_roster(b.branch, as_actor(b.secretary), ("姓名\n" + "\n".join(names) + "\n").encode())
    members = {r["name"]: r["id"] for r in await rows(h, "SELECT id, name FROM members")}
    reason = "在村委会门口参加义务劳动，清理垃圾并修剪绿化带，" * 8
    entries = {}
    for name in names:
        target = await h.services.roster.member_of_id(members[name])
        entries[name] = [
            (await h.services.points.record(b.branch, as_actor(b.recorder), target, "post_duty", Decimal(day), date(2026, 3, day),
                                            reason, reference=f"long:{name}:{day}")).id
            for day in (3, 4, 5)
        ]
    await tick(h, clock, APRIL_1 + timedelta(minutes=1))
    texts = notice_posts(h, b)
    assert len(texts) >= 3
    calls = [c for c in h.world.sent(b.group.id, "sendMessage")]
    assert all(len(str(c.params["text"])) <= 4096 for c in calls)
    for name in names:
        holding = [t for t in texts if f"{name}：本月" in t]
        assert len(holding) == 1, name
        assert all(f"#{i} " in holding[0] for i in entries[name])
    assert "共 44 名党员" in texts[-1]


async def test_defaults_are_one_short_line_and_no_zero_lines_per_member(h, clock):
    """Every feature scheduled: nobody assessed March, so each member gets 爱岗敬业's default (0 in 浠水)."""
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
    duty = await record(h, b, "zhang", "study", "-5", date(2026, 3, 10), "缺席", event="absent")
    await tick(h, clock, APRIL_1 + timedelta(minutes=1))
    defaults = await rows(h, "SELECT id, value FROM ledger WHERE source = 'automatic' AND reference LIKE 'assess:%'")
    assert len(defaults) == 4 and {Decimal(r["value"]) for r in defaults} == {Decimal(0)}
    text = "\n".join(notice_posts(h, b))
    assert "未考评、按默认分计入：4 人（王书记、李记录、张三、李四）" in text
    assert text.count("按默认分计入") == 1  # no 0-point default line in anyone's block
    assert "爱岗敬业" not in text
    assert text.count("本期无加减分") == 3 and f"#{duty} 03-10" in text
    assert {r["ledger_id"] for r in await rows(h, "SELECT ledger_id FROM notice_entries")} == {duty}


async def test_the_defaults_line_names_only_those_defaulted(h, clock):
    b = await branch_at(h, clock, utc(2026, 3, 28, 2, 0))
    for who in ("secretary", "recorder", "zhang"):
        target = await h.services.roster.member_of_id(b.member_ids[who])
        assessor = b.secretary if who == "recorder" else b.recorder
        await h.services.assessment.assess(b.branch, as_actor(assessor), 2026, 3, target.id, 0, Decimal(5), None, "")
    await tick(h, clock, APRIL_1 + timedelta(minutes=1))
    text = "\n".join(notice_posts(h, b))
    assert "未考评、按默认分计入：1 人（李四）" in text


def test_a_quarterly_average_is_published_rounded():
    """A non-sum scheme noticed by quarter: the period's figure is the months' mean, rounded like every score."""
    rulebook = preset("xishui")
    rows_ = [Entry(id=1, item_code="post_duty", value=Decimal(1), occurred_on=date(2026, 1, 31))]
    summary = summarise(rulebook, 1, "x", rows_, date(2026, 1, 1), date(2026, 3, 31), date(2025, 1, 1), None, posts=1)
    scores = [s for _, _, s in summary.month_scores]
    assert len(scores) == 3 and scores[0] == scores[1] + 1 == scores[2] + 1
    mean = sum(scores, Decimal(0)) / 3
    assert mean != publish(mean)  # a third: not a published figure as it is
    assert summary.figure == publish(mean) and summary.figure.as_tuple().exponent == -2


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 3), st.integers(1, 28), st.sampled_from([Decimal(v) for v in ("1", "2", "3", "5")])),
                max_size=8))
def test_a_period_figure_is_always_a_published_figure(raw):
    rulebook = preset("xishui")
    entries = [Entry(id=i + 1, item_code="post_duty", value=v, occurred_on=date(2026, m, d)) for i, (m, d, v) in enumerate(raw)]
    summary = summarise(rulebook, 1, "x", entries, date(2026, 1, 1), date(2026, 3, 31), date(2025, 1, 1), None, posts=1)
    places = rulebook.settings.rounding_places
    assert summary.figure == publish(summary.figure, places)
    assert summary.figure == publish(sum((s for _, _, s in summary.month_scores), Decimal(0)) / 3, places)


# --- sending, retrying ------------------------------------------------------------------------------


def fail_send(h: TestHarness, nth: int, payload: dict) -> None:
    """The ``nth`` sendMessage from now fails with this Bot API error (the others go through)."""
    if nth == 1:
        h.world.fail_next("sendMessage", payload)
        return
    original = h.world._handlers["sendmessage"]
    done = {"n": 0}

    def counting(params, files):
        result = original(params, files)
        done["n"] += 1
        if done["n"] == nth - 1:
            h.world.fail_next("sendMessage", payload)
        return result

    h.world._handlers["sendmessage"] = counting


BAD_GATEWAY = {"error_code": 502, "description": "Bad Gateway"}
CHAT_NOT_FOUND = {"error_code": 400, "description": "Bad Request: chat not found"}


def forget_injected(h: TestHarness) -> None:
    """The failures the test caused itself are not the bot's fault (the teardown checks the rest)."""
    h.world.calls[:] = [c for c in h.world.calls
                        if c.ok or str((c.error or {}).get("description")) not in (BAD_GATEWAY["description"], CHAT_NOT_FOUND["description"])]


def asks(h: TestHarness, user) -> list:
    return [m for m in h.world.messages(user.id) if any(d.startswith("nt:cf:") for _, d in h.world.buttons(m))]


async def test_a_notice_that_failed_to_send_is_sent_on_a_later_tick_and_its_window_counts_from_then(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
    entry = await record(h, b, "zhang", "study", "-5", date(2026, 3, 10), "缺席", event="absent")
    fail_send(h, 1, BAD_GATEWAY)  # Telegram answers the notice's sendMessage with 502
    assert (b.branch.id, "notice", "2026-03", "failed") in await tick(h, clock, APRIL_1 + timedelta(minutes=1))
    notice = (await rows(h, "SELECT * FROM notices"))[0]
    assert notice["sent_at"] is None and notice["parts_sent"] == 0
    assert notice_posts(h, b) == [] and all(asks(h, p) == [] for p in (b.secretary, b.recorder, b.zhang, b.lisi))
    # Not in the group yet: no window is open, nobody can object or dispute.
    assert "目前没有处于异议期的公示" in said(await h.say(b.lisi, h.private(b.lisi), "/object"))
    assert f"记录 #{entry} 不在已发布的公示中" in said(await h.say(b.lisi, h.private(b.lisi), f"/object {entry} 不对"))
    assert await count(h, "objections") == 0

    done = await tick(h, clock, APRIL_1 + timedelta(minutes=6))
    assert (b.branch.id, "notice", "2026-03", "done") in done
    texts = notice_posts(h, b)
    assert len(texts) == 1 and "异议期）至 2026-04-08 09:06" in texts[0] and f"#{entry} 03-10" in texts[0]
    notice = (await rows(h, "SELECT * FROM notices"))[0]
    assert notice["sent_at"] == "2026-04-01T01:06:00+00:00" and notice["closes_at"] == "2026-04-08T01:06:00+00:00"
    assert notice["posted_at"] == "2026-04-01T01:01:00+00:00" and notice["parts_sent"] == 1
    for person in (b.secretary, b.recorder, b.zhang, b.lisi):
        assert len(asks(h, person)) == 1
        assert "异议期至 2026-04-08 09:06" in plain(asks(h, person)[0].text or "")
    assert await count(h, "notice_members", "asked_at IS NOT NULL") == 4
    assert await tick(h, clock, APRIL_1 + timedelta(minutes=7)) == []
    assert len(notice_posts(h, b)) == 1
    forget_injected(h)


async def test_a_failure_among_the_confirmation_requests_asks_only_the_rest_on_the_retry(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
    fail_send(h, 3, BAD_GATEWAY)  # the group's notice and the first request go through; the second does not
    assert (b.branch.id, "notice", "2026-03", "failed") in await tick(h, clock, APRIL_1 + timedelta(minutes=1))
    assert len(notice_posts(h, b)) == 1
    assert (await rows(h, "SELECT sent_at FROM notices"))[0]["sent_at"] == "2026-04-01T01:01:00+00:00"
    assert [len(asks(h, p)) for p in (b.secretary, b.recorder, b.zhang, b.lisi)] == [1, 0, 0, 0]
    assert "异议期）至 2026-04-08 09:01" in notice_posts(h, b)[0]

    assert (b.branch.id, "notice", "2026-03", "done") in await tick(h, clock, APRIL_1 + timedelta(minutes=2))
    assert len(notice_posts(h, b)) == 1  # not posted again
    assert [len(asks(h, p)) for p in (b.secretary, b.recorder, b.zhang, b.lisi)] == [1, 1, 1, 1]
    assert (await rows(h, "SELECT closes_at FROM notices"))[0]["closes_at"] == "2026-04-08T01:01:00+00:00"
    forget_injected(h)


async def test_a_long_notice_cut_off_midway_sends_only_the_missing_messages(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
    names = [f"党员{i:02d}" for i in range(40)]
    await h.services.roster.import_roster(b.branch, as_actor(b.secretary), ("姓名\n" + "\n".join(names) + "\n").encode())
    members = {r["name"]: r["id"] for r in await rows(h, "SELECT id, name FROM members")}
    reason = "在村委会门口参加义务劳动，清理垃圾并修剪绿化带，" * 8
    for name in names:
        target = await h.services.roster.member_of_id(members[name])
        for day in (3, 4, 5):
            await h.services.points.record(b.branch, as_actor(b.recorder), target, "post_duty", Decimal(day), date(2026, 3, day),
                                           reason, reference=f"long:{name}:{day}")
    fail_send(h, 2, BAD_GATEWAY)
    assert (b.branch.id, "notice", "2026-03", "failed") in await tick(h, clock, APRIL_1 + timedelta(minutes=1))
    assert (await rows(h, "SELECT parts_sent, sent_at FROM notices"))[0] == {"parts_sent": 1, "sent_at": None}
    # A member's line changing in between does not change what the notice publishes.
    target = await h.services.roster.member_of_id(members["党员00"])
    late = await h.services.points.record(b.branch, as_actor(b.recorder), target, "post_duty", Decimal(1), date(2026, 3, 9),
                                         "后来补记", reference="long:late")
    assert (b.branch.id, "notice", "2026-03", "done") in await tick(h, clock, APRIL_1 + timedelta(minutes=2))
    texts = [plain(str(c.params["text"])) for c in h.world.sent(b.group.id, "sendMessage") if c.ok]
    texts = texts[next(i for i, t in enumerate(texts) if "党员积分公示" in t):]
    assert len(texts) >= 3 and sum("党员积分公示" in t for t in texts) == 1
    for name in names:
        assert sum(f"{name}：本月" in t for t in texts) == 1, name
    assert f"#{late.id}" not in "\n".join(texts)  # not in March's notice: April's lists it as a correction
    assert "共 44 名党员" in texts[-1]
    notice = (await rows(h, "SELECT * FROM notices"))[0]
    assert notice["parts_sent"] == len(texts) and notice["sent_at"] == "2026-04-01T01:02:00+00:00"
    forget_injected(h)


async def test_one_member_without_a_private_chat_does_not_stop_the_requests(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
    fail_send(h, 2, CHAT_NOT_FOUND)  # the secretary's request: "chat not found" (a deleted account)
    assert (b.branch.id, "notice", "2026-03", "done") in await tick(h, clock, APRIL_1 + timedelta(minutes=1))
    assert [len(asks(h, p)) for p in (b.secretary, b.recorder, b.zhang, b.lisi)] == [0, 1, 1, 1]
    reachable = {r["id"]: r["reachable"] for r in await rows(h, "SELECT id, reachable FROM members")}
    assert reachable[b.member_ids["secretary"]] == 0 and reachable[b.member_ids["zhang"]] == 1
    assert await count(h, "notice_members", "asked_at IS NOT NULL") == 4
    forget_injected(h)


# --- what changed in published periods -----------------------------------------------------------


async def test_later_entries_and_corrections_to_a_published_period_are_in_the_next_notice(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
    meeting, _ = await h.services.meetings.schedule(b.branch, as_actor(b.secretary), MeetingDraft(
        kind=MeetingKind.BRANCH_MEETING, starts_at=utc(2026, 3, 25, 11, 0), place="村委会", topic="三月党员大会"), "mt-1")
    swept = await record(h, b, "zhang", "post_duty", "8", date(2026, 3, 20), "本月巡逻3次")
    await tick(h, clock, APRIL_1 + timedelta(minutes=1))
    march = notice_posts(h, b)[0]
    assert "本期还有 1 场会议尚未结束点名：03-25 19:00 支部党员大会" in march
    assert "以往各期的补记与更正" not in march  # the branch's first notice: nothing published before

    # After March's notice: an objection withdraws a March entry, a March absence is entered late,
    # and an entry of March written and taken back again in between.
    await h.say(b.lisi, h.private(b.lisi), f"/object {swept} 他那个月没有巡逻")
    await h.tap(b.secretary, b.secretary.id, "撤销该分")
    reversal = (await rows(h, "SELECT id FROM ledger WHERE reverses_id = ?", swept))[0]["id"]
    clock.set(utc(2026, 4, 3, 2, 0))
    late = await record(h, b, "lisi", "study", "-5", date(2026, 3, 28), "补记：3月28日学习无故缺席", event="absent")
    gone = await record(h, b, "zhang", "study", "-5", date(2026, 3, 29), "记错了", event="absent")
    async with h.db.transaction() as conn:
        original = await ledger_repo.by_id(conn, gone)
        assert original is not None
        await ledger_repo.reverse(conn, original, reference="test:undo", actor_id=None, reason="记错")
    april_entry = await record(h, b, "zhang", "study", "-2", date(2026, 4, 10), "四月迟到", event="late")

    await tick(h, clock, utc(2026, 5, 1, 1, 1))
    april = "\n".join(last_notice(h, b))
    assert "2026年4月 党员积分公示" in april and f"#{april_entry} 04-10" in april
    corrections_block = april.split("以往各期的补记与更正")[1]
    assert f"#{late} 2026-03-28 李四 学习教育 · 无故缺席 -5　补记：3月28日学习无故缺席" in corrections_block
    assert f"#{reversal} 2026-03-20 张三 撤销记录 #{swept}" in corrections_block
    assert f"#{gone}" not in april  # written and taken back between the notices: nothing to publish
    assert "尚未结束点名" not in april  # the March meeting is March's, not April's
    april_notice = (await rows(h, "SELECT id FROM notices WHERE period_key = '2026-04'"))[0]["id"]
    published = {r["ledger_id"] for r in await rows(h, "SELECT ledger_id FROM notice_entries WHERE notice_id = ?", april_notice)}
    assert published == {april_entry, late}  # a reversal is shown, not objected to

    # The late entry can be objected to in April's window; the reversal cannot.
    calls = await h.say(b.zhang, h.private(b.zhang), f"/object {late} 他那天请过假")
    assert f"已收到您对记录 #{late}（李四）的异议" in said(calls)
    calls = await h.say(b.zhang, h.private(b.zhang), f"/object {reversal} 不对")
    assert f"记录 #{reversal} 不在已发布的公示中" in said(calls)
    objection = (await rows(h, "SELECT * FROM objections WHERE ledger_id = ?", late))[0]
    assert objection["notice_id"] == april_notice
    # The year so far in April's notice counts the corrections.
    assert "李四：本月" in april


def test_corrections_drop_rows_taken_back_in_between_and_rows_of_zero():
    def row(id_: int, value: str, reverses: int | None = None, day: int = 10) -> LedgerRow:
        return LedgerRow(id=id_, branch_id=1, member_id=1, item_code="study", event_code=None, value=Decimal(value),
                         occurred_on=date(2026, 3, day), source=Source.RECORDER, reference=f"r{id_}", actor_id=None,
                         reason=None, reverses_id=reverses, created_at=utc(2026, 4, 2))
    written = [row(10, "-5", day=20), row(11, "3"), row(12, "-3", reverses=11), row(13, "0"), row(14, "-8", reverses=2, day=5)]
    assert [r.id for r in corrections(written, reversed_ids={11})] == [14, 10]


async def test_with_every_feature_scheduled_the_notice_still_posts_once(h, clock):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
    await record(h, b, "zhang", "study", "-5", date(2026, 3, 10), "缺席", event="absent")
    await tick(h, clock, APRIL_1 + timedelta(minutes=1))
    await tick(h, clock, APRIL_1 + timedelta(minutes=2))
    assert len([t for t in posts(h, b.group.id) if "党员积分公示" in t]) == 1
    assert await count(h, "notices") == 1


# --- the domain, for all inputs ------------------------------------------------------------------------

# Lines as the notice renders them: escaped text, sometimes bold; never a tag across a line.
_word = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), min_size=1, max_size=70)
_line = st.builds(lambda text, bold: f"<b>{html.escape(text, quote=False)}</b>" if bold else html.escape(text, quote=False),
                  _word, st.booleans())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_line, min_size=1, max_size=6), max_size=12), st.integers(min_value=20, max_value=200))
def test_pack_keeps_every_line_in_order_and_every_message_within_the_visible_limit(blocks, limit):
    texts = ["\n".join(lines) for lines in blocks]
    messages = pack(texts, limit)
    assert all(visible_length(m) <= limit for m in messages)  # what Telegram counts: the text after parsing
    original = "".join(plain("".join(lines)) for lines in blocks)
    assert "".join(plain(m).replace("\n", "") for m in messages) == original
    for text in texts:  # a block that fits is never split
        if visible_length(text) <= limit:
            assert any(text in m for m in messages)


_values = st.sampled_from([Decimal(v) for v in ("-10", "-5", "-2", "1", "3", "10")])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 12), st.integers(1, 28), _values), max_size=25),
       st.lists(st.integers(0, 24), max_size=6), st.integers(1, 12))
def test_a_sum_schemes_period_net_is_what_its_rows_in_force_add_up_to(raw, reversed_at, month):
    rulebook = preset("sanmenxia")
    entries = [Entry(id=i + 1, item_code="repair_machinery", value=v, occurred_on=date(2026, m, d)) for i, (m, d, v) in enumerate(raw)]
    next_id = len(entries) + 1
    for index in sorted(set(reversed_at)):
        if index < len(raw):
            original = entries[index]
            entries.append(Entry(id=next_id, item_code=original.item_code, value=-original.value,
                                 occurred_on=original.occurred_on, reverses_id=original.id))
            next_id += 1
    _, first, last = period_of_month(2026, month, Period.QUARTER)
    summary = summarise(rulebook, 1, "x", entries, first, last, date(2026, 1, 1), None)
    in_force = [e for e in effective(entries) if first <= e.occurred_on <= last]
    assert summary.net == sum((e.value for e in in_force), Decimal(0))
    assert {e.id for e in summary.entries} == {e.id for e in in_force}
    assert all(e.reverses_id is None for e in summary.entries)


async def test_a_rubric_scheme_in_english_with_a_member_who_blocked_the_bot(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0), preset="zhangdian")
    await h.say(b.secretary, b.group, "/language en")
    h.world.block(b.lisi.id)
    done = await tick(h, clock, APRIL_1 + timedelta(minutes=1))
    assert (b.branch.id, "notice", "2026-03", "done") in done
    texts = [plain(str(c.params["text"])) for c in h.world.sent(b.group.id, "sendMessage") if "public notice" in str(c.params["text"])]
    assert len(texts) == 1
    text = texts[0]
    assert "public notice of members' points, 3/2026" in text
    assert "张三: this month " in text and "no changes this period" in text
    assert "waits for the democratic evaluation" in text  # 张店's year needs the democratic evaluation
    assert (await rows(h, "SELECT reachable FROM members WHERE id = ?", b.member_ids["lisi"]))[0]["reachable"] == 0
    assert confirm_message(h, b.zhang) is not None


def test_corrections_keep_a_zero_out_and_its_reversal_though_worth_0():
    """A zero-out (一票否决) is worth 0 points yet decides the year: written after a notice into its period,
    it is a correction the next notice must show, as is its reversal (which gives the year back)."""
    def row(id_: int, item: str, value: str, reverses: int | None = None) -> LedgerRow:
        return LedgerRow(id=id_, branch_id=1, member_id=1, item_code=item, event_code=None, value=Decimal(value),
                         occurred_on=date(2026, 3, 10), source=Source.RECORDER, reference=f"r{id_}", actor_id=None,
                         reason=None, reverses_id=reverses, created_at=utc(2026, 4, 2))
    rulebook = preset("jiancaoping")
    written = [row(20, "crime", "0"), row(21, "crime", "0", reverses=5)]
    assert [r.id for r in corrections(written, set(), rulebook)] == [20, 21]
    assert corrections(written, set()) == []  # without the rulebook a 0 changes nothing, as before
