"""Telegram glue for the democratic evaluation (民主评议) of 张店-style schemes: /evaluate, buttons "de:".

In private:
- ``/evaluate open [2026-H1]`` (secretary, deputy) opens the half's round; every participant gets a
  private card to rate themselves and each peer; those it cannot reach are listed.
- ``/evaluate [2026-H1]`` — the secretary or deputy sees the progress board (per-member buttons to enter
  the public and branch ratings); a member sees their own card.
- ``/evaluate set MEMBER public 85 branch 80`` (or grades: ``群众 优秀 支部 合格``), ``/evaluate rate
  MEMBER|me 88``, ``/evaluate remind``, ``/evaluate close`` (asks to confirm).

Callback data carries ids only (``de:<action>:<round>:…``); DemocraticService re-checks the presser on
every press. No screen shows who gave whom what.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.domain.democratic import GRADES, HIGH, LOW, RatingError, grade_of, parse_rating
from bot.domain.records import Member, Role
from bot.domain.scoring import publish
from bot.errors import InvalidInput
from bot.i18n import Safe, Translator, format_points, language_of
from bot.services.branches import rulebook_of
from bot.services.democratic import Board, Card, Line
from handlers.common import Context, actor, answer, current_branch, domain_errors, is_private, reply, send_private, services, translator

log = logging.getLogger(__name__)

MENU: dict[str, tuple[str, ...]] = {"private": ("evaluate",), "group": (), "admin": ()}

PAGE = 8  # members per page (card and board)
NAMES_SHOWN = 40
STEPS = (-5, -1, 1, 5)
_KIND_WORDS = {"public": "public", "群众": "public", "群众测评": "public", "测评": "public",
               "branch": "branch", "支部": "branch", "初评": "branch", "党支部初评": "branch", "支部初评": "branch"}
_GRADE_WORDS = {"优秀": "excellent", "excellent": "excellent", "合格": "qualified", "qualified": "qualified",
                "基本合格": "basic", "basic": "basic", "basically": "basic", "不合格": "unqualified", "unqualified": "unqualified"}
_SELF_WORDS = {"me", "self", "myself", "我", "自己", "本人", "自评"}
_MANAGERS = {Role.SECRETARY, Role.DEPUTY}


# --- small renderers -----------------------------------------------------------------------------


def _num(value: Decimal) -> str:
    return format_points(value)


def _short(text: str, limit: int = 14) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _list(tr: Translator, names: list[str]) -> str:
    shown = tr("common.list_separator").join(names[:NAMES_SHOWN])
    if len(names) > NAMES_SHOWN:
        shown += tr("democratic.and_more", count=len(names) - NAMES_SHOWN)
    return shown


def _rating(tr: Translator, value: Decimal | None, empty: str = "democratic.not_rated") -> str:
    if value is None:
        return tr(empty)
    return tr("democratic.value_grade", value=value, grade=tr(f"democratic.grade.{grade_of(value).code}"))


def _grades_hint(tr: Translator) -> str:
    return tr("common.list_separator").join(f"{tr(f'democratic.grade.{g.code}')} {_num(g.value)}" for g in GRADES)


def _half(tr: Translator, year: int, half: int) -> str:
    return tr(f"democratic.half_{half}", year=year)


def _pages(count: int) -> int:
    return max(1, (count + PAGE - 1) // PAGE)


def _nav(prefix: str, page: int, pages: int) -> list[InlineKeyboardButton]:
    nav = []
    if page > 0:
        nav.append(InlineKeyboardButton("◀", callback_data=f"{prefix}:{page - 1}"))
    nav.append(InlineKeyboardButton(f"{page + 1}/{pages}", callback_data=f"{prefix}:{page}"))
    if page < pages - 1:
        nav.append(InlineKeyboardButton("▶", callback_data=f"{prefix}:{page + 1}"))
    return nav


def _steps(prefix: str, current: Decimal | None, label: str = "") -> list[InlineKeyboardButton]:
    """−5 −1 +1 +5 around the current value (only those that stay within 0-100)."""
    if current is None:
        return []
    row = []
    for step in STEPS:
        value = current + step
        if LOW <= value <= HIGH:
            row.append(InlineKeyboardButton(f"{label}{step:+d}".replace("-", "−"), callback_data=f"{prefix}:{_num(value)}"))
    return row


async def _edit(query, text: str, markup: InlineKeyboardMarkup | None) -> None:
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as exc:  # unchanged (a repeated press) or gone
        log.debug("democratic screen not edited: %s", exc)


# --- a member's card -----------------------------------------------------------------------------------


def card_text(tr: Translator, card: Card) -> str:
    r = card.round
    lines = [tr("democratic.card_header", branch=card.branch.title, half=_half(tr, r.year, r.half))]
    if r.is_open:
        lines.append(tr("democratic.card_intro", grades=_grades_hint(tr)))
    lines.append(tr("democratic.card_self", value=Safe(_rating(tr, card.given.get(card.me.id)))))
    lines.append(tr("democratic.card_peers", done=card.peers_done, total=len(card.peers)))
    if not r.is_open:
        lines.append(tr("democratic.card_closed"))
    elif card.finished:
        lines.append(tr("democratic.card_finished"))
    return "\n".join(lines)


def card_keyboard(tr: Translator, card: Card, page: int = 0) -> InlineKeyboardMarkup | None:
    if not card.round.is_open:
        return None
    rid = card.round.id
    own = card.given.get(card.me.id)
    rows = [[InlineKeyboardButton(
        tr("democratic.self_button", value=_num(own) if own is not None else "—"), callback_data=f"de:p:{rid}:{card.me.id}")]]
    pages = _pages(len(card.peers))
    page = min(max(page, 0), pages - 1)
    buttons = []
    for peer in card.peers[page * PAGE:(page + 1) * PAGE]:
        value = card.given.get(peer.id)
        label = f"✅ {_short(peer.name)} {_num(value)}" if value is not None else f"⬜ {_short(peer.name)}"
        buttons.append(InlineKeyboardButton(label, callback_data=f"de:p:{rid}:{peer.id}"))
    rows += [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    if pages > 1:
        rows.append(_nav(f"de:h:{rid}", page, pages))
    return InlineKeyboardMarkup(rows)


def _card_page(card: Card, member_id: int) -> int:
    index = next((i for i, p in enumerate(card.peers) if p.id == member_id), 0)
    return index // PAGE


def rate_screen(tr: Translator, card: Card, ratee: Member) -> tuple[str, InlineKeyboardMarkup | None]:
    current = card.given.get(ratee.id)
    who = tr("democratic.rating_self") if ratee.id == card.me.id else tr("democratic.rating_peer", name=ratee.name)
    text = "\n".join([
        card_text(tr, card), "",
        who,
        tr("democratic.current", value=Safe(_rating(tr, current))),
        tr("democratic.rate_hint"),
    ])
    if not card.round.is_open:
        return text, None
    rid = card.round.id
    grade_buttons = [InlineKeyboardButton(f"{tr(f'democratic.grade.{g.code}')} {_num(g.value)}",
                                          callback_data=f"de:r:{rid}:{ratee.id}:{_num(g.value)}") for g in GRADES]
    rows = [grade_buttons[:2], grade_buttons[2:]]
    steps = _steps(f"de:r:{rid}:{ratee.id}", current)
    if steps:
        rows.append(steps)
    rows.append([
        InlineKeyboardButton(tr("democratic.back_to_list"), callback_data=f"de:h:{rid}:{_card_page(card, ratee.id)}"),
        InlineKeyboardButton(tr("democratic.next"), callback_data=f"de:n:{rid}:{ratee.id}"),
    ])
    return text, InlineKeyboardMarkup(rows)


# --- the secretary's board ---------------------------------------------------------------------------------


def _line_text(tr: Translator, board: Board, line: Line) -> str:
    name = line.member.name
    if not board.round.is_open:
        if line.evaluation is None:
            text = tr("democratic.line_incomplete", name=name)
        else:
            places = rulebook_of(board.branch).settings.rounding_places
            text = tr("democratic.line_result", name=name, value=Safe(_rating(tr, publish(line.evaluation, places))))
        return text + (tr("democratic.unqualified_mark") if line.unqualified else "")
    return tr(
        "democratic.line", name=name, own=tr("democratic.yes") if line.self_done else tr("democratic.no"),
        given=line.peers_given, needed=board.peers_needed,
        public=_num(line.public) if line.public is not None else "—",
        branch=_num(line.branch) if line.branch is not None else "—",
    )


def board_text(tr: Translator, board: Board, page: int = 0) -> str:
    r = board.round
    status = tr("democratic.status_open") if r.is_open else tr("democratic.status_closed")
    w = board.weights
    lines = [
        tr("democratic.board_header", branch=board.branch.title, half=_half(tr, r.year, r.half), status=status),
        tr("democratic.weights", own=_num(w["self"] * 100), peer=_num(w["peer"] * 100),
           public=_num(w["public"] * 100), branch=_num(w["branch"] * 100)),
    ]
    total = len(board.lines)
    if not total:
        lines.append(tr("democratic.nobody"))
        return "\n".join(lines)
    lines.append(tr("democratic.progress", done=len(board.done), total=total))
    if board.not_done:
        lines.append(tr("democratic.not_done", names=_list(tr, [l.member.name for l in board.not_done])))
    if board.unreachable:
        lines.append(tr("democratic.unreachable", names=_list(tr, [l.member.name for l in board.unreachable])))
    if board.without_peer and r.is_open:
        # a count, never names: names (or per-member received counts) next to each rater's progress would
        # tell who rated whom (only 张三 has rated one peer, only 李四 has received one)
        lines.append(tr("democratic.without_peer", count=len(board.without_peer)))
    lines.append(tr("democratic.missing_marks", public=len(board.missing_public), branch=len(board.missing_branch)))
    if not r.is_open:
        unq = [l.member.name for l in board.lines if l.unqualified]
        if unq:
            lines.append(tr("democratic.unqualified_list", names=_list(tr, unq)))
    pages = _pages(total)
    page = min(max(page, 0), pages - 1)
    lines.append("")
    lines += [_line_text(tr, board, l) for l in board.lines[page * PAGE:(page + 1) * PAGE]]
    return "\n".join(lines)


def board_keyboard(tr: Translator, board: Board, page: int = 0) -> InlineKeyboardMarkup:
    rid = board.round.id
    pages = _pages(len(board.lines))
    page = min(max(page, 0), pages - 1)
    rows: list[list[InlineKeyboardButton]] = []
    if board.round.is_open:
        buttons = []
        for line in board.lines[page * PAGE:(page + 1) * PAGE]:
            complete = line.public is not None and line.branch is not None
            mark = "🔒" if line.member.id == board.viewer.id else ("✅" if complete else "⬜")
            buttons.append(InlineKeyboardButton(f"{mark} {_short(line.member.name)}", callback_data=f"de:m:{rid}:{line.member.id}"))
        rows += [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    if pages > 1:
        rows.append(_nav(f"de:b:{rid}", page, pages))
    if board.round.is_open:
        extra = []
        if board.viewer_participates:
            extra.append(InlineKeyboardButton(tr("democratic.my_ratings"), callback_data=f"de:h:{rid}:0"))
        extra.append(InlineKeyboardButton(tr("democratic.close"), callback_data=f"de:c:{rid}"))
        rows.append(extra)
    return InlineKeyboardMarkup(rows)


def _board_page(board: Board, member_id: int) -> int:
    index = next((i for i, l in enumerate(board.lines) if l.member.id == member_id), 0)
    return index // PAGE


def mark_screen(tr: Translator, board: Board, line: Line) -> tuple[str, InlineKeyboardMarkup]:
    r = board.round
    text = "\n".join([
        tr("democratic.mark_header", name=line.member.name, half=_half(tr, r.year, r.half)),
        tr("democratic.mark_public", value=Safe(_rating(tr, line.public, "democratic.not_entered"))),
        tr("democratic.mark_branch", value=Safe(_rating(tr, line.branch, "democratic.not_entered"))),
    ])
    rid, mid = r.id, line.member.id
    rows: list[list[InlineKeyboardButton]] = []
    if line.member.id == board.viewer.id:
        text += "\n" + tr("error.democratic.own_marks")
    elif r.is_open:
        for code, kind, current in (("u", "public", line.public), ("b", "branch", line.branch)):
            label = tr(f"democratic.kind_short.{kind}")
            buttons = [InlineKeyboardButton(f"{label} {tr(f'democratic.grade.{g.code}')} {_num(g.value)}",
                                            callback_data=f"de:k:{rid}:{mid}:{code}:{_num(g.value)}") for g in GRADES]
            rows += [buttons[:2], buttons[2:]]
            steps = _steps(f"de:k:{rid}:{mid}:{code}", current, label=f"{label} ")
            if steps:
                rows.append(steps)
        text += "\n" + tr("democratic.mark_hint", ref=mid)
    rows.append([
        InlineKeyboardButton(tr("democratic.back_to_list"), callback_data=f"de:b:{rid}:{_board_page(board, mid)}"),
        InlineKeyboardButton(tr("democratic.next"), callback_data=f"de:x:{rid}:{mid}"),
    ])
    return text, InlineKeyboardMarkup(rows)


def close_question(tr: Translator, board: Board) -> tuple[str, InlineKeyboardMarkup]:
    rid = board.round.id
    text = board_text(tr, board) + "\n\n" + tr(
        "democratic.confirm_close", not_done=len(board.not_done), public=len(board.missing_public),
        branch=len(board.missing_branch))
    return text, InlineKeyboardMarkup([[
        InlineKeyboardButton(tr("democratic.confirm"), callback_data=f"de:cy:{rid}"),
        InlineKeyboardButton(tr("democratic.back_to_list"), callback_data=f"de:b:{rid}:0"),
    ]])


# --- invitations ---------------------------------------------------------------------------------------


async def _invite(context: Context, board: Board, members: list[Member], key: str) -> list[Member]:
    """Each member's card in private; returns those it could not reach (recorded for the board)."""
    svc = services(context)
    unreachable = []
    for member in members:
        reached = False
        if member.user_id is not None:
            card = await svc.democratic.card_for(member, board.round.id)
            tr = Translator(language_of(member.language, board.branch.language))
            text = tr(key, by=board.viewer.name, half=_half(tr, board.round.year, board.round.half)) + "\n\n" + card_text(tr, card)
            reached = await send_private(context, member.user_id, text, reply_markup=card_keyboard(tr, card)) is not None
        await svc.democratic.record_invite(board.round.id, member.id, reached)
        if not reached:
            unreachable.append(member)
    return unreachable


