"""/declare: the member's guided flow in private (item → date → place → what happened → photo → confirm)."""

from __future__ import annotations

from datetime import date, timedelta

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.domain.records import Branch
from bot.errors import DomainError
from bot.services.declarations import Draft, declared_value
from bot.services.branches import rulebook_of
from handlers.common import (Context, FlowInProgress, actor, answer, conversation_exits, current_branch, domain_errors, refusal, reply,
                             services, translator, point_to_private)
from handlers.decide import send_to_deciders
from handlers.guided import DraftSteps

CATEGORY, ITEM, DATE, PLACE, TEXT, PHOTO, CONFIRM = range(7)
STEPS = DraftSteps(draft_key="draft", catalog="declare", data="dl", submit_data="dl:ok")
CANCEL = STEPS.cancel_data
_cancel_row = STEPS.cancel_row
_branch = STEPS.branch


def _categories_keyboard(tr, branch: Branch) -> InlineKeyboardMarkup:
    rulebook = rulebook_of(branch)
    seen: list[str] = []
    for category, _ in rulebook.declarable():
        if category.code not in seen:
            seen.append(category.code)
    rows = [[InlineKeyboardButton(rulebook.category(c).name.get(tr.lang), callback_data=f"dl:c:{c}")] for c in seen]  # type: ignore[union-attr]
    return InlineKeyboardMarkup([*rows, _cancel_row(tr)])


def _items_keyboard(tr, branch: Branch, category_code: str) -> InlineKeyboardMarkup:
    rulebook = rulebook_of(branch)
    rows = []
    for category, item in rulebook.declarable():
        if category.code == category_code:
            label = f"{item.name.get(tr.lang)} ({tr('common.points', value=declared_value(item))})"
            rows.append([InlineKeyboardButton(label[:60], callback_data=f"dl:i:{item.code}")])
    rows.append([InlineKeyboardButton(tr("common.back"), callback_data="dl:b"), *_cancel_row(tr)])
    return InlineKeyboardMarkup(rows)


@domain_errors
async def start(update: Update, context: Context) -> int | None:
    svc = services(context)
    user = update.effective_user
    assert user is not None
    if context.args and context.args[0].startswith("declare-"):  # deep link from the group
        branch_id = context.args[0].removeprefix("declare-")
        if branch_id.isdigit():
            await svc.branches.choose(user.id, int(branch_id))
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    await svc.declarations.declarant(branch, actor(user))
    if not rulebook_of(branch).declarable():
        await reply(update, tr("declare.nothing_declarable"))
        return ConversationHandler.END
    context.user_data["draft"] = {"branch_id": branch.id}
    await reply(update, tr("declare.choose_category", branch=branch.title), reply_markup=_categories_keyboard(tr, branch))
    return CATEGORY


async def in_group(update: Update, context: Context) -> None:
    """In the group /declare answers with a deep link: declarations are made in private."""
    branch = await services(context).branches.find_by_chat(update.effective_chat.id)  # type: ignore[union-attr]
    tr = translator(update, branch)
    if branch is None:
        await reply(update, tr("error.branch.not_setup"))
        return
    try:
        await services(context).declarations.declarant(branch, actor(update.effective_user))  # type: ignore[arg-type]
    except DomainError as error:
        if error.key == "declare.not_member":  # never joined, or no longer here (transferred out, removed):
            why = await services(context).transfers.whereabouts(branch, update.effective_user.id)  # type: ignore[union-attr]
            await reply(update, tr(why[0], **why[1]) if why else tr("declare.not_member_here", branch=branch.title))
            return  # a link would only refuse
        # exempt, scoring stopped: said privately (start), not in front of the group
    await point_to_private(update, context, "declare.go_private", tr=tr, start=f"declare-{branch.id}")


async def chose_category(update: Update, context: Context) -> int:
    query = update.callback_query
    assert query is not None and query.data is not None
    branch = await _branch(context)
    tr = translator(update, branch)
    await answer(query)
    code = query.data.split(":", 2)[2]
    if rulebook_of(branch).category(code) is None:
        return CATEGORY
    await query.edit_message_text(tr("declare.choose_item"), reply_markup=_items_keyboard(tr, branch, code))
    return ITEM


async def back_to_categories(update: Update, context: Context) -> int:
    query = update.callback_query
    assert query is not None
    branch = await _branch(context)
    tr = translator(update, branch)
    await answer(query)
    await query.edit_message_text(tr("declare.choose_category", branch=branch.title), reply_markup=_categories_keyboard(tr, branch))
    return CATEGORY


async def chose_item(update: Update, context: Context) -> int:
    query = update.callback_query
    assert query is not None and query.data is not None
    branch = await _branch(context)
    tr = translator(update, branch)
    svc = services(context)
    try:
        item = svc.declarations.check_item(branch, query.data.split(":", 2)[2])
    except DomainError as error:
        await answer(query, refusal(update, error, branch), alert=True)
        return ITEM
    await answer(query)
    context.user_data["draft"]["item"] = item.code
    start, end = svc.declarations.open_period(branch)
    buttons = InlineKeyboardMarkup([
        [InlineKeyboardButton(tr("declare.today"), callback_data="dl:d:0"),
         InlineKeyboardButton(tr("declare.yesterday"), callback_data="dl:d:1")],
        _cancel_row(tr),
    ])
    await query.edit_message_text(
        tr("declare.ask_date", item=item.name.get(tr.lang), start=start.isoformat(), end=end.isoformat()), reply_markup=buttons
    )
    return DATE


