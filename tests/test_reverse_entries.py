"""/undo: taking back a mistaken entry (QA #2) — a reversing row after a confirm button, never an edit;
who may, which rows, the member told, /history and the next notice showing it. And a zero-out (一票否决)
recorded with /record: a confirm step, then the member and the secretary told."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bot.harness import plain
from schedules import engine
from storage import ledger as ledger_repo
from tests.conftest import assert_healthy, count, declare, popups, rows, said, setup_branch


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def recorded(h, b, words: str) -> int:
    """A /record by the recorder in private; the new row's number."""
    calls = await h.say(b.recorder, h.private(b.recorder), words)
    assert "已为" in said(calls, b.recorder.id), said(calls)
    return (await rows(h, "SELECT MAX(id) AS id FROM ledger"))[0]["id"]


def alerts(calls) -> str:
    return "\n".join(plain(str(c.params.get("text", ""))) for c in popups(calls))


def last_buttons(h, chat_id: int) -> list[tuple[str, str]]:
    for message in reversed(h.world.messages(chat_id)):
        if h.world.buttons(message):
            return h.world.buttons(message)
    return []


async def standing_text(h, person) -> str:
    return said(await h.say(person, h.private(person), "/points"), person.id)


async def test_undo_confirms_then_writes_one_reversing_row_and_tells_the_member(h, b) -> None:
    number = await recorded(h, b, "/record 3 study absent 缺席")
    assert "本月得分：55分" in await standing_text(h, b.zhang)
    calls = await h.say(b.recorder, h.private(b.recorder), f"/undo {number} 记错了党员，缺席的是李四")
    text = said(calls, b.recorder.id)
    assert f"确认撤销 张三 的记录 #{number}？" in text and "学习教育 · 无故缺席 -5" in text
    assert "撤销理由：记错了党员，缺席的是李四" in text
    ok, no = [d for _, d in last_buttons(h, b.recorder.id)]  # VERB:VERDICT:TOKEN, the token the pending confirm's key
    assert ok.startswith("rv:ok:") and no == "rv:no:" + ok.removeprefix("rv:ok:") and len(ok.encode()) <= 64
    assert await count(h, "ledger", "reverses_id IS NOT NULL") == 0  # nothing before the press

    calls = await h.tap(b.recorder, b.recorder.id, "✅ 确认撤销")
    reversal = (await rows(h, "SELECT * FROM ledger WHERE reverses_id = ?", number))
    assert len(reversal) == 1
    row = reversal[0]
    assert row["source"] == "correction" and Decimal(row["value"]) == 5 and row["occurred_on"] == "2026-03-20"
    assert row["reason"] == f"撤销记录 #{number}：记错了党员，缺席的是李四"
    assert row["actor_id"] == b.member_ids["recorder"]
    assert f"已撤销 张三 的记录 #{number}。更正记录：#{row['id']} 2026-03-20 学习教育 · 无故缺席 +5（更正）" in said(calls, b.recorder.id)
    told = said(calls, b.zhang.id)
    assert f"兰溪镇红星村党支部 撤销了您的积分记录 #{number}" in told and "理由：记错了党员，缺席的是李四" in told
    assert f"更正记录 #{row['id']}" in told
    assert "本月得分：60分" in await standing_text(h, b.zhang)  # the pair drops out of the score

    # /history shows both rows with their numbers (the one /undo and /object take)
    history = said(await h.say(b.zhang, h.private(b.zhang), "/history"), b.zhang.id)
    assert f"#{row['id']} 2026-03-20 学习教育 · 无故缺席 +5（更正）撤销记录 #{number}：记错了党员" in history
    assert f"#{number} 2026-03-20 学习教育 · 无故缺席 -5（记录员）缺席" in history

    # a second press of the same button writes nothing (the pending confirm is gone); a new /undo is refused
    message = next(m for m in reversed(h.world.messages(b.recorder.id)) if "已撤销" in (m.text or ""))
    calls = await h.press(b.recorder, message, f"rv:ok:{number}")
    assert "确认按钮已失效" in alerts(calls)
    calls = await h.say(b.recorder, h.private(b.recorder), f"/undo {number} 再撤一次")
    assert f"记录 #{number} 已经撤销过了（更正记录 #{row['id']}）" in said(calls, b.recorder.id)
    assert await count(h, "ledger", "reverses_id IS NOT NULL") == 1
    assert_healthy(h)


