"""A member who moves to another branch (组织关系转接) keeps their history, and the year's result follows
the transfer rule (issue 6). Domain rules first (no event loop): the chain of stints the accepted
transfers make (a return to an earlier branch continues its old row), which row grades a year and
whose rows count; then through the harness on both backends: /grade in both branches under each rule,
A→B→A, /points and /history across the chain."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from openpyxl import load_workbook

from bot.domain.grading import TRANSFERRED_IN, TRANSFERRED_OUT, MemberYear, grade
from bot.domain.records import MemberState, NewLedgerRow, Source
from bot.domain.scoring import year_score
from bot.domain.town import Move, Stint, TransferRule, chains_of, months_of, rule_of_year, year_home, year_part
from bot.presets import preset
from bot.services import transfers as transfers_service
from storage import ledger as ledger_repo
from tests.conftest import TestHarness, count, rows, said, setup_branch

A, B, C = 10, 20, 30


def _move(member_id: int, from_branch: int, first: date | None, moved_on: date, new_id: int, to_branch: int,
          new_first: date | None, new_last: date | None = None, reopened=None) -> Move:
    return Move(member_id=member_id, from_branch=from_branch, first=first, moved_on=moved_on, new_member_id=new_id,
                to_branch=to_branch, new_first=new_first, new_last=new_last, reopened=reopened)


# --- domain: chains ------------------------------------------------------------------------------------


def test_one_move_makes_a_chain_of_two_stints() -> None:
    [chain] = chains_of([_move(1, A, date(2025, 6, 1), date(2026, 4, 15), 2, B, date(2026, 4, 15))])
    assert chain == (Stint(1, A, date(2025, 6, 1), date(2026, 4, 15)), Stint(2, B, date(2026, 4, 15), None))


def test_a_return_continues_the_old_row_and_stays_one_chain() -> None:
    moves = [
        _move(1, A, date(2025, 1, 1), date(2026, 4, 10), 2, B, date(2026, 9, 1), date(2026, 9, 1)),
        # back to A: row 1 is reactivated; its stay before is the chain's first stint already
        _move(2, B, date(2026, 4, 10), date(2026, 9, 1), 1, A, date(2026, 9, 1), None,
              reopened=(date(2025, 1, 1), date(2026, 4, 10))),
    ]
    [chain] = chains_of(moves)
    assert [(s.member_id, s.branch_id, s.first, s.last) for s in chain] == [
        (1, A, date(2025, 1, 1), date(2026, 4, 10)),
        (2, B, date(2026, 4, 10), date(2026, 9, 1)),
        (1, A, date(2026, 9, 1), None),
    ]
    # and on to C: A's row has left twice, the chain goes on
    moves.append(_move(1, A, date(2026, 9, 1), date(2026, 11, 2), 3, C, date(2026, 11, 2)))
    [longer] = chains_of(moves)
    assert [s.member_id for s in longer] == [1, 2, 1, 3] and longer[2].last == date(2026, 11, 2)


def test_a_row_that_left_otherwise_keeps_its_earlier_stay_in_the_chain() -> None:
    # left A on 1 March (not a transfer), joined B, then transferred back to A
    [chain] = chains_of([_move(2, B, date(2026, 3, 5), date(2026, 7, 1), 1, A, date(2026, 7, 1),
                               reopened=(date(2024, 1, 1), date(2026, 3, 1)))])
    assert [(s.member_id, s.first) for s in chain] == [(1, date(2024, 1, 1)), (2, date(2026, 3, 5)), (1, date(2026, 7, 1))]


def test_two_people_make_two_chains() -> None:
    chains = chains_of([_move(1, A, None, date(2026, 2, 1), 2, B, date(2026, 2, 1)),
                        _move(5, A, None, date(2026, 3, 1), 6, C, date(2026, 3, 1))])
    assert [[s.member_id for s in chain] for chain in chains] == [[1, 2], [5, 6]]


# --- domain: the year's home ------------------------------------------------------------------------------

OLD = Stint(1, A, date(2025, 6, 1), date(2026, 4, 15))
NEW = Stint(2, B, date(2026, 4, 15), None)
AWAY = (Stint(1, A, None, date(2026, 4, 10)), Stint(2, B, date(2026, 4, 10), date(2026, 9, 1)), Stint(1, A, date(2026, 9, 1), None))


def test_receiving_the_new_row_grades_the_whole_chain_the_old_one_is_transferred_out() -> None:
    graded = year_part((OLD, NEW), 2, 2026, TransferRule.RECEIVING)
    assert graded is not None and graded.graded and graded.others and graded.counted == (OLD, NEW)
    out = year_part((OLD, NEW), 1, 2026, TransferRule.RECEIVING)
    assert out is not None and not out.graded and out.counted == () and out.grader == NEW
    # 2025 involves no move: the old branch grades it as ever
    assert year_part((OLD, NEW), 1, 2025, TransferRule.RECEIVING) is None
    assert year_part((OLD, NEW), 2, 2025, TransferRule.RECEIVING) is None


def test_longer_sums_each_branchs_days() -> None:
    # A: 1 Jan–10 Apr and 1 Sep–31 Dec (222 days) beats B's 10 Apr–1 Sep (145) though B's single stay is longest
    home = year_home(list(AWAY), 2026, TransferRule.LONGER)
    assert home is not None and home.grader == AWAY[2] and home.counted == AWAY
    assert year_part(AWAY, 2, 2026, TransferRule.LONGER).graded is False  # type: ignore[union-attr]
    early = (Stint(1, A, None, date(2026, 10, 1)), Stint(2, B, date(2026, 10, 1), None))
    part = year_part(early, 1, 2026, TransferRule.LONGER)
    assert part is not None and part.graded and part.others and part.counted == early


def test_separate_each_branch_its_own_stays() -> None:
    mine = year_part(AWAY, 1, 2026, TransferRule.SEPARATE)
    assert mine is not None and mine.graded and not mine.others and mine.counted == (AWAY[0], AWAY[2])
    assert months_of(mine.counted, 2026, date(2027, 1, 5)) == [(2026, m) for m in (1, 2, 3, 4, 9, 10, 11, 12)]
    theirs = year_part(AWAY, 2, 2026, TransferRule.SEPARATE)
    assert theirs is not None and theirs.graded and theirs.counted == (AWAY[1],)


def test_the_rule_is_the_last_branch_of_the_year() -> None:
    rules = {A: TransferRule.SEPARATE, B: TransferRule.LONGER}
    assert rule_of_year((OLD, NEW), 2026, rules) is TransferRule.LONGER
    assert rule_of_year((OLD, NEW), 2025, rules) is TransferRule.SEPARATE
    assert rule_of_year((OLD, NEW), 2026, {}) is TransferRule.RECEIVING


def test_months_of_a_chain_count_the_month_of_the_move_once() -> None:
    assert months_of((OLD, NEW), 2026, date(2026, 6, 20)) == [(2026, m) for m in range(1, 7)]


def test_transferred_out_is_listed_not_graded_not_in_the_distribution() -> None:
    rulebook = preset("xishui")
    months = [(2026, m) for m in range(1, 13)]

    def member(member_id: int, **extra) -> MemberYear:
        score = None if extra.get("transferred_out") else year_score(rulebook, [], 2026, months)
        return MemberYear(member_id=member_id, name=f"m{member_id}", state=MemberState.ACTIVE, score=score,
                          months_counted=0 if score is None else 12, **extra)

    result = grade(rulebook, [member(1), member(2, transferred_out=True), member(3, transferred_in=True)], 2026)
    out, moved_in = result.line(2), result.line(3)
    assert not out.graded and out.figure is None and out.flags == [TRANSFERRED_OUT] and out.rank is None
    assert moved_in.graded and TRANSFERRED_IN in moved_in.flags and moved_in.figure == result.line(1).figure
    assert sum(result.distribution.values()) == 2 and result.ranked == 2


# --- through the bot ---------------------------------------------------------------------------------------


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def branches(h: TestHarness, clock, start: datetime = utc(2026, 1, 5, 2, 0)) -> tuple[SimpleNamespace, SimpleNamespace]:
    """Two 浠水 branches set up on 5 January 2026 (everyone joined then)."""
    clock.set(start)
    b1 = await setup_branch(h)
    b2 = await setup_branch(h, chat_id=-1001000000002, title="兰溪镇青山村党支部", base=2000)
    return b1, b2


async def put(h: TestHarness, b: SimpleNamespace, member_id: int, value: str, day: date) -> None:
    """A ledger row written directly (the flow of writing it is not under test here)."""
    async with h.db.transaction() as conn:
        row = await ledger_repo.append(conn, NewLedgerRow(
            branch_id=b.branch.id, member_id=member_id, item_code="post_duty", value=Decimal(value), occurred_on=day,
            source=Source.RECORDER, reference=f"t:{member_id}:{day}:{value}", actor_id=b.member_ids["secretary"],
            reason=f"考评 {day}"))
    assert row is not None


async def move(h: TestHarness, clock, moment: datetime, src: SimpleNamespace, dst: SimpleNamespace, user) -> int:
    """/transfer in the sending group, /accepttransfer in the receiving one; the receiving row's id."""
    clock.set(moment)
    await h.say(src.secretary, src.group, f"/transfer @{user.username} {dst.group.id}")
    code = (await rows(h, "SELECT code FROM member_transfers WHERE status = 'pending'"))[0]["code"]
    calls = await h.say(dst.secretary, dst.group, f"/accepttransfer {code}")
    assert "转入本支部" in said(calls, dst.group.id)
    return (await rows(h, "SELECT id FROM members WHERE branch_id = ? AND user_id = ? AND status = 'approved'",
                       dst.branch.id, user.id))[0]["id"]


