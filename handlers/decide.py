"""The recorder's buttons on a declaration: Approve / Adjust / Reject (with a reason)."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal, InvalidOperation

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import Forbidden, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.domain.records import Branch, Declaration, Member
from bot.domain.rulebook import ItemKind
from bot.errors import DomainError
from bot.i18n import Translator, language_of
from bot.services.branches import rulebook_of
from bot.services.declarations import Decision, Verdict, adjustable_values
from handlers.common import Context, FlowInProgress, actor, answer, domain_errors, reply, send_private, services, translator
from handlers.guided import REASON, ReasonStep

log = logging.getLogger(__name__)


def card(tr: Translator, branch: Branch, declaration: Declaration, member: Member) -> str:
    rulebook = rulebook_of(branch)
    item = rulebook.item(declaration.item_code)
    category = rulebook.category_of(declaration.item_code)
    return tr(
        "decision.card", number=declaration.id, branch=branch.title, name=member.name,
        category=category.name.get(tr.lang) if category else "?", item=item.name.get(tr.lang) if item else declaration.item_code,
        value=declaration.value, date=declaration.occurred_on.isoformat(), place=declaration.place,
        text=declaration.description,
    )


def keyboard(tr: Translator, branch: Branch, declaration: Declaration) -> InlineKeyboardMarkup:
    item = rulebook_of(branch).item(declaration.item_code)
    number = declaration.id
    row = [InlineKeyboardButton(tr("decision.approve", value=declaration.value), callback_data=f"dc:ok:{number}")]
    if item is not None and item.kind is ItemKind.RANGED:  # Adjust: the values the item's range allows
        row.append(InlineKeyboardButton(tr("decision.choose_value"), callback_data=f"dc:adj:{number}"))
    row.append(InlineKeyboardButton(tr("decision.reject"), callback_data=f"dc:rj:{number}"))
    return InlineKeyboardMarkup([row])


def outcome(tr: Translator, decision: Decision) -> str:
    d = decision.declaration
    if d.status.value == "approved":
        return tr("decision.outcome_approved", number=d.id, name=decision.member.name, value=d.decided_value, by=decision.decider.name)
    return tr("decision.outcome_rejected", number=d.id, name=decision.member.name, by=decision.decider.name, reason=d.decision_reason or "")


async def send_to_deciders(context: Context, branch: Branch, declaration: Declaration) -> int:
    """Send the card to every decider who can be reached; returns how many were."""
    svc = services(context)
    member = await svc.roster.member_of_id(declaration.member_id)
    reached = 0
    for decider in await svc.declarations.deciders(declaration):
        tr = Translator(language_of(decider.language, branch.language))
        try:
            if declaration.photo_file_id:
                await context.bot.send_photo(decider.user_id, declaration.photo_file_id)  # type: ignore[arg-type]
            sent = await context.bot.send_message(
                decider.user_id, card(tr, branch, declaration, member), reply_markup=keyboard(tr, branch, declaration)  # type: ignore[arg-type]
            )
        except Forbidden:
            log.info("decider %s has not started the bot or blocked it", decider.id)
            continue
        await svc.declarations.remember_message(declaration.id, sent.chat_id, sent.message_id)
        reached += 1
    return reached


async def _publish(context: Context, update: Update, decision: Decision, told: tuple[str, str] | None = None) -> None:
    """Show the decision on every copy of the card and tell the member. ``told``: (language, text) of the
    outcome the presser was already shown, reused when the card's language is the same."""
    tr = translator(update, decision.branch)  # the presser's language
    await show_decision(context, decision, tr, told[1] if told is not None and told[0] == tr.lang else None)


async def show_decision(context: Context, decision: Decision, tr: Translator, said: str | None = None) -> None:
    """Edit every copy of the card (in ``tr``'s language) and tell the member; then mark the decision
    shown. Not marked when the task is cancelled (the process stopping) or never gets there (killed):
    the sweep (schedules/decisions.py) shows it later. A send that failed is not repeated: a timeout
    may have been delivered, and the decision stands whatever became of a message about it."""
    try:
        await _show(context, decision, tr, said)
    except asyncio.CancelledError:
        raise
    except Exception:
        await services(context).declarations.published(decision.declaration.id)
        raise
    await services(context).declarations.published(decision.declaration.id)


