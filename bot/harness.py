"""A whole bot wired to the offline Telegram: the real Application, handlers, services and database.

Used by the offline demo and by the handler tests, so both drive exactly the code that runs live.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path

import telegram
from telegram.ext import Application

from bot.app import build_application
from bot.clock import Clock
from bot.offline import OfflineTelegram, RecordedCall
from bot.services import Services
from handlers.menus import set_menus
from storage.backends import make_database

_TAG = re.compile(r"<[^>]+>")


def plain(text: str) -> str:
    """HTML as a person reads it."""
    return html.unescape(_TAG.sub("", text))


class Harness:
    def __init__(self, db_path: str | Path, clock: Clock | None = None, echo: Callable[[str], None] | None = None):
        """``db_path``: a SQLite file, or a database URL (``sqlite:///…``, ``postgresql://…``)."""
        self.world = OfflineTelegram()
        self.db = make_database(db_path)
        self.services = Services(self.db, clock)
        self.app: Application = build_application(
            self.world.token, self.services, request=self.world.request, rate_limit=False, set_menus=False
        )
        self.echo = echo
        self._names: dict[int, str] = {}

    async def __aenter__(self) -> Harness:
        await self.db.open()
        await self.app.initialize()
        self.world.attach(self.app.bot)
        await set_menus(self.app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.app.shutdown()
        await self.db.close()

    # --- people and chats ------------------------------------------------------------------------

    def user(self, user_id: int, name: str, *, username: str | None = None, language: str = "zh-hans") -> telegram.User:
        self._names[user_id] = name
        return self.world.user(user_id, name, username=username, language_code=language)

    def group(self, chat_id: int, title: str) -> telegram.Chat:
        self._names[chat_id] = title
        return self.world.group(chat_id, title)

    def private(self, user: telegram.User) -> telegram.Chat:
        return self.world.private(user)

    # --- acting ----------------------------------------------------------------------------------

    async def feed(self, update: telegram.Update) -> list[RecordedCall]:
        """Process one update; returns the Bot API calls it caused."""
        before = len(self.world.calls)
        await self.app.process_update(update)
        calls = self.world.calls[before:]
        if self.echo:
            for call in calls:
                self.print_call(call)
        return calls

    async def say(self, user: telegram.User, chat: telegram.Chat, text: str) -> list[RecordedCall]:
        if self.echo:
            self.echo(f"{self._where(chat.id)} {user.full_name}: {text}")
        return await self.feed(self.world.text(user, chat, text))

    async def send_photo(self, user: telegram.User, chat: telegram.Chat) -> list[RecordedCall]:
        if self.echo:
            self.echo(f"{self._where(chat.id)} {user.full_name}: [photo]")
        return await self.feed(self.world.photo(user, chat))

    async def send_document(self, user: telegram.User, chat: telegram.Chat, name: str, content: bytes) -> list[RecordedCall]:
        if self.echo:
            self.echo(f"{self._where(chat.id)} {user.full_name}: [file {name}]")
        return await self.feed(self.world.document(user, chat, file_name=name, content=content))

    def find_button(self, chat_id: int, label: str) -> tuple[telegram.Message, str]:
        """The newest bot message in the chat with a button whose text contains ``label``."""
        for message in reversed(self.world.messages(chat_id)):
            for text, data in self.world.buttons(message):
                if label in text and not data.startswith("http"):
                    return message, data
        raise LookupError(f"no button '{label}' in chat {chat_id}")

    async def tap(self, user: telegram.User, chat_id: int, label: str) -> list[RecordedCall]:
        message, data = self.find_button(chat_id, label)
        if self.echo:
            self.echo(f"{self._where(chat_id)} {user.full_name} taps [{label}]")
        return await self.feed(self.world.press(user, message, data))

    async def press(self, user: telegram.User, message: telegram.Message, data: str) -> list[RecordedCall]:
        return await self.feed(self.world.press(user, message, data))

    # --- printing --------------------------------------------------------------------------------

    def _where(self, chat_id: int) -> str:
        return f"[{self._names.get(chat_id, chat_id)}]" if chat_id < 0 else f"[private {self._names.get(chat_id, chat_id)}]"

    def print_call(self, call: RecordedCall) -> None:
        """Echo one Bot API call as a line of the transcript (also for calls made by scheduled work)."""
        assert self.echo is not None
        params = call.params
        if call.method in ("sendMessage", "editMessageText") and call.ok:
            verb = "bot" if call.method == "sendMessage" else "bot (edits)"
            buttons = [text for text, _ in self.world.buttons(call)]
            suffix = "\n      " + "  ".join(f"[{b}]" for b in buttons) if buttons else ""
            body = plain(params.get("text", "")).replace("\n", "\n      ")
            self.echo(f"{self._where(int(params['chat_id']))} {verb}: {body}{suffix}")
        elif call.method == "answerCallbackQuery" and params.get("text"):
            self.echo(f"    (popup: {plain(params['text'])})")
        elif call.method == "editMessageReplyMarkup" and call.ok:
            buttons = [text for text, _ in self.world.buttons(call)]
            self.echo(f"{self._where(int(params['chat_id']))} bot (new buttons): " + "  ".join(f"[{b}]" for b in buttons))
        elif call.method == "sendPhoto" and call.ok:
            self.echo(f"{self._where(int(params['chat_id']))} bot: [photo]")
