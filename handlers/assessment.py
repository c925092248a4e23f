"""Telegram glue for the monthly assessment (/assess) and the volunteer posts (/posts).

/assess [month] — private, recorders, secretary, deputy: the board (who is still unassessed, "everyone
good"), a member's screen (each assessed item, "same as last month", next member), an item's levels and
values. Every press goes to AssessmentService, which re-checks the presser's role; callback data only
says what was pressed (prefix "as:").

/posts — the branch's posts and who holds them; members request a change (toggle buttons or
``/posts claim 3 5``), the secretary or deputy approves with buttons (prefix "po:"); ``/posts add NAME``,
``/posts remove N`` and ``/posts set MEMBER 3 5`` for the secretary or deputy.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.domain.assessment import level_of, level_range, month_code, parse_post_numbers, value_range, whole_values
from bot.domain.records import Branch
from bot.domain.rulebook import Item
from bot.errors import InvalidInput
from bot.i18n import Safe, Translator, format_points, language_of
from bot.services.assessment import Board, Sheet
from bot.services.posts import PostBoard, RequestView
from handlers.common import Context, actor, answer, current_branch, domain_errors, is_private, reply, send_private, services, translator

log = logging.getLogger(__name__)

# Commands this module adds to the menus, by scope; each needs a menu.<command> catalog entry.
MENU: dict[str, tuple[str, ...]] = {"private": ("assess", "posts"), "group": ("posts",), "admin": ("posts",)}

PAGE = 10  # members per page on the board
_PLAIN_NUMBER = re.compile(r"-?\d{1,4}(?:\.\d{1,4})?")
NAMES_SHOWN = 40  # unassessed names listed on the board
ROW = 6  # value buttons per row


# --- small renderers -------------------------------------------------------------------------------


def _num(value: Decimal) -> str:
    return format_points(value)


def _span(low: Decimal, high: Decimal) -> str:
    return _num(low) if low == high else f"{_num(low)}–{_num(high)}"


def _short(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ym(code: str) -> tuple[int, int]:
    return int(code[:4]), int(code[4:])


def _value_text(tr: Translator, item: Item, sheet: Sheet) -> str:
    value = sheet.value(item)
    if value is None:
        return tr("assessment.not_yet")
    level = level_of(item, value, sheet.posts)
    shown = tr("assessment.value_level", value=value, level=level.name.get(tr.lang)) if level is not None else _num(value)
    if sheet.defaulted(item):
        return tr("assessment.defaulted_value", value=Safe(shown))
    return shown


def _month_label(tr: Translator, year: int, month: int) -> str:
    return tr("assessment.month", year=year, month=month)


def _list(tr: Translator, parts) -> str:
    """Names or items joined with the reader's list separator (、 in Chinese, ", " in English)."""
    return tr("common.list_separator").join(parts)


# --- /assess: the board ------------------------------------------------------------------------------


def _board_text(tr: Translator, board: Board) -> str:
    branch = board.branch
    lines = [tr("assessment.board_header", branch=branch.title, month=_month_label(tr, board.year, board.month))]
    items = _list(tr, (f"{i.name.get(tr.lang)} {_span(*value_range(i, 1))}{tr('assessment.per_post') if i.per_post else ''}"
                           for i in board.items))
    lines.append(tr("assessment.items", items=items))
    notice = board.notice_at.strftime("%Y-%m-%d %H:%M")
    lines.append(tr("assessment.deadline", notice=notice,
                    default=tr(f"assessment.default_{board.rulebook.settings.assessment_default.value}")))
    done = len(board.sheets) - len(board.remaining)
    lines.append(tr("assessment.progress", done=done, total=len(board.sheets)))
    if board.remaining:
        names = [s.member.name for s in board.remaining]
        shown = _list(tr, names[:NAMES_SHOWN]) + (tr("assessment.and_more", count=len(names) - NAMES_SHOWN) if len(names) > NAMES_SHOWN else "")
        lines.append(tr("assessment.remaining", names=shown))
    else:
        lines.append(tr("assessment.all_done"))
    if not board.sheets:
        lines.append(tr("assessment.nobody"))
    return "\n".join(lines)


