"""Year end, forms and pictures: the official forms as xlsx, the raw ledger as CSV, a member's trend.

The forms follow the attachments of seed 004 (浠水):

- the member's yearly record sheet (党员日常行为积分管理记录表): one workbook, one sheet per scored
  member: title, 所在支部, the profile block (姓名 性别 出生年月 民族 / 学历 入党时间 身体状况 联系电话), a
  row per month (每月履行党员义务积分, 每月志愿服务岗位贡献积分, 加分项, 扣分项) and 合计;
- the branch's summary sheet (党员积分管理评分汇总表): 党员姓名, 志愿服务岗位, one column per category,
  加分项, 扣分项, 合计得分, plus 等次 and 星级 from the grading;
- the ledger of the year as CSV (UTF-8 with a BOM, so that Excel opens the Chinese), every column,
  reversals included.

Other schemes get the same forms with the rulebook's categories as columns. Decisions where the seed is
silent (stated on the sheets as well):

- 浠水's 扣分项 is what was deducted in the month (absences, late dues, …), shown for information: those
  deductions are already inside the obligations / posts scores (allotments start full and lose). A
  zero-out (the seed's 扣分项 proper) is written in the month's 备注 and makes the year 0.
- A month row shows the month's scores (a category judged over a longer period shows the month's
  entries); the 合计 row shows the year's figures: the average of the counted months where the scheme
  averages, the sum (with yearly caps) where it sums; the bonus is the capped year bonus.
- The months are those grading counts (from joining to leaving, up to the year's end or today); in the
  year that is running, the month in progress counts as it stands and is marked so.
- 合计得分, 等次 and 星级 are the grading's (``services.grading.snapshot`` once the year is finalised,
  otherwise ``services.grading.compute``); the category columns are recomputed from the ledger.
- Numbers are written as numbers: openpyxl accepts ``Decimal`` cell values (its numeric types are
  int, float and Decimal) and writes them as XML numbers; every figure is first rounded half up to the
  rulebook's places (DOMAIN decision 1), so the cell shows exactly the published figure. The number
  format is "0" for whole figures and "0.00" otherwise. No float is made by this code.
- The texts of the forms come from the catalogs, in the branch's language (the official forms are the
  branch's).
"""

from __future__ import annotations

import asyncio
import csv
import html
import io
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from bot.clock import Clock
from bot.domain.grading import TRANSFERRED_OUT
from bot.domain.records import Branch, LedgerRow, Member, MemberState, MemberStatus, Role
from bot.domain.rulebook import ItemKind, Period, Rulebook, YearMethod
from bot.domain.scoring import (
    Entry,
    YearScore,
    effective,
    month_net,
    month_score,
    publish,
    year_score,
)
from bot.domain.states import History, drop_months, exempt_months
from bot.domain.states import scored as scored_stints
from bot.domain.town import Stint, months_of
from bot.errors import InvalidInput, NotAuthorized
from bot.i18n import DEFAULT_LANGUAGE, LANGUAGES, catalog, format_points
from bot.services.branches import Actor, require_role, rulebook_of
from bot.services.posts import posts_by_month
from bot.services.transfers import chain_of_member, chains_near_branch
from storage import ledger as ledger_repo
from storage import member_states as state_repo
from storage import members as member_repo
from storage import posts as post_repo
from storage.db import Database

EXPORTERS = (Role.SECRETARY, Role.DEPUTY, Role.RECORDER)
VIEWERS = (Role.RECORDER, Role.SECRETARY, Role.DEPUTY)  # may look at another member's chart
FIRST_YEAR = 2000
DEDUCTIONS = "_deductions"
PROFILE = ("name", "sex", "birth_month", "ethnicity", "education", "party_joined_on", "health", "phone")
# Personal data: shown only to the member and the secretary (issue 5). The deputy and the recorder get
# the record sheets with these cells empty; the labels stay so that the sheet keeps the form's layout.
PERSONAL = ("sex", "birth_month", "ethnicity", "education", "party_joined_on", "health", "phone")
LEDGER_COLUMNS = ("id", "branch_id", "member_id", "member", "item_code", "item", "event_code", "event", "value",
                  "occurred_on", "source", "reference", "actor_id", "actor", "reason", "reverses_id", "created_at")
ALL_STATUSES = tuple(s.value for s in MemberStatus)


class Grading(Protocol):
    """What the exports need of ``services.grading`` (bot/services/grading.py, /tmp/grading_api.md)."""

    async def snapshot(self, branch_id: int, year: int) -> Any: ...
    async def compute(self, branch: Branch, year: int) -> Any: ...
    # optional: default_year(branch) -> int (the year without one), first_year(branch) -> int (the branch's first)


# --- texts ---------------------------------------------------------------------------------------


_TAG = re.compile(r"<[^>]+>")


