"""Exempt status with dates (不纳入积分管理 covers the time of the exemption: seeds 003 l.35, 004 l.8–9;
DOMAIN decision 3): the months a member was exempt are cut out of the months every reader counts, as the
months away are for a member who left and came back (bot.domain.states over bot.domain.town's stints).

Domain first (no event loop): the month cutting and the audit's figures (exempt January–June, full marks
July–December: 张店 96.00 not 81.00, 浠水 100.00 not 80.00). Then through the real Application on both
backends: /state with and without a month (and its refusals); exempt January–June then active — /points, the
monthly notice (and who is asked to confirm it) and /grade count July on; exempted in December after eleven
scored months — graded on those eleven, the record sheet marks December; a member never exempt unchanged."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import count as counter

import pytest
from openpyxl import load_workbook

from bot.domain.records import MemberState as S
from bot.domain.records import NewLedgerRow, Source
from bot.domain.scoring import EntryRow, effective, publish, year_score
from bot.domain.states import History, StateChange, drop_months, exempt_months, month_arg, scored
from bot.domain.town import Stint, months_of
from bot.errors import InvalidInput
from bot.presets import preset
from bot.services import Actor
from schedules import engine
from storage import ledger as ledger_repo
from tests.conftest import TestHarness, rows, said, second_connection, setup_branch

YEAR = 2026
END = date(YEAR, 12, 31)


def _months(first: int, last: int, year: int = YEAR) -> list[tuple[int, int]]:
    return [(year, m) for m in range(first, last + 1)]


def _history(*changes: tuple[S, date | None], current: S | None = None) -> History:
    found = tuple(StateChange(state, day, i + 1) for i, (state, day) in enumerate(changes))
    return History(current=current or found[-1].state, changes=found)


# --- the domain ---------------------------------------------------------------------------------------------

def test_a_month_takes_the_state_recorded_last_for_it() -> None:
    stint = (Stint(1, 10, date(2025, 3, 10), None),)
    # exempt from 3 January, active again from 15 July: January–June cut, July scored
    history = _history((S.ACTIVE, None), (S.EXEMPT, date(YEAR, 1, 3)), (S.ACTIVE, date(YEAR, 7, 15)))
    assert months_of(scored(stint, {1: history}), YEAR, END) == _months(7, 12)
    assert exempt_months(stint, {1: history}, YEAR, END) == set(_months(1, 6))
    assert months_of(scored(stint, {1: history}), 2025, date(2025, 12, 31)) == _months(3, 12, 2025)  # 2025 untouched
    assert [history.state_in(YEAR, m) for m in (1, 6, 7)] == [S.EXEMPT, S.EXEMPT, S.ACTIVE]
    # exempted on 3 December: eleven months scored, December not
    december = _history((S.ACTIVE, None), (S.EXEMPT, date(YEAR, 12, 3)))
    assert months_of(scored(stint, {1: december}), YEAR, END) == _months(1, 11)
    assert december.last_scored_state(_months(1, 11)) is S.ACTIVE
    # two changes in one month: the later one holds it
    flip = _history((S.ACTIVE, None), (S.EXEMPT, date(YEAR, 4, 2)), (S.ACTIVE, date(YEAR, 4, 20)))
    assert months_of(scored(stint, {1: flip}), YEAR, END) == _months(1, 12)
    # an exemption in the middle of the year, with a stay that starts inside it
    late = (Stint(1, 10, date(YEAR, 5, 20), None),)
    middle = _history((S.ACTIVE, None), (S.EXEMPT, date(YEAR, 3, 1)), (S.ACTIVE, date(YEAR, 9, 1)))
    assert months_of(scored(late, {1: middle}), YEAR, END) == _months(9, 12)


def test_no_history_is_the_state_now_throughout_and_a_never_exempt_member_is_unchanged() -> None:
    stint = (Stint(1, 10, None, date(YEAR, 10, 5)),)
    assert scored(stint, {}) == stint
    assert scored(stint, {1: History(current=S.PROBATIONARY)}) == stint
    assert months_of(scored(stint, {1: History(current=S.EXEMPT)}), YEAR, END) == []
    # a history of other states cuts nothing
    assert scored(stint, {1: _history((S.PROBATIONARY, None), (S.ACTIVE, date(YEAR, 6, 1)))}) == stint
    # the state now set where no history is written (a roster upload) counts from the last change's month
    drifted = _history((S.ACTIVE, None), (S.EXEMPT, date(YEAR, 2, 1)), current=S.ACTIVE)
    assert months_of(scored(stint, {1: drifted}), YEAR, END) == _months(1, 10)
    # before the first change: the state it recorded (the migration's row for members exempt before 0031)
    migrated = _history((S.EXEMPT, date(YEAR, 3, 1)), (S.ACTIVE, date(YEAR, 8, 1)))
    assert months_of(scored(stint, {1: migrated}), YEAR, END) == _months(8, 10)


def test_a_chain_cuts_each_rows_own_months() -> None:
    # moved from row 1 to row 2 on 20 May; row 2 exempt from August
    chain = (Stint(1, 10, None, date(YEAR, 5, 20)), Stint(2, 20, date(YEAR, 5, 20), None))
    histories = {2: _history((S.ACTIVE, None), (S.EXEMPT, date(YEAR, 8, 1)))}
    assert months_of(scored(chain, histories), YEAR, END) == _months(1, 7)
    assert exempt_months(chain, histories, YEAR, END) == set(_months(8, 12))


def test_rows_dated_while_exempt_count_nowhere_and_the_month_argument() -> None:
    ids = counter(1)
    entries = [EntryRow(next(ids), "post_duty", Decimal(10), date(YEAR, m, 15), None) for m in range(1, 13)]
    assert [e.occurred_on.month for e in drop_months(entries, set(_months(1, 6)))] == list(range(7, 13))
    assert drop_months(entries, set()) == entries
    assert month_arg("2026-03") == date(2026, 3, 1) and month_arg("2026-3-17") == date(2026, 3, 1)
    assert [month_arg(t) for t in ("2026-13", "2026-02-30", "26-03", "2026/03", "March")] == [None] * 5


def test_the_audits_figures_exempt_january_to_june() -> None:
    """Audit item 1 (check_domain.py section 2): an empty month is worth 50 (张店) or 60 (浠水)."""
    ids = counter(1)
    stint = (Stint(1, 10, date(2025, 1, 1), None),)
    history = {1: _history((S.ACTIVE, None), (S.EXEMPT, date(YEAR, 1, 1)), (S.ACTIVE, date(YEAR, 7, 1)))}
    months = months_of(scored(stint, history), YEAR, END)
    zhangdian, xishui = preset("zhangdian"), preset("xishui")
    rows_z = [EntryRow(next(ids), code, Decimal(value), date(YEAR, m, 28), None) for m in range(7, 13)
              for code, value in (("job_performance", 10), ("volunteering", 10), ("unity_law", 10), ("carry_out_tasks", 20))]
    ratings = {1: Decimal(90), 2: Decimal(90)}
    assert publish(year_score(zhangdian, rows_z, YEAR, months, democratic=ratings).figure) == Decimal("96.00")
    assert publish(year_score(zhangdian, rows_z, YEAR, _months(1, 12), democratic=ratings).figure) == Decimal("81.00")
    rows_x = [EntryRow(next(ids), code, Decimal(value), date(YEAR, m, day), None) for m in range(7, 13)
              for code, value, day in (("post_duty", 20, 28), ("post_deed", 10, 28), ("post_deed", 10, 27))]
    assert publish(year_score(xishui, rows_x, YEAR, months).figure) == Decimal("100.00")
    assert publish(year_score(xishui, rows_x, YEAR, _months(1, 12)).figure) == Decimal("80.00")


# --- through the bot --------------------------------------------------------------------------------------

def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _actor(user) -> Actor:
    return Actor(user_id=user.id, name=user.full_name, username=user.username, language=user.language_code)


@pytest.fixture
def only_notices(monkeypatch):
    """The notices' producers alone (no dues close or assessment defaults writing rows)."""
    monkeypatch.setattr(engine, "PRODUCERS", [p for p in engine.PRODUCERS if p.kind in ("notice", "notice_remind", "notice_close")])