async def test_undo_refusals(h, b) -> None:
    number = await recorded(h, b, "/record 3 study absent 缺席")
    rec = h.private(b.recorder)
    assert "用法：/undo 记录编号 理由" in said(await h.say(b.recorder, rec, f"/undo {number}"))
    assert "用法：/undo 记录编号 理由" in said(await h.say(b.recorder, rec, "/undo abc 理由"))
    assert "本支部没有编号为 #999 的积分记录" in said(await h.say(b.recorder, rec, "/undo 999 理由"))
    # a member may not; nor anyone on their own points; a recorder's own points only by the secretary or a deputy
    assert "只有以下角色可以这样做" in said(await h.say(b.lisi, h.private(b.lisi), f"/undo {number} 不对"))
    calls = await h.say(b.secretary, h.private(b.secretary), "/record 2 study absent 记录员缺席")
    own = (await rows(h, "SELECT MAX(id) AS id FROM ledger"))[0]["id"]
    assert "已为 李记录 记录" in said(calls)
    assert "不能审核自己的申报或给自己记分" in said(await h.say(b.recorder, rec, f"/undo {own} 我没缺席"))
    assert "确认撤销 李记录 的记录" in said(await h.say(b.secretary, h.private(b.secretary), f"/undo {own} 他请过假"))
    # another branch's entry, by its number
    other = await setup_branch(h, chat_id=-1001000000002, title="第二支部", base=2000)
    calls = await h.say(other.recorder, h.private(other.recorder), f"/undo {number} 不是我们的")
    assert f"本支部没有编号为 #{number} 的积分记录" in said(calls)
    # a reversal is not reversed
    await h.say(b.recorder, rec, f"/undo {number} 记错了")
    await h.tap(b.recorder, b.recorder.id, "✅ 确认撤销")
    reversal = (await rows(h, "SELECT id FROM ledger WHERE reverses_id = ?", number))[0]["id"]
    calls = await h.say(b.recorder, rec, f"/undo {reversal} 撤销撤销")
    assert f"记录 #{reversal} 本身是对记录 #{number} 的撤销（更正），不能再撤销" in said(calls)
    assert await count(h, "ledger", "reverses_id IS NOT NULL") == 1
    assert_healthy(h)


async def test_cancel_and_someone_elses_press_write_nothing(h, b) -> None:
    number = await recorded(h, b, "/record 3 study absent 缺席")
    await h.say(b.recorder, h.private(b.recorder), f"/undo {number} 记错了")
    message = next(m for m in reversed(h.world.messages(b.recorder.id)) if h.world.buttons(m))
    _, data = h.find_button(b.recorder.id, "确认撤销")
    calls = await h.press(b.secretary, message, data)  # a crafted press from another person
    assert "只有发送这条命令的人可以确认" in alerts(calls)
    calls = await h.press(b.recorder, message, f"rv:ok:{number + 1}")  # forged data
    assert "确认按钮已失效" in alerts(calls)
    calls = await h.tap(b.recorder, b.recorder.id, "✖ 不撤销")
    assert "已取消，记录未撤销" in said(calls)
    assert await count(h, "ledger", "reverses_id IS NOT NULL") == 0
    assert_healthy(h)


