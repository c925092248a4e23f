"""Transfers (组织关系转接) meeting a return through /join: a member transferred out who asks to join their
old branch again, while the transfer back is accepted there; and one transferred out who is approved back
through /join (two rows, both counted for their own stays). Through the real Application, both backends."""

from __future__ import annotations

from datetime import date

import pytest

from tests.conftest import TestHarness, count, rows, said
from tests.test_transfers import branches, move, put, utc

pytestmark = pytest.mark.asyncio


def _day(value) -> str | None:
    return value if value is None or isinstance(value, str) else value.isoformat()


async def test_a_transfer_back_while_their_join_request_waits_brings_the_old_row_back(h: TestHarness, clock) -> None:
    b1, b2 = await branches(h, clock)
    zhang = b1.member_ids["zhang"]
    await put(h, b1, zhang, "8", date(2026, 2, 10))
    zhang_b2 = await move(h, clock, utc(2026, 5, 10, 2, 0), b1, b2, b1.zhang)
    clock.set(utc(2026, 8, 30, 2, 0))
    # asking to come back by /join while still in 青山村 is refused with the way back (a transfer from there)
    assert "目前仍在该支部" in said(await h.say(b1.zhang, b1.group, "/join"), b1.group.id)
    # a request made before that refusal existed (an older deployment's data) waits for the secretary
    async with h.db.transaction() as conn:
        await conn.execute("UPDATE members SET status = 'pending' WHERE id = ?", (zhang,))
    assert (await rows(h, "SELECT status FROM members WHERE id = ?", zhang))[0]["status"] == "pending"
    back = await move(h, clock, utc(2026, 9, 1, 2, 0), b2, b1, b1.zhang)
    assert back == zhang  # the old row, with its history, not a new one (nor the request deleted)
    row = (await rows(h, "SELECT * FROM members WHERE id = ?", zhang))[0]
    assert (row["status"], _day(row["joined_on"]), row["left_on"]) == ("approved", "2026-09-01", None)
    assert await count(h, "ledger", "member_id = ?", zhang) == 1
    assert [(s.member_id, s.first, s.last) for s in await h.services.transfers.stints(zhang)] == [
        (zhang, date(2026, 1, 5), date(2026, 5, 10)), (zhang_b2, date(2026, 5, 10), date(2026, 9, 1)),
        (zhang, date(2026, 9, 1), None)]
    assert await count(h, "member_stays") == 0
    assert (await rows(h, "SELECT joined_on FROM members WHERE id = ?", zhang))[0]["joined_on"] in ("2026-09-01", date(2026, 9, 1))


async def test_transferred_out_then_approved_back_through_join_counts_each_stay_once(h: TestHarness, clock) -> None:
    b1, b2 = await branches(h, clock)
    zhang = b1.member_ids["zhang"]
    await put(h, b1, zhang, "8", date(2026, 2, 10))
    zhang_b2 = await move(h, clock, utc(2026, 3, 10, 2, 0), b1, b2, b1.zhang)
    # he leaves 青山村 (removed there) and is approved back in 红星村 through /join in October
    clock.set(utc(2026, 6, 30, 2, 0))
    await h.say(b2.secretary, b2.group, f"/remove {zhang_b2} 调回")
    message, data = h.find_button(b2.group.id, "确认移出")
    await h.press(b2.secretary, message, data)
    clock.set(utc(2026, 10, 10, 2, 0))
    await h.say(b1.zhang, b1.group, "/join")
    await h.tap(b1.secretary, b1.group.id, "同意")
    row = (await rows(h, "SELECT * FROM members WHERE id = ?", zhang))[0]
    assert (row["status"], _day(row["joined_on"])) == ("approved", "2026-10-10")
    stints = await h.services.transfers.stints(zhang)
    assert [(s.member_id, s.first, s.last) for s in stints] == [
        (zhang, date(2026, 1, 5), date(2026, 3, 10)), (zhang_b2, date(2026, 3, 10), date(2026, 6, 30)),
        (zhang, date(2026, 10, 10), None)]
    # July–September count nowhere: /points in November averages January–June and October
    clock.set(utc(2026, 11, 20, 2, 0))
    shown = said(await h.say(b1.zhang, h.private(b1.zhang), "/points"), b1.zhang.id)
    assert "7 个月平均分" in shown