async def _put(h: TestHarness, b, member_id: int, item: str, value: str, day: date) -> None:
    """A ledger row written directly (the flow of writing it is not under test here)."""
    async with h.db.transaction() as conn:
        row = await ledger_repo.append(conn, NewLedgerRow(
            branch_id=b.branch.id, member_id=member_id, item_code=item, value=Decimal(value), occurred_on=day,
            source=Source.RECORDER, reference=f"t:{member_id}:{item}:{day}:{value}", actor_id=b.member_ids["secretary"],
            reason=f"考评 {day}"))
    assert row is not None


async def _full_months(h: TestHarness, b, member_id: int, months: range) -> None:
    for month in months:
        await _put(h, b, member_id, "post_duty", "20", date(YEAR, month, 28))
        await _put(h, b, member_id, "post_deed", "10", date(YEAR, month, 27))
        await _put(h, b, member_id, "post_deed", "10", date(YEAR, month, 26))


async def _expected(h: TestHarness, member_id: int, months: list[tuple[int, int]], upto: date = END) -> Decimal:
    """The 浠水 figure of the member's ledger over exactly ``months`` (the domain's year score)."""
    async with h.db.read() as conn:
        entries = [r.entry() for r in await ledger_repo.of_member(conn, member_id, YEAR) if r.occurred_on <= upto]
    return publish(year_score(preset("xishui"), effective(entries), YEAR, months).figure)


