"""Secretary succession in Telegram (bot.services.succession): a member leaving the group loses their roles
(announced in the group); /role N secretary by a secretary makes N secretary and asks "hand over: I step down" or "keep both"; and with no
secretary left in the group, a group administrator's /role offers to claim the secretary role.

Buttons carry no authority: ``ss:VERB:BRANCH:MEMBER:SENDER`` names what was asked and by whom (only that
member may press), the press re-checks that the presser is a secretary of that branch (the service); ``sc:claim`` re-asks Telegram whether the presser is
an administrator of the group and the database whether the branch still has no secretary. The buttons never
expire: a press asks Telegram whether sender and appointee are still in the group, and the service refuses,
changing and posting nothing, once the choice no longer describes the roles (QA4 #4, #5)."""

from __future__ import annotations

import logging

from telegram import ChatMember, ChatMemberRestricted, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, ChatMemberHandler, MessageHandler, filters

from bot.domain.records import Branch, Member, Role
from bot.errors import DomainError
from bot.i18n import Translator, language_of
from bot.services.succession import Departure, SuccessionService
from handlers.common import (Context, actor, answer, domain_errors, edit_or_send, presser_translator, reply,
                             send_group, send_private, services, translator)
from handlers.setup import is_group_admin

log = logging.getLogger(__name__)
DEPARTED_GROUP = 1  # after group 0: whatever else handles the same service message, this runs too
IN_CHAT = {ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER}


def succession(context: Context) -> SuccessionService:
    found = context.application.bot_data.get("succession")
    if found is None:
        svc = services(context)
        found = context.application.bot_data["succession"] = SuccessionService(svc.db, svc.clock)
    return found


def _in_chat(member: ChatMember) -> bool:
    if isinstance(member, ChatMemberRestricted):
        return member.is_member
    return member.status in IN_CHAT


def _roles(tr: Translator, roles) -> str:
    return tr("common.list_separator").join(tr(f"role.{r.value}") for r in sorted(roles))


async def _announce(context: Context, departure: Departure) -> None:
    """In the group: who left and which roles they no longer hold (and, with no secretary left, how an
    administrator takes over); to the member, privately, the same about themselves."""
    branch, member = departure.branch, departure.member
    tr = Translator(branch.language)
    text = tr("succession.left_group", name=member.name, roles=_roles(tr, departure.roles))
    if departure.vacant:
        text += "\n" + tr("succession.vacant_hint")
    await send_group(context, branch, text)
    if member.user_id is not None:
        theirs = Translator(language_of(member.language, branch.language))
        await send_private(context, member.user_id, theirs("succession.left_group_told", branch=branch.title,
                                                           roles=_roles(theirs, departure.roles)))


async def departed(context: Context, chat_id: int, user_id: int) -> None:
    found = await succession(context).left_group(chat_id, user_id)
    if found is not None:
        log.info("member %s left the group of branch %s: roles %s dropped", found.member.id, found.branch.id,
                 sorted(r.value for r in found.roles))
        await _announce(context, found)


async def left_message(update: Update, context: Context) -> None:
    """The service message "X left the group" (or was removed)."""
    message = update.effective_message
    if message is None or message.left_chat_member is None or message.chat.type == ChatType.PRIVATE:
        return
    if message.left_chat_member.is_bot:
        return
    await departed(context, message.chat.id, message.left_chat_member.id)


async def member_changed(update: Update, context: Context) -> None:
    """A chat_member update (the bot is an administrator): someone went from in the group to out of it."""
    change = update.chat_member
    if change is None or change.chat.type == ChatType.PRIVATE or change.new_chat_member.user.is_bot:
        return
    if _in_chat(change.old_chat_member) and not _in_chat(change.new_chat_member):
        await departed(context, change.chat.id, change.new_chat_member.user.id)


async def _gone(context: Context, branch: Branch, user_ids) -> None:
    """Asks Telegram whether each of these users is still in the group: one who is not (a departure the
    bot did not see: it was not in the group then, or Telegram sent no service message) is treated as
    leaving now. A user Telegram cannot tell about is taken as present."""
    for user_id in user_ids:
        if user_id is None:
            continue
        try:
            status = await context.bot.get_chat_member(branch.chat_id, user_id)
        except TelegramError as exc:
            log.info("could not ask whether user %s is in the group of branch %s: %s", user_id, branch.id, exc)
            continue
        if not _in_chat(status):
            await departed(context, branch.chat_id, user_id)


async def _gone_secretaries(context: Context, branch: Branch) -> None:
    """Asks Telegram about each secretary the database has (``_gone``)."""
    await _gone(context, branch, [s.user_id for s in await succession(context).secretaries(branch)])


async def offer_claim(update: Update, context: Context, branch: Branch) -> bool:
    """/role in the group from someone who is not a secretary: when the branch has no secretary in the
    group any more, an administrator gets the claim button, anyone else is told who may claim. False:
    there is a secretary — /role goes on as usual (and refuses a non-secretary)."""
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    svc = succession(context)
    if await svc.is_secretary(branch, user.id):
        return False
    await _gone_secretaries(context, branch)
    if await svc.secretaries(branch):
        return False
    tr = translator(update, branch)
    if not await is_group_admin(context, chat.id, user.id):
        await reply(update, tr("succession.vacant_not_admin"))
        return True
    button = InlineKeyboardButton(tr("succession.claim_button"), callback_data="sc:claim")
    await reply(update, tr("succession.claim_offer", name=user.full_name), reply_markup=InlineKeyboardMarkup([[button]]))
    return True


