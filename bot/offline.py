"""Offline stand-in for the Telegram Bot API.

A real :class:`telegram.ext.Application` talks to Telegram only through
:class:`telegram.request.BaseRequest`.  Swapping in :class:`OfflineRequest` lets the whole
PTB stack (defaults, handlers, ``reply_text``, ``File.download_as_bytearray`` ...) run with
no network: Bot API calls are answered locally from an :class:`OfflineTelegram` "world" that
keeps chats, messages and files, records every call, and enforces the Telegram limits that
commonly bite in production (message length, HTML parse errors, callback data size, blocked
users, edits that change nothing).

Typical use::

    world = OfflineTelegram()
    app = (
        Application.builder().token(world.token)
        .request(world.request).get_updates_request(world.request).build()
    )
    await app.initialize()
    world.attach(app.bot)
    alice = world.user(1, "Alice")
    await app.process_update(world.text(alice, world.private(alice), "/start"))
    assert world.last_message(alice.id).text == "..."
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote, urlsplit

import telegram
from telegram.request import BaseRequest, RequestData

__all__ = ["OfflineRequest", "OfflineTelegram", "RecordedCall", "parse_html"]

JSONDict = dict[str, Any]
Files = dict[str, tuple[str, bytes, str]]
_Handler = Callable[[JSONDict, Files], Any]

MAX_MESSAGE_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64

#: Methods that put something visible into a chat; used by :meth:`OfflineTelegram.sent`.
_OUTPUT_PREFIXES = ("send", "editMessage", "copyMessage", "forwardMessage")
#: Methods that Telegram refuses with 403 when the private chat's user blocked the bot.
_BLOCKABLE_PREFIXES = ("send", "edit", "copy", "forward")
_BOT_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
BOT_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{1,32})?(?![A-Za-z0-9_@])")  # a command entity in a text


@dataclass
class RecordedCall:
    """One Bot API call the bot made, as the world saw it."""

    method: str
    params: JSONDict
    result: Any
    #: Bot API error JSON if the call failed (then ``result`` is ``None``).
    error: JSONDict | None = None
    #: Uploaded multipart files: part name -> (file name, content, mime type).
    files: Files = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def chat_id(self) -> int | str | None:
        value = self.params.get("chat_id")
        return _normalize_chat_id(value) if value is not None else None


class _ApiError(Exception):
    """Raised inside the world; turned into Bot API error JSON with an HTTP status."""

    def __init__(self, status: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSONDict:
        data: JSONDict = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            data["parameters"] = self.parameters
        return data


def _bad_request(description: str, parameters: JSONDict | None = None) -> _ApiError:
    return _ApiError(HTTPStatus.BAD_REQUEST, f"Bad Request: {description}", parameters)


def _forbidden(description: str) -> _ApiError:
    return _ApiError(HTTPStatus.FORBIDDEN, f"Forbidden: {description}")


def _normalize_chat_id(value: Any) -> int | str:
    """Bot API accepts chat ids as ints or numeric strings; '@name' stays a string."""
    if isinstance(value, int):
        return value
    text = str(value)
    try:
        return int(text)
    except ValueError:
        return text


def _chat_id(params: Mapping[str, Any]) -> int:
    """The call's numeric chat id; '@username' targets are not modelled (chat not found)."""
    value = _normalize_chat_id(params.get("chat_id", ""))
    if not isinstance(value, int):
        raise _bad_request("chat not found")
    return value


def _utf16_len(text: str) -> int:
    """Entity offsets/lengths are measured in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


# --------------------------------------------------------------------------- HTML parsing

_HTML_ENTITY_TYPES: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
    "tg-time": "date_time",
}
_NAMED_HTML_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class HtmlParseError(ValueError):
    """Telegram's 'can't parse entities' error, with Telegram's wording."""


@dataclass
class _OpenTag:
    name: str
    attrs: dict[str, str]
    start: int  # UTF-16 offset in the output text
    language: str | None = None


def _decode_html_entity(source: str, pos: int) -> tuple[str, int] | None:
    """Decode ``&...;`` at ``pos`` like Telegram: numeric ones plus lt/gt/amp/quot only."""
    end = source.find(";", pos + 1, pos + 12)
    if end == -1:
        return None
    body = source[pos + 1 : end]
    if body.startswith("#"):
        digits, base = (body[2:], 16) if body[1:2] in ("x", "X") else (body[1:], 10)
        try:
            code = int(digits, base) if digits else -1
        except ValueError:
            return None
        if not 0 < code <= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return None
        return chr(code), end + 1
    if body in _NAMED_HTML_ENTITIES:
        return _NAMED_HTML_ENTITIES[body], end + 1
    return None


def _byte_offset(source: str, pos: int) -> int:
    return len(source[:pos].encode("utf-8"))