async def _exempt_first_half(h: TestHarness, clock):
    """A 浠水 branch from 5 January 2026: 李四 exempt (年老体弱) from January, active again on 3 July; he and
    张三 get full marks July–December; 张三 never exempt."""
    clock.set(utc(YEAR, 1, 5, 2, 0))
    b = await setup_branch(h)
    lisi, zhang = b.member_ids["lisi"], b.member_ids["zhang"]
    said(await h.say(b.secretary, b.group, f"/state {lisi} exempt 年老体弱"), b.group.id)
    clock.set(utc(YEAR, 7, 3, 2, 0))
    shown = said(await h.say(b.secretary, b.group, f"/state {lisi} active"), b.group.id)
    assert "正式党员" in shown
    for member_id in (lisi, zhang):
        await _full_months(h, b, member_id, range(7, 13))
    return b


@pytest.mark.asyncio
async def test_state_with_a_month_and_its_refusals(h: TestHarness, clock) -> None:
    clock.set(utc(YEAR, 1, 5, 2, 0))
    b = await setup_branch(h)
    lisi, zhang = b.member_ids["lisi"], b.member_ids["zhang"]
    clock.set(utc(YEAR, 5, 10, 2, 0))
    shown = said(await h.say(b.secretary, b.group, f"/state {lisi} exempt 2026-03 长期生病"), b.group.id)
    assert "自 2026-03 起" in shown and "不纳入积分管理" in shown and "长期生病" in shown
    found = await rows(h, "SELECT state, reason, from_date, set_by FROM member_states WHERE member_id = ? ORDER BY id", lisi)
    assert [(r["state"], r["reason"], r["from_date"], r["set_by"]) for r in found] == [
        ("active", None, None, None), ("exempt", "长期生病", "2026-03-01", b.member_ids["secretary"])]
    assert (await rows(h, "SELECT state FROM members WHERE id = ?", lisi))[0]["state"] == "exempt"
    # refused, nothing written: a month to come, a month before the last change, before joining, not a month
    for text, expect in ((f"/state {lisi} active 2026-06", "还没到"), (f"/state {lisi} active 2026-02", "不能早于"),
                         (f"/state {zhang} exempt 2025-12 年老体弱", "加入本支部"), (f"/state {lisi} active 2026-13", "不是有效的月份")):
        assert expect in said(await h.say(b.secretary, b.group, text), b.group.id)
    assert len(await rows(h, "SELECT id FROM member_states")) == 2
    # the state he is in already, with a month: no change is made, so no month is recorded
    assert "没有变更" in said(await h.say(b.secretary, b.group, f"/state {lisi} exempt 2026-04 长期生病"), b.group.id)
    assert len(await rows(h, "SELECT id FROM member_states")) == 2
    # the usage names the month; a plain member may not
    assert "2026-03" in said(await h.say(b.secretary, b.group, "/state"), b.group.id)
    said(await h.say(b.zhang, b.group, f"/state {lisi} active"), b.group.id)
    assert len(await rows(h, "SELECT id FROM member_states")) == 2
    # active again from April (the month of the last change or later): March stays exempt
    said(await h.say(b.secretary, b.group, f"/state {lisi} active 2026-04"), b.group.id)
    assert (await rows(h, "SELECT state FROM members WHERE id = ?", lisi))[0]["state"] == "active"
    branch = await h.services.branches.by_id(b.branch.id)
    member = await h.services.roster.member_of(branch, b.lisi.id)
    assert list((await h.services.points.standing(branch, member)).counted) == _months(1, 2) + _months(4, 4)
    # an entry dated in his exempt March is refused, saying why; April is fine
    actor = _actor(b.secretary)
    with pytest.raises(InvalidInput) as refused:
        await h.services.points.record(branch, actor, member, "post_duty", Decimal(5), date(YEAR, 3, 20), "考评", "t:march")
    assert refused.value.key == "record.exempt_month"
    assert await h.services.points.record(branch, actor, member, "post_duty", Decimal(5), date(YEAR, 4, 20), "考评", "t:april")


