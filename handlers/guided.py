"""Steps shared by the guided private flows: a member's text → optional photo → confirm (/declare and
/report), and a decider's "give a reason" after a button (rejecting a declaration, returning a migrant
report). Each flow names its draft, its callback prefix and its catalog keys; the steps are written once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ConversationHandler

from bot.domain.records import Branch
from bot.errors import DomainError
from bot.i18n import Translator
from handlers.common import Context, answer, refusal, reply, translator


@dataclass(frozen=True)
class DraftSteps:
    """The draft-keeping steps of one guided flow.

    ``draft_key``: where the draft lives in user_data (it holds ``branch_id``). ``catalog``: the flow's
    catalog prefix (``{catalog}.ask_photo``, ``{catalog}.no_photo``, ``{catalog}.submit``). ``data``: its
    callback prefix (``{data}:np`` no photo, ``{data}:x`` cancel). ``submit_data``: the Submit button's data.
    """

    draft_key: str
    catalog: str
    data: str
    submit_data: str

    @property
    def cancel_data(self) -> str:
        return f"{self.data}:x"

    def cancel_row(self, tr: Translator) -> list[InlineKeyboardButton]:
        return [InlineKeyboardButton(tr("common.cancel"), callback_data=self.cancel_data)]

    def draft(self, context: Context) -> dict[str, Any]:
        return context.user_data[self.draft_key]

    async def branch(self, context: Context) -> Branch:
        return await context.application.bot_data["services"].branches.by_id(self.draft(context)["branch_id"])

    async def take_text(self, update: Update, context: Context, branch: Branch, field: str,
                        check: Callable[[str | None], Any]) -> bool:
        """Check the message's text with the service; a refusal is said and the step stays (False);
        a good text is kept in the draft under ``field`` (True)."""
        try:
            value = check(update.effective_message.text)  # type: ignore[union-attr]
        except DomainError as error:
            await reply(update, refusal(update, error, branch))
            return False
        self.draft(context)[field] = value
        return True

    async def ask_photo(self, update: Update, tr: Translator) -> None:
        buttons = InlineKeyboardMarkup([[InlineKeyboardButton(tr(f"{self.catalog}.no_photo"), callback_data=f"{self.data}:np")],
                                        self.cancel_row(tr)])
        await reply(update, tr(f"{self.catalog}.ask_photo"), reply_markup=buttons)

    async def show_confirm(self, update: Update, context: Context, tr: Translator, summary: str) -> None:
        buttons = InlineKeyboardMarkup([[InlineKeyboardButton(tr(f"{self.catalog}.submit"), callback_data=self.submit_data),
                                         InlineKeyboardButton(tr("common.cancel"), callback_data=self.cancel_data)]])
        await context.bot.send_message(update.effective_chat.id, summary, reply_markup=buttons)  # type: ignore[union-attr]

    def photo_handlers(self, confirm_step: Callable[[Update, Context], Awaitable[int]]) -> tuple[
            Callable[[Update, Context], Awaitable[int]], Callable[[Update, Context], Awaitable[int]]]:
        """The photo step's two answers: a photo (its largest size kept) or the No photo button; both go
        on to ``confirm_step``."""

        async def photo_sent(update: Update, context: Context) -> int:
            message = update.effective_message
            assert message is not None and message.photo
            self.draft(context)["photo"] = message.photo[-1].file_id
            return await confirm_step(update, context)

        async def no_photo(update: Update, context: Context) -> int:
            assert update.callback_query is not None
            await answer(update.callback_query)
            self.draft(context)["photo"] = None
            return await confirm_step(update, context)

        return photo_sent, no_photo


REASON = 0


@dataclass(frozen=True)
class ReasonStep:
    """A button that needs a reason typed in private: Reject a declaration, Return a migrant report.

    ``ask(update, context, number)`` checks the presser may act and returns the question (a refusal is a
    DomainError, shown as an alert); ``decide(update, context, number, reason)`` acts, and its refusals
    whose key is in ``ask_again`` (no reason, too long) ask again; ``done(update, context, result)`` says
    and publishes the outcome. The number pressed is kept in user_data under ``store_key`` meanwhile.
    """

    store_key: str
    ask_again: tuple[str, ...]
    ask: Callable[[Update, Context, int], Awaitable[str]]
    decide: Callable[[Update, Context, int, str | None], Awaitable[Any]]
    done: Callable[[Update, Context, Any], Awaitable[None]]

    async def start(self, update: Update, context: Context) -> int:
        query = update.callback_query
        assert query is not None and query.data is not None
        number = int(query.data.split(":")[2])
        try:
            question = await self.ask(update, context, number)
        except DomainError as error:
            await answer(query, refusal(update, error), alert=True)
            return ConversationHandler.END
        await answer(query)
        context.user_data[self.store_key] = number
        await context.bot.send_message(query.from_user.id, question)
        return REASON

    async def reason(self, update: Update, context: Context) -> int:
        number = context.user_data.get(self.store_key)
        message = update.effective_message
        assert message is not None and update.effective_user is not None
        try:
            result = await self.decide(update, context, number, message.text)  # type: ignore[arg-type]
        except DomainError as error:
            await reply(update, refusal(update, error))
            return REASON if error.key in self.ask_again else ConversationHandler.END
        context.user_data.pop(self.store_key, None)
        await self.done(update, context, result)
        return ConversationHandler.END

    async def cancel(self, update: Update, context: Context) -> int:
        context.user_data.pop(self.store_key, None)
        await reply(update, translator(update)("common.cancelled"))
        return ConversationHandler.END