def _board_keyboard(tr: Translator, board: Board, page: int) -> InlineKeyboardMarkup:
    b, ym = board.branch.id, month_code(board.year, board.month)
    pages = max(1, (len(board.sheets) + PAGE - 1) // PAGE)
    page = min(max(page, 0), pages - 1)
    rows: list[list[InlineKeyboardButton]] = []
    buttons = []
    for sheet in board.sheets[page * PAGE:(page + 1) * PAGE]:
        mark = "🔒" if not sheet.may_assess else ("✅" if not sheet.missing(board.items) else "⬜")
        buttons.append(InlineKeyboardButton(f"{mark} {_short(sheet.member.name, 16)}", callback_data=f"as:m:{b}:{ym}:{sheet.member.id}"))
    rows += [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    if pages > 1:
        nav = []
        if page > 0:
            nav.append(InlineKeyboardButton("◀", callback_data=f"as:o:{b}:{ym}:{page - 1}"))
        nav.append(InlineKeyboardButton(f"{page + 1}/{pages}", callback_data=f"as:o:{b}:{ym}:{page}"))
        if page < pages - 1:
            nav.append(InlineKeyboardButton("▶", callback_data=f"as:o:{b}:{ym}:{page + 1}"))
        rows.append(nav)
    if any(s.may_assess for s in board.remaining):
        rows.append([InlineKeyboardButton(tr("assessment.everyone_good"), callback_data=f"as:g:{b}:{ym}")])
    return InlineKeyboardMarkup(rows)


# --- /assess: a member, an item ----------------------------------------------------------------------


def _sheet_text(tr: Translator, board: Board, sheet: Sheet) -> str:
    lines = [tr("assessment.sheet_header", name=sheet.member.name, month=_month_label(tr, board.year, board.month))]
    if board.rulebook.posts is not None:
        if sheet.claimed:
            lines.append(tr("assessment.posts", posts=_list(tr, (p.name(tr.lang) for p in sheet.claimed)), count=sheet.posts))
        else:
            lines.append(tr("assessment.posts_none", count=sheet.posts))
    for item in board.items:
        lines.append(tr("assessment.item_line", item=item.name.get(tr.lang), value=_value_text(tr, item, sheet)))
    if sheet.last_month:
        last = _list(tr, (f"{i.name.get(tr.lang)} {_num(sheet.last_month[i.code])}" for i in board.items if i.code in sheet.last_month))
        lines.append(tr("assessment.last_month", values=last))
    if sheet.refusal is not None:
        lines.append(tr(f"error.{sheet.refusal}"))
    return "\n".join(lines)


def _sheet_keyboard(tr: Translator, board: Board, sheet: Sheet) -> InlineKeyboardMarkup:
    b, ym, m = board.branch.id, month_code(board.year, board.month), sheet.member.id
    rows: list[list[InlineKeyboardButton]] = []
    if sheet.may_assess:
        for index, item in enumerate(board.items):
            value = sheet.value(item)
            label = f"{_short(item.name.get(tr.lang), 18)}：{_num(value) if value is not None else '—'}"
            rows.append([InlineKeyboardButton(label, callback_data=f"as:i:{b}:{ym}:{m}:{index}")])
        if sheet.last_month and sheet.missing(board.items):
            rows.append([InlineKeyboardButton(tr("assessment.same_as_last"), callback_data=f"as:s:{b}:{ym}:{m}")])
    rows.append([
        InlineKeyboardButton(tr("assessment.back_to_board"), callback_data=f"as:o:{b}:{ym}:0"),
        InlineKeyboardButton(tr("assessment.next_member"), callback_data=f"as:n:{b}:{ym}:{m}"),
    ])
    return InlineKeyboardMarkup(rows)


def _value_buttons(b: int, ym: str, m: int, index: int, revision: int, values: list[Decimal]) -> list[list[InlineKeyboardButton]]:
    buttons = [InlineKeyboardButton(_num(v), callback_data=f"as:v:{b}:{ym}:{m}:{index}:{_num(v)}:{revision}") for v in values]
    return [buttons[i:i + ROW] for i in range(0, len(buttons), ROW)]


def _item_screen(tr: Translator, board: Board, sheet: Sheet, index: int, level_index: int | None = None) -> tuple[str, InlineKeyboardMarkup]:
    item = board.items[index]
    b, ym, m, rev = board.branch.id, month_code(board.year, board.month), sheet.member.id, sheet.revision(item)
    low, high = value_range(item, sheet.posts)
    rows: list[list[InlineKeyboardButton]] = []
    text = _sheet_text(tr, board, sheet) + "\n\n"
    if item.levels and level_index is None:
        text += tr("assessment.pick_level", item=item.name.get(tr.lang))
        for li, level in enumerate(item.levels):
            lo, hi = level_range(item, level, sheet.posts)
            label = f"{level.name.get(tr.lang)} {_span(lo, hi)}"
            data = f"as:v:{b}:{ym}:{m}:{index}:{_num(lo)}:{rev}" if lo == hi else f"as:l:{b}:{ym}:{m}:{index}:{li}"
            rows.append([InlineKeyboardButton(label, callback_data=data)])
        back = f"as:m:{b}:{ym}:{m}"
    elif item.levels and level_index is not None:
        level = item.levels[level_index]
        lo, hi = level_range(item, level, sheet.posts)
        text += tr("assessment.pick_value", item=f"{item.name.get(tr.lang)} · {level.name.get(tr.lang)}", low=lo, high=hi)
        rows += _value_buttons(b, ym, m, index, rev, whole_values(lo, hi))
        back = f"as:i:{b}:{ym}:{m}:{index}"
    else:
        text += tr("assessment.pick_value", item=item.name.get(tr.lang), low=low, high=high)
        rows += _value_buttons(b, ym, m, index, rev, whole_values(low, high))
        back = f"as:m:{b}:{ym}:{m}"
    rows.append([InlineKeyboardButton(tr("assessment.back"), callback_data=back)])
    return text, InlineKeyboardMarkup(rows)


async def _edit(query, text: str, markup: InlineKeyboardMarkup | None) -> None:
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as exc:  # unchanged (a repeated press) or gone: nothing to show anew
        log.debug("assessment screen not edited: %s", exc)


# --- /assess handlers ---------------------------------------------------------------------------------


@domain_errors
async def assess_command(update: Update, context: Context) -> None:
    svc = services(context)
    assert update.effective_user is not None
    if not is_private(update):
        branch = await svc.branches.find_by_chat(update.effective_chat.id)  # type: ignore[union-attr]
        await reply(update, translator(update, branch)("assessment.go_private"))
        return
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    args = context.args or []
    year, month = svc.assessment.parse_month(branch, " ".join(args)) if args else svc.assessment.default_month(branch)
    board = await svc.assessment.board(branch, actor(update.effective_user), year, month)
    await reply(update, _board_text(tr, board), reply_markup=_board_keyboard(tr, board, 0))


async def _branch_of(context: Context, raw: str) -> Branch:
    return await services(context).branches.by_id(int(raw))


@domain_errors
async def assess_button(update: Update, context: Context) -> None:
    """Every "as:" press: parse, call the service (which checks the presser's role), render."""
    query = update.callback_query
    assert query is not None and query.data is not None
    svc = services(context)
    parts = query.data.split(":")
    action, branch = parts[1], await _branch_of(context, parts[2])
    year, month = svc.assessment.check_month(branch, *_ym(parts[3]))
    who = actor(query.from_user)
    tr = translator(update, branch)

    if action == "o":  # the board, a page of it
        board = await svc.assessment.board(branch, who, year, month)
        await answer(query)
        await _edit(query, _board_text(tr, board), _board_keyboard(tr, board, int(parts[4])))
    elif action == "m":  # a member's screen
        board, sheet = await svc.assessment.sheet(branch, who, year, month, int(parts[4]))
        await answer(query)
        await _edit(query, _sheet_text(tr, board, sheet), _sheet_keyboard(tr, board, sheet))
    elif action == "n":  # the next member still to assess
        board = await svc.assessment.board(branch, who, year, month)
        following = board.next_after(int(parts[4]))
        if following is None:
            await answer(query, tr("assessment.none_left"))
            await _edit(query, _board_text(tr, board), _board_keyboard(tr, board, 0))
            return
        board, sheet = await svc.assessment.sheet(branch, who, year, month, following.member.id)
        await answer(query)
        await _edit(query, _sheet_text(tr, board, sheet), _sheet_keyboard(tr, board, sheet))
    elif action in ("i", "l"):  # an item's levels, or a level's values
        board, sheet = await svc.assessment.sheet(branch, who, year, month, int(parts[4]))
        index = int(parts[5])
        if not 0 <= index < len(board.items) or (action == "l" and not 0 <= int(parts[6]) < len(board.items[index].levels)):
            raise InvalidInput("assessment.bad_item")
        if not sheet.may_assess:
            await answer(query, tr(f"error.{sheet.refusal}"), alert=True)
            return
        await answer(query)
        await _edit(query, *_item_screen(tr, board, sheet, index, int(parts[6]) if action == "l" else None))
    elif action == "v":  # a value
        await _give_value(update, context, branch, year, month, parts)
    elif action == "s":  # same as last month
        reason = Translator(branch.language)("assessment.reason_same", month=_month_label(Translator(branch.language), year, month))
        given, missing = await svc.assessment.same_as_last_month(branch, who, year, month, int(parts[4]), reason)
        note = tr("assessment.same_done", count=len(given))
        if missing:
            note += tr("assessment.same_missing", items=_list(tr, (i.name.get(tr.lang) for i in missing)))
        await answer(query, note, alert=bool(missing))
        board, sheet = await svc.assessment.sheet(branch, who, year, month, int(parts[4]))
        await _edit(query, _sheet_text(tr, board, sheet), _sheet_keyboard(tr, board, sheet))
    elif action == "g":  # everyone good: ask first
        board = await svc.assessment.board(branch, who, year, month)
        ym = month_code(year, month)
        await answer(query)
        await _edit(query, _board_text(tr, board) + "\n\n" + tr("assessment.confirm_good"), InlineKeyboardMarkup([[
            InlineKeyboardButton(tr("assessment.confirm"), callback_data=f"as:gy:{branch.id}:{ym}"),
            InlineKeyboardButton(tr("assessment.back"), callback_data=f"as:o:{branch.id}:{ym}:0"),
        ]]))
    elif action == "gy":
        reason = Translator(branch.language)("assessment.reason_good", month=_month_label(Translator(branch.language), year, month))
        written, skipped = await svc.assessment.everyone_good(branch, who, year, month, reason)
        note = tr("assessment.good_done", count=written)
        if skipped:
            note += tr("assessment.good_skipped", names=_list(tr, (m.name for m in skipped)))
        await answer(query, note, alert=bool(skipped))
        board = await svc.assessment.board(branch, who, year, month)
        await _edit(query, _board_text(tr, board), _board_keyboard(tr, board, 0))
    else:  # pragma: no cover - the pattern admits only the actions above
        await answer(query, tr("error.unknown_button"))


async def _give_value(update: Update, context: Context, branch: Branch, year: int, month: int, parts: list[str]) -> None:
    query = update.callback_query
    assert query is not None
    svc = services(context)
    tr = translator(update, branch)
    member_id, index, revision = int(parts[4]), int(parts[5]), int(parts[7])
    # Only plain numbers as the buttons write them; anything else (NaN, 1e999, 1_0, 0x7) is refused by the
    # service like any other illegal value, and nothing is written.
    value = Decimal(parts[6]) if _PLAIN_NUMBER.fullmatch(parts[6]) else Decimal("NaN")
    reason = Translator(branch.language)("assessment.reason", month=_month_label(Translator(branch.language), year, month))
    written = await svc.assessment.assess(branch, actor(query.from_user), year, month, member_id, index, value, revision, reason)
    key = "assessment.given" if written.changed else "assessment.unchanged"
    await answer(query, tr(key, name=written.sheet.member.name, item=written.item.name.get(tr.lang), value=written.value))
    board, sheet = await svc.assessment.sheet(branch, actor(query.from_user), year, month, member_id)
    following = next((i for i, item in enumerate(board.items) if i > index and not sheet.assessed(item)), None)
    if following is None:
        following = next((i for i, item in enumerate(board.items) if not sheet.assessed(item)), None)
    if following is not None and written.changed:
        await _edit(query, *_item_screen(tr, board, sheet, following))
    else:
        await _edit(query, _sheet_text(tr, board, sheet), _sheet_keyboard(tr, board, sheet))


# --- /posts -----------------------------------------------------------------------------------------


def _posts_text(tr: Translator, board: PostBoard) -> str:
    lines = [tr("posts.header", branch=board.branch.title, limit=board.limit)]
    for post in board.posts:
        holders = board.holders.get(post.id, [])
        lines.append(tr("posts.line", number=post.number, name=post.name(tr.lang),
                        holders=_list(tr, (m.name for m in holders)) if holders else tr("posts.nobody")))
    if board.mine:
        lines.append(tr("posts.mine", posts=_list(tr, (f"{p.number}. {p.name(tr.lang)}" for p in board.mine))))
    elif board.me.scored:
        lines.append(tr("posts.mine_none", limit=board.limit))
    if board.is_manager and board.unclaimed:
        lines.append(tr("posts.unclaimed", names=_list(tr, (m.name for m in board.unclaimed))))
    lines.append(tr("posts.usage"))
    if board.is_manager:
        lines.append(tr("posts.usage_manager"))
    return "\n".join(lines)


def _selection(numbers: list[int] | tuple[int, ...]) -> str:
    return ".".join(str(n) for n in sorted(numbers))


def _parse_selection(raw: str) -> list[int]:
    return [int(p) for p in raw.split(".") if p]


def _toggle_keyboard(tr: Translator, board: PostBoard, chosen: list[int]) -> InlineKeyboardMarkup:
    b, sel = board.branch.id, _selection(chosen)
    rows = []
    for post in board.posts:
        mark = "✅" if post.number in chosen else "⬜"
        rows.append([InlineKeyboardButton(f"{mark} {post.number}. {_short(post.name(tr.lang), 28)}",
                                          callback_data=f"po:t:{b}:{sel}:{post.number}")])
    rows.append([
        InlineKeyboardButton(tr("posts.submit", count=len(chosen)), callback_data=f"po:s:{b}:{sel}"),
        InlineKeyboardButton(tr("posts.cancel"), callback_data=f"po:x:{b}"),
    ])
    return InlineKeyboardMarkup(rows)


def _request_card(tr: Translator, view: RequestView) -> str:
    def names(posts) -> str:
        return _list(tr, (f"{p.number}. {p.name(tr.lang)}" for p in posts)) or tr("posts.none")
    return tr("posts.request_card", number=view.request.id, name=view.member.name, branch=view.branch.title,
              held=names(view.held), wanted=names(view.wanted))


def _request_keyboard(tr: Translator, view: RequestView) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(tr("posts.approve"), callback_data=f"po:ok:{view.request.id}"),
        InlineKeyboardButton(tr("posts.reject"), callback_data=f"po:no:{view.request.id}"),
    ]])


