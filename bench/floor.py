"""The floor: a bare PTB Application on the same offline Telegram, with one handler that makes the same
Bot API calls (same methods, same number, same parameters) as the flow did for the same kind of update,
with no logic and no database. What the flow costs above it is ours, not PTB's."""

from __future__ import annotations

from typing import Any

import telegram
from telegram.constants import ParseMode
from telegram.ext import Application, CallbackContext, CallbackQueryHandler, Defaults, MessageHandler, filters

from bot.offline import OfflineTelegram, RecordedCall

Script = list[tuple[str, dict[str, Any]]]


def script_of(calls: list[RecordedCall]) -> Script:
    return [(c.method, dict(c.params)) for c in calls]


class Floor:
    def __init__(self, world: OfflineTelegram):
        self.world = world
        self.script: Script = []
        self.edits = 0
        self.app: Application = (
            Application.builder().token(world.token).defaults(Defaults(parse_mode=ParseMode.HTML))
            .request(world.request).get_updates_request(world.request).updater(None).build()
        )
        self.app.add_handler(MessageHandler(filters.ALL, self._replay))
        self.app.add_handler(CallbackQueryHandler(self._replay))

    async def __aenter__(self) -> Floor:
        await self.app.initialize()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.app.shutdown()

    async def process(self, update: telegram.Update, script: Script) -> None:
        self.script = script
        await self.app.process_update(update)

    async def _replay(self, update: telegram.Update, context: CallbackContext) -> None:
        bot = context.bot
        for method, params in self.script:
            markup = params.get("reply_markup")
            markup = telegram.InlineKeyboardMarkup.de_json(markup, bot) if isinstance(markup, dict) else None
            if method == "sendMessage":
                await bot.send_message(params["chat_id"], params["text"], reply_markup=markup)
            elif method == "editMessageText":
                self.edits += 1  # an edit must change the text, or Telegram refuses it
                await bot.edit_message_text(f"{params['text']} ·{self.edits}", chat_id=params["chat_id"],
                                            message_id=params["message_id"], reply_markup=markup)
            elif method == "answerCallbackQuery":
                await bot.answer_callback_query(update.callback_query.id if update.callback_query else params["callback_query_id"],
                                                text=params.get("text"), show_alert=bool(params.get("show_alert")))
            elif method == "sendPhoto":
                await bot.send_photo(params["chat_id"], params["photo"], caption=params.get("caption"), reply_markup=markup)
            elif method == "editMessageReplyMarkup":
                await bot.edit_message_reply_markup(chat_id=params["chat_id"], message_id=params["message_id"], reply_markup=markup)
            else:
                await bot.do_api_request(method, api_kwargs=params)
