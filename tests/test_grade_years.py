"""The years /grade and /export take (QA #4, #16).

A year before the branch's first year (the day it was set up, in its timezone, or its earliest member's
first day or ledger row when earlier) is refused; a year with nobody scored shows its preview without
the confirm button, and a forged confirm press is refused: no empty notice in the group, no locked year.
Without a year, /grade and /export mean last year until June only when the branch existed then.

Through the real Application (tests/ harness), asserting on the Bot API calls and the database.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from tests.conftest import count, popups, said
from tests.test_grading_flow import as_actor, branch_at, put

def sent_names(calls) -> list[str]:
    return [c.files["document"][0] for c in calls if c.method == "sendDocument"]


def alerts(calls) -> str:
    return "\n".join(str(c.params.get("text", "")) for c in popups(calls))


async def nothing_published(h, b) -> None:
    assert await count(h, "grade_rounds") == 0 and await count(h, "locked_years") == 0
    assert await count(h, "notices", "branch_id = ? AND period_key LIKE '2025%'", b.branch.id) == 0


async def test_a_year_before_the_branch_is_refused(h, clock):
    b = await branch_at(h, clock, datetime(2026, 3, 20, 2, 0, tzinfo=UTC))  # set up on 20 March 2026
    sec = b.secretary
    calls = await h.say(sec, h.private(sec), "/grade 2025")
    text = said(calls, sec.id)
    assert "兰溪镇红星村党支部 从 2026 年开始使用本系统，2025 年度没有可以评定的党员" in text and "/grade 2026" in text
    assert not any(h.world.buttons(c) for c in calls)
    calls = await h.say(sec, h.private(sec), "/grade finalise 2025")
    assert "从 2026 年开始使用本系统" in said(calls, sec.id)
    calls = await h.say(sec, h.private(sec), "/export 2025")
    assert "从 2026 年开始使用本系统，没有 2025 年度的表格" in said(calls, sec.id) and not sent_names(calls)
    await nothing_published(h, b)


async def test_without_a_year_a_new_branch_means_this_year(h, clock):
    b = await branch_at(h, clock, datetime(2026, 3, 20, 2, 0, tzinfo=UTC))
    sec = b.secretary
    calls = await h.say(sec, h.private(sec), "/grade")  # March: last year only if the branch had it
    text = said(calls, sec.id)
    assert "2026年度党员积分评定预览" in text and "2026年还没有结束" in text and "2025" not in text
    calls = await h.say(sec, h.private(sec), "/export")
    names = sent_names(calls)
    assert len(names) == 3 and all("_2026年度" in name for name in names), names
    assert "2026 年度表格已发送" in said(calls, sec.id)


async def test_without_a_year_an_older_branch_still_means_last_year_until_june(h, clock):
    b = await branch_at(h, clock, datetime(2025, 6, 1, 2, 0, tzinfo=UTC))  # set up in June 2025
    sec = b.secretary
    clock.set(datetime(2026, 3, 20, 2, 0, tzinfo=UTC))
    calls = await h.say(sec, h.private(sec), "/export")
    assert all("_2025年度" in name for name in sent_names(calls)) and len(sent_names(calls)) == 3
    calls = await h.say(sec, h.private(sec), "/grade")
    assert "2025年度党员积分评定预览" in said(calls, sec.id)
    clock.set(datetime(2026, 7, 1, 2, 0, tzinfo=UTC))  # from July: this year
    calls = await h.say(sec, h.private(sec), "/export")
    assert all("_2026年度" in name for name in sent_names(calls)) and len(sent_names(calls)) == 3


async def test_a_year_with_nobody_scored_cannot_be_publicised(h, clock):
    # Set up on 10 January 2026; the recorder enters a December deduction (the previous period is open):
    # 2025 has a ledger row, so it may be previewed and exported — but nobody was a member then.
    b = await branch_at(h, clock, datetime(2026, 1, 10, 2, 0, tzinfo=UTC))
    sec, rec = b.secretary, b.recorder
    # /record refuses a day in a month before the member joined (it would count in no month, QA #5); such a
    # row written before that check stays possible, so it is written directly here
    calls = await h.say(rec, h.private(rec), "/record 3 study absent 12-20 缺席")
    assert "张三 于 2026-01-10 加入本支部，2025-12-20 所在的月份不是其积分月份" in said(calls, rec.id)
    await put(h, b, "zhang", "study", "-5", date(2025, 12, 20), event="absent")
    assert await count(h, "ledger", "occurred_on = '2025-12-20'") == 1

    calls = await h.say(sec, h.private(sec), "/grade")  # January: last year, which the branch has a row of
    text = said(calls, sec.id)
    assert "2025年度党员积分评定预览" in text
    assert "2025年度没有计分的党员，没有可以公示或定级的结果。" in text
    assert not any(h.world.buttons(c) for c in calls)  # no confirm button

    draft = await h.services.grading.screen(b.branch, as_actor(sec), 2025)
    assert draft.scored == 0
    message = h.world.messages(sec.id)[-1]
    calls = await h.press(sec, message, f"gr:ok:{b.branch.id}:2025:0:{draft.fingerprint}")  # a forged press
    assert "2025年度没有计分的党员，不能公示或定级。" in alerts(calls) + said(calls)
    await nothing_published(h, b)
    assert not [m for m in h.world.messages(b.group.id) if "2025年度党员积分" in (m.text or "")]

    calls = await h.say(sec, h.private(sec), "/export 2025")  # its row can still be exported
    assert len(sent_names(calls)) == 3 and "积分流水（1 条）" in said(calls, sec.id)
