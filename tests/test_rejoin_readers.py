"""A member removed in March and approved back through /join in October (tests/test_rejoin.py) as the other
readers of a member's months see them: the monthly notice (and the year figure it publishes, which the
town's dashboard shows), the year's forms (/export) and /chart — January–March and October on, never the
months away; a member never removed is unchanged. Through the real Application, both backends."""

from __future__ import annotations

import io
from datetime import date

import pytest
from openpyxl import load_workbook

from bot.domain.scoring import effective, publish, year_score
from bot.presets import preset
from schedules import engine
from tests.conftest import TestHarness, rows, said
from tests.test_rejoin import _months, _rows, away_and_back, utc

pytestmark = pytest.mark.asyncio


@pytest.fixture
def only_notices(monkeypatch):
    monkeypatch.setattr(engine, "PRODUCERS", [p for p in engine.PRODUCERS if p.kind in ("notice", "notice_remind", "notice_close")])


async def _figure(h: TestHarness, member_id: int, months: list[tuple[int, int]], upto: date) -> str:
    found = [r.entry() for r in await _rows(h, member_id, 2026) if r.occurred_on <= upto]
    return str(publish(year_score(preset("xishui"), effective(found), 2026, months).figure))


async def test_the_october_notice_counts_january_to_march_and_october(h: TestHarness, clock, only_notices) -> None:
    b = await away_and_back(h, clock)
    lisi, zhang = b.member_ids["lisi"], b.member_ids["zhang"]
    clock.set(utc(2026, 11, 1, 1, 0))  # 09:00 in Asia/Shanghai: October's notice is due
    await engine.tick(h.app, clock.now())
    [notice] = await rows(h, "SELECT id FROM notices WHERE branch_id = ? AND last_day = '2026-10-31'", b.branch.id)
    lines = {r["member_id"]: r["year_score"] for r in await rows(
        h, "SELECT member_id, year_score FROM notice_members WHERE notice_id = ?", notice["id"])}
    october = date(2026, 10, 31)
    assert lines[lisi] == await _figure(h, lisi, _months((1, 3), (10, 10)), october)
    assert lines[lisi] != await _figure(h, lisi, _months((1, 10)), october)  # the months away would lower it
    assert lines[zhang] == await _figure(h, zhang, _months((1, 10)), october)
    text = "\n".join(said([c], b.group.id) for c in h.world.sent(b.group.id, "sendMessage"))
    assert "李四" in text


async def test_the_forms_and_the_chart_leave_the_months_away_blank(h: TestHarness, clock) -> None:
    b = await away_and_back(h, clock)
    lisi = b.member_ids["lisi"]
    clock.set(utc(2027, 1, 5, 2, 0))
    branch = await h.services.branches.by_id(b.branch.id)
    result = await h.services.grading.compute(branch, 2026)
    export = await h.services.exports.build(branch, 2026)
    assert export.members == 4
    summary = load_workbook(io.BytesIO(next(data for name, data in export.documents if "评分汇总表" in name))).active
    [row] = [[c.value for c in r] for r in summary.iter_rows() if r[0].value == "李四"]
    assert float(result.line(lisi).figure) in row  # the summary's figure is /grade's
    # his record sheet: the months away say so, the others are filled in, its total is /grade's
    record = load_workbook(io.BytesIO(next(data for name, data in export.documents if "记录表" in name)))
    sheet = record["李四"]
    by_month = {r[1]: r for r in ([c.value for c in r] for r in sheet.iter_rows()) if str(r[1]).endswith("月") and str(r[1])[:-1].isdigit()}
    away = [int(label[:-1]) for label, r in by_month.items() if "未计入（不在本支部）" in r]
    assert away == [4, 5, 6, 7, 8, 9]
    assert all(isinstance(by_month[f"{m}月"][2], (int, float)) for m in (1, 2, 3, 10, 11, 12))
    # /chart 2026: his months only
    chart = await h.services.exports.trend(branch, _actor(b.lisi), None, 2026)
    assert [m for m, _ in chart.points] == [1, 2, 3, 10, 11, 12]


def _actor(user):
    from bot.services import Actor
    return Actor(user_id=user.id, name=user.full_name, username=user.username, language=user.language_code)