async def test_an_entry_an_objection_withdrew_and_a_finalised_year_are_refused(h, b) -> None:
    number = await recorded(h, b, "/record 3 study absent 缺席")
    async with h.db.transaction() as conn:  # withdrawn by something else first (an objection's correction)
        original = await ledger_repo.by_id(conn, number)
        assert original is not None
        other = await ledger_repo.reverse(conn, original, reference="obj:1", actor_id=b.member_ids["secretary"], reason="异议 #1")
    assert other is not None
    calls = await h.say(b.recorder, h.private(b.recorder), f"/undo {number} 记错了")
    assert f"记录 #{number} 已经撤销过了（更正记录 #{other.id}）" in said(calls)

    second = await recorded(h, b, "/record 4 study absent 缺席")
    await h.say(b.recorder, h.private(b.recorder), f"/undo {second} 记错了")  # confirm shown, then the year is locked
    async with h.db.transaction() as conn:
        await conn.execute("INSERT INTO notices (id, branch_id, period_key, first_day, last_day, due_at, posted_at, closes_at)"
                           " VALUES (900, ?, '2026', '2026-01-01', '2026-12-31', 'x', 'x', 'x')", (b.branch.id,))
        await conn.execute("INSERT INTO grade_rounds (id, branch_id, year, round, status, rulebook_code, notice_id, publicity_days,"
                           " published, published_upto, confirmed_by, confirmed_at) VALUES (900, ?, 2026, 1, 'final', 'xishui', 900, 7,"
                           " '{}', 0, ?, 'x')", (b.branch.id, b.member_ids["secretary"]))
        await conn.execute("INSERT INTO locked_years (branch_id, year, round_id, locked_at) VALUES (?, 2026, 900, 'x')", (b.branch.id,))
    calls = await h.tap(b.recorder, b.recorder.id, "✅ 确认撤销")
    assert "2026年度积分已定级锁定" in alerts(calls) and "/reopen 2026" in alerts(calls)
    calls = await h.say(b.recorder, h.private(b.recorder), f"/undo {second} 记错了")
    assert "/reopen 2026" in said(calls)
    assert await rows(h, "SELECT id FROM ledger WHERE reverses_id = ?", second) == []
    assert_healthy(h)


async def test_an_approved_declaration_taken_back_stays_approved_and_says_so(h, b) -> None:
    declaration = await declare(h, b.zhang)
    assert declaration is not None
    await h.tap(b.recorder, b.recorder.id, "✅ 通过 10分")
    entry = (await rows(h, "SELECT id FROM ledger WHERE reference = ?", f"decl:{declaration}"))[0]["id"]
    calls = await h.say(b.secretary, h.private(b.secretary), f"/undo {entry} 核实后不属实")
    assert f"这条记录来自申报 #{declaration}" in said(calls)
    calls = await h.tap(b.secretary, b.secretary.id, "✅ 确认撤销")
    assert f"这条记录来自申报 #{declaration}" in said(calls, b.zhang.id)
    assert (await rows(h, "SELECT status FROM declarations WHERE id = ?", declaration))[0]["status"] == "approved"
    assert len(await rows(h, "SELECT id FROM ledger WHERE reverses_id = ?", entry)) == 1
    assert_healthy(h)


@pytest.fixture
def only_notices(monkeypatch):
    monkeypatch.setattr(engine, "PRODUCERS", [p for p in engine.PRODUCERS if p.kind in ("notice", "notice_remind", "notice_close")])


async def test_a_published_entry_taken_back_is_in_the_next_notice_as_a_correction(h, clock, only_notices) -> None:
    clock.set(utc(2026, 3, 20, 2, 0))
    b = await setup_branch(h)
    await h.db.conn.execute("UPDATE branches SET created_at = ? WHERE id = ?", (utc(2026, 3, 20, 2, 0).isoformat(), b.branch.id))
    await h.db.conn.commit()
    number = await recorded(h, b, "/record 3 study absent 缺席")
    clock.set(utc(2026, 4, 1, 1, 1))
    await engine.tick(h.app, clock.now())  # March's notice, listing the entry
    march = "\n".join(plain(str(c.params["text"])) for c in h.world.sent(b.group.id, "sendMessage"))
    assert f"#{number} 03-20" in march
    clock.set(utc(2026, 4, 3, 2, 0))
    await h.say(b.recorder, h.private(b.recorder), f"/undo {number} 那天张三请过假")
    await h.tap(b.recorder, b.recorder.id, "✅ 确认撤销")
    reversal = (await rows(h, "SELECT id FROM ledger WHERE reverses_id = ?", number))[0]["id"]
    before = len(h.world.sent(b.group.id, "sendMessage"))
    clock.set(utc(2026, 5, 1, 1, 1))
    await engine.tick(h.app, clock.now())
    april = "\n".join(plain(str(c.params["text"])) for c in h.world.sent(b.group.id, "sendMessage")[before:])
    block = april.split("以往各期的补记与更正")[1]
    assert f"#{reversal} 2026-03-20 张三 撤销记录 #{number}（学习教育 · 无故缺席）+5" in block
    assert "那天张三请过假" in block
    assert_healthy(h)


