"""What every handler shares: the services, the actor, the language, replies and errors."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import wraps
from typing import Any

from telegram import CallbackQuery, Chat, InlineKeyboardButton, InlineKeyboardMarkup, Message, MessageEntity, Update, User
from telegram.constants import ChatType, MessageLimit
from telegram.error import BadRequest, ChatMigrated, Forbidden, TelegramError
from telegram.ext import (Application, ApplicationHandlerStop, BaseHandler, CommandHandler, ContextTypes, ConversationHandler,
                          filters)

from bot.domain.records import Branch
from bot.errors import DomainError
from bot.domain.records import Role
from bot.i18n import Safe, Translator, language_of
from bot.services import Actor, Services
from bot.services.confirms import Claim, ConfirmService, PendingConfirm, PressState

log = logging.getLogger(__name__)
Context = ContextTypes.DEFAULT_TYPE
ROLE_CODES = {r.value for r in Role}


def services(context: Context) -> Services:
    return context.application.bot_data["services"]


def actor(user: User) -> Actor:
    return Actor(user_id=user.id, name=user.full_name, username=user.username, language=user.language_code)


def translator(update: Update, branch: Branch | None = None) -> Translator:
    """Private chats follow the user's Telegram language; a group follows its branch's setting."""
    chat = update.effective_chat
    user = update.effective_user
    if chat is not None and chat.type != ChatType.PRIVATE:
        return Translator(branch.language if branch else language_of(user.language_code if user else None))
    return Translator(language_of(user.language_code if user else None, branch.language if branch else None))


def presser_translator(update: Update, branch: Branch | None = None) -> Translator:
    """For a popup (the answer to a press): only the presser sees it, so it is in their language even under
    a group's message, as a private message to them is; the branch's where Telegram gives no language
    the bot speaks."""
    user = update.effective_user
    return Translator(language_of(user.language_code if user else None, branch.language if branch else None))


# --- confirm buttons whose details wait in the database (bot.services.confirms) ----------------------

# The command a confirm of each kind came from: named when its button no longer works.
CONFIRM_COMMANDS = {"remove": "/remove", "undo": "/undo", "zero_out": "/record"}
CONFIRM_TOKEN = r"[A-Za-z0-9_-]{1,32}"  # the third part of a confirm button's data (VERB:VERDICT:TOKEN)


@dataclass(frozen=True)
class ConfirmPress:
    verdict: str  # what the button says: ok, no, void…
    details: dict[str, Any]  # what the command kept for the press
    branch: Branch
    tr: Translator  # the branch's, for what the press changes in the chat
    kind: str
    token: str


def confirms(context: Context) -> ConfirmService:
    return services(context).confirms


async def keep_confirm(update: Update, context: Context, kind: str, branch: Branch, details: dict[str, Any]) -> str:
    """What a confirm button's press needs, kept in the database (it survives a restart) for an hour;
    returns the token for the buttons' data (``VERB:VERDICT:TOKEN``, ≤ 64 bytes, no authority). The sender
    is kept with it: ``confirm_press(sender_only=True)`` lets only them press."""
    assert update.effective_chat is not None and update.effective_user is not None
    return await confirms(context).keep(kind=kind, chat_id=update.effective_chat.id, user_id=update.effective_user.id,
                                        branch_id=branch.id, payload=details)


async def _refuse_press(update: Update, pending: PendingConfirm | None, kind: str, branch: Branch | None) -> None:
    """A press on a confirm that cannot act: unknown (never kept, swept, or another kind's or chat's),
    expired, or used already — said in the presser's language, naming the command to send again."""
    query = update.callback_query
    assert query is not None
    key = "confirm.gone"
    if pending is not None and pending.state is PressState.EXPIRED:
        key = "confirm.expired"
    elif pending is not None and pending.state is PressState.USED:
        key = "confirm.used"
    await answer(query, presser_translator(update, branch)(key, command=CONFIRM_COMMANDS[kind]), alert=True)