def _parse_attributes(source: str, pos: int, tag: str, begin: int) -> tuple[dict[str, str], int]:
    """Parse ``name="value"`` pairs up to and including the closing ``>``."""
    attrs: dict[str, str] = {}
    size = len(source)
    while True:
        while pos < size and source[pos].isspace():
            pos += 1
        if pos >= size:
            raise HtmlParseError(f"Unclosed start tag at byte offset {_byte_offset(source, begin)}")
        if source[pos] == ">":
            return attrs, pos + 1
        name_end = pos
        while name_end < size and (source[name_end].isalnum() or source[name_end] in "-_"):
            name_end += 1
        if name_end == pos:
            raise HtmlParseError(
                f'Empty attribute name in the tag "{tag}" at byte offset '
                f"{_byte_offset(source, begin)}"
            )
        name = source[pos:name_end].lower()
        pos = name_end
        while pos < size and source[pos].isspace():
            pos += 1
        value = ""
        if pos < size and source[pos] == "=":
            pos += 1
            while pos < size and source[pos].isspace():
                pos += 1
            if pos >= size:
                raise HtmlParseError(
                    f"Unclosed start tag at byte offset {_byte_offset(source, begin)}"
                )
            if source[pos] in "\"'":
                quote = source[pos]
                close = source.find(quote, pos + 1)
                if close == -1:
                    raise HtmlParseError(
                        f"Unclosed start tag at byte offset {_byte_offset(source, begin)}"
                    )
                value = _unescape_html(source[pos + 1 : close])
                pos = close + 1
            else:
                value_end = pos
                while (
                    value_end < size
                    and not source[value_end].isspace()
                    and source[value_end] != ">"
                ):
                    value_end += 1
                value = _unescape_html(source[pos:value_end])
                pos = value_end
        attrs[name] = value


def _unescape_html(text: str) -> str:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos] == "&" and (decoded := _decode_html_entity(text, pos)) is not None:
            out.append(decoded[0])
            pos = decoded[1]
        else:
            out.append(text[pos])
            pos += 1
    return "".join(out)


def _entity_for(tag: _OpenTag, length: int, parent: _OpenTag | None) -> JSONDict | None:
    """The MessageEntity JSON Telegram would produce for a closed tag (or None)."""
    kind = _HTML_ENTITY_TYPES[tag.name]
    entity: JSONDict = {"type": kind, "offset": tag.start, "length": length}
    if kind == "text_link":
        href = tag.attrs.get("href", "")
        if not href:
            return None
        if match := re.fullmatch(r"tg://user\?id=(\d+)", href):
            user_id = int(match.group(1))
            entity["type"] = "text_mention"
            entity["user"] = {"id": user_id, "is_bot": False, "first_name": str(user_id)}
        else:
            entity["url"] = href
    elif kind == "code" and parent is not None and parent.name == "pre":
        css = tag.attrs.get("class", "")
        if css.startswith("language-") and parent.language is None:
            parent.language = css.removeprefix("language-")
        return None  # <pre><code> is a single pre entity
    elif kind == "pre" and tag.language:
        entity["language"] = tag.language
    elif kind == "blockquote" and "expandable" in tag.attrs:
        entity["type"] = "expandable_blockquote"
    elif kind == "custom_emoji":
        if not tag.attrs.get("emoji-id"):
            return None
        entity["custom_emoji_id"] = tag.attrs["emoji-id"]
    elif kind == "date_time":
        unix = tag.attrs.get("unix", "")
        if not unix.isdigit():
            return None
        entity["unix_time"] = int(unix)
        if tag.attrs.get("format"):
            entity["date_time_format"] = tag.attrs["format"]
    return entity


def parse_html(source: str) -> tuple[str, list[JSONDict]]:
    """Parse Telegram-flavoured HTML into (plain text, MessageEntity dicts).

    Mirrors the Bot API's strictness: unknown tags, stray ``<`` and unbalanced tags raise
    :class:`HtmlParseError` with Telegram's wording, so bugs surface in tests, not in prod.
    """
    out: list[str] = []
    out_len = 0  # UTF-16 length of the output so far
    stack: list[_OpenTag] = []
    entities: list[JSONDict] = []
    pos, size = 0, len(source)
    while pos < size:
        char = source[pos]
        if char == "&" and (decoded := _decode_html_entity(source, pos)) is not None:
            out.append(decoded[0])
            out_len += _utf16_len(decoded[0])
            pos = decoded[1]
            continue
        if char != "<":
            out.append(char)
            out_len += _utf16_len(char)
            pos += 1
            continue
        begin = pos
        if source.startswith("</", pos):
            close = source.find(">", pos)
            if close == -1:
                raise HtmlParseError(
                    f"Unclosed end tag at byte offset {_byte_offset(source, begin)}"
                )
            name = source[pos + 2 : close].strip().lower()
            if not stack:
                raise HtmlParseError(
                    f"Unexpected end tag at byte offset {_byte_offset(source, begin)}"
                )
            top = stack.pop()
            if name != top.name:
                raise HtmlParseError(
                    f"Unmatched end tag at byte offset {_byte_offset(source, begin)}, "
                    f'expected "</{top.name}>", found "</{name}>"'
                )
            entity = _entity_for(top, out_len - top.start, stack[-1] if stack else None)
            if entity is not None and entity["length"] > 0:
                entities.append(entity)
            pos = close + 1
            continue
        name_end = pos + 1
        while name_end < size and not source[name_end].isspace() and source[name_end] != ">":
            name_end += 1
        name = source[pos + 1 : name_end].lower()
        if name not in _HTML_ENTITY_TYPES:
            raise HtmlParseError(
                f'Unsupported start tag "{name}" at byte offset {_byte_offset(source, begin)}'
            )
        attrs, pos = _parse_attributes(source, name_end, name, begin)
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise HtmlParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset '
                f"{_byte_offset(source, begin)}"
            )
        stack.append(_OpenTag(name=name, attrs=attrs, start=out_len))
    if stack:
        raise HtmlParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


