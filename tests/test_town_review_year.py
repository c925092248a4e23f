"""The year end of a branch in a town: the secretary's confirmation goes to the town for review before the
≥ 7-day publicity (approve / send back with reasons / stale when the figures changed), and the finalised
year is filed (备案) with the town, which exports its filing as one xlsx.

Through the real handlers (bot.harness, FixedClock, engine.tick), asserting on the Bot API calls, the
workbook and the database. The branch without a town is test_grading_flow.py's, unchanged.
"""

from __future__ import annotations

import io
from datetime import date

import pytest
from openpyxl import load_workbook

from bot.errors import InvalidInput
from handlers.town import tell_detached
from storage import towns as towns_repo
from tests.conftest import count, rows, said, setup_branch
from tests.test_grading_flow import alerts, as_actor, only_year_end, put, texts, tick, utc, xishui_year  # noqa: F401
from tests.test_town_review import in_town


def buttons_of(h, chat_id: int, prefix: str):
    for message in reversed(h.world.messages(chat_id)):
        found = [d for _, d in h.world.buttons(message) if d.startswith(prefix)]
        if found:
            return message, found
    raise LookupError(prefix)


async def confirm_2026(h, b) -> tuple[list, object, str]:
    """The secretary's /grade 2026 with 张三 picked for the one excellent place, then Confirm; returns the
    calls and the pressed message and data (to press again)."""
    chat = h.private(b.secretary)
    await h.say(b.secretary, chat, "/grade 2026")
    await h.tap(b.secretary, b.secretary.id, "☐ 张三")
    message, data = h.find_button(b.secretary.id, "确认并公示")
    return await h.press(b.secretary, message, data), message, data


