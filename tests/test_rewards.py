"""Rewards (issue 7): the switch and settings, the secretary's catalog flow, redeeming (double taps and
concurrent redemptions), the hand-over and cancel, the passbook, partner merchants and their one-time codes,
the export sheet — through the real handlers, services and SQLite; and the balance rule as pure domain."""

from __future__ import annotations

import asyncio
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from openpyxl import load_workbook

from bot.domain.records import LedgerRow, NewLedgerRow, Source
from bot.domain.rewards import (
    LineKind,
    Redemption,
    RedemptionStatus,
    counts_for_rewards,
    good_standing,
    normalise_code,
    parse_cost,
    parse_stock,
    passbook,
    show_code,
)
from bot.errors import InvalidInput
from bot.presets import preset
from bot.services import Actor
from storage import ledger as ledger_repo
from handlers.common import plain
from tests.conftest import TestHarness, count, popups, rows, said, setup_branch

D = Decimal
T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


# --- the balance rule (pure) ---------------------------------------------------------------------------


def _row(id_: int, item: str, value: str, day: date, *, reverses: int | None = None, minutes: int = 0) -> LedgerRow:
    return LedgerRow(id=id_, branch_id=1, member_id=1, item_code=item, event_code=None, value=D(value), occurred_on=day,
                     source=Source.RECORDER, reference=f"r{id_}", actor_id=None, reason=None, reverses_id=reverses,
                     created_at=T0 + timedelta(minutes=minutes or id_))


def _spent(id_: int, cost: str, status: RedemptionStatus, minutes: int, decided: int | None = None,
           year: int = 2026) -> Redemption:
    at = T0.replace(year=year) + timedelta(minutes=minutes)
    return Redemption(id=id_, branch_id=1, member_id=1, item_id=1, item_name=f"item{id_}", cost=D(cost), status=status,
                      created_at=at, decided_by=None,
                      decided_at=None if decided is None else T0.replace(year=year) + timedelta(minutes=decided))


def test_which_points_count_follows_the_rulebook() -> None:
    jcp = preset("jiancaoping")  # its three positive categories, listed in the preset
    assert counts_for_rewards(jcp, "volunteer") and counts_for_rewards(jcp, "brave_deed")
    assert not counts_for_rewards(jcp, "gambling") and not counts_for_rewards(jcp, "crime")
    assert not counts_for_rewards(jcp, "no_such_item")
    xishui = preset("xishui")  # no list: every bonus item, not allotments, deductions or assessments
    assert counts_for_rewards(xishui, "post_deed") and counts_for_rewards(xishui, "honor_town")
    assert not counts_for_rewards(xishui, "post_claim") and not counts_for_rewards(xishui, "post_duty")
    assert not counts_for_rewards(xishui, "study")
    zhangdian = preset("zhangdian")
    assert counts_for_rewards(zhangdian, "district_praise") and not counts_for_rewards(zhangdian, "job_performance")


def test_balance_is_earned_minus_held_redemptions_and_corrections_count() -> None:
    rb = preset("jiancaoping")
    rows_ = [_row(1, "volunteer", "1", date(2026, 2, 3)), _row(2, "brave_deed", "5", date(2026, 2, 10)),
             _row(3, "gambling", "-10", date(2026, 2, 11)),  # a deduction lowers the score, not the balance
             _row(4, "emergency", "3", date(2026, 2, 12)), _row(5, "emergency", "-3", date(2026, 2, 12), reverses=4)]
    spent = [_spent(1, "2", RedemptionStatus.HANDED_OVER, 10), _spent(2, "3", RedemptionStatus.CANCELLED, 11, decided=12),
             _spent(3, "1.5", RedemptionStatus.RESERVED, 13)]
    book = passbook(rb, rows_, spent, year=2026, carry_over=False, timezone="Asia/Shanghai")
    assert book.earned == D(6) and book.spent == D("3.5") and book.balance == D("2.5")
    kinds = [line.kind for line in book.lines]
    assert kinds == [LineKind.EARNED, LineKind.EARNED, LineKind.EARNED, LineKind.CORRECTED,
                     LineKind.SPENT, LineKind.SPENT, LineKind.RELEASED, LineKind.SPENT]
    assert [line.balance for line in book.lines] == [D(1), D(6), D(9), D(6), D(4), D(1), D(4), D("2.5")]


def test_a_correction_after_spending_never_takes_the_balance_below_zero() -> None:
    """The issue: "a balance never goes below zero". A correction of points already spent shows 0 and the
    shortfall; later earnings make the shortfall up first."""
    rb = preset("jiancaoping")
    rows_ = [_row(1, "brave_deed", "5", date(2026, 2, 10)),
             _row(2, "brave_deed", "-5", date(2026, 2, 10), reverses=1, minutes=30)]  # an objection upheld later
    spent = [_spent(1, "3", RedemptionStatus.HANDED_OVER, 20)]
    book = passbook(rb, rows_, spent, year=2026, carry_over=False, timezone="Asia/Shanghai")
    assert [line.balance for line in book.lines] == [D(5), D(2), D(0)]
    assert [line.shortfall for line in book.lines] == [D(0), D(0), D(3)]
    assert book.balance == D(0) and book.shortfall == D(3)
    later = passbook(rb, [*rows_, _row(3, "volunteer", "1", date(2026, 3, 1), minutes=40),
                          _row(4, "emergency", "3", date(2026, 3, 2), minutes=50)], spent, year=2026, carry_over=False,
                     timezone="Asia/Shanghai")
    assert [(line.balance, line.shortfall) for line in later.lines[-2:]] == [(D(0), D(2)), (D(1), D(0))]
    assert later.balance == D(1) and later.shortfall == D(0)
    # a zero-out of a year whose points were partly spent: the same
    zeroed = passbook(rb, [rows_[0], _row(3, "crime", "0", date(2026, 2, 20), minutes=40)], spent, year=2026,
                      carry_over=False, timezone="Asia/Shanghai")
    assert zeroed.balance == D(0) and zeroed.shortfall == D(3) and zeroed.lines[-1].kind is LineKind.CLEARED