async def confirm_press(update: Update, context: Context, kind: str, *, sender_only: bool) -> ConfirmPress | None:
    """A press on buttons ``VERB:VERDICT:TOKEN`` kept with ``keep_confirm``: its details and branch, or None —
    answered — when the token is unknown here (a crafted press, another kind's or chat's), expired or
    used already, or (``sender_only``) the presser is not the one who sent the command. Nothing is taken
    yet (take_confirm; cancel_confirm). Any role is the caller's (and its service's) to check."""
    query = update.callback_query
    assert query is not None and query.data is not None and query.message is not None
    _, verdict, token = query.data.split(":")
    pending = await confirms(context).find(token)
    if pending is None or pending.kind != kind or pending.chat_id != query.message.chat.id:
        await _refuse_press(update, None, kind, None)
        return None
    branch = await services(context).branches.by_id(pending.branch_id)
    if pending.state is not PressState.OPEN:
        await _refuse_press(update, pending, kind, branch)
        return None
    if sender_only and query.from_user.id != pending.user_id:
        await answer(query, presser_translator(update, branch)("record.confirm_not_yours"), alert=True)
        return None
    return ConfirmPress(verdict, pending.payload, branch, translator(update, branch), kind, token)


async def take_confirm(update: Update, context: Context, press: ConfirmPress) -> Claim | None:
    """Take the confirm for this press, once (a conditional update): None — answered — when another press
    took it first (a double tap) or it expired meanwhile. Act inside ``giving_back``."""
    claim = await confirms(context).take(press.token)
    if claim is None:
        await _refuse_press(update, await confirms(context).find(press.token), press.kind, press.branch)
    return claim


@asynccontextmanager
async def giving_back(context: Context, claim: Claim) -> AsyncIterator[None]:
    """The action a taken confirm is for: if it is refused or fails, the confirm is given back (its button
    works again until it expires, as a refusal left it before); once done, it stays used."""
    try:
        yield
    except Exception:
        await confirms(context).give_back(claim)
        raise


async def take_unless_cancelled(update: Update, context: Context, press: ConfirmPress, cancelled_key: str) -> Claim | None:
    """A confirm's press: its Cancel is taken and said (``cancelled_key``), None; any other verdict takes the
    confirm for the action (``take_confirm``: None, answered, when another press took it first)."""
    if press.verdict == "no":
        await cancel_confirm(update, context, press, cancelled_key)
        return None
    return await take_confirm(update, context, press)


async def cancel_confirm(update: Update, context: Context, press: ConfirmPress, said_key: str) -> None:
    """The Cancel button of a confirm: the confirm taken (a later press is told so), the press answered,
    the message saying so."""
    query = update.callback_query
    assert query is not None and query.message is not None
    if await take_confirm(update, context, press) is None:
        return
    await answer(query)
    await edit_or_send(query, press.tr(said_key))


def is_private(update: Update) -> bool:
    return update.effective_chat is not None and update.effective_chat.type == ChatType.PRIVATE


_TAG = re.compile(r"<[^>]*>")


def plain(text: str) -> str:
    """What Telegram shows of an HTML text: tags gone, entities decoded."""
    return html.unescape(_TAG.sub("", text))


def visible_length(text: str) -> int:
    """Telegram's measure of a message: UTF-16 code units of the text after HTML parsing."""
    return len(plain(text).encode("utf-16-le")) // 2


