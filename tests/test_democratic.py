"""The democratic evaluation (民主评议) of 张店-style schemes, end to end through the offline Telegram.

Each test drives /evaluate and the "de:" buttons through the real handlers, and asserts on the Bot API
calls (private cards, popups, the secretary's board) and on the database; the grading interface
(``services.democratic.evaluations`` / ``unqualified``) is checked against figures computed by hand.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.democratic import (
    GRADES,
    HalfError,
    Parts,
    default_half,
    evaluation,
    grade_of,
    in_half,
    parse_half,
    parse_rating,
    RatingError,
    unqualified,
)
from bot.domain.scoring import democratic_score
from bot.harness import plain
from bot.presets import preset
from handlers.democratic import PATTERN
from tests.conftest import TestHarness, count, popups, rows, said, setup_branch

D = Decimal
JUNE = datetime(2026, 6, 20, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai: the first half's evaluation


@pytest.fixture
def clock():
    from bot.clock import FixedClock

    return FixedClock(JUNE)


async def zhangdian(h: TestHarness, base: int = 1000, chat_id: int = -1001000000001) -> SimpleNamespace:
    b = await setup_branch(h, preset="zhangdian", base=base, chat_id=chat_id)
    b.users = {"secretary": b.secretary, "recorder": b.recorder, "zhang": b.zhang, "lisi": b.lisi}
    return b


async def ev(h: TestHarness, user, text: str):
    return await h.say(user, h.private(user), text)


async def press(h: TestHarness, user, data: str):
    """A press with crafted (or copied) callback data on the bot's latest message to ``user``."""
    return await h.press(user, h.world.last_message(user.id), data)


def popup(calls) -> str:
    return " ".join(plain(str(c.params.get("text", ""))) for c in popups(calls))


async def the_round(h: TestHarness, branch_id: int) -> dict:
    found = await rows(h, "SELECT * FROM democratic_rounds WHERE branch_id = ?", branch_id)
    assert len(found) == 1
    return found[0]


async def ratings_of(h: TestHarness, round_id: int) -> list[dict]:
    return await rows(h, "SELECT rater_id, ratee_id, value FROM democratic_ratings WHERE round_id = ? ORDER BY rater_id, ratee_id", round_id)


def private_text(h: TestHarness, user) -> str:
    return said(h.world.sent(user.id), user.id)


# --- opening, invitations, the board -----------------------------------------------------------------


async def test_open_invites_each_member_privately_and_shows_the_board(h):
    b = await zhangdian(h)
    calls = await ev(h, b.secretary, "/evaluate open")
    r = await the_round(h, b.branch.id)
    assert (r["year"], r["half"], r["status"]) == (2026, 1, "open")
    for name, user in b.users.items():
        cards = [c for c in h.world.sent(user.id, "sendMessage") if "发起了2026年上半年民主评议" in plain(str(c.params["text"]))]
        assert len(cards) == 1, name
        labels = [text for text, _ in h.world.buttons(cards[0])]
        assert labels[0] == "自评：—"
        others = {u.full_name for n, u in b.users.items() if n != name}
        assert {l.split(" ", 1)[1] for l in labels[1:]} == others  # one button per peer, never oneself
    text = said(calls, b.secretary.id)
    assert "已发起2026年上半年民主评议，已通知 4 人" in text
    assert "完成自评和全部互评：0/4 人" in text and "缺群众测评 4 人，缺党支部初评 4 人" in text
    assert await count(h, "democratic_invites", "reached = 1") == 4

    # a redelivered or repeated /evaluate open changes nothing and sends no second invitation
    calls = await ev(h, b.secretary, "/evaluate open 2026-H1")
    assert "已经发起，正在进行" in said(calls, b.secretary.id)
    assert await count(h, "democratic_rounds") == 1
    assert sum("发起了" in plain(str(c.params["text"])) for c in h.world.sent(b.zhang.id, "sendMessage")) == 1