def test_a_zero_out_clears_the_year_and_last_year_does_not_carry_unless_set() -> None:
    rb = preset("jiancaoping")
    rows_ = [_row(1, "volunteer", "1", date(2025, 5, 1)), _row(2, "brave_deed", "5", date(2026, 2, 10)),
             _row(3, "crime", "0", date(2026, 2, 20)), _row(4, "volunteer", "1", date(2026, 2, 21))]
    book = passbook(rb, rows_, [], year=2026, carry_over=False, timezone="Asia/Shanghai")
    assert book.balance == 0 and book.lines[-1].kind is LineKind.CLEARED and book.lines[-1].amount == D(-5)
    carried = passbook(rb, rows_, [], year=2026, carry_over=True, timezone="Asia/Shanghai")
    assert carried.balance == D(1) and carried.year is None  # 2025's point carries; 2026 was cleared
    # the zero-out reversed (an objection held): nothing is cleared
    undone = passbook(rb, [*rows_, _row(5, "crime", "0", date(2026, 2, 20), reverses=3)], [], year=2026,
                      carry_over=False, timezone="Asia/Shanghai")
    assert undone.balance == D(6)
    # last year's spending does not touch this year's balance without carry-over
    old = [_spent(1, "1", RedemptionStatus.HANDED_OVER, 10, year=2025)]
    assert passbook(rb, rows_[:2], old, year=2026, carry_over=False, timezone="Asia/Shanghai").balance == D(5)
    assert passbook(rb, rows_[:2], old, year=2026, carry_over=True, timezone="Asia/Shanghai").balance == D(5)


def test_good_standing_and_input_parsing() -> None:
    assert good_standing(approved=True, zeroed_out_this_year=False, last_final_passing=None)
    assert good_standing(approved=True, zeroed_out_this_year=False, last_final_passing=True)
    assert not good_standing(approved=True, zeroed_out_this_year=False, last_final_passing=False)
    assert not good_standing(approved=True, zeroed_out_this_year=True, last_final_passing=True)
    assert not good_standing(approved=False, zeroed_out_this_year=False, last_final_passing=True)
    assert parse_cost("5") == D(5) and parse_cost("２.５") == D("2.5") and parse_cost(" 0.01 ") == D("0.01")
    for bad in ("0", "-1", "abc", "1e3", "NaN", "1.234", "", "100001", "Infinity"):
        assert parse_cost(bad) is None, bad
    assert parse_stock("0") == 0 and parse_stock("12") == 12
    for bad in ("-1", "1.5", "x", "", "100001", "١٢"):
        assert parse_stock(bad) is None, bad
    assert normalise_code("abcd-efgh") == "ABCDEFGH" and normalise_code("ABCD EFG2") == "ABCDEFG2"
    assert normalise_code("ABCD-EFG0") is None and normalise_code("ABC") is None  # 0 is not in the alphabet
    assert show_code("ABCDEFGH") == "ABCD-EFGH"


# --- through the bot -----------------------------------------------------------------------------------


async def put(h: TestHarness, b: SimpleNamespace, who: str, item: str, value: str, day: date = date(2026, 3, 2)) -> int:
    """An approved ledger row written directly (how points are approved is not under test here)."""
    async with h.db.transaction() as conn:
        row = await ledger_repo.append(conn, NewLedgerRow(
            branch_id=b.branch.id, member_id=b.member_ids[who], item_code=item, value=D(value), occurred_on=day,
            source=Source.RECORDER, reference=f"t:{who}:{item}:{day}:{value}", actor_id=b.member_ids["secretary"]))
    assert row is not None
    return row.id


@pytest.fixture
async def jb(h: TestHarness) -> SimpleNamespace:
    """A 尖草坪 branch with rewards switched on by its secretary and one item (towel, 3 points, 2 in stock)."""
    b = await setup_branch(h, preset="jiancaoping")
    sec = h.private(b.secretary)
    calls = await h.say(b.secretary, sec, "/rewards")
    assert "尚未开启积分兑换" in said(calls, sec.id)
    await h.tap(b.secretary, sec.id, "开启积分兑换")
    assert (await rows(h, "SELECT enabled FROM reward_settings WHERE branch_id = ?", b.branch.id))[0]["enabled"] == 1
    b.item_id = await add_item(h, b, "毛巾", "3", "2")
    return b


async def add_item(h: TestHarness, b: SimpleNamespace, name: str, cost: str, stock: str | None, photo: bool = False) -> int:
    sec = h.private(b.secretary)
    await h.say(b.secretary, sec, "/catalog")
    await h.tap(b.secretary, sec.id, "新增物品")
    await h.say(b.secretary, sec, name)
    await h.say(b.secretary, sec, cost)
    if stock is None:
        await h.tap(b.secretary, sec.id, "不限量")
    else:
        await h.say(b.secretary, sec, stock)
    if photo:
        await h.send_photo(b.secretary, sec)
    else:
        await h.tap(b.secretary, sec.id, "无图片")
    await h.tap(b.secretary, sec.id, "保存")
    found = await rows(h, "SELECT id FROM reward_items WHERE branch_id = ? AND name = ?", b.branch.id, name)
    assert found
    return found[-1]["id"]


async def redeem(h: TestHarness, person, label: str) -> list:
    chat = h.private(person)
    await h.say(person, chat, "/rewards")
    await h.tap(person, chat.id, label)
    return await h.tap(person, chat.id, "确认兑换")


def alerts(calls) -> str:
    return "\n".join(str(c.params.get("text", "")) for c in popups(calls) if c.params.get("show_alert"))