async def _send_request(context: Context, view: RequestView) -> int:
    """The request card to the secretary and deputy (not the requester) who can be reached; returns how many were."""
    svc = services(context)
    reached = 0
    for manager in await svc.assessment.posts.approvers(view.branch, view.member):
        tr = Translator(language_of(manager.language, view.branch.language))
        sent = await send_private(context, manager.user_id, _request_card(tr, view), reply_markup=_request_keyboard(tr, view))  # type: ignore[arg-type]
        if sent is None:
            continue
        await svc.assessment.posts.remember_message(view.request.id, sent.chat_id, sent.message_id)
        reached += 1
    return reached


async def _submitted(update: Update, context: Context, tr: Translator, view: RequestView, created: bool) -> str:
    if not created:
        return tr("posts.already_requested", number=view.request.id)
    reached = await _send_request(context, view)
    return tr("posts.requested", number=view.request.id) + ("" if reached else "\n" + tr("posts.nobody_to_approve"))


@domain_errors
async def posts_command(update: Update, context: Context) -> None:
    svc = services(context)
    assert update.effective_user is not None and update.effective_message is not None
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    who = actor(update.effective_user)
    args = list(context.args or [])
    posts = svc.assessment.posts
    command = args.pop(0).lower() if args else ""
    if command in ("claim", "认领"):
        numbers = parse_post_numbers(args)
        if not numbers:  # no numbers at all is no request: ask for them (giving up every post: the Change button)
            raise InvalidInput("posts.bad_numbers")
        message = update.effective_message
        view, created = await posts.request(branch, who, numbers, client_key=f"msg:{message.chat_id}:{message.message_id}")
        await reply(update, await _submitted(update, context, tr, view, created))
        return
    if command in ("add", "增加"):
        post = await posts.add(branch, who, " ".join(args))
        await reply(update, tr("posts.added", number=post.number, name=post.name(tr.lang)))
        return
    if command in ("remove", "删除"):
        numbers = parse_post_numbers(args)
        if not numbers or len(numbers) != 1:
            raise InvalidInput("posts.bad_numbers")
        post, released = await posts.remove(branch, who, numbers[0])
        text = tr("posts.removed", number=post.number, name=post.name(tr.lang))
        if released:
            text += "\n" + tr("posts.released", names=_list(tr, (m.name for m in released)))
        await reply(update, text)
        return
    if command in ("set", "设置"):
        if not args:
            raise InvalidInput("posts.bad_numbers")
        target = await svc.roster.find(branch, args.pop(0))
        numbers = parse_post_numbers(args)
        if numbers is None:
            raise InvalidInput("posts.bad_numbers")
        chosen = await posts.set_claims(branch, who, target, numbers)
        await reply(update, tr("posts.set", name=target.name,
                               posts=_list(tr, (f"{p.number}. {p.name(tr.lang)}" for p in chosen)) or tr("posts.none")))
        return
    if command:
        await reply(update, tr("posts.usage"))
        return
    board = await posts.board(branch, who)
    markup = None
    if is_private(update) and board.me.scored:
        markup = InlineKeyboardMarkup([[InlineKeyboardButton(
            tr("posts.change"), callback_data=f"po:e:{branch.id}:{_selection([p.number for p in board.mine])}")]])
    await reply(update, _posts_text(tr, board), reply_markup=markup)
    if is_private(update) and board.is_manager:
        for view in await posts.pending(branch, who):
            sent = await reply(update, _request_card(tr, view), reply_markup=_request_keyboard(tr, view))
            if sent is not None:
                await posts.remember_message(view.request.id, sent.chat_id, sent.message_id)