async def test_only_secretary_or_deputy_opens_and_only_in_private_and_only_for_weighted_halves(h):
    b = await zhangdian(h)
    calls = await ev(h, b.zhang, "/evaluate open")
    assert "只有以下角色可以这样做" in said(calls, b.zhang.id)
    calls = await h.say(b.secretary, b.group, "/evaluate open")
    assert "请在与我的私聊中发送 /evaluate" in said(calls, b.group.id)
    calls = await ev(h, b.secretary, "/evaluate open 2026-H2")
    assert "还没有开始" in said(calls, b.secretary.id)
    calls = await ev(h, b.secretary, "/evaluate open 2026-H9")
    assert "看不懂" in said(calls, b.secretary.id)
    assert await count(h, "democratic_rounds") == 0

    other = await setup_branch(h, preset="xishui", base=3000, chat_id=-1001000000003)
    calls = await ev(h, other.secretary, "/evaluate open")
    assert "没有半年民主评议" in said(calls, other.secretary.id)
    calls = await ev(h, other.zhang, "/evaluate")
    assert "没有半年民主评议" in said(calls, other.zhang.id)
    assert await count(h, "democratic_rounds") == 0


async def test_a_member_sees_their_card_and_the_secretary_the_board(h):
    b = await zhangdian(h)
    calls = await ev(h, b.zhang, "/evaluate")
    assert "目前没有进行中的民主评议" in said(calls, b.zhang.id)
    calls = await ev(h, b.secretary, "/evaluate")
    assert "还没有发起过民主评议" in said(calls, b.secretary.id)
    await ev(h, b.secretary, "/evaluate open")
    calls = await ev(h, b.zhang, "/evaluate")
    assert "互评：已评 0/3 人" in said(calls, b.zhang.id)
    calls = await ev(h, b.secretary, "/evaluate 2026-H1")
    text = said(calls, b.secretary.id)
    assert "2026年上半年民主评议（进行中）" in text and "权重：自评 10%，互评 30%，群众测评 30%，党支部初评 30%" in text
    assert "我的评分" in [t for t, _ in h.world.buttons(calls[-1])]


# --- rating: buttons, typed, replacing, double taps --------------------------------------------------


async def test_rating_with_buttons_replaces_and_a_double_tap_changes_nothing(h):
    b = await zhangdian(h)
    await ev(h, b.secretary, "/evaluate open")
    z = b.member_ids["zhang"]
    await h.tap(b.zhang, b.zhang.id, "自评")
    calls = await h.tap(b.zhang, b.zhang.id, "优秀 95")
    assert "已记录自评：95（优秀）" in popup(calls)
    calls = await h.tap(b.zhang, b.zhang.id, "−5")
    assert "已记录自评：90（优秀）" in popup(calls)
    rid = (await the_round(h, b.branch.id))["id"]
    assert await ratings_of(h, rid) == [{"rater_id": z, "ratee_id": z, "value": "90"}]

    # the same press twice (a double tap, a redelivered update): one row, unchanged
    message = h.world.last_message(b.zhang.id)
    data = f"de:r:{rid}:{b.member_ids['lisi']}:80"
    first = await h.press(b.zhang, message, data)
    second = await h.press(b.zhang, message, data)
    assert "已记录对 李四 的评分：80（合格）" in popup(first)
    assert "对 李四 的评分未变" in popup(second)
    assert await count(h, "democratic_ratings", "round_id = ?", rid) == 2

    # re-rating before the close replaces the earlier rating
    await press(h, b.zhang, f"de:r:{rid}:{b.member_ids['lisi']}:72")
    assert await ratings_of(h, rid) == [
        {"rater_id": z, "ratee_id": z, "value": "90"},
        {"rater_id": z, "ratee_id": b.member_ids["lisi"], "value": "72"},
    ]
    # next ▶ goes to the next one not yet rated; the card counts the peers rated
    calls = await h.tap(b.zhang, b.zhang.id, "下一位")
    assert "为 王书记 评分" in said(calls, b.zhang.id)
    calls = await h.tap(b.zhang, b.zhang.id, "列表")
    assert "互评：已评 1/3 人" in said(calls, b.zhang.id)


