"""/help and /start list what the reader may do, by their roles (QA #9), and no command is forgotten.

Through the real Application: each person sends /help (and /start) in private and in the group; the
commands named in the replies are compared with every command a CommandHandler of the Application takes.
"""

from __future__ import annotations

import re

from bot.harness import plain
from bot.services.branches import Actor
from handlers.common import known_commands, visible_length
from tests.conftest import said, setup_branch

COMMAND = re.compile(r"/([a-z]+)")

# Commands deliberately not in any /help section, each with why:
NOT_IN_HELP = {
    "start": "Telegram's own first message; its private reply *is* the help (greeting + the sections)",
}


def commands_in(text: str) -> set[str]:
    return set(COMMAND.findall(plain(text)))


def help_replies(calls) -> list[str]:
    return [str(c.params["text"]) for c in calls if c.method == "sendMessage"]


async def help_of(h, person, chat) -> str:
    calls = await h.say(person, chat, "/help")
    replies = help_replies(calls)
    assert replies, "no answer to /help"
    for text in replies:
        assert visible_length(text) <= 4096
    return "\n".join(replies)


async def everyone_with_every_role(h):
    """The standard branch, with 李四 the supervisor, 张三 a deputy, the secretary also an operator (who
    creates a town by /newtown and so administers it) and a partner merchant."""
    b = await setup_branch(h)
    await h.say(b.secretary, b.group, "/role @lisi_1000 supervisor")
    await h.say(b.secretary, b.group, "/role @zhang_1000 deputy")
    h.services.towns.configure([b.secretary.id])
    calls = await h.say(b.secretary, h.private(b.secretary), "/newtown 兰溪镇")
    assert "兰溪镇" in said(calls)
    await h.services.rewards.add_merchant(b.branch, Actor(b.secretary.id, "王书记"), user_id=b.secretary.id,
                                          name="红星超市", discount="九折")
    return b


async def test_every_command_the_application_takes_is_in_help_for_some_role(h):
    b = await everyone_with_every_role(h)
    shown: set[str] = set()
    for person in (b.secretary, b.recorder, b.zhang, b.lisi):
        shown |= commands_in(await help_of(h, person, h.private(person)))
    taken = set(known_commands(h.app))
    missing = sorted(taken - shown - NOT_IN_HELP.keys())
    assert not missing, f"commands the bot takes but /help never lists: {missing}"
    unknown = sorted(shown - taken)
    assert not unknown, f"/help lists commands the bot does not take: {unknown}"
    assert NOT_IN_HELP.keys() <= taken  # the allow-list names nothing stale


async def test_help_is_by_role(h):
    b = await everyone_with_every_role(h)
    plain_member = h.user(1005, "赵五", username="zhao")
    await h.say(plain_member, b.group, "/join")
    await h.tap(b.secretary, b.group.id, "同意")
    await h.say(plain_member, h.private(plain_member), "/start")

    text = await help_of(h, plain_member, h.private(plain_member))
    mine = commands_in(text)
    assert {"declare", "points", "chart", "branch", "rewards", "passbook", "evaluate", "object", "cancel"} <= mine
    assert not mine & {"record", "pending", "grade", "reopen", "remove", "role", "export", "town", "verify", "newtown"}

    recorder = commands_in(await help_of(h, b.recorder, h.private(b.recorder)))
    assert {"record", "pending", "export", "assess", "unconfirmed"} <= recorder
    assert not recorder & {"grade", "remove", "role", "transfer", "objections"}
    assert "members" in mine  # every member may read the roster (its numbers); the hints under it go by role

    supervisor = await help_of(h, b.lisi, h.private(b.lisi))
    assert "积分监督员" in plain(supervisor) and "/objections" in supervisor and "/record" not in supervisor

    deputy = commands_in(await help_of(h, b.zhang, h.private(b.zhang)))
    assert {"members", "state", "meeting", "transfer", "accepttransfer", "canceltransfer", "jointown", "catalog",
            "merchants", "settings", "record"} <= deputy
    assert not deputy & {"grade", "reopen", "remove", "role", "town", "verify"}  # the secretary's alone

    secretary = await help_of(h, b.secretary, h.private(b.secretary))
    assert "移出去世、出党或误加入的党员" in plain(secretary)
    assert {"grade", "reopen", "export", "remove", "role", "town", "townqueue", "newtown", "verify"} <= commands_in(secretary)

    # in the group: the branch's roles, but not the secretary's town or merchant business
    group = commands_in(await help_of(h, b.secretary, b.group))
    assert {"grade", "remove", "members"} <= group and not group & {"town", "newtown", "verify"}


async def test_start_in_private_shows_the_readers_sections(h):
    b = await setup_branch(h)
    calls = await h.say(b.secretary, h.private(b.secretary), "/start")
    text = "\n".join(plain(t) for t in help_replies(calls))
    assert text.startswith("您好！") and "/declare" in text and "/grade" in text and "/remove" in text
    calls = await h.say(b.zhang, h.private(b.zhang), "/start")
    text = "\n".join(plain(t) for t in help_replies(calls))
    assert "/declare" in text and "/grade" not in text


async def test_help_in_english_and_within_limits(h):
    b = await setup_branch(h)
    secretary_en = h.user(b.secretary.id, b.secretary.full_name, username=b.secretary.username, language="en")
    text = plain(await help_of(h, secretary_en, h.private(secretary_en)))
    assert "Members" in text and "Secretary" in text and "/grade [year]" in text
    assert "remove a member who died, left the party or was added by mistake" in text
    assert not re.search(r"[\u4e00-\u9fff]", text)  # no Chinese left in the English help


async def test_help_without_a_branch_says_how_to_join(h):
    stranger = h.user(5555, "路人甲")
    text = plain(await help_of(h, stranger, h.private(stranger)))
    assert "/declare" in text and "请在支部群里发送 /join" in text


async def test_a_town_administrator_outside_any_branch_sees_the_town_s_commands(h):
    admin = h.user(7001, "镇组织委员")
    h.services.towns.configure([admin.id])
    await h.say(admin, h.private(admin), "/newtown 兰溪镇")
    text = await help_of(h, admin, h.private(admin))
    assert {"town", "towncode", "townadmin", "townqueue", "townfile", "newtown"} <= commands_in(text)
    assert "还没有加入任何支部" not in plain(text)  # a town's administrator joins no branch