def text(lang: str, key: str, **params: Any) -> str:
    """A catalog text as plain text (no HTML escaping: a cell or a file name is not HTML)."""
    templates = catalog(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)
    template = templates.get(key) or catalog(DEFAULT_LANGUAGE)[key]
    values = {k: format_points(v) if isinstance(v, Decimal) else str(v) for k, v in params.items()}
    return html.unescape(_TAG.sub("", template)).format_map(values)


def _flag(lang: str, code: str) -> str:
    """A grading flag's name (the /grade developer's catalog: grade.flag.<code>), else the code."""
    template = catalog(lang if lang in LANGUAGES else DEFAULT_LANGUAGE).get(f"grade.flag.{code}")
    if template is None:
        return code
    return html.unescape(_TAG.sub("", template)).replace("{", "").replace("}", "")


_UNSAFE_FILE = re.compile(r"[^\w\u3400-\u9fff\-]+")


def _file_part(name: str) -> str:
    return _UNSAFE_FILE.sub("_", name).strip("_")[:40] or "branch"


# --- what the forms show ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    code: str  # a category code, or DEDUCTIONS
    record_label: str
    summary_label: str


@dataclass(frozen=True)
class MonthLine:
    month: int
    shown: bool  # False: not counted (empty row)
    future: bool = False  # not shown because it has not come yet (a member in the branch): no "not in the branch" note
    exempt: bool = False  # not shown because the member was exempt (不纳入积分管理) that month: said so
    values: dict[str, Decimal] = field(default_factory=dict)  # column code -> published figure
    total: Decimal | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class MemberSheet:
    member: Member
    posts: tuple[str, ...]  # the volunteer posts held at the year's end (or when they left)
    months: tuple[MonthLine, ...]
    year: YearScore
    totals: dict[str, Decimal]  # column code -> the year's published figure
    figure: Decimal  # 合计得分: the grading's figure, else the year's published figure
    line: Any | None  # the member's GradeLine, if the grading lists them


@dataclass(frozen=True)
class YearExport:
    documents: list[tuple[str, bytes]]
    year: int
    members: int  # record sheets
    ledger_rows: int
    final: bool  # the grading is the finalised snapshot


@dataclass(frozen=True)
class Trend:
    member: Member
    rulebook: Rulebook
    year: int
    cumulative: bool  # sum schemes: the year so far at each month's end; others: each month's score
    points: list[tuple[int, Decimal]]  # (month, published figure)


def columns(rulebook: Rulebook, lang: str) -> list[Column]:
    """The form's score columns: one per category that can hold points (a zero-out category cannot);
    浠水 gets the seed's own headings and its 扣分项 column."""
    found: list[Column] = []
    xishui = rulebook.code == "xishui"
    for category in rulebook.categories:
        if all(item.kind is ItemKind.ZERO_OUT for item in category.items):
            continue
        name = category.name.get(lang)
        if category.cap is not None and category.period is Period.MONTH:
            summary = text(lang, "export.summary.category_cap", name=name, cap=category.cap)
        elif category.cap_year is not None:
            summary = text(lang, "export.summary.category_cap_year", name=name, cap=category.cap_year)
        elif category.code == rulebook.year_result.bonus_category and rulebook.year_result.bonus_cap is not None:
            summary = text(lang, "export.summary.category_cap_year", name=name, cap=rulebook.year_result.bonus_cap)
        else:
            summary = name
        record = summary
        if xishui and category.code in ("obligations", "posts", "bonus"):
            record = text(lang, f"export.xishui.{category.code}")
            summary = text(lang, f"export.xishui.summary_{category.code}",
                           cap=category.cap if category.cap is not None else category.cap_year or Decimal(0))
        found.append(Column(category.code, record, summary))
    if xishui:
        label = text(lang, "export.xishui.deductions")
        found.append(Column(DEDUCTIONS, label, label))
    return found


def _in_month(entries: list[Entry], year: int, month: int) -> list[Entry]:
    return [e for e in entries if (e.occurred_on.year, e.occurred_on.month) == (year, month)]