async def test_typed_ratings_and_grades(h):
    b = await zhangdian(h)
    await ev(h, b.secretary, "/evaluate open")
    calls = await ev(h, b.lisi, "/evaluate rate me 88.5")
    assert "已记录自评：88.5（合格）" in said(calls, b.lisi.id)
    calls = await ev(h, b.lisi, "/evaluate rate 张三 基本合格")
    assert "已记录对 张三 的评分：65（基本合格）" in said(calls, b.lisi.id)
    for bad in ("/evaluate rate 张三 101", "/evaluate rate 张三 -3", "/evaluate rate 张三 abc", "/evaluate rate 张三 80.123"):
        calls = await ev(h, b.lisi, bad)
        assert "分数须在 0–100 之间" in said(calls, b.lisi.id), bad
    calls = await ev(h, b.lisi, "/evaluate rate 张三")
    assert "格式：/evaluate rate" in said(calls, b.lisi.id)
    calls = await ev(h, b.lisi, "/evaluate rate 不存在的人 80")
    assert "找不到党员“不存在的人”" in said(calls, b.lisi.id)
    rid = (await the_round(h, b.branch.id))["id"]
    assert sorted((r["ratee_id"], r["value"]) for r in await ratings_of(h, rid)) == sorted(
        [(b.member_ids["lisi"], "88.5"), (b.member_ids["zhang"], "65")])


async def test_long_lists_are_paged(h):
    b = await zhangdian(h)
    for n in range(12):  # roster rows without accounts: rated by everyone, unreachable themselves
        await h.db.conn.execute(
            "INSERT INTO members (branch_id, name, status, state, joined_on, created_at)"
            " VALUES (?, ?, 'approved', 'active', '2026-01-01', '2026-01-01')", (b.branch.id, f"党员{n:02d}"))
    await ev(h, b.secretary, "/evaluate open")
    card = h.world.last_message(b.zhang.id)
    labels = [t for t, _ in h.world.buttons(card)]
    assert "1/2" in labels and sum(t.startswith("⬜") for t in labels) == 8
    calls = await h.tap(b.zhang, b.zhang.id, "▶")
    labels = [t for c in calls for t, _ in h.world.buttons(c)]
    assert "2/2" in labels and sum(t.startswith("⬜") for t in labels) == 7  # 15 peers: 8 + 7
    await h.tap(b.zhang, b.zhang.id, "党员11")
    await h.tap(b.zhang, b.zhang.id, "合格 80")
    calls = await h.tap(b.zhang, b.zhang.id, "列表")  # back to the page the peer is on
    labels = [t for c in calls for t, _ in h.world.buttons(c)]
    assert "2/2" in labels and "✅ 党员11 80" in labels

    calls = await ev(h, b.secretary, "/evaluate")
    assert "1/2" in [t for t, _ in h.world.buttons(calls[-1])]
    calls = await h.tap(b.secretary, b.secretary.id, "▶")
    text = said(calls, b.secretary.id)
    assert "党员11：" in text and "张三：" not in text
    assert all(len(plain(str(c.params.get("text", "")))) <= 4096 for c in h.world.calls if c.method in ("sendMessage", "editMessageText"))


# --- anonymity ---------------------------------------------------------------------------------------------


async def test_peer_ratings_are_never_shown_to_anyone_but_the_rater(h):
    b = await zhangdian(h)
    await ev(h, b.secretary, "/evaluate open")
    await ev(h, b.lisi, "/evaluate rate 张三 73")
    await ev(h, b.lisi, "/evaluate rate me 77")
    await ev(h, b.secretary, "/evaluate set 张三 群众 85 支部 80")
    await ev(h, b.secretary, "/evaluate")
    await ev(h, b.zhang, "/evaluate")
    board = said(h.world.sent(b.secretary.id), b.secretary.id)
    # each rater's progress, never what each member received while the round is open: "李四 rated 1" next to
    # "张三 received 1" would tell who rated whom; who has received none is a count, not names
    assert "张三：自评 — · 已互评 0/3 · 群众 85 · 支部 80" in board
    assert "李四：自评 ✓ · 已互评 1/3 · 群众 — · 支部 —" in board
    assert "收到互评" not in board and "尚未收到任何互评：3 人" in board
    assert not re.search(r"尚未收到任何互评：[^\n]*(王书记|李记录|李四)", board)
    for user in (b.secretary, b.recorder, b.zhang):
        seen = said(h.world.sent(user.id), user.id)
        assert "73" not in seen and "77" not in seen
    assert "73" in private_text(h, b.lisi)  # the rater sees what they gave
    # the button label of the rater's own card shows their rating; the ratee's card does not
    labels = [t for m in h.world.messages(b.zhang.id) for t, _ in h.world.buttons(m)]
    assert not any("73" in t for t in labels)


