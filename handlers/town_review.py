"""Telegram glue for the town's part in a branch's year: appeals, the year-end review, the filing.

- An appeal (/appeal, handlers/notices.py) in a branch of a town reaches the town's administrators as a
  card (``appeal_to_town``) with two buttons: uphold the branch's decision / order a correction, each
  followed by a reason typed in private. For a dispute of a score the administrator first picks the
  entry to correct. The appellant, the member concerned, and the branch's secretary and deputy are
  told; an ordered correction comes to the branch with a button to write it (the town never writes it).
- The secretary's confirmation of the grades (/grade's button, handlers/grading.py) in a branch of a
  town goes to the town for review (``submitted``): approve (the publicity starts, as without a town) or
  send back with reasons (the secretary is told and may confirm again).
- ``/townqueue`` (private, a town administrator; also the /town dashboard's button): every appeal and
  review still waiting for the town's decision, as cards with their buttons — the cards sent once at
  submission may have reached nobody (no administrator reachable, one added later) or been lost.
- The secretary may take back a submission the town has not decided (the button under "submitted", or
  ``/townwithdraw [YEAR]``) and confirm again later.
- ``/townfile [YEAR]`` (private, a town administrator): the town's filing (备案) as one xlsx; the same
  from the button ``filing_button`` gives (for the /town menu).

Buttons (prefix ``tv:``; no authority in them, the service checks the presser every time):
``tv:au:<appeal>`` uphold, ``tv:ac:<appeal>`` order a correction, ``tv:ae:<appeal>:<entry>`` the entry to
correct (disputes), ``tv:ap:<appeal>`` the branch writes the correction, ``tv:ra:<review>`` approve,
``tv:rb:<review>`` send back, ``tv:rw:<review>`` the secretary withdraws, ``tv:q:<a|r>:<after id>`` a page
of the queue, ``tv:f:<town>:<year>`` the filing's xlsx, ``tv:x`` cancel a reason.
"""

from __future__ import annotations

import logging
import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.error import BadRequest, Forbidden
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ConversationHandler, MessageHandler, filters

from bot.domain.notice import ObjectionKind, ObjectionStatus
from bot.domain.records import LedgerRow
from bot.errors import DomainError, InvalidInput
from bot.i18n import Safe, Translator, language_of
from bot.services import Services
from bot.services.branches import rulebook_of
from bot.services.grading import FinalView, ReopenView
from bot.services.town_review import CORRECT, REVERSED_MEANWHILE, UPHOLD, AppealView, ReviewView
from handlers.common import (
    FlowInProgress,
    Context,
    actor,
    answer,
    conversation_exits,
    current_branch,
    domain_errors,
    edit_or_send,
    is_private,
    refusal,
    reply,
    send_private,
    services,
    translator,
)
from handlers.grading import distribution_text, flag_summary, publish_now, result_line
from handlers.notices import item_label, local_time, member_tr, pack, signed

log = logging.getLogger(__name__)

MENU: dict[str, tuple[str, ...]] = {"private": ("townqueue", "townfile", "townwithdraw"), "group": (), "admin": ()}

REASON = 0
DRAFT = "tv"
CANCEL = "tv:x"
ASK_AGAIN = ("town_review.reason_required", "text.too_long")
_YEAR = re.compile(r"^\d{4}$")

cancel, _ = conversation_exits(DRAFT, "town_review")


# --- rendering -----------------------------------------------------------------------------------------


def _town_tr(view: AppealView | ReviewView, user_language: str | None = None) -> Translator:
    return Translator(language_of(user_language, view.town.language))


def _entry_text(tr: Translator, view: AppealView, row: LedgerRow) -> str:
    return tr("town_review.entry", number=row.id, name=view.member.name, date=row.occurred_on.isoformat(),
              item=item_label(tr, rulebook_of(view.branch), row), value=signed(row.value))


def _branch_decision(tr: Translator, view: AppealView) -> str:
    o = view.objection
    if o.status is ObjectionStatus.WITHDRAWN:
        return tr("town_review.branch_withdrew", reversal=o.reversal_id or "-")
    if o.status is ObjectionStatus.RESOLVED:
        return tr("town_review.branch_resolved")
    return tr("town_review.branch_upheld")