def member_sheet(rulebook: Rulebook, lang: str, member: Member, entries: list[Entry], year: int, today: date,
                 posts: dict[tuple[int, int], int], post_names: tuple[str, ...], line: Any | None,
                 stays: tuple[Stint, ...] | None = None, histories: Mapping[int, History] | None = None) -> MemberSheet:
    """One member's year on the form: pure arithmetic over the ledger rows (scoring's rules). ``stays``: the
    row's stays when it left and came back (``Chains.own``): the months away are not in the branch.
    ``histories``: the row's state history (bot.domain.states): the months exempt are marked so, not scored."""
    stays = stays or (Stint(member.id, member.branch_id, member.joined_on, member.left_on),)
    histories = histories or {}
    places = rulebook.settings.rounding_places
    cols = columns(rulebook, lang)
    # The months grading counts (services.grading: up to the year's end or today), so that the 合计 row
    # and 合计得分 agree; the month in progress is counted as it stands and marked.
    upto = min(date(year, 12, 31), today)
    counted = months_of(scored_stints(stays, histories), year, upto)
    exempt = exempt_months(stays, histories, year, upto)
    membership = set(months_of(stays, year, date(year, 12, 31)))
    rows = [e for e in drop_months(effective(entries), exempt) if e.occurred_on.year == year]
    zero_codes = {i.code for _, i in rulebook.items() if i.kind is ItemKind.ZERO_OUT}
    lines = []
    for month in range(1, 13):
        if (year, month) not in counted:
            # months still to come are blank; "not in the branch" only for months outside membership
            lines.append(MonthLine(month=month, shown=False, future=(year, month) in membership and (year, month) not in exempt,
                                   exempt=(year, month) in exempt))
            continue
        in_month = _in_month(rows, year, month)
        scored = month_score(rulebook, rows, year, month, posts)
        by_code = {c.code: c.points for c in scored.categories}
        values: dict[str, Decimal] = {}
        for column in cols:
            if column.code == DEDUCTIONS:
                values[column.code] = sum((e.value for e in in_month if e.value < 0), Decimal(0))
            elif column.code in by_code:
                values[column.code] = by_code[column.code]
            else:  # judged over a longer period: the month's own entries
                values[column.code] = sum(
                    (e.value for e in in_month if (c := rulebook.category_of(e.item_code)) and c.code == column.code), Decimal(0))
        total = month_net(rows, year, month) if rulebook.year_result.method is YearMethod.SUM else scored.total
        notes = [text(lang, "export.record.zeroed", item=item.name.get(lang))
                 for e in in_month if e.item_code in zero_codes and (item := rulebook.item(e.item_code))]
        if (year, month) == (today.year, today.month):
            notes.append(text(lang, "export.record.running"))
        lines.append(MonthLine(month=month, shown=True, values={k: publish(v, places) for k, v in values.items()},
                               total=publish(total, places), notes=tuple(notes)))
    score = year_score(rulebook, rows, year, counted, posts=posts)
    year_categories = {c.code: c.points for c in score.categories}
    bonus_code = rulebook.year_result.bonus_category
    if bonus_code is not None and bonus_code not in year_categories and score.halves:
        # 张店: the year is the mean of the halves, so the row shows the mean of their capped bonuses
        year_categories[bonus_code] = sum((h.bonus for h in score.halves), Decimal(0)) / len(score.halves)
    totals: dict[str, Decimal] = {}
    for column in cols:
        if column.code == DEDUCTIONS:
            totals[column.code] = sum((ln.values.get(DEDUCTIONS, Decimal(0)) for ln in lines if ln.shown), Decimal(0))
        else:
            totals[column.code] = publish(year_categories.get(column.code, Decimal(0)), places)
    figure = getattr(line, "figure", None)
    if figure is None:
        figure = publish(score.figure, places)
    return MemberSheet(member=member, posts=post_names, months=tuple(lines), year=score, totals=totals,
                       figure=publish(Decimal(figure), places), line=line)


def _lines_by_member(result: Any) -> dict[int, Any]:
    return {line.member_id: line for line in getattr(result, "lines", None) or []}


def _in_year(member: Member, year: int, stays: tuple[Stint, ...]) -> bool:
    if member.status not in (MemberStatus.APPROVED, MemberStatus.LEFT) and not (
            member.status is MemberStatus.PENDING and member.left_on is not None):  # a return asked: the stay counts
        return False
    return any((s.first is None or s.first.year <= year) and (s.last is None or s.last.year >= year) for s in stays)


def _exempt(member: Member, line: Any | None) -> bool:
    """Listed as exempt: the grading says so (too few months scored around an exemption, bot.domain.states);
    without a grading line, the state now."""
    if line is not None:
        return "exempt" in (getattr(line, "flags", None) or ())
    return member.state is MemberState.EXEMPT


def _moved_out(line: Any | None) -> bool:
    """Listed as transferred out (组织关系转接): their months here stay on the record sheet, but the
    summary gives no figure (another branch grades the year)."""
    return TRANSFERRED_OUT in (getattr(line, "flags", None) or ())


# --- the workbooks -------------------------------------------------------------------------------

THIN = Side(style="thin", color="000000")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
BOLD = Font(bold=True)
TITLE = Font(bold=True, size=16)
CENTRE = Alignment(horizontal="center", vertical="center", wrap_text=True)
LEFT = Alignment(horizontal="left", vertical="center", wrap_text=True)


