"""The periodic notice's review and sign-off (支委会审核，支部书记签字确认; audit item 7; seeds 000 l.25 and
004 l.28-30), end to end through the real Application.

The notice still posts at its moment without waiting for anyone; then the secretary and deputies get its
summary privately with a button to sign it off. One press records who and when (once); the group, /unconfirmed
and the window's close summary say whether and by whom it was signed; an unsigned notice's signers are
reminded once, a day before the window closes.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bot.harness import plain
from schedules import engine
from tests.conftest import count, popups, rows, said, setup_branch
from tests.test_notices import APRIL_1, alerts, branch_at, notice_posts, record, tick, utc

KINDS = ("notice", "notice_remind", "notice_close", "notice_signoff_remind")
CLOSES = utc(2026, 4, 8, 1, 1)  # March's notice posted at 09:01 on April 1 (Asia/Shanghai): 7 days
SIGN_LABEL = "审核无误，签字确认"


@pytest.fixture
def only_notices(monkeypatch):
    monkeypatch.setattr(engine, "PRODUCERS", [p for p in engine.PRODUCERS if p.kind in KINDS])


def signoff_messages(h, user) -> list:
    return [m for m in h.world.messages(user.id) if any(d.startswith("nt:sg:") for _, d in h.world.buttons(m))]


def group_texts(h, b) -> list[str]:
    return [plain(str(c.params["text"])) for c in h.world.sent(b.group.id, "sendMessage") if c.ok]


async def test_the_notice_posts_unsigned_and_one_press_signs_it_once_for_everyone(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
    await h.say(b.secretary, b.group, "/role @zhang_1000 deputy")
    other = await setup_branch(h, chat_id=-1001000000002, title="另一个支部", base=2000)
    await record(h, b, "zhang", "study", "-5", date(2026, 3, 10), "3月10日学习无故缺席", event="absent")

    # The notice goes out at its moment, not waiting for the sign-off; its footer says it is not signed yet.
    done = await tick(h, clock, APRIL_1 + timedelta(minutes=1))
    assert (b.branch.id, "notice", "2026-03", "done") in done
    text = notice_posts(h, b)[-1]
    assert "书记审核：待签字" in text
    notice = (await rows(h, "SELECT * FROM notices WHERE branch_id = ?", b.branch.id))[0]
    assert notice["sent_at"] is not None and notice["signed_by"] is None and notice["signed_at"] is None

    # The secretary and the deputy (only they) get the summary privately with the sign-off button.
    data = f"nt:sg:{notice['id']}"
    assert len(data.encode()) <= 64
    for person in (b.secretary, b.zhang):
        asks = signoff_messages(h, person)
        assert len(asks) == 1
        assert [(label, d) for label, d in h.world.buttons(asks[0])] == [("🖊 " + SIGN_LABEL, data)]
        ask = plain(asks[0].text or "")
        assert "兰溪镇红星村党支部 2026年3月 积分公示已生成" in ask and "4 名党员，本期记分 1 条" in ask
        assert "张三：本月" in ask and "请支委会核实每名党员的记分情况" in ask
    for person in (b.recorder, b.lisi):
        assert signoff_messages(h, person) == []
    assert all(d != data for m in signoff_messages(h, other.secretary) for _, d in h.world.buttons(m))  # its own only
    ask_message = signoff_messages(h, b.secretary)[0]

    # /unconfirmed shows it unsigned.
    calls = await h.say(b.recorder, h.private(b.recorder), "/unconfirmed")
    assert "书记审核：待签字" in said(calls)

    # The button carries no authority: the recorder, a plain member and another branch's secretary are refused.
    for person, refused in ((b.recorder, "只有以下角色可以这样做"), (b.lisi, "只有以下角色可以这样做"),
                            (other.secretary, "您不是本支部已登记的党员")):
        calls = await h.press(person, ask_message, data)
        assert len(popups(calls)) == 1
        assert refused in alerts(calls)
    assert (await rows(h, "SELECT signed_by FROM notices WHERE id = ?", notice["id"]))[0]["signed_by"] is None

    # The secretary signs: who and when are recorded, the button shows it, the group is told.
    clock.set(APRIL_1 + timedelta(hours=2))
    calls = await h.press(b.secretary, ask_message, data)
    assert len(popups(calls)) == 1
    assert "已签字确认 2026年3月 积分公示：已签字（王书记，4月1日）" in "\n".join(
        plain(str(c.params.get("text", ""))) for c in popups(calls))
    signed = (await rows(h, "SELECT signed_by, signed_at FROM notices WHERE id = ?", notice["id"]))[0]
    assert signed["signed_by"] == b.member_ids["secretary"] and signed["signed_at"] == "2026-04-01T03:00:00+00:00"
    marked = [c for c in calls if c.method == "editMessageReplyMarkup"]
    assert marked and "已签字（王书记，4月1日）" in str(marked[0].params["reply_markup"])
    assert any("2026年3月 积分公示 书记审核：已签字（王书记，4月1日）" in t for t in group_texts(h, b))

    # A second press, by the deputy or the secretary again, changes nothing and says who signed and when.
    clock.set(APRIL_1 + timedelta(days=1))
    for person in (b.zhang, b.secretary):
        calls = await h.press(person, signoff_messages(h, person)[0], data)
        assert len(popups(calls)) == 1
        assert "2026年3月 积分公示已签字（王书记，4月1日），不必再签" in alerts(calls)
    again = (await rows(h, "SELECT signed_by, signed_at FROM notices WHERE id = ?", notice["id"]))[0]
    assert again == signed
    assert sum("书记审核：已签字" in t for t in group_texts(h, b)) == 1

    calls = await h.say(b.secretary, h.private(b.secretary), "/unconfirmed")
    assert "书记审核：已签字（王书记，4月1日）" in said(calls)

    # A signed notice gets no reminder to sign; its close summary says it was signed.
    done = await tick(h, clock, CLOSES - timedelta(days=1))
    assert (b.branch.id, "notice_signoff_remind", "2026-03", "done") not in done
    assert len(signoff_messages(h, b.secretary)) == 1
    await tick(h, clock, CLOSES)
    closing = [t for t in group_texts(h, b) if "异议期已结束" in t]
    assert len(closing) == 1 and "书记审核：已签字（王书记，4月1日）" in closing[0]


async def test_an_unsigned_notice_reminds_its_signers_once_and_closes_saying_not_signed(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
    await h.say(b.secretary, b.group, "/role @zhang_1000 deputy")
    await tick(h, clock, APRIL_1 + timedelta(minutes=1))
    assert notice_posts(h, b)  # posted though nobody signed
    notice_id = (await rows(h, "SELECT id FROM notices"))[0]["id"]

    assert [d for d in await tick(h, clock, CLOSES - timedelta(days=1, minutes=1)) if d[1] == "notice_signoff_remind"] == []
    done = await tick(h, clock, CLOSES - timedelta(days=1))
    assert (b.branch.id, "notice_signoff_remind", "2026-03", "done") in done
    for person in (b.secretary, b.zhang):
        asks = signoff_messages(h, person)
        assert len(asks) == 2  # the ask, then the reminder
        assert "异议期将于 2026-04-08 09:01 结束，还没有书记审核签字" in plain(asks[-1].text or "")
        assert [d for _, d in h.world.buttons(asks[-1])] == [f"nt:sg:{notice_id}"]
    for person in (b.recorder, b.lisi):
        assert signoff_messages(h, person) == []
    await tick(h, clock, CLOSES - timedelta(hours=12))
    assert len(signoff_messages(h, b.secretary)) == 2  # once

    await tick(h, clock, CLOSES)
    closing = [t for t in group_texts(h, b) if "异议期已结束" in t]
    assert len(closing) == 1 and "书记审核：未签字" in closing[0]
    assert await count(h, "notices", "signed_by IS NOT NULL") == 0

    # Signing after the window closed is still recorded (a late committee meeting); the deputy may sign.
    calls = await h.tap(b.zhang, b.zhang.id, SIGN_LABEL)
    assert "已签字（张三，4月8日）" in "\n".join(plain(str(c.params.get("text", ""))) for c in popups(calls))
    assert (await rows(h, "SELECT signed_by FROM notices"))[0]["signed_by"] == b.member_ids["zhang"]


async def test_a_crafted_sign_off_press_for_no_notice_is_answered_and_changes_nothing(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
    await tick(h, clock, APRIL_1 + timedelta(minutes=1))
    message = signoff_messages(h, b.secretary)[0]
    calls = await h.press(b.secretary, message, "nt:sg:999999999999")
    assert len(popups(calls)) == 1 and "找不到这期公示" in alerts(calls)
    assert await count(h, "notices", "signed_by IS NOT NULL") == 0


async def test_in_an_english_branch_the_group_reads_the_status_in_english(h, clock, only_notices):
    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
    await h.say(b.secretary, b.group, "/language en")
    await tick(h, clock, APRIL_1 + timedelta(minutes=1))
    assert any("Secretary's review: awaiting signature" in t for t in group_texts(h, b))
    message = signoff_messages(h, b.secretary)[0]  # privately in the secretary's own language (zh here)
    await h.press(b.secretary, message, h.world.buttons(message)[0][1])
    assert any("Secretary's review: signed (王书记, 4/1)" in t for t in group_texts(h, b))


async def test_the_towns_drill_down_shows_each_notices_sign_off(h, clock, only_notices):
    from tests.test_town import joined, make_town

    b = await branch_at(h, clock, utc(2026, 3, 20, 2, 0))
    t = await make_town(h)
    await joined(h, b, t)
    await tick(h, clock, APRIL_1 + timedelta(minutes=1))
    await h.say(t.admin, h.private(t.admin), "/town")
    drill = said(await h.tap(t.admin, t.admin.id, "1. 兰溪镇红星村党支部"))
    assert "2026年3月：2026-04-01 09:01 书记审核：待签字" in drill
    clock.set(APRIL_1 + timedelta(hours=2))
    message = signoff_messages(h, b.secretary)[0]
    await h.press(b.secretary, message, h.world.buttons(message)[0][1])
    await h.say(t.admin, h.private(t.admin), "/town")
    drill = said(await h.tap(t.admin, t.admin.id, "1. 兰溪镇红星村党支部"))
    assert "2026年3月：2026-04-01 09:01 书记审核：已签字（王书记，4月1日）" in drill
