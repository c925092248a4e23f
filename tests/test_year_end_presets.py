"""A whole simulated 2026 for each shipped preset, through the real handlers, graded at year end.

Each test sets up a branch with /setup and the preset's button, brings members in with /join and the
secretary's approval, gives roles with /role and states with /state, then walks the FixedClock through the
year month by month: members /declare deeds and the recorder approves them on the card, the recorder
/records deductions (dated inside the open declaration period), 张店's recorder fills the monthly /assess
screens and the democratic evaluation runs through /evaluate; at each notice moment the scheduled work
runs (``schedules.engine.tick``) so the month closes, unassessed items get their defaults and the notice
goes out, as in real life. In January 2027 the secretary runs /grade → (picks among a tie) → Confirm →
the annual publicity in the group → the window ends → the finalise button → the snapshot.

Bulk history where no handler is the point (the same entry for many members and months) is written
through ``services.points.record`` with dates in the month the clock is in; each place says so.

Every expected figure is computed by hand from the preset files (bot/presets/*.toml) in the comments.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import telegram

from bot.errors import InvalidInput
from bot.harness import plain
from bot.services import Actor
from schedules import engine
from tests.conftest import TestHarness, card_message, count, declare, member_row, popups, rows, said, setup_branch

# --- helpers ---------------------------------------------------------------------------------------------


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def noon(year: int, month: int, day: int) -> datetime:
    """10:00 in Asia/Shanghai (the branches' timezone)."""
    return utc(year, month, day, 2, 0)


def as_actor(user: telegram.User) -> Actor:
    return Actor(user_id=user.id, name=user.full_name, username=user.username, language=user.language_code)


def alerts(calls) -> str:
    return "\n".join(plain(str(c.params.get("text", ""))) for c in popups(calls))


def texts(h: TestHarness, chat_id: int) -> str:
    return "\n".join(plain(str(c.params.get("text", ""))) for c in h.world.sent(chat_id)
                     if c.method in ("sendMessage", "editMessageText"))


async def new_branch(h: TestHarness, clock, preset: str, title: str) -> SimpleNamespace:
    """/setup with the preset's button, 李记录 the recorder, 张三 and 李四 members (conftest.setup_branch), on
    5 January 2026."""
    moment = noon(2026, 1, 5)
    clock.set(moment)
    b = await setup_branch(h, preset=preset, title=title)
    await h.db.conn.execute("UPDATE branches SET created_at = ? WHERE id = ?", (moment.isoformat(), b.branch.id))
    await h.db.conn.commit()
    b.branch = await h.services.branches.by_id(b.branch.id)
    b.users = {"secretary": b.secretary, "recorder": b.recorder, "zhang": b.zhang, "lisi": b.lisi}
    return b


async def join(h: TestHarness, b: SimpleNamespace, key: str, user_id: int, name: str) -> telegram.User:
    """/join in the group, the secretary taps 同意, the new member opens the private chat."""
    person = h.user(user_id, name, username=f"{key}_{user_id}")
    await h.say(person, b.group, "/join")
    await h.tap(b.secretary, b.group.id, "同意")
    await h.say(person, h.private(person), "/start")
    row = await member_row(h, user_id, b.branch.id)
    assert row is not None and row["status"] == "approved"
    b.member_ids[key] = row["id"]
    b.users[key] = person
    return person


async def bulk(h: TestHarness, b: SimpleNamespace, by: str, who: str, item: str, value: str, day: date,
               event: str | None = None) -> None:
    """Bulk history through the service (no handler is the point here): a recorder's entry dated in the
    month the clock is in."""
    target = await h.services.roster.member_of_id(b.member_ids[who])
    row = await h.services.points.record(b.branch, as_actor(b.users[by]), target, item, Decimal(value), day,
                                         f"{item} {day}", reference=f"bulk:{who}:{item}:{day}:{value}", event_code=event)
    assert row is not None


async def record(h: TestHarness, b: SimpleNamespace, by: str, text: str) -> str:
    """/record in the recorder's (or secretary's) private chat; returns what the bot said. A zero-out waits
    for its confirm button: pressed here."""
    user = b.users[by]
    calls = await h.say(user, h.private(user), text)
    if "rz:ok:" in str([h.world.buttons(c) for c in calls if c.method == "sendMessage"]):
        calls = await h.tap(user, user.id, "⚠ 确认记录")
    return said(calls, user.id)


async def approve(h: TestHarness, b: SimpleNamespace, by: str, number: int, value: str | None = None) -> str:
    """The decider taps 通过 on the declaration's card (or ✏️ 调整分值 and a value first)."""
    user = b.users[by]
    message = card_message(h, user.id, number)
    if value is None:
        calls = await h.press(user, message, f"dc:ok:{number}")
    else:
        await h.press(user, message, f"dc:adj:{number}")
        message = card_message(h, user.id, number)
        assert (value, f"dc:v:{number}:{value}") in h.world.buttons(message)
        calls = await h.press(user, message, f"dc:v:{number}:{value}")
    return alerts(calls)


async def close_month(h: TestHarness, clock, year: int, month: int) -> list[tuple[int, str, str, str]]:
    """The month's notice moment (the 1st of the next month, 09:00 local = 01:00 UTC) and a minute: the tick
    closes the month (dues), gives unassessed items their defaults and posts the notice."""
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    moment = utc(year, month, 1, 1, 1)
    clock.set(moment)
    return await engine.tick(h.app, moment)


async def grade_lines(h: TestHarness, b: SimpleNamespace, year: int = 2026, tie: set[int] | None = None) -> dict:
    result, _ = await h.services.grading.preview(b.branch, as_actor(b.secretary), year, tie)
    return {line.name: line for line in result.lines}


async def publicise_and_finalise(h: TestHarness, clock, b: SimpleNamespace, closes: datetime) -> tuple[str, str]:
    """Confirm (the preview is on the secretary's screen), the annual publicity in the group, the window's
    end (a tick 7 days later), the finalise button. Returns (the group's publicity, the finalise screen)."""
    sec = b.secretary
    before = len(h.world.sent(b.group.id))
    calls = await h.tap(sec, sec.id, "确认并公示")
    assert "正在公示" in alerts(calls), alerts(calls)
    publicity = "\n".join(plain(str(c.params.get("text", ""))) for c in h.world.sent(b.group.id)[before:]
                          if c.method == "sendMessage")
    assert "2026年度党员积分、等次公示" in publicity
    local = closes.astimezone(ZoneInfo(b.branch.timezone)).strftime("%Y-%m-%d %H:%M")
    assert f"公示期 7 天，至 {local}" in publicity
    # During the window the finalise is refused.
    calls = await h.say(sec, h.private(sec), "/grade finalise 2026")
    assert "公示期还没有结束" in said(calls, sec.id)
    before = len(h.world.sent(sec.id))
    clock.set(closes - timedelta(minutes=1))
    done = await engine.tick(h.app, closes - timedelta(minutes=1))  # a minute before the window closes
    assert (b.branch.id, "grade_finalise", "2026", "done") not in done
    after = closes + timedelta(minutes=1)
    clock.set(after)
    done = await engine.tick(h.app, after)
    assert (b.branch.id, "grade_finalise", "2026", "done") in done
    reminder = "\n".join(plain(str(c.params.get("text", ""))) for c in h.world.sent(sec.id)[before:]
                         if c.method == "sendMessage")
    assert "公示期已满" in reminder
    message, data = h.find_button(sec.id, "定级并锁定")
    calls = await h.press(sec, message, data)
    assert "已定级并锁定" in alerts(calls), alerts(calls)
    finals = await count(h, "grade_results", "stage = 'final'")
    calls = await h.press(sec, message, data)  # a double tap
    assert "定级并锁定，结果不再变化" in alerts(calls), alerts(calls)
    assert await count(h, "grade_results", "stage = 'final'") == finals
    assert await rows(h, "SELECT year FROM locked_years WHERE branch_id = ?", b.branch.id) == [{"year": 2026}]
    assert "2026年度党员积分等次已确定" in texts(h, b.group.id)
    return publicity, reminder


# --- 浠水 ---------------------------------------------------------------------------------------------------


async def test_xishui_year(h, clock):
    """浠水 (bot/presets/xishui.toml): a month = obligations 40 (study 10 + org_life 10 + dues 10 + law 10,
    allotments that start full) + posts ≤ 60 (nobody claims posts in the bot, so everyone counts the
    rulebook's 2: post_claim 2 × 10 = 20 automatically, post_duty 0–20 assessed, default 0; post_deed 10 per
    approved declaration, ≤ 20). The year = the mean of the months the member belonged + the year's bonus
    (≤ 10). Stars ≥ 80 ★5 / 70 ★4 / 60 ★3 / 55 ★2 / 50 ★ / below none; excellent ≤ floor(20% × graded).

    A plain month is 40 + 20 = 60; post_duty d makes it 60 + d.
      张三   d 20 every month → 80; bonus 4 (national, declared) + 3 (city, declared) + 2 (economy, /record)
             + 2 (public welfare, /record) = 11 → capped 10                                    → 90.00 ★★★★★
      李四   d 20 → 80; bonus 4 + 1                                                             → 85.00
      周七   d 15 → 75; bonus 4 + 3 + 2 + 2 = 11 → 10                                           → 85.00
      吴八   d 20 → 80; bonus 2 + 2 + 1                                                         → 85.00
      王书记 d 20, but 19.94 in December (/record): (11 × 80 + 79.94) / 12 = 959.94 / 12 = 79.995, published
             80.00 (half up, decision 1): the band is decided on that, so he qualifies for excellent —
             but is outside the quota                                                      → 80.00 ★★★★ quota
      李记录 d 10 → 70 (band edge)                                                              → 70.00 ★★★★
      郑九   d 10, but 9 in May: (11 × 70 + 69) / 12 = 839 / 12 = 69.9166…                      → 69.92 ★★★
      孙八   joined in July: Jul–Dec, d 0; one deed in September (+10):
             (5 × 60 + 70) / 6 = 370 / 6 = 61.666… (not /12: 30.83, nor Jan–Jun as 60s: 60.83)  → 61.67 ★★★
      钱十   dues not at the standard amount (−10) Jan–Jun: (6 × 50 + 6 × 60) / 12 = 660 / 12  → 55.00 ★★ (edge)
      冯十一 law violation (−10) every month: 50 × 12 / 12                                      → 50.00 ★ (edge)
      陈预备 probationary; three study lates (−2, /record): (720 − 6) / 12 = 714 / 12            → 59.50, not graded,
             extend probation
      褚免考 exempt (年老体弱): listed, not scored, not graded.
      秦十二 joined in November: 2 months of 60 (fewer than 3, decision 8)                     → 60.00, not graded
    Graded: 10 → excellent places floor(0.2 × 10) = 2. 张三 (90) takes one; 李四, 周七, 吴八 tie at 85 for the
    other: the secretary picks 周七; 李四 and 吴八 get ★★★★ "quota", as does 王书记 (80).
    Ranks (1, 2, 2, 2, 5 …): 张三 1; 周七/李四/吴八 2; 王书记 5; 李记录 6; 郑九 7; 孙八 8; 钱十 9; 冯十一 10.
    Unqualified this year (1 year) → mentoring for 钱十 and 冯十一.
    """
    b = await new_branch(h, clock, "xishui", "兰溪镇红星村党支部")
    for key, uid, name in (("zhou", 1011, "周七"), ("wu", 1012, "吴八"), ("zheng", 1013, "郑九"), ("qian", 1014, "钱十"),
                           ("feng", 1015, "冯十一"), ("chen", 1016, "陈预备"), ("chu", 1017, "褚免考")):
        await join(h, b, key, uid, name)
    calls = await h.say(b.secretary, b.group, f"/state {b.member_ids['chen']} probationary")
    assert "陈预备" in said(calls, b.group.id)
    calls = await h.say(b.secretary, b.group, f"/state {b.member_ids['chu']} exempt")  # a reason is required
    assert (await member_row(h, b.users["chu"].id, b.branch.id))["state"] == "active"
    await h.say(b.secretary, b.group, f"/state {b.member_ids['chu']} exempt 年老体弱")
    chu = await member_row(h, b.users["chu"].id, b.branch.id)
    assert chu["state"] == "exempt" and chu["state_reason"] == "年老体弱"
    ids = b.member_ids

    duty = {"zhang": "20", "lisi": "20", "zhou": "15", "wu": "20", "secretary": "20", "recorder": "10", "zheng": "10"}
    bonuses = {  # month → [(member, item)] through the service
        2: [("zhou", "honor_national"), ("wu", "economy")],
        5: [("lisi", "honor_national"), ("zhou", "honor_city")],
        7: [("wu", "public_welfare")],
        9: [("zhou", "economy")],
        11: [("lisi", "honor_town"), ("zhou", "public_welfare"), ("wu", "honor_town")],
    }
    declared: dict[str, int] = {}
    for month in range(1, 13):
        clock.set(noon(2026, month, 15))
        day = date(2026, month, 15)
        if month == 7:
            sun = await join(h, b, "sun", 1018, "孙八")
            assert (await member_row(h, sun.id, b.branch.id))["joined_on"] == "2026-07-15"
        # Bulk: each month's post-duty assessment (through the service; the recorder's own by the secretary).
        for who, value in duty.items():
            value = "9" if (who, month) == ("zheng", 5) else value
            if (who, month) == ("secretary", 12):
                continue  # below, through /record
            await bulk(h, b, "secretary" if who == "recorder" else "recorder", who, "post_duty", value, day)
        if month <= 6:
            await bulk(h, b, "recorder", "qian", "dues", "-10", day, event="not_standard")
        await bulk(h, b, "recorder", "feng", "law", "-10", day, event="violation")
        for who, item in bonuses.get(month, []):
            await bulk(h, b, "recorder", who, item, {"honor_national": "4", "honor_city": "3", "honor_town": "1"}.get(item, "2"), day)
        # Through the handlers: deductions with /record (dated in the open period), deeds with /declare.
        if month in (3, 6, 9):
            shown = await record(h, b, "recorder", f"/record {ids['chen']} study late {month}-10 集中学习迟到")
            assert "已为 陈预备 记录" in shown, shown
        if month == 4:
            declared["national"] = await declare(h, b.zhang, "加分项", "受中央、省级表彰", place="省委", text="获评省级优秀共产党员")
            assert "通过" in await approve(h, b, "recorder", declared["national"])
        if month == 6:
            declared["city"] = await declare(h, b.zhang, "加分项", "受市级表彰", place="市委", text="市级表彰")
            assert "通过" in await approve(h, b, "recorder", declared["city"])
        if month == 8:
            assert "已为 张三 记录" in await record(h, b, "recorder", f"/record {ids['zhang']} economy 带头发展养殖")
        if month == 9:
            declared["sun"] = await declare(h, sun, "志愿服务岗位", "为民办一件实事")
            assert "通过" in await approve(h, b, "recorder", declared["sun"])
        if month == 10:
            assert "已为 张三 记录" in await record(h, b, "recorder", f"/record {ids['zhang']} public_welfare 捐资修路")
        if month == 11:
            await join(h, b, "qin", 1019, "秦十二")
        if month == 12:
            shown = await record(h, b, "recorder", f"/record {ids['secretary']} post_duty 19.94 12-10 年终考评")
            assert "已为 王书记 记录" in shown, shown
            # a deed declared on 30 December that nobody decides before the year is graded
            clock.set(noon(2026, 12, 30))
            declared["late"] = await declare(h, b.zhang, "志愿服务岗位", "为民办一件实事")
        done = await close_month(h, clock, 2026, month)
        assert (b.branch.id, "notice", f"2026-{month:02d}", "done") in done, done

    # 2 January 2027: the secretary's /grade.
    sec = b.secretary
    clock.set(noon(2027, 1, 2))
    calls = await h.say(sec, h.private(sec), "/grade 2026")
    shown = said(calls, sec.id)
    assert "参加评定 10 人（名单共 13 人）" in shown
    assert any(c.method == "sendPhoto" for c in calls)  # the distribution chart with the band lines
    assert "“优秀”名额：不超过参评人数的 20%，本次最多 2 人。" in shown
    for line in ("1. 张三　90 分　优秀 ★★★★★",
                 "2. 吴八　85 分　合格 ★★★★　〔并列待选〕",
                 "2. 周七　85 分　合格 ★★★★　〔并列待选〕",
                 "2. 李四　85 分　合格 ★★★★　〔并列待选〕",
                 "5. 王书记　80 分　合格 ★★★★　〔优秀名额已满〕",
                 "6. 李记录　70 分　合格 ★★★★",
                 "7. 郑九　69.92 分　基本合格 ★★★",
                 "8. 孙八　61.67 分　基本合格 ★★★",
                 "9. 钱十　55 分　不合格 ★★　〔一对一结对帮扶〕",
                 "10. 冯十一　50 分　不合格 ★　〔一对一结对帮扶〕",
                 "— 褚免考　不计分　〔免于评定〕",
                 "— 陈预备　59.5 分（不定等次）　〔预备党员，不定等次、延长预备期〕",
                 "— 秦十二　60 分（不定等次）　〔计分月数不足，不定等次〕",
                 "⚖ 有 3 人以 85 分并列，跨越名额线：请在其中选出 1 人进入该等次"):
        assert line in shown, line
    assert "结果尚未确定" in shown
    lines = await grade_lines(h, b)
    assert lines["陈预备"].figure == Decimal("59.50") and not lines["陈预备"].graded
    assert lines["陈预备"].flags == ["probationary", "extend_probation"]
    assert lines["褚免考"].figure is None and not lines["褚免考"].graded and lines["褚免考"].flags == ["exempt"]
    assert lines["孙八"].figure == Decimal("61.67") and lines["郑九"].figure == Decimal("69.92")
    assert lines["王书记"].figure == Decimal("80.00") and lines["王书记"].flags == ["quota"]
    assert lines["秦十二"].figure == Decimal("60.00") and lines["秦十二"].flags == ["not_enough_months"]

    # The tie: three at 85 for the one place left; confirming before choosing is refused.
    assert [t for t, d in h.world.buttons(h.find_button(sec.id, "确认并公示")[0]) if d.startswith("gr:k:")] == \
        ["☐ 李四 85", "☐ 周七 85", "☐ 吴八 85"]  # by member id
    calls = await h.tap(sec, sec.id, "确认并公示")
    assert "请先在其中选出 1 人" in alerts(calls) and await count(h, "grade_rounds") == 0
    calls = await h.tap(sec, sec.id, "☐ 周七")
    assert "已选：周七" in said(calls, sec.id)
    calls = await h.tap(sec, sec.id, "☐ 李四")
    assert "只能选 1 人" in alerts(calls)
    preview = await grade_lines(h, b, tie={ids["zhou"]})
    assert preview["周七"].band_code == "excellent" and preview["周七"].stars == 5
    for name in ("李四", "吴八", "王书记"):
        assert preview[name].band_code == "qualified" and preview[name].flags == ["quota"], name

    publicity, reminder = await publicise_and_finalise(h, clock, b, noon(2027, 1, 9))
    for line in ("1. 张三　90 分　优秀 ★★★★★",
                 "2. 周七　85 分　优秀 ★★★★★",
                 "2. 吴八　85 分　合格 ★★★★　〔优秀名额已满〕",
                 "2. 李四　85 分　合格 ★★★★　〔优秀名额已满〕",
                 "5. 王书记　80 分　合格 ★★★★　〔优秀名额已满〕",
                 "10. 冯十一　50 分　不合格 ★",
                 "— 褚免考　不计分　〔免于评定〕",
                 "— 陈预备　59.5 分（不定等次）　〔预备党员，不定等次〕"):
        assert line in publicity, line
    assert "延长预备期" not in publicity and "结对帮扶" not in publicity  # consequences stay with the secretary
    assert "与公示结果相比没有变化" in reminder
    # At finalisation the year's forms go to the secretary and the recorder.
    assert {c.chat_id for c in h.world.calls if c.method == "sendDocument"} == {sec.id, b.recorder.id}
    final = {r["name"]: r for r in await rows(h, "SELECT r.* FROM grade_results r WHERE stage = 'final'")}
    assert (final["陈预备"]["figure"], final["陈预备"]["graded"], final["陈预备"]["flags"]) == \
        ("59.50", 0, '["probationary", "extend_probation"]')
    assert (final["褚免考"]["figure"], final["褚免考"]["graded"]) == (None, 0)
    assert (await rows(h, "SELECT tie_choice FROM grade_rounds"))[0]["tie_choice"] == f"[{ids['zhou']}]"
    await after_finalisation(h, b, preview, item="law", value="-10", event="violation", pending=declared["late"],
                             tie={ids["zhou"]})


async def after_finalisation(h: TestHarness, b: SimpleNamespace, preview: dict, *, item: str, value: str,
                             event: str | None = None, pending: int | None = None, tie: set[int] | None = None) -> None:
    """What must hold once a year is final: the snapshot is the preview, /grade is refused, writes dated in
    the year are refused with the locked-year message, the next year's writes change nothing of it.
    ``item``/``value``/``event``: a recorder's deduction in the branch's rulebook."""
    sec = b.secretary
    snapshot = await h.services.grading.snapshot(b.branch.id, 2026)
    assert snapshot is not None
    assert {line.name: line for line in snapshot.lines} == preview
    stored = await rows(h, "SELECT * FROM grade_results WHERE stage = 'final' ORDER BY member_id")
    assert len(stored) == len(preview)

    calls = await h.say(sec, h.private(sec), "/grade 2026")
    assert "2026年度已于 2027-01-09 10:01 定级并锁定，结果不再变化" in said(calls, sec.id)
    calls = await h.say(sec, h.private(sec), "/grade")  # January: /grade means last year
    assert "2026年度已于 2027-01-09 10:01 定级并锁定" in said(calls, sec.id)
    assert await count(h, "grade_rounds") == 1

    # A declaration dated 2026, decided after the lock: refused with the message, still pending.
    if pending is not None:
        message = card_message(h, b.recorder.id, pending)
        calls = await h.press(b.recorder, message, f"dc:ok:{pending}")
        assert "2026年度积分已定级锁定，不能再记入该年度的积分" in alerts(calls), alerts(calls)
        assert (await rows(h, "SELECT status FROM declarations WHERE id = ?", pending))[0]["status"] == "pending"
    # A recorder's entry dated 2026 (the service behind /record; /record itself takes only dates in the open
    # declaration period, which by now is January 2027): refused with the same message, nothing written.
    target = await h.services.roster.member_of_id(b.member_ids["zhang"])
    ledger = await count(h, "ledger")
    with pytest.raises(InvalidInput) as refused:
        await h.services.points.record(b.branch, as_actor(b.recorder), target, item, Decimal(value), date(2026, 12, 20),
                                       "补记", reference="late-2026", event_code=event)
    assert refused.value.key == "year.locked" and refused.value.params == {"year": 2026}
    assert await count(h, "ledger") == ledger

    # 2027 goes on: an entry through /record today is taken; the 2026 snapshot does not move.
    shown = await record(h, b, "recorder", f"/record {b.member_ids['zhang']} {item}{' ' + event if event else ''} 新年度的记录")
    assert "已为 张三 记录" in shown, shown
    assert await count(h, "ledger") == ledger + 1
    assert await h.services.grading.snapshot(b.branch.id, 2026) == snapshot
    assert await rows(h, "SELECT * FROM grade_results WHERE stage = 'final' ORDER BY member_id") == stored
    assert await h.services.grading.compute(b.branch, 2026, tie) == snapshot


# --- 尖草坪 -------------------------------------------------------------------------------------------------


async def test_jiancaoping_year_with_a_zero_out_in_march(h, clock):
    """尖草坪 (bot/presets/jiancaoping.toml): the year = base 80 (DOMAIN decision 6) + positive − negative,
    summed; a zero-out item makes the year 0, stops scoring for the cycle and makes the member directly
    unqualified. Bands ≥ 90 praise / ≥ 80 encourage / ≥ 60 warning / below: unqualified.
      张三   brave deed +5 (declared, Feb) + commended +5 (declared, Jun)   80 + 10       = 90.00 praise (edge)
      李四   branch task 3 + helping the needy 2 + mediating 2 + raising needs 2      = 89.00 encourage (edge)
      王书记 nothing either way                                                        = 80.00 encourage (edge)
      李记录 skipped organisation life −3 (/record by the secretary) + publicity +2     = 79.00 warning (edge)
      赵六   gambling −10 (/record) + superstition −10 (/record)                         = 60.00 warning (edge)
      孙八   gambling −10, harmful speech −5, disobeying −3, dues late −3: 80 − 21       = 59.00 unqualified (edge)
      钱七   commended +5 in February, then administrative detention (zero-out) on 12 March: the year is 0,
             unqualified, and scoring stops: a declaration in April is refused            =  0.00 unqualified
    Ranks: 张三 1, 李四 2, 王书记 3, 李记录 4, 赵六 5, 孙八 6, 钱七 7. No quota, no tiers; the first
    cycle below 60 does not yet flag "persuade to withdraw" (two consecutive cycles).
    """
    b = await new_branch(h, clock, "jiancaoping", "尖草坪区某社区党支部")
    for key, uid, name in (("zhao", 1011, "赵六"), ("qian", 1012, "钱七"), ("sun", 1013, "孙八")):
        await join(h, b, key, uid, name)
    ids = b.member_ids
    bulk_rows = {  # month → [(member, item, value)] through the service (the bulk of the year)
        2: [("qian", "commended", "5"), ("sun", "gambling", "-10")],
        3: [("lisi", "branch_tasks", "3")],
        5: [("lisi", "help_needy", "2")],
        6: [("sun", "bad_speech", "-5")],
        8: [("lisi", "mediate", "2"), ("sun", "disobey_branch", "-3")],
        9: [("recorder", "policy_publicity", "2")],
        11: [("lisi", "reflect_opinion", "2"), ("sun", "dues_late_short", "-3")],
    }
    declared = {}
    for month in range(1, 13):
        clock.set(noon(2026, month, 15))
        day = date(2026, month, 15)
        for who, item, value in bulk_rows.get(month, []):
            await bulk(h, b, "secretary" if who == "recorder" else "recorder", who, item, value, day)
        if month == 2:
            declared["brave"] = await declare(h, b.zhang, "带头联系服务群众", "见义勇为", place="村口河边", text="跳河救起落水儿童")
            assert "通过" in await approve(h, b, "recorder", declared["brave"])
        if month == 3:  # the zero-out, through /record on the day it happened
            shown = await record(h, b, "recorder", f"/record {ids['qian']} detention 3-12 受到行政拘留处罚")
            assert "已为 钱七 记录" in shown, shown
        if month == 4:
            shown = await record(h, b, "secretary", f"/record {ids['recorder']} skip_org_life 4-8 无故不参加组织生活")
            assert "已为 李记录 记录" in shown, shown
            calls = await h.say(b.users["qian"], h.private(b.users["qian"]), "/declare")
            assert "您本周期的积分已清零并终止积分管理，不能再申报。" in said(calls, b.users["qian"].id)
        if month == 6:
            declared["commended"] = await declare(h, b.zhang, "带头履行党员义务", "受到表彰表扬", place="区委", text="受区委表彰")
            assert "通过" in await approve(h, b, "recorder", declared["commended"])
        if month == 7:
            assert "已为 赵六 记录" in await record(h, b, "recorder", f"/record {ids['zhao']} gambling 7-3 参与赌博")
        if month == 10:
            assert "已为 赵六 记录" in await record(h, b, "recorder", f"/record {ids['zhao']} superstition 参与封建迷信")
        done = await close_month(h, clock, 2026, month)
        assert (b.branch.id, "notice", f"2026-{month:02d}", "done") in done, done

    sec = b.secretary
    clock.set(noon(2027, 1, 2))
    calls = await h.say(sec, h.private(sec), "/grade 2026")
    shown = said(calls, sec.id)
    assert "参加评定 7 人（名单共 7 人）：90分及以上：1 人、80至89分：2 人、60至79分：2 人、60分以下（不合格党员）：2 人" in shown
    assert any(c.method == "sendPhoto" for c in calls)
    for line in ("1. 张三　90 分　90分及以上", "2. 李四　89 分　80至89分", "3. 王书记　80 分　80至89分",
                 "4. 李记录　79 分　60至79分", "5. 赵六　60 分　60至79分", "6. 孙八　59 分　60分以下：不合格党员",
                 "7. 钱七　0 分　60分以下：不合格党员"):
        assert line in shown, line
    assert "积分清零：1 人（钱七）" in shown and "劝其退党" not in shown
    preview = await grade_lines(h, b)
    assert preview["钱七"].figure == Decimal("0.00") and preview["钱七"].band_code == "unqualified"
    assert preview["钱七"].flags == ["zeroed"] and preview["钱七"].graded and preview["钱七"].passing is False
    assert [(n, preview[n].figure, preview[n].band_code) for n in ("张三", "李四", "王书记", "李记录", "赵六", "孙八")] == [
        ("张三", Decimal("90.00"), "praise"), ("李四", Decimal("89.00"), "encourage"), ("王书记", Decimal("80.00"), "encourage"),
        ("李记录", Decimal("79.00"), "warning"), ("赵六", Decimal("60.00"), "warning"), ("孙八", Decimal("59.00"), "unqualified")]

    publicity, _ = await publicise_and_finalise(h, clock, b, noon(2027, 1, 9))
    assert "7. 钱七　0 分　60分以下：不合格党员" in publicity and "积分清零" in publicity
    await after_finalisation(h, b, preview, item="gambling", value="-10")


# --- 三门峡 -------------------------------------------------------------------------------------------------


async def test_sanmenxia_year_with_lagging_flags(h, clock):
    """三门峡 (bot/presets/sanmenxia.toml): the year = base 100 + contribution bonuses − violation deductions,
    summed (categories judged per quarter: the green zone gives 10 at most once a quarter); no bands: ranked.
    Lagging (后进): below the base, or no bonus at all, or a major deduction (petition trouble, religious
    activity, shrinking back in disaster relief). The committee reviews quarterly: notices per quarter.
      张三   green zone Q1 (declared) 10 + green zone twice in Q2 (capped: 10) + 11 machinery repairs × 3 = 33
             100 + 10 + 10 + 33                                                  = 153.00
      钱七   snow clearing +1 (declared) + 2 × 1 + resolving a petition +5: 100 + 8 = 108.00
      李四   forsythia +15 (declared, approved) − religious activity 10 (/record, major) = 105.00 lagging (major)
      王书记 nothing either way                                                    = 100.00 lagging (no bonus)
      赵六   key project +3 + teaching skills +2 − gambling 5 (/record)             = 100.00 not lagging (at the base)
      李记录 mediating +2 − 2 × skipped organisation life 5 (/record by the secretary) = 92.00 lagging (below base)
    Ranks (competition): 张三 1, 钱七 2, 李四 3, 王书记 4, 赵六 4, 李记录 6. No earlier years: no 3-year ranking.
    """
    b = await new_branch(h, clock, "sanmenxia", "三门峡市某村党支部")
    for key, uid, name in (("zhao", 1011, "赵六"), ("qian", 1012, "钱七")):
        await join(h, b, key, uid, name)
    ids = b.member_ids
    repairs = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)  # one repair a month, January to November
    bulk_rows = {
        2: [("qian", "snow_clearing", "1"), ("recorder", "mediate_dispute", "2")],
        5: [("zhang", "green_zone", "10"), ("zhao", "key_projects", "3")],
        6: [("zhang", "green_zone", "10")],
        9: [("zhao", "teach_skills", "2"), ("qian", "resolve_petition", "5")],
        12: [("qian", "snow_clearing", "1")],
    }
    for month in range(1, 13):
        clock.set(noon(2026, month, 15))
        day = date(2026, month, 15)
        if month in repairs:  # bulk: a repair a month, through the service
            await bulk(h, b, "recorder", "zhang", "repair_machinery", "3", day)
        for who, item, value in bulk_rows.get(month, []):
            await bulk(h, b, "secretary" if who == "recorder" else "recorder", who, item, value, day)
        if month == 1:
            number = await declare(h, b.users["qian"], "执行组织决议", "义务铲除路面积雪", place="村主干道", text="清扫积雪")
            assert "通过" in await approve(h, b, "recorder", number)
        if month in (2, 11):
            shown = await record(h, b, "secretary", f"/record {ids['recorder']} skip_org_life {month}-6 无故不参加组织生活")
            assert "已为 李记录 记录" in shown, shown
        if month == 3:
            number = await declare(h, b.zhang, "执行组织决议", "绿化卫生责任区保持干净", place="村东责任区", text="一季度保持干净")
            assert "通过" in await approve(h, b, "recorder", number)
        if month == 4:
            number = await declare(h, b.lisi, "带领群众致富", "发展连翘种植", place="后山", text="种植连翘60亩")
            assert "通过" in await approve(h, b, "recorder", number)
        if month == 7:
            assert "已为 赵六 记录" in await record(h, b, "recorder", f"/record {ids['zhao']} gambling 参与赌博")
        if month == 8:
            assert "已为 李四 记录" in await record(h, b, "recorder", f"/record {ids['lisi']} religious_activity 8-2 组织宗教活动")
        if month % 3 == 0:  # the quarter's notice moment
            done = await close_month(h, clock, 2026, month)
            assert (b.branch.id, "notice", f"2026-Q{month // 3}", "done") in done, done

    sec = b.secretary
    clock.set(noon(2027, 1, 2))
    calls = await h.say(sec, h.private(sec), "/grade 2026")
    shown = said(calls, sec.id)
    assert "参加评定 6 人（名单共 6 人），按积分排名。" in shown
    for line in ("1. 张三　153 分\n", "2. 钱七　108 分\n", "3. 李四　105 分　〔后进（落后）党员〕", "4. 王书记　100 分　〔后进（落后）党员〕",
                 "4. 赵六　100 分\n", "6. 李记录　92 分　〔后进（落后）党员〕"):
        assert line in shown, line
    assert "后进（落后）党员：3 人（李四、王书记、李记录）" in shown and "不得提名" not in shown
    preview = await grade_lines(h, b)
    assert {n: (l.figure, l.rank, l.flags) for n, l in preview.items()} == {
        "张三": (Decimal("153.00"), 1, []), "钱七": (Decimal("108.00"), 2, []), "李四": (Decimal("105.00"), 3, ["lagging"]),
        "王书记": (Decimal("100.00"), 4, ["lagging"]), "赵六": (Decimal("100.00"), 4, []), "李记录": (Decimal("92.00"), 6, ["lagging"])}
    assert all(l.band_code is None and l.graded and l.cumulative is None for l in preview.values())

    publicity, _ = await publicise_and_finalise(h, clock, b, noon(2027, 1, 9))
    assert "1. 张三　153 分" in publicity and "后进" not in publicity  # the consequence stays with the secretary
    await after_finalisation(h, b, preview, item="gambling", value="-5")