def _number(cell: Any, value: Decimal | None, places: int) -> None:
    """A figure as a number cell: the Decimal itself (openpyxl writes it as an XML number)."""
    if value is None:
        return
    value = publish(value, places)
    cell.value = value
    cell.number_format = "0" if value == value.to_integral_value() else "0." + "0" * max(places, 1)
    cell.alignment = CENTRE


def _label(cell: Any, value: str, *, bold: bool = False, align: Alignment = CENTRE) -> None:
    cell.value = value
    cell.alignment = align
    if bold:
        cell.font = BOLD


def _display_width(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, Decimal):
        return len(format_points(value)) + 1
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in str(value))


def _set_widths(sheet: Worksheet, first_row: int, last_row: int, last_col: int, minimum: int = 8, maximum: int = 40) -> None:
    widths: dict[int, int] = defaultdict(int)
    merged_starts = {(r.min_row, r.min_col) for r in sheet.merged_cells.ranges if r.max_col > r.min_col}
    for row in sheet.iter_rows(min_row=first_row, max_row=last_row, max_col=last_col):
        for cell in row:
            if (cell.row, cell.column) in merged_starts:
                continue  # a merged note spans several columns
            widths[cell.column] = max(widths[cell.column], _display_width(cell.value))
    for column in range(1, last_col + 1):
        sheet.column_dimensions[get_column_letter(column)].width = max(minimum, min(maximum, widths[column] + 2))