# --- public and branch ratings ---------------------------------------------------------------------------


async def test_secretary_enters_public_and_branch_ratings_by_command_and_buttons(h):
    b = await zhangdian(h)
    await ev(h, b.secretary, f"/role @{b.zhang.username} deputy")
    await ev(h, b.secretary, "/evaluate open")
    rid = (await the_round(h, b.branch.id))["id"]
    calls = await ev(h, b.secretary, "/evaluate set 李四 public 85 branch 优秀")
    assert "已录入 李四：群众测评 85（合格），党支部初评 95（优秀）" in said(calls, b.secretary.id)
    calls = await ev(h, b.secretary, "/evaluate set 李四 public 85")
    assert "李四 的评分未变" in said(calls, b.secretary.id)
    calls = await ev(h, b.secretary, "/evaluate set 李四 群众 85 群众 90")
    assert "格式：/evaluate set" in said(calls, b.secretary.id)
    calls = await ev(h, b.secretary, "/evaluate set 李四 群众 85 支部 120")
    assert "分数须在 0–100 之间" in said(calls, b.secretary.id)

    # buttons: the board, a member, a grade, a step
    await ev(h, b.secretary, "/evaluate")
    await h.tap(b.secretary, b.secretary.id, "李记录")
    calls = await h.tap(b.secretary, b.secretary.id, "支部 不合格 50")
    assert "已录入 李记录 的党支部初评：50" in popup(calls)
    calls = await h.tap(b.secretary, b.secretary.id, "支部 +5")
    assert "已录入 李记录 的党支部初评：55" in popup(calls)
    marks = await rows(h, "SELECT member_id, kind, value FROM democratic_marks WHERE round_id = ? ORDER BY member_id, kind", rid)
    assert marks == [
        {"member_id": b.member_ids["recorder"], "kind": "branch", "value": "55"},
        {"member_id": b.member_ids["lisi"], "kind": "branch", "value": "95"},
        {"member_id": b.member_ids["lisi"], "kind": "public", "value": "85"},
    ]

    # nobody enters their own; the deputy enters the secretary's; a member enters nothing
    calls = await ev(h, b.secretary, "/evaluate set 王书记 群众 90")
    assert "由其他书记或副书记录入" in said(calls, b.secretary.id)
    calls = await ev(h, b.zhang, "/evaluate set 王书记 群众 90 支部 90")
    assert "已录入 王书记" in said(calls, b.zhang.id)
    calls = await ev(h, b.lisi, "/evaluate set 张三 群众 90")
    assert "只有以下角色可以这样做" in said(calls, b.lisi.id)
    calls = await press(h, b.lisi, f"de:k:{rid}:{b.member_ids['zhang']}:u:90")
    assert "只有以下角色可以这样做" in popup(calls)
    assert await count(h, "democratic_marks", "member_id = ?", b.member_ids["zhang"]) == 0
    assert await count(h, "democratic_marks", "member_id = ?", b.member_ids["secretary"]) == 2


# --- who takes part ----------------------------------------------------------------------------------------


async def test_exempt_members_neither_rate_nor_are_rated(h):
    b = await zhangdian(h)
    await h.say(b.secretary, b.group, f"/state @{b.lisi.username} exempt 长期病卧")
    await ev(h, b.secretary, "/evaluate open")
    rid = (await the_round(h, b.branch.id))["id"]
    assert not any("发起了" in plain(str(c.params["text"])) for c in h.world.sent(b.lisi.id, "sendMessage"))
    calls = await ev(h, b.lisi, "/evaluate")
    assert "不纳入积分管理，不参加民主评议" in said(calls, b.lisi.id)
    calls = await press(h, b.lisi, f"de:r:{rid}:{b.member_ids['zhang']}:80")
    assert "不纳入积分管理" in popup(calls)
    calls = await press(h, b.zhang, f"de:r:{rid}:{b.member_ids['lisi']}:80")
    assert "不纳入积分管理" in popup(calls)
    calls = await ev(h, b.secretary, "/evaluate set 李四 群众 80")
    assert "不纳入积分管理" in said(calls, b.secretary.id)
    calls = await ev(h, b.secretary, "/evaluate")
    assert "李四" not in said(calls, b.secretary.id)
    assert await count(h, "democratic_ratings") == 0 and await count(h, "democratic_marks") == 0


