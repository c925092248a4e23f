"""Tests for the offline Bot API stand-in (bot.offline) driving a real PTB Application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from telegram import (
    ChatMemberAdministrator,
    ChatMemberMember,
    ChatMemberOwner,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.offline import HtmlParseError, OfflineTelegram, RecordedCall, parse_html

START_HTML = "<b>欢迎</b>, {name}! Pick one &amp; go:"


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message and update.effective_user
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Points", callback_data="menu:points"),
                InlineKeyboardButton("Help", callback_data="menu:help"),
            ],
            [InlineKeyboardButton("Docs", url="https://example.org/docs")],
        ]
    )
    await update.effective_message.reply_text(
        START_HTML.format(name=update.effective_user.first_name),
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard,
    )


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer("ok")
    if query.data == "menu:points":
        await query.edit_message_text(
            "<i>You have</i> 42 points",
            parse_mode=ParseMode.HTML,
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("Back", callback_data="menu:back")]]
            ),
        )
    else:
        await query.edit_message_text("Bye")  # no reply_markup: keyboard disappears


async def on_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message and message.document
    file = await context.bot.get_file(message.document.file_id)
    data = await file.download_as_bytearray()
    await message.reply_text(f"got {len(data)} bytes: {bytes(data[:6]).decode()}")
    await message.reply_document(document=bytes(data), filename="echo.csv")


async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message and message.photo
    await message.reply_text(f"photo {message.photo[-1].width}x{message.photo[-1].height}")


added_to: list[int] = []


async def on_my_member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.my_chat_member
    added_to.append(update.my_chat_member.chat.id)


@pytest.fixture
def world() -> OfflineTelegram:
    return OfflineTelegram()


@pytest.fixture
async def app(world: OfflineTelegram) -> AsyncIterator[Application]:
    application = (
        Application.builder()
        .token(world.token)
        .request(world.request)
        .get_updates_request(world.request)
        .job_queue(None)
        .build()
    )
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CallbackQueryHandler(on_button))
    application.add_handler(MessageHandler(filters.Document.ALL, on_document))
    application.add_handler(MessageHandler(filters.PHOTO, on_photo))
    application.add_handler(ChatMemberHandler(on_my_member, ChatMemberHandler.MY_CHAT_MEMBER))
    await application.initialize()
    world.attach(application.bot)
    yield application
    await application.shutdown()


async def test_token_and_get_me(world: OfflineTelegram, app: Application) -> None:
    bot_id, secret = world.token.split(":")
    assert bot_id == "777000" and len(secret) == 35
    assert app.bot.username == "branch_points_bot"
    assert app.bot.id == 777000
    assert world.calls[0].method == "getMe"


async def test_start_command_and_button_flow(world: OfflineTelegram, app: Application) -> None:
    alice = world.user(1001, "Alice", username="alice")
    chat = world.private(alice)
    update = world.text(alice, chat, "/start")
    assert update.message is not None
    assert update.message.entities[0].type == "bot_command"
    assert update.message.message_id == 1

    world.clear()
    await app.process_update(update)

    [call] = world.sent(chat.id)
    assert call.method == "sendMessage"
    assert call.params["parse_mode"] == "HTML"
    assert "reply_parameters" not in call.params  # PTB does not quote in private chats
    assert world.buttons(call) == [
        ("Points", "menu:points"),
        ("Help", "menu:help"),
        ("Docs", "https://example.org/docs"),
    ]

    sent = world.last_message(chat.id)
    assert sent.message_id == 2  # one counter per chat for user and bot messages
    assert sent.text == "欢迎, Alice! Pick one & go:"
    assert sent.entities[0].type == "bold" and sent.entities[0].length == 2
    assert sent.text_html == "<b>欢迎</b>, Alice! Pick one &amp; go:"
    assert world.buttons(sent)[0] == ("Points", "menu:points")

    await app.process_update(world.press(alice, sent, "menu:points"))
    assert [c.method for c in world.calls[-2:]] == ["answerCallbackQuery", "editMessageText"]
    assert world.sent(method="answerCallbackQuery")[0].params["text"] == "ok"
    edited = world.last_message(chat.id)
    assert edited.message_id == 2
    assert edited.text == "You have 42 points"
    assert edited.edit_date is not None
    assert world.buttons(edited) == [("Back", "menu:back")]

    # press on the *old* Message object: the world delivers the message as it is now
    await app.process_update(world.press(alice, sent, "menu:back"))
    final = world.message_by_id(chat.id, 2)
    assert final.text == "Bye"
    assert final.reply_markup is None  # editMessageText without markup drops the keyboard
    assert [c.method for c in world.sent(chat.id)] == [
        "sendMessage",
        "editMessageText",
        "editMessageText",
    ]


async def test_command_with_bot_username_in_group(world: OfflineTelegram, app: Application) -> None:
    bob = world.user(1002, "Bob")
    group = world.group(-100555, "Branch One")
    update = world.text(bob, group, "/start@branch_points_bot now")
    assert update.message is not None
    assert update.message.entities[0].length == len("/start@branch_points_bot")
    await app.process_update(update)
    reply = world.last_message(group.id)
    assert reply.text.startswith("欢迎, Bob")
    assert reply.reply_to_message is not None  # PTB quotes in groups
    assert reply.reply_to_message.text == "/start@branch_points_bot now"

    world.clear()
    await app.process_update(world.text(bob, group, "/start@other_bot"))
    assert world.sent() == []


async def test_document_download_round_trip(world: OfflineTelegram, app: Application) -> None:
    carol = world.user(1003, "Carol")
    chat = world.private(carol)
    content = "姓名,积分\nCarol,10\n".encode()
    update = world.document(carol, chat, file_name="scores.csv", content=content)
    assert update.message is not None and update.message.document is not None
    assert update.message.document.file_name == "scores.csv"

    await app.process_update(update)

    assert [c.method for c in world.sent(chat.id)] == ["sendMessage", "sendDocument"]
    assert world.sent(chat.id)[0].params["text"] == f"got {len(content)} bytes: 姓名"
    get_file = world.sent(method="getFile")[0]
    assert get_file.result["file_path"].endswith(".csv")

    upload = world.sent(chat.id, "sendDocument")[0]
    assert upload.files["document"][0] == "echo.csv"
    assert upload.files["document"][1] == content
    echoed = world.last_message(chat.id)
    assert echoed.document is not None and echoed.document.file_name == "echo.csv"
    assert world.file_bytes(echoed.document.file_id) == content
    # the bot can download what it sent, too
    again = await (await app.bot.get_file(echoed.document.file_id)).download_as_bytearray()
    assert bytes(again) == content


async def test_photo(world: OfflineTelegram, app: Application) -> None:
    dave = world.user(1004, "Dave")
    chat = world.private(dave)
    await app.process_update(world.photo(dave, chat, caption="evidence"))
    assert world.last_message(chat.id).text == "photo 1280x960"
    photo_update = world.photo(dave, chat)
    assert photo_update.message is not None
    small = photo_update.message.photo[0]
    data = await (await app.bot.get_file(small.file_id)).download_as_bytearray()
    assert bytes(data).startswith(b"\xff\xd8")


async def test_message_too_long(world: OfflineTelegram, app: Application) -> None:
    erin = world.user(1005, "Erin")
    chat = world.private(erin)
    await app.bot.send_message(chat.id, "x" * 4096)
    with pytest.raises(BadRequest, match="Message is too long"):
        await app.bot.send_message(chat.id, "x" * 4097)
    # tags do not count, entities count as one character
    html = "<b>" + "&amp;" * 4096 + "</b>"
    await app.bot.send_message(chat.id, html, parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match="Message is too long"):
        await app.bot.send_message(chat.id, html + "!", parse_mode=ParseMode.HTML)
    failed = world.calls[-1]
    assert not failed.ok and failed.error is not None and failed.error["error_code"] == 400
    assert len(world.sent(chat.id)) == 2  # failed calls are not "sent"
    with pytest.raises(BadRequest, match="Message text is empty"):
        await app.bot.send_message(chat.id, "<b></b>", parse_mode=ParseMode.HTML)


@pytest.mark.parametrize(
    "html",
    [
        "<b>unclosed",
        "<b>crossed <i>tags</b></i>",
        "stray </b> end",
        "<div>unknown</div>",
        "1 < 2",
        '<span class="other">x</span>',
        "<br>",
    ],
)
async def test_bad_html_is_rejected(world: OfflineTelegram, app: Application, html: str) -> None:
    chat = world.private(world.user(1006, "Frank"))
    with pytest.raises(BadRequest, match="Can't parse entities"):
        await app.bot.send_message(chat.id, html, parse_mode=ParseMode.HTML)
    # without parse_mode the same text is fine
    if html.strip():
        await app.bot.send_message(chat.id, html)


async def test_edit_checks_html_and_not_modified(world: OfflineTelegram, app: Application) -> None:
    chat = world.private(world.user(1007, "Grace"))
    message = await app.bot.send_message(chat.id, "hello")
    with pytest.raises(BadRequest, match="Can't parse entities"):
        await message.edit_text("<b>oops", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match="Message is too long"):
        await message.edit_text("y" * 5000)
    with pytest.raises(BadRequest, match="Message is not modified"):
        await message.edit_text("hello")
    await message.edit_text("<u>hi</u>", parse_mode=ParseMode.HTML)
    assert world.last_message(chat.id).text_html == "<u>hi</u>"
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await app.bot.edit_message_text("x", chat_id=chat.id, message_id=999)
    await message.delete()
    with pytest.raises(LookupError):
        world.last_message(chat.id)


async def test_user_messages_cannot_be_edited(world: OfflineTelegram, app: Application) -> None:
    henry = world.user(1008, "Henry")
    chat = world.private(henry)
    update = world.text(henry, chat, "hi")
    assert update.message is not None
    with pytest.raises(BadRequest, match="Message can't be edited"):
        await app.bot.edit_message_text("x", chat_id=chat.id, message_id=update.message.message_id)


async def test_callback_data_limit(world: OfflineTelegram, app: Application) -> None:
    chat = world.private(world.user(1009, "Ivy"))
    ok = "点" * 21  # 63 bytes
    await app.bot.send_message(
        chat.id,
        "ok",
        reply_markup=InlineKeyboardMarkup.from_button(InlineKeyboardButton("a", callback_data=ok)),
    )
    too_long = "点" * 22  # 66 bytes, only 22 characters
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await app.bot.send_message(
            chat.id,
            "bad",
            reply_markup=InlineKeyboardMarkup.from_button(
                InlineKeyboardButton("b", callback_data=too_long)
            ),
        )
    message = world.last_message(chat.id)
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await message.edit_reply_markup(
            InlineKeyboardMarkup.from_button(InlineKeyboardButton("c", callback_data="x" * 65))
        )


async def test_blocked_user_raises_forbidden(world: OfflineTelegram, app: Application) -> None:
    jack = world.user(1010, "Jack")
    chat = world.private(jack)
    await app.bot.send_message(chat.id, "before")
    world.block(jack.id)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await app.bot.send_message(chat.id, "after")
    world.unblock(jack.id)
    await app.bot.send_message(chat.id, "again")


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_fail_next_retry_after(world: OfflineTelegram, app: Application) -> None:
    chat = world.private(world.user(1011, "Kate"))
    world.fail_next("sendMessage", {"error_code": 429, "parameters": {"retry_after": 7}})
    with pytest.raises(RetryAfter) as excinfo:
        await app.bot.send_message(chat.id, "first")
    retry_after = excinfo.value.retry_after
    assert (retry_after.total_seconds() if isinstance(retry_after, timedelta) else retry_after) == 7
    assert world.calls[-1].error is not None
    assert world.calls[-1].error["description"] == "Too Many Requests: retry after 7"
    await app.bot.send_message(chat.id, "second")  # only the next call fails
    assert [c.params["text"] for c in world.sent(chat.id)] == ["second"]


async def test_unknown_chat_and_unknown_method(world: OfflineTelegram, app: Application) -> None:
    with pytest.raises(BadRequest, match="Chat not found"):
        await app.bot.send_message(-42, "nobody here")
    assert await app.bot.do_api_request("someFutureMethod", api_kwargs={"x": 1}) is True
    assert world.calls[-1] == RecordedCall("someFutureMethod", {"x": 1}, True)


async def test_chat_members_and_admins(world: OfflineTelegram, app: Application) -> None:
    leader = world.user(2001, "Leader")
    member = world.user(2002, "Member")
    group = world.group(-100777, "Branch")
    world.set_admin(group.id, leader.id, creator=True)
    world.set_admin(group.id, member.id)

    assert isinstance(await app.bot.get_chat_member(group.id, leader.id), ChatMemberOwner)
    assert isinstance(await app.bot.get_chat_member(group.id, member.id), ChatMemberAdministrator)
    bot_member = await app.bot.get_chat_member(group.id, app.bot.id)
    assert isinstance(bot_member, ChatMemberAdministrator)
    world.set_admin(group.id, member.id, admin=False)
    assert isinstance(await app.bot.get_chat_member(group.id, member.id), ChatMemberMember)

    admins = await app.bot.get_chat_administrators(group.id)
    assert [a.user.id for a in admins] == [leader.id, app.bot.id]
    full = await app.bot.get_chat(group.id)
    assert full.title == "Branch" and full.type == "supergroup"


async def test_bot_added_migration_and_leave(world: OfflineTelegram, app: Application) -> None:
    added_to.clear()
    owner = world.user(3001, "Owner")
    old = world.group(-3001, "Old group", supergroup=False)
    await app.process_update(world.bot_added(old, owner))
    assert added_to == [old.id]

    update = world.chat_migrated(old, -1003001)
    assert update.message is not None and update.message.migrate_to_chat_id == -1003001
    with pytest.raises(ChatMigrated) as excinfo:
        await app.bot.send_message(old.id, "hi")
    assert excinfo.value.new_chat_id == -1003001
    await app.bot.send_message(-1003001, "hi there")
    assert world.last_message(-1003001).chat.type == "supergroup"

    assert await app.bot.leave_chat(-1003001) is True
    with pytest.raises(Forbidden, match="not a member"):
        await app.bot.send_message(-1003001, "still here?")


async def test_commands_and_misc_methods(world: OfflineTelegram, app: Application) -> None:
    chat = world.private(world.user(4001, "Misc"))
    await app.bot.set_my_commands([("start", "开始"), ("points", "积分")])
    assert [c.command for c in await app.bot.get_my_commands()] == ["start", "points"]
    await app.bot.set_my_commands([("admin", "管理")], language_code="en")
    assert [c.command for c in await app.bot.get_my_commands(language_code="en")] == ["admin"]
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await app.bot.set_my_commands([("Start", "bad")])
    await app.bot.delete_my_commands()
    assert await app.bot.get_my_commands() == ()

    assert await app.bot.send_chat_action(chat.id, "typing") is True
    message = await app.bot.send_message(chat.id, "pin me")
    assert await message.pin() is True
    assert await message.unpin() is True
    assert await app.bot.set_chat_menu_button() is True
    assert await app.bot.delete_webhook() is True
    assert await app.bot.get_updates() == ()
    photo = await app.bot.send_photo(
        chat.id, photo=b"\xff\xd8fake", caption="<b>pic</b>", parse_mode=ParseMode.HTML
    )
    assert photo.caption == "pic" and photo.photo
    edited = await photo.edit_caption("new caption")
    assert edited.caption == "new caption"
    with pytest.raises(BadRequest, match="There is no text in the message to edit"):
        await photo.edit_text("text")


async def test_run_polling_offline(world: OfflineTelegram, app: Application) -> None:
    """getUpdates serves enqueue()d updates, so the Updater works offline too."""
    user = world.user(5001, "Poller")
    chat = world.private(user)
    world.enqueue(world.text(user, chat, "/start"))
    assert app.updater is not None
    await app.start()
    await app.updater.start_polling(poll_interval=0, timeout=1)
    for _ in range(100):
        if world.sent(chat.id):
            break
        await asyncio.sleep(0.02)
    await app.updater.stop()
    await app.stop()
    assert world.last_message(chat.id).text.startswith("欢迎, Poller")


def test_parse_html_entities_and_offsets() -> None:
    text, entities = parse_html(
        '😀 <b>bold <i>both</i></b> <a href="https://x.org/?a=1&amp;b=2">link</a> '
        '<pre><code class="language-python">print(1)</code></pre> '
        "<tg-spoiler>s</tg-spoiler> <blockquote expandable>q</blockquote> &#128512;&lt;"
    )
    assert text == "😀 bold both link print(1) s q 😀<"
    by_type = {e["type"]: e for e in entities}
    assert by_type["bold"] == {"type": "bold", "offset": 3, "length": 9}  # 😀 is 2 UTF-16 units
    assert by_type["italic"]["offset"] == 8
    assert by_type["text_link"]["url"] == "https://x.org/?a=1&b=2"
    assert by_type["pre"]["language"] == "python"
    assert "code" not in by_type
    assert "spoiler" in by_type and "expandable_blockquote" in by_type
    with pytest.raises(HtmlParseError, match='Unsupported start tag "div" at byte offset 0'):
        parse_html("<div>")