# --- 张店 ---------------------------------------------------------------------------------------------------


async def assess_month(h: TestHarness, b: SimpleNamespace, month: int, poor: tuple[str, ...] = ()) -> None:
    """The month's /assess: ``poor`` members get 较差 0 on every item through their screen; then the recorder's
    "everyone good" for the rest (the recorder's own items are left to the secretary, who does the same)."""
    code = f"2026-{month:02d}"
    rec, sec = b.recorder, b.secretary
    for key in poor:
        await h.say(rec, h.private(rec), f"/assess {code}")
        await h.tap(rec, rec.id, b.users[key].full_name)
        await h.tap(rec, rec.id, "敬业爱岗")
        for _ in range(4):  # after each value the next unassessed item's levels are shown
            calls = await h.tap(rec, rec.id, "较差 0")
            assert "已记录" in alerts(calls), alerts(calls)
    await h.say(rec, h.private(rec), f"/assess {code}")
    await h.tap(rec, rec.id, "其余全部记为")
    message, data = next((m, d) for m in reversed(h.world.messages(rec.id)) for t, d in h.world.buttons(m) if t == "确定")
    calls = await h.press(rec, message, data)
    assert f"已记为“良好”：{4 * (5 - len(poor))} 项" in alerts(calls) and "李记录" in alerts(calls), alerts(calls)
    await h.say(sec, h.private(sec), f"/assess {code}")
    await h.tap(sec, sec.id, "其余全部记为")
    message, data = next((m, d) for m in reversed(h.world.messages(sec.id)) for t, d in h.world.buttons(m) if t == "确定")
    calls = await h.press(sec, message, data)
    assert "已记为“良好”：4 项" in alerts(calls), alerts(calls)