def appeal_card(tr: Translator, view: AppealView) -> str:
    o = view.objection
    if o.kind is ObjectionKind.OBJECTION and view.entry is not None:
        about = tr("town_review.about_entry", objection=o.id, entry=Safe(_entry_text(tr, view, view.entry)), reason=o.reason)
    else:
        about = tr("town_review.about_dispute", objection=o.id, name=view.member.name, reason=o.reason)
    return tr("town_review.appeal_card", number=view.appeal.id, town=view.town.name, branch=view.branch.title,
              about=Safe(about), decision=Safe(_branch_decision(tr, view)), appellant=view.appellant.name,
              reason=view.appeal.reason)


def appeal_outcome(tr: Translator, view: AppealView, by: str | None = None) -> str:
    a = view.appeal
    by_text = tr("town_review.by", name=by) if by else ""
    if a.status == UPHOLD:
        return tr("town_review.outcome_upheld", town=view.town.name, by=Safe(by_text), reason=a.decision_reason or "")
    assert view.target is not None
    key = "town_review.correction_reinstate" if a.correction_kind == "reinstate" else "town_review.correction_reverse"
    correction = tr(key, entry=Safe(_entry_text(tr, view, view.target)))
    text = tr("town_review.outcome_correction", town=view.town.name, by=Safe(by_text), correction=Safe(correction),
              reason=a.decision_reason or "")
    if a.status == "corrected" and view.correction is not None:
        text += "\n" + tr("town_review.outcome_corrected", row=view.correction.id)
    return text


def appeal_keyboard(tr: Translator, view: AppealView) -> InlineKeyboardMarkup:
    number = view.appeal.id
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(tr("town_review.uphold_button"), callback_data=f"tv:au:{number}"),
        InlineKeyboardButton(tr("town_review.correct_button"), callback_data=f"tv:ac:{number}"),
    ]])


def review_blocks(tr: Translator, view: ReviewView) -> list[str]:
    review, result, rulebook = view.review, view.result, view.rulebook
    head = [tr("town_review.review_card", number=review.id, town=view.town.name, branch=view.branch.title,
               year=review.year, attempt=review.attempt, secretary=view.secretary.name if view.secretary else "-",
               at=local_time(review.submitted_at, view.branch)),
            distribution_text(tr, rulebook, result)]
    flags = flag_summary(tr, rulebook, result)
    if flags:
        head.append(tr("grade.flags_header") + "\n" + "\n".join(flags))
    lines = [tr("grade.lines_header")] + ([result_line(tr, rulebook, line) for line in result.lines] or [tr("grade.nobody")])
    return ["\n".join(head), "\n".join(lines), tr("town_review.review_hint", year=review.year)]


def review_keyboard(tr: Translator, view: ReviewView) -> InlineKeyboardMarkup:
    number = view.review.id
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(tr("town_review.approve_button"), callback_data=f"tv:ra:{number}"),
        InlineKeyboardButton(tr("town_review.send_back_button"), callback_data=f"tv:rb:{number}"),
    ]])


def withdraw_keyboard(tr: Translator, review_id: int) -> InlineKeyboardMarkup:
    """The secretary's way back from a submission the town has not reviewed."""
    return InlineKeyboardMarkup([[InlineKeyboardButton(tr("town_review.withdraw_button"), callback_data=f"tv:rw:{review_id}")]])


def queue_button(tr: Translator) -> InlineKeyboardButton:
    """For the /town dashboard: what waits for the town's decision (as /townqueue)."""
    return InlineKeyboardButton(tr("town_review.queue_button"), callback_data="tv:q:a:0")


def filing_button(tr: Translator, town_id: int, year: int) -> InlineKeyboardButton:
    """The filing's button, for the town's menu (/town): the year's xlsx in this chat."""
    return InlineKeyboardButton(tr("town_review.filing_button", year=year), callback_data=f"tv:f:{town_id}:{year}")


def cancel_keyboard(tr: Translator) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(tr("common.cancel"), callback_data=CANCEL)]])


async def _edit_cards(context: Context | Application, kind: str, ref_id: int, text_of) -> None:
    """Every administrator's copy of a card shows the decision (its buttons go). ``context`` is a
    handler's context or the Application (work outside an update: a branch leaving its town)."""
    svc: Services = context.bot_data["services"]
    for chat_id, message_id in await svc.town_review.cards(kind, ref_id):
        try:
            await context.bot.edit_message_text(text_of(chat_id), chat_id=chat_id, message_id=message_id)
        except (BadRequest, Forbidden) as exc:  # deleted or unchanged: the decision stands
            log.debug("could not edit a town card: %s", exc)