# --------------------------------------------------------------------------- request


class OfflineRequest(BaseRequest):
    """Answers Bot API calls locally. Shared state lives in an OfflineTelegram 'world'."""

    __slots__ = ("_world",)

    def __init__(self, world: OfflineTelegram) -> None:
        self._world = world

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        """Nothing to open: there is no connection pool."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        return await self._world._handle_http(url, method, request_data)


# --------------------------------------------------------------------------- world


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    content: bytes
    file_name: str = "file"
    mime_type: str = "application/octet-stream"


class OfflineTelegram:
    """A tiny in-memory Telegram: users, chats, messages and files, plus a call log."""

    def __init__(
        self,
        bot_id: int = 777000,
        bot_username: str = "branch_points_bot",
        *,
        bot_first_name: str = "Branch Points Bot",
    ) -> None:
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.token = f"{bot_id}:" + ("AAOffline" + "x" * 35)[:35]
        self.request = OfflineRequest(self)
        self.calls: list[RecordedCall] = []
        self._bot_user: JSONDict = {
            "id": bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        self._bot: telegram.Bot | None = None
        self._users: dict[int, JSONDict] = {}
        self._chats: dict[int, JSONDict] = {}
        self._messages: dict[int, dict[int, JSONDict]] = {}
        self._message_counters: dict[int, int] = {}
        self._update_id = 0
        self._callback_counter = 0
        self._file_counter = 0
        self._files: dict[str, _StoredFile] = {}
        self._statuses: dict[int, dict[int, str]] = {}  # chat -> user -> admin status
        self._blocked: set[int] = set()
        self._left: set[int] = set()
        self._migrated: dict[int, int] = {}
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._failures: dict[str, list[_ApiError]] = {}
        self._pending_updates: list[JSONDict] = []
        self._handlers: dict[str, _Handler] = {
            "getme": self._get_me,
            "sendmessage": self._send_message,
            "senddocument": self._send_document,
            "sendphoto": self._send_photo,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "editmessagecaption": self._edit_message_caption,
            "deletemessage": self._delete_message,
            "setmycommands": self._set_my_commands,
            "deletemycommands": self._delete_my_commands,
            "getmycommands": self._get_my_commands,
            "getchatmember": self._get_chat_member,
            "getchatadministrators": self._get_chat_administrators,
            "getchat": self._get_chat,
            "getfile": self._get_file,
            "leavechat": self._leave_chat,
            "pinchatmessage": self._pin_chat_message,
            "getwebhookinfo": lambda params, files: {
                "url": "",
                "has_custom_certificate": False,
                "pending_update_count": len(self._pending_updates),
            },
            "getchatmenubutton": lambda params, files: {"type": "default"},
        }

    # ------------------------------------------------------------------ users and chats

    def user(
        self,
        user_id: int,
        first_name: str,
        *,
        username: str | None = None,
        language_code: str = "zh-hans",
    ) -> telegram.User:
        """Register a human user and return it as a PTB object."""
        data: JSONDict = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
            "language_code": language_code,
        }
        if username:
            data["username"] = username
        self._users[user_id] = data
        return telegram.User.de_json(copy.deepcopy(data), self._bot)

    def group(self, chat_id: int, title: str, *, supergroup: bool = True) -> telegram.Chat:
        """Register a group chat (a supergroup unless ``supergroup=False``)."""
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        data = {"id": chat_id, "type": "supergroup" if supergroup else "group", "title": title}
        self._chats[chat_id] = data
        return telegram.Chat.de_json(copy.deepcopy(data), self._bot)

    def private(self, user: telegram.User) -> telegram.Chat:
        """The user's private chat with the bot (its id equals the user id)."""
        self._remember_user(user)
        data = self._private_chat_json(self._users[user.id])
        self._chats[user.id] = data
        return telegram.Chat.de_json(copy.deepcopy(data), self._bot)

    def set_admin(
        self, chat_id: int, user_id: int, admin: bool = True, *, creator: bool = False
    ) -> None:
        """Make a user (or the bot itself) an administrator/creator of a chat, or demote."""
        statuses = self._statuses.setdefault(chat_id, {})
        if admin:
            statuses[user_id] = "creator" if creator else "administrator"
        elif user_id == self.bot_id:
            statuses[user_id] = "member"
        else:
            statuses.pop(user_id, None)

    def block(self, user_id: int) -> None:
        """The user blocks the bot: later sends to their private chat get 403."""
        self._blocked.add(user_id)

    def unblock(self, user_id: int) -> None:
        self._blocked.discard(user_id)

    # ------------------------------------------------------------------ building updates

    def text(
        self,
        user: telegram.User,
        chat: telegram.Chat,
        text: str,
        *,
        reply_to: telegram.Message | None = None,
    ) -> telegram.Update:
        """A user message; a leading ``/command`` gets a bot_command entity like Telegram's."""
        message = self._incoming_message(user, chat)
        message["text"] = text
        command = BOT_COMMAND.match(text)
        if command:  # as Telegram: "/" and 1-32 Latin letters, digits or "_" (optionally @bot); "/" alone is text
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": _utf16_len(command.group(0))}
            ]
        if reply_to is not None:
            message["reply_to_message"] = self._reply_json(reply_to.chat.id, reply_to)
        return self._message_update(message)

    def document(
        self,
        user: telegram.User,
        chat: telegram.Chat,
        *,
        file_name: str,
        content: bytes,
        mime_type: str = "text/csv",
        caption: str | None = None,
    ) -> telegram.Update:
        """A user uploads a file; its bytes are served to ``bot.get_file(...).download_*``."""
        stored = self._store_file("documents", file_name, content, mime_type)
        message = self._incoming_message(user, chat)
        message["document"] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": len(content),
        }
        if caption is not None:
            message["caption"] = caption
        return self._message_update(message)

    def photo(
        self, user: telegram.User, chat: telegram.Chat, *, caption: str | None = None
    ) -> telegram.Update:
        """A user sends a photo (fake JPEG bytes, three sizes like Telegram sends)."""
        message = self._incoming_message(user, chat)
        message["photo"] = self._photo_sizes(b"\xff\xd8\xff\xe0offline-photo\xff\xd9")
        if caption is not None:
            message["caption"] = caption
        return self._message_update(message)

    def press(self, user: telegram.User, message: telegram.Message, data: str) -> telegram.Update:
        """A user presses an inline button on a bot message (as it currently looks)."""
        self._remember_user(user)
        self._callback_counter += 1
        chat_id = message.chat.id
        current = self._messages.get(chat_id, {}).get(message.message_id)
        message_json = copy.deepcopy(current) if current is not None else message.to_dict()
        query = {
            "id": f"{self.bot_id}{self._callback_counter:08d}",
            "from": copy.deepcopy(self._users[user.id]),
            "chat_instance": str(abs(chat_id) * 7919 + 104729),
            "message": message_json,
            "data": data,
        }
        return self._make_update({"callback_query": query})

    def bot_added(self, chat: telegram.Chat, by_user: telegram.User) -> telegram.Update:
        """my_chat_member update: someone added the bot to a chat (left -> member)."""
        self._remember_user(by_user)
        self._remember_chat(chat)
        self._left.discard(chat.id)
        bot_user = copy.deepcopy(self._bot_user)
        member_update = {
            "chat": copy.deepcopy(self._chats[chat.id]),
            "from": copy.deepcopy(self._users[by_user.id]),
            "date": int(time.time()),
            "old_chat_member": {"status": "left", "user": bot_user},
            "new_chat_member": {"status": "member", "user": copy.deepcopy(bot_user)},
        }
        return self._make_update({"my_chat_member": member_update})

    def chat_migrated(self, old_chat: telegram.Chat, new_chat_id: int) -> telegram.Update:
        """The group became a supergroup; later calls to the old id raise ChatMigrated."""
        self._remember_chat(old_chat)
        old = self._chats[old_chat.id]
        message: JSONDict = {
            "message_id": self._next_message_id(old_chat.id),
            "date": int(time.time()),
            "chat": copy.deepcopy(old),
            "migrate_to_chat_id": new_chat_id,
        }
        self._messages.setdefault(old_chat.id, {})[message["message_id"]] = message
        self._chats[new_chat_id] = {
            "id": new_chat_id,
            "type": "supergroup",
            "title": old.get("title", ""),
        }
        self._statuses[new_chat_id] = dict(self._statuses.get(old_chat.id, {}))
        self._migrated[old_chat.id] = new_chat_id
        return self._message_update(message, store=False)

    def enqueue(self, update: telegram.Update) -> None:
        """Make ``getUpdates`` deliver this update (for running ``run_polling`` offline)."""
        self._pending_updates.append(update.to_dict())

    # ------------------------------------------------------------------ inspecting

    def sent(self, chat_id: int | None = None, method: str | None = None) -> list[RecordedCall]:
        """Successful output calls (send*/editMessage*/...), optionally filtered.

        With ``method`` any method name matches (e.g. ``"answerCallbackQuery"``).
        """
        result = []
        for call in self.calls:
            if not call.ok:
                continue
            if method is not None:
                if call.method.lower() != method.lower():
                    continue
            elif not call.method.startswith(_OUTPUT_PREFIXES) or call.method == "sendChatAction":
                continue
            if chat_id is not None and call.chat_id != chat_id:
                continue
            result.append(call)
        return result

    def last_message(self, chat_id: int) -> telegram.Message:
        """The bot's latest surviving message in a chat, with later edits applied."""
        for message in reversed(self._messages.get(chat_id, {}).values()):
            if message.get("from", {}).get("id") == self.bot_id:
                return self._to_message(message)
        raise LookupError(f"the bot has sent no message to chat {chat_id}")

    def message_by_id(self, chat_id: int, message_id: int) -> telegram.Message:
        try:
            return self._to_message(self._messages[chat_id][message_id])
        except KeyError:
            raise LookupError(f"no message {message_id} in chat {chat_id}") from None

    def messages(self, chat_id: int) -> list[telegram.Message]:
        """Every surviving message in a chat (user's and bot's), oldest first."""
        return [self._to_message(m) for m in self._messages.get(chat_id, {}).values()]

    def buttons(self, message_or_call: telegram.Message | RecordedCall) -> list[tuple[str, str]]:
        """Inline keyboard flattened to (text, callback_data); url buttons give their url."""
        if isinstance(message_or_call, RecordedCall):
            markup = message_or_call.params.get("reply_markup") or {}
            rows = markup.get("inline_keyboard") or []
        else:
            keyboard = message_or_call.reply_markup
            if not isinstance(keyboard, telegram.InlineKeyboardMarkup):
                return []
            rows = [[button.to_dict() for button in row] for row in keyboard.inline_keyboard]
        return [
            (button.get("text", ""), button.get("callback_data") or button.get("url") or "")
            for row in rows
            for button in row
        ]

    def file_bytes(self, file_id: str) -> bytes:
        """Bytes behind a file id (user uploads and files the bot sent)."""
        return self._files[file_id].content

    def clear(self) -> None:
        """Forget recorded calls (chats, messages and files stay)."""
        self.calls.clear()

    def attach(self, bot: telegram.Bot) -> None:
        """Updates built from now on carry this bot, so ``reply_text`` etc. work."""
        self._bot = bot

    def fail_next(self, method: str, exc_payload: Mapping[str, Any]) -> None:
        """Make the next call of ``method`` fail with this Bot API error JSON.

        ``exc_payload`` needs ``error_code``; ``description`` defaults from the HTTP status.
        Example: ``{"error_code": 429, "parameters": {"retry_after": 3}}`` -> RetryAfter.
        """
        status = int(exc_payload["error_code"])
        description = exc_payload.get("description")
        if not description:
            try:
                description = HTTPStatus(status).phrase
            except ValueError:
                description = f"Error {status}"
            retry_after = (exc_payload.get("parameters") or {}).get("retry_after")
            if retry_after is not None:
                description = f"{description}: retry after {retry_after}"
        error = _ApiError(status, description, exc_payload.get("parameters"))
        self._failures.setdefault(method.lower(), []).append(error)

    # ------------------------------------------------------------------ HTTP layer

    async def _handle_http(
        self, url: str, http_method: str, request_data: RequestData | None
    ) -> tuple[int, bytes]:
        """Route one HTTP request: file downloads (GET) or Bot API calls (POST)."""
        path = unquote(urlsplit(url).path)
        file_prefix = f"/file/bot{self.token}/"
        if http_method == "GET" and path.startswith(file_prefix):
            return self._serve_file(path.removeprefix(file_prefix))
        if not path.startswith(f"/bot{self.token}/"):
            return _json_response(
                HTTPStatus.NOT_FOUND,
                {"ok": False, "error_code": 404, "description": "Not Found"},
            )
        method = path.rsplit("/", 1)[-1]
        params = _decode_params(request_data)
        files = _read_files(request_data)
        if method.lower() == "getupdates":
            updates = await self._get_updates(params)
            if updates:
                self.calls.append(RecordedCall(method, params, copy.deepcopy(updates)))
            return _json_response(HTTPStatus.OK, {"ok": True, "result": updates})
        try:
            result = self._dispatch(method, params, files)
        except _ApiError as error:
            payload = error.payload()
            self.calls.append(RecordedCall(method, params, None, payload, files))
            return _json_response(error.status, payload)
        self.calls.append(RecordedCall(method, params, copy.deepcopy(result), None, files))
        return _json_response(HTTPStatus.OK, {"ok": True, "result": result})

    def _dispatch(self, method: str, params: JSONDict, files: Files) -> Any:
        key = method.lower()
        if pending := self._failures.get(key):
            raise pending.pop(0)
        if "chat_id" in params:
            self._check_chat_access(method, _chat_id(params))
        if isinstance(params.get("reply_markup"), dict):
            _check_reply_markup(params["reply_markup"])
        handler = self._handlers.get(key)
        if handler is None:
            return True
        return handler(params, files)

    def _serve_file(self, file_path: str) -> tuple[int, bytes]:
        for stored in self._files.values():
            if stored.file_path == file_path:
                return HTTPStatus.OK, stored.content
        return _json_response(
            HTTPStatus.NOT_FOUND, {"ok": False, "error_code": 404, "description": "Not Found"}
        )

    async def _get_updates(self, params: JSONDict) -> list[JSONDict]:
        """Long-poll the enqueue()d updates, waiting at most ~1 s so shutdown stays quick."""
        offset = int(params.get("offset") or 0)
        if offset:
            self._pending_updates = [u for u in self._pending_updates if u["update_id"] >= offset]
        wait = min(int(params.get("timeout") or 0), 1)  # the Bot API timeout is whole seconds
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while not self._pending_updates and loop.time() < deadline:
            await asyncio.sleep(0.02)
        limit = int(params.get("limit") or 100)
        return copy.deepcopy(self._pending_updates[:limit])

    # ------------------------------------------------------------------ Bot API methods

    def _get_me(self, params: JSONDict, files: Any) -> JSONDict:
        return {
            **self._bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _send_message(self, params: JSONDict, files: Any) -> JSONDict:
        text, entities = _formatted_text(
            params.get("text", ""), params.get("parse_mode"), params.get("entities")
        )
        _check_text(text)
        message = self._outgoing_message(params)
        message["text"] = text
        if entities:
            message["entities"] = entities
        if isinstance(params.get("link_preview_options"), dict):
            message["link_preview_options"] = params["link_preview_options"]
        return self._store_outgoing(message, params)

    def _send_document(self, params: JSONDict, files: Files) -> JSONDict:
        message = self._outgoing_message(params)
        self._apply_caption(message, params)
        source = self._input_file(params, files, "document")
        message["document"] = {
            "file_id": source.file_id,
            "file_unique_id": source.file_unique_id,
            "file_name": source.file_name,
            "mime_type": source.mime_type,
            "file_size": len(source.content),
        }
        return self._store_outgoing(message, params)

    def _send_photo(self, params: JSONDict, files: Files) -> JSONDict:
        message = self._outgoing_message(params)
        self._apply_caption(message, params)
        source = self._input_file(params, files, "photo")
        message["photo"] = self._photo_sizes(source.content)
        return self._store_outgoing(message, params)

    def _edit_message_text(self, params: JSONDict, files: Any) -> JSONDict | bool:
        if "inline_message_id" in params:
            return True
        message = self._editable_message(params)
        if "text" not in message:
            raise _bad_request("there is no text in the message to edit")
        text, entities = _formatted_text(
            params.get("text", ""), params.get("parse_mode"), params.get("entities")
        )
        _check_text(text)
        return self._apply_edit(message, params, {"text": text, "entities": entities or None})

    def _edit_message_caption(self, params: JSONDict, files: Any) -> JSONDict | bool:
        if "inline_message_id" in params:
            return True
        message = self._editable_message(params)
        if "text" in message:
            raise _bad_request("there is no caption in the message to edit")
        caption, entities = _formatted_text(
            params.get("caption", ""), params.get("parse_mode"), params.get("caption_entities")
        )
        if len(caption) > MAX_CAPTION_LENGTH:
            raise _bad_request("message caption is too long")
        return self._apply_edit(
            message,
            params,
            {"caption": caption or None, "caption_entities": entities or None},
        )

    def _edit_message_reply_markup(self, params: JSONDict, files: Any) -> JSONDict | bool:
        if "inline_message_id" in params:
            return True
        return self._apply_edit(self._editable_message(params), params, {})

    def _delete_message(self, params: JSONDict, files: Any) -> bool:
        message_id = int(params["message_id"])
        if self._messages.get(_chat_id(params), {}).pop(message_id, None) is None:
            raise _bad_request("message to delete not found")
        return True

    def _pin_chat_message(self, params: JSONDict, files: Any) -> bool:
        if int(params["message_id"]) not in self._messages.get(_chat_id(params), {}):
            raise _bad_request("message to pin not found")
        return True

    def _set_my_commands(self, params: JSONDict, files: Any) -> bool:
        commands = params.get("commands") or []
        for command in commands:
            if not _BOT_COMMAND_RE.match(str(command.get("command", ""))):
                raise _bad_request("BOT_COMMAND_INVALID")
        self._commands[_commands_key(params)] = copy.deepcopy(list(commands))
        return True

    def _delete_my_commands(self, params: JSONDict, files: Any) -> bool:
        self._commands.pop(_commands_key(params), None)
        return True

    def _get_my_commands(self, params: JSONDict, files: Any) -> list[JSONDict]:
        return copy.deepcopy(self._commands.get(_commands_key(params), []))

    def _get_chat(self, params: JSONDict, files: Any) -> JSONDict:
        chat = self._chat_json(_chat_id(params))
        return {
            **chat,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _get_chat_member(self, params: JSONDict, files: Any) -> JSONDict:
        chat = self._chat_json(_chat_id(params))
        user_id = int(params["user_id"])
        if user_id == self.bot_id:
            user = self._bot_user
        elif user_id in self._users:
            user = self._users[user_id]
        else:
            raise _bad_request("user not found")
        return self._member_json(chat, user)

    def _get_chat_administrators(self, params: JSONDict, files: Any) -> list[JSONDict]:
        chat = self._chat_json(_chat_id(params))
        if chat["type"] == "private":
            raise _bad_request("there are no administrators in the private chat")
        members = []
        for user_id in self._statuses.get(chat["id"], {}):
            user = self._bot_user if user_id == self.bot_id else self._users.get(user_id)
            if user is not None:
                members.append(self._member_json(chat, user))
        if self.bot_id not in self._statuses.get(chat["id"], {}):
            members.append(self._member_json(chat, self._bot_user))
        admins = [m for m in members if m["status"] in ("creator", "administrator")]
        admins.sort(key=lambda m: m["status"] != "creator")
        return admins

    def _get_file(self, params: JSONDict, files: Any) -> JSONDict:
        stored = self._files.get(str(params.get("file_id")))
        if stored is None:
            raise _bad_request("invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
            "file_path": stored.file_path,
        }

    def _leave_chat(self, params: JSONDict, files: Any) -> bool:
        chat_id = _chat_id(params)
        self._chat_json(chat_id)
        self._left.add(chat_id)
        return True

    # ------------------------------------------------------------------ helpers

    def _check_chat_access(self, method: str, chat_id: int) -> None:
        """Errors Telegram gives before looking at a call's content."""
        if chat_id in self._migrated:
            raise _bad_request(
                "group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self._migrated[chat_id]},
            )
        if chat_id in self._left:
            kind = self._chats.get(chat_id, {}).get("type", "supergroup")
            raise _forbidden(f"bot is not a member of the {kind} chat")
        if chat_id in self._blocked and method.startswith(_BLOCKABLE_PREFIXES):
            raise _forbidden("bot was blocked by the user")

    def _chat_json(self, chat_id: int) -> JSONDict:
        if chat_id in self._chats:
            return self._chats[chat_id]
        if chat_id in self._users:
            self._chats[chat_id] = self._private_chat_json(self._users[chat_id])
            return self._chats[chat_id]
        raise _bad_request("chat not found")

    @staticmethod
    def _private_chat_json(user: JSONDict) -> JSONDict:
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        for key in ("last_name", "username"):
            if key in user:
                chat[key] = user[key]
        return chat

    def _member_json(self, chat: JSONDict, user: JSONDict) -> JSONDict:
        status = self._statuses.get(chat["id"], {}).get(user["id"])
        if status is None and user["id"] == self.bot_id and chat["type"] != "private":
            status = "administrator"
        if status == "creator":
            return {"status": "creator", "user": copy.deepcopy(user), "is_anonymous": False}
        if status == "administrator":
            rights = dict.fromkeys(
                (
                    "can_manage_chat",
                    "can_delete_messages",
                    "can_manage_video_chats",
                    "can_restrict_members",
                    "can_change_info",
                    "can_invite_users",
                    "can_post_stories",
                    "can_edit_stories",
                    "can_delete_stories",
                    "can_pin_messages",
                ),
                True,
            )
            return {
                "status": "administrator",
                "user": copy.deepcopy(user),
                "can_be_edited": False,
                "is_anonymous": False,
                "can_promote_members": False,
                **rights,
            }
        return {"status": "member", "user": copy.deepcopy(user)}

    def _remember_user(self, user: telegram.User) -> None:
        if user.id not in self._users:
            self._users[user.id] = user.to_dict()

    def _remember_chat(self, chat: telegram.Chat) -> None:
        if chat.id not in self._chats:
            self._chats[chat.id] = chat.to_dict()

    def _next_message_id(self, chat_id: int) -> int:
        self._message_counters[chat_id] = self._message_counters.get(chat_id, 0) + 1
        return self._message_counters[chat_id]

    def _incoming_message(self, user: telegram.User, chat: telegram.Chat) -> JSONDict:
        self._remember_user(user)
        self._remember_chat(chat)
        return {
            "message_id": self._next_message_id(chat.id),
            "from": copy.deepcopy(self._users[user.id]),
            "chat": copy.deepcopy(self._chats[chat.id]),
            "date": int(time.time()),
        }

    def _message_update(self, message: JSONDict, *, store: bool = True) -> telegram.Update:
        if store:
            self._messages.setdefault(message["chat"]["id"], {})[message["message_id"]] = message
        return self._make_update({"message": copy.deepcopy(message)})

    def _make_update(self, body: JSONDict) -> telegram.Update:
        self._update_id += 1
        return telegram.Update.de_json({"update_id": self._update_id, **body}, self._bot)

    def _to_message(self, message: JSONDict) -> telegram.Message:
        return telegram.Message.de_json(copy.deepcopy(message), self._bot)

    def _reply_json(self, chat_id: int, reply_to: telegram.Message) -> JSONDict:
        current = self._messages.get(chat_id, {}).get(reply_to.message_id)
        data = copy.deepcopy(current) if current is not None else reply_to.to_dict()
        data.pop("reply_to_message", None)  # Telegram does not nest replies
        return data

    def _outgoing_message(self, params: JSONDict) -> JSONDict:
        chat = self._chat_json(_chat_id(params))
        message: JSONDict = {
            "message_id": 0,  # assigned in _store_outgoing once all checks passed
            "from": copy.deepcopy(self._bot_user),
            "chat": copy.deepcopy(chat),
            "date": int(time.time()),
        }
        reply = params.get("reply_parameters") or {}
        if isinstance(reply, dict) and reply.get("message_id"):
            target_chat = _chat_id({"chat_id": reply.get("chat_id", chat["id"])})
            target = self._messages.get(target_chat, {}).get(int(reply["message_id"]))
            if target is not None:
                message["reply_to_message"] = {
                    k: copy.deepcopy(v) for k, v in target.items() if k != "reply_to_message"
                }
            elif not reply.get("allow_sending_without_reply"):
                raise _bad_request("message to be replied not found")
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = copy.deepcopy(markup)
        return message

    def _store_outgoing(self, message: JSONDict, params: JSONDict) -> JSONDict:
        chat_id = message["chat"]["id"]
        message["message_id"] = self._next_message_id(chat_id)
        self._messages.setdefault(chat_id, {})[message["message_id"]] = message
        return copy.deepcopy(message)

    def _apply_caption(self, message: JSONDict, params: JSONDict) -> None:
        if not params.get("caption"):
            return
        caption, entities = _formatted_text(
            params["caption"], params.get("parse_mode"), params.get("caption_entities")
        )
        if len(caption) > MAX_CAPTION_LENGTH:
            raise _bad_request("message caption is too long")
        message["caption"] = caption
        if entities:
            message["caption_entities"] = entities

    def _editable_message(self, params: JSONDict) -> JSONDict:
        message = self._messages.get(_chat_id(params), {}).get(int(params.get("message_id", 0)))
        if message is None:
            raise _bad_request("message to edit not found")
        if message.get("from", {}).get("id") != self.bot_id:
            raise _bad_request("message can't be edited")
        return message

    def _apply_edit(self, message: JSONDict, params: JSONDict, changes: JSONDict) -> JSONDict:
        """Apply an edit like Telegram: omitted reply_markup removes the inline keyboard."""
        markup = params.get("reply_markup")
        has_keyboard = isinstance(markup, dict) and "inline_keyboard" in markup
        changes["reply_markup"] = copy.deepcopy(markup) if has_keyboard else None
        if all(message.get(key) == value for key, value in changes.items()):
            raise _bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        for key, value in changes.items():
            if value is None:
                message.pop(key, None)
            else:
                message[key] = value
        message["edit_date"] = int(time.time())
        return copy.deepcopy(message)

    def _store_file(
        self,
        folder: str,
        file_name: str,
        content: bytes,
        mime_type: str = "application/octet-stream",
    ) -> _StoredFile:
        self._file_counter += 1
        number = self._file_counter
        suffix = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
        stored = _StoredFile(
            file_id=f"BQACAgIAAxkBAAI{number:06d}offline",
            file_unique_id=f"AgAD{number:06d}",
            file_path=f"{folder}/file_{number}.{suffix}",
            content=content,
            file_name=file_name,
            mime_type=mime_type,
        )
        self._files[stored.file_id] = stored
        return stored

    def _photo_sizes(self, content: bytes) -> list[JSONDict]:
        stored = self._store_file("photos", "photo.jpg", content, "image/jpeg")
        sizes: list[JSONDict] = []
        for index, (width, height) in enumerate(((90, 67), (320, 240), (1280, 960))):
            sizes.append(
                {
                    "file_id": f"{stored.file_id}_{index}" if index < 2 else stored.file_id,
                    "file_unique_id": f"{stored.file_unique_id}{index}",
                    "width": width,
                    "height": height,
                    "file_size": len(content),
                }
            )
        for size in sizes[:2]:
            self._files[size["file_id"]] = _StoredFile(
                size["file_id"],
                size["file_unique_id"],
                stored.file_path,
                content,
                "photo.jpg",
                "image/jpeg",
            )
        return sizes

    def _input_file(self, params: JSONDict, files: Files, field_name: str) -> _StoredFile:
        """Resolve an uploaded file, an ``attach://`` part, a known file_id or a URL."""
        value = params.get(field_name)
        part = files.get(field_name)
        if part is None and isinstance(value, str) and value.startswith("attach://"):
            part = files.get(value.removeprefix("attach://"))
        if part is not None:
            folder = "photos" if field_name == "photo" else "documents"
            return self._store_file(folder, part[0], part[1], part[2])
        if isinstance(value, str) and value in self._files:
            return self._files[value]
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            name = urlsplit(value).path.rsplit("/", 1)[-1] or "file"
            return self._store_file("documents", name, b"")
        raise _bad_request("wrong file identifier/HTTP URL specified")


# --------------------------------------------------------------------------- module helpers


def _json_response(status: int, payload: JSONDict) -> tuple[int, bytes]:
    return int(status), json.dumps(payload).encode("utf-8")


_JSON_PARAMS = (
    "reply_markup",
    "entities",
    "caption_entities",
    "reply_parameters",
    "link_preview_options",
    "commands",
    "scope",
    "menu_button",
    "allowed_updates",
)


def _decode_params(request_data: RequestData | None) -> JSONDict:
    """Parameters as sent, with JSON-valued fields decoded even if passed pre-serialised."""
    if request_data is None:
        return {}
    params = copy.deepcopy(request_data.parameters)
    for key in _JSON_PARAMS:
        value = params.get(key)
        if isinstance(value, str) and value[:1] in "[{":
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params


def _read_files(request_data: RequestData | None) -> Files:
    if request_data is None:
        return {}
    files: Files = {}
    for part, (file_name, content, mime_type) in request_data.multipart_data.items():
        if not isinstance(content, bytes):
            if hasattr(content, "seek"):
                content.seek(0)
            content = content.read()
        files[part] = (file_name, content, mime_type)
    return files


def _formatted_text(
    text: str, parse_mode: str | None, entities: list[JSONDict] | None
) -> tuple[str, list[JSONDict]]:
    """Apply parse_mode like Telegram would. Only HTML is parsed; Markdown passes through."""
    if parse_mode and parse_mode.upper() == "HTML":
        try:
            return parse_html(text)
        except HtmlParseError as error:
            raise _bad_request(f"can't parse entities: {error}") from None
    return text, copy.deepcopy(entities or [])


def _check_text(text: str) -> None:
    if not text.strip():
        raise _bad_request("message text is empty")
    if len(text) > MAX_MESSAGE_LENGTH:
        raise _bad_request("message is too long")


def _check_reply_markup(markup: JSONDict) -> None:
    """Inline keyboard rules Telegram enforces on every call carrying reply_markup."""
    for row in markup.get("inline_keyboard") or []:
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
                raise _bad_request("BUTTON_DATA_INVALID")
            if len(button) <= 1:
                raise _bad_request(
                    "can't parse inline keyboard button: "
                    "Text buttons are unallowed in the inline keyboard"
                )


def _commands_key(params: JSONDict) -> tuple[str, str]:
    scope = params.get("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")
