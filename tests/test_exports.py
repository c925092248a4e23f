"""The year's forms: /export sends the record sheets and the summary sheet (xlsx, laid out like seed 004's
attachments 2 and 3) and the raw ledger (CSV); /chart sends a member's trend as a PNG.

The figures on the forms are checked against a year worked out by hand from the ledger rows the test
writes, and against the grading's own figures (services.grading.compute / snapshot).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from bot.domain.records import MemberState
from bot.services import Actor
from bot.services.grading import GradingService
from tests.conftest import count, said, setup_branch

PNG = b"\x89PNG\r\n\x1a\n"
JANUARY = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
NEXT_YEAR = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)  # after the year: every month of 2026 counts
RECORD = "兰溪镇红星村党支部_2026年度党员日常行为积分管理记录表.xlsx"
SUMMARY = "兰溪镇红星村党支部_2026年度党员积分管理评分汇总表.xlsx"
LEDGER = "兰溪镇红星村党支部_2026年度积分流水.csv"
ROSTER = ("姓名,性别,出生年月,民族,学历,入党时间,身体状况,联系电话,状态,原因\n"
          "赵六,女,1980-05,汉族,高中,2001-07,良好,13800000000,,\n"
          "钱七,男,1931-02,汉族,小学,1960-07,卧床,,不纳入积分管理,年老体弱\n").encode("utf-8")


def as_decimal(value) -> Decimal:
    """A number cell read back (openpyxl reads numbers as int/float): compared as its shortest text."""
    return Decimal(str(value))


def me(user) -> Actor:
    return Actor(user_id=user.id, name=user.full_name, username=user.username)


async def year_branch(h, clock, preset: str = "xishui"):
    """A branch set up on 5 January 2026 with a year of entries; the clock then moves to January 2027."""
    clock.set(JANUARY)
    b = await setup_branch(h, preset=preset)
    await h.services.roster.import_roster(b.branch, me(b.secretary), ROSTER)
    b.member = {name: await h.services.roster.member_of_id(i) for name, i in b.member_ids.items()}
    b.zhao = await h.services.roster.find(b.branch, "赵六")
    b.qian = await h.services.roster.find(b.branch, "钱七")
    return b


async def record(h, b, who, item, value, day, event=None, ref=None):
    return await h.services.points.record(
        b.branch, me(b.secretary), b.member[who], item, Decimal(value), day, "记录", reference=ref or f"t:{who}:{item}:{day}",
        event_code=event)


async def xishui_year(h, clock):
    b = await year_branch(h, clock)
    await h.services.assessment.posts.set_claims(b.branch, me(b.secretary), b.member["zhang"], [3, 5])
    await record(h, b, "zhang", "study", "-5", date(2026, 2, 10), "absent")
    await record(h, b, "zhang", "dues", "-3", date(2026, 2, 20), "late")
    await record(h, b, "zhang", "post_duty", "16", date(2026, 3, 15))
    await record(h, b, "zhang", "honor_county", "2", date(2026, 4, 2))
    await record(h, b, "zhang", "economy", "2", date(2026, 5, 2))
    late = await record(h, b, "zhang", "study", "-2", date(2026, 4, 10), "late")
    await h.services.points.reverse(b.branch, me(b.secretary), late.id, "误记")  # and its reversal
    await record(h, b, "lisi", "political_discipline", "0", date(2026, 6, 15))
    clock.set(NEXT_YEAR)
    return b


def documents(h, chat_id) -> dict[str, bytes]:
    return {c.files["document"][0]: c.files["document"][1] for c in h.world.sent(chat_id, "sendDocument")}


def sheet_rows(sheet) -> dict[str, list]:
    """Month label (column B) -> the row's values from column C on."""
    found = {}
    for row in sheet.iter_rows(min_row=6, values_only=True):
        if row[1] is not None:
            found[str(row[1])] = list(row[2:])
    return found


# --- /export -------------------------------------------------------------------------------------------


async def test_export_sends_the_three_documents_to_the_secretary(h, clock):
    b = await xishui_year(h, clock)
    calls = await h.say(b.secretary, h.private(b.secretary), "/export 2026")
    sent = [c for c in calls if c.method == "sendDocument"]
    assert [c.files["document"][0] for c in sent] == [RECORD, SUMMARY, LEDGER]
    assert all(c.chat_id == b.secretary.id for c in sent)
    text = said(calls, b.secretary.id)
    assert "2026 年度表格已发送" in text and "（5 人）" in text and "积分流水（8 条）" in text
    assert "尚未定稿" in text  # nothing finalised: the grading's preview


