"""/report: a migrant member's quarterly report of thought and work (text, optional photo, confirm);
the recorder's Accept / Return (with a reason); /migrants: the quarter's reports for the recorder.

Callback data (prefix "mg:", none trusted — the service re-checks the presser):
  mg:new:B          start the report (the quarter's ask carries it)
  mg:np / mg:go / mg:x   no photo / submit / cancel (inside the flow)
  mg:ok:R / mg:rt:R      accept / return report R
"""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.domain.dues import REPORT_MAX, MigrantReport, is_quarter
from bot.domain.records import Branch, Member
from bot.errors import DomainError
from bot.i18n import Safe, Translator, language_of
from bot.services.migrants import Overview, Review
from handlers.common import (
    FlowInProgress,
    point_to_private,
    Context,
    actor,
    answer,
    conversation_exits,
    current_branch,
    domain_errors,
    is_private,
    refusal,
    reply,
    send_private,
    services,
    translator,
)
from handlers.guided import REASON, DraftSteps, ReasonStep

log = logging.getLogger(__name__)

# Commands this module adds to the menus, by scope; each needs a menu.<command> catalog entry.
MENU: dict[str, tuple[str, ...]] = {"private": ("report", "migrants"), "group": (), "admin": ()}

TEXT, PHOTO, CONFIRM = range(3)
STEPS = DraftSteps(draft_key="migrant", catalog="migrant", data="mg", submit_data="mg:go")
CANCEL = STEPS.cancel_data
_cancel_row = STEPS.cancel_row
_branch = STEPS.branch


def card(tr: Translator, branch: Branch, report: MigrantReport, member: Member) -> str:
    return tr("migrant.card", number=report.id, branch=branch.title, name=member.name, quarter=report.quarter,
              body=report.body, photo=tr("common.yes") if report.photo_file_id else tr("common.no"))


def keyboard(tr: Translator, report: MigrantReport) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(tr("migrant.accept"), callback_data=f"mg:ok:{report.id}"),
                                  InlineKeyboardButton(tr("migrant.return"), callback_data=f"mg:rt:{report.id}")]])


def outcome(tr: Translator, review: Review) -> str:
    if review.report.status.value == "accepted":
        return tr("migrant.outcome_accepted", by=review.reviewer.name)
    return tr("migrant.outcome_returned", by=review.reviewer.name, reason=review.report.reason or "")


# --- the migrant's report -------------------------------------------------------------------------


async def _begin(update: Update, context: Context, branch: Branch) -> int:
    tr = translator(update, branch)
    assert update.effective_user is not None
    _, quarter = await services(context).migrants.start(branch, actor(update.effective_user))
    context.user_data["migrant"] = {"branch_id": branch.id, "quarter": quarter}
    await context.bot.send_message(update.effective_user.id, tr("migrant.ask_text", branch=branch.title, quarter=quarter, limit=REPORT_MAX),
                                   reply_markup=InlineKeyboardMarkup([_cancel_row(tr)]))
    return TEXT


async def start(update: Update, context: Context) -> int:
    try:
        return await _begin(update, context, await current_branch(update, context))
    except DomainError as error:
        await reply(update, refusal(update, error))
        return ConversationHandler.END


async def start_button(update: Update, context: Context) -> int:
    query = update.callback_query
    assert query is not None and query.data is not None
    try:
        branch = await services(context).branches.by_id(int(query.data.split(":")[2]))
        result = await _begin(update, context, branch)
    except DomainError as error:
        await answer(query, refusal(update, error), alert=True)
        return ConversationHandler.END
    await answer(query)
    return result


async def in_group(update: Update, context: Context) -> None:
    await point_to_private(update, context, "migrant.go_private")


async def body_text(update: Update, context: Context) -> int:
    branch = await _branch(context)
    if not await STEPS.take_text(update, context, branch, "body", services(context).migrants.check_body):
        return TEXT
    await STEPS.ask_photo(update, translator(update, branch))
    return PHOTO