@domain_errors
async def claim_pressed(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and update.effective_chat is not None
    if update.effective_chat.type == ChatType.PRIVATE:
        await answer(query, presser_translator(update)("succession.claim_in_group"), alert=True)
        return
    branch = await services(context).branches.by_chat(update.effective_chat.id)
    admin = await is_group_admin(context, branch.chat_id, query.from_user.id)  # now, not when /role was sent
    if admin:
        await _gone_secretaries(context, branch)
    member = await succession(context).claim(branch, actor(query.from_user), is_admin=admin)
    tr = translator(update, branch)
    log.info("branch %s: user %s (member %s), a group administrator, claimed the secretary role", branch.id,
             query.from_user.id, member.id)
    await answer(query, presser_translator(update, branch)("succession.claimed_popup"))
    await edit_or_send(query, tr("succession.claimed", name=member.name))


async def secretary_added(update: Update, context: Context, branch: Branch, target: Member) -> bool:
    """/role MEMBER secretary from a secretary, for a member who is not one: the member becomes secretary
    at once (as before: a second secretary), and the sender is asked whether that was a hand-over —
    "hand over: I step down" or "keep both", by buttons only the sender may press. False: not that case
    (the usual /role goes on)."""
    user = update.effective_user
    assert user is not None
    svc = services(context)
    if target.user_id == user.id or Role.SECRETARY in await svc.roster.roles(target):
        return False
    if not await succession(context).is_secretary(branch, user.id):
        return False
    member, _ = await succession(context).add_secretary(branch, actor(user), target.id)
    me = await svc.roster.member_of(branch, user.id)
    tr = translator(update, branch)
    data = f"{branch.id}:{member.id}:{me.id}"
    buttons = InlineKeyboardMarkup([
        [InlineKeyboardButton(tr("succession.hand_over_button"), callback_data=f"ss:quit:{data}")],
        [InlineKeyboardButton(tr("succession.keep_button"), callback_data=f"ss:keep:{data}")],
    ])
    await reply(update, tr("succession.added_offer", name=member.name), reply_markup=buttons)
    return True


@domain_errors
async def secretary_choice_pressed(update: Update, context: Context) -> None:
    """"Hand over: I step down" or "keep both" under /role MEMBER secretary: only the secretary who sent it
    (the data names their member row: a restriction, not an authority — the service re-checks the role)."""
    query = update.callback_query
    assert query is not None and query.data is not None and query.message is not None
    _, verb, branch_id, member_id, sender_id = query.data.split(":")
    svc = services(context)
    branch = await svc.branches.by_id(int(branch_id))
    chat = query.message.chat
    in_group = chat.type != ChatType.PRIVATE
    popup = presser_translator(update, branch)
    if in_group and chat.id != branch.chat_id:  # a crafted press: another branch's buttons in this group
        await answer(query, popup("succession.not_here"), alert=True)
        return
    try:
        me: Member | None = await svc.roster.member_of(branch, query.from_user.id)
    except DomainError:  # not (or no longer) a member here
        me = None
    if me is None or me.id != int(sender_id):
        await answer(query, popup("succession.not_yours"), alert=True)
        return
    successor = await svc.roster.member_of_id(int(member_id))
    if successor.branch_id != branch.id:
        await answer(query, popup("succession.not_here"), alert=True)
        return
    # Whether the two are still in the group, asked of Telegram now: a departure the bot did not see drops
    # the roles (announced) before the service checks that the choice still applies.
    await _gone(context, branch, [query.from_user.id, successor.user_id])
    tr = translator(update, branch)
    if verb == "keep":
        me, successor = await succession(context).keep(branch, actor(query.from_user), successor.id)
        await answer(query)
        await edit_or_send(query, tr("succession.kept", name=successor.name, by=me.name))
        return
    done = await succession(context).hand_over(branch, actor(query.from_user), successor.id)
    log.info("branch %s: secretary %s handed the role over to member %s", branch.id, done.predecessor.id, done.successor.id)
    await answer(query)
    await edit_or_send(query, tr("succession.handed", name=done.successor.name, by=done.predecessor.name))
    if not in_group:  # the group hears of it too
        group = Translator(branch.language)
        await send_group(context, branch, group("succession.handed", name=done.successor.name, by=done.predecessor.name))
    if done.successor.user_id is not None:
        theirs = Translator(language_of(done.successor.language, branch.language))
        await send_private(context, done.successor.user_id, theirs("succession.handed_told", branch=branch.title,
                                                                   by=done.predecessor.name))


def register(app: Application) -> None:
    app.add_handler(CallbackQueryHandler(claim_pressed, pattern=r"^sc:claim$"))
    app.add_handler(CallbackQueryHandler(secretary_choice_pressed, pattern=r"^ss:(quit|keep):\d{1,12}:\d{1,12}:\d{1,12}$"))
    app.add_handler(MessageHandler(filters.StatusUpdate.LEFT_CHAT_MEMBER, left_message), group=DEPARTED_GROUP)
    app.add_handler(ChatMemberHandler(member_changed, ChatMemberHandler.CHAT_MEMBER), group=DEPARTED_GROUP)