# --- /evaluate -----------------------------------------------------------------------------------------


def _value_word(word: str) -> Decimal:
    grade = _GRADE_WORDS.get(word.lower())
    if grade is not None:
        return next(g.value for g in GRADES if g.code == grade)
    try:
        return parse_rating(word)
    except RatingError:
        raise InvalidInput("democratic.bad_value") from None


@domain_errors
async def evaluate_command(update: Update, context: Context) -> None:
    svc = services(context)
    user = update.effective_user
    assert user is not None
    if not is_private(update):
        branch = await svc.branches.find_by_chat(update.effective_chat.id)  # type: ignore[union-attr]
        await reply(update, translator(update, branch)("democratic.go_private"))
        return
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    who = actor(user)
    args = list(context.args or [])
    command = args.pop(0).lower() if args else ""
    demo = svc.democratic

    if command in ("open", "开始", "发起"):
        year, half = demo.parse_half(branch, " ".join(args)) if args else demo.default_half(branch)
        opened = await demo.open(branch, who, year, half)
        unreachable = await _invite(context, opened.board, opened.invite, "democratic.invite")
        board = await demo.board(branch, who, round_id=opened.board.round.id)
        text = tr("democratic.opened", half=_half(tr, year, half), count=len(opened.invite) - len(unreachable))
        if unreachable:
            text += "\n" + tr("democratic.opened_unreachable", names=_list(tr, [m.name for m in unreachable]))
        await reply(update, text + "\n\n" + board_text(tr, board), reply_markup=board_keyboard(tr, board))
    elif command in ("close", "结束"):
        board = await demo.board(branch, who, round_id=(await demo.open_round(branch)).id)
        text, markup = close_question(tr, board)
        await reply(update, text, reply_markup=markup)
    elif command in ("remind", "提醒"):
        board, members = await demo.to_remind(branch, who)
        if not members:
            await reply(update, tr("democratic.remind_none"))
            return
        unreachable = await _invite(context, board, members, "democratic.reminder")
        text = tr("democratic.reminded", count=len(members) - len(unreachable))
        if unreachable:
            text += "\n" + tr("democratic.opened_unreachable", names=_list(tr, [m.name for m in unreachable]))
        await reply(update, text)
    elif command in ("set", "录入"):
        if len(args) < 3 or len(args) % 2 == 0:
            raise InvalidInput("democratic.set_usage")
        target_ref, pairs = args[0], args[1:]
        values: dict[str, Decimal] = {}
        for kind_word, value_word in zip(pairs[::2], pairs[1::2]):
            kind = _KIND_WORDS.get(kind_word.lower())
            if kind is None or kind in values:
                raise InvalidInput("democratic.set_usage")
            values[kind] = _value_word(value_word)
        found = await demo.open_round(branch)
        target = await demo.participant(branch, found.id, await svc.roster.find(branch, target_ref))
        board, changed = await demo.set_marks(who, found.id, target.id, values)
        line = board.line(target.id)
        assert line is not None
        key = "democratic.marks_set" if changed else "democratic.marks_unchanged"
        await reply(update, tr(key, name=target.name,
                               public=Safe(_rating(tr, line.public, "democratic.not_entered")),
                               branch=Safe(_rating(tr, line.branch, "democratic.not_entered"))))
    elif command in ("rate", "评分"):
        if len(args) != 2:
            raise InvalidInput("democratic.rate_usage")
        value = _value_word(args[1])
        found = await demo.open_round(branch)
        if args[0].lower() in _SELF_WORDS:
            target_id = (await svc.roster.member_of(branch, user.id)).id
        else:
            target_id = (await demo.participant(branch, found.id, await svc.roster.find(branch, args[0]))).id
        card, ratee, changed = await demo.rate(who, found.id, target_id, value)
        await reply(update, _rated_text(tr, card, ratee, value, changed), reply_markup=card_keyboard(tr, card))
    elif command in ("help", "帮助"):
        await reply(update, tr("democratic.usage", grades=_grades_hint(tr)))
    else:
        roles = await svc.roster.roles_of_user(branch, user.id)
        if roles & _MANAGERS:
            year_half = demo.parse_half(branch, " ".join([command, *args])) if command else (None, None)
            board = await demo.board(branch, who, *year_half)
            await reply(update, board_text(tr, board), reply_markup=board_keyboard(tr, board))
            return
        if command:
            await reply(update, tr("democratic.usage", grades=_grades_hint(tr)))
            return
        card = await demo.my_card(branch, who)
        await reply(update, card_text(tr, card), reply_markup=card_keyboard(tr, card))


