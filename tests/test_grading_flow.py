"""/grade end to end: preview → tie choice → confirm → annual publicity (≥ 7 days) with an objection →
window end → finalise → the year locked and kept as a snapshot → /reopen, logged.

Offline through the real handlers (bot.harness with a FixedClock; scheduled work with engine.tick),
asserting on the Bot API calls and on the database. Ledger rows where the flow is not under test are
written directly (storage.ledger.append in a transaction), for speed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.records import NewLedgerRow, Source
from bot.errors import InvalidInput
from bot.harness import plain
from bot.domain.meetings import MeetingKind
from bot.services import Actor
from bot.services.meetings import MeetingDraft
from schedules import engine
from storage import ledger as ledger_repo
from tests.conftest import TestHarness, count, declare, member_row, popups, rows, said, setup_branch

KINDS = ("notice", "notice_remind", "notice_close", "grade_publicity", "grade_finalise")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def only_year_end(monkeypatch):
    """The notices' and the grading's producers alone (no dues close or assessment defaults writing rows)."""
    monkeypatch.setattr(engine, "PRODUCERS", [p for p in engine.PRODUCERS if p.kind in KINDS])


def as_actor(user) -> Actor:
    return Actor(user_id=user.id, name=user.full_name, username=user.username, language=user.language_code)


async def branch_at(h: TestHarness, clock, moment: datetime, **kwargs) -> SimpleNamespace:
    clock.set(moment)
    b = await setup_branch(h, **kwargs)
    await h.db.conn.execute("UPDATE branches SET created_at = ? WHERE id = ?", (moment.isoformat(), b.branch.id))
    await h.db.conn.commit()
    b.branch = await h.services.branches.by_id(b.branch.id)
    return b


async def join(h: TestHarness, b: SimpleNamespace, user_id: int, name: str, key: str) -> None:
    person = h.user(user_id, name, username=f"{key}_{user_id}")
    await h.say(person, b.group, "/join")
    await h.tap(b.secretary, b.group.id, "同意")
    await h.say(person, h.private(person), "/start")
    setattr(b, key, person)
    row = await member_row(h, user_id, b.branch.id)
    assert row is not None and row["status"] == "approved"
    b.member_ids[key] = row["id"]


async def put(h: TestHarness, b: SimpleNamespace, who: str, item: str, value: str, day: date, event: str | None = None) -> int:
    """A ledger row written directly (the flow of writing it is not under test here)."""
    async with h.db.transaction() as conn:
        row = await ledger_repo.append(conn, NewLedgerRow(
            branch_id=b.branch.id, member_id=b.member_ids[who], item_code=item, event_code=event, value=Decimal(value),
            occurred_on=day, source=Source.RECORDER, reference=f"t:{who}:{item}:{day}:{value}:{event}",
            actor_id=b.member_ids["secretary"], reason=f"{item} {day}"))
    assert row is not None
    return row.id


async def tick(h: TestHarness, clock, moment: datetime) -> list[tuple[int, str, str, str]]:
    clock.set(moment)
    return await engine.tick(h.app, moment)


def texts(h: TestHarness, chat_id: int) -> list[str]:
    return [plain(str(c.params.get("text", ""))) for c in h.world.sent(chat_id) if c.method in ("sendMessage", "editMessageText")]


def alerts(calls) -> str:
    return "\n".join(plain(str(c.params.get("text", ""))) for c in popups(calls))


def data_of(h: TestHarness, chat_id: int, prefix: str) -> list[tuple[str, str]]:
    for message in reversed(h.world.messages(chat_id)):
        found = [(t, d) for t, d in h.world.buttons(message) if d.startswith(prefix)]
        if found:
            return found
    return []


async def xishui_year(h: TestHarness, clock) -> SimpleNamespace:
    """A 浠水 branch through 2026: seven people, hand-computed years.

    A month is 40 (obligations) + 20 (two posts claimed, 10 each) = 60 before assessments and deeds.
    张三, 李四: duties 15 + one deed 10 every month → 85 (excellent, a tie across the 20% quota: 5 graded → 1 place).
    王书记: duties 10 → 70 (qualified ★★★★). 李记录: two study absences (−5) → (600 + 110) / 12 = 59.17 (★★, mentoring).
    赵六 (probationary): law −10 twice, study late −2 twice → 696 / 12 = 58 (extend probation).
    钱七: exempt. 孙八 joined in July: 6 months of 60 → 60 (basically qualified ★★★).
    """
    b = await branch_at(h, clock, utc(2026, 1, 5, 2, 0))
    await h.say(b.secretary, b.group, f"/role @{b.lisi.username} deputy")
    await join(h, b, 1005, "赵六", "zhao")
    await join(h, b, 1006, "钱七", "qian")
    await h.say(b.secretary, b.group, f"/state {b.member_ids['zhao']} probationary")
    await h.say(b.secretary, b.group, f"/state {b.member_ids['qian']} exempt 年老体弱")
    clock.set(utc(2026, 7, 10, 2, 0))
    await join(h, b, 1007, "孙八", "sun")
    for month in range(1, 13):
        day = date(2026, month, 15)
        for who in ("zhang", "lisi"):
            await put(h, b, who, "post_duty", "15", day)
            await put(h, b, who, "post_deed", "10", day)
        await put(h, b, "secretary", "post_duty", "10", day)
    for month in (3, 6):
        await put(h, b, "recorder", "study", "-5", date(2026, month, 10), event="absent")
    for month in (2, 4):
        await put(h, b, "zhao", "law", "-10", date(2026, month, 8), event="violation")
        await put(h, b, "zhao", "study", "-2", date(2026, month, 9), event="late")
    return b


# --- the whole year end ------------------------------------------------------------------------------------


async def test_grade_preview_tie_publicity_objection_finalise_lock_and_reopen(h, clock, only_year_end, monkeypatch):
    b = await xishui_year(h, clock)
    secretary, sec_chat = b.secretary, h.private(b.secretary)
    march = (await rows(h, "SELECT id FROM ledger WHERE member_id = ? AND occurred_on = '2026-03-10'", b.member_ids["recorder"]))[0]["id"]

    # A meeting on 28 December that nobody closes before the year is graded.
    clock.set(utc(2026, 12, 20, 2, 0))
    meeting, _ = await h.services.meetings.schedule(b.branch, as_actor(secretary), MeetingDraft(
        kind=MeetingKind.BRANCH_MEETING, starts_at=utc(2026, 12, 28, 2, 0), place="村部", topic="年终学习"), "m-1228")

    # 张三 declares a deed on 30 December; nobody decides it before the year is graded.
    clock.set(utc(2026, 12, 30, 2, 0))
    declaration = await declare(h, b.zhang)
    assert declaration is not None

    # New Year's Day: November's and December's notices go out (the year's last period is published).
    done = await tick(h, clock, utc(2027, 1, 1, 1, 1))
    assert (b.branch.id, "notice", "2026-12", "done") in done

    # The deputy may not grade; in the group /grade points to the private chat.
    calls = await h.say(b.lisi, h.private(b.lisi), "/grade 2026")
    assert "只有以下角色可以这样做：书记。" in said(calls, b.lisi.id) and await count(h, "grade_rounds") == 0
    calls = await h.say(secretary, b.group, "/grade")
    assert "私聊" in said(calls, b.group.id)

    # The preview.
    clock.set(utc(2027, 1, 2, 2, 0))
    calls = await h.say(secretary, sec_chat, "/grade 2026")
    shown = said(calls, secretary.id)
    assert "2026年度党员积分评定预览" in shown
    assert "参加评定 5 人（名单共 7 人）" in shown
    assert "优秀 ★★★★★（80分及以上）：0 人" in shown and "合格 ★★★★（70分及以上）：3 人" in shown  # the tied two wait in the overflow band
    assert "不合格 ★★（55分及以上）：1 人、不合格 ★（50分及以上）：0 人、不合格 无星（50分以下）：0 人" in shown
    assert "本次最多 1 人" in shown
    assert "1. 张三　85 分　合格 ★★★★　〔并列待选〕" in shown
    assert "1. 李四　85 分　合格 ★★★★　〔并列待选〕" in shown
    assert "3. 王书记　70 分　合格 ★★★★" in shown
    assert "4. 孙八　60 分　基本合格 ★★★" in shown
    assert "5. 李记录　59.17 分　不合格 ★★　〔一对一结对帮扶〕" in shown
    assert "— 赵六　58 分（不定等次）　〔预备党员，不定等次、延长预备期〕" in shown
    assert "— 钱七　不计分　〔免于评定〕" in shown
    assert "延长预备期：1 人（赵六）" in shown
    assert "结果尚未确定" in shown
    assert "未确认的月度公示" in shown and "张三(2)" in shown  # November and December not confirmed
    assert "还没有公示：2026-01" in shown  # no notices before November (the test wrote the ledger directly)
    assert any(c.method == "sendPhoto" for c in calls)  # the distribution chart
    assert all(len(plain(str(c.params.get("text", "")))) <= 4096 for c in calls)
    buttons = data_of(h, secretary.id, "gr:")
    labels = [t for t, _ in buttons]
    assert labels[:2] == ["☐ 张三 85", "☐ 李四 85"] and "✅ 确认并公示" in labels

    # Confirming with the tie open is refused; then the secretary picks 张三.
    calls = await h.tap(secretary, secretary.id, "确认并公示")
    assert "请先在其中选出 1 人" in alerts(calls) and await count(h, "grade_rounds") == 0
    calls = await h.tap(secretary, secretary.id, "☐ 张三")
    assert "已选：张三" in said(calls, secretary.id)
    calls = await h.tap(secretary, secretary.id, "☐ 李四")  # a second pick: only one place
    assert "只能选 1 人" in alerts(calls)
    result, _ = await h.services.grading.preview(b.branch, as_actor(secretary), 2026, {b.member_ids["zhang"]})
    previewed = {line.member_id: line for line in result.lines}
    assert previewed[b.member_ids["zhang"]].band_code == "excellent"
    assert previewed[b.member_ids["lisi"]].band_code == "qualified" and "quota" in previewed[b.member_ids["lisi"]].flags

    # Confirm: the annual publicity in the group, 7 days from now, and each scored member asked to confirm.
    confirm_message, confirm_data = h.find_button(secretary.id, "确认并公示")
    calls = await h.press(b.lisi, confirm_message, confirm_data)  # the button carries no authority
    assert "只有以下角色可以这样做：书记。" in alerts(calls) and await count(h, "grade_rounds") == 0
    calls = await h.press(secretary, confirm_message, confirm_data)
    assert "正在公示" in alerts(calls)
    group = "\n".join(texts(h, b.group.id))
    assert "兰溪镇红星村党支部 2026年度党员积分、等次公示" in group
    assert "公示期 7 天，至 2027-01-09 10:00" in group
    assert "1. 张三　85 分　优秀 ★★★★★" in group
    assert "1. 李四　85 分　合格 ★★★★　〔优秀名额已满〕" in group
    assert "一对一结对帮扶" not in group and "延长预备期" not in group  # consequences stay with the secretary
    assert "在群里公示 7 天，至 2027-01-09 10:00" in said(calls, secretary.id)
    stored = (await rows(h, "SELECT * FROM grade_rounds"))[0]
    assert stored["status"] == "publicity" and stored["round"] == 1 and stored["tie_choice"] == f"[{b.member_ids['zhang']}]"
    notice = (await rows(h, "SELECT * FROM notices WHERE period_key = '2026'"))[0]
    assert notice["closes_at"] == "2027-01-09T02:00:00+00:00" and notice["sent_at"] is not None
    assert await count(h, "notice_members", "notice_id = ?", notice["id"]) == 6  # everyone scored (not 钱七)
    assert await count(h, "notice_entries", "notice_id = ? AND ledger_id = ?", notice["id"], march) == 1
    assert await count(h, "grade_results", "stage = 'published'") == 7
    ask = [m for m in h.world.messages(b.zhang.id) if "2026年度积分、等次公示" in (m.text or "")]
    assert ask and "您的年度结果：85 分，优秀 ★★★★★" in (ask[-1].text or "")
    assert [d for _, d in h.world.buttons(ask[-1])] == [f"nt:cf:{notice['id']}", f"nt:ds:{notice['id']}"]
    calls = await h.press(secretary, confirm_message, confirm_data)  # a double tap
    assert "已经确认并在公示中" in alerts(calls) and await count(h, "grade_rounds") == 1

    # During the window: /grade shows the state; finalising is refused.
    calls = await h.say(secretary, sec_chat, "/grade")
    assert "2026年度结果正在公示，公示期至 2027-01-09 10:00" in said(calls, secretary.id)
    calls = await h.say(secretary, sec_chat, "/grade finalise 2026")
    assert "公示期还没有结束（至 2027-01-09 10:00）" in said(calls, secretary.id)

    # An objection to one of 李记录's absences, upheld → withdrawn by the secretary (a reversing row).
    clock.set(utc(2027, 1, 4, 2, 0))
    calls = await h.say(b.zhang, h.private(b.zhang), f"/object {march} 那天他请过假")
    assert "已收到您对记录" in said(calls, b.zhang.id)
    calls = await h.tap(secretary, secretary.id, "撤销该分")
    assert "已撤销该分" in alerts(calls)
    assert await count(h, "ledger", "reverses_id = ?", march) == 1

    # The window ends: the group hears the objections' summary; the secretary gets the finalise screen.
    done = await tick(h, clock, utc(2027, 1, 9, 2, 1))
    assert (b.branch.id, "grade_finalise", "2026", "done") in done
    assert (b.branch.id, "notice_close", "2026", "done") in done
    assert any("2026年度 积分公示的异议期已结束" in t or "2026年度积分公示的异议期已结束" in t for t in texts(h, b.group.id))
    reminder = "\n".join(texts(h, secretary.id)[-6:])
    assert "公示期已满" in reminder
    assert "李记录：59.17 分，不合格 ★★ → 59.58 分，不合格 ★★" in reminder
    assert "🔒 定级并锁定" in [t for t, _ in data_of(h, secretary.id, "gr:")]

    # Finalise: the snapshot is stored, the year locked, the documents sent to the secretary and the recorder.
    sent_documents: list[tuple] = []

    async def year_documents(branch, year, lang=None, *, personal=False):
        sent_documents.append((branch.id, year, personal))
        return [(f"{year}-summary.xlsx", b"PK\x03\x04 xlsx"), (f"{year}-ledger.csv", b"\xef\xbb\xbfid\n")]

    monkeypatch.setattr(h.services.exports, "year_documents", year_documents)
    calls = await h.tap(secretary, secretary.id, "定级并锁定")
    assert "已定级并锁定" in alerts(calls)
    assert (await rows(h, "SELECT status FROM grade_rounds"))[0]["status"] == "final"
    assert await rows(h, "SELECT branch_id, year FROM locked_years") == [{"branch_id": b.branch.id, "year": 2026}]
    assert "2026年度党员积分等次已确定" in "\n".join(texts(h, b.group.id))
    # built twice: with personal data for the secretary's copy, without for the recorder's
    assert sorted(sent_documents) == [(b.branch.id, 2026, False), (b.branch.id, 2026, True)]
    documents = [c for c in h.world.calls if c.method == "sendDocument"]
    assert sorted({int(c.params["chat_id"]) for c in documents}) == sorted([secretary.id, b.recorder.id])

    snapshot = await h.services.grading.snapshot(b.branch.id, 2026)
    assert snapshot is not None
    final = {line.member_id: line for line in snapshot.lines}
    for member_id, line in previewed.items():  # the snapshot equals the preview, but for the objection's change
        if member_id == b.member_ids["recorder"]:
            assert final[member_id].figure == Decimal("59.58") and final[member_id].band_code == "unqualified_2"
        else:
            assert final[member_id] == line
    assert snapshot == await h.services.grading.compute(b.branch, 2026, {b.member_ids["zhang"]})
    assert await count(h, "grade_results", "stage = 'final'") == 7

    # Locked: any write dated 2026 is refused with the clear message — a decision on the pending
    # declaration (through the buttons), a recorder's entry, a reversal.
    calls = await h.tap(b.recorder, b.recorder.id, "通过")
    assert "2026年度积分已定级锁定" in alerts(calls) and "/reopen 2026" in alerts(calls)
    assert (await rows(h, "SELECT status FROM declarations WHERE id = ?", declaration))[0]["status"] == "pending"
    target = await h.services.roster.member_of_id(b.member_ids["zhang"])
    with pytest.raises(InvalidInput) as refused:
        await h.services.points.record(b.branch, as_actor(b.recorder), target, "law", Decimal(-10), date(2026, 12, 15),
                                       "补记", reference="late-entry", event_code="violation")
    assert refused.value.key == "year.locked" and refused.value.params == {"year": 2026}
    with pytest.raises(InvalidInput):
        await h.services.points.reverse(b.branch, as_actor(secretary), march + 1, "更正")
    with pytest.raises(InvalidInput) as refused:  # the late close of a December meeting books absences
        await h.services.meetings.close(meeting.id, as_actor(b.recorder))
    assert refused.value.key == "year.locked"
    assert (await rows(h, "SELECT status FROM meetings WHERE id = ?", meeting.id))[0]["status"] == "scheduled"
    rows_2026 = await count(h, "ledger")
    assert await h.services.points.record(b.branch, as_actor(b.recorder), target, "law", Decimal(-10), date(2027, 1, 9),
                                          "新的一年", reference="new-year", event_code="violation") is not None
    assert await count(h, "ledger") == rows_2026 + 1  # the next year is open

    # /grade for the finalised year is refused; so is /reopen by the deputy or without a reason.
    calls = await h.say(secretary, sec_chat, "/grade 2026")
    assert "2026年度已于 2027-01-09 10:01 定级并锁定" in said(calls, secretary.id)
    calls = await h.say(b.lisi, h.private(b.lisi), "/reopen 2026 想改")
    assert "只有以下角色可以这样做：书记。" in said(calls, b.lisi.id) and await count(h, "grade_reopens") == 0
    calls = await h.say(secretary, sec_chat, "/reopen 2026")
    assert "请写明重新开放的理由" in said(calls, secretary.id)

    # /reopen with a reason: logged, unlocked, announced; the snapshot stays as history; /grade again.
    clock.set(utc(2027, 1, 12, 2, 0))
    calls = await h.say(secretary, sec_chat, "/reopen 2026 张三12月30日的申报尚未审核")
    assert "2026年度已重新开放" in said(calls, secretary.id)
    logged = await rows(h, "SELECT * FROM grade_reopens")
    assert len(logged) == 1 and logged[0]["reason"] == "张三12月30日的申报尚未审核"
    assert logged[0]["reopened_by"] == b.member_ids["secretary"] and logged[0]["reopened_at"] == "2027-01-12T02:00:00+00:00"
    assert "重新开放以便更正" in "\n".join(texts(h, b.group.id))
    assert await count(h, "locked_years") == 0
    assert (await rows(h, "SELECT status FROM grade_rounds"))[0]["status"] == "reopened"
    assert await h.services.grading.snapshot(b.branch.id, 2026) is None
    history = await h.services.grading.history(b.branch.id, 2026)
    assert len(history) == 1 and history[0][1] == snapshot
    calls = await h.say(secretary, sec_chat, "/reopen 2026 再来一次")
    assert "还没有定级锁定" in said(calls, secretary.id)

    calls = await h.tap(b.recorder, b.recorder.id, "通过")  # the declaration can be decided now
    assert (await rows(h, "SELECT status FROM declarations WHERE id = ?", declaration))[0]["status"] == "approved"
    calls = await h.say(secretary, sec_chat, "/grade 2026")
    assert "2026年度党员积分评定预览" in said(calls, secretary.id)


async def test_grade_refusals_before_the_year_ends_and_before_its_last_notice(h, clock, only_year_end):
    b = await xishui_year(h, clock)
    secretary, chat = b.secretary, h.private(b.secretary)
    clock.set(utc(2026, 12, 20, 2, 0))  # December: the year so far may be previewed, not publicised
    calls = await h.say(secretary, chat, "/grade")
    assert "2026年还没有结束（今天是 2026-12-20）" in said(calls, secretary.id)
    await h.tap(secretary, secretary.id, "☐ 张三")
    calls = await h.tap(secretary, secretary.id, "确认并公示")
    assert "2026年还没有结束" in alerts(calls)
    clock.set(utc(2027, 1, 1, 0, 30))  # 08:30 on New Year's Day: December's notice is due at 09:00
    await h.say(secretary, chat, "/grade 2026")
    await h.tap(secretary, secretary.id, "☐ 张三")
    calls = await h.tap(secretary, secretary.id, "确认并公示")
    assert "2026-11 的积分公示还没有发出（应于 2026-12-01 09:00 发出）" in alerts(calls)
    assert await count(h, "grade_rounds") == 0 and await count(h, "notices", "period_key = '2026'") == 0
    calls = await h.say(secretary, chat, "/grade 1999")
    assert "不能评定 1999 年度" in said(calls, secretary.id)
    calls = await h.say(secretary, chat, "/grade abc")
    assert "用法：/grade" in said(calls, secretary.id)

    # A change between the preview and the confirmation: refused, and the fresh preview shown.
    await tick(h, clock, utc(2027, 1, 1, 1, 1))
    await h.say(secretary, chat, "/grade 2026")
    await h.tap(secretary, secretary.id, "☐ 张三")
    await put(h, b, "sun", "post_duty", "20", date(2026, 9, 15))
    calls = await h.tap(secretary, secretary.id, "确认并公示")
    assert "积分在您预览之后有了变化" in alerts(calls)
    assert "4. 孙八　63.33 分　基本合格 ★★★" in said(calls, secretary.id)
    assert await count(h, "grade_rounds") == 0
    calls = await h.tap(secretary, secretary.id, "取消")
    assert "已取消" in said(calls, secretary.id)


async def test_zhangdian_without_democratic_evaluations_is_provisional(h, clock, only_year_end):
    b = await branch_at(h, clock, utc(2026, 1, 5, 2, 0), preset="zhangdian", chat_id=-1001000000009, title="张店某支部")
    await put(h, b, "zhang", "meetings", "-10", date(2026, 3, 10), event="absent")
    await tick(h, clock, utc(2027, 1, 1, 1, 1))
    clock.set(utc(2027, 1, 2, 2, 0))
    calls = await h.say(b.secretary, h.private(b.secretary), "/grade 2026")
    shown = said(calls, b.secretary.id)
    assert "民主评议未完成，只按量化积分计算（结果暂定）" in shown
    assert "民主评议未完成：4 人" in shown
    assert "结果尚未确定" in shown
    calls = await h.tap(b.secretary, b.secretary.id, "确认并公示")
    assert "民主评议未完成，结果只是暂定，不能公示或定级" in alerts(calls)
    assert await count(h, "grade_rounds") == 0


# --- the lock, for all rows ---------------------------------------------------------------------------------


async def _locked_db():
    from storage.db import Database

    db = await Database(":memory:").open()
    conn = db.conn
    for branch_id in (1, 2):
        await conn.execute("INSERT INTO branches (id, chat_id, title, preset, created_by, created_at) VALUES (?, ?, ?, 'xishui', 1, ?)",
                           (branch_id, -branch_id, f"b{branch_id}", "2026-01-01T00:00:00+00:00"))
        await conn.execute("INSERT INTO members (id, branch_id, user_id, name, status, created_at) VALUES (?, ?, ?, ?, 'approved', ?)",
                           (branch_id, branch_id, branch_id, f"m{branch_id}", "2026-01-01T00:00:00+00:00"))
    await conn.execute("INSERT INTO notices (id, branch_id, period_key, first_day, last_day, due_at, posted_at, closes_at)"
                       " VALUES (1, 1, '2026', '2026-01-01', '2026-12-31', 'x', 'x', 'x')")
    await conn.execute("INSERT INTO grade_rounds (id, branch_id, year, round, status, rulebook_code, notice_id, publicity_days,"
                       " published, published_upto, confirmed_by, confirmed_at) VALUES (1, 1, 2026, 1, 'final', 'xishui', 1, 7, '{}', 0, 1, 'x')")
    await conn.execute("INSERT INTO locked_years (branch_id, year, round_id, locked_at) VALUES (1, 2026, 1, 'x')")
    await conn.commit()
    return db


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from((1, 2)), st.dates(date(2025, 1, 1), date(2027, 12, 31)),
                          st.sampled_from(list(Source))), min_size=1, max_size=12))
def test_the_lock_refuses_exactly_the_rows_dated_in_a_locked_year_of_that_branch(writes):
    import asyncio

    async def scenario() -> None:
        db = await _locked_db()
        try:
            for index, (branch_id, day, source) in enumerate(writes):
                row = NewLedgerRow(branch_id=branch_id, member_id=branch_id, item_code="law", event_code="violation",
                                   value=Decimal(-10), occurred_on=day, source=source, reference=f"r{index}")
                locked = branch_id == 1 and day.year == 2026
                try:
                    async with db.transaction() as conn:
                        written = await ledger_repo.append(conn, row)
                except InvalidInput as error:
                    assert locked and error.key == "year.locked" and error.params == {"year": 2026}
                    continue
                assert not locked and written is not None
                async with db.transaction() as conn:  # its reversal is dated like it: allowed as well
                    assert await ledger_repo.reverse(conn, written, reference=f"rev{index}", actor_id=None, reason="x") is not None
            async with db.read() as conn:
                async with conn.execute("SELECT COUNT(*) FROM ledger WHERE branch_id = 1 AND occurred_on LIKE '2026-%'") as cursor:
                    assert (await cursor.fetchone())[0] == 0
        finally:
            await db.close()

    asyncio.run(scenario())