async def test_no_rating_across_branches_and_crafted_callback_data_is_refused(h):
    a = await zhangdian(h)
    other = await zhangdian(h, base=2000, chat_id=-1001000000002)
    await ev(h, a.secretary, "/evaluate open")
    await ev(h, other.secretary, "/evaluate open")
    ra = (await the_round(h, a.branch.id))["id"]
    rb = (await the_round(h, other.branch.id))["id"]

    # a member of A rating someone of B inside A's round, or pressing in B's round
    calls = await press(h, a.zhang, f"de:r:{ra}:{other.member_ids['zhang']}:80")
    assert "不在本支部本轮民主评议的名单中" in popup(calls)
    calls = await press(h, a.zhang, f"de:r:{rb}:{other.member_ids['zhang']}:80")
    assert "您不是本支部已登记的党员" in popup(calls)
    calls = await press(h, a.zhang, f"de:p:{ra}:{other.member_ids['lisi']}")
    assert "不在本支部本轮民主评议的名单中" in popup(calls)
    # values out of range, unknown rounds, shapes no handler takes, secretary actions by a member
    calls = await press(h, a.zhang, f"de:r:{ra}:{a.member_ids['lisi']}:101")
    assert "分数须在 0–100 之间" in popup(calls)
    calls = await press(h, a.zhang, f"de:r:999:{a.member_ids['lisi']}:80")
    assert "找不到这次民主评议" in popup(calls)
    calls = await press(h, a.zhang, f"de:r:{ra}:{a.member_ids['lisi']}:8e1")
    assert popups(calls)  # answered by the catch-all
    calls = await press(h, a.zhang, f"de:cy:{ra}")
    assert "只有以下角色可以这样做" in popup(calls)
    calls = await press(h, a.zhang, f"de:b:{ra}:0")
    assert "只有以下角色可以这样做" in popup(calls)
    calls = await press(h, other.secretary, f"de:k:{ra}:{a.member_ids['zhang']}:b:80")
    assert popups(calls) and await count(h, "democratic_marks") == 0
    assert await count(h, "democratic_ratings") == 0
    assert (await the_round(h, a.branch.id))["status"] == "open"
    assert len("de:k:999999999999:999999999999:u:100.25".encode()) <= 64


def test_callback_pattern_takes_only_well_formed_data():
    import re

    pattern = re.compile(PATTERN)
    for good in ("de:h:1:0", "de:p:1:2", "de:r:1:2:80", "de:r:1:2:87.5", "de:k:1:2:u:50", "de:k:1:2:b:100", "de:c:1", "de:cy:1", "de:x:1:2"):
        assert pattern.match(good), good
    for bad in ("de:r:1:2:-5", "de:r:1:2:1e2", "de:k:1:2:z:50", "de:q:1:2", "de:r:1:2", "de:c:1:2", "de:h:a:0", "de:r:1:2:80:9"):
        assert not pattern.match(bad), bad