async def _show_confirm(update: Update, context: Context) -> int:
    branch = await _branch(context)
    tr = translator(update, branch)
    draft = context.user_data["migrant"]
    summary = tr("migrant.confirm", quarter=draft["quarter"], body=draft["body"],
                 photo=tr("common.yes") if draft.get("photo") else tr("common.no"))
    await STEPS.show_confirm(update, context, tr, summary)
    return CONFIRM


photo_sent, no_photo = STEPS.photo_handlers(_show_confirm)


async def send_to_reviewers(context: Context, branch: Branch, report: MigrantReport, member: Member) -> int:
    svc = services(context)
    reached = 0
    for reviewer in await svc.migrants.reviewers(report):  # each has a Telegram account
        tr = Translator(language_of(reviewer.language, branch.language))
        if report.photo_file_id:
            try:  # the evidence first, so that the card with its buttons comes last
                await context.bot.send_photo(reviewer.user_id, report.photo_file_id)  # type: ignore[arg-type]
            except (BadRequest, Forbidden) as exc:  # unreachable: send_private below says so; a bad photo: the card still goes
                log.info("could not send report %s's photo to reviewer %s: %s", report.id, reviewer.id, exc)
        sent = await send_private(context, reviewer.user_id, card(tr, branch, report, member),  # type: ignore[arg-type]
                                  reply_markup=keyboard(tr, report))
        if sent is None:
            continue
        await svc.migrants.remember_message(report.id, sent.chat_id, sent.message_id)
        reached += 1
    return reached


async def confirmed(update: Update, context: Context) -> int:
    query = update.callback_query
    assert query is not None and query.message is not None
    branch = await _branch(context)
    tr = translator(update, branch)
    draft = context.user_data.get("migrant", {})
    try:
        submitted = await services(context).migrants.submit(
            branch, actor(query.from_user), draft.get("body", ""), draft.get("photo"),
            client_key=f"{query.message.chat.id}:{query.message.message_id}",
        )
    except DomainError as error:
        await answer(query, refusal(update, error, branch), alert=True)
        context.user_data.pop("migrant", None)
        return ConversationHandler.END
    await answer(query, tr("migrant.submitted_short"))
    context.user_data.pop("migrant", None)
    await query.edit_message_text(tr("migrant.submitted", number=submitted.report.id, quarter=submitted.report.quarter))
    if submitted.created and not await send_to_reviewers(context, branch, submitted.report, submitted.member):
        await context.bot.send_message(query.from_user.id, tr("migrant.no_reviewer_reachable"))
    return ConversationHandler.END


cancel, unexpected = conversation_exits("migrant", "migrant")


# --- the recorder's review ------------------------------------------------------------------------


async def _publish(context: Context, update: Update, review: Review) -> None:
    """Show the outcome on every copy of the card, and tell the member."""
    svc = services(context)
    tr = translator(update, review.branch)
    text = card(tr, review.branch, review.report, review.member) + "\n\n" + outcome(tr, review)
    for chat_id, message_id in await svc.migrants.messages(review.report.id):
        try:
            await context.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)
        except (BadRequest, Forbidden) as exc:
            log.debug("could not edit a migrant report card: %s", exc)
    member = review.member
    if member.user_id is not None:
        member_tr = Translator(language_of(member.language, review.branch.language))
        if review.report.status.value == "accepted":
            told = member_tr("migrant.told_accepted", quarter=review.report.quarter, by=review.reviewer.name)
        elif review.resend_until is not None:  # the quarter is over: say which one, and until when
            until = review.resend_until.astimezone(ZoneInfo(review.branch.timezone)).strftime("%Y-%m-%d %H:%M")
            told = member_tr("migrant.told_returned_closed", quarter=review.report.quarter, by=review.reviewer.name,
                             reason=review.report.reason or "", until=until)
        else:
            told = member_tr("migrant.told_returned", quarter=review.report.quarter, by=review.reviewer.name,
                             reason=review.report.reason or "")
        await send_private(context, member.user_id, told)