async def _take_date(update: Update, context: Context, text: str) -> int:
    branch = await _branch(context)
    tr = translator(update, branch)
    try:
        day = services(context).declarations.parse_date(branch, text)
        # a month the member was exempt in (exempt from April: the grace days' March is fine, today is not)
        await services(context).declarations.check_month(branch, actor(update.effective_user), day)  # type: ignore[arg-type]
    except DomainError as error:
        await reply(update, refusal(update, error, branch))
        return DATE
    context.user_data["draft"]["date"] = day.isoformat()
    await reply(update, tr("declare.ask_place", date=day.isoformat()), reply_markup=InlineKeyboardMarkup([_cancel_row(tr)]))
    return PLACE


async def date_button(update: Update, context: Context) -> int:
    query = update.callback_query
    assert query is not None and query.data is not None
    await answer(query)
    branch = await _branch(context)
    today = services(context).clock.today(branch.timezone)
    day = today - timedelta(days=int(query.data.rsplit(":", 1)[1] == "1"))
    return await _take_date(update, context, day.isoformat())


async def date_text(update: Update, context: Context) -> int:
    return await _take_date(update, context, update.effective_message.text or "")  # type: ignore[union-attr]


async def place_text(update: Update, context: Context) -> int:
    branch = await _branch(context)
    if not await STEPS.take_text(update, context, branch, "place", services(context).declarations.check_place):
        return PLACE
    tr = translator(update, branch)
    await reply(update, tr("declare.ask_text"), reply_markup=InlineKeyboardMarkup([_cancel_row(tr)]))
    return TEXT


async def description_text(update: Update, context: Context) -> int:
    branch = await _branch(context)
    if not await STEPS.take_text(update, context, branch, "text", services(context).declarations.check_description):
        return TEXT
    await STEPS.ask_photo(update, translator(update, branch))
    return PHOTO


async def _show_confirm(update: Update, context: Context) -> int:
    branch = await _branch(context)
    tr = translator(update, branch)
    draft = context.user_data["draft"]
    item = rulebook_of(branch).item(draft["item"])
    assert item is not None
    summary = tr(
        "declare.confirm", item=item.name.get(tr.lang), value=declared_value(item), date=draft["date"],
        place=draft["place"], text=draft["text"], photo=tr("common.yes") if draft.get("photo") else tr("common.no"),
    ) + "\n" + tr("declare.review_branch", branch=branch.title)  # the branch it is filed in (the draft's)
    await STEPS.show_confirm(update, context, tr, summary)
    return CONFIRM


photo_sent, no_photo = STEPS.photo_handlers(_show_confirm)


async def confirmed(update: Update, context: Context) -> int:
    query = update.callback_query
    assert query is not None and query.message is not None
    svc = services(context)
    branch = await _branch(context)
    tr = translator(update, branch)
    draft = context.user_data.get("draft", {})
    try:
        declaration, created = await svc.declarations.submit(
            branch, actor(query.from_user),
            Draft(item_code=draft["item"], occurred_on=date.fromisoformat(draft["date"]), place=draft["place"],
                  description=draft["text"], photo_file_id=draft.get("photo")),
            client_key=f"{query.message.chat.id}:{query.message.message_id}",  # the same press replayed finds the same row
        )
    except DomainError as error:
        await answer(query, refusal(update, error, branch), alert=True)
        return CONFIRM
    await answer(query, tr("declare.submitted_short"))
    context.user_data.pop("draft", None)
    try:
        await query.edit_message_text(tr("declare.submitted", number=declaration.id))
    except BadRequest as exc:  # a replayed Submit: the card already says so
        if "not modified" not in str(exc).lower():
            raise
    if created:
        reached = await send_to_deciders(context, branch, declaration)
        if not reached:
            await context.bot.send_message(query.from_user.id, tr("declare.no_decider_reachable"))
    return ConversationHandler.END


cancel, unexpected = conversation_exits("draft", "declare")


def register(app: Application) -> None:
    private = filters.ChatType.PRIVATE
    text = filters.TEXT & ~filters.COMMAND & private
    cancel_button = CallbackQueryHandler(cancel, pattern=f"^{CANCEL}$")
    app.add_handler(CommandHandler("declare", in_group, filters=filters.ChatType.GROUPS))
    app.add_handler(ConversationHandler(
        entry_points=[
            CommandHandler("declare", start, filters=private),
            CommandHandler("start", start, filters=private & filters.Regex(r"^/start declare-\d+$")),
        ],
        states={
            CATEGORY: [CallbackQueryHandler(chose_category, pattern=r"^dl:c:[a-z0-9_]+$"), cancel_button],
            ITEM: [CallbackQueryHandler(chose_item, pattern=r"^dl:i:[a-z0-9_]+$"),
                   CallbackQueryHandler(back_to_categories, pattern=r"^dl:b$"), cancel_button],
            DATE: [CallbackQueryHandler(date_button, pattern=r"^dl:d:[01]$"), MessageHandler(text, date_text), cancel_button],
            PLACE: [MessageHandler(text, place_text), cancel_button],
            TEXT: [MessageHandler(text, description_text), cancel_button],
            PHOTO: [MessageHandler(filters.PHOTO & private, photo_sent), CallbackQueryHandler(no_photo, pattern=r"^dl:np$"),
                    cancel_button],
            CONFIRM: [CallbackQueryHandler(confirmed, pattern=r"^dl:ok$"), cancel_button],
        },
        fallbacks=[CommandHandler("cancel", cancel), CallbackQueryHandler(unexpected, pattern=r"^dl:"),
                   MessageHandler(private & ~filters.COMMAND, unexpected), FlowInProgress(app, "declare")],
        name="declare", allow_reentry=True,
    ))
    # A press on a declaration button after the flow ended (double tap, old message).
    app.add_handler(CallbackQueryHandler(unexpected, pattern=r"^dl:"))


__all__ = ["register", "ChatType"]