async def test_a_member_who_cannot_be_reached_is_listed_and_can_join_in_later(h):
    b = await zhangdian(h)
    h.world.block(b.lisi.id)  # never started the bot (Telegram answers 403, like a block)
    await h.services.db.conn.execute(  # a roster row without a Telegram account
        "INSERT INTO members (branch_id, name, status, state, joined_on, created_at) VALUES (?, '钱七', 'approved', 'active', '2026-01-01', '2026-01-01')",
        (b.branch.id,))
    await h.services.db.conn.commit()
    calls = await ev(h, b.secretary, "/evaluate open")
    text = said(calls, b.secretary.id)
    assert "已通知 3 人" in text
    assert "以下同志无法联系" in text and "李四" in text and "钱七" in text
    assert "无法联系：李四、钱七" in text

    h.world.unblock(b.lisi.id)
    await ev(h, b.lisi, "/start")
    calls = await ev(h, b.lisi, "/evaluate")
    assert "互评：已评 0/4 人" in said(calls, b.lisi.id)
    calls = await ev(h, b.secretary, "/evaluate")
    assert "无法联系：钱七" in said(calls, b.secretary.id)

    # a reminder goes to those not finished; the unreachable are named again
    calls = await ev(h, b.secretary, "/evaluate remind")
    text = said(calls, b.secretary.id)
    assert "已提醒 4 位" in text and "钱七" in text
    assert any("还差您的评分" in plain(str(c.params["text"])) for c in h.world.sent(b.lisi.id, "sendMessage"))


async def test_a_member_who_joined_after_the_half_takes_no_part(h, clock):
    b = await zhangdian(h)
    clock.set(datetime(2026, 7, 6, 2, 0, tzinfo=UTC))
    wang = h.user(1009, "王五", username="wang5")
    await h.say(wang, b.group, "/join")
    await h.tap(b.secretary, b.group.id, "同意")
    await ev(h, wang, "/start")
    calls = await ev(h, b.secretary, "/evaluate open")  # in July: the first half, just ended
    assert "2026年上半年" in said(calls, b.secretary.id)
    assert not any("发起了" in plain(str(c.params["text"])) for c in h.world.sent(wang.id, "sendMessage"))
    calls = await ev(h, wang, "/evaluate")
    assert "不在本支部本轮民主评议的名单中" in said(calls, wang.id)


async def test_one_round_open_at_a_time(h, clock):
    b = await zhangdian(h)
    await ev(h, b.secretary, "/evaluate open")
    clock.set(datetime(2026, 8, 3, 2, 0, tzinfo=UTC))
    calls = await ev(h, b.secretary, "/evaluate open")
    assert "2026-H1 的民主评议尚未结束" in said(calls, b.secretary.id)
    await ev(h, b.secretary, "/evaluate close")
    await h.tap(b.secretary, b.secretary.id, "确认结束")
    calls = await ev(h, b.secretary, "/evaluate open")
    assert "已发起2026年下半年民主评议" in said(calls, b.secretary.id)
    assert await count(h, "democratic_rounds", "status = 'open'") == 1


# --- closing, and the figures grading reads -------------------------------------------------------------


async def rate_all(h: TestHarness, b: SimpleNamespace, table: dict[str, dict[str, str]]) -> None:
    """table[rater][ratee] = value ("me" for oneself), typed through /evaluate rate."""
    for rater, gave in table.items():
        for ratee, value in gave.items():
            target = "me" if ratee == rater else b.users[ratee].full_name
            calls = await ev(h, b.users[rater], f"/evaluate rate {target} {value}")
            assert "已记录" in said(calls, b.users[rater].id), (rater, ratee)


