"""Exempt months and the rows booked automatically (bot.domain.states): whoever owes a month's dues, is
on a meeting's roll or gets the month's assessment defaults is decided by the state of that month, not
the state now — a member exempt January–June and active from 3 July owes no June dues and gets no June
defaults even when June is handled in July; a member exempted on 3 December still owes November's.
Domain (the roll) without an event loop; the services through the real Application on both backends."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.domain.meetings import expected
from bot.domain.records import MemberState as S
from bot.domain.states import History, StateChange
from bot.services import Actor
from tests.conftest import TestHarness, said, setup_branch


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _actor(user) -> Actor:
    return Actor(user_id=user.id, name=user.full_name, username=user.username, language=user.language_code)


def test_a_meetings_roll_takes_the_state_of_its_month() -> None:
    from types import SimpleNamespace
    from bot.domain.records import MemberStatus
    people = [SimpleNamespace(id=i, status=MemberStatus.APPROVED, state=S.ACTIVE, joined_on=None) for i in (1, 2)]
    histories = {1: History(current=S.ACTIVE, changes=(StateChange(S.ACTIVE, None, 1), StateChange(S.EXEMPT, date(2026, 1, 1), 2),
                                                        StateChange(S.ACTIVE, date(2026, 7, 3), 3)))}
    assert [m.id for m in expected(people, date(2026, 6, 20), histories)] == [2]
    assert [m.id for m in expected(people, date(2026, 7, 1), histories)] == [1, 2]
    assert [m.id for m in expected(people, date(2026, 6, 20))] == [1, 2]  # no histories: the state now, as before


@pytest.mark.asyncio
async def test_dues_and_assessment_defaults_follow_the_months_state(h: TestHarness, clock) -> None:
    clock.set(utc(2026, 1, 5, 2, 0))
    b = await setup_branch(h, preset="zhangdian")
    lisi, zhang = b.member_ids["lisi"], b.member_ids["zhang"]
    said(await h.say(b.secretary, b.group, f"/state {lisi} exempt 年老体弱"), b.group.id)
    clock.set(utc(2026, 7, 3, 2, 0))
    said(await h.say(b.secretary, b.group, f"/state {lisi} active"), b.group.id)
    branch = await h.services.branches.by_id(b.branch.id)
    keeper = _actor(b.secretary)
    june = {line.member.id for line in (await h.services.dues.roster(branch, keeper, "2026-06")).lines}
    july = {line.member.id for line in (await h.services.dues.roster(branch, keeper, "2026-07")).lines}
    assert lisi not in june and zhang in june and {lisi, zhang} <= july
    board = await h.services.assessment.board(branch, keeper, 2026, 6)
    assert lisi not in {s.member.id for s in board.sheets} and zhang in {s.member.id for s in board.sheets}
    board = await h.services.assessment.board(branch, keeper, 2026, 7)
    assert lisi in {s.member.id for s in board.sheets}
    # exempted on 3 December: November's dues are still his
    clock.set(utc(2026, 12, 3, 2, 0))
    said(await h.say(b.secretary, b.group, f"/state {zhang} exempt 长期生病"), b.group.id)
    november = {line.member.id for line in (await h.services.dues.roster(branch, keeper, "2026-11")).lines}
    december = {line.member.id for line in (await h.services.dues.roster(branch, keeper, "2026-12")).lines}
    assert zhang in november and zhang not in december


@pytest.mark.asyncio
async def test_a_roster_upload_that_changes_a_state_dates_it_from_this_month(h: TestHarness, clock) -> None:
    from tests.conftest import rows
    clock.set(utc(2026, 1, 5, 2, 0))
    b = await setup_branch(h)
    lisi = b.member_ids["lisi"]
    clock.set(utc(2026, 9, 10, 2, 0))
    branch = await h.services.branches.by_id(b.branch.id)
    await h.services.roster.import_roster(branch, _actor(b.secretary), "姓名,状态,原因\n李四,exempt,年老体弱\n".encode())
    found = await rows(h, "SELECT state, from_date FROM member_states WHERE member_id = ? ORDER BY id", lisi)
    assert [(r["state"], r["from_date"]) for r in found] == [("active", None), ("exempt", "2026-09-01")]
    member = await h.services.roster.member_of_id(lisi)
    assert list((await h.services.points.standing(branch, member)).counted) == [(2026, m) for m in range(1, 9)]