async def democratic_round(h: TestHarness, b: SimpleNamespace, half: int, self_rating: str, peer: dict[str, str],
                           marks: dict[str, tuple[str, str]]) -> None:
    """/evaluate open; every member rates themselves and each peer privately (a peer's rating depends only on
    who is rated: ``peer``); the secretary enters public and branch ratings (the deputy the secretary's own:
    nobody enters their own); /evaluate close and 确认结束."""
    sec = b.secretary
    calls = await h.say(sec, h.private(sec), f"/evaluate open 2026-H{half}")
    assert "民主评议，已通知 6 人" in said(calls, sec.id), said(calls, sec.id)
    for rater, user in b.users.items():
        chat = h.private(user)
        assert "已记录自评" in said(await h.say(user, chat, f"/evaluate rate me {self_rating}"), user.id)
        for ratee in b.users:
            if ratee != rater:
                calls = await h.say(user, chat, f"/evaluate rate {b.member_ids[ratee]} {peer[ratee]}")
                assert "已记录对" in said(calls, user.id), said(calls, user.id)
    for who, (public, branch) in marks.items():
        by = b.lisi if who == "secretary" else sec
        calls = await h.say(by, h.private(by), f"/evaluate set {b.member_ids[who]} public {public} branch {branch}")
        assert b.users[who].full_name in said(calls, by.id)
    await h.say(sec, h.private(sec), "/evaluate close")
    calls = await h.tap(sec, sec.id, "确认结束")
    assert f"2026" in said(calls, sec.id) and await count(h, "democratic_rounds", "status = 'closed'") == half


