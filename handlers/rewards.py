"""Rewards (issue 7): /rewards (catalog, Redeem), /passbook (the 红色存折 statement and merchant codes),
/verify CODE (partner merchants), /catalog and /merchants (the secretary's guided flows). All in private.

Callback data (none trusted — the service re-checks the presser's role in the database on every press):
  rw:r:ITEM            Redeem pressed: asks to confirm           rw:c:ITEM:COST  confirm (the cost as shown)
  rw:n                 not now                                   rw:h:R / rw:k:R  keeper: handed over / cancel
  rw:w:B               keeper: the waiting redemptions           rw:g:B          manager: the settings panel
  rw:s:B:e|c|s:0|1     manager: set enabled / carry over / show balance to merchants to off|on (the target
                       state, so a double tap sets it twice instead of undoing itself)
  rw:x:B:MINUTES       manager: how long merchant codes stay valid
  rw:v:B[:P]           the catalog (page P)                      rw:m:B          member: a merchant code
  rc:l:B[:P]  rc:e:ITEM[:P]  rc:t:ITEM:0|1[:P]   the catalog list (page P), an item's panel, deactivate|activate
                       (P: the list page to go back to)
  rc:a:B  rc:m:ITEM              add / modify an item (guided flow: rc:k keep, rc:u unlimited, rc:np no picture,
                                 rc:ok save, rc:x cancel)
  rm:a:B  rm:d:MERCHANT:B[:P]    register a merchant (guided flow; rm:x cancel) / remove one
  rm:p:B:P                       the merchants list, page P

Lists are paged (PAGE_SIZE, MERCHANT_PAGE_SIZE) so that a text stays within 4096 characters and a keyboard
far below Telegram's 100 buttons; free-form texts (the passbook, a code with its merchants) are chunked.
"""

from __future__ import annotations

import html
import logging
from decimal import Decimal
from zoneinfo import ZoneInfo

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, MessageOriginUser, Update
from telegram.error import BadRequest, Forbidden
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ConversationHandler, MessageHandler, filters