async def test_the_record_sheet_follows_attachment_2_and_the_ledger(h, clock):
    b = await xishui_year(h, clock)
    await h.say(b.secretary, h.private(b.secretary), "/export 2026")
    book = load_workbook(io.BytesIO(documents(h, b.secretary.id)[RECORD]))
    assert book.sheetnames == ["王书记", "李记录", "张三", "李四", "赵六"]  # one per scored member; 钱七 is exempt
    zhang = book["张三"]
    assert zhang["A1"].value == "兰溪镇红星村党支部党员日常行为积分管理记录表（2026年度）"
    assert zhang["A1"].font.b and zhang["A2"].value == "所在支部：兰溪镇红星村党支部"
    assert [zhang.cell(5, c).value for c in range(2, 9)] == [
        "月份", "每月履行党员义务积分", "每月志愿服务岗位贡献积分", "加分项", "扣分项", "当月得分", "备注"]
    assert all(zhang.cell(5, c).font.b for c in range(2, 9))
    assert zhang.column_dimensions["C"].width >= 20  # widths set for the Chinese headings
    months = sheet_rows(zhang)
    # by hand: obligations start at 40 (study −5, dues −3 in February), posts 2 × 10 claimed (+16 duties
    # in March), bonus county +2 (April) and economy +2 (May); April's late −2 was reversed.
    expected = {f"{m}月": [40, 20, 0, 0, 60] for m in range(1, 13)}
    expected["2月"] = [32, 20, 0, -8, 52]
    expected["3月"] = [40, 36, 0, 0, 76]
    expected["4月"] = [40, 20, 2, 0, 60]
    expected["5月"] = [40, 20, 2, 0, 60]
    for label, values in expected.items():
        assert [as_decimal(v) for v in months[label][:5]] == [Decimal(v) for v in values], label
    # 合计: the averages of the 12 months, the capped bonus, and the year = 728 / 12 + 4 = 64.67
    total = [as_decimal(v) for v in months["合计"][:5]]
    assert total == [Decimal("39.33"), Decimal("21.33"), Decimal(4), Decimal(-8), Decimal("64.67")]
    assert zhang.cell(18, 2).value == "合计" and zhang.cell(18, 7).number_format == "0.00"
    assert zhang.cell(6, 3).data_type == "n" and zhang.cell(6, 3).number_format == "0"  # numbers, not text
    assert "基本合格" in months["合计"][5] and "★★★" in months["合计"][5]
    lisi = sheet_rows(book["李四"])
    assert "清零：违反政治纪律" in lisi["6月"][5] and as_decimal(lisi["合计"][4]) == 0
    zhao = book["赵六"]  # the profile block from the roster
    assert [zhao.cell(3, c).value for c in range(2, 10)] == ["姓名", "赵六", "性别", "女", "出生年月", "1980-05", "民族", "汉族"]
    assert [zhao.cell(4, c).value for c in range(2, 10)] == ["学历", "高中", "入党时间", "2001-07", "身体状况", "良好",
                                                           "联系电话", "13800000000"]
    assert zhao["A3"].value == "基本情况" and zhao["A5"].value == "积分情况"


async def test_the_summary_sheet_follows_attachment_3_with_the_grading(h, clock):
    b = await xishui_year(h, clock)
    await h.say(b.secretary, h.private(b.secretary), "/export 2026")
    sheet = load_workbook(io.BytesIO(documents(h, b.secretary.id)[SUMMARY])).active
    assert sheet["A1"].value == "兰溪镇红星村党支部党员积分管理评分汇总表（2026年度）"
    assert sheet["A2"].value.startswith("评分时间：2027年1月10日")
    headers = [c.value for c in sheet[3]]
    assert headers == ["党员姓名", "志愿服务岗位", "履行党员义务(40分)", "志愿服务岗位(60分)", "加分项(最高10分)", "扣分项",
                       "合计得分", "等次", "星级", "备注"]
    graded = await h.services.grading.compute(b.branch, 2026)
    lines = {line.name: line for line in graded.lines}
    body = {row[0]: row for row in sheet.iter_rows(min_row=4, values_only=True) if row[0] in lines}
    assert set(body) == {"王书记", "李记录", "张三", "李四", "赵六", "钱七"}
    for name, line in lines.items():
        if line.figure is not None:
            assert as_decimal(body[name][6]) == line.figure, name  # 合计得分 = the grading's figure
            assert body[name][7] == (line.label_zh or None), name
    assert as_decimal(body["张三"][6]) == Decimal("64.67") and body["张三"][8] == "★★★"
    assert body["张三"][1].startswith("治安巡逻志愿服务岗") and "、环境卫生维护志愿服务岗" in body["张三"][1]
    assert [as_decimal(v) for v in body["张三"][2:6]] == [Decimal("39.33"), Decimal("21.33"), Decimal(4), Decimal(-8)]
    assert as_decimal(body["李四"][6]) == 0
    assert body["钱七"][9].startswith("不纳入积分管理")  # listed, not scored
    assert body["钱七"][6] is None