# --- appeals reaching the town -----------------------------------------------------------------------------


async def appeal_to_town(context: Context, objection_id: int) -> str | None:
    """After /appeal: when the objection's branch belongs to a town, its administrators get the card.
    Returns the town's name (None: a branch without a town, as before)."""
    svc = services(context)
    view = await svc.town_review.appeal_of_objection(objection_id)
    if view is None:
        return None
    tr = _town_tr(view)
    for user_id in await svc.town_review.admins(view.town.id):
        sent = await send_private(context, user_id, appeal_card(tr, view), reply_markup=appeal_keyboard(tr, view))
        if sent is not None:
            await svc.town_review.remember_card("appeal", view.appeal.id, sent.chat_id, sent.message_id)
    return view.town.name


async def uphold_button(update: Update, context: Context) -> int:
    return await _ask_reason(update, context, "au")


async def correct_button(update: Update, context: Context) -> int:
    """Order a correction: for an objection the entry is known; a dispute first picks the entry."""
    query = update.callback_query
    assert query is not None and query.data is not None
    number = int(query.data.split(":")[2])
    try:
        view, rows = await services(context).town_review.correction_choices(number, actor(query.from_user))
    except DomainError as error:
        await answer(query, refusal(update, error), alert=True)
        return ConversationHandler.END
    if view.objection.kind is ObjectionKind.OBJECTION:
        return await _ask_reason(update, context, "ac", view=view, ledger_id=None)
    await answer(query)
    tr = translator(update)
    buttons = [[InlineKeyboardButton(f"#{row.id} {row.occurred_on.isoformat()} {item_label(tr, rulebook_of(view.branch), row)} "
                                     f"{signed(row.value)}"[:60], callback_data=f"tv:ae:{number}:{row.id}")] for row in rows]
    buttons.append([InlineKeyboardButton(tr("common.cancel"), callback_data=CANCEL)])
    await context.bot.send_message(query.from_user.id, tr("town_review.pick_entry", number=number, name=view.member.name),
                                   reply_markup=InlineKeyboardMarkup(buttons))
    return ConversationHandler.END


async def entry_button(update: Update, context: Context) -> int:
    query = update.callback_query
    assert query is not None and query.data is not None
    return await _ask_reason(update, context, "ac", ledger_id=int(query.data.split(":")[3]))


async def send_back_button(update: Update, context: Context) -> int:
    return await _ask_reason(update, context, "rb")


async def _ask_reason(update: Update, context: Context, action: str, view: AppealView | None = None,
                      ledger_id: int | None = None) -> int:
    query = update.callback_query
    assert query is not None and query.data is not None
    number = int(query.data.split(":")[2])
    svc = services(context)
    tr = translator(update)
    try:
        if action == "rb":
            review = await svc.town_review.check_review(number, actor(query.from_user))
            question = tr("town_review.ask_send_back", branch=review.branch.title, year=review.review.year)
        else:
            view = view or await svc.town_review.check_appeal(number, actor(query.from_user))
            if action == "au":
                question = tr("town_review.ask_uphold", number=number)
            else:
                question = tr("town_review.ask_correct", number=number)
    except DomainError as error:
        await answer(query, refusal(update, error), alert=True)
        return ConversationHandler.END
    await answer(query)
    context.user_data[DRAFT] = {"action": action, "id": number, "ledger": ledger_id}
    await context.bot.send_message(query.from_user.id, question, reply_markup=cancel_keyboard(tr))
    return REASON


async def reason_text(update: Update, context: Context) -> int:
    svc = services(context)
    pending = context.user_data.get(DRAFT) or {}
    message = update.effective_message
    assert message is not None and update.effective_user is not None
    who = actor(update.effective_user)
    try:
        if pending.get("action") == "rb":
            review = await svc.town_review.send_back(pending["id"], who, message.text)
        elif pending.get("action") in ("au", "ac"):
            verdict = UPHOLD if pending["action"] == "au" else CORRECT
            view = await svc.town_review.decide_appeal(pending["id"], who, verdict, message.text, pending.get("ledger"))
        else:
            return ConversationHandler.END
    except DomainError as error:
        await reply(update, refusal(update, error))
        if error.key in ASK_AGAIN:
            return REASON  # type it again
        context.user_data.pop(DRAFT, None)
        return ConversationHandler.END
    context.user_data.pop(DRAFT, None)
    if pending["action"] == "rb":
        await _sent_back(update, context, review)
    else:
        await _appeal_decided(update, context, view)
    return ConversationHandler.END