def _fit_rows(sheet: Worksheet, first_row: int, last_row: int, line_height: int = 16) -> None:
    """Row heights for wrapped text (spreadsheet programs do not always grow a row by themselves)."""
    spans = {(r.min_row, r.min_col): (r.min_col, r.max_col) for r in sheet.merged_cells.ranges}
    widths = {c: sheet.column_dimensions[get_column_letter(c)].width or 8 for c in range(1, sheet.max_column + 1)}
    for row in range(first_row, last_row + 1):
        lines = 1
        for cell in sheet[row]:
            if cell.value is None or isinstance(cell.value, Decimal):
                continue
            first, last = spans.get((row, cell.column), (cell.column, cell.column))
            room = max(1, int(sum(widths.get(c, 8) for c in range(first, last + 1))) - 1)
            lines = max(lines, -(-_display_width(cell.value) // room))
        if lines > 1:
            sheet.row_dimensions[row].height = lines * line_height


def _box(sheet: Worksheet, first_row: int, last_row: int, first_col: int, last_col: int) -> None:
    for row in sheet.iter_rows(min_row=first_row, max_row=last_row, min_col=first_col, max_col=last_col):
        for cell in row:
            cell.border = BOX


_SHEET_UNSAFE = re.compile(r"[\[\]:*?/\\']")


def _sheet_title(name: str, used: set[str]) -> str:
    base = _SHEET_UNSAFE.sub("_", name).strip() or "sheet"
    title, n = base[:31], 2
    while title.lower() in used:
        suffix = f"({n})"
        title, n = base[:31 - len(suffix)] + suffix, n + 1
    used.add(title.lower())
    return title


def _explanation(rulebook: Rulebook, lang: str) -> str:
    rule = rulebook.year_result
    parts = []
    match rule.method:
        case YearMethod.MONTHLY_AVERAGE:
            parts.append(text(lang, "export.note.average", cap=rule.bonus_cap if rule.bonus_cap is not None else "-"))
        case YearMethod.SUM:
            parts.append(text(lang, "export.note.sum", base=rule.base))
        case YearMethod.WEIGHTED_HALVES:
            parts.append(text(lang, "export.note.weighted", quantified=rule.quantified_weight * 100,
                              democratic=rule.democratic_weight * 100))
    if rulebook.code == "xishui":
        parts.append(text(lang, "export.note.deductions"))
    if any(i.kind is ItemKind.ZERO_OUT for _, i in rulebook.items()):
        parts.append(text(lang, "export.note.zero_out"))
    return "".join(parts)


def _stars_text(lang: str, stars: int | None) -> str:
    if stars is None:
        return ""
    return "★" * stars if stars else text(lang, "export.summary.no_stars")


def _band_text(lang: str, line: Any | None) -> str:
    if line is None:
        return ""
    label = getattr(line, "label_en" if lang == "en" else "label_zh", None) or getattr(line, "label_zh", None)
    return label or ""


def record_workbook(branch: Branch, rulebook: Rulebook, lang: str, year: int, sheets: list[MemberSheet],
                    personal: bool = False) -> bytes:
    """党员日常行为积分管理记录表: one sheet per member, laid out like seed 004's attachment 2.

    ``personal``: fill the profile block's personal cells (PERSONAL) — only for the secretary."""
    places = rulebook.settings.rounding_places
    cols = columns(rulebook, lang)
    with_stars = any(b.stars for b in rulebook.bands)
    book = Workbook()
    book.remove(book.active)
    used: set[str] = set()
    if not sheets:
        sheet = book.create_sheet(_sheet_title(text(lang, "export.record.sheet_empty"), used))
        sheet["A1"] = text(lang, "export.record.none", year=year)
    # columns: A section label; B month; C.. score columns; then month total; then note
    table_cols = 1 + len(cols) + 1 + 1
    last = max(1 + 8, 1 + table_cols)
    for data in sheets:
        member = data.member
        sheet = book.create_sheet(_sheet_title(member.name, used))
        sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=last)
        _label(sheet.cell(1, 1), text(lang, "export.record.title", branch=branch.title, year=year))
        sheet.cell(1, 1).font = TITLE
        sheet.row_dimensions[1].height = 32
        sheet.merge_cells(start_row=2, start_column=1, end_row=2, end_column=last)
        _label(sheet.cell(2, 1), text(lang, "export.record.branch", branch=branch.title), align=LEFT)
        # the profile block
        sheet.merge_cells(start_row=3, start_column=1, end_row=4, end_column=1)
        _label(sheet.cell(3, 1), text(lang, "export.record.basic"), bold=True)
        for index, key in enumerate(PROFILE):
            row, col = 3 + index // 4, 2 + 2 * (index % 4)
            _label(sheet.cell(row, col), text(lang, f"export.record.{key}"), bold=True)
            shown = getattr(member, key) if personal or key not in PERSONAL else None
            _label(sheet.cell(row, col + 1), shown or "")
        if last > 9:
            for row in (3, 4):
                sheet.merge_cells(start_row=row, start_column=9, end_row=row, end_column=last)
        # the points table
        header = 5
        _label(sheet.cell(header, 2), text(lang, "export.record.month"), bold=True)
        for offset, column in enumerate(cols):
            _label(sheet.cell(header, 3 + offset), column.record_label, bold=True)
        total_col = 3 + len(cols)
        note_col = total_col + 1
        total_key = "export.record.month_net" if rulebook.year_result.method is YearMethod.SUM else "export.record.month_total"
        _label(sheet.cell(header, total_col), text(lang, total_key), bold=True)
        _label(sheet.cell(header, note_col), text(lang, "export.record.note"), bold=True)
        row = header
        for month_line in data.months:
            row += 1
            _label(sheet.cell(row, 2), text(lang, "export.record.month_label", month=month_line.month))
            if month_line.shown:
                for offset, column in enumerate(cols):
                    _number(sheet.cell(row, 3 + offset), month_line.values.get(column.code), places)
                _number(sheet.cell(row, total_col), month_line.total, places)
                _label(sheet.cell(row, note_col), "；".join(month_line.notes), align=LEFT)
            elif month_line.exempt:
                _label(sheet.cell(row, note_col), text(lang, "export.record.exempt_month"), align=LEFT)
            elif not month_line.future:
                _label(sheet.cell(row, note_col), text(lang, "export.record.not_member"), align=LEFT)
        if rulebook.year_result.method is YearMethod.WEIGHTED_HALVES:
            for half in data.year.halves:
                row += 1
                _label(sheet.cell(row, 2), text(lang, f"export.record.half_{half.half}"), bold=True)
                _number(sheet.cell(row, total_col), half.result if half.result is not None else half.quantified, places)
                note = (text(lang, "export.record.half_note", quantified=publish(half.quantified, places),
                             democratic=publish(half.democratic, places))
                        if half.democratic is not None else
                        text(lang, "export.record.half_pending", quantified=publish(half.quantified, places)))
                _label(sheet.cell(row, note_col), note, align=LEFT)
        if rulebook.year_result.method is YearMethod.SUM:
            row += 1
            _label(sheet.cell(row, 2), text(lang, "export.record.base"), bold=True)
            _number(sheet.cell(row, total_col), rulebook.year_result.base, places)
        row += 1
        _label(sheet.cell(row, 2), text(lang, "export.record.total"), bold=True)
        for offset, column in enumerate(cols):
            _number(sheet.cell(row, 3 + offset), data.totals.get(column.code), places)
        _number(sheet.cell(row, total_col), data.figure, places)
        for col in range(2, note_col + 1):
            sheet.cell(row, col).font = BOLD
        band = _band_text(lang, data.line)
        # stars only where the scheme has them (尖草坪's bands have none: no "无星")
        stars = _stars_text(lang, getattr(data.line, "stars", None)) if band and with_stars else ""
        _label(sheet.cell(row, note_col), " ".join(p for p in (band, stars) if p), align=LEFT)
        table_end = row
        if last > note_col:
            for r in range(header, table_end + 1):
                sheet.merge_cells(start_row=r, start_column=note_col, end_row=r, end_column=last)
        sheet.merge_cells(start_row=header, start_column=1, end_row=table_end, end_column=1)
        _label(sheet.cell(header, 1), text(lang, "export.record.points"), bold=True)
        _box(sheet, 3, table_end, 1, last)
        row = table_end + 1
        sheet.merge_cells(start_row=row, start_column=1, end_row=row, end_column=last)
        _label(sheet.cell(row, 1), _explanation(rulebook, lang), align=LEFT)
        row += 2
        sheet.merge_cells(start_row=row, start_column=1, end_row=row, end_column=last)
        _label(sheet.cell(row, 1), text(lang, "export.record.sign"), align=LEFT)
        _set_widths(sheet, 3, table_end, last)
        sheet.column_dimensions["A"].width = 10
        _fit_rows(sheet, 2, row)
        sheet.page_setup.orientation = "landscape"
        sheet.page_setup.fitToWidth = 1
        sheet.sheet_properties.pageSetUpPr.fitToPage = True
    return _save(book)


def summary_workbook(branch: Branch, rulebook: Rulebook, lang: str, year: int, today: date,
                     sheets: list[MemberSheet], exempt: list[tuple[Member, Any | None]], final: bool) -> bytes:
    """党员积分管理评分汇总表, laid out like seed 004's attachment 3, plus 等次 and 星级."""
    places = rulebook.settings.rounding_places
    cols = columns(rulebook, lang)
    with_posts = rulebook.posts is not None
    with_stars = any(b.stars for b in rulebook.bands)
    with_rank = bool(rulebook.ranking_tiers)
    headers = [text(lang, "export.summary.name")]
    if with_posts:
        headers.append(text(lang, "export.summary.posts"))
    headers += [c.summary_label for c in cols]
    headers.append(text(lang, "export.summary.total"))
    if with_rank:
        headers.append(text(lang, "export.summary.rank"))
    headers.append(text(lang, "export.summary.band"))
    if with_stars:
        headers.append(text(lang, "export.summary.stars"))
    headers.append(text(lang, "export.summary.note"))
    last = len(headers)
    book = Workbook()
    sheet = book.active
    sheet.title = _sheet_title(text(lang, "export.summary.sheet", year=year), set())
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=last)
    _label(sheet.cell(1, 1), text(lang, "export.summary.title", branch=branch.title, year=year))
    sheet.cell(1, 1).font = TITLE
    sheet.row_dimensions[1].height = 32
    sheet.merge_cells(start_row=2, start_column=1, end_row=2, end_column=last)
    status = text(lang, "export.summary.final" if final else "export.summary.provisional")
    _label(sheet.cell(2, 1), text(lang, "export.summary.date", year=today.year, month=today.month, day=today.day)
           + status, align=LEFT)
    for index, header in enumerate(headers, start=1):
        _label(sheet.cell(3, index), header, bold=True)
    row = 3
    for data in sheets:
        row += 1
        col = 1
        _label(sheet.cell(row, col), data.member.name)
        if with_posts:
            col += 1
            _label(sheet.cell(row, col), text(lang, "export.summary.post_separator").join(data.posts))
        for column in cols:
            col += 1
            _number(sheet.cell(row, col), data.totals.get(column.code), places)
        col += 1
        _number(sheet.cell(row, col), data.figure, places)
        sheet.cell(row, col).font = BOLD
        if with_rank:
            col += 1
            rank = getattr(data.line, "rank", None)
            if rank is not None:
                sheet.cell(row, col).value = int(rank)
                sheet.cell(row, col).alignment = CENTRE
        col += 1
        _label(sheet.cell(row, col), _band_text(lang, data.line))
        if with_stars:
            col += 1
            _label(sheet.cell(row, col), _stars_text(lang, getattr(data.line, "stars", None)))
        col += 1
        flags = [_flag(lang, f) for f in getattr(data.line, "flags", None) or []]
        _label(sheet.cell(row, col), "；".join(flags), align=LEFT)
    for member, line in exempt:
        row += 1
        _label(sheet.cell(row, 1), member.name)
        reason = text(lang, "export.summary.exempt") + (f"（{member.state_reason}）" if member.state_reason else "")
        if _moved_out(line):  # another branch grades the year: no figure here, the reason instead
            reason = _flag(lang, TRANSFERRED_OUT)
        _label(sheet.cell(row, last), reason, align=LEFT)
    _box(sheet, 3, row, 1, last)
    table_end = row
    row += 1
    sheet.merge_cells(start_row=row, start_column=1, end_row=row, end_column=last)
    _label(sheet.cell(row, 1), _explanation(rulebook, lang), align=LEFT)
    row += 2
    sheet.merge_cells(start_row=row, start_column=1, end_row=row, end_column=last)
    _label(sheet.cell(row, 1), text(lang, "export.summary.sign"), align=LEFT)
    _set_widths(sheet, 3, table_end, last)
    _fit_rows(sheet, 2, row)
    sheet.freeze_panes = "B4"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.fitToWidth = 1
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    return _save(book)


