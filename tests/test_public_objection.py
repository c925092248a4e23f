"""The public's objection (群众反映; audit item 6; seed 000 l.29 — a 群众 complaint cancelled a member's points —
and 004 l.32 "接受党员、群众及服务对象监督"), end to end through the real Application.

A supervisor, secretary or deputy records it with /public ENTRY text (or picks the entry from /public's list):
stored as an objection with the source 'public' and who recorded it, decided by the other deciders exactly as
a member's objection, shown as 「群众反映（由 李四 登记）」 on the card and in the window's close summary.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from bot.harness import plain
from schedules import engine
from tests.conftest import count, popups, rows, said
from tests.test_notices import APRIL_1, alerts, branch_at, private_texts, record, tick, utc

KINDS = ("notice", "notice_remind", "notice_close")
CLOSES = utc(2026, 4, 8, 1, 1)


@pytest.fixture
def only_notices(monkeypatch):
    monkeypatch.setattr(engine, "PRODUCERS", [p for p in engine.PRODUCERS if p.kind in KINDS])


def group_texts(h, b) -> list[str]:
    return [plain(str(c.params["text"])) for c in h.world.sent(b.group.id, "sendMessage") if c.ok]


async def test_the_seed_example_the_publics_report_recorded_by_the_supervisor_withdraws_the_points(h, clock, only_notices):
    """Seed 000: 义务打扫街巷 earned points; 群众反映 he swept only his own and his cousins' doorways; cancelled."""
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0), preset="sanmenxia")
    await h.say(b.secretary, b.group, "/role @lisi_1000 supervisor")
    swept = await record(h, b, "zhang", "green_zone", "10", date(2026, 3, 25), "义务打扫街巷")
    await tick(h, clock, APRIL_1 + timedelta(minutes=5))

    calls = await h.say(b.lisi, h.private(b.lisi), f"/public {swept} 群众反映：扫的是他家和堂兄弟门口的路")
    assert f"已登记群众对记录 #{swept}（张三）的反映，编号 #1" in said(calls, b.lisi.id)
    objection = (await rows(h, "SELECT * FROM objections"))[0]
    assert objection["source"] == "public" and objection["kind"] == "objection"
    assert objection["objector_id"] == b.member_ids["lisi"] and objection["member_id"] == b.member_ids["zhang"]
    assert objection["ledger_id"] == swept and objection["target"] == f"public:entry:{swept}"
    assert "扫的是他家" not in "\n".join(group_texts(h, b))  # private, as members' objections are

    card = h.world.last_message(b.secretary.id)
    assert "异议 #1" in (card.text or "") and "提出人：群众反映（由 李四 登记）" in plain(card.text or "")
    assert [d for _, d in h.world.buttons(card)] == ["nt:up:1", "nt:wd:1"]
    assert not [m for m in h.world.messages(b.lisi.id)  # who recorded it gets no card: the others decide it
                if "nt:wd:1" in [d for _, d in h.world.buttons(m)]]

    # The same decision flow: the recorder may not decide what they recorded; the secretary withdraws the points.
    calls = await h.press(b.lisi, card, "nt:wd:1")
    assert "须由其他监督员、书记或副书记处理" in alerts(calls)
    calls = await h.press(b.secretary, card, "nt:wd:1")
    assert "已撤销该分" in "\n".join(plain(str(c.params.get("text", ""))) for c in popups(calls))
    reversal = (await rows(h, "SELECT * FROM ledger WHERE reverses_id = ?", swept))[0]
    assert Decimal(reversal["value"]) == Decimal(-10) and reversal["reason"] == "异议 #1：群众反映：扫的是他家和堂兄弟门口的路"
    assert "提出人：群众反映（由 李四 登记）" in plain(h.world.last_message(b.secretary.id).text or "")
    assert "您登记的群众反映 #1" in private_texts(h, b.lisi) and "该分已撤销。请转告反映人" in private_texts(h, b.lisi)
    assert "该分已撤销。理由：群众反映" in private_texts(h, b.zhang)
    assert any("异议 #1 处理结果" in t and "已撤销" in t for t in group_texts(h, b))

    await tick(h, clock, CLOSES + timedelta(minutes=4))  # the quarter's notice went out at 09:05
    closing = [t for t in group_texts(h, b) if "异议期已结束" in t]
    assert len(closing) == 1
    assert "收到异议 1 件，其中撤销积分 1 件" in closing[0]
    assert "其中群众反映 1 件：#1 群众反映（由 李四 登记）已撤销该分" in closing[0]