def chunks(text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> list[str]:
    """Split on line breaks so that each message stays within Telegram's 4096 characters.

    Lengths are measured as Telegram measures them (after HTML parsing). A single line longer than
    the limit is sent as escaped plain text in pieces, so no cut falls inside a tag or an entity.
    """
    # A text that fits comes back whole, as the loop below would give it. Its raw UTF-16 length bounds
    # what Telegram shows (tags and entities only shorten it): checked first, it spares the parse.
    if not text.startswith("\n") and (len(text.encode("utf-16-le")) // 2 <= limit or visible_length(text) <= limit):
        return [text]
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        if visible_length(line) > limit:
            if current:
                parts.append(current)
                current = ""
            flat = plain(line)
            step = limit // 2  # UTF-16: a piece of `step` code points is at most `limit` units
            parts.extend(html.escape(flat[i:i + step], quote=False) for i in range(0, len(flat), step))
            continue
        candidate = f"{current}\n{line}" if current else line
        if visible_length(candidate) > limit:
            parts.append(current)
            current = line
        else:
            current = candidate
    if current or not parts:
        parts.append(current)
    return parts


async def reply(update: Update, text: str, **kwargs: Any) -> Message | None:
    """Reply in the chat of the update, split when long; returns the last message sent."""
    message = update.effective_message
    if message is None:
        return None
    sent = None
    pieces = chunks(text)
    for index, piece in enumerate(pieces):
        extra = kwargs if index == len(pieces) - 1 else {}
        sent = await message.reply_text(piece, **extra)
    return sent


async def send_private(context: Context, user_id: int, text: str, **kwargs: Any) -> Message | None:
    """A private message to someone who may never have started the bot, blocked it, or deleted the account.

    Returns the last message sent, or None when the person cannot be reached, so that one unreachable
    member never stops a round of reminders. Markup (kwargs) goes on the last piece of a long text.
    """
    pieces = chunks(text)
    sent = None
    try:
        for index, piece in enumerate(pieces):
            sent = await context.bot.send_message(user_id, piece, **(kwargs if index == len(pieces) - 1 else {}))
        return sent
    except Forbidden:
        log.info("user %s cannot be reached privately", user_id)
    except BadRequest as exc:
        if "chat not found" not in str(exc).lower() and "user not found" not in str(exc).lower():
            raise
        log.info("user %s has no private chat with the bot: %s", user_id, exc)
    return None


# BadRequest descriptions meaning the bot cannot post in a group (it is not a 403 in every case).
GROUP_GONE = ("chat not found", "not enough rights", "have no rights", "chat_write_forbidden")


async def point_to_private(update: Update, context: Context, key: str, *, tr: Translator | None = None,
                           start: str | None = None, button: str = "declare.open_private") -> None:
    """A command that works in private only, used in a group: say so (``key``) with a button that opens
    the bot's private chat (``start``: the deep link's parameter, e.g. ``declare-3``)."""
    if tr is None:
        branch = None
        if update.effective_chat is not None:
            branch = await services(context).branches.find_by_chat(update.effective_chat.id)
        tr = translator(update, branch)
    link = f"https://t.me/{context.bot.username}" + (f"?start={start}" if start else "")
    await reply(update, tr(key), reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton(tr(button), url=link)]]))


async def send_group(context: Any, branch: Branch, text: str, **kwargs: Any) -> Message | None:
    """A message in the branch's group, split when long; returns the last message sent.

    ``context`` is a handler's context or the Application (scheduled work). The group may have become
    a supergroup since the branch was stored: Telegram then answers ChatMigrated with the new chat id;
    the branch is moved to it in one transaction (services.branches.migrate_chat) and the piece is sent
    again, once, to the new id. A 403 (the bot was removed from the group) marks the branch unreachable
    and returns None, like a group that is gone or where the bot may not write: the caller's round goes
    on. Any other error (a timeout, a 5xx) propagates: whether it was delivered is unknown, and only the
    caller knows whether repeating is safe. The caller's ``branch`` (a frozen record) keeps the old id:
    a later call with it fails over again and moves nothing twice.
    """
    app = getattr(context, "application", context)  # CallbackContext or Application
    pieces = chunks(text)
    sent = None
    chat_id = branch.chat_id
    try:
        for index, piece in enumerate(pieces):
            extra = kwargs if index == len(pieces) - 1 else {}
            try:
                sent = await context.bot.send_message(chat_id, piece, **extra)
            except ChatMigrated as migrated:
                new_chat_id = int(migrated.new_chat_id)
                log.info("the group of branch %s moved from %s to %s", branch.id, chat_id, new_chat_id)
                if not await follow_group(app, branch, chat_id, new_chat_id):
                    return None  # the new chat is another branch's: nothing is posted there
                chat_id = new_chat_id
                sent = await context.bot.send_message(chat_id, piece, **extra)
        return sent
    except Forbidden as exc:
        log.info("the group of branch %s cannot be reached: %s", branch.id, exc)
        await app.bot_data["services"].branches.set_reachable(branch, False)
    except BadRequest as exc:
        if not any(reason in str(exc).lower() for reason in GROUP_GONE):
            raise
        log.info("could not post in the group of branch %s: %s", branch.id, exc)
    return None