def use_rule(monkeypatch, rule: TransferRule) -> None:
    monkeypatch.setattr(transfers_service, "transfer_rule", lambda preset_code: rule)


async def year_of(h: TestHarness, b: SimpleNamespace):
    return await h.services.grading.compute(await h.services.branches.by_id(b.branch.id), 2026)


async def test_receiving_branch_grades_the_whole_year_the_old_one_lists_him_transferred_out(h: TestHarness, clock) -> None:
    b1, b2 = await branches(h, clock)
    zhang_old = b1.member_ids["zhang"]
    await put(h, b1, zhang_old, "8", date(2026, 2, 10))
    # the same rows for 李四 of the receiving branch, who never moved: the reference figure
    await put(h, b2, b2.member_ids["lisi"], "8", date(2026, 2, 10))
    zhang_new = await move(h, clock, utc(2026, 5, 10, 2, 0), b1, b2, b1.zhang)
    await put(h, b2, zhang_new, "4", date(2026, 6, 12))
    await put(h, b2, b2.member_ids["lisi"], "4", date(2026, 6, 12))
    clock.set(utc(2027, 1, 5, 2, 0))

    old_year, new_year = await year_of(h, b1), await year_of(h, b2)
    out = old_year.line(zhang_old)
    assert not out.graded and out.figure is None and out.flags == [TRANSFERRED_OUT]
    assert sum(old_year.distribution.values()) == 3 and old_year.ranked == 3  # the three who stayed
    moved_in, reference = new_year.line(zhang_new), new_year.line(b2.member_ids["lisi"])
    assert moved_in.graded and TRANSFERRED_IN in moved_in.flags
    assert moved_in.figure == reference.figure and moved_in.figure > new_year.line(b2.member_ids["secretary"]).figure
    assert sum(new_year.distribution.values()) == 5

    # /grade shows it in both branches
    calls = await h.say(b1.secretary, h.private(b1.secretary), "/grade 2026")
    assert "组织关系已转出" in said(calls, b1.secretary.id) and "名单共 4 人" in said(calls, b1.secretary.id)
    calls = await h.say(b2.secretary, h.private(b2.secretary), "/grade 2026")
    assert "含在原支部期间的积分和月份" in said(calls, b2.secretary.id)

    # the forms: the old branch's summary lists him without a figure, saying why; his months there stay on
    # its record sheets
    export = await h.services.exports.build(await h.services.branches.by_id(b1.branch.id), 2026)
    summary = load_workbook(io.BytesIO(next(data for name, data in export.documents if "评分汇总表" in name))).active
    [row] = [[c.value for c in r] for r in summary.iter_rows() if r[0].value == "张三"]
    assert any("组织关系已转出" in str(v) for v in row) and not any(isinstance(v, (int, float)) for v in row)
    assert export.members == 4