async def test_the_town_reviews_the_grades_before_the_publicity_and_receives_the_filing(h, clock, only_year_end, monkeypatch):
    b = await xishui_year(h, clock)
    t = await in_town(h, b)
    quiet = await setup_branch(h, chat_id=-1001000000009, title="兰溪镇青山村党支部", base=3000)
    async with h.db.transaction() as conn:
        await towns_repo.join(conn, quiet.branch.id, t.town.id)
    await tick(h, clock, utc(2027, 1, 1, 1, 1))  # November's and December's notices
    clock.set(utc(2027, 1, 2, 2, 0))

    # The secretary confirms: the result goes to the town, not to the group.
    calls, confirm_message, confirm_data = await confirm_2026(h, b)
    assert "已报兰溪镇审核" in " ".join(str(c.params.get("text")) for c in calls if c.method == "answerCallbackQuery")
    assert "2026年度评定结果已报兰溪镇审核" in said(calls, b.secretary.id)
    assert await count(h, "grade_rounds") == 0 and await count(h, "notices", "period_key = '2026'") == 0
    review = (await rows(h, "SELECT * FROM year_reviews"))[0]
    assert review["status"] == "pending" and review["attempt"] == 1 and review["submitted_by"] == b.member_ids["secretary"]
    card, data = buttons_of(h, t.admin.id, "tv:r")
    assert data == [f"tv:ra:{review['id']}", f"tv:rb:{review['id']}"]
    shown = "\n".join(texts(h, t.admin.id))
    assert "兰溪镇红星村党支部 2026年度评定结果报兰溪镇审核（第 1 次报送" in shown
    assert "1. 张三　85 分　优秀 ★★★★★" in shown and "李记录　59.17 分　不合格 ★★" in shown
    assert not [m for m in texts(h, b.group.id) if "2026年度党员积分、等次公示" in m]

    # A double tap, and /grade meanwhile: it waits for the town.
    calls = await h.press(b.secretary, confirm_message, confirm_data)
    assert "已经报镇审核，正在等待审核" in alerts(calls) and await count(h, "year_reviews") == 1
    calls = await h.say(b.secretary, h.private(b.secretary), "/grade 2026")
    assert "报镇审核，正在等待审核" in said(calls, b.secretary.id)
    with pytest.raises(InvalidInput) as refused:  # no path around the town
        await h.services.grading.publicise(b.branch, as_actor(b.secretary), 2026, 1, review["fingerprint"])
    assert refused.value.key == "town_review.review_first"

    # Only this town's administrators decide.
    for person in (b.secretary, b.lisi, t.other):
        calls = await h.press(person, card, f"tv:ra:{review['id']}")
        assert "只有该支部所属镇（党总支）的管理员可以这样做" in alerts(calls)
        calls = await h.press(person, card, f"tv:rb:{review['id']}")
        assert "只有该支部所属镇（党总支）的管理员可以这样做" in alerts(calls)
    assert (await rows(h, "SELECT status FROM year_reviews"))[0]["status"] == "pending"

    # Sent back with reasons: the secretary is told and may confirm again.
    calls = await h.press(t.admin, card, f"tv:rb:{review['id']}")
    assert "请写明需要修改的地方" in said(calls, t.admin.id)
    await h.say(t.admin, h.private(t.admin), "李记录3月的缺席请核实是否请假")
    returned = (await rows(h, "SELECT * FROM year_reviews"))[0]
    assert returned["status"] == "returned" and returned["reason"] == "李记录3月的缺席请核实是否请假"
    assert returned["decided_by"] == t.admin.id
    assert "兰溪镇退回了2026年度评定结果。需要修改的地方：李记录3月的缺席请核实是否请假" in "\n".join(texts(h, b.secretary.id))
    calls = await h.press(t.admin, card, f"tv:ra:{review['id']}")
    assert "2026年度评定结果已经退回" in alerts(calls) and await count(h, "grade_rounds") == 0
    calls = await h.say(b.secretary, h.private(b.secretary), "/grade 2026")
    assert "镇里退回了上次报审的结果：李记录3月的缺席请核实是否请假" in said(calls, b.secretary.id)

    # Confirmed again; then a late 2026 entry changes the figures before the town decides: stale.
    await confirm_2026(h, b)
    second = (await rows(h, "SELECT * FROM year_reviews WHERE attempt = 2"))[0]
    await put(h, b, "recorder", "study", "-5", date(2026, 12, 20), event="absent")
    card, _ = buttons_of(h, t.admin.id, f"tv:ra:{second['id']}")
    calls = await h.press(t.admin, card, f"tv:ra:{second['id']}")
    assert "确认后积分又有变化" in alerts(calls)
    assert (await rows(h, "SELECT status FROM year_reviews WHERE id = ?", second["id"]))[0]["status"] == "stale"
    assert await count(h, "grade_rounds") == 0
    assert "请发送 /grade 2026 核对后重新确认报审" in "\n".join(texts(h, b.secretary.id))

    # The third confirmation is approved: the publicity starts as without a town, confirmed by the secretary.
    clock.set(utc(2027, 1, 3, 2, 0))
    await confirm_2026(h, b)
    third = (await rows(h, "SELECT * FROM year_reviews WHERE attempt = 3"))[0]
    card, _ = buttons_of(h, t.admin.id, f"tv:ra:{third['id']}")
    calls = await h.press(t.admin, card, f"tv:ra:{third['id']}")
    assert "已审核通过" in "\n".join(str(c.params.get("text")) for c in calls if c.method == "answerCallbackQuery")
    stored = (await rows(h, "SELECT * FROM grade_rounds"))[0]
    assert stored["status"] == "publicity" and stored["confirmed_by"] == b.member_ids["secretary"]
    approved = (await rows(h, "SELECT * FROM year_reviews WHERE id = ?", third["id"]))[0]
    assert approved["status"] == "approved" and approved["round_id"] == stored["id"]
    group = "\n".join(texts(h, b.group.id))
    assert "兰溪镇红星村党支部 2026年度党员积分、等次公示" in group and "公示期 7 天，至 2027-01-10 10:00" in group
    assert "兰溪镇已审核通过2026年度评定结果。已在群里公示 7 天，至 2027-01-10 10:00" in "\n".join(texts(h, b.secretary.id))
    calls = await h.press(t.admin, card, f"tv:ra:{third['id']}")  # a double tap
    assert "2026年度评定结果已经审核通过" in alerts(calls) and await count(h, "grade_rounds") == 1

    # The window ends; the secretary finalises: the snapshot is filed with the town.
    async def year_documents(branch, year, lang=None, *, personal=False):
        return [(f"{year}-summary.xlsx", b"PK\x03\x04 xlsx")]

    monkeypatch.setattr(h.services.exports, "year_documents", year_documents)
    await tick(h, clock, utc(2027, 1, 10, 2, 1))
    calls = await h.tap(b.secretary, b.secretary.id, "定级并锁定")
    assert "2026年度定级结果已报兰溪镇备案" in said(calls, b.secretary.id)
    filing = (await rows(h, "SELECT * FROM town_filings"))[0]
    assert filing["round_id"] == stored["id"] and filing["town_id"] == t.town.id and filing["year"] == 2026
    assert "兰溪镇红星村党支部 的2026年度定级结果已锁定并报镇备案" in "\n".join(texts(h, t.admin.id))

    # The town's filing: a summary sheet and a sheet per filed branch, in private, for its administrators.
    calls = await h.say(b.secretary, h.private(b.secretary), "/townfile 2026")
    assert "只有该支部所属镇（党总支）的管理员可以这样做" in said(calls, b.secretary.id)
    calls = await h.say(t.admin, h.private(t.admin), "/townfile 2026")
    documents = [c for c in calls if c.method == "sendDocument"]
    assert len(documents) == 1 and documents[0].chat_id == t.admin.id
    book = load_workbook(io.BytesIO(documents[0].files["document"][1]))
    assert book.sheetnames == ["全镇汇总", "兰溪镇红星村党支部"]
    summary = {row[0]: row for row in book["全镇汇总"].iter_rows(min_row=4, values_only=True)}
    assert summary["兰溪镇红星村党支部"][1:5] == ("已备案", "2027-01-10", 7, 5)
    assert summary["兰溪镇青山村党支部"][1] == "尚未报送"
    header = [c.value for c in book["全镇汇总"][3]]
    assert "优秀" in header and summary["兰溪镇红星村党支部"][header.index("优秀")] == 1
    lines = list(book["兰溪镇红星村党支部"].iter_rows(min_row=4, values_only=True))
    assert lines[0][:5] == (1, "张三", 85, "优秀", "★★★★★") and len(lines) == 7

    # The filing button (as the /town menu shows it) works for this town's administrators only.
    message, data = buttons_of(h, t.admin.id, "tv:f:")
    calls = await h.press(t.other, message, data[0])
    assert "只有该支部所属镇" in alerts(calls) and not [c for c in calls if c.method == "sendDocument"]
    calls = await h.press(t.admin, message, data[0])
    assert [c.method for c in calls].count("sendDocument") == 1


