"""A member who left the branch (/remove, or a transfer out) and is approved again through /join comes back
on the day of the approval; the stay before is kept (member_stays, migration 0026) and joins the row's
stays as a transfer's reopened stay does. The months away count nowhere; the earlier months still count.

Domain first (no event loop): the chain a kept stay makes. Then through the real Application on both
backends: removed in March, back in October — /points, /points 2026 and /grade count January–March and
October on; a member never removed is unchanged; a refused request leaves the member as they were."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest

from bot.domain.records import NewLedgerRow, Source
from bot.domain.scoring import effective, publish, year_score
from bot.domain.town import Stint
from bot.i18n import format_points
from bot.presets import preset
from bot.services.transfers import chains_from
from storage import ledger as ledger_repo
from tests.conftest import TestHarness, count, member_row, rows, said, setup_branch

A = 10


def _stay(member_id: int, joined: str | None, left: str, now: tuple[str | None, str | None], status: str = "approved") -> dict:
    return {"member_id": member_id, "branch_id": A, "joined_on": joined, "left_on": left, "now_joined_on": now[0],
            "now_left_on": now[1], "now_status": status, "preset": "xishui", "title": "红星村"}


def test_a_kept_stay_and_the_row_now_make_its_stays() -> None:
    chains = chains_from([], [_stay(1, "2026-01-05", "2026-03-20", ("2026-10-10", None))])
    assert chains.stints[1] == (Stint(1, A, date(2026, 1, 5), date(2026, 3, 20)), Stint(1, A, date(2026, 10, 10), None))
    assert chains.part(1, 2026) is None  # nothing moved: no transfer note, the row grades its own stays
    # two returns: three stays, oldest first; a pending request of a row that left again keeps that stay
    chains = chains_from([], [_stay(1, "2025-01-05", "2025-03-20", ("2026-02-01", "2026-04-30"), "pending"),
                              _stay(1, None, "2024-06-30", ("2026-02-01", "2026-04-30"), "pending")])
    assert [(s.first, s.last) for s in chains.stints[1]] == [
        (None, date(2024, 6, 30)), (date(2025, 1, 5), date(2025, 3, 20)), (date(2026, 2, 1), date(2026, 4, 30))]
    # a row voided after it came back (rejected): its stay now counted no month
    chains = chains_from([], [_stay(1, "2026-01-05", "2026-03-20", ("2026-10-10", None), "rejected")])
    assert chains.stints[1] == (Stint(1, A, date(2026, 1, 5), date(2026, 3, 20)),)


def test_a_stay_the_chain_has_from_a_transfer_is_not_counted_twice() -> None:
    moves = [{"member_id": 1, "from_branch": A, "left_joined_on": "2026-01-05", "moved_on": "2026-03-20",
              "new_member_id": 2, "to_branch": 20, "reopened": 0, "reopened_joined_on": None, "reopened_left_on": None,
              "new_joined_on": "2026-03-20", "new_left_on": None, "from_preset": "xishui", "from_title": "红星村",
              "to_preset": "xishui", "to_title": "青山村"}]
    # transferred out in March, then approved again in 红星村 through /join in October (two rows now)
    chains = chains_from(moves, [_stay(1, "2026-01-05", "2026-03-20", ("2026-10-10", None))])
    assert [(s.member_id, s.first, s.last) for s in chains.stints[1]] == [
        (1, date(2026, 1, 5), date(2026, 3, 20)), (2, date(2026, 3, 20), None), (1, date(2026, 10, 10), None)]
    assert chains.own(SimpleNamespace(id=1, branch_id=A, joined_on=date(2026, 10, 10), left_on=None)) == (
        Stint(1, A, date(2026, 1, 5), date(2026, 3, 20)), Stint(1, A, date(2026, 10, 10), None))


# --- through the bot ---------------------------------------------------------------------------------------

def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def put(h: TestHarness, b: SimpleNamespace, member_id: int, value: str, day: date) -> None:
    """A ledger row written directly (the flow of writing it is not under test here)."""
    async with h.db.transaction() as conn:
        row = await ledger_repo.append(conn, NewLedgerRow(
            branch_id=b.branch.id, member_id=member_id, item_code="post_duty", value=Decimal(value), occurred_on=day,
            source=Source.RECORDER, reference=f"t:{member_id}:{day}:{value}", actor_id=b.member_ids["secretary"],
            reason=f"考评 {day}"))
    assert row is not None


async def remove(h: TestHarness, b: SimpleNamespace, member_id: int) -> None:
    said(await h.say(b.secretary, b.group, f"/remove {member_id} 出党"), b.group.id)
    message, data = h.find_button(b.group.id, "确认移出")
    await h.press(b.secretary, message, data)
    assert (await rows(h, "SELECT status FROM members WHERE id = ?", member_id))[0]["status"] == "left"


async def rejoin(h: TestHarness, b: SimpleNamespace, user, approve: bool = True) -> None:
    await h.say(user, b.group, "/join")
    await h.tap(b.secretary, b.group.id, "同意" if approve else "不同意")


def _day(value) -> str | None:
    return value if value is None or isinstance(value, str) else value.isoformat()


async def away_and_back(h: TestHarness, clock) -> SimpleNamespace:
    """A 浠水 branch set up on 5 January 2026; 李四 and 张三 get the same rows in February and October; 李四
    is removed on 20 March and approved again on 10 October."""
    clock.set(utc(2026, 1, 5, 2, 0))
    b = await setup_branch(h)
    lisi, zhang = b.member_ids["lisi"], b.member_ids["zhang"]
    for member_id in (lisi, zhang):
        await put(h, b, member_id, "8", date(2026, 2, 10))
    clock.set(utc(2026, 3, 20, 2, 0))
    await remove(h, b, lisi)
    clock.set(utc(2026, 10, 10, 2, 0))
    await rejoin(h, b, b.lisi)
    for member_id in (lisi, zhang):
        await put(h, b, member_id, "4", date(2026, 10, 15))
    return b


def _months(*spans: tuple[int, int]) -> list[tuple[int, int]]:
    return [(2026, m) for first, last in spans for m in range(first, last + 1)]


async def _expected(h: TestHarness, member_id: int, months: list[tuple[int, int]]) -> Decimal:
    """The 浠水 figure of the member's 2026 ledger over exactly ``months`` (the domain's year score)."""
    found = await _rows(h, member_id, 2026)
    return publish(year_score(preset("xishui"), effective([r.entry() for r in found]), 2026, months).figure)


@pytest.mark.asyncio
async def test_back_in_october_counts_january_to_march_and_october_on(h: TestHarness, clock) -> None:
    b = await away_and_back(h, clock)
    lisi, zhang = b.member_ids["lisi"], b.member_ids["zhang"]
    row = await member_row(h, b.lisi.id)
    assert (row["id"], row["status"], _day(row["joined_on"]), row["left_on"]) == (lisi, "approved", "2026-10-10", None)
    kept = await rows(h, "SELECT member_id, branch_id, joined_on, left_on FROM member_stays")
    assert [(r["member_id"], r["branch_id"], _day(r["joined_on"]), _day(r["left_on"])) for r in kept] == [
        (lisi, b.branch.id, "2026-01-05", "2026-03-20")]

    # /points on 20 November: January–March and October (November is still running)
    clock.set(utc(2026, 11, 20, 2, 0))
    shown = said(await h.say(b.lisi, h.private(b.lisi), "/points"), b.lisi.id)
    assert "4 个月平均分" in shown
    _, _, standing = await h.services.points.own_standing(b.lisi.id)
    assert standing is not None and list(standing.counted) == _months((1, 3), (10, 10)) and standing.transfer is None
    assert standing.published == await _expected(h, lisi, _months((1, 3), (10, 10)))
    # the secretary's /points of him says the same
    branch = await h.services.branches.by_id(b.branch.id)
    member = await h.services.roster.member_of(branch, b.lisi.id)
    assert list((await h.services.points.standing(branch, member)).counted) == _months((1, 3), (10, 10))
    # 张三, never removed: every month but the running one, as ever
    shown = said(await h.say(b.zhang, h.private(b.zhang), "/points"), b.zhang.id)
    assert "10 个月平均分" in shown

    # the year's grade: his six months (January–March, October–December), 张三's twelve
    clock.set(utc(2027, 1, 5, 2, 0))
    result = await h.services.grading.compute(branch, 2026)
    assert result.line(lisi).figure == await _expected(h, lisi, _months((1, 3), (10, 12)))
    assert result.line(zhang).figure == await _expected(h, zhang, _months((1, 12)))
    assert result.line(lisi).figure != await _expected(h, lisi, _months((1, 12)))  # the months away are not 60s
    calls = await h.say(b.secretary, h.private(b.secretary), "/grade 2026")
    text = said(calls, b.secretary.id)
    assert "李四" in text and "名单共 4 人" in text
    # /points 2026 (the year ended): the same months and figure as /grade
    past = said(await h.say(b.lisi, h.private(b.lisi), "/points 2026"), b.lisi.id)
    assert f"全年：{format_points(result.line(lisi).figure)}分（6 个月平均分" in past
    # /history: the rows of both stays, one member row
    history = said(await h.say(b.lisi, h.private(b.lisi), "/history"), b.lisi.id)
    assert history.count("考评") == 2 and "〔" not in history


@pytest.mark.asyncio
async def test_left_in_2025_back_in_2026_keeps_2025_and_skips_the_gap(h: TestHarness, clock) -> None:
    clock.set(utc(2025, 1, 6, 2, 0))
    b = await setup_branch(h)
    lisi = b.member_ids["lisi"]
    await put(h, b, lisi, "8", date(2025, 5, 10))
    clock.set(utc(2025, 6, 20, 2, 0))
    await remove(h, b, lisi)
    clock.set(utc(2026, 4, 2, 2, 0))
    await rejoin(h, b, b.lisi)
    branch = await h.services.branches.by_id(b.branch.id)
    # 2025: January–June count (graded in 2025 with his rows), not July–December
    earlier = await h.services.grading.compute(branch, 2025)
    assert earlier.line(lisi).figure == publish(year_score(
        preset("xishui"), [r.entry() for r in await _rows(h, lisi, 2025)], 2025, [(2025, m) for m in range(1, 7)]).figure)
    # 2026 from April; an entry dated in the gap is refused, one in the earlier stay is not
    recorder = h.private(b.recorder)
    text = said(await h.say(b.recorder, recorder, "/record 李四 study absent 缺席 2026-02-10"), recorder.id)
    assert "2026-02-10" in text and "2026-04-02" in text
    assert await count(h, "ledger", "member_id = ? AND occurred_on = '2026-02-10'", lisi) == 0
    clock.set(utc(2026, 5, 20, 2, 0))
    _, _, standing = await h.services.points.own_standing(b.lisi.id)
    assert standing is not None and list(standing.counted) == [(2026, 4)]


async def _rows(h: TestHarness, member_id: int, year: int):
    async with h.db.read() as conn:
        return await ledger_repo.of_member(conn, member_id, year)


@pytest.mark.asyncio
async def test_a_refused_return_leaves_the_member_as_they_were(h: TestHarness, clock) -> None:
    clock.set(utc(2026, 1, 5, 2, 0))
    b = await setup_branch(h)
    lisi = b.member_ids["lisi"]
    clock.set(utc(2026, 3, 20, 2, 0))
    await remove(h, b, lisi)
    clock.set(utc(2026, 10, 10, 2, 0))
    await rejoin(h, b, b.lisi, approve=False)
    row = await member_row(h, b.lisi.id)
    # left as before (not 'rejected'): January–March are still his, in the year's grade
    assert (row["status"], _day(row["joined_on"]), _day(row["left_on"])) == ("left", "2026-01-05", "2026-03-20")
    assert await count(h, "member_stays") == 0
    clock.set(utc(2027, 1, 5, 2, 0))
    result = await h.services.grading.compute(await h.services.branches.by_id(b.branch.id), 2026)
    assert lisi in {line.member_id for line in result.lines}
    # he may ask again, and an approval then brings him back with his stay kept, once
    clock.set(utc(2027, 2, 1, 2, 0))
    await h.say(b.lisi, b.group, "/join")
    message, data = h.find_button(b.group.id, "同意")
    await h.press(b.secretary, message, data)
    await h.press(b.secretary, message, data)  # a second tap: nothing more
    row = await member_row(h, b.lisi.id)
    assert (row["status"], _day(row["joined_on"])) == ("approved", "2027-02-01")
    assert await count(h, "member_stays", "member_id = ?", lisi) == 1
