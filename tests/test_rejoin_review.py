"""What a review of the re-join and confirm work found (each failed before its fix):
- a member's return request waiting (the row 'pending') hid their earlier months from /grade and the forms;
- a member back on 1 April could no longer be assessed for March (张店), nor rated in the first half's
  democratic evaluation after coming back in July: those read the row's new join day, not its stays;
- /remove's confirm was taken before the presser's role was checked: a member's press at the same moment
  as the secretary's made the secretary's say "already pressed" and nothing was removed."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, date, datetime

from openpyxl import load_workbook

from bot.harness import plain
from bot.services.branches import Actor
from schedules import engine
from tests.conftest import count, member_row, popups, rows, setup_branch
from tests.test_rejoin import put, rejoin, remove


def utc(*a) -> datetime:
    return datetime(*a, tzinfo=UTC)


def actor(user) -> Actor:
    return Actor(user_id=user.id, name=user.full_name, username=user.username)


MARCH = "member_id = ? AND occurred_on >= '2026-03-01' AND occurred_on <= '2026-03-31'"


async def test_a_return_request_waiting_keeps_the_earlier_months_in_the_grade_and_the_forms(h, clock) -> None:
    clock.set(utc(2026, 1, 5, 2, 0))
    b = await setup_branch(h)
    lisi = b.member_ids["lisi"]
    await put(h, b, lisi, "8", date(2026, 2, 10))
    clock.set(utc(2026, 3, 20, 2, 0))
    await remove(h, b, lisi)
    clock.set(utc(2026, 12, 28, 2, 0))
    await h.say(b.lisi, b.group, "/join")  # asks to come back; nobody decides before the year is graded
    assert (await rows(h, "SELECT status FROM members WHERE id = ?", lisi))[0]["status"] == "pending"
    clock.set(utc(2027, 1, 5, 2, 0))
    branch = await h.services.branches.by_id(b.branch.id)
    graded = await h.services.grading.compute(branch, 2026)
    assert lisi in {line.member_id for line in graded.lines}
    export = await h.services.exports.build(branch, 2026)
    sheets = load_workbook(io.BytesIO(next(d for n, d in export.documents if "记录表" in n))).sheetnames
    assert "李四" in sheets


async def test_a_member_back_on_1_april_is_assessed_for_march(h, clock) -> None:
    clock.set(utc(2026, 1, 5, 2, 0))
    b = await setup_branch(h, preset="zhangdian")
    lisi, zhang = b.member_ids["lisi"], b.member_ids["zhang"]
    clock.set(utc(2026, 3, 20, 2, 0))
    await remove(h, b, lisi)
    clock.set(utc(2026, 3, 31, 18, 0))  # 1 April 02:00 in Asia/Shanghai
    await rejoin(h, b, b.lisi)
    clock.set(utc(2026, 4, 1, 0, 30))  # before the notice: the recorder assesses March
    await h.services.assessment.sheet(b.branch, actor(b.recorder), 2026, 3, lisi)  # refused before the fix
    clock.set(utc(2026, 4, 1, 1, 5))
    await engine.tick(h.app, clock.now())
    assert await count(h, "ledger", MARCH, lisi) == await count(h, "ledger", MARCH, zhang) > 0


async def test_a_member_back_in_july_is_rated_for_the_first_half(h, clock) -> None:
    clock.set(utc(2026, 1, 5, 2, 0))
    b = await setup_branch(h, preset="zhangdian")
    clock.set(utc(2026, 5, 20, 2, 0))
    await remove(h, b, b.member_ids["lisi"])
    clock.set(utc(2026, 7, 3, 2, 0))
    await rejoin(h, b, b.lisi)
    clock.set(utc(2026, 7, 6, 2, 0))
    opened = await h.services.democratic.open(b.branch, actor(b.secretary), 2026, 1)
    assert "李四" in [m.name for m in opened.invite]


async def test_a_members_press_does_not_spoil_the_secretarys_confirm(h, b) -> None:
    await h.say(b.secretary, b.group, f"/remove {b.member_ids['lisi']} 因病去世")
    message, data = h.find_button(b.group.id, "确认移出")
    before = len(h.world.calls)
    await asyncio.gather(h.feed(h.world.press(b.zhang, message, data)), h.feed(h.world.press(b.secretary, message, data)))
    answers = [plain(str(c.params.get("text") or "")) for c in popups(h.world.calls[before:])]
    assert (await member_row(h, b.lisi.id))["status"] != "approved", answers