async def test_who_may_record_it_the_flow_by_steps_and_bad_input(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
    await h.say(b.secretary, b.group, "/role @lisi_1000 supervisor")
    entry = await record(h, b, "zhang", "study", "-5", date(2026, 3, 10), "3月10日学习无故缺席", event="absent")
    await tick(h, clock, APRIL_1 + timedelta(minutes=1))

    # A plain member and the recorder may object in their own name, not record the public's objection.
    for person in (b.zhang, b.recorder):
        calls = await h.say(person, h.private(person), f"/public {entry} 群众说他那天在")
        assert "只有以下角色可以这样做" in said(calls)
    assert await count(h, "objections") == 0
    calls = await h.say(b.lisi, h.private(b.lisi), "/public abc 内容")
    assert "请写记录编号（数字），例如 /public 12" in said(calls)
    calls = await h.say(b.lisi, h.private(b.lisi), "/public 999999 内容")
    assert "本支部没有编号为 #999999 的积分记录" in said(calls)
    calls = await h.say(b.lisi, b.group, f"/public {entry} 内容")  # in the group: to private, nothing stored
    assert "登记群众反映请私聊我" in said(calls)
    assert await count(h, "objections") == 0

    # /public alone: the usage and the open entries, each a button; the secretary picks one and types it.
    calls = await h.say(b.secretary, h.private(b.secretary), "/public")
    assert "用法：/public 记录编号 群众反映的内容" in said(calls)
    listing = h.world.last_message(b.secretary.id)
    assert f"nt:pb:{entry}" in [d for _, d in h.world.buttons(listing)]
    await h.press(b.secretary, listing, f"nt:pb:{entry}")
    assert "请写明群众反映的内容" in plain(h.world.last_message(b.secretary.id).text or "")
    calls = await h.say(b.secretary, h.private(b.secretary), "村民说3月10日他在村委会帮忙，不是无故缺席")
    assert f"已登记群众对记录 #{entry}（张三）的反映" in said(calls)
    stored = (await rows(h, "SELECT * FROM objections"))[0]
    assert stored["source"] == "public" and stored["objector_id"] == b.member_ids["secretary"]
    card = h.world.last_message(b.lisi.id)  # the supervisor decides what the secretary recorded
    assert "提出人：群众反映（由 王书记 登记）" in plain(card.text or "")

    # Once per recorder and entry; the secretary's own objection is another matter; a member's stays member.
    calls = await h.say(b.secretary, h.private(b.secretary), f"/public {entry} 又有村民反映")
    assert f"您已经登记过群众对记录 #{entry} 的反映了（#1）" in said(calls)
    calls = await h.say(b.lisi, h.private(b.lisi), f"/public {entry}")
    assert "请写明群众反映的内容" in said(calls)
    await h.say(b.lisi, h.private(b.lisi), "/cancel")
    calls = await h.say(b.recorder, h.private(b.recorder), f"/object {entry} 我记错了")
    assert "已收到您对记录" in said(calls)
    sources = [(r["source"], r["objector_id"]) for r in await rows(h, "SELECT source, objector_id FROM objections ORDER BY id")]
    assert sources == [("public", b.member_ids["secretary"]), ("member", b.member_ids["recorder"])]
    member_card = h.world.last_message(b.secretary.id)
    assert "提出人：李记录" in plain(member_card.text or "") and "群众反映" not in plain(member_card.text or "")

    # After the window: refused with the date, nothing stored.
    clock.set(CLOSES + timedelta(minutes=1))
    calls = await h.say(b.lisi, h.private(b.lisi), f"/public {entry} 迟到的反映")
    assert "异议期已于 2026-04-08 09:01 结束" in said(calls)
    assert await count(h, "objections") == 2