async def test_a_finalised_year_reads_the_snapshot(h, clock, monkeypatch):
    b = await xishui_year(h, clock)
    computed = await h.services.grading.compute(b.branch, 2026)
    final = computed.model_copy(update={"lines": [
        line.model_copy(update={"label_zh": "已定稿等次"}) for line in computed.lines]})

    async def snapshot(self, branch_id, year):
        return final if (branch_id, year) == (b.branch.id, 2026) else None

    monkeypatch.setattr(GradingService, "snapshot", snapshot)
    calls = await h.say(b.secretary, h.private(b.secretary), "/export 2026")
    assert "已定稿的年度结果" in said(calls, b.secretary.id)
    sheet = load_workbook(io.BytesIO(documents(h, b.secretary.id)[SUMMARY])).active
    assert "年度结果已定稿" in sheet["A2"].value
    assert {row[7] for row in sheet.iter_rows(min_row=4, max_row=8, values_only=True)} == {"已定稿等次"}


async def test_the_ledger_csv_has_every_row_of_the_year(h, clock):
    b = await xishui_year(h, clock)
    await h.say(b.recorder, h.private(b.recorder), "/export 2026")  # the recorder may export too
    data = documents(h, b.recorder.id)[LEDGER]
    assert data.startswith("\ufeff".encode("utf-8"))  # the BOM Excel needs for Chinese
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    header, body = table[0], table[1:]
    assert header[:4] == ["流水号", "支部编号", "党员编号", "党员姓名"] and "冲正的流水号" in header
    assert len(body) == await count(h, "ledger", "branch_id = ? AND substr(occurred_on, 1, 4) = '2026'", b.branch.id) == 8
    reversal = [r for r in body if r[header.index("冲正的流水号")]]
    assert len(reversal) == 1 and reversal[0][header.index("分值")] == "2"
    assert {r[header.index("党员姓名")] for r in body} == {"张三", "李四"}


async def test_only_the_secretary_deputy_and_recorder_may_export(h, clock):
    b = await xishui_year(h, clock)
    calls = await h.say(b.zhang, h.private(b.zhang), "/export 2026")
    assert "只有以下角色可以这样做" in said(calls) and not h.world.sent(b.zhang.id, "sendDocument")
    calls = await h.say(b.secretary, b.group, "/export")
    assert "私聊" in said(calls) and not h.world.sent(b.group.id, "sendDocument")
    for wrong, answer in (("/export 1999", "年份 1999 无效"), ("/export 2028", "年份 2028 无效"), ("/export abc", "用法")):
        calls = await h.say(b.secretary, h.private(b.secretary), wrong)
        assert answer in said(calls)
    assert not h.world.sent(b.secretary.id, "sendDocument")
    await h.say(b.secretary, h.private(b.secretary), "/role @zhang_1000 deputy")
    calls = await h.say(b.zhang, h.private(b.zhang), "/export")  # a deputy; no year in January: last year
    assert [c.files["document"][0] for c in calls if c.method == "sendDocument"] == [RECORD, SUMMARY, LEDGER]
    calls = await h.say(b.zhang, h.private(b.zhang), "/export 2027")  # the running year may be asked for
    assert [c.files["document"][0] for c in calls if c.method == "sendDocument"][0].startswith("兰溪镇红星村党支部_2027")


async def test_documents_in_english_and_generic_columns(h, clock):
    b = await year_branch(h, clock, "jiancaoping")
    clock.set(datetime(2026, 7, 1, 2, 0, tzinfo=UTC))
    docs = dict(await h.services.exports.year_documents(b.branch, 2026, lang="en"))
    book = load_workbook(io.BytesIO(docs["兰溪镇红星村党支部_2026_member_record_sheets.xlsx"]))
    sheet = book[book.sheetnames[0]]
    assert sheet["A1"].value.endswith("party member's daily conduct points record (2026)")
    assert sheet.cell(5, 3).value.startswith("Positive")  # the rulebook's own categories