@domain_errors
async def posts_button(update: Update, context: Context) -> None:
    """The member's toggles (po:e, po:t, po:s, po:x): each press re-reads the board as the presser."""
    query = update.callback_query
    assert query is not None and query.data is not None
    svc = services(context)
    parts = query.data.split(":")
    action, branch = parts[1], await _branch_of(context, parts[2])
    tr = translator(update, branch)
    who = actor(query.from_user)
    board = await svc.assessment.posts.board(branch, who)  # checks the presser belongs to the branch
    if action == "x":
        await answer(query, tr("posts.cancelled"))
        try:
            await query.edit_message_reply_markup(None)
        except BadRequest as exc:
            log.debug("posts keyboard not removed: %s", exc)
        return
    chosen = _parse_selection(parts[3])
    if action == "t":
        number = int(parts[4])
        if number in chosen:
            chosen.remove(number)
        elif len(chosen) >= board.limit:
            await answer(query, tr("error.posts.too_many", limit=board.limit), alert=True)
            return
        else:
            chosen.append(number)
    if action in ("e", "t"):
        await answer(query)
        try:
            await query.edit_message_reply_markup(_toggle_keyboard(tr, board, chosen))
        except BadRequest as exc:
            log.debug("posts keyboard not edited: %s", exc)
        return
    # po:s — submit the selection; the key is the message and selection, so a double tap finds one request
    message = query.message
    key = f"cb:{message.chat.id}:{message.message_id}:{_selection(chosen)}" if message else f"cb:{query.id}"
    view, created = await svc.assessment.posts.request(branch, who, chosen, client_key=key)
    text = await _submitted(update, context, tr, view, created)
    await answer(query, text)
    try:
        await query.edit_message_reply_markup(None)
    except BadRequest as exc:
        log.debug("posts keyboard not removed: %s", exc)
    if created:
        await reply(update, text)