def _rated_text(tr: Translator, card: Card, ratee: Member, value: Decimal, changed: bool) -> str:
    rating = Safe(_rating(tr, value))
    if ratee.id == card.me.id:
        return tr("democratic.rated_self" if changed else "democratic.unchanged_self", value=rating)
    return tr("democratic.rated_peer" if changed else "democratic.unchanged_peer", name=ratee.name, value=rating)


# --- buttons -------------------------------------------------------------------------------------------


@domain_errors
async def evaluate_button(update: Update, context: Context) -> None:
    """Every "de:" press: parse, call the service (which checks the presser), render."""
    query = update.callback_query
    assert query is not None and query.data is not None
    demo = services(context).democratic
    parts = query.data.split(":")
    action, rid = parts[1], int(parts[2])
    who = actor(query.from_user)

    if action in ("h", "p", "n", "r"):  # the member's own card
        if action == "r":
            card, ratee, changed = await demo.rate(who, rid, int(parts[3]), Decimal(parts[4]))
            tr = translator(update, card.branch)
            await answer(query, _rated_text(tr, card, ratee, Decimal(parts[4]), changed))
            await _edit(query, *rate_screen(tr, card, ratee))
            return
        card = await demo.card(who, rid)
        tr = translator(update, card.branch)
        if action == "h":
            await answer(query)
            await _edit(query, card_text(tr, card), card_keyboard(tr, card, int(parts[3])))
            return
        if action == "n":
            ratee = card.next_after(int(parts[3]))
            if ratee is None:
                await answer(query, tr("democratic.all_rated"))
                await _edit(query, card_text(tr, card), card_keyboard(tr, card))
                return
        else:
            ratee = card.ratee(int(parts[3]))
            if ratee is None:
                raise InvalidInput("democratic.not_in_round")
        await answer(query)
        await _edit(query, *rate_screen(tr, card, ratee))
        return

    if action == "k":  # a public or branch rating
        kind = "public" if parts[4] == "u" else "branch"
        board, changed = await demo.set_marks(who, rid, int(parts[3]), {kind: Decimal(parts[5])})
        tr = translator(update, board.branch)
        line = board.line(int(parts[3]))
        assert line is not None
        await answer(query, tr("democratic.mark_given" if changed else "democratic.mark_same", name=line.member.name,
                               kind=tr(f"democratic.kind.{kind}"), value=Decimal(parts[5])))
        await _edit(query, *mark_screen(tr, board, line))
        return
    if action == "cy":
        board = await demo.close(who, rid)
        tr = translator(update, board.branch)
        await answer(query, tr("democratic.closed_done", half=_half(tr, board.round.year, board.round.half)))
        await _edit(query, board_text(tr, board), board_keyboard(tr, board))
        return

    board = await demo.board_of(who, rid)
    tr = translator(update, board.branch)
    if action == "b":
        await answer(query)
        await _edit(query, board_text(tr, board, int(parts[3])), board_keyboard(tr, board, int(parts[3])))
    elif action in ("m", "x"):
        member_id = int(parts[3])
        line = board.line(member_id) if action == "m" else board.next_after(member_id)
        if line is None:
            if action == "x":
                await answer(query, tr("democratic.all_marked"))
                await _edit(query, board_text(tr, board), board_keyboard(tr, board))
                return
            raise InvalidInput("democratic.not_in_round")
        await answer(query)
        await _edit(query, *mark_screen(tr, board, line))
    elif action == "c":
        if not board.round.is_open:
            raise InvalidInput("democratic.closed", half=board.round.code)
        await answer(query)
        await _edit(query, *close_question(tr, board))
    else:  # pragma: no cover - the pattern admits no other action
        await answer(query)


_VALUE = r"\d{1,3}(?:\.\d{1,2})?"
PATTERN = (rf"^de:(?:[hpnbmx]:\d{{1,12}}:\d{{1,12}}|r:\d{{1,12}}:\d{{1,12}}:{_VALUE}"
           rf"|k:\d{{1,12}}:\d{{1,12}}:[ub]:{_VALUE}|cy?:\d{{1,12}})$")


def register(app: Application) -> None:
    """Add this module's handlers (called in bot.app.register_handlers)."""
    app.add_handler(CommandHandler("evaluate", evaluate_command))
    app.add_handler(CallbackQueryHandler(evaluate_button, pattern=PATTERN))