async def follow_group(app: Application, branch: Branch, old_chat_id: int, new_chat_id: int) -> bool:
    """The branch's group became the supergroup ``new_chat_id``: move the branch there
    (services.branches.migrate_chat). True when the branch's group is ``new_chat_id`` now.

    A bare branch someone set up in the supergroup meanwhile is retired for it, and the group is told.
    A branch there with members or records blocks the move: the branch is marked unreachable (its group
    posts wait) and the secretaries and deputies of both are told privately, once for that chat."""
    svc: Services = app.bot_data["services"]
    move = await svc.branches.migrate_chat(old_chat_id, new_chat_id)
    if move.blocked_by is not None and move.branch is not None:
        await svc.branches.set_reachable(branch, False)
        if await svc.calendar.claim(branch.id, "group_taken", str(new_chat_id), svc.clock.now(), outcome="done"):
            log.warning("branch %s cannot follow its group to %s: branch %s is there", branch.id, new_chat_id,
                        move.blocked_by.id)
            told: set[int] = set()
            for of in (move.branch, move.blocked_by):
                for holder in await svc.branches.managers(of):
                    if holder.user_id is None or holder.user_id in told:
                        continue
                    told.add(holder.user_id)
                    tr = Translator(language_of(holder.language, of.language))
                    await send_private(app, holder.user_id, tr("setup.migration_blocked", branch=move.branch.title,
                                                               other=move.blocked_by.title))
        return False
    if move.branch is None or move.branch.id != branch.id:
        return False
    if move.retired is not None:
        tr = Translator(move.branch.language)
        try:
            await app.bot.send_message(new_chat_id, tr("setup.migration_retired", branch=move.branch.title,
                                                       retired=move.retired.title))
        except TelegramError as exc:  # the move stands; what follows is posted anyway
            log.warning("could not tell group %s that branch %s followed it: %s", new_chat_id, branch.id, exc)
    return True


class GroupUnreachable(Exception):
    """A part of a notice that must arrive whole did not reach the group (see send_group_parts)."""


async def send_group_parts(context: Any, branch: Branch, pieces: list[str], start: int,
                           part_sent: Callable[[int], Awaitable[Any]]) -> Branch:
    """Send ``pieces[start:]`` to the group one by one through send_group, calling ``part_sent(n)``
    after the n-th piece arrived, for a notice that is sent part by part and completed on a retry.

    A group the bot cannot post in raises GroupUnreachable, so that the scheduled effect fails and is
    tried again (only the parts that did not arrive). After a migration the later parts go straight to
    the new chat id; the branch as it is now is returned.
    """
    for index in range(start, len(pieces)):
        sent = await send_group(context, branch, pieces[index])
        if sent is None:
            raise GroupUnreachable(f"branch {branch.id}: part {index + 1} of {len(pieces)} not posted")
        branch = following(branch, sent)
        await part_sent(index + 1)
    return branch


def following(branch: Branch, sent: Message | None) -> Branch:
    """The branch with the chat id the group now has, once send_group followed a migration, so the
    rest of a round goes straight to the new id instead of failing over again message by message."""
    if sent is None or sent.chat_id == branch.chat_id:
        return branch
    return branch.model_copy(update={"chat_id": sent.chat_id})