@domain_errors
async def posts_decision(update: Update, context: Context) -> None:
    """po:ok / po:no — the secretary or deputy decides a request (checked in the service), once."""
    query = update.callback_query
    assert query is not None and query.data is not None
    svc = services(context)
    _, verdict, number = query.data.split(":")
    view = await svc.assessment.posts.decide(int(number), actor(query.from_user), approve=verdict == "ok")
    tr = translator(update, view.branch)
    outcome_key = "posts.outcome_approved" if view.request.status == "approved" else "posts.outcome_rejected"
    outcome = tr(outcome_key, number=view.request.id, by=view.decider.name if view.decider else "")
    await answer(query, outcome)
    for chat_id, message_id in await svc.assessment.posts.messages(view.request.id):
        try:
            await context.bot.edit_message_text(_request_card(tr, view) + "\n\n" + outcome, chat_id=chat_id, message_id=message_id)
        except (BadRequest, Forbidden) as exc:
            log.debug("could not edit a post request card: %s", exc)
    if view.member.user_id is not None:
        member_tr = Translator(language_of(view.member.language, view.branch.language))
        key = "posts.told_approved" if view.request.status == "approved" else "posts.told_rejected"
        posts = _list(member_tr, (f"{p.number}. {p.name(member_tr.lang)}" for p in view.wanted)) or member_tr("posts.none")
        await send_private(context, view.member.user_id, member_tr(
            key, number=view.request.id, by=view.decider.name if view.decider else "", posts=posts))


def register(app: Application) -> None:
    """Add this module's handlers (called in bot.app.register_handlers)."""
    app.add_handler(CommandHandler("assess", assess_command))
    app.add_handler(CommandHandler("posts", posts_command))
    app.add_handler(CallbackQueryHandler(
        assess_button,
        pattern=r"^as:(?:[omns]:\d{1,12}:\d{6}:\d{1,12}|gy?:\d{1,12}:\d{6}|i:\d{1,12}:\d{6}:\d{1,12}:\d{1,2}"
                r"|l:\d{1,12}:\d{6}:\d{1,12}:\d{1,2}:\d{1,2}|v:\d{1,12}:\d{6}:\d{1,12}:\d{1,2}:[^:]{1,12}:\d{1,6})$",
    ))
    app.add_handler(CallbackQueryHandler(posts_button, pattern=r"^po:(?:[ets]:\d{1,12}:[\d.]{0,40}(?::\d{1,6})?|x:\d{1,12})$"))
    app.add_handler(CallbackQueryHandler(posts_decision, pattern=r"^po:(?:ok|no):\d{1,12}$"))