async def test_longer_stay_grades_in_the_old_branch(h: TestHarness, clock, monkeypatch) -> None:
    use_rule(monkeypatch, TransferRule.LONGER)
    b1, b2 = await branches(h, clock)
    zhang_old = b1.member_ids["zhang"]
    await put(h, b1, zhang_old, "8", date(2026, 2, 10))
    await put(h, b1, b1.member_ids["lisi"], "8", date(2026, 2, 10))
    zhang_new = await move(h, clock, utc(2026, 10, 8, 2, 0), b1, b2, b1.zhang)  # nine months in 红星村
    await put(h, b2, zhang_new, "6", date(2026, 11, 3))
    await put(h, b1, b1.member_ids["lisi"], "6", date(2026, 11, 3))
    clock.set(utc(2027, 1, 5, 2, 0))

    old_year, new_year = await year_of(h, b1), await year_of(h, b2)
    graded = old_year.line(zhang_old)
    assert graded.graded and TRANSFERRED_IN in graded.flags and graded.figure == old_year.line(b1.member_ids["lisi"]).figure
    out = new_year.line(zhang_new)
    assert not out.graded and out.flags == [TRANSFERRED_OUT] and new_year.ranked == 4


async def test_separate_each_branch_grades_its_own_months(h: TestHarness, clock, monkeypatch) -> None:
    use_rule(monkeypatch, TransferRule.SEPARATE)
    b1, b2 = await branches(h, clock)
    zhang_old = b1.member_ids["zhang"]
    await put(h, b1, zhang_old, "8", date(2026, 2, 10))
    zhang_new = await move(h, clock, utc(2026, 5, 10, 2, 0), b1, b2, b1.zhang)
    await put(h, b2, zhang_new, "4", date(2026, 6, 12))
    clock.set(utc(2027, 1, 5, 2, 0))

    rulebook = preset("xishui")
    old_year, new_year = await year_of(h, b1), await year_of(h, b2)
    async with h.db.read() as conn:
        old_rows = [r.entry() for r in await ledger_repo.of_member(conn, zhang_old, 2026)]
        new_rows = [r.entry() for r in await ledger_repo.of_member(conn, zhang_new, 2026)]
    until_may = year_score(rulebook, old_rows, 2026, [(2026, m) for m in range(1, 6)])
    from_may = year_score(rulebook, new_rows, 2026, [(2026, m) for m in range(5, 13)])
    old_line, new_line = old_year.line(zhang_old), new_year.line(zhang_new)
    assert old_line.graded and new_line.graded and not {TRANSFERRED_IN, TRANSFERRED_OUT} & {*old_line.flags, *new_line.flags}
    assert old_line.figure == round(until_may.figure, 2) and new_line.figure == round(from_may.figure, 2)
    assert old_line.figure != new_line.figure


