"""The town (镇党委 / 党总支) in chat: /newtown, /townadmin, /towncode, /town (every branch at a glance,
paged, with a read-only drill-down), /jointown in a branch's group; member transfers /transfer,
/accepttransfer, /canceltransfer. Buttons "tw:" carry ids only; every press checks the presser is
an administrator of the town, in the database."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from html import escape
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.domain.notice import periodic
from bot.domain.records import Branch, MemberState
from bot.domain.town import BranchFigures, NoticeState, Town, page_of, wait_days
from bot.errors import DomainError, InvalidInput, NotAuthorized
from bot.i18n import Safe, Translator, format_points
from bot.services.branches import rulebook_of
from bot.services.towns import BranchView, Dashboard, Detached
from handlers.common import (
    Context,
    actor,
    answer,
    chunks,
    current_branch,
    domain_errors,
    edit_or_send,
    is_private,
    reply,
    send_group,
    send_private,
    services,
    translator,
)
from handlers.grading import label_before_count
from handlers.notices import local_time, member_tr, period_label, signoff_text
from handlers.town_review import appeal_to_town, cards_closed, filing_button, queue_button

MENU: dict[str, tuple[str, ...]] = {
    "private": ("town", "towncode", "townadmin"),
    "group": (),
    "admin": ("jointown", "transfer", "accepttransfer"),
}
PAGE_SIZE = 8  # branches per page: 8 blocks of at most ~450 characters stay far below 4096
TITLE_MAX = 40  # a branch's title on buttons and in blocks
CHAT_ID = re.compile(r"^-\d{5,20}$")
USER_ID = re.compile(r"^\d{3,15}$")


def _short(title: str) -> str:
    return title if len(title) <= TITLE_MAX else title[: TITLE_MAX - 1] + "…"


# --- rendering ------------------------------------------------------------------------------------------


def notice_text(tr: Translator, figures: BranchFigures) -> str:
    if figures.notice_period is None:
        return tr("town.line_notice_none")
    return tr("town.line_notice", period=period_label(tr, figures.notice_period),
              state=tr(f"town.notice_{figures.notice_state.value}"))


ASKED = (NoticeState.ON_TIME, NoticeState.LATE, NoticeState.SENDING)  # the notice is out: members were asked to sign


def open_text(tr: Translator, figures: BranchFigures) -> str:
    """Open business: the unconfirmed lines of the notice the line above names (that period only, and only once
    it is out), open objections and appeals."""
    if figures.notice_period is not None and figures.notice_state in ASKED:
        return tr("town.line_open", period=period_label(tr, figures.notice_period), unconfirmed=figures.unconfirmed,
                  objections=figures.open_objections, appeals=figures.appeals)
    return tr("town.line_open_none", objections=figures.open_objections, appeals=figures.appeals)


def grades_text(tr: Translator, branch: Branch | None, figures: BranchFigures) -> str:
    if figures.grade_year is None:
        return tr("town.line_no_grades")
    bands = {b.code: b for b in rulebook_of(branch).bands} if branch is not None else {}
    parts = []
    for code, number in figures.distribution:
        band = bands.get(code)
        label = label_before_count(tr, band.label.get(tr.lang)) if band else escape(code or "—")
        stars = "★" * band.stars if band and band.stars else ""
        parts.append(tr("town.band_count", band=Safe(label), stars=stars, count=number))
    return tr("town.line_grades", year=figures.grade_year,
              stage=tr("town.stage_final" if figures.grade_final else "town.stage_publicity"),
              parts=Safe(tr("common.list_separator").join(parts)))


def branch_block(tr: Translator, number: int, figures: BranchFigures, branch: Branch | None, now: datetime,
                 reopened: int | None = None) -> str:
    """``reopened``: a year the branch filed and re-opened since (services.towns: the filing is void)."""
    days = wait_days(figures.oldest_pending, now)
    lines = [
        tr("town.branch_title", number=number, title=_short(figures.title),
           unreachable=Safe("" if figures.reachable else tr("town.unreachable"))),
        tr("town.line_members", scored=figures.scored, pending=figures.pending_declarations,
           oldest=Safe(tr("town.oldest", days=days) if days is not None else "")),
        notice_text(tr, figures),
        open_text(tr, figures),
    ]
    if reopened is None or (figures.grade_year is not None and figures.grade_year >= reopened):
        lines.append(grades_text(tr, branch, figures))
    if reopened is not None:
        lines.append(tr("town.line_reopened", year=reopened))
    return "\n".join(lines)


def dashboard_page(tr: Translator, dashboard: Dashboard, branches: dict[int, Branch], page: int,
                   filing_year: int) -> tuple[str, InlineKeyboardMarkup | None]:
    """One page of the overview (≤ PAGE_SIZE branches) and its buttons: a drill-down per branch, prev/next,
    the queue and the filing of ``filing_year`` (services.town_review.default_filing_year)."""
    town = dashboard.town
    shown, page, pages = page_of(dashboard.branches, page, PAGE_SIZE)
    all_ = dashboard.branches
    head = [
        tr("town.header", town=town.name, count=len(all_), page=page + 1, pages=pages),
        tr("town.totals", scored=sum(f.scored for f in all_), pending=sum(f.pending_declarations for f in all_),
           unposted=sum(1 for f in all_ if f.notice_state is NoticeState.NOT_YET),
           unconfirmed=sum(f.unconfirmed for f in all_), objections=sum(f.open_objections for f in all_),
           appeals=sum(f.appeals for f in all_)),
    ]
    if not all_:
        return "\n".join(head + ["", tr("town.no_branches")]), None
    first_number = page * PAGE_SIZE + 1
    blocks = [branch_block(tr, first_number + i, f, branches.get(f.branch_id), dashboard.now, dashboard.reopened.get(f.branch_id))
              for i, f in enumerate(shown)]
    text = "\n".join(head) + "\n\n" + "\n\n".join(blocks)
    rows = [[InlineKeyboardButton(tr.plain("town.button_branch", number=first_number + i, title=_short(f.title)),
                                  callback_data=f"tw:b:{town.id}:{f.branch_id}:{page}")] for i, f in enumerate(shown)]
    nav = []
    if page > 0:
        nav.append(InlineKeyboardButton(tr("town.button_prev"), callback_data=f"tw:p:{town.id}:{page - 1}"))
    if page < pages - 1:
        nav.append(InlineKeyboardButton(tr("town.button_next"), callback_data=f"tw:p:{town.id}:{page + 1}"))
    if nav:
        rows.append(nav)
    # what waits for the town's decision, and the town's filing (handlers/town_review.py)
    rows.append([queue_button(tr), filing_button(tr, town.id, filing_year)])
    return text, InlineKeyboardMarkup(rows)


STATE_MARKS = {MemberState.PROBATIONARY: "town.state_probationary", MemberState.EXEMPT: "town.state_exempt",
               MemberState.MIGRANT: "town.state_migrant"}


def _figure(score: str) -> str:
    """A published figure as everywhere else ('60', '59.5'): the notice's stored text may read '60.00'."""
    try:
        return format_points(Decimal(score))
    except InvalidOperation:
        return score