@domain_errors
async def accept(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    review = await services(context).migrants.review(int(query.data.split(":")[2]), actor(query.from_user), accept=True)
    await answer(query, outcome(translator(update, review.branch), review))
    await _publish(context, update, review)


async def _ask_return_reason(update: Update, context: Context, number: int) -> str:
    assert update.callback_query is not None
    branch, _report, member = await services(context).migrants.view(number, actor(update.callback_query.from_user))
    return translator(update, branch)("migrant.ask_reason", number=number, name=member.name)


async def _return(update: Update, context: Context, number: int, reason: str | None) -> Review:
    assert update.effective_user is not None
    return await services(context).migrants.review(number, actor(update.effective_user), accept=False, reason=reason)


async def _returned(update: Update, context: Context, review: Review) -> None:
    await reply(update, outcome(translator(update, review.branch), review))
    await _publish(context, update, review)


RETURNING = ReasonStep(store_key="returning", ask_again=("migrant.reason_required", "text.too_long"),
                       ask=_ask_return_reason, decide=_return, done=_returned)
return_start, return_reason, return_cancel = RETURNING.start, RETURNING.reason, RETURNING.cancel


# --- /migrants ------------------------------------------------------------------------------------


def overview_text(tr: Translator, branch: Branch, overview: Overview) -> str:
    lines = [tr("migrant.overview_header", branch=branch.title, quarter=overview.quarter,
                closed=Safe(tr("migrant.closed_mark") if overview.closed else ""))]
    if not overview.lines:
        lines.append(tr("migrant.overview_empty"))
    for line in overview.lines:
        if line.missing:  # recorded at a close (a report returned and not sent again in time included)
            state = tr("migrant.state.missing")
        elif line.report is not None:
            state = tr(f"migrant.state.{line.report.status.value}", number=line.report.id)
        else:
            state = tr("migrant.state.none")
        lines.append(tr("migrant.overview_line", name=line.member.name, state=state))
    return "\n".join(lines)


@domain_errors
async def migrants_command(update: Update, context: Context) -> None:
    if not is_private(update):
        await in_group(update, context)
        return
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    args = context.args or []
    quarter = args[0].upper() if args else None
    if quarter is not None and not is_quarter(quarter):
        await reply(update, tr("migrant.overview_usage"))
        return
    assert update.effective_user is not None
    overview = await services(context).migrants.overview(branch, actor(update.effective_user), quarter)
    await reply(update, overview_text(tr, branch, overview))


def register(app: Application) -> None:
    """Add this module's handlers (called in bot.app.register_handlers)."""
    private = filters.ChatType.PRIVATE
    text = filters.TEXT & ~filters.COMMAND & private
    cancel_button = CallbackQueryHandler(cancel, pattern=f"^{CANCEL}$")
    app.add_handler(CommandHandler("report", in_group, filters=filters.ChatType.GROUPS))
    app.add_handler(ConversationHandler(
        entry_points=[CommandHandler("report", start, filters=private),
                      CallbackQueryHandler(start_button, pattern=r"^mg:new:\d{1,12}$")],
        states={
            TEXT: [MessageHandler(text, body_text), cancel_button],
            PHOTO: [MessageHandler(filters.PHOTO & private, photo_sent), CallbackQueryHandler(no_photo, pattern=r"^mg:np$"),
                    cancel_button],
            CONFIRM: [CallbackQueryHandler(confirmed, pattern=r"^mg:go$"), cancel_button],
        },
        fallbacks=[CommandHandler("cancel", cancel), CallbackQueryHandler(unexpected, pattern=r"^mg:(np|go|x)$"),
                   MessageHandler(private & ~filters.COMMAND, unexpected), FlowInProgress(app, "migrant_report")],
        name="migrant_report", allow_reentry=True,
    ))
    app.add_handler(CallbackQueryHandler(accept, pattern=r"^mg:ok:\d{1,12}$"))
    app.add_handler(ConversationHandler(
        entry_points=[CallbackQueryHandler(return_start, pattern=r"^mg:rt:\d{1,12}$")],
        states={REASON: [MessageHandler(text, return_reason)]},
        fallbacks=[CommandHandler("cancel", return_cancel), FlowInProgress(app, "migrant_return")],
        name="migrant_return", allow_reentry=True,
    ))
    app.add_handler(CommandHandler("migrants", migrants_command))
    # A flow button pressed after the flow ended (a double tap, an old message).
    app.add_handler(CallbackQueryHandler(unexpected, pattern=r"^mg:(np|go|x)$"))
