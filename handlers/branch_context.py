"""Which branch a private chat is about, said where it matters for a member of several branches (QA3 #4,
#5): a refusal saying "本支部 has no such entry/member", a receipt (/paid), /start's role section name the
branch the chat works with and point to /branch; a single-branch user's texts stay as they were. And the
switch itself (/branch's buttons) waits while a private flow is in progress: the flow's draft belongs to
the branch it started in (a declaration begun in B and submitted after "switched to A" was filed in B)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from telegram import Chat, Message, MessageEntity, Update, User
from telegram.constants import ChatType
from telegram.ext import Application

from bot.domain.records import Branch
from bot.errors import DomainError
from handlers.common import (Context, FlowInProgress, answer, conversations, is_private, refusal, reply, services,
                             translator)

# Refusals that say "not in this branch": for a member of several, the branch is named and /branch offered.
BRANCH_REFUSALS = frozenset({"objection.entry_not_found", "record.entry_not_found", "member.not_found"})
_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)  # the /cancel probe's date (read by nothing)


async def several_branches_note(update: Update, context: Context, branch: Branch | None = None) -> str:
    """"\n当前支部：X（您在 N 个支部，切换支部：/branch）" in a private chat of a member of several branches
    (``branch``: the one the answer is about; by default the one the chat works with); "" otherwise."""
    user = update.effective_user
    if user is None or not is_private(update):
        return ""
    svc = services(context)
    mine = await svc.branches.branches_of(user.id)
    if len(mine) < 2:
        return ""
    if branch is None:
        try:
            branch = await svc.branches.private_branch(user.id)
        except DomainError:  # none chosen yet: the refusal already asks to choose
            return ""
    return "\n" + translator(update, branch)("branch.which", branch=branch.title, count=len(mine))


async def refusal_naming_branch(update: Update, context: Context, error: DomainError) -> str:
    """``refusal`` (in the reader's language), naming the branch for a member of several (BRANCH_REFUSALS)."""
    text = refusal(update, error)
    if error.key in BRANCH_REFUSALS:
        text += await several_branches_note(update, context)
    return text


def naming_branch(func: Callable[[Update, Context], Awaitable[Any]]) -> Callable[[Update, Context], Awaitable[Any]]:
    """Under ``domain_errors``: a BRANCH_REFUSALS refusal to a member of several branches, in private, says
    which branch and how to switch; anything else goes on to ``domain_errors`` as before."""

    @wraps(func)
    async def wrapper(update: Update, context: Context) -> Any:
        try:
            return await func(update, context)
        except DomainError as error:
            if error.key not in BRANCH_REFUSALS or not (note := await several_branches_note(update, context)):
                raise
            text = refusal(update, error) + note
            if update.callback_query is not None:
                await answer(update.callback_query, text, alert=True)
            else:
                await reply(update, text)
            return None

    return wrapper


def private_flow(app: Application, user: User, bot: Any) -> str | None:
    """The flow ``user`` has in progress in their private chat (its ``flow.name.*`` code), or None: each
    conversation is asked through its public check_update about a /cancel from them there — every flow
    ends on /cancel, and only one in progress takes it."""
    probe_message = Message(message_id=0, date=_EPOCH, chat=Chat(user.id, ChatType.PRIVATE), from_user=user,
                            text="/cancel", entities=(MessageEntity(MessageEntity.BOT_COMMAND, 0, 7),))
    probe_message.set_bot(bot)
    probe = Update(update_id=0, message=probe_message)
    probe.set_bot(bot)
    for conversation in conversations(app):
        check = conversation.check_update(probe)
        if check and check[0] is not None:
            for fallback in conversation.fallbacks:
                if isinstance(fallback, FlowInProgress):
                    return fallback.flow
    return None