async def test_switch_settings_and_the_catalog_flow(h: TestHarness):
    b = await setup_branch(h, preset="jiancaoping")
    zhang, sec = h.private(b.zhang), h.private(b.secretary)
    calls = await h.say(b.zhang, zhang, "/rewards")
    assert "尚未开启积分兑换" in said(calls, zhang.id)
    calls = await h.say(b.zhang, zhang, "/catalog")
    assert "只有以下角色可以这样做" in said(calls, zhang.id)
    await h.say(b.secretary, sec, "/rewards")
    message, data = h.find_button(sec.id, "开启积分兑换")
    calls = await h.press(b.zhang, message, data)  # a member's crafted press on the secretary's panel
    assert "只有以下角色可以这样做" in alerts(calls)
    await h.press(b.recorder, message, data)
    assert await count(h, "reward_settings") == 0
    await h.tap(b.secretary, sec.id, "开启积分兑换")
    await h.tap(b.secretary, sec.id, "结转下一年")
    saved = (await rows(h, "SELECT * FROM reward_settings"))[0]
    assert (saved["enabled"], saved["carry_over"], saved["show_balance"]) == (1, 1, 0)
    assert "正向指数：带头履行党员义务" in said(h.world.sent(sec.id)[-1:])  # which points count, named

    # the guided flow refuses bad input with a clear message and saves nothing until Save
    await h.say(b.secretary, sec, "/catalog")
    await h.tap(b.secretary, sec.id, "新增物品")
    await h.say(b.secretary, sec, "洗衣粉")
    for bad in ("abc", "0", "-2", "1.234"):
        calls = await h.say(b.secretary, sec, bad)
        assert "所需积分须是大于 0 的数" in said(calls, sec.id), bad
    await h.say(b.secretary, sec, "2.5")
    calls = await h.say(b.secretary, sec, "很多")
    assert "库存须是 0 到 100000 之间的整数" in said(calls, sec.id)
    await h.say(b.secretary, sec, "10")
    await h.send_photo(b.secretary, sec)
    assert await count(h, "reward_items") == 0
    await h.tap(b.secretary, sec.id, "保存")
    item = (await rows(h, "SELECT * FROM reward_items"))[0]
    assert (item["name"], item["cost"], item["stock"], item["active"]) == ("洗衣粉", "2.5", 10, 1) and item["photo_file_id"]

    # change: keep the name, a new cost, unlimited, keep the picture
    await h.tap(b.secretary, sec.id, "洗衣粉")
    await h.tap(b.secretary, sec.id, "修改")
    await h.tap(b.secretary, sec.id, "保持不变")
    await h.say(b.secretary, sec, "4")
    await h.tap(b.secretary, sec.id, "不限量")
    await h.tap(b.secretary, sec.id, "保持不变")
    await h.tap(b.secretary, sec.id, "保存")
    item = (await rows(h, "SELECT * FROM reward_items"))[0]
    assert (item["name"], item["cost"], item["stock"]) == ("洗衣粉", "4", None) and item["photo_file_id"]
    # switch it off; the member's catalog no longer offers it
    await h.tap(b.secretary, sec.id, "洗衣粉")
    await h.tap(b.secretary, sec.id, "停用")
    assert (await rows(h, "SELECT active FROM reward_items"))[0]["active"] == 0
    calls = await h.say(b.zhang, zhang, "/rewards")
    assert "目前没有可兑换的物品" in said(calls, zhang.id)
    # a cancelled flow saves nothing; a stale flow button is answered
    await h.say(b.secretary, sec, "/catalog")
    await h.tap(b.secretary, sec.id, "新增物品")
    await h.say(b.secretary, sec, "/cancel")
    calls = await h.tap(b.secretary, sec.id, "取消")
    assert popups(calls)
    actions = [r["action"] for r in await rows(h, "SELECT action FROM reward_audit ORDER BY id")]
    assert actions == ["settings", "settings", "item_added", "item_changed", "item_deactivated"]


async def test_toggles_set_the_state_the_button_showed(h: TestHarness):
    """A double tap (or the same press delivered twice, or at once) on a switch sets it twice; it never undoes itself."""
    b = await setup_branch(h, preset="jiancaoping")
    sec = h.private(b.secretary)
    await h.say(b.secretary, sec, "/rewards")
    message, data = h.find_button(sec.id, "开启积分兑换")
    assert data == f"rw:s:{b.branch.id}:e:1"
    await h.press(b.secretary, message, data)
    calls = await h.press(b.secretary, message, data)
    assert "已经是这个设置了" in str([c.params.get("text") for c in popups(calls)])
    message, data = h.find_button(sec.id, "结转下一年")
    await asyncio.gather(h.press(b.secretary, message, data), h.press(b.secretary, message, data))
    saved = (await rows(h, "SELECT enabled, carry_over, show_balance FROM reward_settings"))[0]
    assert saved == {"enabled": 1, "carry_over": 1, "show_balance": 0}
    assert [r["detail"] for r in await rows(h, "SELECT detail FROM reward_audit ORDER BY id")] == ["enabled=1", "carry_over=1"]
    # a button from before the target state was in the data changes nothing and says so
    calls = await h.press(b.secretary, message, f"rw:s:{b.branch.id}:c")
    assert "旧版" in alerts(calls)
    assert (await rows(h, "SELECT carry_over FROM reward_settings"))[0]["carry_over"] == 1

    item_id = await add_item(h, b, "毛巾", "3", "2")
    await h.tap(b.secretary, sec.id, "毛巾")
    message, data = h.find_button(sec.id, "停用")
    await asyncio.gather(h.press(b.secretary, message, data), h.press(b.secretary, message, data))
    await h.press(b.secretary, message, data)
    assert (await rows(h, "SELECT active FROM reward_items WHERE id = ?", item_id))[0]["active"] == 0
    calls = await h.press(b.secretary, message, f"rc:t:{item_id}")
    assert "旧版" in alerts(calls) and (await rows(h, "SELECT active FROM reward_items"))[0]["active"] == 0
    await h.tap(b.secretary, sec.id, "启用")
    assert (await rows(h, "SELECT active FROM reward_items"))[0]["active"] == 1
    actions = [r["action"] for r in await rows(h, "SELECT action FROM reward_audit WHERE item_id IS NOT NULL ORDER BY id")]
    assert actions == ["item_added", "item_deactivated", "item_activated"]


async def test_editing_an_item_keeps_units_redeemed_meanwhile(h: TestHarness, jb):
    """The stock the edit flow showed is not written back: a redemption during the edit keeps its unit."""
    b = jb
    sec = h.private(b.secretary)
    await put(h, b, "zhang", "brave_deed", "5")
    await h.say(b.secretary, sec, "/catalog")
    await h.tap(b.secretary, sec.id, "毛巾")
    await h.tap(b.secretary, sec.id, "修改")
    await h.tap(b.secretary, sec.id, "保持不变")  # name
    await h.say(b.secretary, sec, "4")  # a new cost
    await h.tap(b.secretary, sec.id, "保持不变：2")  # the stock as shown: 2
    await redeem(h, b.zhang, "兑换：毛巾")  # meanwhile: one reserved, 1 left
    assert (await rows(h, "SELECT stock FROM reward_items"))[0]["stock"] == 1
    calls = await h.tap(b.secretary, sec.id, "无图片")
    assert "库存：保持不变" in said(calls, sec.id)
    await h.tap(b.secretary, sec.id, "保存")
    item = (await rows(h, "SELECT cost, stock FROM reward_items"))[0]
    assert item == {"cost": "4", "stock": 1}  # not 2: the reserved towel is not sold twice
    # a stock typed in the flow is set as given (the secretary counted the shelf)
    await h.tap(b.secretary, sec.id, "毛巾")
    await h.tap(b.secretary, sec.id, "修改")
    await h.tap(b.secretary, sec.id, "保持不变")
    await h.tap(b.secretary, sec.id, "保持不变")
    await h.say(b.secretary, sec, "5")
    await h.tap(b.secretary, sec.id, "无图片")
    await h.tap(b.secretary, sec.id, "保存")
    assert (await rows(h, "SELECT stock FROM reward_items"))[0]["stock"] == 5