async def test_a_branch_leaving_its_town_closes_the_waiting_review_and_may_submit_to_its_next_town(h, clock, only_year_end):
    b = await xishui_year(h, clock)
    t = await in_town(h, b)
    await tick(h, clock, utc(2027, 1, 1, 1, 1))
    clock.set(utc(2027, 1, 2, 2, 0))
    await confirm_2026(h, b)
    review = (await rows(h, "SELECT * FROM year_reviews"))[0]
    card, _ = buttons_of(h, t.admin.id, "tv:ra:")

    # The town takes the branch out: the waiting review is closed in the same transaction.
    detached = await h.services.towns.detach(t.town.id, as_actor(t.admin), b.branch.id)
    assert [r.id for r in detached.reviews] == [review["id"]] and detached.appeals == []
    closed = (await rows(h, "SELECT * FROM year_reviews"))[0]
    assert closed["status"] == "closed" and closed["decided_at"] is not None and closed["decided_by"] is None
    assert await tell_detached(h.app, detached) == len(detached.told) >= 1  # the secretary (and any deputy)
    told = "\n".join(texts(h, b.secretary.id))
    assert "本支部“兰溪镇红星村党支部”已退出“兰溪镇”" in told and "请发送 /grade 2026 核对后重新确认" in told
    shown = h.world.message_by_id(t.admin.id, card.message_id)
    assert "该支部已退出兰溪镇，审核已关闭" in (shown.text or "") and not h.world.buttons(shown)
    calls = await h.press(t.admin, card, f"tv:ra:{review['id']}")  # a press on an old copy
    assert "审核已关闭（支部已退出该镇）" in alerts(calls) and await count(h, "grade_rounds") == 0
    with pytest.raises(Exception):  # a second detach: the branch is not in the town any more
        await h.services.towns.detach(t.town.id, as_actor(t.admin), b.branch.id)

    # It joins another town: its confirmation goes to that town (the closed attempt blocks nothing).
    async with h.db.transaction() as conn:
        assert await towns_repo.join(conn, b.branch.id, t.elsewhere.id)
    calls, _, _ = await confirm_2026(h, b)
    assert "2026年度评定结果已报另一镇审核" in said(calls, b.secretary.id)
    second = (await rows(h, "SELECT * FROM year_reviews WHERE attempt = 2"))[0]
    assert second["status"] == "pending" and second["town_id"] == t.elsewhere.id
    buttons_of(h, t.other.id, f"tv:ra:{second['id']}")


