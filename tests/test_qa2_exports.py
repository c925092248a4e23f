"""QA2 N4/N7: the record sheets' month notes and stars.

N4: months not yet reached are left blank; "未计入（不在本支部）" only for months outside membership.
N7: 尖草坪's bands have no stars, so its record sheet's 合计 row shows no "无星".
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

from openpyxl import load_workbook

from bot.services import Actor
from tests.conftest import setup_branch

JANUARY = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
MARCH = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)
NEXT_YEAR = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)
ROSTER = "姓名,性别,出生年月,民族,学历,入党时间,身体状况,联系电话,状态,原因\n赵六,女,1980-05,汉族,高中,2001-07,良好,13800000000,,\n"


def me(user) -> Actor:
    return Actor(user_id=user.id, name=user.full_name, username=user.username)


def record_sheets(h, chat_id) -> dict:
    for call in h.world.sent(chat_id, "sendDocument"):
        name, data = call.files["document"][:2]
        if "记录表" in name:
            return load_workbook(io.BytesIO(data))
    raise AssertionError("no record sheet sent")


def notes(sheet) -> dict[str, str | None]:
    """Month label (column B) -> the note cell (the last column of the table)."""
    header = [sheet.cell(5, c).value for c in range(1, sheet.max_column + 1)]
    note_col = header.index("备注") + 1
    return {str(sheet.cell(r, 2).value): sheet.cell(r, note_col).value
            for r in range(6, sheet.max_row + 1) if sheet.cell(r, 2).value}


async def test_months_not_yet_reached_are_blank_not_outside_the_branch(h, clock):
    clock.set(JANUARY)
    b = await setup_branch(h)
    clock.set(MARCH)
    await h.services.roster.import_roster(b.branch, me(b.secretary), ROSTER.encode("utf-8"))  # 赵六 joins in March
    zhao = await h.services.roster.find(b.branch, "赵六")
    assert zhao.joined_on.month == 3
    await h.say(b.secretary, h.private(b.secretary), "/export 2026")
    book = record_sheets(h, b.secretary.id)
    wang = notes(book["王书记"])
    assert "本月进行中" in wang["3月"]
    for month in range(4, 13):
        assert not wang[f"{month}月"], (month, wang[f"{month}月"])  # not "未计入（不在本支部）"
    assert not any("未计入" in (v or "") for v in wang.values())
    six = notes(book["赵六"])
    assert six["1月"] == six["2月"] == "未计入（不在本支部）"  # before he joined
    assert "本月进行中" in six["3月"]
    assert all(not six[f"{m}月"] for m in range(4, 13))


async def test_jiancaoping_record_sheet_has_no_stars(h, clock):
    clock.set(JANUARY)
    b = await setup_branch(h, preset="jiancaoping")
    clock.set(NEXT_YEAR)
    await h.say(b.secretary, h.private(b.secretary), "/export 2026")
    book = record_sheets(h, b.secretary.id)
    totals = [notes(book[name]).get("合计") for name in book.sheetnames]
    assert totals and all(t for t in totals)  # the band is there
    assert not any("无星" in t or "★" in t for t in totals), totals


async def test_xishui_record_sheet_keeps_its_stars(h, clock):
    clock.set(JANUARY)
    b = await setup_branch(h)
    clock.set(NEXT_YEAR)
    await h.say(b.secretary, h.private(b.secretary), "/export 2026")
    book = record_sheets(h, b.secretary.id)
    totals = [notes(book[name]).get("合计") for name in book.sheetnames]
    assert totals and all("★" in t or "无星" in t for t in totals), totals