SCHEME_ROWS = {  # a few entries per scheme for 张三, and his year worked out by hand
    "xishui": ([("honor_city", "3", date(2026, 3, 1))], Decimal(63)),  # 12 months of 40 + 20, bonus 3
    # each month 50 (meetings 30 + dues 20, nothing assessed) + vanguard 15 in May; H1 = 52.5 + 10 bonus,
    # H2 = 50; democratic evaluation missing: the quantified parts (62.5 + 50) / 2
    "zhangdian": ([("job_performance", "5", date(2026, 5, 1)), ("carry_out_tasks", "10", date(2026, 5, 2)),
                   ("district_praise", "10", date(2026, 2, 1))], Decimal("56.25")),
    "jiancaoping": ([("study_lead", "1", date(2026, 2, 1)), ("commended", "5", date(2026, 9, 9))], Decimal(86)),  # 80 + 6
    "sanmenxia": ([("green_zone", "10", date(2026, 4, 1)), ("repair_machinery", "3", date(2026, 8, 1)),
                   ("repair_machinery", "3", date(2026, 8, 2))], Decimal(116)),  # 100 + 16
}


@pytest.mark.parametrize("preset", ["xishui", "zhangdian", "jiancaoping", "sanmenxia"])
async def test_every_scheme_exports_with_the_gradings_figures(h, clock, preset):
    b = await year_branch(h, clock, preset)
    entries, expected = SCHEME_ROWS[preset]
    for item, value, day in entries:
        await record(h, b, "zhang", item, value, day)
    clock.set(NEXT_YEAR)
    docs = dict(await h.services.exports.year_documents(b.branch, 2026))
    assert set(docs) == {RECORD, SUMMARY, LEDGER}
    graded = await h.services.grading.compute(b.branch, 2026)
    summary = load_workbook(io.BytesIO(docs[SUMMARY])).active
    headers = [c.value for c in summary[3]]
    column = headers.index("合计得分")
    body = {row[0]: row for row in summary.iter_rows(min_row=4, values_only=True)}
    for line in graded.lines:
        if line.figure is not None:
            assert as_decimal(body[line.name][column]) == line.figure, (preset, line.name)
    sheets = load_workbook(io.BytesIO(docs[RECORD]))
    for line in graded.lines:
        if line.figure is not None and line.name in sheets.sheetnames:
            months = sheet_rows(sheets[line.name])
            assert as_decimal(months["合计"][_total_index(sheets[line.name])]) == line.figure, (preset, line.name)
    assert as_decimal(body["张三"][column]) == expected


def _total_index(sheet) -> int:
    """Where 当月得分 / 当月净得分 sits in a month row (from column C)."""
    for col in range(3, sheet.max_column + 1):
        if sheet.cell(5, col).value in ("当月得分", "当月净得分"):
            return col - 3
    raise LookupError("no month total column")


# --- /chart --------------------------------------------------------------------------------------------


async def test_chart_sends_the_members_trend(h, clock):
    b = await xishui_year(h, clock)
    clock.set(datetime(2026, 6, 20, 2, 0, tzinfo=UTC))
    calls = await h.say(b.zhang, h.private(b.zhang), "/chart")
    photos = [c for c in calls if c.method == "sendPhoto"]
    assert len(photos) == 1 and photos[0].chat_id == b.zhang.id
    assert photos[0].files["photo"][1].startswith(PNG)
    assert "张三" in photos[0].params["caption"] and "2026 年每月得分" in photos[0].params["caption"]
    calls = await h.say(b.recorder, h.private(b.recorder), "/chart 张三")  # a recorder may give a member
    assert [c.method for c in calls if c.method == "sendPhoto"] == ["sendPhoto"]
    calls = await h.say(b.zhang, h.private(b.zhang), "/chart 李四")  # a member may not
    assert "只有以下角色可以这样做" in said(calls) and not [c for c in calls if c.method == "sendPhoto"]
    calls = await h.say(b.zhang, b.group, "/chart")
    assert "私聊" in said(calls)


async def test_chart_trend_figures(h, clock):
    b = await xishui_year(h, clock)
    clock.set(datetime(2026, 6, 20, 2, 0, tzinfo=UTC))
    trend = await h.services.exports.trend(b.branch, me(b.zhang))
    assert trend.points == [(1, Decimal(60)), (2, Decimal(52)), (3, Decimal(76)), (4, Decimal(60)), (5, Decimal(60)),
                            (6, Decimal(60))]
    assert not trend.cumulative
    calls = await h.say(b.recorder, h.private(b.recorder), "/chart 钱七")
    assert "不纳入积分管理" in said(calls)
    assert (await h.services.roster.find(b.branch, "钱七")).state is MemberState.EXEMPT