async def test_a_whole_round_gives_the_weighted_evaluations_grading_reads(h):
    b = await zhangdian(h)
    await ev(h, b.secretary, f"/role @{b.zhang.username} deputy")
    await ev(h, b.secretary, "/evaluate open")
    rid = (await the_round(h, b.branch.id))["id"]
    await rate_all(h, b, {
        "secretary": {"secretary": "90", "recorder": "60", "zhang": "80", "lisi": "95"},
        "recorder": {"recorder": "50", "zhang": "70", "lisi": "90", "secretary": "85"},
        "zhang": {"zhang": "90", "recorder": "55", "lisi": "95", "secretary": "88"},
        "lisi": {"lisi": "95", "zhang": "60", "recorder": "50"},  # lisi has not rated the secretary
    })
    await ev(h, b.secretary, "/evaluate set 张三 群众 85 支部 80")
    await ev(h, b.secretary, "/evaluate set 李记录 群众 55 支部 60")
    await ev(h, b.secretary, "/evaluate set 李四 群众 95 支部 不合格")
    await ev(h, b.zhang, "/evaluate set 王书记 群众 90")  # the branch rating of the secretary is missing

    # while open, grading sees nothing yet
    assert await h.services.democratic.evaluations(b.branch.id, 2026, 1) == {}
    assert await h.services.democratic.status(b.branch.id, 2026, 1) == "open"
    calls = await ev(h, b.secretary, "/evaluate")
    text = said(calls, b.secretary.id)
    assert "完成自评和全部互评：3/4 人" in text and "尚未完成评分：李四" in text
    assert "缺群众测评 0 人，缺党支部初评 1 人" in text

    calls = await ev(h, b.secretary, "/evaluate close")
    assert "目前仍有 1 人未完成评分，缺群众测评 0 人，缺党支部初评 1 人" in said(calls, b.secretary.id)
    calls = await h.tap(b.secretary, b.secretary.id, "确认结束")
    assert "2026年上半年民主评议已结束" in popup(calls)
    r = await the_round(h, b.branch.id)
    assert r["status"] == "closed" and r["closed_by"] == b.member_ids["secretary"]

    # by hand, weights 10/30/30/30:
    # 张三: self 90, peers (80+70+60)/3 = 70, public 85, branch 80 → 9 + 21 + 25.5 + 24 = 79.5
    # 李记录: self 50, peers (60+55+50)/3 = 55, public 55, branch 60 → 5 + 16.5 + 16.5 + 18 = 56
    # 李四: self 95, peers (95+90+95)/3 = 280/3, public 95, branch 50 → 9.5 + 28 + 28.5 + 15 = 81
    # 王书记: no branch rating → not returned
    found = await h.services.democratic.evaluations(b.branch.id, 2026, 1)
    assert found == {b.member_ids["zhang"]: D("79.5"), b.member_ids["recorder"]: D("56"), b.member_ids["lisi"]: D("81")}
    assert await h.services.democratic.unqualified(b.branch.id, 2026, 1) == {b.member_ids["recorder"], b.member_ids["lisi"]}
    assert await h.services.democratic.evaluations(b.branch.id, 2026, 2) == {}
    assert await h.services.democratic.status(b.branch.id, 2026, 2) is None

    board = said(h.world.sent(b.secretary.id), b.secretary.id)
    assert "张三：民主评议 79.5（合格）" in board
    assert "李记录：民主评议 56（不合格） ⚠不合格" in board
    assert "李四：民主评议 81（合格） ⚠不合格" in board
    assert "王书记：评议不完整（缺项）" in board

    # closed: no more ratings or entries; a second close and a re-open are refused
    calls = await ev(h, b.lisi, "/evaluate rate 王书记 80")
    assert "目前没有进行中的民主评议" in said(calls, b.lisi.id)
    calls = await press(h, b.lisi, f"de:r:{rid}:{b.member_ids['secretary']}:80")
    assert "已经结束，不能再评分或录入" in popup(calls)
    calls = await press(h, b.zhang, f"de:k:{rid}:{b.member_ids['secretary']}:b:80")
    assert "已经结束，不能再评分或录入" in popup(calls)
    calls = await press(h, b.secretary, f"de:cy:{rid}")
    assert "已经结束" in popup(calls)
    calls = await ev(h, b.secretary, "/evaluate open 2026-H1")
    assert "2026-H1 的民主评议已经结束" in said(calls, b.secretary.id)
    assert await h.services.democratic.evaluations(b.branch.id, 2026, 1) == found
    # a member's card after the close shows their ratings without buttons
    calls = await press(h, b.lisi, f"de:h:{rid}:0")
    assert "本轮评议已结束" in said(calls, b.lisi.id)


async def test_english_speakers_get_english(h):
    b = await zhangdian(h)
    b.zhang = h.user(b.zhang.id, "张三", username=b.zhang.username, language="en")
    await ev(h, b.secretary, "/evaluate open")
    calls = await ev(h, b.zhang, "/evaluate")
    assert "Peers rated: 0/3" in said(calls, b.zhang.id)
    calls = await ev(h, b.zhang, "/evaluate rate me excellent")
    assert "Self-rating recorded: 95 (excellent)" in said(calls, b.zhang.id)
    calls = await ev(h, b.zhang, "/evaluate help")
    assert "/evaluate open 2026-H1" in said(calls, b.zhang.id)