def branch_text(tr: Translator, view: BranchView, now: datetime) -> str:
    figures = view.figures
    lines = [
        tr("town.drill_header", branch=view.branch.title, town=view.town.name),
        "",
        branch_block(tr, 1, figures, view.branch, now, view.reopened).split("\n", 1)[1],
        tr("town.pending_joins", count=view.pending_joins),
        "",
    ]
    if view.scores_period is None:
        lines.append(tr("town.members_header_none"))
    else:  # published figures, not live ones: say which notice, which year, and while objections are open, until when
        lines.append(tr("town.members_header", period=period_label(tr, view.scores_period), year=view.scores_year))
        if view.scores_closes is not None and view.scores_closes > now:
            lines.append(tr("town.members_window", period=period_label(tr, view.scores_period),
                            closes=local_time(view.scores_closes, view.branch)))
    for number, (member, score) in enumerate(view.members, start=1):
        mark = STATE_MARKS.get(member.state)
        lines.append(tr("town.member_line", number=number, name=member.name, state=Safe(tr(mark) if mark else ""),
                        score=_figure(score) if score is not None else tr("town.member_no_score")))
    lines += ["", tr("town.notices_header")]
    if not view.recent_notices:
        lines.append(tr("town.no_notices"))
    for notice in view.recent_notices:
        if notice["sent_at"] is None:
            lines.append(tr("town.notice_line_unsent", period=period_label(tr, notice["period_key"])))
            continue
        line = tr("town.notice_line", period=period_label(tr, notice["period_key"]),
                  when=local_time(datetime.fromisoformat(notice["sent_at"]), view.branch),
                  late=Safe(tr("town.notice_late_mark") if notice["late"] else ""))
        if periodic(notice["period_key"]):  # the branch committee's check and the secretary's sign-off
            signed_at = datetime.fromisoformat(notice["signed_at"]) if notice.get("signed_at") else None
            line += " " + tr("notice.signoff.line", status=Safe(signoff_text(tr, view.branch, signed_at, notice.get("signer"))))
        lines.append(line)
    return "\n".join(lines)