async def answer(query: CallbackQuery, text: str | None = None, alert: bool = False) -> None:
    """Every callback query is answered, once; a stale one (too old) is not an error.

    A popup is plain text (no HTML), at most 200 characters.
    """
    try:
        await query.answer(plain(text)[:200] if text else None, show_alert=alert)
    except BadRequest as exc:
        log.debug("callback answer failed: %s", exc)


async def edit_or_send(query: CallbackQuery, text: str, **kwargs: Any) -> Message | None:
    """Show ``text`` in place of the pressed message; a picture (which has no text to edit) gets a new
    message instead, and an edit that changes nothing is not an error."""
    message = query.message
    if message is not None and getattr(message, "text", None) is None:
        return await query.get_bot().send_message(message.chat.id, text, **kwargs)
    try:
        edited = await query.edit_message_text(text, **kwargs)
        return edited if isinstance(edited, Message) else None
    except BadRequest as exc:
        if "not modified" in str(exc).lower():
            return None
        raise


def conversation_exits(draft_key: str, prefix: str) -> tuple[Callable[[Update, Context], Awaitable[int]],
                                                          Callable[[Update, Context], Awaitable[None]]]:
    """The two ways out of a guided private flow, the same for every flow: ``cancel`` (the button or
    /cancel: forget the draft, say so) and ``unexpected`` (a press or a message the current step does not
    ask for). Messages: ``{prefix}.cancelled``, ``{prefix}.stale_button``, ``{prefix}.unexpected``."""

    async def cancel(update: Update, context: Context) -> int:
        context.user_data.pop(draft_key, None)
        tr = translator(update)
        if update.callback_query is not None:
            await answer(update.callback_query)
            await edit_or_send(update.callback_query, tr(f"{prefix}.cancelled"))
        else:
            await reply(update, tr(f"{prefix}.cancelled"))
        return ConversationHandler.END

    async def unexpected(update: Update, context: Context) -> None:
        if update.callback_query is not None:
            await answer(update.callback_query, translator(update)(f"{prefix}.stale_button"))
            return
        await reply(update, translator(update)(f"{prefix}.unexpected"))

    return cancel, unexpected


def refusal(update: Update, error: DomainError, branch: Branch | None = None, *, popup: bool | None = None) -> str:
    """A service's refusal in the reader's language. A press's refusal is a popup only the presser sees
    (``popup``, by default: the update is a press), so it is in their language even under a group's
    message, as a private message to them is; a refusal said in the group (popup=False) is in the
    branch's."""
    if popup is None:
        popup = update.callback_query is not None
    tr = presser_translator(update, branch) if popup else translator(update, branch)
    params = dict(error.params)
    if isinstance(params.get("roles"), str):  # role codes from a service, named in the reader's language
        names = [tr(f"role.{code.strip()}") if code.strip() in ROLE_CODES else code for code in params["roles"].split(",")]
        params["roles"] = Safe(tr("common.list_separator").join(html.escape(n, quote=False) for n in names))
    return tr(f"error.{error.key}", **params)


async def report_domain_error(update: Update, error: DomainError, branch: Branch | None = None) -> None:
    text = refusal(update, error, branch)
    if update.callback_query is not None:
        await answer(update.callback_query, text, alert=True)
    else:
        await reply(update, text)


def domain_errors(func: Callable[[Update, Context], Awaitable[Any]]) -> Callable[[Update, Context], Awaitable[Any]]:
    """Turn a service's refusal into a reply in the user's language (KarmaBot's pattern)."""

    @wraps(func)
    async def wrapper(update: Update, context: Context) -> Any:
        try:
            return await func(update, context)
        except DomainError as error:
            branch = None
            if update.effective_chat is not None and update.effective_chat.type != ChatType.PRIVATE:
                branch = await services(context).branches.find_by_chat(update.effective_chat.id)
            await report_domain_error(update, error, branch)
            return None

    return wrapper


