"""The presets against their seeds (the domain audit of 2026-11-22, /tmp/team/audit/report.md): 浠水's bonus
items named in the body (item 11), 三门峡's base withheld from a member who does not meet the basic conditions
(item 15) and its migrants' missing quarterly report (item 14), the veto's scope following the year method
(item 10), and the readings taken of vague seed text, pinned so that a change of behaviour must change the
comment that quotes the seed (items 4, 17–20).

Domain tests first (no event loop), then the same through the real Application where a user sees it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import count
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.domain.grading import MemberYear, PastYear, grade, quota_places, year_facts
from bot.domain.meetings import Attendance, MeetingKind, booking
from bot.domain.records import LedgerRow, MemberState, Source
from bot.domain.rewards import LineKind, passbook
from bot.domain.rulebook import ItemKind, Origin, Period, RulebookError, Trigger, parse_rulebook
from bot.domain.scoring import EntryRow, publish, year_score
from bot.harness import plain
from bot.presets import preset
from schedules import engine
from tests.conftest import count as count_rows
from tests.conftest import card_message, declare, rows, said, setup_branch

PRESETS = Path(__file__).resolve().parent.parent / "bot" / "presets"
YEAR = [(2026, m) for m in range(1, 13)]
_ids = count(1)


def E(code: str, value: object, day: date, event: str | None = None) -> EntryRow:
    return EntryRow(next(_ids), code, Decimal(str(value)), day, event)


def says(code: str, *quotes: str) -> bool:
    """Whether a preset file's text (its comments included) has every quote, line breaks, comment marks and
    spaces aside (a quote may run over two comment lines)."""
    lines = (PRESETS / f"{code}.toml").read_text(encoding="utf-8").split("\n")
    text = "".join("".join(line.strip().removeprefix("#").split()) for line in lines)
    return all("".join(quote.split()) in text for quote in quotes)


# --- item 11: 浠水's bonus items named in the body (seed 004 l.71) ------------------------------------------

NEW_BONUS = {
    "suggestion": "合理化建议被采纳",
    "help_poor": "帮扶困难群众脱贫致富",
    "urgent_task": "急难险重任务中发挥先锋模范作用",
    "bravery": "见义勇为",
    "review_excellent": "年度党员民主评议为优秀",
    "other_praise": "其他应予以表扬奖励的情形",
}


def test_xishui_bonus_has_every_situation_the_body_names_with_default_values() -> None:
    rb = preset("xishui")
    bonus = rb.category("bonus")
    for code, name in NEW_BONUS.items():
        item = rb.item(code)
        assert item is not None and rb.category_of(code) is bonus, code
        assert item.name.zh == name and item.kind is ItemKind.FIXED and item.value == Decimal(2)
        assert item.origin is Origin.DEFAULT  # the seed gives these no value
        assert Trigger.RECORDER in item.triggers
    # the evaluation's result is the branch's to enter, not the member's to claim
    assert rb.item("review_excellent").triggers == frozenset({Trigger.RECORDER})
    declarable = {i.code for _, i in rb.declarable()}
    assert set(NEW_BONUS) - declarable == {"review_excellent"}
    # 救灾/公益 and 招商引资/争取资金 are the attachment's own two lines, not new items (no double points)
    assert "救灾" in rb.item("public_welfare").note.zh and "希望工程" in rb.item("public_welfare").note.zh
    assert "招商引资" in rb.item("economy").note.zh and "争取资金" in rb.item("economy").note.zh
    assert rb.item("public_welfare").value == rb.item("economy").value == Decimal(2)  # unchanged (seed)
    assert says("xishui", "其他应予以表扬奖励的情形", "由各支部根据实际情况讨论决定")


def test_xishui_new_bonus_items_stay_inside_the_years_cap_of_10() -> None:
    rb = preset("xishui")
    entries = [E(code, 2, date(2026, 3 + n, 5)) for n, code in enumerate(NEW_BONUS)]  # 12 recorded
    entries += [E("economy", 2, date(2026, 10, 1))]  # 14
    score = year_score(rb, entries, 2026, YEAR)
    assert score.bonus == Decimal(10)
    two = year_score(rb, entries[:2], 2026, YEAR)
    assert two.bonus == Decimal(4) and score.figure - two.figure == Decimal(6)


# --- item 15: 三门峡 base 100 only for members who meet the basic conditions (seed 000 l.21) ----------------


def sanmenxia_member(member_id: int, entries: list[EntryRow]) -> MemberYear:
    rb = preset("sanmenxia")
    bonus, major = year_facts(rb, entries, 2026)
    return MemberYear(member_id=member_id, name=f"s{member_id}", state=MemberState.ACTIVE, score=year_score(rb, entries, 2026, YEAR),
                      months_counted=12, bonus_earned=bonus, major_deduction=major)


def test_sanmenxia_base_withheld_takes_the_base_and_keeps_the_contributions() -> None:
    rb = preset("sanmenxia")
    item = rb.item("base_withheld")
    assert item is not None and item.kind is ItemKind.FIXED and item.value == -rb.year_result.base == Decimal(-100)
    assert item.triggers == frozenset({Trigger.RECORDER}) and item.is_deduction and not item.major
    assert rb.category_of("base_withheld").period is Period.YEAR
    assert says("sanmenxia", "凡是没有不合格表现，符合党员基本条件的，基础分自然获得")

    earned = [E("snow_clearing", 1, date(2026, 1, 9)), E("repair_machinery", 3, date(2026, 5, 2))]
    assert year_score(rb, earned, 2026, YEAR).figure == Decimal(104)
    withheld = year_score(rb, [*earned, E("base_withheld", -100, date(2026, 6, 1))], 2026, YEAR)
    assert withheld.figure == Decimal(4)  # no base: the contributions alone
    # never below 0: the seed has no negative total (year_floor_zero), even with deductions beyond the bonus
    assert rb.settings.year_floor_zero
    worse = year_score(rb, [*earned, E("base_withheld", -100, date(2026, 6, 1)), E("gambling", -5, date(2026, 7, 1))], 2026, YEAR)
    assert worse.figure == Decimal(0)
    # below the base: a 后进党员 (对低于基础分……的，作为后进党员), while the one with the base is not
    result = grade(rb, [sanmenxia_member(1, earned), sanmenxia_member(2, [*earned, E("base_withheld", -100, date(2026, 6, 1))])], 2026)
    assert "lagging" not in result.line(1).flags and "lagging" in result.line(2).flags


# --- item 14: 三门峡 migrants' quarterly report, 作为季度得分依据 (seed 000 l.29) -----------------------------


def test_sanmenxia_binds_a_missing_migrant_report_to_a_default_deduction() -> None:
    rb = preset("sanmenxia")
    charged = rb.automatic_charge("migrant.missing_report")
    assert charged is not None
    item, event, value = charged
    assert item.code == "missing_report" and event is None and value == Decimal(-5)
    assert item.origin is Origin.DEFAULT and Trigger.AUTOMATIC in item.triggers and not item.major
    assert rb.category_of("missing_report").code == "migrant"
    assert says("sanmenxia", "作为季度得分依据")
    for other in ("xishui", "zhangdian", "jiancaoping"):  # their seeds tie no points to the report
        assert preset(other).automatic_charge("migrant.missing_report") is None, other


# --- item 10: the veto's scope follows the year method; no declaration cadence --------------------------


@pytest.mark.parametrize("code", ["zhangdian", "xishui", "jiancaoping", "sanmenxia"])
def test_the_veto_scope_follows_the_year_method(code: str) -> None:
    text = (PRESETS / f"{code}.toml").read_text(encoding="utf-8")
    assert "\nzero_out_scope" not in text and "\ndeclaration_cadence" not in text
    assert says(code, "follows year_result.method")


def test_the_removed_settings_are_refused_by_name() -> None:
    sanmenxia = (PRESETS / "sanmenxia.toml").read_text(encoding="utf-8")
    for line in ('zero_out_scope = "half"', 'declaration_cadence = "week"'):
        with pytest.raises(RulebookError, match=line.split()[0]):
            parse_rulebook(sanmenxia.replace("[settings]\n", f"[settings]\n{line}\n"))


def test_the_rewards_passbook_clears_the_period_the_method_gives() -> None:
    """The one reader of the scope: a 张店 veto clears its half's bonus, a 浠水 zero-out the whole year's."""
    def row(row_id: int, code: str, value: int, day: date) -> LedgerRow:
        return LedgerRow(id=row_id, branch_id=1, member_id=1, item_code=code, event_code=None, value=Decimal(value), occurred_on=day,
                         source=Source.RECORDER, reference=f"r{row_id}", actor_id=None, reason=None, reverses_id=None,
                         created_at=datetime(2026, day.month, day.day, 3, tzinfo=UTC))

    book = passbook(preset("zhangdian"), [row(1, "district_praise", 10, date(2026, 2, 1)), row(2, "district_praise", 5, date(2026, 8, 1)),
                                          row(3, "law_breaking", 0, date(2026, 9, 1))], [], year=2026, carry_over=False, timezone="Asia/Shanghai")
    assert [(l.kind, l.amount) for l in book.lines if l.kind is LineKind.CLEARED] == [(LineKind.CLEARED, Decimal(-5))]
    assert book.balance == Decimal(10)  # the first half's 10 stands
    book = passbook(preset("xishui"), [row(1, "bravery", 2, date(2026, 2, 1)), row(2, "suggestion", 2, date(2026, 8, 1)),
                                       row(3, "law_breaking", 0, date(2026, 9, 1))], [], year=2026, carry_over=False, timezone="Asia/Shanghai")
    assert book.balance == Decimal(0)


# --- items 4, 17–20: readings of vague seed text, pinned --------------------------------------------------


def test_xishui_reading_the_bonus_is_added_on_top_of_the_hundred() -> None:
    """Item 4: 实行百分制 is the month's scale; the seed's 评分汇总表 adds 加分项(最高10分) into 合计得分."""
    rb = preset("xishui")
    full = [e for m in range(1, 13) for e in (E("post_duty", 20, date(2026, m, 28)), E("post_deed", 10, date(2026, m, 10)),
                                               E("post_deed", 10, date(2026, m, 11)))]
    score = year_score(rb, [*full, E("honor_national", 4, date(2026, 3, 1)), E("honor_national", 4, date(2026, 5, 1)),
                            E("bravery", 2, date(2026, 6, 1))], 2026, YEAR)
    assert score.months[0].total == Decimal(100) and score.bonus == Decimal(10) and publish(score.figure) == Decimal(110)
    assert says("xishui", "实行百分制", "加分项(最高10分) | 扣分项 | 合计得分")


def test_xishui_reading_meetings_of_the_three_meetings_go_to_organisation_life() -> None:
    """Item 17: the body's split (三会一课 with 组织生活; the lecture with 学习教育), not 附件1 l.110's."""
    rb = preset("xishui")
    booked = {kind: booking(rb, kind, Attendance.ABSENT, migrant=False, migrant_absences_count=False).item_code for kind in MeetingKind}
    assert booked[MeetingKind.PARTY_LECTURE] == "study"
    assert {booked[k] for k in MeetingKind if k is not MeetingKind.PARTY_LECTURE} == {"org_life"}
    assert says("xishui", "1.学习教育10分。按时参加党支部的会议、学习和培训", "2.组织生活10分。严格参加支部主题党日")


def test_zhangdian_reading_the_veto_zeroes_the_democratic_part_too() -> None:
    """Item 18: 一票否决 fails the half, its 40% democratic part included."""
    rb = preset("zhangdian")
    entries = [e for m in range(1, 13) for e in (E("job_performance", 10, date(2026, m, 28)), E("volunteering", 10, date(2026, m, 28)),
                                                  E("unity_law", 10, date(2026, m, 28)), E("carry_out_tasks", 20, date(2026, m, 28)))]
    score = year_score(rb, [*entries, E("law_breaking", 0, date(2026, 3, 3))], 2026, YEAR, democratic={1: Decimal(80), 2: Decimal(80)})
    first, second = score.halves
    assert first.zeroed and first.result == 0 and first.democratic == Decimal(80)  # not 0 × 60% + 80 × 40% = 32
    assert not second.zeroed and second.result == Decimal(100) * Decimal("0.6") + Decimal(80) * Decimal("0.4")
    assert says("zhangdian", "实行一票否决制，积分为零", "the 40% democratic part included")


def test_xishui_reading_the_quota_counts_the_graded_members() -> None:
    """Item 19: 党员总数 = the members graded; floor(20%), at least one where anyone reaches 80."""
    rb = preset("xishui")
    assert quota_places(rb, 10, True) == 2 and quota_places(rb, 14, True) == 2 and quota_places(rb, 4, True) == 1
    assert quota_places(rb, 4, False) == 0
    assert says("xishui", "优秀格次的党员原则上不超过党员总数的20%", "taken as the members GRADED")


def test_sanmenxia_reading_only_the_lowest_cumulative_figure_is_not_nominated() -> None:
    """Item 20: 3年累计积分排名靠后 = the lowest 3-year cumulative figure (all tied at it)."""
    rb = preset("sanmenxia")
    past = {1: (120, 120), 2: (101, 101), 3: (101, 101), 4: (100, 100)}
    members = []
    for member_id, (a, b) in past.items():
        entries = [E("snow_clearing", 1, date(2026, 1, 9))]
        bonus, major = year_facts(rb, entries, 2026)
        members.append(MemberYear(member_id=member_id, name=f"s{member_id}", state=MemberState.ACTIVE,
                                  score=year_score(rb, entries, 2026, YEAR), months_counted=12, bonus_earned=bonus,
                                  major_deduction=major, past=[PastYear(year=2025, figure=Decimal(a)), PastYear(year=2024, figure=Decimal(b))]))
    result = grade(rb, members, 2026)
    flagged = {line.member_id for line in result.lines if "not_nominable" in line.flags}
    assert flagged == {4}  # 301, not the two at 303 just above it
    assert says("sanmenxia", "对3年累计积分排名靠后的", "taken as the LOWEST 3-year cumulative figure")


# --- through the real Application -----------------------------------------------------------------------

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(y: int, m: int, d: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(y, m, d, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def sent_texts(h, chat_id: int) -> list[str]:
    return [str(c.params.get("text", "")) for c in h.world.calls if c.method == "sendMessage" and c.chat_id == chat_id]


async def test_xishui_a_member_declares_an_act_of_bravery_and_rules_show_the_new_bonus_items(h, b) -> None:
    before = len(sent_texts(h, b.zhang.id))
    text = plain(said(await h.say(b.zhang, h.private(b.zhang), "/rules"), b.zhang.id))
    for name in NEW_BONUS.values():
        assert f"{name}：+2" in text, name
    assert all(len(t) <= 4096 for t in sent_texts(h, b.zhang.id)[before:])

    # the category's buttons offer the new items a member may claim, not the evaluation's result
    await h.say(b.zhang, h.private(b.zhang), "/declare")
    await h.tap(b.zhang, b.zhang.id, "加分项")
    offered = [label for label, _ in h.world.buttons(h.world.last_message(b.zhang.id))]
    assert any("见义勇为" in label for label in offered) and any("合理化建议被采纳" in label for label in offered)
    assert not any("民主评议为优秀" in label for label in offered)
    await h.tap(b.zhang, b.zhang.id, "取消")

    number = await declare(h, b.zhang, "加分项", "见义勇为", place="村口河边", text="下河救起落水儿童。")
    assert number is not None
    await h.press(b.recorder, card_message(h, b.recorder.id, number), f"dc:ok:{number}")
    assert [(r["item_code"], r["value"]) for r in await rows(h, "SELECT item_code, value FROM ledger")] == [("bravery", "2")]

    done = said(await h.say(b.recorder, h.private(b.recorder), f"/record {b.member_ids['zhang']} review_excellent 年度民主评议优秀"),
                b.recorder.id)
    assert "已为 张三 记录" in done
    assert await count_rows(h, "ledger", "item_code = 'review_excellent' AND value = '2'") == 1
    points = plain(said(await h.say(b.zhang, h.private(b.zhang), "/points"), b.zhang.id))
    assert "加分项 4 分" in points and "见义勇为 +2" in points and "年度党员民主评议为优秀 +2" in points


async def test_sanmenxia_the_recorder_withholds_the_base_of_a_member_who_does_not_meet_the_conditions(h) -> None:
    b = await setup_branch(h, preset="sanmenxia")
    rules = plain(said(await h.say(b.zhang, h.private(b.zhang), "/rules"), b.zhang.id))
    assert "基础积分" in rules and "不符合党员基本条件，不得基础分：-100" in rules

    assert "本年累计：100分" in plain(said(await h.say(b.zhang, h.private(b.zhang), "/points"), b.zhang.id))
    done = said(await h.say(b.recorder, h.private(b.recorder),
                            f"/record {b.member_ids['zhang']} base_withheld 长期不履行党员义务，不符合党员基本条件"), b.recorder.id)
    assert "已为 张三 记录" in done and "-100" in done
    assert [(r["item_code"], r["value"], r["source"]) for r in await rows(h, "SELECT item_code, value, source FROM ledger")] == [
        ("base_withheld", "-100", "recorder")]
    # a member cannot declare it, nor may the recorder give it another value
    other = said(await h.say(b.recorder, h.private(b.recorder), f"/record {b.member_ids['lisi']} base_withheld -50 部分扣除"), b.recorder.id)
    assert "该事项分值固定为 -100 分" in other
    assert await count_rows(h, "ledger") == 1
    points = plain(said(await h.say(b.zhang, h.private(b.zhang), "/points"), b.zhang.id))
    assert "本年累计：0分" in points and "不符合党员基本条件，不得基础分 -100" in points


async def test_sanmenxia_a_migrant_without_a_quarterly_report_loses_the_default_points_once(h, clock) -> None:
    b = await setup_branch(h, preset="sanmenxia")
    for person in (b.zhang, b.lisi):
        await h.say(b.secretary, b.group, f"/state @{person.username} migrant")
    chat = h.private(b.lisi)  # 李四 reports in time; 张三 does not
    await h.say(b.lisi, chat, "/report")
    await h.say(b.lisi, chat, "一季度在外务工，按时参加当地流动党员党支部的学习。")
    await h.tap(b.lisi, chat.id, "无照片")
    await h.tap(b.lisi, chat.id, "提交汇报")

    clock.set(local(2026, 4, 1, 9, 0))
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "migrant_close", "2026-Q1", "done") in done
    booked = await rows(h, "SELECT member_id, item_code, value, occurred_on, source, reference FROM ledger")
    assert booked == [{"member_id": b.member_ids["zhang"], "item_code": "missing_report", "value": "-5", "occurred_on": "2026-03-31",
                       "source": "automatic", "reference": "migrant:2026-Q1"}]
    told = said(h.world.sent(b.recorder.id))
    assert "已按积分细则记入 1 条（每人 -5 分）" in told and "未扣分" not in told
    await engine.tick(h.app, clock.now())  # again: nothing more
    assert await count_rows(h, "ledger") == 1
    history = plain(said(await h.say(b.zhang, h.private(b.zhang), "/history"), b.zhang.id))
    assert "未按季度汇报思想、工作表现" in history and "-5" in history