# --- the pure rules ---------------------------------------------------------------------------------------


def test_grades_and_their_numbers():
    assert [(g.code, g.value) for g in GRADES] == [("excellent", 95), ("qualified", 80), ("basic", 65), ("unqualified", 50)]
    assert all(grade_of(g.value) == g for g in GRADES)
    assert grade_of(D(90)).code == "excellent" and grade_of(D("89.99")).code == "qualified"
    assert grade_of(D(70)).code == "qualified" and grade_of(D(60)).code == "basic" and grade_of(D("59.99")).code == "unqualified"
    assert parse_rating("87.5") == D("87.5") and parse_rating("100") == D(100) and parse_rating("0") == D(0)
    for bad in ("101", "-1", "1e2", "NaN", "87.555", "", "八十"):
        with pytest.raises(RatingError):
            parse_rating(bad)


def test_halves():
    assert default_half(date(2026, 6, 20)) == (2026, 1)
    assert default_half(date(2026, 7, 10)) == (2026, 1)
    assert default_half(date(2026, 12, 20)) == (2026, 2)
    assert default_half(date(2027, 1, 5)) == (2026, 2)
    today = date(2026, 9, 1)
    assert parse_half("2026-H1", today) == (2026, 1) and parse_half("2026h2", today) == (2026, 2)
    assert parse_half("2025 2", today) == (2025, 2) and parse_half("2026上半年", today) == (2026, 1) and parse_half("H2", today) == (2026, 2)
    for text, reason in (("2027-H1", "future"), ("2024-H2", "too_old"), ("2026-H3", "bad"), ("soon", "bad")):
        with pytest.raises(HalfError) as exc:
            parse_half(text, today)
        assert exc.value.reason == reason
    assert in_half(date(2026, 6, 30), None, 2026, 1) and not in_half(date(2026, 7, 1), None, 2026, 1)
    assert not in_half(None, date(2026, 6, 30), 2026, 2) and in_half(None, date(2026, 7, 1), 2026, 2)


def test_unqualified_definition():
    weights = preset("zhangdian").year_result.democratic_weights
    good = Parts(self_rating=D(90), peers=(D(90),), public=D(90), branch=D(90))
    assert not unqualified(good, weights)
    assert unqualified(Parts(self_rating=D(90), peers=(D(90),), public=D(90), branch=D("59.99")), weights)
    assert unqualified(Parts(self_rating=None, peers=(), public=None, branch=D(50)), weights)  # the branch's 不合格 alone
    low = Parts(self_rating=D(60), peers=(D(50),), public=D(55), branch=D(60))  # 6 + 15 + 16.5 + 18 = 55.5
    assert evaluation(low, weights) == D("55.5") and unqualified(low, weights)
    assert evaluation(Parts(self_rating=D(90), peers=(), public=D(90), branch=D(90)), weights) is None  # no peer rating


RATING = st.decimals(min_value=0, max_value=100, places=2, allow_nan=False, allow_infinity=False)


@st.composite
def weights(draw) -> dict[str, Decimal]:
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=3, max_size=3)))
    shares = [cuts[0], cuts[1] - cuts[0], cuts[2] - cuts[1], 100 - cuts[2]]
    return {k: D(v) / 100 for k, v in zip(("self", "peer", "public", "branch"), shares)}


@settings(max_examples=300, deadline=None)
@given(own=RATING, peers=st.lists(RATING, min_size=1, max_size=40), public=RATING, branch=RATING, w=weights())
def test_the_evaluation_is_the_weighted_mean_within_0_and_100(own, peers, public, branch, w):
    parts = Parts(self_rating=own, peers=tuple(peers), public=public, branch=branch)
    result = evaluation(parts, w)
    mean = sum(peers, D(0)) / len(peers)
    assert result == democratic_score({"self": own, "peer": mean, "public": public, "branch": branch}, w)
    assert D(0) <= result <= D(100)
    assert min(own, min(peers), public, branch) - D("1e-20") <= result <= max(own, max(peers), public, branch) + D("1e-20")
    assert unqualified(parts, w) == (branch < 60 or result < 60)