async def error_handler(update: object, context: Context) -> None:
    """Log the failure and tell the user something went wrong, without details.

    An edit that changes nothing ("message is not modified") is what a redelivered update or a double
    tap produces when the first one already edited the message: the state is already what the user
    sees, so it is logged, not reported to the user as a failure.
    """
    if isinstance(context.error, BadRequest) and "message is not modified" in str(context.error).lower():
        log.warning("an edit changed nothing (a repeated update?): %s", context.error)
        return
    log.error("unhandled error while handling an update", exc_info=context.error)
    if isinstance(update, Update):
        text = translator(update)("error.internal")
        try:
            if update.callback_query is not None:
                await answer(update.callback_query, text, alert=True)
            elif update.effective_message is not None:
                await update.effective_message.reply_text(text)
        except Exception:  # the reply itself failing must not hide the original error
            log.exception("could not report the error to the user")


async def current_branch(update: Update, context: Context) -> Branch:
    """The group's branch, or in private the branch the user last chose (or their only one)."""
    svc = services(context)
    chat, user = update.effective_chat, update.effective_user
    assert chat is not None and user is not None
    if chat.type == ChatType.PRIVATE:
        return await svc.branches.private_branch(user.id)
    return await svc.branches.by_chat(chat.id)


# --- a command (or a press) sent in the middle of a flow ---------------------------------------------
#
# PTB gives an update to the first handler of group 0 that takes it. A conversation in progress (per
# user and chat) comes first only for the handlers registered after it: /meeting's conversation comes
# after /declare's, /role's and /setup's handlers, so /declare sent during /meeting would start a second
# flow, and the next text would go to whichever conversation PTB tries first. Hence two parts: every
# conversation ends its fallbacks with FlowInProgress (the refusal, naming the flow), and mid_flow_guard,
# in a group before 0 (handlers.menus registers it), asks each conversation through its public
# check_update whether it is in progress here and would refuse the update; if so that conversation
# answers it there, before group 0 is tried, and nothing else runs.

# Commands that only show something (a list, a panel, a figure): answered in the middle of a flow, which
# stays where it was. Every other command of the bot (one that starts a flow or changes something, and
# any command added later until it is listed here) is refused in the middle of a flow.
READ_ONLY_COMMANDS = frozenset({
    "start", "help", "points", "history", "rules", "pending", "members", "branch", "meetings", "migrants",
    "objections", "unconfirmed", "passbook", "rewards", "catalog", "merchants", "chart", "export", "town",
    "townqueue", "assess",
})
# Read-only when sent bare; with arguments they change something (/settings KEY VALUE, /dues MEMBER
# STATUS, /posts claim N, /rulebook KEY VALUE).
READ_ONLY_BARE = frozenset({"settings", "dues", "posts", "rulebook"})


def command_of(update: Update) -> tuple[str, bool] | None:
    """The command a message starts with, as CommandHandler reads it (lower case, without @bot), and
    whether arguments follow; None for a message that is no command or a command for another bot."""
    message = update.effective_message
    if message is None or not message.text or not message.entities:
        return None
    entity = message.entities[0]
    if entity.type != MessageEntity.BOT_COMMAND or entity.offset != 0:
        return None
    name, _, addressee = message.text[1:entity.length].partition("@")
    if addressee and addressee.lower() != (message.get_bot().username or "").lower():
        return None
    return name.lower(), len(message.text.split()) > 1


def known_commands(app: Application) -> frozenset[str]:
    """Every command some handler of the bot takes (conversations' entry points, states and fallbacks too)."""
    found = app.bot_data.get("known_commands")
    if found is None:
        names: set[str] = set()
        pending = [h for handlers in app.handlers.values() for h in handlers]
        while pending:
            handler = pending.pop()
            if isinstance(handler, CommandHandler):
                names |= handler.commands
            elif isinstance(handler, ConversationHandler):
                pending += [*handler.entry_points, *handler.fallbacks, *(h for hs in handler.states.values() for h in hs)]
        found = app.bot_data["known_commands"] = frozenset(names)
    return found