# --- which town ------------------------------------------------------------------------------------------


async def _town_of(update: Update, context: Context, args: list[str]) -> tuple[Town | None, list[str]]:
    """The town a private command is about: the admin's only town, or the one named last in ``args``.
    Replies (and returns None) when the user administers none, or several and named none."""
    user = update.effective_user
    assert user is not None
    tr = translator(update)
    towns = await services(context).towns.towns_of(user.id)
    if not towns:
        await reply(update, tr("error.town.admins_only"))
        return None, args
    if len(towns) == 1:
        return towns[0], args
    if args:
        for town in towns:
            for take in range(len(args), 0, -1):  # a town's name may have spaces
                if " ".join(args[-take:]) in (town.name, str(town.id)):
                    return town, args[:-take]
    await reply(update, tr("town.choose_named", names=tr("common.list_separator").join(t.name for t in towns),
                           example=towns[0].name))
    return None, args


async def _private_only(update: Update) -> bool:
    if not is_private(update):
        await reply(update, translator(update)("town.private_only"))
        return False
    return True


# --- commands: the operator and administrators -------------------------------------------------------------


@domain_errors
async def newtown_command(update: Update, context: Context) -> None:
    if not await _private_only(update):
        return
    tr = translator(update)
    assert update.effective_user is not None
    if not context.args:
        await reply(update, tr("town.newtown_usage"))
        return
    town = await services(context).towns.create_in_chat(actor(update.effective_user), " ".join(context.args))
    await reply(update, tr("town.created", name=town.name))


def _forwarded_user(update: Update) -> tuple[int, str] | None:
    """The sender of the message replied to, when it was forwarded from a user who allows it."""
    message = update.effective_message
    replied = message.reply_to_message if message else None
    if replied is None:
        return None
    origin = getattr(replied, "forward_origin", None)
    sender = getattr(origin, "sender_user", None)
    if sender is not None:
        return sender.id, sender.full_name
    if replied.from_user is not None and not replied.from_user.is_bot and update.effective_user and replied.from_user.id != update.effective_user.id:
        return replied.from_user.id, replied.from_user.full_name
    return None


@domain_errors
async def townadmin_command(update: Update, context: Context) -> None:
    if not await _private_only(update):
        return
    tr = translator(update)
    svc = services(context)
    user = update.effective_user
    assert user is not None
    town, args = await _town_of(update, context, list(context.args or []))
    if town is None:
        return
    if not args:
        await svc.towns.require_admin(town.id, user.id)
        lines = [tr("town.admins_header", town=town.name)]
        for admin in await svc.towns.admins(town.id):
            lines.append(tr("town.admin_line", name=admin.name or "—", user_id=admin.user_id,
                            unreachable=Safe("" if admin.reachable else tr("town.admin_unreachable"))))
        await reply(update, "\n".join(lines) + "\n\n" + tr("town.townadmin_usage"))
        return
    verb, rest = args[0].lower(), args[1:]
    if verb not in ("add", "remove"):
        await reply(update, tr("town.townadmin_usage"))
        return
    forwarded = _forwarded_user(update) if verb == "add" and not rest else None
    if forwarded is not None:
        target_id, name = forwarded
    elif rest and USER_ID.match(rest[0]):
        target_id, name = int(rest[0]), " ".join(rest[1:]) or None
    else:
        raise InvalidInput("town.bad_user_id")
    if verb == "add":
        added = await svc.towns.add_admin(town.id, actor(user), target_id, name)
        await reply(update, tr("town.admin_added" if added else "town.admin_already", user_id=target_id, town=town.name))
    else:
        removed = await svc.towns.remove_admin(town.id, actor(user), target_id)
        await reply(update, tr("town.admin_removed" if removed else "town.admin_not_found", user_id=target_id, town=town.name))