from bot.domain.records import Branch
from bot.domain.rewards import (
    CODE_MINUTES_CHOICES,
    LineKind,
    Passbook,
    Redemption,
    RedemptionStatus,
    RewardItem,
    RewardSettings,
    parse_cost,
    parse_stock,
    show_code,
)
from bot.domain.town import page_of
from bot.errors import DomainError, InvalidInput
from bot.i18n import Safe, Translator, format_points, language_of
from bot.services.branches import rulebook_of
from bot.services.rewards import Catalog, Decision, Reserved
from handlers.common import (
    FlowInProgress,
    point_to_private,
    Context,
    actor,
    answer,
    chunks,
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

log = logging.getLogger(__name__)

# Commands this module adds to the menus, by scope; each needs a menu.<command> catalog entry.
MENU: dict[str, tuple[str, ...]] = {"private": ("rewards", "passbook", "verify", "catalog", "merchants"), "group": (), "admin": ()}

WAITING_SHOWN = 20
PAGE_SIZE = 10  # catalog items per page: lines of at most ~100 characters, 10 + 4 buttons
MERCHANT_PAGE_SIZE = 8  # merchants per page: a line may reach ~300 characters (a 200-character discount)
SETTING_CODES = {"e": "enabled", "c": "carry_over", "s": "show_balance"}


# --- rendering ----------------------------------------------------------------------------------------


def _signed(value: Decimal) -> str:
    return ("+" if value > 0 else "") + format_points(value)


def _stock(tr: Translator, item: RewardItem) -> str:
    if item.stock is None:
        return tr("rewards.stock_unlimited")
    return tr("rewards.stock_left", stock=item.stock) if item.stock > 0 else tr("rewards.stock_none")


def _scope(tr: Translator, settings: RewardSettings, book: Passbook | None) -> str:
    if settings.carry_over or book is None or book.year is None:
        return tr("rewards.scope_carry")
    return tr("rewards.scope_year", year=book.year)


def _pager(tr: Translator, lines: list[str], rows: list[list[InlineKeyboardButton]], page: int, pages: int,
           prefix: str) -> None:
    """The page number under a list's lines and ◀ ▶ buttons (``prefix`` + the page) when there is more than one."""
    if pages <= 1:
        return
    lines.append(tr("rewards.page", page=page + 1, pages=pages))
    nav = []
    if page > 0:
        nav.append(InlineKeyboardButton(tr("rewards.previous_page"), callback_data=f"{prefix}{page - 1}"))
    if page < pages - 1:
        nav.append(InlineKeyboardButton(tr("rewards.next_page"), callback_data=f"{prefix}{page + 1}"))
    rows.append(nav)


def catalog_view(tr: Translator, view: Catalog, page: int = 0) -> tuple[str, InlineKeyboardMarkup]:
    """One page of the catalog as a member sees it (active items only: the service hands no others)."""
    b = view.branch.id
    lines = [tr("rewards.header", branch=view.branch.title)]
    rows: list[list[InlineKeyboardButton]] = []
    if not view.settings.enabled:
        lines.append(tr("rewards.off_for_manager"))
    else:
        if view.book is not None:
            lines.append(tr("rewards.balance", balance=view.book.balance, scope=_scope(tr, view.settings, view.book)))
            if view.book.shortfall:
                lines.append(tr("rewards.shortfall", shortfall=view.book.shortfall))
        if not view.items:
            lines.append(tr("rewards.empty"))
        shown, page, pages = page_of(view.items, page, PAGE_SIZE)
        for number, item in enumerate(shown, page * PAGE_SIZE + 1):
            lines.append(tr("rewards.item_line", number=number, name=item.name, cost=item.cost, stock=_stock(tr, item)))
            rows.append([InlineKeyboardButton(tr.plain("rewards.redeem_button", name=item.name[:30], cost=format_points(item.cost)),
                                              callback_data=f"rw:r:{item.id}")])
        _pager(tr, lines, rows, page, pages, f"rw:v:{b}:")
        lines.append(tr("rewards.note"))
        if view.keeper:
            rows.append([InlineKeyboardButton(tr.plain("rewards.waiting_button", count=view.waiting), callback_data=f"rw:w:{b}")])
    if view.manager:
        rows.append([InlineKeyboardButton(tr("rewards.settings_button"), callback_data=f"rw:g:{b}")])
    return "\n".join(lines), InlineKeyboardMarkup(rows)


def _on_off(tr: Translator, value: bool) -> str:
    return tr("rewards.on") if value else tr("rewards.off")


def settings_view(tr: Translator, branch: Branch, settings: RewardSettings) -> tuple[str, InlineKeyboardMarkup]:
    rulebook = rulebook_of(branch)
    chosen = rulebook.settings.redeemable
    if chosen:
        names = [(rulebook.category(c) or rulebook.item(c)).name.get(tr.lang) for c in chosen]  # type: ignore[union-attr]
        counted = tr("common.list_separator").join(names)
    else:
        counted = tr("rewards.counted_default")
    text = tr("rewards.settings", branch=branch.title, enabled=_on_off(tr, settings.enabled),
              carry=_on_off(tr, settings.carry_over), show=_on_off(tr, settings.show_balance),
              minutes=settings.code_minutes, counted=counted)
    b = branch.id
    rows = [
        [InlineKeyboardButton(tr("rewards.toggle_enabled_off" if settings.enabled else "rewards.toggle_enabled_on"),
                              callback_data=f"rw:s:{b}:e:{int(not settings.enabled)}")],
        [InlineKeyboardButton(tr.plain("rewards.toggle_carry", state=_on_off(tr, settings.carry_over)),
                              callback_data=f"rw:s:{b}:c:{int(not settings.carry_over)}")],
        [InlineKeyboardButton(tr.plain("rewards.toggle_show", state=_on_off(tr, settings.show_balance)),
                              callback_data=f"rw:s:{b}:s:{int(not settings.show_balance)}")],
        [InlineKeyboardButton(tr.plain("rewards.code_minutes_current" if m == settings.code_minutes else "rewards.code_minutes_choice",
                                 minutes=m), callback_data=f"rw:x:{b}:{m}") for m in CODE_MINUTES_CHOICES],
        [InlineKeyboardButton(tr("common.back"), callback_data=f"rw:v:{b}")],
    ]
    return text, InlineKeyboardMarkup(rows)


def _local(tr: Translator, branch: Branch, moment) -> str:
    return moment.astimezone(ZoneInfo(branch.timezone)).strftime("%Y-%m-%d %H:%M")


def passbook_text(tr: Translator, branch: Branch, name: str, settings: RewardSettings, book: Passbook) -> str:
    rulebook = rulebook_of(branch)
    zone = ZoneInfo(branch.timezone)
    lines = [tr("rewards.passbook_header", name=name, branch=branch.title, scope=_scope(tr, settings, book))]
    if not book.lines:
        lines.append(tr("rewards.passbook_empty"))
    for line in book.lines:
        if line.kind in (LineKind.SPENT, LineKind.RELEASED):
            subject = line.subject
        else:
            item = rulebook.item(line.subject)
            subject = item.name.get(tr.lang) if item else line.subject
        lines.append(tr("rewards.passbook_line", date=line.at.astimezone(zone).strftime("%m-%d"),
                        kind=tr(f"rewards.kind.{line.kind.value}"), subject=subject, amount=_signed(line.amount),
                        balance=line.balance,
                        short=Safe(tr("rewards.passbook_line_short", shortfall=line.shortfall) if line.shortfall else "")))
    lines.append(tr("rewards.passbook_total", earned=book.earned, spent=book.spent, balance=book.balance))
    if book.shortfall:
        lines.append(tr("rewards.shortfall", shortfall=book.shortfall))
    lines.append(tr("rewards.note"))
    return "\n".join(lines)


def card_text(tr: Translator, branch: Branch, redemption: Redemption, member_name: str, decider: str | None) -> str:
    text = tr("rewards.card", number=redemption.id, branch=branch.title, name=member_name, item=redemption.item_name,
              cost=redemption.cost, at=_local(tr, branch, redemption.created_at))
    if redemption.status is RedemptionStatus.HANDED_OVER:
        text += "\n\n" + tr("rewards.card_handed_over", by=decider or "")
    elif redemption.status is RedemptionStatus.CANCELLED:
        text += "\n\n" + tr("rewards.card_cancelled", by=decider or "")
    return text


def card_keyboard(tr: Translator, redemption: Redemption) -> InlineKeyboardMarkup | None:
    if redemption.status is not RedemptionStatus.RESERVED:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(tr("rewards.hand_over_button"), callback_data=f"rw:h:{redemption.id}"),
                                  InlineKeyboardButton(tr("rewards.cancel_button"), callback_data=f"rw:k:{redemption.id}")]])


async def _go_private(update: Update, context: Context) -> None:
    await point_to_private(update, context, "rewards.go_private")


# --- /rewards and its buttons ---------------------------------------------------------------------------


@domain_errors
async def rewards_command(update: Update, context: Context) -> None:
    if not is_private(update):
        await _go_private(update, context)
        return
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    view = await services(context).rewards.catalog(branch, actor(update.effective_user))  # type: ignore[arg-type]
    if not view.settings.enabled:  # only a manager gets this far: the switch is offered
        text, markup = settings_view(tr, branch, view.settings)
        text = tr("rewards.off_for_manager") + "\n\n" + text
    else:
        text, markup = catalog_view(tr, view)
    await reply(update, text, reply_markup=markup)


async def _branch_of(update: Update, context: Context, index: int = 2) -> tuple[list[str], Branch, Translator]:
    query = update.callback_query
    assert query is not None and query.data is not None
    parts = query.data.split(":")
    branch = await services(context).branches.by_id(int(parts[index]))
    return parts, branch, translator(update, branch)