def conversations(app: Application) -> tuple[ConversationHandler, ...]:
    """The bot's conversations, in the order PTB tries them (by group, then as registered); read once,
    when the first update comes (every handler is registered by then)."""
    found = app.bot_data.get("conversations")
    if found is None:
        found = app.bot_data["conversations"] = tuple(
            h for group in sorted(app.handlers) for h in app.handlers[group] if isinstance(h, ConversationHandler))
    return found


def _read_only(name: str, has_args: bool) -> bool:
    return name in READ_ONLY_COMMANDS or (name in READ_ONLY_BARE and not has_args)


def _entry_commands(app: Application) -> frozenset[str]:
    """The commands that start some conversation (/declare, /start declare-3, /meeting, …)."""
    found = app.bot_data.get("entry_commands")
    if found is None:
        found = app.bot_data["entry_commands"] = frozenset(
            name for c in conversations(app) for entry in c.entry_points if isinstance(entry, CommandHandler) for name in entry.commands)
    return found


def _starts_a_flow(app: Application, update: Update) -> bool:
    """Whether some conversation's entry point takes this update (/start declare-3 starts /declare)."""
    return any(entry.check_update(update) not in (None, False) for c in conversations(app) for entry in c.entry_points)


class FlowInProgress(BaseHandler[Update, Context, None]):
    """The last fallback of every conversation: what would take the user out of the flow in progress is
    refused, naming the flow (catalog ``flow.name.<flow>``); the flow stays where it was, nothing is written.

    That is a command of the bot that is neither the flow's own (its entry points with allow_reentry, its
    states, /cancel) nor read-only, and a press that would start another conversation (Reject on a
    declaration card in the middle of /declare: its reason would have gone to the declaration). A
    mistyped command, or one for another bot, is not taken (handlers.menus answers the first in private;
    groups stay quiet). ``private_only``: a conversation per user (its reason typed in private) only
    refuses in private, where it takes its input."""

    def __init__(self, app: Application, flow: str, *, private_only: bool = False):
        super().__init__(self._refuse)
        self.app = app
        self.flow = flow
        self.private_only = private_only

    def check_update(self, update: object) -> bool | None:
        if not isinstance(update, Update) or update.effective_chat is None:
            return None
        if self.private_only and update.effective_chat.type != ChatType.PRIVATE:
            return None
        if update.callback_query is not None:  # (a press without data: handlers.menus.guard_empty_press)
            return True if update.callback_query.data and _starts_a_flow(self.app, update) else None
        if not filters.COMMAND.check_update(update):
            return None
        command = command_of(update)
        if command is None or command[0] not in known_commands(self.app):
            return None
        if _read_only(*command) and not _starts_a_flow(self.app, update):
            return None
        return True

    async def _refuse(self, update: Update, context: Context) -> None:
        tr = await _chat_translator(update, context)
        flow = tr(f"flow.name.{self.flow}")
        if update.callback_query is not None:
            await answer(update.callback_query, tr("flow.busy_button", flow=flow), alert=True)
            return
        message = update.effective_message
        assert message is not None and message.text is not None
        await reply(update, tr("flow.busy", command=message.text.split(maxsplit=1)[0], flow=flow))


async def _chat_translator(update: Update, context: Context) -> Translator:
    """The chat's language for a reply; the presser's for a popup (presser_translator)."""
    branch = None
    if not is_private(update) and update.effective_chat is not None:
        branch = await services(context).branches.find_by_chat(update.effective_chat.id)
    return presser_translator(update, branch) if update.callback_query is not None else translator(update, branch)


def _flow_of(conversation: ConversationHandler) -> str | None:
    for fallback in conversation.fallbacks:
        if isinstance(fallback, FlowInProgress):
            return fallback.flow
    return None