@domain_errors
async def towncode_command(update: Update, context: Context) -> None:
    if not await _private_only(update):
        return
    user = update.effective_user
    assert user is not None
    town, _ = await _town_of(update, context, list(context.args or []))
    if town is None:
        return
    code = await services(context).towns.make_code(town.id, actor(user))
    tr = translator(update)
    when = code.expires_at.astimezone(ZoneInfo(town.timezone)).strftime("%Y-%m-%d %H:%M")
    await reply(update, tr("town.code_made", code=code.code, expires=when))


# --- the dashboard ---------------------------------------------------------------------------------------


async def _show_page(update: Update, context: Context, town_id: int, page: int) -> None:
    svc = services(context)
    user = update.effective_user
    assert user is not None
    tr = translator(update)
    dashboard = await svc.towns.dashboard(town_id, user.id)
    branches = {b.id: b for b in await svc.towns.branches(town_id)}
    filing_year = await svc.town_review.default_filing_year(dashboard.town)  # not before the town's first year
    text, markup = dashboard_page(tr, dashboard, branches, page, filing_year)
    if update.callback_query is not None:
        await answer(update.callback_query)
        await edit_or_send(update.callback_query, text, reply_markup=markup)
    else:
        await reply(update, text, reply_markup=markup)


@domain_errors
async def town_command(update: Update, context: Context) -> None:
    if not await _private_only(update):
        return
    user = update.effective_user
    assert user is not None
    tr = translator(update)
    towns = await services(context).towns.towns_of(user.id)
    if not towns:
        raise NotAuthorized("town.admins_only")
    await services(context).towns.seen(user.id)  # they wrote to the bot: the digest may reach them again
    if len(towns) > 1 and not context.args:
        buttons = [[InlineKeyboardButton(_short(t.name), callback_data=f"tw:p:{t.id}:0")] for t in towns]
        await reply(update, tr("town.choose"), reply_markup=InlineKeyboardMarkup(buttons))
        return
    town, _ = await _town_of(update, context, list(context.args or []))
    if town is not None:
        await _show_page(update, context, town.id, 0)