async def test_zhangdian_year_with_halves_and_tiers(h, clock):
    """张店 (bot/presets/zhangdian.toml): a month = meetings 30 (−10 an absence) + dues 20 (−10 late) + the four
    vanguard assessments (job, volunteering, unity 0–10 each; tasks 0–20) − violations (−10 each). "Everyone
    good" gives the middle of 良好: 7 + 7 + 7 + 14.5 = 35.5, so a good month is 30 + 20 + 35.5 = 85.5; 较差 on
    all four gives 50. A half = (mean of its 6 months + the half's incentive bonus ≤ 20) × 60% + democratic
    × 40%, where democratic = self 10% + peer mean 30% + public 30% + branch 30%. The year = the mean of the
    halves; ranked; top 10% = ceil(0.1 × 6) = 1, bottom 3% = ceil(0.03 × 6) = 1.

    Democratic H1: everyone rates themselves 90; peers rate 张三 95, everyone else 80; public/branch 张三
    95/95, the others 80/80 → 张三 9 + 28.5 + 28.5 + 28.5 = 94.5; the others 9 + 24 + 24 + 24 = 81.
    Democratic H2: everything 80, but 钱七's branch rating 65 → 80; 钱七 8 + 24 + 24 + 19.5 = 75.5.
      张三   good every month; district praise declared, adjusted to 10 (H1 bonus)
             H1 (85.5 + 10) × 0.6 + 94.5 × 0.4 = 57.3 + 37.8 = 95.1; H2 85.5 × 0.6 + 80 × 0.4 = 51.3 + 32 = 83.3
             year (95.1 + 83.3) / 2                                                         = 89.20 top 10%
      王书记, 李记录  good every month: H1 51.3 + 32.4 = 83.7; H2 83.3; year                 = 83.50
      李四   an absence in April (/record): H1 (5 × 85.5 + 75.5) / 6 = 503 / 6 → × 0.6 = 50.3, + 32.4 = 82.7;
             H2 83.3; year                                                                  = 83.00
      赵六   bad influence −10 in August, dues late −10 in October (/record): H2 (4 × 85.5 + 2 × 75.5) / 6
             = 493 / 6 → × 0.6 = 49.3, + 32 = 81.3; H1 83.7; year (83.7 + 81.3) / 2           = 82.50
      钱七   较差 on all four items in November and December: H2 (4 × 85.5 + 2 × 50) / 6 = 442 / 6
             → × 0.6 = 44.2, + 75.5 × 0.4 = 30.2 → 74.4; H1 83.7; year (83.7 + 74.4) / 2   = 79.05 bottom 3%
    Ranks: 张三 1, 王书记 2, 李记录 2, 李四 4, 赵六 5, 钱七 6. H1: 张三 1, the four at 83.7 2, 李四 6.
    H2: the four at 83.3 1, 赵六 5, 钱七 6.
    """
    b = await new_branch(h, clock, "zhangdian", "张店区某局机关党支部")
    await h.say(b.secretary, b.group, f"/role @{b.lisi.username} deputy")
    for key, uid, name in (("zhao", 1011, "赵六"), ("qian", 1012, "钱七")):
        await join(h, b, key, uid, name)
    ids = b.member_ids
    for month in range(1, 13):
        clock.set(noon(2026, month, 20))
        if month == 4:
            assert "已为 李四 记录" in await record(h, b, "recorder", f"/record {ids['lisi']} meetings absent 4-10 无故缺勤")
        if month == 5:
            number = await declare(h, b.zhang, "激励加分", "获区级以上表扬或表彰", place="区委", text="获区级优秀共产党员表彰")
            assert "通过" in await approve(h, b, "recorder", number, value="10")
        if month == 7:  # the first half's democratic evaluation, once June's notice is out
            clock.set(noon(2026, 7, 6))
            await democratic_round(h, b, 1, "90", {k: "95" if k == "zhang" else "80" for k in b.users},
                                   {k: ("95", "95") if k == "zhang" else ("80", "80") for k in b.users})
            clock.set(noon(2026, 7, 20))
        if month == 8:
            assert "已为 赵六 记录" in await record(h, b, "recorder", f"/record {ids['zhao']} bad_influence 8-3 邻里纠纷造成不良影响")
        if month == 10:
            assert "已为 赵六 记录" in await record(h, b, "recorder", f"/record {ids['zhao']} dues late 党费未按时缴纳")
        await assess_month(h, b, month, poor=("qian",) if month in (11, 12) else ())
        done = await close_month(h, clock, 2026, month)
        assert (b.branch.id, "notice", f"2026-{month:02d}", "done") in done, done
        assert (b.branch.id, "assessment_default", f"2026-{month:02d}", "done") in done, done

    # New Year's Day, after December's notice: the second half's democratic evaluation.
    clock.set(noon(2027, 1, 1))
    await democratic_round(h, b, 2, "80", {k: "80" for k in b.users},
                           {k: ("80", "65") if k == "qian" else ("80", "80") for k in b.users})
    sec = b.secretary
    clock.set(noon(2027, 1, 2))
    calls = await h.say(sec, h.private(sec), "/grade 2026")
    shown = said(calls, sec.id)
    assert "参加评定 6 人（名单共 6 人），按积分排名。" in shown and "暂定" not in shown
    for line in ("1. 张三　89.2 分（上半年 95.1 分 第1名", "2. 李记录　83.5 分（", "2. 王书记　83.5 分（",
                 "4. 李四　83 分（", "5. 赵六　82.5 分（", "6. 钱七　79.05 分（上半年 83.7 分 第2名、下半年 74.4 分 第6名）　〔排名后3%：落后党员〕"):
        assert line in shown, line  # each half's figure and rank follow the year (seed 003 ranks each half)
    assert "〔排名前10%：评先树优优先考虑〕" in shown.split("1. 张三")[1].split("\n")[0]
    preview = await grade_lines(h, b)
    d = Decimal
    assert {n: (l.figure, l.rank, l.half_figures, l.half_ranks, l.tiers) for n, l in preview.items()} == {
        "张三": (d("89.20"), 1, {1: d("95.10"), 2: d("83.30")}, {1: 1, 2: 1}, ["top"]),
        "王书记": (d("83.50"), 2, {1: d("83.70"), 2: d("83.30")}, {1: 2, 2: 1}, []),
        "李记录": (d("83.50"), 2, {1: d("83.70"), 2: d("83.30")}, {1: 2, 2: 1}, []),
        "李四": (d("83.00"), 4, {1: d("82.70"), 2: d("83.30")}, {1: 6, 2: 1}, []),
        "赵六": (d("82.50"), 5, {1: d("83.70"), 2: d("81.30")}, {1: 2, 2: 5}, []),
        "钱七": (d("79.05"), 6, {1: d("83.70"), 2: d("74.40")}, {1: 2, 2: 6}, ["lagging"]),
    }
    assert preview["张三"].flags == ["top_tier"] and preview["钱七"].flags == ["bottom_tier"]
    # The democratic evaluations as graded: the weighted means computed above.
    assert await h.services.democratic.evaluations(b.branch.id, 2026, 1) == {
        ids[k]: d("94.5") if k == "zhang" else d("81") for k in b.users}
    assert await h.services.democratic.evaluations(b.branch.id, 2026, 2) == {
        ids[k]: d("75.5") if k == "qian" else d("80") for k in b.users}

    publicity, _ = await publicise_and_finalise(h, clock, b, noon(2027, 1, 9))
    assert "1. 张三　89.2 分" in publicity and "6. 钱七　79.05 分" in publicity
    assert "落后党员" not in publicity  # tiers stay with the secretary
    await after_finalisation(h, b, preview, item="bad_influence", value="-10")
    # Re-assessing December after the lock (the /assess screens still reach 12 months back): refused.
    rec = b.recorder
    await h.say(rec, h.private(rec), "/assess 2026-12")
    await h.tap(rec, rec.id, "张三")
    await h.tap(rec, rec.id, "敬业爱岗")
    ledger = await count(h, "ledger")
    calls = await h.tap(rec, rec.id, "优秀 10")
    assert "2026年度积分已定级锁定，不能再记入该年度的积分" in alerts(calls), alerts(calls)
    assert await count(h, "ledger") == ledger
    assert await h.services.grading.snapshot(b.branch.id, 2026) == await h.services.grading.compute(b.branch, 2026)