async def _appeal_decided(update: Update, context: Context, view: AppealView) -> None:
    assert update.effective_user is not None
    tr = translator(update)
    by = update.effective_user.full_name
    await reply(update, tr("town_review.decided", number=view.appeal.id) + "\n" + appeal_outcome(tr, view))
    town_tr = _town_tr(view)
    await _edit_cards(context, "appeal", view.appeal.id,
                      lambda _chat: appeal_card(town_tr, view) + "\n\n" + appeal_outcome(town_tr, view, by))
    await _tell_people(context, view, "town_review.told_decided")
    svc = services(context)
    for person in await svc.town_review.branch_told(view.branch.id):
        ptr = member_tr(person, view.branch)
        text = ptr("town_review.told_branch", number=view.appeal.id, town=view.town.name, branch=view.branch.title) \
            + "\n" + appeal_card(ptr, view) + "\n\n" + appeal_outcome(ptr, view)
        markup = None
        if view.appeal.status == CORRECT and person.id != view.member.id:
            text += "\n" + ptr("town_review.apply_hint")
            markup = InlineKeyboardMarkup([[InlineKeyboardButton(ptr("town_review.apply_button"),
                                                                 callback_data=f"tv:ap:{view.appeal.id}")]])
        await send_private(context, person.user_id, text, reply_markup=markup)  # type: ignore[arg-type]


async def _tell_people(context: Context, view: AppealView, key: str) -> None:
    """The appellant and, when someone else appealed, the member whose points it is."""
    people = [view.appellant] + ([view.member] if view.member.id != view.appellant.id else [])
    for person in people:
        if person.user_id is None:
            continue
        ptr = member_tr(person, view.branch)
        await send_private(context, person.user_id, ptr(key, number=view.appeal.id, objection=view.objection.id,
                                                        town=view.town.name) + "\n" + appeal_outcome(ptr, view))


@domain_errors
async def apply_button(update: Update, context: Context) -> None:
    """The branch's secretary or deputy writes the correction the town ordered."""
    query = update.callback_query
    assert query is not None and query.data is not None
    svc = services(context)
    number = int(query.data.split(":")[2])
    try:
        view = await svc.town_review.apply_correction(number, actor(query.from_user))
    except InvalidInput as error:
        if error.key == REVERSED_MEANWHILE:  # the secretary is refused (below); the town hears why, once
            await _tell_town_blocked(context, number, error)
        raise
    tr = translator(update, view.branch)
    assert view.correction is not None
    await answer(query, tr("town_review.applied", number=view.appeal.id, row=view.correction.id))
    await edit_or_send(query, appeal_card(tr, view) + "\n\n" + appeal_outcome(tr, view))
    await _tell_people(context, view, "town_review.told_corrected")
    town_tr = _town_tr(view)
    for user_id in await svc.town_review.admins(view.town.id):
        await send_private(context, user_id, town_tr("town_review.told_town_corrected", branch=view.branch.title,
                                                     number=view.appeal.id, row=view.correction.id))


async def _tell_town_blocked(context: Context, number: int, error: InvalidInput) -> None:
    """The ordered correction cannot be recorded: its entry was reversed by something else meanwhile.
    Each administrator is told once per appeal (a repeated press tells nobody again)."""
    svc = services(context)
    view = await svc.town_review.appeal_view(number)
    town_tr = _town_tr(view)
    text = town_tr("town_review.told_town_blocked", branch=view.branch.title, number=number,
                   entry=error.params.get("entry"), row=error.params.get("row"))
    for user_id in await svc.town_review.admins(view.town.id):
        if await svc.towns.claim_send(view.town.id, "correction_blocked", str(number), user_id):
            sent = await send_private(context, user_id, text)
            await svc.towns.finish_send(view.town.id, "correction_blocked", str(number), user_id, reached=sent is not None)


# --- the year-end review ------------------------------------------------------------------------------------