@pytest.mark.asyncio
async def test_exempt_january_to_june_then_active_counts_july_on(h: TestHarness, clock, only_notices) -> None:
    b = await _exempt_first_half(h, clock)
    lisi, zhang = b.member_ids["lisi"], b.member_ids["zhang"]
    # June's notice (1 July, he is still exempt): not listed, not asked to confirm
    clock.set(utc(YEAR, 7, 1, 1, 0))
    # (the change on 3 July was recorded already: June is exempt whichever day the notice is worked out)
    await engine.tick(h.app, clock.now())
    [june] = await rows(h, "SELECT id FROM notices WHERE branch_id = ? AND last_day = '2026-06-30'", b.branch.id)
    listed = {r["member_id"] for r in await rows(h, "SELECT member_id FROM notice_members WHERE notice_id = ?", june["id"])}
    assert lisi not in listed and zhang in listed
    assert not [c for c in h.world.sent(b.lisi.id, "sendMessage") if "6月" in str(c.params.get("text", ""))]
    # October's notice: his year is July–October
    clock.set(utc(YEAR, 11, 1, 1, 0))
    await engine.tick(h.app, clock.now())
    [october] = await rows(h, "SELECT id FROM notices WHERE branch_id = ? AND last_day = '2026-10-31'", b.branch.id)
    lines = {r["member_id"]: r["year_score"] for r in await rows(
        h, "SELECT member_id, year_score FROM notice_members WHERE notice_id = ?", october["id"])}
    upto = date(YEAR, 10, 31)
    assert lines[lisi] == str(await _expected(h, lisi, _months(7, 10), upto))
    assert lines[lisi] != str(await _expected(h, lisi, _months(1, 10), upto))  # the exempt months would be 60s
    assert lines[zhang] == str(await _expected(h, zhang, _months(1, 10), upto))

    # /points on 20 November: July–October (November is still running)
    clock.set(utc(YEAR, 11, 20, 2, 0))
    shown = said(await h.say(b.lisi, h.private(b.lisi), "/points"), b.lisi.id)
    assert "4 个月平均分" in shown
    _, _, standing = await h.services.points.own_standing(b.lisi.id)
    assert standing is not None and list(standing.counted) == _months(7, 10)
    assert standing.published == await _expected(h, lisi, _months(7, 10))
    assert "10 个月平均分" in said(await h.say(b.zhang, h.private(b.zhang), "/points"), b.zhang.id)

    # the year's grade: his six months July–December (100.00, not 80.00), 张三's twelve
    clock.set(utc(YEAR + 1, 1, 5, 2, 0))
    branch = await h.services.branches.by_id(b.branch.id)
    result = await h.services.grading.compute(branch, YEAR)
    line = result.line(lisi)
    assert line.graded and "exempt" not in line.flags
    assert line.figure == await _expected(h, lisi, _months(7, 12)) == Decimal("100.00")
    assert await _expected(h, lisi, _months(1, 12)) == Decimal("80.00")
    assert result.line(zhang).figure == await _expected(h, zhang, _months(1, 12))
    text = said(await h.say(b.secretary, h.private(b.secretary), "/grade 2026"), b.secretary.id)
    assert "李四" in text
    # /points 2026 in January: the same six months
    year = await h.services.points.year_standing(branch, await h.services.roster.member_of(branch, b.lisi.id), YEAR)
    assert year is not None and list(year.counted) == _months(7, 12) and year.published == line.figure
    # /chart 2026: his scored months only; 张三's twelve
    chart = await h.services.exports.trend(branch, _actor(b.lisi), None, YEAR)
    assert [m for m, _ in chart.points] == list(range(7, 13))
    assert len((await h.services.exports.trend(branch, _actor(b.zhang), None, YEAR)).points) == 12