async def test_back_to_the_first_branch_reactivates_its_row_and_grades_once(h: TestHarness, clock) -> None:
    b1, b2 = await branches(h, clock, utc(2025, 11, 5, 2, 0))
    zhang = b1.member_ids["zhang"]
    await h.say(b1.secretary, b1.group, f"/role @{b1.zhang.username} recorder")
    await put(h, b1, zhang, "8", date(2026, 2, 10))
    await put(h, b1, b1.member_ids["lisi"], "8", date(2026, 2, 10))
    zhang_b2 = await move(h, clock, utc(2026, 4, 10, 2, 0), b1, b2, b1.zhang)
    await put(h, b2, zhang_b2, "4", date(2026, 6, 12))
    await put(h, b1, b1.member_ids["lisi"], "4", date(2026, 6, 12))
    back = await move(h, clock, utc(2026, 9, 1, 2, 0), b2, b1, b1.zhang)  # was refused before: UNIQUE(branch, user)
    assert back == zhang  # the old row continues
    again = (await rows(h, "SELECT * FROM members WHERE id = ?", zhang))[0]
    assert again["status"] == "approved" and again["joined_on"] == "2026-09-01" and again["left_on"] is None
    assert await count(h, "roles", "member_id = ?", zhang) == 0  # roles do not travel, not even back
    assert await count(h, "members", "user_id = ?", b1.zhang.id) == 2
    await put(h, b1, zhang, "2", date(2026, 10, 15))
    await put(h, b1, b1.member_ids["lisi"], "2", date(2026, 10, 15))
    assert [s.member_id for s in await h.services.transfers.stints(zhang_b2)] == [zhang, zhang_b2, zhang]
    clock.set(utc(2027, 1, 5, 2, 0))

    first, second = await year_of(h, b1), await year_of(h, b2)
    line = first.line(zhang)
    assert line.graded and TRANSFERRED_IN in line.flags and line.figure == first.line(b1.member_ids["lisi"]).figure
    assert second.line(zhang_b2).flags == [TRANSFERRED_OUT] and not second.line(zhang_b2).graded
    # 2025 in 红星村 is untouched by his coming back in September 2026 (his row's joined_on is now 2026-09-01)
    earlier = await h.services.grading.compute(b1.branch, 2025)
    then, reference = earlier.line(zhang), earlier.line(b1.member_ids["lisi"])
    assert (then.figure, then.flags) == (reference.figure, reference.flags) == (Decimal(60), ["not_enough_months"])


async def test_points_and_history_follow_the_member(h: TestHarness, clock) -> None:
    b1, b2 = await branches(h, clock)
    zhang_old = b1.member_ids["zhang"]
    await put(h, b1, zhang_old, "8", date(2026, 2, 10))
    zhang_new = await move(h, clock, utc(2026, 5, 10, 2, 0), b1, b2, b1.zhang)
    await put(h, b2, zhang_new, "4", date(2026, 5, 12))
    clock.set(utc(2026, 6, 20, 2, 0))
    chat = h.private(b1.zhang)
    shown = said(await h.say(b1.zhang, chat, "/points"), b1.zhang.id)
    assert "兰溪镇青山村党支部" in shown and "5 个月平均分" in shown  # January to May: the history came along
    assert "兰溪镇红星村党支部" in shown  # the note naming the earlier branch
    history = said(await h.say(b1.zhang, chat, "/history"), b1.zhang.id)
    assert "共 2 条" in history or history.count("考评") == 2
    lines = [line for line in history.splitlines() if "考评" in line]
    assert len(lines) == 2 and "〔兰溪镇红星村党支部〕" in lines[1] and "〔" not in lines[0]