async def test_redeem_hand_over_cancel_and_the_passbook(h: TestHarness, jb):
    b = jb
    zhang = h.private(b.zhang)
    await put(h, b, "zhang", "brave_deed", "5")
    await put(h, b, "zhang", "gambling", "-10")  # lowers the score, not the redeemable balance
    calls = await h.say(b.zhang, zhang, "/rewards")
    assert "可兑换积分：5 分" in said(calls, zhang.id) and "毛巾 — 3分 · 库存 2" in said(calls, zhang.id)
    await h.tap(b.zhang, zhang.id, "兑换：毛巾")
    assert "兑换后 2" in said(h.world.sent(zhang.id)[-1:])
    calls = await h.tap(b.zhang, zhang.id, "确认兑换")
    assert "已预留兑换" in said(calls, zhang.id) and "剩余可兑换积分 2" in said(calls, zhang.id)
    assert not [t for t, _ in h.world.buttons(h.world.last_message(zhang.id))]  # the confirmation became the receipt
    redemption = (await rows(h, "SELECT * FROM redemptions"))[0]
    assert redemption["status"] == "reserved" and redemption["cost"] == "3"
    assert (await rows(h, "SELECT stock FROM reward_items"))[0]["stock"] == 1
    rec = h.private(b.recorder)
    assert "兑换 #" in said(h.world.sent(rec.id)[-1:]) and "张三" in said(h.world.sent(rec.id)[-1:])

    # not enough left for a second towel
    await h.say(b.zhang, zhang, "/rewards")
    calls = await h.tap(b.zhang, zhang.id, "兑换：毛巾")
    assert "可兑换积分不足" in alerts(calls)

    # authority on every press: the member, and a stranger, cannot hand over
    card, data = h.find_button(rec.id, "已交付")
    calls = await h.press(b.zhang, card, data)
    assert "只有以下角色可以这样做" in alerts(calls) or "不能经办自己的兑换" in alerts(calls)
    stranger = h.user(9999, "路人")
    calls = await h.press(stranger, card, data)
    assert alerts(calls)
    calls = await h.tap(b.recorder, rec.id, "已交付")
    assert (await rows(h, "SELECT status, decided_by FROM redemptions"))[0] == {
        "status": "handed_over", "decided_by": b.member_ids["recorder"]}
    assert "已交付" in said(h.world.sent(zhang.id)[-1:])
    calls = await h.press(b.recorder, card, data.replace("rw:h", "rw:k"))  # too late to cancel
    assert "已经处理过了" in alerts(calls)
    assert (await rows(h, "SELECT status FROM redemptions"))[0]["status"] == "handed_over"

    # a cancelled redemption releases the points and the stock
    await put(h, b, "zhang", "branch_tasks", "3", date(2026, 3, 5))
    await redeem(h, b.zhang, "兑换：毛巾")
    assert (await rows(h, "SELECT stock FROM reward_items"))[0]["stock"] == 0
    await h.tap(b.recorder, rec.id, "取消兑换")
    assert (await rows(h, "SELECT stock FROM reward_items"))[0]["stock"] == 1
    assert "3 分已退回" in said(h.world.sent(zhang.id)[-1:])

    calls = await h.say(b.zhang, zhang, "/passbook")
    text = said(calls, zhang.id)
    assert "红色存折" in text and "存入" in text and "兑换" in text and "退回" in text
    assert "见义勇为" in text and "余额 5" in text and "参与赌博" not in text
    actions = [r["action"] for r in await rows(h, "SELECT action FROM reward_audit WHERE redemption_id IS NOT NULL ORDER BY id")]
    assert actions == ["reserved", "handed_over", "reserved", "cancelled"]
    assert all(r["actor_user_id"] and r["at"] for r in await rows(h, "SELECT * FROM reward_audit"))
    with pytest.raises(Exception, match="append-only"):  # the audit trail is append-only
        async with h.db.transaction() as conn:
            await conn.execute("DELETE FROM reward_audit")


async def test_the_passbook_shows_a_shortfall_instead_of_a_negative_balance(h: TestHarness, jb, clock):
    b = jb
    zhang = h.private(b.zhang)
    earned = await put(h, b, "zhang", "brave_deed", "5")
    await redeem(h, b.zhang, "兑换：毛巾")
    clock.set(clock.now() + timedelta(hours=1))
    async with h.db.transaction() as conn:  # an objection to the 5 points upheld after 3 were spent
        original = next(r for r in await ledger_repo.of_member(conn, b.member_ids["zhang"], 2026) if r.id == earned)
        await ledger_repo.reverse(conn, original, reference="objection:1", actor_id=b.member_ids["secretary"], reason="x")
    calls = await h.say(b.zhang, zhang, "/passbook")
    text = said(calls, zhang.id)
    assert "余额 -" not in text and text.splitlines()[-4].endswith("更正　见义勇为　-5　余额 0（待抵补 3）")
    assert "存入 0 · 支出 3 · 余额 0" in text
    assert "超出了未用的积分 3 分" in text and "之后存入的积分先抵补" in text
    calls = await h.say(b.zhang, zhang, "/rewards")
    assert "可兑换积分：0 分" in said(calls, zhang.id) and "超出了未用的积分 3 分" in said(calls, zhang.id)
    clock.set(clock.now() + timedelta(hours=1))
    await put(h, b, "zhang", "commended", "5", date(2026, 3, 3))  # later points make up the 3 first
    calls = await h.say(b.zhang, zhang, "/passbook")
    assert "余额 2" in said(calls, zhang.id).splitlines()[-2] and "待抵补" not in said(calls, zhang.id).splitlines()[-2]
    assert "超出了未用的积分" not in said(calls, zhang.id)


async def test_a_recorders_own_redemption_goes_to_the_secretary(h: TestHarness, jb):
    b = jb
    await put(h, b, "recorder", "volunteer", "1")
    await put(h, b, "recorder", "brave_deed", "5")
    await redeem(h, b.recorder, "兑换：毛巾")
    rec, sec = h.private(b.recorder), h.private(b.secretary)
    card, data = h.find_button(sec.id, "已交付")  # the card went to the secretary, not to the recorder
    calls = await h.press(b.recorder, card, data)
    assert "不能经办自己的兑换" in alerts(calls)
    await h.tap(b.secretary, sec.id, "已交付")
    assert (await rows(h, "SELECT status FROM redemptions"))[0]["status"] == "handed_over"