@domain_errors
async def catalog_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    parts, branch, tr = await _branch_of(update, context)
    view = await services(context).rewards.catalog(branch, actor(query.from_user))
    await answer(query)
    text, markup = catalog_view(tr, view, int(parts[3]) if len(parts) > 3 else 0)
    await edit_or_send(query, text, reply_markup=markup)


async def _show_settings(query: CallbackQuery, tr: Translator, branch: Branch, settings: RewardSettings,
                         note: str | None = None, alert: bool = False) -> None:
    """Answer a settings press (with ``note``, if any) and show the settings panel as it now stands."""
    await answer(query, note, alert=alert)
    text, markup = settings_view(tr, branch, settings)
    await edit_or_send(query, text, reply_markup=markup)


@domain_errors
async def settings_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    _, branch, tr = await _branch_of(update, context)
    svc = services(context)
    await svc.rewards.require_manager(branch, actor(query.from_user))
    await _show_settings(query, tr, branch, await svc.rewards.settings(branch))


@domain_errors
async def toggle_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    parts, branch, tr = await _branch_of(update, context)
    settings, changed = await services(context).rewards.update_settings(branch, actor(query.from_user),
                                                                        SETTING_CODES[parts[3]], parts[4] == "1")
    await _show_settings(query, tr, branch, settings, tr("rewards.setting_saved" if changed else "rewards.setting_already"))


@domain_errors
async def code_minutes_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    parts, branch, tr = await _branch_of(update, context)
    settings, changed = await services(context).rewards.set_code_minutes(branch, actor(query.from_user), int(parts[3]))
    await _show_settings(query, tr, branch, settings, tr("rewards.setting_saved" if changed else "rewards.setting_already"))


@domain_errors
async def old_toggle_button(update: Update, context: Context) -> None:
    """A settings button from before the buttons carried their target state: changes nothing, shows the panel."""
    query = update.callback_query
    assert query is not None
    _, branch, tr = await _branch_of(update, context)
    svc = services(context)
    await svc.rewards.require_manager(branch, actor(query.from_user))
    await _show_settings(query, tr, branch, await svc.rewards.settings(branch), tr("rewards.button_outdated"), alert=True)


@domain_errors
async def redeem_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None and query.message is not None
    offer = await services(context).rewards.offer(actor(query.from_user), int(query.data.split(":")[2]))
    tr = translator(update, offer.branch)
    await answer(query)
    chat_id = query.message.chat.id
    if offer.item.photo_file_id:
        try:
            await context.bot.send_photo(chat_id, offer.item.photo_file_id, caption=html.escape(offer.item.name, quote=False))
        except BadRequest as exc:  # a picture Telegram no longer has: the offer stands without it
            log.info("could not show the picture of reward %s: %s", offer.item.id, exc)
    markup = InlineKeyboardMarkup([[
        InlineKeyboardButton(tr("rewards.confirm_button"), callback_data=f"rw:c:{offer.item.id}:{format_points(offer.item.cost)}"),
        InlineKeyboardButton(tr("rewards.not_now"), callback_data="rw:n"),
    ]])
    await context.bot.send_message(chat_id, tr("rewards.confirm", name=offer.item.name, cost=offer.item.cost,
                                                balance=offer.balance, after=offer.balance - offer.item.cost),
                                   reply_markup=markup)


async def not_now_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    await answer(query)
    if query.message is not None and query.message.chat.id == query.from_user.id:  # only one's own offer
        await edit_or_send(query, translator(update)("rewards.not_now_done"))


async def _send_cards(context: Context, reserved: Reserved) -> int:
    """The hand-over card to every keeper who can be reached; returns how many were."""
    svc = services(context)
    reached = 0
    for keeper in await svc.rewards.keepers(reserved.branch, reserved.member):
        tr = Translator(language_of(keeper.language, reserved.branch.language))
        sent = await send_private(context, keeper.user_id,  # type: ignore[arg-type]
                                  card_text(tr, reserved.branch, reserved.redemption, reserved.member.name, None),
                                  reply_markup=card_keyboard(tr, reserved.redemption))
        if sent is not None:
            await svc.rewards.remember_message(reserved.redemption.id, sent.chat_id, sent.message_id)
            reached += 1
    return reached


@domain_errors
async def confirm_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None and query.message is not None
    _, _, item_id, cost = query.data.split(":")
    reserved = await services(context).rewards.redeem(actor(query.from_user), int(item_id), Decimal(cost),
                                                      client_key=f"{query.message.chat.id}:{query.message.message_id}")
    tr = translator(update, reserved.branch)
    r = reserved.redemption
    if not reserved.created:
        await answer(query, tr("rewards.reserved_again", number=r.id))
        return
    await answer(query, tr("rewards.reserved_short"))
    text = tr("rewards.reserved", number=r.id, name=r.item_name, cost=r.cost, balance=reserved.balance)
    if not await _send_cards(context, reserved):
        text += "\n" + tr("rewards.no_keeper_reachable")
    await edit_or_send(query, text)


@domain_errors
async def waiting_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.message is not None
    _, branch, tr = await _branch_of(update, context)
    svc = services(context)
    waiting = await svc.rewards.waiting(branch, actor(query.from_user))
    await answer(query)
    chat_id = query.message.chat.id
    if not waiting:
        await context.bot.send_message(chat_id, tr("rewards.waiting_none"))
        return
    await context.bot.send_message(chat_id, tr("rewards.waiting_header", count=len(waiting), shown=min(len(waiting), WAITING_SHOWN)))
    for redemption, member in waiting[:WAITING_SHOWN]:
        sent = await context.bot.send_message(chat_id, card_text(tr, branch, redemption, member.name, None),
                                              reply_markup=card_keyboard(tr, redemption))
        await svc.rewards.remember_message(redemption.id, sent.chat_id, sent.message_id)