async def test_migration_0020_keeps_every_review_and_its_id(h, clock, only_year_end, backend):
    """0020 rebuilds year_reviews and town_appeals (a CHECK gains 'withdrawn' and 'closed'): run again on
    a database with a waiting review, every row keeps its id and the next id follows (PostgreSQL's new
    identity sequence is moved past the copied ids)."""
    from storage.db import migrations
    from storage.dialect import statements

    b = await xishui_year(h, clock)
    await in_town(h, b)
    await tick(h, clock, utc(2027, 1, 1, 1, 1))
    clock.set(utc(2027, 1, 2, 2, 0))
    await confirm_2026(h, b)
    before = await rows(h, "SELECT * FROM year_reviews ORDER BY id")
    name, sql = next((n, s) for _, n, s in migrations() if n.startswith("0020_"))
    if backend == "postgres":
        from storage.dialect import translate_migration
        from storage.postgres import migration_twin

        sql = translate_migration(name, sql, migration_twin(name))
    for statement in statements(sql):  # one by one, each committed (the runner does it in one transaction)
        await h.db.conn.execute(statement)
    await h.db.conn.commit()
    assert await rows(h, "SELECT * FROM year_reviews ORDER BY id") == before
    async with h.db.transaction() as conn:
        await conn.execute("UPDATE year_reviews SET status = 'withdrawn' WHERE id = ?", (before[0]["id"],))
    await confirm_2026(h, b)
    assert [r["id"] for r in await rows(h, "SELECT id FROM year_reviews ORDER BY id")] == [before[0]["id"], before[0]["id"] + 1]


