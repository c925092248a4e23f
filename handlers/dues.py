"""/dues and /paid: the recorder's monthly dues roster (buttons per member, "all the rest paid"),
a member's own status with "I have paid", and the recorder's Confirm / Reject of that report.

Callback data (prefix "du:", none trusted — the service re-checks the presser's role):
  du:r:B:YYYYMM:page           the roster page of branch B
  du:m:B:YYYYMM:member:page    one member's status buttons
  du:s:B:YYYYMM:member:c:page  set the status (c: o on time, l late, s short, u unpaid, x clear)
  du:a:B:YYYYMM / du:A:B:YYYYMM  "all the rest paid on time": ask, then do
  du:p:B:YYYYMM                a member: "I have paid"
  du:ok:report / du:no:report the recorder confirms or rejects a member's report
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import wraps

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.domain.dues import (
    CLEAR_WORDS,
    STATUS_CODES,
    DuesRecord,
    DuesReport,
    DuesStatus,
    compact,
    expand,
    looks_like_amount,
    parse_amount,
    parse_month,
    parse_status,
    shift_month,
    status_code,
)
from bot.domain.records import Branch, Member
from bot.errors import InvalidInput
from bot.i18n import Safe, Translator, language_of
from bot.services.dues import Bulk, DuesRoster, MyDues, ReportDecision
from handlers.branch_context import several_branches_note
from handlers.common import (
    point_to_private,
    Context,
    actor,
    answer,
    current_branch,
    domain_errors,
    edit_or_send,
    is_private,
    reply,
    send_private,
    services,
    translator,
)

log = logging.getLogger(__name__)

# Commands this module adds to the menus, by scope; each needs a menu.<command> catalog entry.
MENU: dict[str, tuple[str, ...]] = {"private": ("dues", "paid"), "group": (), "admin": ("dues",)}

PAGE_SIZE = 16
ICONS: dict[DuesStatus | None, str] = {
    DuesStatus.ON_TIME: "✅", DuesStatus.LATE: "⏰", DuesStatus.SHORT: "➖", DuesStatus.UNPAID: "✖", None: "·",
}
ALL_PAID_WORDS = ("allpaid", "all", "全部已缴", "全部")
EXCEPT_WORDS = ("except", "除", "除了")
CORRECT_WORDS = ("correct", "更正")
ME_WORDS = ("me", "我", "我的")


# --- rendering ------------------------------------------------------------------------------------


def status_text(tr: Translator, status: DuesStatus | None) -> str:
    return tr(f"dues.status.{status.value if status else 'none'}")


def _amount(tr: Translator, amount: Decimal | None) -> str:
    return tr("dues.amount", amount=amount) if amount is not None else ""


def _report_note(tr: Translator, report: DuesReport | None) -> str:
    if report is None:
        return ""
    return tr("dues.report_waiting", amount=Safe(_amount(tr, report.amount)))


def _bits(tr: Translator, record: DuesRecord | None, report: DuesReport | None) -> dict[str, object]:
    return {"status": status_text(tr, record.status if record else None),
            "amount": Safe(_amount(tr, record.amount if record else None)), "report": Safe(_report_note(tr, report))}


def _line(tr: Translator, name: str, record: DuesRecord | None, report: DuesReport | None) -> str:
    return tr("dues.line", name=name, **_bits(tr, record, report))


def roster_view(tr: Translator, roster: DuesRoster, page: int) -> tuple[str, InlineKeyboardMarkup]:
    pages = max(1, (len(roster.lines) + PAGE_SIZE - 1) // PAGE_SIZE)
    page = min(max(page, 0), pages - 1)
    shown = roster.lines[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]
    key, b = compact(roster.month), roster.branch.id
    text = [tr("dues.header", branch=roster.branch.title, month=roster.month,
               closed=Safe(tr("dues.closed_mark") if roster.closed else "")),
            tr("dues.counts", on_time=roster.count(DuesStatus.ON_TIME), late=roster.count(DuesStatus.LATE),
               short=roster.count(DuesStatus.SHORT), unpaid=roster.count(DuesStatus.UNPAID), none=roster.count(None))]
    if not roster.lines:
        text.append(tr("dues.empty"))
    text += [_line(tr, line.member.name, line.record, line.report) for line in shown]
    if pages > 1:
        text.append(tr("dues.page", page=page + 1, pages=pages))
    text.append(tr("dues.hint_closed", month=roster.month) if roster.closed else tr("dues.hint_open"))
    rows: list[list[InlineKeyboardButton]] = []
    if not roster.closed:
        buttons = [
            InlineKeyboardButton(f"{ICONS[line.record.status if line.record else None]} {line.member.name[:20]}",
                                 callback_data=f"du:m:{b}:{key}:{line.member.id}:{page}")
            for line in shown
        ]
        rows += [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    paging = []
    if page > 0:
        paging.append(InlineKeyboardButton(tr("dues.previous_page"), callback_data=f"du:r:{b}:{key}:{page - 1}"))
    if page < pages - 1:
        paging.append(InlineKeyboardButton(tr("dues.next_page"), callback_data=f"du:r:{b}:{key}:{page + 1}"))
    if paging:
        rows.append(paging)
    if not roster.closed and roster.count(None):
        rows.append([InlineKeyboardButton(tr("dues.all_paid_button"), callback_data=f"du:a:{b}:{key}")])
    months = []
    previous, following = shift_month(roster.month, -1), shift_month(roster.month, 1)
    if previous >= roster.first_month:
        months.append(InlineKeyboardButton(tr("dues.month_before", month=previous), callback_data=f"du:r:{b}:{compact(previous)}:0"))
    if following <= roster.current_month:
        months.append(InlineKeyboardButton(tr("dues.month_after", month=following), callback_data=f"du:r:{b}:{compact(following)}:0"))
    if months:
        rows.append(months)
    return "\n".join(text), InlineKeyboardMarkup(rows)


def member_panel(tr: Translator, roster: DuesRoster, member_id: int, page: int) -> tuple[str, InlineKeyboardMarkup] | None:
    line = next((ln for ln in roster.lines if ln.member.id == member_id), None)
    if line is None:
        return None
    key, b = compact(roster.month), roster.branch.id
    text = tr("dues.panel", month=roster.month, line=Safe(_line(tr, line.member.name, line.record, line.report)))
    choices = [InlineKeyboardButton(f"{ICONS[status]} {status_text(tr, status)}",
                                    callback_data=f"du:s:{b}:{key}:{member_id}:{status_code(status)}:{page}")
               for status in DuesStatus]
    rows = [choices[:2], choices[2:]]
    rows.append([InlineKeyboardButton(tr("dues.clear"), callback_data=f"du:s:{b}:{key}:{member_id}:x:{page}"),
                 InlineKeyboardButton(tr("common.back"), callback_data=f"du:r:{b}:{key}:{page}")])
    return text, InlineKeyboardMarkup(rows)


def mine_view(tr: Translator, branch: Branch, mine: MyDues) -> tuple[str, InlineKeyboardMarkup | None]:
    lines = [tr("dues.mine_header", name=mine.member.name, branch=branch.title)]
    for month in mine.months:
        lines.append(tr("dues.mine_line", month=month.month, **_bits(tr, month.record, month.report),
                        closed=Safe(tr("dues.closed_mark") if month.closed else "")))
    if mine.report_month is None:  # exempt this month (owed last month, shown above): nothing to report now
        lines.append(tr("error.dues.exempt_month_self", month=mine.exempt_month))
        return "\n".join(lines), None
    lines.append(tr("dues.mine_hint"))
    markup = InlineKeyboardMarkup([[InlineKeyboardButton(tr("dues.i_paid", month=mine.report_month),
                                                         callback_data=f"du:p:{branch.id}:{compact(mine.report_month)}")]])
    return "\n".join(lines), markup


def report_card(tr: Translator, branch: Branch, report: DuesReport, member: Member) -> str:
    return tr("dues.report_card", number=report.id, branch=branch.title, name=member.name, month=report.month,
              amount=report.amount if report.amount is not None else tr("dues.amount_unknown"))


def report_keyboard(tr: Translator, report: DuesReport) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(tr("dues.confirm"), callback_data=f"du:ok:{report.id}"),
                                  InlineKeyboardButton(tr("dues.reject"), callback_data=f"du:no:{report.id}")]])


def decision_text(tr: Translator, decision: ReportDecision) -> str:
    if decision.status is not None:
        return tr("dues.report_confirmed", status=status_text(tr, decision.status), by=decision.decider.name)
    return tr("dues.report_rejected", by=decision.decider.name)


async def _edit(query, text: str, markup: InlineKeyboardMarkup | None) -> None:
    await edit_or_send(query, text, reply_markup=markup)  # a double tap changes nothing; a picture gets a new message


def _go_private(update: Update, context: Context, tr: Translator):
    return point_to_private(update, context, "dues.go_private", tr=tr)


# --- /dues ----------------------------------------------------------------------------------------


@domain_errors
async def dues_command(update: Update, context: Context) -> None:
    svc = services(context)
    user = update.effective_user
    assert user is not None
    if not is_private(update):
        branch = await svc.branches.find_by_chat(update.effective_chat.id)  # type: ignore[union-attr]
        await _go_private(update, context, translator(update, branch))
        return
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    args = context.args or []
    who = actor(user)
    if not await svc.dues.is_keeper(branch, who) or (args and args[0].lower() in ME_WORDS):
        text, markup = mine_view(tr, branch, await svc.dues.mine(branch, who))
        await reply(update, text, reply_markup=markup)
        return
    if not args or (len(args) == 1 and parse_month(args[0])):
        roster = await svc.dues.roster(branch, who, parse_month(args[0]) if args else None)
        text, markup = roster_view(tr, roster, 0)
        await reply(update, text, reply_markup=markup)
        return
    word = args[0].lower()
    if word in ALL_PAID_WORDS:
        await _all_paid_command(update, context, branch, tr, args[1:])
    elif word in CORRECT_WORDS:
        await _correct_command(update, context, branch, tr, args[1:])
    else:
        await _mark_command(update, context, branch, tr, args)


def _split_amount_month(tokens: list[str]) -> tuple[Decimal | None, str | None, list[str]]:
    """Take an amount and a month off the tokens (any order); what remains is returned."""
    amount, month, rest = None, None, []
    for token in tokens:
        if month is None and parse_month(token):
            month = parse_month(token)
        elif amount is None and looks_like_amount(token):
            amount = parse_amount(token)
            if amount is None:
                raise InvalidInput("dues.bad_amount", value=token)
        else:
            rest.append(token)
    return amount, month, rest


async def _mark_command(update: Update, context: Context, branch: Branch, tr: Translator, args: list[str]) -> None:
    """/dues MEMBER STATUS [AMOUNT] [YYYY-MM], or with the month first as in /dues YYYY-MM (the month's
    list) and /dues correct YYYY-MM MEMBER …: /dues YYYY-MM MEMBER STATUS [AMOUNT]."""
    svc = services(context)
    month_first = parse_month(args[0]) if args else None
    if month_first:
        args = args[1:]
    if len(args) < 2:
        await reply(update, tr("dues.usage"))
        return
    word = args[1].lower()
    status = parse_status(word)
    if status is None and word not in CLEAR_WORDS:
        raise InvalidInput("dues.bad_status", value=args[1])
    amount, month, rest = _split_amount_month(args[2:])
    if rest:  # what is neither a month nor a valid amount was meant as the amount
        raise InvalidInput("dues.bad_amount", value=rest[0])
    if month_first:
        if month is not None and month != month_first:  # two different months: which one was meant?
            await reply(update, tr("dues.usage"))
            return
        month = month_first
    target = await svc.roster.find(branch, args[0])
    month = month or await svc.dues.default_month(branch)
    marked = await svc.dues.mark(branch, actor(update.effective_user), target.id, month, status, amount)  # type: ignore[arg-type]
    await reply(update, tr("dues.marked", month=month, line=Safe(_line(tr, marked.member.name, marked.record, None))))


async def _all_paid_command(update: Update, context: Context, branch: Branch, tr: Translator, args: list[str]) -> None:
    """/dues allpaid [YYYY-MM] [except MEMBER …]"""
    svc = services(context)
    month = None
    if args and parse_month(args[0]):
        month, args = parse_month(args[0]), args[1:]
    excepted: set[int] = set()
    if args:
        if args[0].lower() not in EXCEPT_WORDS or len(args) < 2:
            await reply(update, tr("dues.usage"))
            return
        for reference in args[1:]:
            excepted.add((await svc.roster.find(branch, reference)).id)
    month = month or await svc.dues.default_month(branch)
    bulk = await svc.dues.mark_all_paid(branch, actor(update.effective_user), month, frozenset(excepted))  # type: ignore[arg-type]
    await reply(update, _bulk_text(tr, bulk))


def _bulk_text(tr: Translator, bulk: Bulk) -> str:
    text = tr("dues.all_paid_done", month=bulk.month, count=len(bulk.marked))
    if bulk.skipped:
        text += "\n" + tr("dues.all_paid_skipped", names=tr("common.list_separator").join(m.name for m in bulk.skipped))
    return text


async def _correct_command(update: Update, context: Context, branch: Branch, tr: Translator, args: list[str]) -> None:
    """/dues correct YYYY-MM MEMBER STATUS [AMOUNT] REASON…"""
    svc = services(context)
    if len(args) < 4 or not parse_month(args[0]):
        await reply(update, tr("dues.correct_usage"))
        return
    month = parse_month(args[0])
    status = parse_status(args[2])
    if status is None:
        raise InvalidInput("dues.bad_status", value=args[2])
    rest = args[3:]
    amount = None
    if rest and looks_like_amount(rest[0]):
        amount = parse_amount(rest[0])
        if amount is None:
            raise InvalidInput("dues.bad_amount", value=rest[0])
        rest = rest[1:]
    target = await svc.roster.find(branch, args[1])
    correction = await svc.dues.correct(branch, actor(update.effective_user), target.id, month, status, amount,  # type: ignore[arg-type]
                                        " ".join(rest))
    before = correction.before.status if correction.before else None
    await reply(update, tr("dues.corrected", name=correction.member.name, month=month,
                           before=status_text(tr, before), after=status_text(tr, correction.after.status)))


# --- roster buttons -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pressed:
    """A roster button as pressed: the parts of its data, its branch, the translator and its month."""

    parts: list[str]
    branch: Branch
    tr: Translator
    month: str


def _month_button(func: Callable[[Update, Context, Pressed], Awaitable[None]]) -> Callable[[Update, Context], Awaitable[None]]:
    """A roster button's handler, given its branch and month; a button whose month does not parse (old or
    crafted data) is answered as unknown and does nothing. Refusals become replies (domain_errors)."""

    @domain_errors
    @wraps(func)
    async def handler(update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        parts = query.data.split(":")
        branch = await services(context).branches.by_id(int(parts[2]))
        tr = translator(update, branch)
        month = expand(parts[3])
        if not month:
            await answer(query, tr("error.unknown_button"))
            return
        await func(update, context, Pressed(parts, branch, tr, month))

    return handler


@_month_button
async def roster_button(update: Update, context: Context, pressed: Pressed) -> None:
    query = update.callback_query
    assert query is not None
    parts, branch, tr, month = pressed.parts, pressed.branch, pressed.tr, pressed.month
    roster = await services(context).dues.roster(branch, actor(query.from_user), month)
    await answer(query)
    await _edit(query, *roster_view(tr, roster, int(parts[4])))


@_month_button
async def member_button(update: Update, context: Context, pressed: Pressed) -> None:
    query = update.callback_query
    assert query is not None
    parts, branch, tr, month = pressed.parts, pressed.branch, pressed.tr, pressed.month
    member_id, page = int(parts[4]), int(parts[5])
    roster = await services(context).dues.roster(branch, actor(query.from_user), month)
    panel = member_panel(tr, roster, member_id, page) if not roster.closed else None
    if panel is None:
        await answer(query, tr("dues.not_on_roster"), alert=True)
        await _edit(query, *roster_view(tr, roster, page))
        return
    await answer(query)
    await _edit(query, *panel)


@_month_button
async def status_button(update: Update, context: Context, pressed: Pressed) -> None:
    query = update.callback_query
    assert query is not None
    parts, branch, tr, month = pressed.parts, pressed.branch, pressed.tr, pressed.month
    if parts[5] not in STATUS_CODES:
        await answer(query, tr("error.unknown_button"))
        return
    svc = services(context)
    who = actor(query.from_user)
    marked = await svc.dues.mark(branch, who, int(parts[4]), month, STATUS_CODES[parts[5]])
    await answer(query, tr("dues.marked_short", name=marked.member.name,
                           status=status_text(tr, marked.record.status if marked.record else None)))
    await _edit(query, *roster_view(tr, await svc.dues.roster(branch, who, month), int(parts[6])))


@_month_button
async def all_paid_ask(update: Update, context: Context, pressed: Pressed) -> None:
    query = update.callback_query
    assert query is not None
    branch, tr, month = pressed.branch, pressed.tr, pressed.month
    roster = await services(context).dues.roster(branch, actor(query.from_user), month)
    if roster.closed:
        raise InvalidInput("dues.month_closed", month=month)
    await answer(query)
    key = compact(month)
    markup = InlineKeyboardMarkup([[
        InlineKeyboardButton(tr("dues.all_paid_confirm_button"), callback_data=f"du:A:{branch.id}:{key}"),
        InlineKeyboardButton(tr("common.back"), callback_data=f"du:r:{branch.id}:{key}:0"),
    ]])
    await _edit(query, tr("dues.all_paid_ask", month=month, count=roster.count(None)), markup)


@_month_button
async def all_paid_do(update: Update, context: Context, pressed: Pressed) -> None:
    query = update.callback_query
    assert query is not None
    branch, tr, month = pressed.branch, pressed.tr, pressed.month
    svc = services(context)
    who = actor(query.from_user)
    bulk = await svc.dues.mark_all_paid(branch, who, month)
    await answer(query, _bulk_text(tr, bulk), alert=bool(bulk.skipped))
    await _edit(query, *roster_view(tr, await svc.dues.roster(branch, who, month), 0))


# --- a member's report and the recorder's decision --------------------------------------------------


async def _send_report(context: Context, branch: Branch, report: DuesReport, member: Member) -> int:
    """The report card to every decider who can be reached; returns how many were."""
    svc = services(context)
    reached = 0
    for decider in await svc.dues.report_deciders(report):  # each has a Telegram account
        tr = Translator(language_of(decider.language, branch.language))
        sent = await send_private(context, decider.user_id, report_card(tr, branch, report, member),  # type: ignore[arg-type]
                                  reply_markup=report_keyboard(tr, report))
        if sent is None:
            continue
        await svc.dues.remember_report_message(report.id, sent.chat_id, sent.message_id)
        reached += 1
    return reached


async def _reported(update: Update, context: Context, branch: Branch, month: str | None, amount: Decimal | None,
                    client_key: str) -> str:
    svc = services(context)
    user = update.effective_user
    assert user is not None
    tr = translator(update, branch)
    report, created = await svc.dues.report_paid(branch, actor(user), month=month, amount=amount, client_key=client_key)
    text = tr("dues.reported", month=report.month, amount=Safe(_amount(tr, report.amount)))
    if created:
        member = await svc.roster.member_of_id(report.member_id)
        if not await _send_report(context, branch, report, member):
            text += "\n" + tr("dues.no_keeper_reachable")
    return text


@domain_errors
async def paid_command(update: Update, context: Context) -> None:
    """/paid [AMOUNT] [YYYY-MM]"""
    svc = services(context)
    if not is_private(update):
        branch = await svc.branches.find_by_chat(update.effective_chat.id)  # type: ignore[union-attr]
        await _go_private(update, context, translator(update, branch))
        return
    branch = await current_branch(update, context)
    amount, month, rest = _split_amount_month(context.args or [])
    if rest:
        raise InvalidInput("dues.bad_amount", value=rest[0])
    message = update.effective_message
    assert message is not None
    text = await _reported(update, context, branch, month, amount, f"cmd:{message.chat_id}:{message.message_id}")
    await reply(update, text + await several_branches_note(update, context, branch))  # which branch, for a member of several


@_month_button
async def paid_button(update: Update, context: Context, pressed: Pressed) -> None:
    query = update.callback_query
    assert query is not None and query.message is not None
    branch, tr, month = pressed.branch, pressed.tr, pressed.month
    text = await _reported(update, context, branch, month, None, f"btn:{query.message.chat.id}:{query.message.message_id}")
    await answer(query, tr("dues.reported_short"))
    await _edit(query, text, None)


@domain_errors
async def decide_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    _, verb, number = query.data.split(":")
    svc = services(context)
    decision = await svc.dues.decide_report(int(number), actor(query.from_user), confirm=verb == "ok")
    tr = translator(update, decision.branch)
    await answer(query, decision_text(tr, decision))
    text = report_card(tr, decision.branch, decision.report, decision.member) + "\n\n" + decision_text(tr, decision)
    for chat_id, message_id in await svc.dues.report_messages(decision.report.id):
        try:
            await context.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)
        except (BadRequest, Forbidden) as exc:  # deleted or unchanged: the decision stands
            log.debug("could not edit a dues report card: %s", exc)
    member = decision.member
    if member.user_id is not None:
        member_tr = Translator(language_of(member.language, decision.branch.language))
        if decision.status is not None:
            told = member_tr("dues.told_confirmed", month=decision.report.month, status=status_text(member_tr, decision.status),
                             by=decision.decider.name)
        else:
            told = member_tr("dues.told_rejected", month=decision.report.month, by=decision.decider.name)
        await send_private(context, member.user_id, told)


def register(app: Application) -> None:
    """Add this module's handlers (called in bot.app.register_handlers)."""
    app.add_handler(CommandHandler("dues", dues_command))
    app.add_handler(CommandHandler("paid", paid_command))
    b, m, n = r"\d{1,12}", r"\d{6}", r"\d{1,4}"  # branch, month (YYYYMM), page
    app.add_handler(CallbackQueryHandler(roster_button, pattern=rf"^du:r:{b}:{m}:{n}$"))
    app.add_handler(CallbackQueryHandler(member_button, pattern=rf"^du:m:{b}:{m}:{b}:{n}$"))
    app.add_handler(CallbackQueryHandler(status_button, pattern=rf"^du:s:{b}:{m}:{b}:[olsux]:{n}$"))
    app.add_handler(CallbackQueryHandler(all_paid_ask, pattern=rf"^du:a:{b}:{m}$"))
    app.add_handler(CallbackQueryHandler(all_paid_do, pattern=rf"^du:A:{b}:{m}$"))
    app.add_handler(CallbackQueryHandler(paid_button, pattern=rf"^du:p:{b}:{m}$"))
    app.add_handler(CallbackQueryHandler(decide_button, pattern=r"^du:(ok|no):\d{1,12}$"))