@domain_errors
async def page_pressed(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    _, _, town_id, page = query.data.split(":")
    await _show_page(update, context, int(town_id), int(page))


@domain_errors
async def branch_pressed(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    _, _, town_id, branch_id, page = query.data.split(":")
    tr = translator(update)
    view = await services(context).towns.branch_view(int(town_id), query.from_user.id, int(branch_id))
    back = InlineKeyboardMarkup([[InlineKeyboardButton(tr("town.button_back"), callback_data=f"tw:p:{town_id}:{page}")]])
    pieces = chunks(branch_text(tr, view, services(context).clock.now()))
    await answer(query)
    await edit_or_send(query, pieces[0], reply_markup=back if len(pieces) == 1 else None)
    for index, piece in enumerate(pieces[1:], start=1):
        await query.get_bot().send_message(query.message.chat.id if query.message else query.from_user.id, piece,
                                           reply_markup=back if index == len(pieces) - 1 else None)


# --- a branch joins --------------------------------------------------------------------------------------


def _numbers(tr: Translator, appeals: list) -> str:
    return tr("common.list_separator").join(f"#{a.id}" for a in appeals)


async def join_with_code(update: Update, context: Context, branch: Branch, code: str) -> None:
    """The secretary gave a join code (/jointown CODE, or /setup CODE): the branch joins the town; the
    town's administrators are told. The appeals the branch brought (made while no town could decide them,
    services.towns.join_town) reach the administrators as cards with their buttons, and each appellant
    hears where their appeal went. Refusals propagate (the caller's domain_errors replies)."""
    svc = services(context)
    user = update.effective_user
    assert user is not None
    joined = await svc.towns.join_town(branch, actor(user), code)
    town = joined.town
    tr = translator(update, branch)
    lines = [tr("town.joined", town=town.name)]
    if joined.appeals:
        lines.append(tr("town.joined_appeals", count=len(joined.appeals), numbers=_numbers(tr, joined.appeals),
                        town=town.name))
    await reply(update, "\n".join(lines))
    atr = Translator(town.language)
    told = atr("town.joined_admin", branch=branch.title, town=town.name)
    if joined.appeals:
        told += "\n" + atr("town.joined_admin_appeals", count=len(joined.appeals), numbers=_numbers(atr, joined.appeals))
    for admin in await svc.towns.admins(town.id):
        sent = await send_private(context, admin.user_id, told)
        if sent is None:
            await svc.towns.admin_reachable(town.id, admin.user_id, False)
    for appeal in joined.appeals:
        await appeal_to_town(context, appeal.objection_id)  # the card with uphold / order a correction
        if (appellant := joined.appellants.get(appeal.id)) is not None:
            await send_private(context, appellant.user_id, member_tr(appellant, branch)(  # type: ignore[arg-type]
                "town.joined_appellant", branch=branch.title, town=town.name, number=appeal.id,
                objection=appeal.objection_id))


async def tell_detached(app: Application, detached: Detached) -> int:
    """After a branch left its town (the operator's command line, or the town): the branch's secretary
    and deputies hear what was closed with it and what to do; each appellant whose appeal was closed
    hears that they may appeal again (/appeal, as its objection's flag was cleared); the administrators'
    cards of the closed items lose their buttons. Returns how many of the branch's leaders were reached."""
    branch, town = detached.branch, detached.town
    reached = 0
    for person in detached.told:
        ptr = member_tr(person, branch)
        lines = [ptr("town.detached_branch", branch=branch.title, town=town.name)]
        for review in detached.reviews:
            lines.append(ptr("town.detached_review", year=review.year, town=town.name))
        if detached.appeals:
            lines.append(ptr("town.detached_appeals", town=town.name, numbers=_numbers(ptr, detached.appeals)))
            lines.append(ptr("town.detached_appeals_again"))
        if detached.orders:
            lines.append(ptr("town.detached_orders", town=town.name, numbers=_numbers(ptr, detached.orders)))
        if await send_private(app, person.user_id, "\n".join(lines)) is not None:  # type: ignore[arg-type]
            reached += 1
        # The town's ordered corrections stand: each in its own message with the button that writes it
        # (handlers.town_review.apply_button, which checks the presser and edits that message alone).
        for order in detached.orders:
            await send_private(app, person.user_id, ptr(  # type: ignore[arg-type]
                "town.detached_order", number=order.id, objection=order.objection_id, town=town.name,
                reason=order.decision_reason or ""), reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton(
                    ptr("town.detached_order_button", number=order.id), callback_data=f"tv:ap:{order.id}")]]))
    for appeal in detached.appeals:
        if (appellant := detached.appellants.get(appeal.id)) is not None:
            await send_private(app, appellant.user_id, member_tr(appellant, branch)(  # type: ignore[arg-type]
                "town.detached_appellant", branch=branch.title, town=town.name, number=appeal.id,
                objection=appeal.objection_id))
    await cards_closed(app, Translator(town.language), branch.title, town.name, detached.reviews, detached.appeals)
    return reached


@domain_errors
async def jointown_command(update: Update, context: Context) -> None:
    if is_private(update):
        raise DomainError("town.group_only")
    branch = await current_branch(update, context)
    if not context.args:
        await reply(update, translator(update, branch)("town.jointown_usage"))
        return
    await join_with_code(update, context, branch, "".join(context.args))


# --- member transfers ------------------------------------------------------------------------------------