# --- a zero-out (一票否决) by /record ------------------------------------------------------------------


async def test_a_zero_out_waits_for_the_confirm_then_tells_the_member_and_the_secretary(h, b) -> None:
    calls = await h.say(b.recorder, h.private(b.recorder), "/record 3 law_breaking 醉驾被行政拘留")
    text = said(calls, b.recorder.id)
    assert "确认为 张三 记录“违反法律法规”（一票否决，2026-03-20）？" in text and "记录后其本周期积分为 0" in text
    assert await count(h, "ledger") == 0
    assert said(calls, b.zhang.id) == ""

    calls = await h.tap(b.recorder, b.recorder.id, "⚠ 确认记录")
    written = await rows(h, "SELECT * FROM ledger")
    assert len(written) == 1 and written[0]["item_code"] == "law_breaking" and Decimal(written[0]["value"]) == 0
    number = written[0]["id"]
    assert f"已为 张三 记录：#{number} 2026-03-20 违反法律法规" in said(calls, b.recorder.id)
    assert f"/undo {number}" in said(calls, b.recorder.id)
    assert "为您记录了“违反法律法规”（一票否决，2026-03-20），您本周期的积分为 0" in said(calls, b.zhang.id)
    manager = said(calls, b.secretary.id)
    assert "李记录 为 张三（兰溪镇红星村党支部）记录了“违反法律法规”" in manager and f"/undo {number} 理由" in manager
    assert said(calls, b.lisi.id) == ""
    assert "积分为 0" in await standing_text(h, b.zhang)

    # the same button again: nothing more written, nobody told twice
    message = next(m for m in reversed(h.world.messages(b.recorder.id)) if "已为 张三 记录" in (m.text or ""))
    calls = await h.press(b.recorder, message, "rz:ok:3")
    assert "确认按钮已失效" in alerts(calls) and said(calls, b.zhang.id) == ""
    assert await count(h, "ledger") == 1

    # taken back by /undo: the year counts again
    await h.say(b.secretary, h.private(b.secretary), f"/undo {number} 拘留决定已撤销")
    await h.tap(b.secretary, b.secretary.id, "✅ 确认撤销")
    assert "积分为 0" not in await standing_text(h, b.zhang)
    assert_healthy(h)


async def test_a_zero_out_cancelled_writes_nothing(h, b) -> None:
    await h.say(b.recorder, h.private(b.recorder), "/record 3 law_breaking 打错了编号")
    calls = await h.tap(b.recorder, b.recorder.id, "✖ 不记录")
    assert "已取消，没有记录" in said(calls)
    assert await count(h, "ledger") == 0 and said(calls, b.zhang.id) == ""
    # a zero-out the recorder may not enter is refused before any button
    calls = await h.say(b.recorder, h.private(b.recorder), "/record 2 law_breaking 自己")
    assert "不能审核自己的申报或给自己记分" in said(calls)
    assert all(not d.startswith("rz:") for _, d in last_buttons(h, b.recorder.id))
    assert_healthy(h)


async def test_english_undo(h, b) -> None:
    number = await recorded(h, b, "/record 3 study absent missed")
    recorder = h.user(b.recorder.id, b.recorder.full_name, username=b.recorder.username, language="en")
    calls = await h.say(recorder, h.private(recorder), f"/undo {number} wrong member")
    assert f"Take back record #{number} of 张三?" in said(calls)
    calls = await h.tap(recorder, recorder.id, "✅ Take it back")
    assert f"Record #{number} of 张三 taken back." in said(calls, recorder.id)
    assert_healthy(h)