async def _show(context: Context, decision: Decision, tr: Translator, said: str | None) -> None:
    branch = decision.branch  # the decision's transaction read it, and the copies of the card
    text = card(tr, branch, decision.declaration, decision.member) + "\n\n" + (said or outcome(tr, decision))
    for chat_id, message_id in decision.messages:
        try:
            await context.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)
        except TelegramError as exc:  # deleted or unchanged message, a timeout: the decision stands
            log.info("could not edit the card of declaration %s: %s", decision.declaration.id, exc)
    if decision.member.user_id is not None:
        member_tr = Translator(language_of(decision.member.language, branch.language))
        d = decision.declaration
        key = "decision.told_approved" if d.status.value == "approved" else "decision.told_rejected"
        try:
            await send_private(context, decision.member.user_id, member_tr(
                key, number=d.id, value=d.decided_value or 0, by=decision.decider.name, reason=d.decision_reason or "-"))
        except TelegramError as exc:  # not the presser's error: the decision is made and shown to them
            log.warning("could not tell member %s of the decision on declaration %s: %s", decision.member.id, d.id, exc)


def _parse(data: str) -> tuple[str, int, str | None]:
    parts = data.split(":")
    return parts[1], int(parts[2]), parts[3] if len(parts) > 3 else None


@domain_errors
async def approve(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    _, number, raw_value = _parse(query.data)
    value = None
    if raw_value is not None:
        try:
            value = Decimal(raw_value)
        except InvalidOperation:
            value = Decimal("NaN")  # refused by the rulebook like any other illegal value
    decision = await services(context).declarations.decide(number, actor(query.from_user), Verdict.APPROVE, value=value)
    tr = translator(update)
    told = outcome(tr, decision)
    try:
        await answer(query, told)
    finally:  # the decision is committed: shown now even if the popup could not be (else the sweep, minutes later)
        await _publish(context, update, decision, (tr.lang, told))


@domain_errors
async def adjust(update: Update, context: Context) -> None:
    """Offer the values the item's range allows (checked: only a decider sees them)."""
    query = update.callback_query
    assert query is not None and query.data is not None
    _, number, _ = _parse(query.data)
    declaration, branch, _member = await services(context).declarations.view(number, actor(query.from_user))
    tr = translator(update, branch)
    rulebook = rulebook_of(branch)
    item = rulebook.item(declaration.item_code)
    values = adjustable_values(item, rulebook.posts_per_member) if item else []
    if not values:
        await answer(query, tr("decision.nothing_to_adjust"), alert=True)
        return
    await answer(query)
    buttons = [InlineKeyboardButton(f"{v.normalize():f}", callback_data=f"dc:v:{number}:{v.normalize():f}") for v in values]
    rows = [buttons[i:i + 6] for i in range(0, len(buttons), 6)]
    rows.append([InlineKeyboardButton(tr("common.back"), callback_data=f"dc:bk:{number}")])
    await query.edit_message_reply_markup(InlineKeyboardMarkup(rows))


@domain_errors
async def back(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    _, number, _ = _parse(query.data)
    declaration, branch, _member = await services(context).declarations.view(number, actor(query.from_user))
    await answer(query)
    await query.edit_message_reply_markup(keyboard(translator(update, branch), branch, declaration))


async def _ask_reject_reason(update: Update, context: Context, number: int) -> str:
    assert update.callback_query is not None
    declaration, branch, member = await services(context).declarations.view(number, actor(update.callback_query.from_user))
    if declaration.status.value != "pending":
        raise DomainError("decision.already", status=declaration.status.value)
    return translator(update, branch)("decision.ask_reason", number=number, name=member.name)


async def _reject(update: Update, context: Context, number: int, reason: str | None) -> Decision:
    assert update.effective_user is not None
    return await services(context).declarations.decide(number, actor(update.effective_user), Verdict.REJECT, reason=reason)


async def _rejected(update: Update, context: Context, decision: Decision) -> None:
    tr = translator(update)
    told = outcome(tr, decision)
    try:
        await reply(update, told)
    finally:  # as approve: the committed decision is shown even if the decider's reply failed
        await _publish(context, update, decision, (tr.lang, told))


REJECTING = ReasonStep(store_key="rejecting", ask_again=("decision.reason_required", "text.too_long"),
                       ask=_ask_reject_reason, decide=_reject, done=_rejected)
reject_start, reject_reason, reject_cancel = REJECTING.start, REJECTING.reason, REJECTING.cancel


def register(app: Application) -> None:
    app.add_handler(CallbackQueryHandler(approve, pattern=r"^dc:(ok:\d{1,12}|v:\d{1,12}:[^:]{1,12})$"))
    app.add_handler(CallbackQueryHandler(adjust, pattern=r"^dc:adj:\d{1,12}$"))
    app.add_handler(CallbackQueryHandler(back, pattern=r"^dc:bk:\d{1,12}$"))
    app.add_handler(ConversationHandler(
        entry_points=[CallbackQueryHandler(reject_start, pattern=r"^dc:rj:\d{1,12}$")],
        states={REASON: [MessageHandler(filters.TEXT & ~filters.COMMAND & filters.ChatType.PRIVATE, reject_reason)]},
        fallbacks=[CommandHandler("cancel", reject_cancel), FlowInProgress(app, "reject")],
        name="reject", allow_reentry=True, per_message=False,
    ))