@domain_errors
async def decide_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    _, verb, number = query.data.split(":")
    svc = services(context)
    decision = await svc.rewards.decide(actor(query.from_user), int(number), hand_over=verb == "h")
    tr = translator(update, decision.branch)
    if not decision.changed:
        await answer(query, tr("rewards.already_decided"), alert=True)
    else:
        await answer(query, tr("rewards.decided_short"))
    await _update_cards(context, decision)
    if decision.changed:
        await _tell_member(context, decision)


async def _update_cards(context: Context, decision: Decision) -> None:
    """Every copy of the card shows the decision (in the language of the one who pressed last: cards are
    the keepers', who share the branch's language in practice)."""
    svc = services(context)
    for chat_id, message_id in await svc.rewards.messages(decision.redemption.id):
        tr = Translator(decision.branch.language)
        text = card_text(tr, decision.branch, decision.redemption, decision.member.name,
                         decision.decider.name if decision.decider else None)
        try:
            await context.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)
        except (BadRequest, Forbidden) as exc:  # deleted, or already showing it: the decision stands
            log.debug("could not edit a redemption card: %s", exc)


async def _tell_member(context: Context, decision: Decision) -> None:
    member = decision.member
    if member.user_id is None:
        return
    tr = Translator(language_of(member.language, decision.branch.language))
    r = decision.redemption
    key = "rewards.told_handed_over" if r.status is RedemptionStatus.HANDED_OVER else "rewards.told_cancelled"
    await send_private(context, member.user_id, tr(key, item=r.item_name, number=r.id, cost=r.cost,
                                                   by=decision.decider.name if decision.decider else ""))


# --- /passbook, codes and /verify -------------------------------------------------------------------------


@domain_errors
async def passbook_command(update: Update, context: Context) -> None:
    if not is_private(update):
        await _go_private(update, context)
        return
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    member, settings, book, partners = await services(context).rewards.my_passbook(branch, actor(update.effective_user))  # type: ignore[arg-type]
    markup = None
    if partners:
        markup = InlineKeyboardMarkup([[InlineKeyboardButton(tr("rewards.code_button"), callback_data=f"rw:m:{branch.id}")]])
    await reply(update, passbook_text(tr, branch, member.name, settings, book), reply_markup=markup)


@domain_errors
async def code_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.message is not None
    _, branch, tr = await _branch_of(update, context)
    code = await services(context).rewards.new_code(branch, actor(query.from_user))
    await answer(query)
    partners = "\n".join(tr("rewards.merchant_line", name=m.name, discount=m.discount) for m in code.merchants)
    text = tr("rewards.code", code=show_code(code.code), until=_local(tr, branch, code.expires_at), minutes=code.minutes,
              merchants=Safe(partners))
    for piece in chunks(text):  # many partners with long discounts: the code comes first, the list goes on
        await context.bot.send_message(query.message.chat.id, piece)


@domain_errors
async def verify_command(update: Update, context: Context) -> None:
    if not is_private(update):
        await _go_private(update, context)
        return
    user = update.effective_user
    assert user is not None
    tr = translator(update)
    svc = services(context)
    typed = "".join(context.args or [])
    if not typed:
        if not await svc.rewards.merchant_of(user.id):
            raise InvalidInput("rewards.not_merchant", user_id=user.id)
        await reply(update, tr("rewards.verify_usage"))
        return
    result = await svc.rewards.verify(actor(user), typed)
    if not result.ok:
        await reply(update, tr(f"rewards.verify_failed.{result.reason}"))
        return
    assert result.branch is not None and result.member is not None and result.merchant is not None
    balance = tr("rewards.verified_balance", balance=result.balance) if result.balance is not None else ""
    await reply(update, tr("rewards.verified", name=result.member.name, branch=result.branch.title,
                           standing=tr("rewards.standing_good" if result.standing else "rewards.standing_bad"),
                           discount=result.merchant.discount, balance=Safe(balance)))
    member = result.member
    if member.user_id is not None:
        mtr = Translator(language_of(member.language, result.branch.language))
        await send_private(context, member.user_id, mtr("rewards.code_used", merchant=result.merchant.name))


# --- /catalog: the secretary's list, panels and the guided add / modify flow -------------------------------


NAME, COST, STOCK, PHOTO, CONFIRM = range(5)
DRAFT = "reward_item"
CANCEL_ITEM = "rc:x"


def _stock_text(tr: Translator, stock: int | None) -> str:
    return tr("rewards.stock_unlimited") if stock is None else str(stock)


def list_view(tr: Translator, branch: Branch, items: list[RewardItem], page: int = 0) -> tuple[str, InlineKeyboardMarkup]:
    """One page of the secretary's catalog (inactive items too, marked)."""
    lines = [tr("catalog.header", branch=branch.title)]
    if not items:
        lines.append(tr("catalog.empty"))
    rows = []
    shown, page, pages = page_of(items, page, PAGE_SIZE)
    for number, item in enumerate(shown, page * PAGE_SIZE + 1):
        lines.append(tr("catalog.line", number=number, name=item.name, cost=item.cost, stock=_stock_text(tr, item.stock),
                        marks=Safe((tr("catalog.inactive_mark") if not item.active else "")
                                   + (tr("catalog.photo_mark") if item.photo_file_id else ""))))
        rows.append([InlineKeyboardButton(tr.plain("catalog.edit_button", name=item.name[:30]), callback_data=f"rc:e:{item.id}:{page}")])
    _pager(tr, lines, rows, page, pages, f"rc:l:{branch.id}:")
    rows.append([InlineKeyboardButton(tr("catalog.add_button"), callback_data=f"rc:a:{branch.id}")])
    return "\n".join(lines), InlineKeyboardMarkup(rows)


