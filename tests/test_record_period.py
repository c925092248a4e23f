"""/record for a period that has closed: the committee settles a period's deductions after it ends and
before its notice (三门峡: 支委会每季度对积分情况进行一次审核……确定扣分事项和分值; 浠水: 每月主题党日前
召开支委会，核实…). A recorder may date an entry from the start of the previous review period (a month;
a quarter for 三门峡) to today — not only within the members' declaration window."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.harness import plain
from tests.conftest import rows, said, setup_branch


async def record(h, b, words: str) -> str:
    calls = await h.say(b.recorder, h.private(b.recorder), words)
    return plain(said(calls, b.recorder.id))


async def ledger_days(h) -> list[str]:
    return [r["occurred_on"] for r in await rows(h, "SELECT occurred_on FROM ledger WHERE source = 'recorder' ORDER BY id")]


async def test_a_monthly_branch_records_last_month_after_it_closed_but_not_earlier_or_later(h, clock) -> None:
    # members since January; the clock stands at 2026-03-20: members may declare only March; the recorder
    # may still book February
    clock.set(datetime(2026, 1, 5, 2, 0, tzinfo=UTC))
    b = await setup_branch(h)
    clock.set(datetime(2026, 3, 20, 2, 0, tzinfo=UTC))
    assert "已为 张三 记录" in await record(h, b, "/record @zhang_1000 study absent 2026-02-10 二月集中学习无故缺席")
    assert await ledger_days(h) == ["2026-02-10"]
    refused = await record(h, b, "/record @zhang_1000 study absent 2026-01-31 一月的事")
    assert "不在可记录的期间内（2026-02-01 至 2026-03-20）" in refused
    assert "不能记录将来的日期" in await record(h, b, "/record @zhang_1000 study absent 3-25 还没发生")
    assert await ledger_days(h) == ["2026-02-10"]


async def test_a_quarterly_branch_records_the_whole_previous_quarter(h, clock) -> None:
    clock.set(datetime(2026, 1, 2, 2, 0, tzinfo=UTC))
    b = await setup_branch(h, preset="sanmenxia")
    clock.set(datetime(2026, 4, 10, 2, 0, tzinfo=UTC))  # Q2 has begun; Q1's review is being settled
    assert "已为 张三 记录" in await record(h, b, "/record @zhang_1000 skip_org_life 2026-01-05 一月无故不参加组织生活")
    assert "不在可记录的期间内（2026-01-01 至 2026-04-10）" in await record(h, b, "/record @zhang_1000 gambling 2025-12-31 去年的事")
    assert await ledger_days(h) == ["2026-01-05"]


async def test_in_january_a_short_date_in_december_means_last_year(h, clock) -> None:
    clock.set(datetime(2025, 11, 5, 2, 0, tzinfo=UTC))
    b = await setup_branch(h)  # members since November 2025
    clock.set(datetime(2026, 1, 5, 2, 0, tzinfo=UTC))
    assert "已为 张三 记录" in await record(h, b, "/record @zhang_1000 study absent 12-20 十二月集中学习无故缺席")
    assert await ledger_days(h) == ["2025-12-20"]


async def test_the_refusal_is_in_the_recorders_language(h, b) -> None:
    recorder = h.user(b.recorder.id, b.recorder.full_name, username=b.recorder.username, language="en")
    calls = await h.say(recorder, h.private(recorder), "/record @zhang_1000 study absent 2026-01-31 January")
    assert "outside the period you can record for (2026-02-01 to 2026-03-20)" in plain(said(calls, recorder.id))


async def test_a_day_before_the_member_joined_is_refused_even_inside_the_period(h, b) -> None:
    # the fixture's members joined on 2026-03-20: February is inside the recording period but no month of
    # theirs, so an entry there would count in no month (QA #5)
    refused = await record(h, b, "/record @zhang_1000 study absent 2026-02-10 二月集中学习无故缺席")
    assert "张三 于 2026-03-20 加入本支部，2026-02-10 所在的月份不是其积分月份" in refused
    assert await ledger_days(h) == []