async def test_jiancaoping_a_zero_out_can_be_objected_to_in_the_annual_publicity(h, clock):
    """The zero-out is the entry that decides a member's year (0, unqualified): during the annual publicity
    anyone may object to it, as to any other entry ("objections work as for the monthly notice")."""
    b = await new_branch(h, clock, "jiancaoping", "尖草坪区某社区党支部")
    qian = await join(h, b, "qian", 1012, "钱七")
    clock.set(noon(2026, 3, 15))
    assert "已为 钱七 记录" in await record(h, b, "recorder", f"/record {b.member_ids['qian']} detention 3-12 受到行政拘留处罚")
    row = (await rows(h, "SELECT id FROM ledger WHERE item_code = 'detention'"))[0]["id"]
    await close_month(h, clock, 2026, 12)  # November's and December's notices (the year's last periods)
    clock.set(noon(2027, 1, 2))
    await h.say(b.secretary, h.private(b.secretary), "/grade 2026")
    calls = await h.tap(b.secretary, b.secretary.id, "确认并公示")
    assert "正在公示" in alerts(calls)
    assert "钱七　0 分" in texts(h, b.group.id)
    calls = await h.say(b.lisi, h.private(b.lisi), f"/object {row} 他那天在村里，没有被拘留")
    assert "已收到您对记录" in said(calls, b.lisi.id), said(calls, b.lisi.id)
    assert await count(h, "notice_entries", "ledger_id = ?", row) == 1


async def test_zhangdian_preview_shows_each_half(h, clock):
    """张店 is judged per half-year (seed 003: 每半年……考核评议……排名，集中公示): the secretary's preview shows
    each member's half-year figures, not only their mean. Without democratic evaluations (provisional) a half
    is its quantified part: 张三 absent once in March: H1 (5 × 50 + 40) / 6 = 48.33, H2 50, year 49.17."""
    b = await new_branch(h, clock, "zhangdian", "张店区某局机关党支部")
    clock.set(noon(2026, 3, 15))
    assert "已为 张三 记录" in await record(h, b, "recorder", f"/record {b.member_ids['zhang']} meetings absent 3-10 无故缺勤")
    clock.set(noon(2027, 1, 2))
    lines = await grade_lines(h, b)
    assert lines["张三"].figure == Decimal("49.17") and lines["张三"].half_figures == {1: Decimal("48.33"), 2: Decimal("50.00")}
    calls = await h.say(b.secretary, h.private(b.secretary), "/grade 2026")
    shown = said(calls, b.secretary.id)
    assert "张三　49.17 分" in shown
    assert "48.33" in shown, shown