async def submitted(update: Update, context: Context, view: ReviewView) -> None:
    """After the secretary's confirmation in a branch of a town: the secretary is told, the town gets
    the result to review (handlers/grading.confirm_button calls this)."""
    query = update.callback_query
    tr = translator(update, view.branch)
    if query is not None:
        await answer(query, tr("town_review.submitted_popup", town=view.town.name))
        try:
            await query.edit_message_reply_markup(None)
        except BadRequest as exc:
            log.debug("could not clear the grading buttons: %s", exc)
    await reply(update, tr("town_review.submitted", year=view.review.year, town=view.town.name),
                reply_markup=withdraw_keyboard(tr, view.review.id))
    svc = services(context)
    reached = 0
    for user_id in await svc.town_review.admins(view.town.id):
        ttr = _town_tr(view)
        pieces = pack(review_blocks(ttr, view))
        sent = None
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            sent = await send_private(context, user_id, piece, **({"reply_markup": review_keyboard(ttr, view)} if last else {}))
            if sent is None:
                break
        if sent is not None:
            reached += 1
            await svc.town_review.remember_card("review", view.review.id, sent.chat_id, sent.message_id)
    if reached == 0:
        await reply(update, tr("town_review.no_admin", town=view.town.name))


@domain_errors
async def approve_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    svc = services(context)
    approval = await svc.town_review.approve(int(query.data.split(":")[2]), actor(query.from_user))
    view = approval.view
    tr = translator(update)
    year, by = view.review.year, query.from_user.full_name
    secretary = view.secretary
    str_ = member_tr(secretary, view.branch) if secretary is not None else Translator(view.branch.language)
    if approval.round_id is None:  # the figures changed since the confirmation
        await answer(query, tr("town_review.stale_popup"), alert=True)
        await _edit_cards(context, "review", view.review.id,
                          lambda _chat: _town_tr(view)("town_review.review_stale", branch=view.branch.title, year=year))
        if secretary is not None and secretary.user_id is not None:
            await send_private(context, secretary.user_id, str_("town_review.told_stale", year=year, town=view.town.name))
        return
    await answer(query, tr("town_review.approved_popup", branch=view.branch.title, year=year))
    await _edit_cards(context, "review", view.review.id, lambda _chat: _town_tr(view)(
        "town_review.review_approved", branch=view.branch.title, year=year, by=by))
    assert approval.notice_key is not None
    sent = await publish_now(context.application, view.branch, approval.round_id, approval.notice_key)
    publicity = await svc.grading.publicity(view.branch, approval.round_id)
    if secretary is not None and secretary.user_id is not None:
        if sent and publicity.notice.sent:
            text = str_("town_review.told_approved", year=year, town=view.town.name,
                        closes=local_time(publicity.notice.closes_at, view.branch), days=publicity.round.publicity_days)
        else:
            text = str_("town_review.told_approved_retry", year=year, town=view.town.name)
        await send_private(context, secretary.user_id, text)


async def _sent_back(update: Update, context: Context, view: ReviewView) -> None:
    assert update.effective_user is not None
    tr = translator(update)
    year, by = view.review.year, update.effective_user.full_name
    await reply(update, tr("town_review.sent_back", branch=view.branch.title, year=year))
    await _edit_cards(context, "review", view.review.id, lambda _chat: _town_tr(view)(
        "town_review.review_returned", branch=view.branch.title, year=year, by=by, reason=view.review.reason or ""))
    secretary = view.secretary
    if secretary is not None and secretary.user_id is not None:
        str_ = member_tr(secretary, view.branch)
        await send_private(context, secretary.user_id, str_("town_review.told_returned", year=year, town=view.town.name,
                                                            reason=view.review.reason or ""))


@domain_errors
async def withdraw_button(update: Update, context: Context) -> None:
    """The secretary takes back a submission still waiting for the town (the button under "submitted")."""
    query = update.callback_query
    assert query is not None and query.data is not None
    view = await services(context).town_review.withdraw(actor(query.from_user), review_id=int(query.data.split(":")[2]))
    await answer(query, translator(update, view.branch)("town_review.withdrawn_popup"))
    try:
        await query.edit_message_reply_markup(None)
    except BadRequest as exc:
        log.debug("could not clear the withdraw button: %s", exc)
    await _withdrawn(update, context, view)


@domain_errors
async def townwithdraw_command(update: Update, context: Context) -> None:
    """/townwithdraw [YEAR]: the same, by command (the branch's waiting submission, of YEAR or any year)."""
    assert update.effective_user is not None
    args = list(context.args or [])
    if len(args) > 1 or (args and not _YEAR.match(args[0])):
        raise InvalidInput("town_review.townwithdraw_usage")
    branch = await current_branch(update, context)
    view = await services(context).town_review.withdraw(actor(update.effective_user), branch=branch,
                                                        year=int(args[0]) if args else None)
    await _withdrawn(update, context, view)