async def test_spending_never_changes_the_evaluation(h: TestHarness, jb):
    b = jb
    await put(h, b, "zhang", "brave_deed", "5")
    await put(h, b, "zhang", "commended", "5")
    await put(h, b, "lisi", "help_needy", "2")
    before = await h.services.grading.compute(b.branch, 2026)
    ledger_before = await count(h, "ledger")
    await redeem(h, b.zhang, "兑换：毛巾")
    await h.tap(b.recorder, h.private(b.recorder).id, "已交付")
    await redeem(h, b.zhang, "兑换：毛巾")
    after = await h.services.grading.compute(b.branch, 2026)
    assert await count(h, "redemptions") == 2 and await count(h, "ledger") == ledger_before
    assert before == after
    line = next(x for x in after.lines if x.member_id == b.member_ids["zhang"])
    assert line.figure == D(90)  # base 80 + 10, whatever was spent


async def test_concurrent_redemptions_never_overspend(h: TestHarness, jb):
    b = jb
    await put(h, b, "zhang", "brave_deed", "5")
    await put(h, b, "zhang", "commended", "5")  # 10 points; towels cost 3
    async with h.db.transaction() as conn:
        await conn.execute("UPDATE reward_items SET stock = 50 WHERE id = ?", (b.item_id,))
    who = Actor(user_id=b.zhang.id, name="张三")
    results = await asyncio.gather(*(h.services.rewards.redeem(who, b.item_id, D(3), client_key=f"k{i}") for i in range(20)),
                                   return_exceptions=True)
    made = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, InvalidInput)]
    assert len(made) == 3 and len(refused) == 17 and all(r.key == "rewards.not_enough" for r in refused)
    assert (await rows(h, "SELECT stock FROM reward_items"))[0]["stock"] == 47
    _, _, book, _ = await h.services.rewards.my_passbook(b.branch, who)
    assert book.balance == D(1)

    # two members racing for the last one in stock: exactly one gets it
    await put(h, b, "lisi", "brave_deed", "5")
    await put(h, b, "secretary", "brave_deed", "5")
    async with h.db.transaction() as conn:
        await conn.execute("UPDATE reward_items SET stock = 1 WHERE id = ?", (b.item_id,))
    racers = [Actor(user_id=b.lisi.id, name="李四"), Actor(user_id=b.secretary.id, name="王书记")]
    results = await asyncio.gather(*(h.services.rewards.redeem(a, b.item_id, D(3), client_key="same") for a in racers),
                                   return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert [r.key for r in results if isinstance(r, InvalidInput)] == ["rewards.out_of_stock"]
    assert (await rows(h, "SELECT stock FROM reward_items"))[0]["stock"] == 0


async def test_double_tap_and_two_presses_at_once_through_ptb(h: TestHarness, jb):
    b = jb
    zhang = h.private(b.zhang)
    await put(h, b, "zhang", "brave_deed", "5")  # enough for one towel only
    await h.say(b.zhang, zhang, "/rewards")
    await h.tap(b.zhang, zhang.id, "兑换：毛巾")
    first, data = h.find_button(zhang.id, "确认兑换")
    await h.tap(b.zhang, zhang.id, "兑换：毛巾")  # a second confirmation message
    second, data2 = h.find_button(zhang.id, "确认兑换")
    assert first.message_id != second.message_id
    # the same button tapped twice, and the other message's button, all at once
    results = await asyncio.gather(h.press(b.zhang, first, data), h.press(b.zhang, first, data), h.press(b.zhang, second, data2))
    assert await count(h, "redemptions") == 1
    texts = "\n".join(str(c.params.get("text", "")) for calls in results for c in popups(calls))
    assert "已预留" in texts and ("已经提交过了" in texts or "可兑换积分不足" in texts)
    assert (await rows(h, "SELECT stock FROM reward_items"))[0]["stock"] == 1
    # the same press delivered again later changes nothing
    await h.press(b.zhang, first, data)
    assert await count(h, "redemptions") == 1


async def test_stale_cost_inactive_and_crafted_presses(h: TestHarness, jb):
    b = jb
    zhang = h.private(b.zhang)
    await put(h, b, "zhang", "brave_deed", "5")
    await h.say(b.zhang, zhang, "/rewards")
    await h.tap(b.zhang, zhang.id, "兑换：毛巾")
    message, data = h.find_button(zhang.id, "确认兑换")
    async with h.db.transaction() as conn:
        await conn.execute("UPDATE reward_items SET cost = '4' WHERE id = ?", (b.item_id,))
    calls = await h.press(b.zhang, message, data)
    assert "已改为 4 分" in alerts(calls) and await count(h, "redemptions") == 0
    for crafted in (f"rw:c:{b.item_id}:1", f"rw:c:999:3", "rw:h:999", f"rw:s:{b.branch.id}:e", f"rw:s:{b.branch.id}:e:0",
                    f"rw:w:{b.branch.id}", f"rc:t:{b.item_id}", f"rc:t:{b.item_id}:0", f"rc:e:{b.item_id}",
                    f"rm:d:1:{b.branch.id}", f"rw:c:{b.item_id}:abc"):
        calls = await h.press(b.zhang, message, crafted)
        assert popups(calls), crafted
    assert await count(h, "redemptions") == 0 and (await rows(h, "SELECT active FROM reward_items"))[0]["active"] == 1
    stranger = h.user(9998, "外人")
    for command in ("/rewards", "/passbook", "/catalog", "/merchants"):
        calls = await h.say(stranger, h.private(stranger), command)
        assert said(calls) == "您还没有加入任何支部：请在支部群里发送 /join。", command  # that refusal, nothing else


def keyboard(h: TestHarness, chat_id: int) -> list[tuple[str, str]]:
    return h.world.buttons(h.world.last_message(chat_id))


async def test_seventy_items_are_paged_for_members_and_the_secretary(h: TestHarness, jb):
    """70 items with long names: every page within 4096 characters and far below Telegram's 100 buttons
    (the harness also fails the test on any refused call, internal error or unanswered callback)."""
    b = jb
    secretary = Actor(user_id=b.secretary.id, name="王书记")
    for n in range(2, 71):
        item = await h.services.rewards.save_item(b.branch, secretary, item_id=None, name=f"物品{n:02d}" + "很长的名字" * 11,
                                                  cost=D(1), stock=None, photo_file_id=None)
        if n % 10 == 5:  # 7 of them switched off: members never see them
            await h.services.rewards.set_item_active(secretary, item.id, False)
    await put(h, b, "zhang", "brave_deed", "5")
    zhang, sec = h.private(b.zhang), h.private(b.secretary)
    calls = await h.say(b.zhang, zhang, "/rewards")
    text = said(calls, zhang.id)
    assert "1. 毛巾" in text and "10. 物品11" in text and "物品12" not in text and "第 1/7 页" in text
    assert len(keyboard(h, zhang.id)) <= 14 and ("下一页 »", f"rw:v:{b.branch.id}:1") in keyboard(h, zhang.id)
    seen = text
    for page in range(2, 8):
        calls = await h.tap(b.zhang, zhang.id, "下一页")
        seen += said(calls, zhang.id)
        assert f"第 {page}/7 页" in said(calls, zhang.id)
    assert "下一页" not in str(keyboard(h, zhang.id)) and "63. 物品70" in seen
    assert all(f"物品{n:02d}" not in seen for n in range(5, 71, 10))  # the inactive ones
    assert all(f"物品{n:02d}" in seen for n in range(2, 71) if n % 10 != 5)
    await h.tap(b.zhang, zhang.id, "上一页")
    await h.tap(b.zhang, zhang.id, "兑换：物品6")  # redeeming from a later page works as from the first
    calls = await h.tap(b.zhang, zhang.id, "确认兑换")
    assert "已预留兑换" in said(calls, zhang.id)

    calls = await h.say(b.secretary, sec, "/catalog")  # the secretary's list: inactive ones too, marked
    assert "第 1/7 页" in said(calls, sec.id) and len(keyboard(h, sec.id)) <= 14
    await h.tap(b.secretary, sec.id, "下一页")
    calls = await h.tap(b.secretary, sec.id, "物品15")
    assert "已停用" in said(calls, sec.id)
    await h.tap(b.secretary, sec.id, "启用")
    calls = await h.tap(b.secretary, sec.id, "返回")  # back to the page it came from
    assert "第 2/7 页" in said(calls, sec.id) and "15. 物品15" in said(calls, sec.id)
    assert (await rows(h, "SELECT active FROM reward_items WHERE name LIKE '物品15%'"))[0]["active"] == 1


async def test_twenty_five_merchants_with_long_discounts(h: TestHarness, jb):
    b = jb
    secretary = Actor(user_id=b.secretary.id, name="王书记")
    for n in range(1, 26):
        await h.services.rewards.add_merchant(b.branch, secretary, user_id=8000 + n, name=f"商户{n:02d}" + "店" * 50,
                                              discount=f"优惠{n:02d}" + "凭码享受九五折优惠，节假日除外，" * 12)
    sec, zhang = h.private(b.secretary), h.private(b.zhang)
    calls = await h.say(b.secretary, sec, "/merchants")
    assert "第 1/4 页" in said(calls, sec.id) and "8. 商户08" in said(calls, sec.id) and "商户09" not in said(calls, sec.id)
    await h.tap(b.secretary, sec.id, "下一页")
    calls = await h.tap(b.secretary, sec.id, "移除 商户10")
    text = said(calls, sec.id)  # the same page, of 24 now
    assert "第 2/3 页" in text and "商户10" not in text.split("\n", 1)[1] and "9. 商户09" in text and "16. 商户17" in text
    assert (await rows(h, "SELECT active FROM merchants WHERE user_id = 8010"))[0]["active"] == 0
    calls = await h.tap(b.secretary, sec.id, "下一页")
    assert "第 3/3 页" in said(calls, sec.id) and "24. 商户25" in said(calls, sec.id)
    assert "下一页" not in str(keyboard(h, sec.id))

    # a member's code lists every partner: the code first, the list chunked over several messages
    await h.say(b.zhang, zhang, "/passbook")
    calls = await h.tap(b.zhang, zhang.id, "合作商户优惠码")
    sent = [plain(str(c.params["text"])) for c in calls if c.method == "sendMessage" and c.chat_id == zhang.id]
    assert len(sent) >= 2 and re.search(r"[A-Z0-9]{4}-[A-Z0-9]{4}", sent[0])
    assert all(f"优惠{n:02d}" in "".join(sent) for n in range(1, 26) if n != 10)


async def test_merchants_codes_and_verification(h: TestHarness, jb, clock):
    b = jb
    sec, zhang = h.private(b.secretary), h.private(b.zhang)
    shop = h.user(7777, "老王超市", username="laowang")
    shop_chat = h.private(shop)
    calls = await h.say(shop, shop_chat, "/verify")
    assert "您不是合作商户" in said(calls) and "7777" in said(calls)
    calls = await h.say(b.zhang, zhang, "/passbook")
    assert "优惠码" not in " ".join(t for t, _ in h.world.buttons(h.world.last_message(zhang.id)))  # no merchants yet

    await h.say(b.secretary, sec, "/merchants")
    await h.tap(b.secretary, sec.id, "登记合作商户")
    calls = await h.say(b.secretary, sec, "@nobody_known")
    assert "我不认识 @nobody_known" in said(calls, sec.id)
    await h.say(b.secretary, sec, "7777")
    await h.say(b.secretary, sec, "老王超市")
    await h.say(b.secretary, sec, "凭码九五折")
    merchant = (await rows(h, "SELECT * FROM merchants"))[0]
    assert (merchant["user_id"], merchant["name"], merchant["discount"], merchant["active"]) == (7777, "老王超市", "凭码九五折", 1)
    assert "合作商户" in said(h.world.sent(shop_chat.id)[-1:])

    await put(h, b, "zhang", "brave_deed", "5")
    await h.say(b.zhang, zhang, "/passbook")
    await h.tap(b.zhang, zhang.id, "合作商户优惠码")
    shown = said(h.world.sent(zhang.id)[-1:])
    code = re.search(r"([A-Z0-9]{4}-[A-Z0-9]{4})", shown).group(1)
    assert "凭码九五折" in shown
    assert not await rows(h, "SELECT * FROM merchant_codes WHERE code_hash LIKE ?", f"%{code}%")  # only a hash is kept
    calls = await h.say(shop, shop_chat, f"/verify {code.lower()}")
    text = said(calls, shop_chat.id)
    assert "优惠码有效" in text and "张三" in text and "状态：良好" in text and "可兑换积分" not in text
    assert "已在 老王超市 核验使用" in said(h.world.sent(zhang.id)[-1:])
    calls = await h.say(shop, shop_chat, f"/verify {code}")
    assert "已经使用过了" in said(calls, shop_chat.id)

    # the branch lets merchants see the balance; an expired code; a code retired by a newer one
    await h.say(b.secretary, sec, "/rewards")
    await h.tap(b.secretary, sec.id, "兑换设置")
    await h.tap(b.secretary, sec.id, "商户可见积分")
    await h.tap(b.zhang, zhang.id, "合作商户优惠码")
    old = re.search(r"([A-Z0-9]{4}-[A-Z0-9]{4})", said(h.world.sent(zhang.id)[-1:])).group(1)
    await h.tap(b.zhang, zhang.id, "合作商户优惠码")
    new = re.search(r"([A-Z0-9]{4}-[A-Z0-9]{4})", said(h.world.sent(zhang.id)[-1:])).group(1)
    calls = await h.say(shop, shop_chat, f"/verify {old}")
    assert "已被更新的优惠码取代" in said(calls, shop_chat.id)
    calls = await h.say(shop, shop_chat, f"/verify {new}")
    assert "可兑换积分：5" in said(calls, shop_chat.id)
    await h.tap(b.zhang, zhang.id, "合作商户优惠码")
    late = re.search(r"([A-Z0-9]{4}-[A-Z0-9]{4})", said(h.world.sent(zhang.id)[-1:])).group(1)
    clock.set(clock.now() + timedelta(minutes=11))
    calls = await h.say(shop, shop_chat, f"/verify {late}")
    assert "已过期" in said(calls, shop_chat.id)

    # guessing is limited: after 5 failures in an hour even a valid code is refused until the hour passes
    for guess in ("ABCD-EFGH", "2345-6789"):  # failures 4 and 5 (used, retired and expired were 1-3)
        calls = await h.say(shop, shop_chat, f"/verify {guess}")
        assert "优惠码无效" in said(calls, shop_chat.id)
    await h.tap(b.zhang, zhang.id, "合作商户优惠码")
    fresh = re.search(r"([A-Z0-9]{4}-[A-Z0-9]{4})", said(h.world.sent(zhang.id)[-1:])).group(1)
    calls = await h.say(shop, shop_chat, f"/verify {fresh}")
    assert "核验失败次数过多" in said(calls, shop_chat.id)
    clock.set(clock.now() + timedelta(minutes=61))
    await h.tap(b.zhang, zhang.id, "合作商户优惠码")
    fresh = re.search(r"([A-Z0-9]{4}-[A-Z0-9]{4})", said(h.world.sent(zhang.id)[-1:])).group(1)
    calls = await h.say(shop, shop_chat, f"/verify {fresh}")
    assert "优惠码有效" in said(calls, shop_chat.id)
    audit = [r["action"] for r in await rows(h, "SELECT action FROM reward_audit WHERE actor_user_id = 7777 ORDER BY id")]
    assert audit.count("verified") == 3 and audit.count("verify_failed") == 5

    # a zeroed-out member is not in good standing; a removed merchant cannot verify
    await put(h, b, "zhang", "crime", "0", date(2026, 3, 20))
    await h.tap(b.zhang, zhang.id, "合作商户优惠码")
    fresh = re.search(r"([A-Z0-9]{4}-[A-Z0-9]{4})", said(h.world.sent(zhang.id)[-1:])).group(1)
    calls = await h.say(shop, shop_chat, f"/verify {fresh}")
    assert "不符合良好条件" in said(calls, shop_chat.id) and "可兑换积分：0" in said(calls, shop_chat.id)
    await h.say(b.secretary, sec, "/merchants")
    await h.tap(b.secretary, sec.id, "移除 老王超市")
    calls = await h.say(shop, shop_chat, f"/verify {fresh}")
    assert "您不是合作商户" in said(calls, shop_chat.id)


async def test_code_validity_is_a_branch_setting(h: TestHarness, jb, clock):
    """Codes last 10 minutes unless the secretary picks another validity (within 1..120 minutes)."""
    b = jb
    sec, zhang = h.private(b.secretary), h.private(b.zhang)
    shop = h.user(7777, "老王超市")
    await h.services.rewards.add_merchant(b.branch, Actor(user_id=b.secretary.id, name="王书记"), user_id=shop.id,
                                          name="老王超市", discount="九五折")
    await h.say(b.secretary, sec, "/rewards")
    calls = await h.tap(b.secretary, sec.id, "兑换设置")
    assert "优惠码有效期：10 分钟" in said(calls, sec.id)
    message, data = h.find_button(sec.id, "30分钟")
    assert data == f"rw:x:{b.branch.id}:30"
    await asyncio.gather(h.press(b.secretary, message, data), h.press(b.secretary, message, data))
    assert (await rows(h, "SELECT code_minutes FROM reward_settings"))[0]["code_minutes"] == 30
    assert "✓30分钟" in " ".join(t for t, _ in h.world.buttons(h.world.last_message(sec.id)))
    for crafted in ("0", "121", "999999"):  # out of bounds: refused, nothing changed
        calls = await h.press(b.secretary, message, f"rw:x:{b.branch.id}:{crafted}")
        assert "优惠码有效期须在 1 到 120 分钟之间" in alerts(calls), crafted
    calls = await h.press(b.zhang, message, f"rw:x:{b.branch.id}:60")  # a member may not
    assert "只有以下角色可以这样做" in alerts(calls)
    assert (await rows(h, "SELECT code_minutes FROM reward_settings"))[0]["code_minutes"] == 30
    assert [r["detail"] for r in await rows(h, "SELECT detail FROM reward_audit WHERE action = 'settings' ORDER BY id")] == [
        "enabled=1", "code_minutes=30"]

    await h.say(b.zhang, zhang, "/passbook")
    await h.tap(b.zhang, zhang.id, "合作商户优惠码")
    shown = said(h.world.sent(zhang.id)[-1:])
    assert "（30 分钟）" in shown
    code = re.search(r"([A-Z0-9]{4}-[A-Z0-9]{4})", shown).group(1)
    clock.set(clock.now() + timedelta(minutes=29))
    calls = await h.say(shop, h.private(shop), f"/verify {code}")
    assert "优惠码有效" in said(calls)
    await h.tap(b.zhang, zhang.id, "合作商户优惠码")
    code = re.search(r"([A-Z0-9]{4}-[A-Z0-9]{4})", said(h.world.sent(zhang.id)[-1:])).group(1)
    clock.set(clock.now() + timedelta(minutes=31))
    calls = await h.say(shop, h.private(shop), f"/verify {code}")
    assert "已过期" in said(calls)


async def test_the_exported_audit_details_are_in_the_exports_language(h: TestHarness, jb):
    b = jb
    svc = h.services.rewards
    secretary, member = Actor(user_id=b.secretary.id, name="王书记"), Actor(user_id=b.zhang.id, name="张三")
    shop = Actor(user_id=7777, name="老王")
    await svc.set_code_minutes(b.branch, secretary, 30)
    await svc.save_item(b.branch, secretary, item_id=None, name="茶 · 壶", cost=D("2.5"), stock=None, photo_file_id=None)
    await svc.add_merchant(b.branch, secretary, user_id=7777, name="老王超市", discount="九五折")
    code = (await svc.new_code(b.branch, member)).code
    assert (await svc.verify(shop, code)).ok
    assert (await svc.verify(shop, code)).reason == "used"
    await put(h, b, "zhang", "brave_deed", "5")
    await svc.redeem(member, b.item_id, D(3), client_key="k1")

    def details(lang: str) -> dict[str, list[str]]:
        sheet = load_workbook(io.BytesIO(data[lang])).worksheets[1]
        found: dict[str, list[str]] = {}
        for row in sheet.iter_rows(min_row=2, values_only=True):
            found.setdefault(row[1], []).append(row[5] or "")
        return found

    data = {lang: await svc.year_workbook(b.branch, 2026, lang) for lang in ("zh", "en")}
    zh, en = details("zh"), details("en")
    assert zh["更改设置"] == ["开启积分兑换：是", "优惠码有效期：30 分钟"]
    assert zh["新增物品"] == ["毛巾 · 3分 · 库存 2", "茶 · 壶 · 2.5分 · 不限量"]
    assert zh["登记商户"] == ["老王超市（Telegram 编号 7777）"]
    assert zh["核验优惠码"] == ["状态良好"] and zh["核验失败"] == ["已经使用过的优惠码"]
    actors = {row[1]: row[2] for row in load_workbook(io.BytesIO(data["zh"])).worksheets[1].iter_rows(min_row=2, values_only=True)}
    assert actors["核验优惠码"] == actors["核验失败"] == "商户：老王超市（Telegram 编号 7777）"  # the shop, not a bare id
    assert actors["登记商户"] == "王书记"
    en_actors = {row[1]: row[2] for row in load_workbook(io.BytesIO(data["en"])).worksheets[1].iter_rows(min_row=2, values_only=True)}
    assert en_actors["code verified"] == "merchant: 老王超市 (Telegram id 7777)"
    assert zh["预留兑换"] == ["毛巾 · 3分"]
    assert en["settings changed"] == ["Rewards switched on: yes", "Codes valid for: 30 minutes"]
    assert "in good standing" in str(en) and "code already used" in str(en) and "unlimited" in str(en)
    raw = ("enabled=", "code_minutes=", "'good'", "not_good", "'used'", "∞")
    assert not [r for r in raw if r in str(zh) or r in str(en)]


async def test_a_username_finds_only_own_members_and_registered_merchants(h: TestHarness, jb):
    """A secretary cannot learn another branch's members' Telegram ids or names through @username."""
    b = jb
    other = await setup_branch(h, preset="jiancaoping", chat_id=-1001000000002, title="北村党支部", base=2000)
    sec = h.private(b.secretary)
    await h.say(b.secretary, sec, "/merchants")
    await h.tap(b.secretary, sec.id, "登记合作商户")
    calls = await h.say(b.secretary, sec, f"@{other.zhang.username}")  # a member of the other branch
    text = said(calls, sec.id)
    assert f"我不认识 @{other.zhang.username}" in text and str(other.zhang.id) not in text and "张三2" not in text
    calls = await h.say(b.secretary, sec, f"@{b.lisi.username.upper()}")  # one's own member: found
    assert f"商户编号 {b.lisi.id}" in said(calls, sec.id)
    await h.say(b.secretary, sec, "/cancel")

    # the other branch registers its member's shop; as a partner merchant they can now be named by @username
    osec = h.private(other.secretary)
    await h.say(other.secretary, osec, "/merchants")
    await h.tap(other.secretary, osec.id, "登记合作商户")
    await h.say(other.secretary, osec, str(other.lisi.id))
    await h.say(other.secretary, osec, "北村小卖部")
    await h.say(other.secretary, osec, "凭码九折")
    found = await h.services.rewards.find_user(b.branch, Actor(user_id=b.secretary.id, name="王书记"), f"@{other.lisi.username}")
    assert found == (other.lisi.id, "北村小卖部")  # the shop's name, not the member's
    with pytest.raises(InvalidInput):
        await h.services.rewards.find_user(b.branch, Actor(user_id=b.secretary.id, name="王书记"), f"@{other.recorder.username}")


async def test_export_has_the_redemptions_sheet_and_english(h: TestHarness, jb):
    b = jb
    await put(h, b, "zhang", "brave_deed", "5")
    await redeem(h, b.zhang, "兑换：毛巾")
    sec = h.private(b.secretary)
    calls = await h.say(b.secretary, sec, "/export 2026")
    documents = [c for c in calls if c.method == "sendDocument"]
    assert len(documents) == 4 and "积分兑换记录" in str(documents[-1].params.get("caption"))
    built = await h.services.exports.build(b.branch, 2026)
    name, data = built.documents[-1]
    assert name.endswith("积分兑换.xlsx")
    book = load_workbook(io.BytesIO(data))
    sheet = book["兑换记录"]
    values = [[c.value for c in row] for row in sheet.iter_rows(min_row=3)]
    assert values[0][1:5] == ["张三", "毛巾", 3, "已预留"]  # the cost is a number cell (QA2 N8)
    trail = [[c.value for c in row] for row in book["审计记录"].iter_rows(min_row=2)]
    assert [row[1] for row in trail] == ["更改设置", "新增物品", "预留兑换"]

    english = h.user(5555, "Tom", username="tom", language="en")
    await h.say(english, b.group, "/join")
    await h.tap(b.secretary, b.group.id, "同意")
    chat = h.private(english)
    calls = await h.say(english, chat, "/rewards")
    assert "Your redeemable points: 0" in said(calls, chat.id) and "Redeem: 毛巾" in str(h.world.buttons(h.world.last_message(chat.id)))
    calls = await h.say(english, chat, "/passbook")
    assert "Red passbook" in said(calls, chat.id)
    calls = await h.say(english, chat, "/verify ABCD")
    assert "not a partner merchant" in said(calls, chat.id)