async def test_a_review_nobody_received_is_found_in_the_queue_or_withdrawn_by_the_secretary(h, clock, only_year_end):
    b = await xishui_year(h, clock)
    t = await in_town(h, b)
    await tick(h, clock, utc(2027, 1, 1, 1, 1))
    clock.set(utc(2027, 1, 2, 2, 0))

    # Nobody at the town can be reached: the secretary is told where it waits and how to take it back.
    h.world.block(t.admin.id)
    calls, _, _ = await confirm_2026(h, b)
    h.world.unblock(t.admin.id)
    assert "/townqueue" in said(calls, b.secretary.id) and "/townwithdraw" in said(calls, b.secretary.id)
    first = (await rows(h, "SELECT * FROM year_reviews"))[0]
    assert not [m for m in texts(h, t.admin.id) if "报兰溪镇审核（第 1 次报送" in m]

    # The administrator finds it in /townqueue, with its buttons.
    calls = await h.say(t.admin, h.private(t.admin), "/townqueue")
    assert "申诉 0 件，年度审核 1 件" in said(calls, t.admin.id)
    queue_card, data = buttons_of(h, t.admin.id, "tv:r")
    assert data == [f"tv:ra:{first['id']}", f"tv:rb:{first['id']}"]

    # The secretary withdraws it (the button under the submission): once; the town's copy shows it.
    message, data = buttons_of(h, b.secretary.id, "tv:rw:")
    assert data == [f"tv:rw:{first['id']}"]
    for person in (b.lisi, t.admin):  # not theirs to withdraw
        calls = await h.press(person, message, data[0])
        assert alerts(calls)
    calls = await h.press(b.secretary, message, data[0])
    assert "2026年度评定结果已从兰溪镇的审核中撤回" in said(calls, b.secretary.id)
    withdrawn = (await rows(h, "SELECT * FROM year_reviews"))[0]
    assert withdrawn["status"] == "withdrawn" and withdrawn["decided_by"] == b.secretary.id
    shown = h.world.message_by_id(t.admin.id, queue_card.message_id)
    assert "支部书记撤回了本次报审" in (shown.text or "") and not h.world.buttons(shown)
    calls = await h.press(b.secretary, message, data[0])  # again: nothing changes, and it says so
    assert "2026年度评定结果已由支部书记撤回" in alerts(calls)
    calls = await h.say(b.secretary, h.private(b.secretary), "/townwithdraw 2026")
    assert "2026年度评定结果已由支部书记撤回" in said(calls, b.secretary.id)
    calls = await h.press(t.admin, queue_card, f"tv:ra:{first['id']}")
    assert "2026年度评定结果已由支部书记撤回" in alerts(calls) and await count(h, "grade_rounds") == 0
    assert "目前没有等待您决定" in said(await h.say(t.admin, h.private(t.admin), "/townqueue"), t.admin.id)

    # Confirmed again (the withdrawn attempt blocks nothing); /townwithdraw takes it back too.
    await confirm_2026(h, b)
    second = (await rows(h, "SELECT * FROM year_reviews WHERE attempt = 2"))[0]
    assert second["status"] == "pending"
    calls = await h.say(b.secretary, h.private(b.secretary), "/townwithdraw")
    assert "已从兰溪镇的审核中撤回" in said(calls, b.secretary.id)
    assert (await rows(h, "SELECT status FROM year_reviews WHERE id = ?", second["id"]))[0]["status"] == "withdrawn"
    calls = await h.say(b.secretary, h.private(b.secretary), "/townwithdraw")
    assert "本支部没有正在等待镇审核的年度报审" in said(calls, b.secretary.id)

    # The third attempt is approved from the queue: the publicity starts.
    await confirm_2026(h, b)
    third = (await rows(h, "SELECT * FROM year_reviews WHERE attempt = 3"))[0]
    await h.say(t.admin, h.private(t.admin), "/townqueue")
    queue_card, _ = buttons_of(h, t.admin.id, f"tv:ra:{third['id']}")
    await h.press(t.admin, queue_card, f"tv:ra:{third['id']}")
    assert (await rows(h, "SELECT status FROM year_reviews WHERE id = ?", third["id"]))[0]["status"] == "approved"
    assert (await rows(h, "SELECT status FROM grade_rounds"))[0]["status"] == "publicity"


async def test_the_filing_follows_the_towns_timezone_and_answers_the_press_first(h, clock):
    clock.set(utc(2025, 9, 1, 2, 0))  # the town and its branch exist in 2025: there is a 2025 filing
    admin = h.user(9007, "港湾镇管理员")
    await h.say(admin, h.private(admin), "/start")
    town = await h.services.towns.create("港湾镇", admin_id=admin.id, created_by=1, timezone="America/New_York")
    b = await setup_branch(h)
    async with h.db.transaction() as conn:
        assert await towns_repo.join(conn, b.branch.id, town.id)

    # 1 July 02:00 UTC: July in Shanghai, still 30 June in New York, so the town files 2025 still.
    clock.set(utc(2026, 7, 1, 2, 0))
    calls = await h.say(admin, h.private(admin), "/townfile")
    documents = [c for c in calls if c.method == "sendDocument"]
    assert len(documents) == 1 and "2025年度全镇备案表" in str(documents[0].params.get("caption"))
    assert documents[0].files["document"][0] == "2025-港湾镇-备案.xlsx"  # the name from the catalog
    calls = await h.say(admin, h.private(admin), "/town")
    message, data = buttons_of(h, admin.id, "tv:f:")
    assert data[0].endswith(":2025")

    # The press is answered before the workbook is built and sent.
    calls = await h.press(admin, message, data[0])
    methods = [c.method for c in calls]
    assert methods.index("answerCallbackQuery") < methods.index("sendDocument")

    # New Year's Day 03:00 UTC: 2027 in Shanghai, still 2026 in New York — no filing of 2027 yet.
    clock.set(utc(2027, 1, 1, 3, 0))
    calls = await h.say(admin, h.private(admin), "/townfile 2027")
    assert "不能评定 2027 年度" in said(calls, admin.id) and not [c for c in calls if c.method == "sendDocument"]
    calls = await h.say(admin, h.private(admin), "/townfile 2026")
    assert [c.method for c in calls].count("sendDocument") == 1