async def _withdrawn(update: Update, context: Context, view: ReviewView) -> None:
    assert update.effective_user is not None
    tr = translator(update, view.branch)
    year, by = view.review.year, update.effective_user.full_name
    await reply(update, tr("town_review.withdrawn", year=year, town=view.town.name))
    await _edit_cards(context, "review", view.review.id, lambda _chat: _town_tr(view)(
        "town_review.review_withdrawn", branch=view.branch.title, year=year, by=by))


# --- what waits for the town: /townqueue ------------------------------------------------------------------


async def _send_queue(update: Update, context: Context, kind: str, after: int) -> None:
    """One page of the administrator's queue: every open appeal and pending review as its card with its
    decision buttons (each card its own message, a long result packed into several ≤ 4096), remembered so
    that a decision shows on every copy; a button for the next page."""
    user = update.effective_user
    assert user is not None
    svc = services(context)
    page = await svc.town_review.queue(actor(user), kind, after)  # refuses anyone who administers no town
    if update.callback_query is not None:
        await answer(update.callback_query)
    tr = translator(update)
    first = kind == "a" and after == 0
    if first and not page.appeals and not page.reviews:
        await send_private(context, user.id, tr("town_review.queue_empty"))
        return
    if first:
        await send_private(context, user.id, tr("town_review.queue_header", appeals=page.appeals_waiting,
                                                reviews=page.reviews_waiting))
    for view in page.appeals:
        ttr = _town_tr(view)
        sent = await send_private(context, user.id, appeal_card(ttr, view), reply_markup=appeal_keyboard(ttr, view))
        if sent is not None:
            await svc.town_review.remember_card("appeal", view.appeal.id, sent.chat_id, sent.message_id)
    for review in page.reviews:
        ttr = _town_tr(review)
        pieces = pack(review_blocks(ttr, review))
        sent = None
        for index, piece in enumerate(pieces):
            markup = {"reply_markup": review_keyboard(ttr, review)} if index == len(pieces) - 1 else {}
            sent = await send_private(context, user.id, piece, **markup)
        if sent is not None:
            await svc.town_review.remember_card("review", review.review.id, sent.chat_id, sent.message_id)
    if page.more is not None:
        more_kind, more_after = page.more
        await send_private(context, user.id, tr("town_review.queue_more"), reply_markup=InlineKeyboardMarkup([[
            InlineKeyboardButton(tr("town_review.queue_more_button"), callback_data=f"tv:q:{more_kind}:{more_after}")]]))


@domain_errors
async def townqueue_command(update: Update, context: Context) -> None:
    if not is_private(update):
        await reply(update, translator(update)("town_review.go_private"))
        return
    assert update.effective_user is not None
    await services(context).towns.seen(update.effective_user.id)  # they wrote: reachable for the next cards
    await _send_queue(update, context, "a", 0)