@pytest.mark.asyncio
async def test_exempted_in_december_is_graded_on_eleven_months(h: TestHarness, clock) -> None:
    clock.set(utc(YEAR, 1, 5, 2, 0))
    b = await setup_branch(h)
    lisi, zhang = b.member_ids["lisi"], b.member_ids["zhang"]
    for member_id in (lisi, zhang):
        await _full_months(h, b, member_id, range(1, 12))
    clock.set(utc(YEAR, 12, 3, 2, 0))
    said(await h.say(b.secretary, b.group, f"/state {lisi} exempt 长期生病"), b.group.id)
    clock.set(utc(YEAR + 1, 1, 5, 2, 0))
    branch = await h.services.branches.by_id(b.branch.id)
    result = await h.services.grading.compute(branch, YEAR)
    line = result.line(lisi)
    assert line.graded and "exempt" not in line.flags  # was: left out of the whole year
    assert line.figure == await _expected(h, lisi, _months(1, 11)) == Decimal("100.00")
    assert result.line(zhang).figure == await _expected(h, zhang, _months(1, 12))  # December empty: 60
    assert result.line(zhang).figure != line.figure
    # the record sheet: December marked exempt, the others filled in; the summary has his figure
    export = await h.services.exports.build(branch, YEAR)
    record = load_workbook(io.BytesIO(next(data for name, data in export.documents if "记录表" in name)))
    sheet = record["李四"]
    by_month = {r[1]: r for r in ([c.value for c in r] for r in sheet.iter_rows()) if str(r[1]).endswith("月") and str(r[1])[:-1].isdigit()}
    assert [int(label[:-1]) for label, r in by_month.items() if "未计入（不纳入积分管理）" in r] == [12]
    assert all(isinstance(by_month[f"{m}月"][2], (int, float)) for m in range(1, 12))
    summary = load_workbook(io.BytesIO(next(data for name, data in export.documents if "评分汇总表" in name))).active
    [row] = [[c.value for c in r] for r in summary.iter_rows() if r[0].value == "李四"]
    assert float(line.figure) in row
    # exempt from January to October, active in November: two months scored, fewer than the minimum
    clock.set(utc(YEAR, 1, 6, 2, 0))
    said(await h.say(b.secretary, b.group, f"/state {zhang} exempt 年老体弱"), b.group.id)
    clock.set(utc(YEAR, 11, 2, 2, 0))
    said(await h.say(b.secretary, b.group, f"/state {zhang} active"), b.group.id)
    clock.set(utc(YEAR + 1, 1, 5, 2, 0))
    result = await h.services.grading.compute(branch, YEAR)
    assert "exempt" in result.line(zhang).flags and not result.line(zhang).graded


@pytest.mark.asyncio
async def test_the_migration_dates_members_exempt_before_it_from_their_joined_on(h: TestHarness, clock, database_url) -> None:
    """Migration 0031 on a database whose members were exempt before it: a row each, from joined_on (NULL
    where none was kept); the month cutting then leaves them out of every month of their stay, as the bot
    graded them before (exempt for the whole year)."""
    clock.set(utc(YEAR, 1, 5, 2, 0))
    b = await setup_branch(h)
    lisi, zhang = b.member_ids["lisi"], b.member_ids["zhang"]
    async with h.db.transaction() as conn:
        await conn.execute("UPDATE members SET state = 'exempt', state_reason = '年老体弱', joined_on = '2025-03-10' WHERE id = ?", (lisi,))
        await conn.execute("UPDATE members SET state = 'exempt', state_reason = '长期生病', joined_on = NULL WHERE id = ?", (zhang,))
        await conn.execute("DROP TABLE member_states")
        await conn.execute("DELETE FROM schema_migrations WHERE version = 31")
    async with second_connection(database_url) as again:  # opening it applies 0031 again
        async with again.read() as conn:
            found = [tuple(r) for r in await conn.execute_fetchall(
                "SELECT member_id, state, reason, from_date, set_by FROM member_states ORDER BY member_id")]
    assert found == sorted([(zhang, "exempt", "长期生病", None, None), (lisi, "exempt", "年老体弱", "2025-03-10", None)])
    clock.set(utc(YEAR + 1, 1, 5, 2, 0))
    branch = await h.services.branches.by_id(b.branch.id)
    result = await h.services.grading.compute(branch, YEAR)
    assert "exempt" in result.line(lisi).flags and "exempt" in result.line(zhang).flags