def page_with(items: list[RewardItem], item_id: int) -> int:
    """The list page that shows this item."""
    return next((index // PAGE_SIZE for index, item in enumerate(items) if item.id == item_id), 0)


def panel_view(tr: Translator, branch: Branch, item: RewardItem, page: int = 0) -> tuple[str, InlineKeyboardMarkup]:
    text = tr("catalog.panel", name=item.name, cost=item.cost, stock=_stock_text(tr, item.stock),
              photo=tr("common.yes") if item.photo_file_id else tr("common.no"),
              status=tr("catalog.status_active" if item.active else "catalog.status_inactive"))
    toggle = tr("catalog.deactivate_button" if item.active else "catalog.activate_button")
    rows = [[InlineKeyboardButton(tr("catalog.modify_button"), callback_data=f"rc:m:{item.id}"),
             InlineKeyboardButton(toggle, callback_data=f"rc:t:{item.id}:{int(not item.active)}:{page}")],
            [InlineKeyboardButton(tr("common.back"), callback_data=f"rc:l:{branch.id}:{page}")]]
    return text, InlineKeyboardMarkup(rows)


@domain_errors
async def catalog_command(update: Update, context: Context) -> None:
    if not is_private(update):
        await _go_private(update, context)
        return
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    items = await services(context).rewards.all_items(branch, actor(update.effective_user))  # type: ignore[arg-type]
    text, markup = list_view(tr, branch, items)
    await reply(update, text, reply_markup=markup)


@domain_errors
async def list_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    parts, branch, tr = await _branch_of(update, context)
    items = await services(context).rewards.all_items(branch, actor(query.from_user))
    await answer(query)
    text, markup = list_view(tr, branch, items, int(parts[3]) if len(parts) > 3 else 0)
    await edit_or_send(query, text, reply_markup=markup)


@domain_errors
async def panel_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    parts = query.data.split(":")
    branch, item = await services(context).rewards.managed_item(actor(query.from_user), int(parts[2]))
    tr = translator(update, branch)
    await answer(query)
    text, markup = panel_view(tr, branch, item, int(parts[3]) if len(parts) > 3 else 0)
    await edit_or_send(query, text, reply_markup=markup)


@domain_errors
async def active_button(update: Update, context: Context) -> None:
    """rc:t:ITEM:0|1[:P] sets the state the button showed; a button from before (rc:t:ITEM) only shows the panel."""
    query = update.callback_query
    assert query is not None and query.data is not None
    svc = services(context)
    who = actor(query.from_user)
    parts = query.data.split(":")
    if len(parts) < 4:
        branch, item = await svc.rewards.managed_item(who, int(parts[2]))
        tr = translator(update, branch)
        await answer(query, tr("rewards.button_outdated"), alert=True)
    else:
        branch, item = await svc.rewards.set_item_active(who, int(parts[2]), parts[3] == "1")
        tr = translator(update, branch)
        await answer(query, tr("catalog.status_active" if item.active else "catalog.status_inactive"))
    text, markup = panel_view(tr, branch, item, int(parts[4]) if len(parts) > 4 else 0)
    await edit_or_send(query, text, reply_markup=markup)


def _keep_row(tr: Translator, draft: dict, field: str, shown: str | None) -> list[list[InlineKeyboardButton]]:
    rows = []
    if draft.get("item_id") is not None and shown is not None:
        rows.append([InlineKeyboardButton(tr.plain("catalog.keep_button", value=shown[:30]), callback_data="rc:k")])
    rows.append([InlineKeyboardButton(tr("common.cancel"), callback_data=CANCEL_ITEM)])
    return rows


async def _draft_branch(context: Context) -> Branch:
    return await services(context).branches.by_id(context.user_data[DRAFT]["branch_id"])


@domain_errors
async def add_start(update: Update, context: Context) -> int | None:
    query = update.callback_query
    assert query is not None
    _, branch, tr = await _branch_of(update, context)
    await services(context).rewards.require_manager(branch, actor(query.from_user))
    await answer(query)
    context.user_data[DRAFT] = {"branch_id": branch.id, "item_id": None}
    await query.get_bot().send_message(query.message.chat.id, tr("catalog.ask_name"),  # type: ignore[union-attr]
                                       reply_markup=InlineKeyboardMarkup(_keep_row(tr, {}, "name", None)))
    return NAME


@domain_errors
async def modify_start(update: Update, context: Context) -> int | None:
    query = update.callback_query
    assert query is not None and query.data is not None
    branch, item = await services(context).rewards.managed_item(actor(query.from_user), int(query.data.split(":")[2]))
    tr = translator(update, branch)
    await answer(query)
    # "stock" is only what was shown: unless a new one is given ("stock_set"), saving leaves the stock as it is
    # then — redemptions made meanwhile have taken units that must not come back.
    draft = {"branch_id": branch.id, "item_id": item.id, "name": item.name, "cost": str(item.cost), "stock": item.stock,
             "stock_set": False, "photo": item.photo_file_id}
    context.user_data[DRAFT] = draft
    await query.get_bot().send_message(query.message.chat.id, tr("catalog.ask_name"),  # type: ignore[union-attr]
                                       reply_markup=InlineKeyboardMarkup(_keep_row(tr, draft, "name", item.name)))
    return NAME


async def _ask_cost(update: Update, context: Context, tr: Translator) -> int:
    draft = context.user_data[DRAFT]
    shown = format_points(Decimal(draft["cost"])) if draft.get("cost") else None
    await context.bot.send_message(update.effective_chat.id, tr("catalog.ask_cost"),  # type: ignore[union-attr]
                                   reply_markup=InlineKeyboardMarkup(_keep_row(tr, draft, "cost", shown)))
    return COST


async def _ask_stock(update: Update, context: Context, tr: Translator) -> int:
    draft = context.user_data[DRAFT]
    rows = [[InlineKeyboardButton(tr("catalog.unlimited_button"), callback_data="rc:u")]]
    rows += _keep_row(tr, draft, "stock", _stock_text(tr, draft.get("stock")) if draft.get("item_id") is not None else None)
    await context.bot.send_message(update.effective_chat.id, tr("catalog.ask_stock"),  # type: ignore[union-attr]
                                   reply_markup=InlineKeyboardMarkup(rows))
    return STOCK


async def _ask_photo(update: Update, context: Context, tr: Translator) -> int:
    draft = context.user_data[DRAFT]
    rows = [[InlineKeyboardButton(tr("catalog.no_photo_button"), callback_data="rc:np")]]
    rows += _keep_row(tr, draft, "photo", tr("common.yes") if draft.get("photo") else None)
    await context.bot.send_message(update.effective_chat.id, tr("catalog.ask_photo"),  # type: ignore[union-attr]
                                   reply_markup=InlineKeyboardMarkup(rows))
    return PHOTO


def _stock_kept(draft: dict) -> bool:
    return draft.get("item_id") is not None and not draft.get("stock_set")


async def _ask_confirm(update: Update, context: Context, tr: Translator) -> int:
    draft = context.user_data[DRAFT]
    stock = tr("catalog.stock_kept") if _stock_kept(draft) else _stock_text(tr, draft.get("stock"))
    text = tr("catalog.confirm", name=draft["name"], cost=Decimal(draft["cost"]), stock=stock,
              photo=tr("common.yes") if draft.get("photo") else tr("common.no"))
    markup = InlineKeyboardMarkup([[InlineKeyboardButton(tr("catalog.save_button"), callback_data="rc:ok"),
                                    InlineKeyboardButton(tr("common.cancel"), callback_data=CANCEL_ITEM)]])
    await context.bot.send_message(update.effective_chat.id, text, reply_markup=markup)  # type: ignore[union-attr]
    return CONFIRM


async def name_text(update: Update, context: Context) -> int:
    branch = await _draft_branch(context)
    tr = translator(update, branch)
    try:
        name = services(context).rewards.check_name(update.effective_message.text)  # type: ignore[union-attr]
    except DomainError as error:
        await reply(update, refusal(update, error, branch))
        return NAME
    context.user_data[DRAFT]["name"] = name
    return await _ask_cost(update, context, tr)


async def cost_text(update: Update, context: Context) -> int:
    branch = await _draft_branch(context)
    tr = translator(update, branch)
    cost = parse_cost(update.effective_message.text or "")  # type: ignore[union-attr]
    if cost is None:
        await reply(update, refusal(update, InvalidInput("rewards.bad_cost"), branch))
        return COST
    context.user_data[DRAFT]["cost"] = str(cost)
    return await _ask_stock(update, context, tr)


async def stock_text(update: Update, context: Context) -> int:
    branch = await _draft_branch(context)
    tr = translator(update, branch)
    stock = parse_stock(update.effective_message.text or "")  # type: ignore[union-attr]
    if stock is None:
        await reply(update, refusal(update, InvalidInput("rewards.bad_stock"), branch))
        return STOCK
    context.user_data[DRAFT].update(stock=stock, stock_set=True)
    return await _ask_photo(update, context, tr)


async def step_button(update: Update, context: Context) -> int:
    """Keep (rc:k), unlimited (rc:u) or no picture (rc:np), in whichever step shows it."""
    query = update.callback_query
    assert query is not None and query.data is not None
    await answer(query)
    branch = await _draft_branch(context)
    tr = translator(update, branch)
    draft = context.user_data[DRAFT]
    step = draft.get("step", NAME)
    verb = query.data.split(":")[1]
    if step == NAME and verb == "k" and draft.get("name"):
        return await _go(update, context, tr, COST)
    if step == COST and verb == "k" and draft.get("cost"):
        return await _go(update, context, tr, STOCK)
    if step == STOCK and (verb == "u" or (verb == "k" and draft.get("item_id") is not None)):
        if verb == "u":
            draft.update(stock=None, stock_set=True)
        return await _go(update, context, tr, PHOTO)
    if step == PHOTO and verb in ("k", "np"):
        if verb == "np":
            draft["photo"] = None
        return await _go(update, context, tr, CONFIRM)
    return step


async def _go(update: Update, context: Context, tr: Translator, step: int) -> int:
    context.user_data[DRAFT]["step"] = step
    asks = {COST: _ask_cost, STOCK: _ask_stock, PHOTO: _ask_photo, CONFIRM: _ask_confirm}
    return await asks[step](update, context, tr)


def _stepped(handler):
    """Remember the step a typed answer moved to, for the shared buttons (keep, unlimited, no picture)."""
    async def wrapper(update: Update, context: Context) -> int:
        step = await handler(update, context)
        if DRAFT in context.user_data:
            context.user_data[DRAFT]["step"] = step
        return step
    return wrapper


async def photo_sent(update: Update, context: Context) -> int:
    message = update.effective_message
    assert message is not None and message.photo
    branch = await _draft_branch(context)
    context.user_data[DRAFT]["photo"] = message.photo[-1].file_id
    return await _ask_confirm(update, context, translator(update, branch))


async def save_button(update: Update, context: Context) -> int:
    query = update.callback_query
    assert query is not None
    branch = await _draft_branch(context)
    tr = translator(update, branch)
    draft = context.user_data.get(DRAFT, {})
    svc = services(context)
    try:
        item = await svc.rewards.save_item(branch, actor(query.from_user), item_id=draft.get("item_id"), name=draft["name"],
                                           cost=Decimal(draft["cost"]), stock=draft.get("stock"),
                                           keep_stock=_stock_kept(draft), photo_file_id=draft.get("photo"))
    except DomainError as error:
        await answer(query, refusal(update, error, branch), alert=True)
        return CONFIRM
    context.user_data.pop(DRAFT, None)
    await answer(query, tr("catalog.saved", name=item.name))
    await edit_or_send(query, tr("catalog.saved", name=item.name))
    items = await svc.rewards.all_items(branch, actor(query.from_user))
    text, markup = list_view(tr, branch, items, page_with(items, item.id))
    await context.bot.send_message(query.message.chat.id, text, reply_markup=markup)  # type: ignore[union-attr]
    return ConversationHandler.END


cancel_item, unexpected_item = conversation_exits(DRAFT, "catalog")


# --- /merchants: the list, removal and the guided registration -------------------------------------------


WHO, SHOP, DISCOUNT = range(10, 13)
MERCHANT_DRAFT = "reward_merchant"
CANCEL_MERCHANT = "rm:x"


def merchants_view(tr: Translator, branch: Branch, merchants, page: int = 0) -> tuple[str, InlineKeyboardMarkup]:
    lines = [tr("merchants.header", branch=branch.title)]
    if not merchants:
        lines.append(tr("merchants.empty"))
    rows = []
    shown, page, pages = page_of(merchants, page, MERCHANT_PAGE_SIZE)
    for number, merchant in enumerate(shown, page * MERCHANT_PAGE_SIZE + 1):
        lines.append(tr("merchants.line", number=number, name=merchant.name, discount=merchant.discount, user_id=merchant.user_id))
        rows.append([InlineKeyboardButton(tr.plain("merchants.remove_button", name=merchant.name[:30]),
                                          callback_data=f"rm:d:{merchant.id}:{branch.id}:{page}")])
    _pager(tr, lines, rows, page, pages, f"rm:p:{branch.id}:")
    rows.append([InlineKeyboardButton(tr("merchants.add_button"), callback_data=f"rm:a:{branch.id}")])
    return "\n".join(lines), InlineKeyboardMarkup(rows)


@domain_errors
async def merchants_command(update: Update, context: Context) -> None:
    if not is_private(update):
        await _go_private(update, context)
        return
    branch = await current_branch(update, context)
    tr = translator(update, branch)
    merchants = await services(context).rewards.merchants(branch, actor(update.effective_user))  # type: ignore[arg-type]
    text, markup = merchants_view(tr, branch, merchants)
    await reply(update, text, reply_markup=markup)


@domain_errors
async def remove_merchant_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    parts, branch, tr = await _branch_of(update, context, index=3)
    svc = services(context)
    who = actor(query.from_user)
    removed = await svc.rewards.remove_merchant(branch, who, int(parts[2]))
    await answer(query, tr("merchants.removed", name=removed.name) if removed else tr("merchants.already_removed"))
    page = int(parts[4]) if len(parts) > 4 else 0  # the same page (or the last one, when it emptied)
    text, markup = merchants_view(tr, branch, await svc.rewards.merchants(branch, who), page)
    await edit_or_send(query, text, reply_markup=markup)


@domain_errors
async def merchants_page_button(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None
    parts, branch, tr = await _branch_of(update, context)
    merchants = await services(context).rewards.merchants(branch, actor(query.from_user))
    await answer(query)
    text, markup = merchants_view(tr, branch, merchants, int(parts[3]))
    await edit_or_send(query, text, reply_markup=markup)


@domain_errors
async def merchant_start(update: Update, context: Context) -> int | None:
    query = update.callback_query
    assert query is not None and query.message is not None
    _, branch, tr = await _branch_of(update, context)
    await services(context).rewards.require_manager(branch, actor(query.from_user))
    await answer(query)
    context.user_data[MERCHANT_DRAFT] = {"branch_id": branch.id}
    cancel_row = InlineKeyboardMarkup([[InlineKeyboardButton(tr("common.cancel"), callback_data=CANCEL_MERCHANT)]])
    await context.bot.send_message(query.message.chat.id, tr("merchants.ask_who"), reply_markup=cancel_row)
    return WHO


async def who_sent(update: Update, context: Context) -> int:
    message = update.effective_message
    assert message is not None
    svc = services(context)
    branch = await svc.branches.by_id(context.user_data[MERCHANT_DRAFT]["branch_id"])
    tr = translator(update, branch)
    origin = message.forward_origin
    try:
        if origin is not None:
            if not isinstance(origin, MessageOriginUser):
                await reply(update, tr("merchants.hidden_forward"))
                return WHO
            await svc.rewards.require_manager(branch, actor(update.effective_user))  # type: ignore[arg-type]
            user_id, name = origin.sender_user.id, origin.sender_user.full_name
        else:
            user_id, name = await svc.rewards.find_user(branch, actor(update.effective_user), message.text or "")  # type: ignore[arg-type]
    except DomainError as error:
        await reply(update, refusal(update, error, branch))
        return WHO
    context.user_data[MERCHANT_DRAFT].update(user_id=user_id, name_hint=name)
    cancel_row = InlineKeyboardMarkup([[InlineKeyboardButton(tr("common.cancel"), callback_data=CANCEL_MERCHANT)]])
    await reply(update, tr("merchants.ask_name", user_id=user_id), reply_markup=cancel_row)
    return SHOP


async def shop_text(update: Update, context: Context) -> int:
    svc = services(context)
    branch = await svc.branches.by_id(context.user_data[MERCHANT_DRAFT]["branch_id"])
    tr = translator(update, branch)
    try:
        name = svc.rewards.check_name(update.effective_message.text)  # type: ignore[union-attr]
    except DomainError as error:
        await reply(update, refusal(update, error, branch))
        return SHOP
    context.user_data[MERCHANT_DRAFT]["name"] = name
    cancel_row = InlineKeyboardMarkup([[InlineKeyboardButton(tr("common.cancel"), callback_data=CANCEL_MERCHANT)]])
    await reply(update, tr("merchants.ask_discount"), reply_markup=cancel_row)
    return DISCOUNT


async def discount_text(update: Update, context: Context) -> int:
    svc = services(context)
    draft = context.user_data[MERCHANT_DRAFT]
    branch = await svc.branches.by_id(draft["branch_id"])
    tr = translator(update, branch)
    try:
        merchant = await svc.rewards.add_merchant(branch, actor(update.effective_user), user_id=draft["user_id"],  # type: ignore[arg-type]
                                                  name=draft["name"], discount=update.effective_message.text or "")  # type: ignore[union-attr]
    except DomainError as error:
        await reply(update, refusal(update, error, branch))
        if error.key == "rewards.merchant_exists":
            context.user_data.pop(MERCHANT_DRAFT, None)
            return ConversationHandler.END
        return DISCOUNT
    context.user_data.pop(MERCHANT_DRAFT, None)
    await reply(update, tr("merchants.added", name=merchant.name))
    mtr = Translator(branch.language)
    await send_private(context, merchant.user_id, mtr("merchants.told", branch=branch.title, name=merchant.name))
    merchants = await svc.rewards.merchants(branch, actor(update.effective_user))  # type: ignore[arg-type]
    text, markup = merchants_view(tr, branch, merchants, (len(merchants) - 1) // MERCHANT_PAGE_SIZE)  # the new one's page
    await reply(update, text, reply_markup=markup)
    return ConversationHandler.END


cancel_merchant, unexpected_merchant = conversation_exits(MERCHANT_DRAFT, "merchants")


def register(app: Application) -> None:
    """Add this module's handlers (called in bot.app.register_handlers)."""
    private = filters.ChatType.PRIVATE
    text = filters.TEXT & ~filters.COMMAND & private
    b = r"\d{1,12}"
    app.add_handler(ConversationHandler(
        entry_points=[CallbackQueryHandler(add_start, pattern=rf"^rc:a:{b}$"),
                      CallbackQueryHandler(modify_start, pattern=rf"^rc:m:{b}$")],
        states={
            NAME: [MessageHandler(text, _stepped(name_text)), CallbackQueryHandler(step_button, pattern=r"^rc:k$")],
            COST: [MessageHandler(text, _stepped(cost_text)), CallbackQueryHandler(step_button, pattern=r"^rc:k$")],
            STOCK: [MessageHandler(text, _stepped(stock_text)), CallbackQueryHandler(step_button, pattern=r"^rc:(k|u)$")],
            PHOTO: [MessageHandler(filters.PHOTO & private, photo_sent), CallbackQueryHandler(step_button, pattern=r"^rc:(k|np)$")],
            CONFIRM: [CallbackQueryHandler(save_button, pattern=r"^rc:ok$")],
        },
        fallbacks=[CommandHandler("cancel", cancel_item), CallbackQueryHandler(cancel_item, pattern=f"^{CANCEL_ITEM}$"),
                   CallbackQueryHandler(unexpected_item, pattern=r"^rc:(k|u|np|ok)$"),
                   MessageHandler(private & ~filters.COMMAND, unexpected_item), FlowInProgress(app, "reward_catalog")],
        name="reward_catalog", allow_reentry=True,
    ))
    app.add_handler(ConversationHandler(
        entry_points=[CallbackQueryHandler(merchant_start, pattern=rf"^rm:a:{b}$")],
        states={
            WHO: [MessageHandler(private & ~filters.COMMAND & (filters.TEXT | filters.FORWARDED), who_sent)],
            SHOP: [MessageHandler(text, shop_text)],
            DISCOUNT: [MessageHandler(text, discount_text)],
        },
        fallbacks=[CommandHandler("cancel", cancel_merchant), CallbackQueryHandler(cancel_merchant, pattern=f"^{CANCEL_MERCHANT}$"),
                   MessageHandler(private & ~filters.COMMAND, unexpected_merchant), FlowInProgress(app, "reward_merchants")],
        name="reward_merchants", allow_reentry=True,
    ))
    app.add_handler(CommandHandler("rewards", rewards_command))
    app.add_handler(CommandHandler("passbook", passbook_command))
    app.add_handler(CommandHandler("verify", verify_command))
    app.add_handler(CommandHandler("catalog", catalog_command))
    app.add_handler(CommandHandler("merchants", merchants_command))
    cost = r"\d{1,6}(\.\d{1,2})?"
    app.add_handler(CallbackQueryHandler(redeem_button, pattern=rf"^rw:r:{b}$"))
    app.add_handler(CallbackQueryHandler(confirm_button, pattern=rf"^rw:c:{b}:{cost}$"))
    app.add_handler(CallbackQueryHandler(not_now_button, pattern=r"^rw:n$"))
    app.add_handler(CallbackQueryHandler(decide_button, pattern=rf"^rw:(h|k):{b}$"))
    app.add_handler(CallbackQueryHandler(waiting_button, pattern=rf"^rw:w:{b}$"))
    app.add_handler(CallbackQueryHandler(settings_button, pattern=rf"^rw:g:{b}$"))
    app.add_handler(CallbackQueryHandler(toggle_button, pattern=rf"^rw:s:{b}:[ecs]:[01]$"))
    app.add_handler(CallbackQueryHandler(old_toggle_button, pattern=rf"^rw:s:{b}:[ecs]$"))
    app.add_handler(CallbackQueryHandler(code_minutes_button, pattern=rf"^rw:x:{b}:\d{{1,6}}$"))
    page = r"\d{1,6}"
    app.add_handler(CallbackQueryHandler(catalog_button, pattern=rf"^rw:v:{b}(:{page})?$"))
    app.add_handler(CallbackQueryHandler(code_button, pattern=rf"^rw:m:{b}$"))
    app.add_handler(CallbackQueryHandler(list_button, pattern=rf"^rc:l:{b}(:{page})?$"))
    app.add_handler(CallbackQueryHandler(panel_button, pattern=rf"^rc:e:{b}(:{page})?$"))
    app.add_handler(CallbackQueryHandler(active_button, pattern=rf"^rc:t:{b}(:[01](:{page})?)?$"))
    app.add_handler(CallbackQueryHandler(remove_merchant_button, pattern=rf"^rm:d:{b}:{b}(:{page})?$"))
    app.add_handler(CallbackQueryHandler(merchants_page_button, pattern=rf"^rm:p:{b}:{page}$"))
    # A press on a flow's button after the flow ended (double tap, old message).
    app.add_handler(CallbackQueryHandler(unexpected_item, pattern=r"^rc:(k|u|np|ok|x)$"))
    app.add_handler(CallbackQueryHandler(unexpected_merchant, pattern=r"^rm:x$"))