@domain_errors
async def queue_press(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    _, _, kind, after = query.data.split(":")
    await _send_queue(update, context, kind, int(after))


# --- closed without the town's decision ------------------------------------------------------------------


async def cards_closed(app: Application, town_tr: Translator, branch_title: str, town_name: str,
                       reviews: list, appeals: list) -> None:
    """The administrators' cards of what closed when the branch left the town lose their buttons."""
    for review in reviews:
        await _edit_cards(app, "review", review.id, lambda _chat, year=review.year: town_tr(
            "town_review.review_closed", branch=branch_title, year=year, town=town_name))
    for appeal in appeals:
        await _edit_cards(app, "appeal", appeal.id, lambda _chat, number=appeal.id: town_tr(
            "town_review.appeal_closed", branch=branch_title, number=number, town=town_name))


# --- filing (备案) --------------------------------------------------------------------------------------------


async def tell_filed(app: Application, view: FinalView) -> str | None:
    """After finalisation in a branch of a town: its administrators hear that the year was filed (the
    filing itself was recorded with the lock). Returns the town's name, None without a town."""
    svc: Services = app.bot_data["services"]
    town = await svc.town_review.town_of(view.branch)
    if town is None:
        return None
    tr = Translator(town.language)
    for user_id in await svc.town_review.admins(town.id):
        await send_private(app, user_id, tr("town_review.told_filed", branch=view.branch.title, year=view.round.year,
                                            command=f"/townfile {view.round.year}"),
                           reply_markup=InlineKeyboardMarkup([[filing_button(tr, town.id, view.round.year)]]))
    return town.name


async def tell_reopened(app: Application, view: ReopenView) -> None:
    """After /reopen of a year the branch had filed with its town: the town's administrators hear it, with
    the reason (the filing is void until the branch finalises again). /reopen succeeds once per round, so a
    repeated or retried command tells nobody twice."""
    svc: Services = app.bot_data["services"]
    town = await svc.town_review.filed_town(view.branch, view.round.year)
    if town is None:
        return
    tr = Translator(town.language)
    for user_id in await svc.town_review.admins(town.id):
        await send_private(app, user_id, tr("town_review.told_reopened", branch=view.branch.title, year=view.round.year,
                                            by=view.by.name, reason=view.reopen.reason))


async def _send_filing(update: Update, context: Context, town_id: int, year: int) -> None:
    svc = services(context)
    chat, user = update.effective_chat, update.effective_user
    assert chat is not None and user is not None
    tr = translator(update)
    name, data, filed, total = await svc.town_review.filing_workbook(town_id, actor(user), year, tr.lang)
    await context.bot.send_document(chat.id, document=InputFile(data, filename=name),
                                    caption=tr("town_review.filing_caption", year=year, filed=filed, total=total))


@domain_errors
async def townfile_command(update: Update, context: Context) -> None:
    tr = translator(update)
    if not is_private(update):
        await reply(update, tr("town_review.go_private"))
        return
    assert update.effective_user is not None
    svc = services(context)
    args = list(context.args or [])
    if len(args) > 1 or (args and not _YEAR.match(args[0])):
        raise InvalidInput("town_review.townfile_usage")
    for town in await svc.town_review.towns_of(actor(update.effective_user)):
        year = int(args[0]) if args else await svc.town_review.default_filing_year(town)  # in the town's timezone
        await _send_filing(update, context, town.id, year)


@domain_errors
async def filing_press(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    _, _, town_id, year = query.data.split(":")
    await services(context).town_review.check_filing(int(town_id), actor(query.from_user), int(year))
    await answer(query)  # now: building and uploading the workbook may take longer than a press may wait
    await _send_filing(update, context, int(town_id), int(year))


def register(app: Application) -> None:
    """Add this module's handlers (called in bot.app.register_handlers)."""
    private = filters.ChatType.PRIVATE
    app.add_handler(ConversationHandler(
        entry_points=[
            CallbackQueryHandler(uphold_button, pattern=r"^tv:au:\d{1,12}$"),
            CallbackQueryHandler(correct_button, pattern=r"^tv:ac:\d{1,12}$"),
            CallbackQueryHandler(entry_button, pattern=r"^tv:ae:\d{1,12}:\d{1,12}$"),
            CallbackQueryHandler(send_back_button, pattern=r"^tv:rb:\d{1,12}$"),
        ],
        states={REASON: [MessageHandler(filters.TEXT & ~filters.COMMAND & private, reason_text)]},
        fallbacks=[CommandHandler("cancel", cancel), CallbackQueryHandler(cancel, pattern=f"^{CANCEL}$"),
                   FlowInProgress(app, "town_review_reason")],
        name="town-review-reason", allow_reentry=True, per_message=False,
    ))
    app.add_handler(CallbackQueryHandler(cancel, pattern=f"^{CANCEL}$"))
    app.add_handler(CallbackQueryHandler(apply_button, pattern=r"^tv:ap:\d{1,12}$"))
    app.add_handler(CallbackQueryHandler(approve_button, pattern=r"^tv:ra:\d{1,12}$"))
    app.add_handler(CallbackQueryHandler(filing_press, pattern=r"^tv:f:\d{1,12}:\d{4}$"))
    app.add_handler(CallbackQueryHandler(withdraw_button, pattern=r"^tv:rw:\d{1,12}$"))
    app.add_handler(CallbackQueryHandler(queue_press, pattern=r"^tv:q:[ar]:\d{1,12}$"))
    app.add_handler(CommandHandler("townfile", townfile_command))
    app.add_handler(CommandHandler("townqueue", townqueue_command))
    app.add_handler(CommandHandler("townwithdraw", townwithdraw_command))


__all__ = ["register", "appeal_to_town", "submitted", "tell_filed", "tell_reopened", "filing_button", "queue_button",
           "cards_closed"]
