"""/rulebook: the values a preset sets by default (the seed gives none), seen and changed by the branch, and
every reader of the branch's rulebook (scoring, /points, /grade, /rules) using the branch's values
(audit item 8; DOMAIN l.150–151, decisions 6 and 7). Through the real Application, on both backends."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from schedules import engine
from tests.conftest import TestHarness, popups, rows, said, setup_branch


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def only_year_end(monkeypatch):
    """The notices' and the grading's producers alone (no dues close or assessment defaults writing rows)."""
    monkeypatch.setattr(engine, "PRODUCERS", [p for p in engine.PRODUCERS if p.kind in ("notice", "grading")])


async def overrides_of(h: TestHarness, branch_id: int) -> dict:
    return json.loads((await rows(h, "SELECT rule_overrides FROM branches WHERE id = ?", branch_id))[0]["rule_overrides"])


def alerts(calls) -> str:
    return "\n".join(str(c.params.get("text", "")) for c in popups(calls))


async def test_list_change_an_item_value_and_refusals(h) -> None:
    b = await setup_branch(h, preset="jiancaoping")
    sec, rec = h.private(b.secretary), h.private(b.recorder)

    # /setup's summary pointed to the defaults: 33 item values and the base (jiancaoping.toml).
    assert any("本办法有 34 个数值是原文没有给出、由默认设定的" in t and "/rulebook" in t
               for t in (str(c.params.get("text", "")) for c in h.world.sent(b.group.id)))

    listing = said(await h.say(b.secretary, sec, "/rulebook"), b.secretary.id)
    assert "共 34 项，本支部已改 0 项" in listing
    assert "base 基础分：80（默认）" in listing
    assert "study_lead 带头参加学习教育：1（默认）" in listing and "gambling 参与赌博：-10（默认）" in listing
    assert "crime" not in listing  # a zero-out item from the seed has no value to change

    # A plain member and the recorder may not see or change them.
    for person in (b.zhang, b.recorder):
        assert "只有以下角色可以这样做" in said(await h.say(person, h.private(person), "/rulebook"), person.id)
        calls = await h.say(person, h.private(person), "/rulebook study_lead 2")
        assert "只有以下角色可以这样做" in said(calls, person.id)
    assert await overrides_of(h, b.branch.id) == {}

    # An entry recorded before the change keeps its value; one recorded after it takes the new one.
    await h.say(b.recorder, rec, "/record 张三 study_lead 带头学习")
    calls = await h.say(b.secretary, sec, "/rulebook study_lead 2")
    assert "已修改 study_lead 带头参加学习教育：1 → 2。今后记录的积分按 2 计；已记录的积分保持原分值。" in said(calls, b.secretary.id)
    assert await overrides_of(h, b.branch.id) == {"study_lead": "2"}
    await h.say(b.recorder, rec, "/record 张三 study_lead 再次带头学习")
    ledger = await rows(h, "SELECT value FROM ledger WHERE item_code = 'study_lead' ORDER BY id")
    assert [r["value"] for r in ledger] == ["1", "2"]
    points = said(await h.say(b.zhang, h.private(b.zhang), "/points"), b.zhang.id)
    assert "本年累计：83分（基础分 80 分）" in points  # 80 + 1 + 2
    # /rules shows the branch's value; the list marks it changed.
    assert "带头参加学习教育" in (rules := said(await h.say(b.zhang, h.private(b.zhang), "/rules"), b.zhang.id))
    assert "+2" in rules.split("带头参加学习教育", 1)[1].split("\n", 1)[0]
    listing = said(await h.say(b.secretary, sec, "/rulebook"), b.secretary.id)
    assert "本支部已改 1 项" in listing and "study_lead 带头参加学习教育：2（本支部已改，默认 1）" in listing

    # The deputy may change an item's value too; giving the default again takes the branch's own away.
    await h.say(b.secretary, b.group, f"/role @{b.lisi.username} deputy")
    calls = await h.say(b.lisi, h.private(b.lisi), "/rulebook study_lead 1")
    assert "已修改 study_lead 带头参加学习教育：2 → 1" in said(calls, b.lisi.id)
    assert await overrides_of(h, b.branch.id) == {}
    calls = await h.say(b.lisi, h.private(b.lisi), "/rulebook study_lead 1")
    assert "study_lead 现在就是 1，没有变更。" in said(calls, b.lisi.id)
    # ...but not the base: that changes the whole year's figure, the secretary's alone.
    calls = await h.say(b.lisi, h.private(b.lisi), "/rulebook base 85")
    assert "只有以下角色可以这样做：书记。" in said(calls, b.lisi.id)

    # Bad input, each refused with a message and nothing kept.
    refusals = {
        "/rulebook crime 5": "「crime」的数值出自办法原文，不能修改",  # a seed item
        "/rulebook nosuch 5": "没有代码为「nosuch」的默认数值",
        "/rulebook study_lead abc": "「abc」不是数字",
        "/rulebook study_lead NaN": "「NaN」不是数字",
        "/rulebook study_lead 1.234": "最多保留 2 位小数",
        "/rulebook study_lead 0": "study_lead 的分值不能为 0",
        "/rulebook study_lead -3": "study_lead 是加分，须为正数",
        "/rulebook gambling 5": "gambling 是扣分，须为负数",
        "/rulebook gambling -1000": "最多 100 分",
        "/rulebook gambling -1e999999": "最多 100 分",
        "/rulebook study_lead 1 2": "只写一个数值",
        "/rulebook base 150": "基础分「150」不行：须在 0 到 100 之间",
        "/rulebook base -5": "基础分「-5」不行",
        "/rulebook democratic_weights 0.1/0.3/0.3/0.3": "没有代码为「democratic_weights」的默认数值",  # not 张店
    }
    for command, expected in refusals.items():
        text = said(await h.say(b.secretary, sec, command), b.secretary.id)
        assert expected in text, (command, text)
    assert await overrides_of(h, b.branch.id) == {}

    # The same in English for an English-speaking secretary.
    english = h.user(b.secretary.id, b.secretary.full_name, username=b.secretary.username, language="en")
    text = said(await h.say(english, sec, "/rulebook base 150"), b.secretary.id)
    assert 'The base "150" is not allowed: it must be between 0 and 100.' in text
    text = said(await h.say(english, sec, "/rulebook crime 5"), b.secretary.id)
    assert 'The value of "crime" comes from the source document and cannot be changed' in text
    text = said(await h.say(english, sec, "/rulebook"), b.secretary.id)
    assert "base Base points: 80 (default)" in text and "study_lead Leading in study: 1 (default)" in text


async def test_seed_values_are_the_seeds(h) -> None:
    """三门峡's base 100 and 张店's 60/40 are stated by their seeds: refused; an item of the seed too."""
    b = await setup_branch(h, preset="sanmenxia")
    sec = h.private(b.secretary)
    text = said(await h.say(b.secretary, sec, "/rulebook base 90"), b.secretary.id)
    assert "「base」的数值出自办法原文，不能修改" in text
    listing = said(await h.say(b.secretary, sec, "/rulebook"), b.secretary.id)
    assert "base" not in listing.split("修改：", 1)[0] and "collective_labour" in listing
    # A branch's own item (/additem) is not a default either.
    await h.say(b.secretary, b.group, "/additem customs own_lotus 15 种植连翘")
    text = said(await h.say(b.secretary, sec, "/rulebook own_lotus 5"), b.secretary.id)
    assert "「own_lotus」是本支部自定的项目" in text
    assert await overrides_of(h, b.branch.id) == {}


async def test_zhangdian_weights_confirmed_and_refused(h) -> None:
    b = await setup_branch(h, preset="zhangdian")
    sec = h.private(b.secretary)
    listing = said(await h.say(b.secretary, sec, "/rulebook"), b.secretary.id)
    assert "democratic_weights 民主评议权重（自评/互评/群众测评/党支部初评）：0.1/0.3/0.3/0.3（默认）" in listing
    for command, expected in {
        "/rulebook quantified_weight 0.5": "「quantified_weight」的数值出自办法原文",  # 60% × … + 40% × … is the seed's
        "/rulebook democratic_weights 0.2/0.3/0.3/0.3": "四个数合计须为 1，现在是 1.1",
        "/rulebook democratic_weights 0.5/0.5": "民主评议权重要写四个数",
        "/rulebook democratic_weights -0.1/0.5/0.3/0.3": "每个数须在 0 到 1 之间",
    }.items():
        assert expected in said(await h.say(b.secretary, sec, command), b.secretary.id), command
    calls = await h.say(b.secretary, sec, "/rulebook democratic_weights 0.25, 0.25, 0.25, 0.25")
    assert "确认修改 democratic_weights" in said(calls, b.secretary.id)
    assert await overrides_of(h, b.branch.id) == {}  # nothing until the press
    message, data = h.find_button(b.secretary.id, "确认修改")
    assert len(data.encode()) <= 64 and re.fullmatch(rf"rbk:y:{b.branch.id}:democratic_weights:0\.25,0\.25,0\.25,0\.25:[0-9a-f]{{6}}", data)
    calls = await h.press(b.zhang, message, data)  # the data is no authority: a member's press is refused
    assert "只有以下角色" in alerts(calls) and await overrides_of(h, b.branch.id) == {}
    calls = await h.press(b.secretary, message, data)
    assert "0.1/0.3/0.3/0.3 → 0.25/0.25/0.25/0.25" in said(calls, b.secretary.id)
    assert await overrides_of(h, b.branch.id) == {"democratic_weights": "0.25,0.25,0.25,0.25"}
    from bot.services.branches import rulebook_of
    weights = rulebook_of(await h.services.branches.by_id(b.branch.id)).year_result.democratic_weights
    assert [str(weights[p]) for p in ("self", "peer", "public", "branch")] == ["0.25"] * 4
    calls = await h.press(b.secretary, message, data)  # a second press changes nothing and says so
    assert "现在就是 0.25/0.25/0.25/0.25" in alerts(calls)


async def test_base_change_confirmed_moves_points_and_grade_then_refused_once_publicised(h, clock, only_year_end) -> None:
    clock.set(utc(2026, 1, 5, 2, 0))
    b = await setup_branch(h, preset="jiancaoping")
    await h.db.conn.execute("UPDATE branches SET created_at = ? WHERE id = ?", (utc(2026, 1, 5, 2, 0).isoformat(), b.branch.id))
    await h.db.conn.commit()
    sec = h.private(b.secretary)
    clock.set(utc(2026, 12, 20, 2, 0))
    assert "本年累计：80分（基础分 80 分）" in said(await h.say(b.zhang, h.private(b.zhang), "/points"), b.zhang.id)

    calls = await h.say(b.secretary, sec, "/rulebook base 85")
    assert "确认修改 base 基础分：80 → 85？这会改变 2026 年全年的积分" in said(calls, b.secretary.id)
    message, data = h.find_button(b.secretary.id, "取消")
    calls = await h.press(b.zhang, message, data)  # a member cannot take the secretary's buttons away
    assert "只有以下角色" in alerts(calls)
    assert h.find_button(b.secretary.id, "确认修改")
    assert "本年累计：80分" in said(await h.say(b.zhang, h.private(b.zhang), "/points"), b.zhang.id)
    calls = await h.tap(b.secretary, b.secretary.id, "确认修改")
    assert "已修改 base 基础分：80 → 85。2026 年全年积分按新数值重新计算" in said(calls, b.secretary.id)
    assert await overrides_of(h, b.branch.id) == {"base": "85"}
    assert "本年累计：85分（基础分 85 分）" in said(await h.say(b.zhang, h.private(b.zhang), "/points"), b.zhang.id)
    preview = said(await h.say(b.secretary, sec, "/grade 2026"), b.secretary.id)
    assert "张三　85 分" in preview and "80至89分：4 人" in preview

    # The year ends; its grading is publicised: the base can no longer change (nor can the weights' like).
    clock.set(utc(2027, 1, 1, 1, 1))
    await engine.tick(h.app, utc(2027, 1, 1, 1, 1))
    clock.set(utc(2027, 1, 2, 2, 0))
    await h.say(b.secretary, sec, "/grade 2026")
    calls = await h.tap(b.secretary, b.secretary.id, "确认并公示")
    assert (await rows(h, "SELECT status FROM grade_rounds WHERE year = 2026"))[0]["status"] == "publicity"
    calls = await h.say(b.secretary, sec, "/rulebook base 90")
    assert "2026 年已有年度评定（公示中或已定级）。base 对所有年度是同一个数值，改了会改变已公布的年度积分，所以不能再改。" in said(calls, b.secretary.id)
    assert await overrides_of(h, b.branch.id) == {"base": "85"}
    # An item's value still may change: it counts for entries from now on, not the graded year's.
    assert "1 → 3" in said(await h.say(b.secretary, sec, "/rulebook study_lead 3"), b.secretary.id)

    # Finalised after the window; in 2027 too the base stays: it is one value for every year, and 2026's
    # published figures (/points 2026 recomputes the year beside its final result) must not move.
    clock.set(utc(2027, 1, 12, 2, 0))
    await engine.tick(h.app, utc(2027, 1, 12, 2, 0))
    await h.say(b.secretary, sec, "/grade 2026")
    await h.tap(b.secretary, b.secretary.id, "定级并锁定")
    assert (await rows(h, "SELECT status FROM grade_rounds WHERE year = 2026"))[0]["status"] == "final"
    calls = await h.say(b.secretary, sec, "/rulebook base 90")
    assert "2026 年已有年度评定" in said(calls, b.secretary.id)
    assert await overrides_of(h, b.branch.id) == {"base": "85", "study_lead": "3"}
    year = said(await h.say(b.zhang, h.private(b.zhang), "/points 2026"), b.zhang.id)
    assert "全年累计：85分（基础分 85 分）" in year and "年度评定结果（支部已定级）：85 分" in year


async def test_an_item_with_declarations_waiting_is_changed_after_they_are_decided(h) -> None:
    """A pending declaration asks for the item's value as it was (its card's button says "通过 1分"): the value
    changes once nothing of that item waits, so no declaration is left that can no longer be approved."""
    from tests.conftest import card_message, declare
    b = await setup_branch(h, preset="jiancaoping")
    sec = h.private(b.secretary)
    number = await declare(h, b.zhang, category="正向指数：带头履行党员义务", item="带头参加学习教育")
    assert number is not None
    calls = await h.say(b.secretary, sec, "/rulebook study_lead 2")
    assert "还有 1 份该事项的申报等待审核" in said(calls, b.secretary.id)
    assert await overrides_of(h, b.branch.id) == {}
    assert "1 → 2" in said(await h.say(b.secretary, sec, "/rulebook org_life_lead 2"), b.secretary.id)  # another item
    card = card_message(h, b.recorder.id, number)
    await h.press(b.recorder, card, f"dc:ok:{number}")
    assert [r["value"] for r in await rows(h, "SELECT value FROM ledger WHERE item_code = 'study_lead'")] == ["1"]
    assert "1 → 2" in said(await h.say(b.secretary, sec, "/rulebook study_lead 2"), b.secretary.id)
    assert await overrides_of(h, b.branch.id) == {"org_life_lead": "2", "study_lead": "2"}


async def test_an_allotment_events_range_changes_the_right_way_up(h) -> None:
    """浠水's 未亮岗扣减 (post_claim's event 'reduce', −10..−1, origin default): a bound changes; an upside-down
    range and a positive loss are refused."""
    b = await setup_branch(h)
    sec = h.private(b.secretary)
    listing = said(await h.say(b.secretary, sec, "/rulebook"), b.secretary.id)
    assert "post_claim.reduce.min" in listing and "：-10（默认）" in listing
    calls = await h.say(b.secretary, sec, "/rulebook post_claim.reduce.min -5")
    assert "-10 → -5。今后记录的积分在新范围内取值；已记录的积分保持原分值。" in said(calls, b.secretary.id)
    calls = await h.say(b.secretary, sec, "/rulebook post_claim.reduce.max -6")
    assert "改后范围成了 -5 到 -6，下限高于上限" in said(calls, b.secretary.id)
    calls = await h.say(b.secretary, sec, "/rulebook post_claim.reduce.max 1")
    assert "post_claim.reduce.max 是扣分，须为负数" in said(calls, b.secretary.id)
    assert await overrides_of(h, b.branch.id) == {"post_claim.reduce.min": "-5"}
    from bot.services.branches import rulebook_of
    event = rulebook_of(await h.services.branches.by_id(b.branch.id)).item("post_claim").event("reduce")
    assert (event.min, event.max) == (-5, -1)