def _save(book: Workbook) -> bytes:
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def ledger_csv(rulebook: Rulebook, lang: str, rows: list[LedgerRow], names: dict[int, str]) -> bytes:
    """The year's ledger rows as they are (reversals too), UTF-8 with a BOM for Excel."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([text(lang, f"export.ledger.{c}") for c in LEDGER_COLUMNS])
    for row in rows:
        item = rulebook.item(row.item_code)
        event = item.event(row.event_code) if item is not None and row.event_code else None
        values = {
            "id": row.id, "branch_id": row.branch_id, "member_id": row.member_id, "member": names.get(row.member_id, ""),
            "item_code": row.item_code, "item": item.name.get(lang) if item else "", "event_code": row.event_code or "",
            "event": event.name.get(lang) if event else "", "value": format_points(row.value),
            "occurred_on": row.occurred_on.isoformat(), "source": row.source.value, "reference": row.reference,
            "actor_id": "" if row.actor_id is None else row.actor_id,
            "actor": names.get(row.actor_id, "") if row.actor_id is not None else "",
            "reason": row.reason or "", "reverses_id": "" if row.reverses_id is None else row.reverses_id,
            "created_at": row.created_at.isoformat(),
        }
        writer.writerow([values[c] for c in LEDGER_COLUMNS])
    return buffer.getvalue().encode("utf-8-sig")


# --- the service ---------------------------------------------------------------------------------


class ExportService:
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock
        self._grading: Grading | None = None

    @property
    def grading(self) -> Grading:
        """The grading the forms read (the same database; set to ``services.grading`` to share it)."""
        if self._grading is None:
            from bot.services.grading import GradingService  # late: grading may import exports

            self._grading = GradingService(self.db, self.clock)  # type: ignore[assignment]
        return self._grading  # type: ignore[return-value]

    @grading.setter
    def grading(self, value: Grading) -> None:
        self._grading = value

    async def export(self, branch: Branch, actor: Actor, year: int | None = None) -> YearExport:
        """/export: the secretary, deputy or recorder asks for the year's forms."""
        async with self.db.read() as conn:
            exporter = await require_role(conn, branch.id, actor.user_id, EXPORTERS)
            personal = Role.SECRETARY in await member_repo.roles_of(conn, exporter.id)
        today = self.clock.today(branch.timezone)
        if year is None:  # the year /grade means without one (a year in publicity, else last year until June
            # when the branch existed then, else this year)
            default = getattr(self.grading, "default_year", None)
            year = await default(branch) if default is not None else today.year
        if not FIRST_YEAR <= year <= today.year:
            raise InvalidInput("export.bad_year", year=year, first=FIRST_YEAR, last=today.year)
        branch_first = getattr(self.grading, "first_year", None)  # no forms for years before the branch
        first = await branch_first(branch) if branch_first is not None else FIRST_YEAR
        if year < first:
            raise InvalidInput("export.before_branch", year=year, first=first, branch=branch.title)
        return await self.build(branch, year, personal=personal)

    async def year_documents(self, branch: Branch, year: int, lang: str | None = None, *,
                             personal: bool = False) -> list[tuple[str, bytes]]:
        """(file name, bytes) of the record sheets (xlsx), the summary sheet (xlsx) and the ledger (CSV).

        No authority check: callers check (``export`` for /export; the grading at finalisation).
        ``personal`` (phone, birth month, … in the record sheets) only for the secretary."""
        return (await self.build(branch, year, lang, personal=personal)).documents

    async def build(self, branch: Branch, year: int, lang: str | None = None, *, personal: bool = False) -> YearExport:
        lang = lang if lang in LANGUAGES else (branch.language if branch.language in LANGUAGES else DEFAULT_LANGUAGE)
        rulebook = rulebook_of(branch)
        today = self.clock.today(branch.timezone)
        snapshot = await self.grading.snapshot(branch.id, year)
        final = snapshot is not None
        result = snapshot if final else await self.grading.compute(branch, year)
        by_member = _lines_by_member(result)
        async with self.db.read() as conn:
            everyone = await member_repo.listing(conn, branch.id, ALL_STATUSES)
            ledger = [r for r in await ledger_repo.of_branch(conn, branch.id) if r.occurred_on.year == year]
            chains = await chains_near_branch(conn, branch.id)  # a member who left and came back: each stay
            histories = await state_repo.of_branch(conn, branch.id)  # the months each was exempt
            members = [m for m in everyone if _in_year(m, year, chains.own(m))]
            posts: dict[int, dict[tuple[int, int], int]] = {}
            post_names: dict[int, tuple[str, ...]] = {}
            for member in members:
                posts[member.id] = await posts_by_month(conn, rulebook, member.id, year, today)
                if rulebook.posts is not None:
                    day = min(date(year, 12, 31), today, member.left_on or date.max)
                    post_names[member.id] = tuple(p.name(lang) for p in await post_repo.held_on(conn, member.id, day))
        entries: dict[int, list[Entry]] = defaultdict(list)
        for row in ledger:
            entries[row.member_id].append(row.entry())
        sheets: list[MemberSheet] = []
        exempt: list[tuple[Member, Any | None]] = []
        for member in members:
            line = by_member.get(member.id)
            if _exempt(member, line) or _moved_out(line):
                exempt.append((member, line))
                if not _moved_out(line):
                    continue
            if not months_of(chains.own(member), year, today):
                continue
            sheets.append(member_sheet(rulebook, lang, member, entries[member.id], year, today, posts[member.id],
                                       post_names.get(member.id, ()), line, chains.own(member), histories))
        order = {line.member_id: index for index, line in enumerate(getattr(result, "lines", None) or [])}
        ranked = sorted((s for s in sheets if not _moved_out(s.line)), key=lambda s: (order.get(s.member.id, len(order)), s.member.id))
        names = {m.id: m.name for m in everyone}
        title = _file_part(branch.title)
        record, summary, raw = await asyncio.gather(
            asyncio.to_thread(record_workbook, branch, rulebook, lang, year, sheets, personal),
            asyncio.to_thread(summary_workbook, branch, rulebook, lang, year, today, ranked, exempt, final),
            asyncio.to_thread(ledger_csv, rulebook, lang, ledger, names),
        )
        documents = [
            (text(lang, "export.file.record", branch=title, year=year), record),
            (text(lang, "export.file.summary", branch=title, year=year), summary),
            (text(lang, "export.file.ledger", branch=title, year=year), raw),
        ]
        from bot.services.rewards import RewardService  # late: rewards reads this module's text()

        rewards = await RewardService(self.db, self.clock).year_workbook(branch, year, lang)
        if rewards is not None:  # the redemptions sheet, where the branch has any (issue 7)
            documents.append((text(lang, "export.file.rewards", branch=title, year=year), rewards))
        return YearExport(documents=documents, year=year, members=len(sheets), ledger_rows=len(ledger), final=final)

    async def trend(self, branch: Branch, actor: Actor, reference: str | None = None, year: int | None = None) -> Trend:
        """/chart: a member's monthly scores this year, or of ``year`` (all its months, for a year that has
        ended: /chart 2026 in January) (sum schemes: the year so far at each month's end).

        Everyone sees their own; the recorder, secretary and deputy may name a member."""
        from bot.services.roster import RosterService

        async with self.db.read() as conn:
            me = await member_repo.by_user(conn, branch.id, actor.user_id)
            if me is None or me.status is not MemberStatus.APPROVED:
                raise NotAuthorized("auth.not_member")
            if reference:
                await require_role(conn, branch.id, actor.user_id, VIEWERS)
        target = await RosterService(self.db, self.clock).find(branch, reference) if reference else me
        rulebook = rulebook_of(branch)
        today = self.clock.today(branch.timezone)
        if year is not None and year > today.year:
            raise InvalidInput("record.future_year", year=year)
        if year is not None and year < today.year:
            today = date(year, 12, 31)  # a year that has ended: every month of it
        async with self.db.read() as conn:
            rows = await ledger_repo.of_member(conn, target.id, today.year)
            posts = await posts_by_month(conn, rulebook, target.id, today.year, today)
            stays = (await chain_of_member(conn, target.id)).own(target)  # a member who left and came back: each stay
            histories = await state_repo.of_members(conn, [target.id])  # and the months exempt cut out
        entries = drop_months([r.entry() for r in rows], exempt_months(stays, histories, today.year, today))
        months = months_of(scored_stints(stays, histories), today.year, today)
        if not months and not target.scored:  # exempt now and scored in no month of the year (else: those months)
            raise InvalidInput("chart.exempt", name=target.name)
        places = rulebook.settings.rounding_places
        cumulative = rulebook.year_result.method is YearMethod.SUM
        points: list[tuple[int, Decimal]] = []
        for index, (y, m) in enumerate(months):
            if cumulative:
                so_far = [e for e in entries if (e.occurred_on.year, e.occurred_on.month) <= (y, m)]
                value = year_score(rulebook, so_far, y, months[:index + 1], posts=posts).figure
            else:
                value = month_score(rulebook, entries, y, m, posts).total
            points.append((m, publish(value, places)))
        return Trend(member=target, rulebook=rulebook, year=today.year, cumulative=cumulative, points=points)


__all__ = ["ExportService", "YearExport", "Trend", "columns", "member_sheet", "text"]