def _rule_label(tr: Translator, branch: Branch) -> str:
    return tr(f"transfer.rule_{rulebook_of(branch).settings.transfer_result.value}")


@domain_errors
async def transfer_command(update: Update, context: Context) -> None:
    if is_private(update):
        raise DomainError("town.group_only")
    svc = services(context)
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    user = update.effective_user
    assert user is not None
    args = list(context.args or [])
    to_chat = None
    if args and CHAT_ID.match(args[-1]):
        to_chat = int(args.pop())
    message = update.effective_message
    replied = message.reply_to_message if message else None
    if args:
        target = await svc.roster.find(branch, " ".join(args))
    elif replied is not None and replied.from_user is not None and not replied.from_user.is_bot:
        target = await svc.transfers.member_of_user(branch, replied.from_user.id)
    else:
        await reply(update, tr("transfer.usage"))
        return
    transfer = await svc.transfers.start(branch, actor(user), target, to_chat)
    expires = local_time(transfer.expires_at, branch)
    if transfer.to_branch is None:
        await reply(update, tr("transfer.started", name=target.name, code=transfer.code, expires=expires))
        return
    await reply(update, tr("transfer.started_to", name=target.name, branch=transfer.to_branch.title,
                           code=transfer.code, expires=expires))
    for secretary in await svc.towns.secretaries(transfer.to_branch):
        str_ = Translator(secretary.language if secretary.language in ("zh", "en") else transfer.to_branch.language)
        await send_private(context, secretary.user_id,  # type: ignore[arg-type]
                           str_("transfer.incoming", name=target.name, from_branch=branch.title,
                                branch=transfer.to_branch.title, code=transfer.code))


@domain_errors
async def accepttransfer_command(update: Update, context: Context) -> None:
    if is_private(update):
        raise DomainError("town.group_only")
    svc = services(context)
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    user = update.effective_user
    assert user is not None
    if not context.args:
        await reply(update, tr("transfer.accept_usage"))
        return
    transfer = await svc.transfers.accept(branch, actor(user), "".join(context.args))
    await reply(update, tr("transfer.accepted", name=transfer.member.name, from_branch=transfer.from_branch.title,
                           rule=_rule_label(tr, branch)))
    sender_tr = Translator(transfer.from_branch.language)
    await send_group(context, transfer.from_branch, sender_tr("transfer.accepted_sender", name=transfer.member.name,
                                                               branch=branch.title, code=transfer.code))
    member = transfer.new_member
    if member is not None and member.user_id is not None:
        mtr = Translator(member.language if member.language in ("zh", "en") else branch.language)
        await send_private(context, member.user_id, mtr("transfer.accepted_member", from_branch=transfer.from_branch.title,
                                                         branch=branch.title))


@domain_errors
async def canceltransfer_command(update: Update, context: Context) -> None:
    if is_private(update):
        raise DomainError("town.group_only")
    svc = services(context)
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    user = update.effective_user
    assert user is not None
    if not context.args:
        await reply(update, tr("transfer.cancel_usage"))
        return
    transfer = await svc.transfers.cancel(branch, actor(user), "".join(context.args))
    await reply(update, tr("transfer.cancelled", name=transfer.member.name, code=transfer.code))


def register(app: Application) -> None:
    app.add_handler(CommandHandler("newtown", newtown_command))
    app.add_handler(CommandHandler("townadmin", townadmin_command))
    app.add_handler(CommandHandler("towncode", towncode_command))
    app.add_handler(CommandHandler("town", town_command))
    app.add_handler(CommandHandler("jointown", jointown_command))
    app.add_handler(CommandHandler("transfer", transfer_command))
    app.add_handler(CommandHandler("accepttransfer", accepttransfer_command))
    app.add_handler(CommandHandler("canceltransfer", canceltransfer_command))
    app.add_handler(CallbackQueryHandler(page_pressed, pattern=r"^tw:p:\d{1,12}:\d{1,6}$"))
    app.add_handler(CallbackQueryHandler(branch_pressed, pattern=r"^tw:b:\d{1,12}:\d{1,12}:\d{1,6}$"))