async def mid_flow_guard(update: Update, context: Context) -> None:
    """A command or a press in a chat where one of the user's flows is in progress, before group 0 sees it.

    The flow refuses it (FlowInProgress) → answered here, and nothing else runs. The flow's own command
    or start button again (allow_reentry: /report, or the quarter's "write the report" button, in the
    middle of /report) → handled here too, by that flow, which starts over: when that threw away the steps
    already done (the state changed), the user is told. Anything else (read-only, /cancel, a
    mistyped command, a press of the flow's own, no flow in progress) goes on to group 0 as before.
    """
    app = context.application
    command = command_of(update) if update.callback_query is None else None
    if command is not None:  # cheap exits first: this runs before every command (/points included)
        name, has_args = command
        if name not in known_commands(app) or (_read_only(name, has_args) and name not in _entry_commands(app)):
            return  # a mistyped command (handlers.menus), or read-only and no flow's own command
    elif update.callback_query is None or not update.callback_query.data or not _starts_a_flow(app, update):
        return  # a text, or a press that starts no conversation: the flow's states see it in group 0
    for conversation in conversations(app):
        check = conversation.check_update(update)
        if check is None or check is False:
            continue
        state, _, handler, _ = check
        if isinstance(handler, FlowInProgress):
            await _handled_here(app, update, conversation.handle_update(update, app, check, context))
        if state is not None and handler in conversation.entry_points and (flow := _flow_of(conversation)):
            await _handled_here(app, update, _restart(conversation, update, app, check, context, state, flow))
    if update.callback_query is not None and (busy := _busy_in_private(app, update)) is not None:
        tr = await _chat_translator(update, context)
        await answer(update.callback_query, tr("flow.busy_button", flow=tr(f"flow.name.{busy}")), alert=True)
        raise ApplicationHandlerStop


async def _restart(conversation: ConversationHandler, update: Update, app: Application, check: object, context: Context,
                   state: object, flow: str) -> None:
    """The flow's own command or start button again: the flow starts over; said when that threw away the
    steps done — where the flow takes its input (a flow per user, started from a group's button: in private)."""
    await conversation.handle_update(update, app, check, context)
    after = conversation.check_update(update)
    if not after or after[0] != state:
        tr = await _chat_translator(update, context)
        text = tr("flow.restarted", flow=tr(f"flow.name.{flow}"))
        if update.callback_query is not None and not conversation.per_chat:
            await send_private(context, update.callback_query.from_user.id, text)
        else:
            await reply(update, text)


async def _handled_here(app: Application, update: Update, handling: Awaitable[object]) -> None:
    """Run what the guard decided for this update, then stop it whatever happened: an error (a refusal
    that could not be sent) goes to the error handler, and the update must still not reach group 0 —
    there it would start the other flow the guard exists to refuse."""
    try:
        await handling
    except ApplicationHandlerStop:
        pass
    except Exception as exc:
        await app.process_error(update, exc)
    raise ApplicationHandlerStop


def _busy_in_private(app: Application, update: Update) -> str | None:
    """For a press that starts a conversation per user only (Leave, pressed in the group; its reason is
    typed in private): the flow the presser has in progress in their private chat, where the reason would
    go to it instead. Each conversation is asked through check_update about a /cancel from the presser
    in private: every conversation ends on /cancel, and only one in progress there takes it."""
    query = update.callback_query
    assert query is not None
    starting = [c for c in conversations(app) if not c.per_chat
                and any(entry.check_update(update) not in (None, False) for entry in c.entry_points)]
    if not starting or query.message is None:
        return None
    bot = update.get_bot()
    probe_message = Message(message_id=0, date=query.message.date, chat=Chat(query.from_user.id, ChatType.PRIVATE),
                            from_user=query.from_user, text="/cancel", entities=(MessageEntity(MessageEntity.BOT_COMMAND, 0, 7),))
    probe_message.set_bot(bot)
    probe = Update(update_id=0, message=probe_message)
    probe.set_bot(bot)
    for conversation in conversations(app):
        if conversation in starting:
            continue
        check = conversation.check_update(probe)
        if check and check[0] is not None and (flow := _flow_of(conversation)) is not None:
            return flow
    return None
