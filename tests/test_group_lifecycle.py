"""The group's life around the month's notice: the bot removed from the group and added back, a Telegram
outage longer than a few minutes at 09:00 on the 1st, a group upgraded to a supergroup that the bot learnt
of late (someone had already run /setup there). Each through the real Application and the offline
Telegram, scheduled work with schedules.engine.tick and a FixedClock.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
import telegram

from bot.clock import FixedClock
from bot.domain.records import Role
from bot.harness import plain
from bot.offline import _ApiError
from bot.services import Actor
from schedules import engine
from storage import members as member_repo
from storage.branches import RETIRED_CHAT_BASE
from tests.conftest import TestHarness, count, rows, said, setup_branch

NOTICE_KINDS = ("notice", "notice_remind", "notice_close")
APRIL_1 = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)  # 09:00 in Asia/Shanghai: March's notice is due
NEW_ID = -1009999000001  # the supergroup the group became


@pytest.fixture
def only_notices(monkeypatch):
    monkeypatch.setattr(engine, "PRODUCERS", [p for p in engine.PRODUCERS if p.kind in NOTICE_KINDS])


async def branch_at(h: TestHarness, clock: FixedClock, moment: datetime, **kwargs) -> SimpleNamespace:
    clock.set(moment)
    b = await setup_branch(h, **kwargs)
    await h.db.conn.execute("UPDATE branches SET created_at = ? WHERE id = ?", (moment.isoformat(), b.branch.id))
    await h.db.conn.commit()
    b.branch = await h.services.branches.by_id(b.branch.id)
    return b


async def record(h: TestHarness, b: SimpleNamespace, who: str, value: str, day: date, reason: str) -> int:
    target = await h.services.roster.member_of_id(b.member_ids[who])
    actor = Actor(user_id=b.recorder.id, name=b.recorder.full_name)
    row = await h.services.points.record(b.branch, actor, target, "study", Decimal(value), day, reason,
                                         reference=f"test:{who}:{day}", event_code="absent")
    assert row is not None
    return row.id


async def ticks(h: TestHarness, clock: FixedClock, start: datetime, end: datetime, step: timedelta) -> list[tuple]:
    """Tick as the bot does, from ``start`` to ``end`` every ``step``; what was done."""
    done, moment = [], start
    while moment <= end:
        clock.set(moment)
        done += await engine.tick(h.app, moment)
        moment += step
    return done


def bot_membership(world, chat: telegram.Chat, by_user: telegram.User, old: str, new: str) -> telegram.Update:
    """A my_chat_member update: the bot's status in the chat went from ``old`` to ``new``."""
    update = world.bot_added(chat, by_user).to_dict()
    change = update["my_chat_member"]
    change["old_chat_member"]["status"], change["new_chat_member"]["status"] = old, new
    if new in ("left", "kicked"):
        if new == "kicked":
            change["new_chat_member"]["until_date"] = 0
        world._left.add(chat.id)  # the offline Telegram refuses the bot's calls there from now on (403)
    return telegram.Update.de_json(update, world._bot)


def group_texts(h: TestHarness, chat_id: int, since: int = 0) -> list[str]:
    return [plain(str(c.params["text"])) for c in h.world.calls[since:]
            if c.method == "sendMessage" and c.ok and c.chat_id == chat_id]


def asks(h: TestHarness, user) -> list[telegram.Message]:
    return [m for m in h.world.messages(user.id) if any(d.startswith("nt:cf:") for _, d in h.world.buttons(m))]


def private_texts(h: TestHarness, user, since: int = 0) -> list[str]:
    return [plain(str(c.params["text"])) for c in h.world.calls[since:]
            if c.method == "sendMessage" and c.ok and c.chat_id == user.id]


def forget_refusals(h: TestHarness, chat_id: int, *descriptions: str) -> None:
    """The refused calls the test set up (the harness's teardown refuses any other)."""
    h.world.calls[:] = [c for c in h.world.calls if c.ok or c.chat_id != chat_id
                        or not any(d in str((c.error or {}).get("description")) for d in descriptions)]


# --- the bot removed from the group around the 1st, then added back ------------------------------------


async def test_removed_before_the_first_and_added_back_the_notice_is_posted_late_with_its_own_window_once(h, clock, only_notices):
    b = await branch_at(h, clock, datetime(2026, 3, 20, 2, 0, tzinfo=UTC))
    entry = await record(h, b, "zhang", "-5", date(2026, 3, 10), "缺席学习")
    async with h.db.transaction() as conn:  # 李四 is the deputy
        await member_repo.grant(conn, b.branch.id, b.member_ids["lisi"], Role.DEPUTY, granted_by=None)
    clock.set(datetime(2026, 3, 30, 2, 0, tzinfo=UTC))
    await h.feed(bot_membership(h.world, b.group, b.secretary, "member", "kicked"))
    assert (await rows(h, "SELECT reachable FROM branches"))[0]["reachable"] == 0  # at once, before any send

    since = len(h.world.calls)
    # 09:00-09:10 every minute (as the bot ticks), then hourly for two days: the bot is not in the group
    away = await ticks(h, clock, APRIL_1, APRIL_1 + timedelta(minutes=10), timedelta(minutes=1))
    away += await ticks(h, clock, APRIL_1 + timedelta(hours=1), APRIL_1 + timedelta(days=2), timedelta(hours=1))
    assert away.count((b.branch.id, "notice", "2026-03", "failed")) <= 10  # not every minute
    effect = (await rows(h, "SELECT outcome, attempts FROM effects WHERE kind = 'notice'"))[0]
    assert effect["outcome"] == "failed" and effect["attempts"] <= 1  # the tries did not count
    assert group_texts(h, b.group.id, since) == []
    for manager in (b.secretary, b.lisi):  # the secretary and the deputy
        told = [t for t in private_texts(h, manager, since) if "积分公示发不到群里" in t]
        assert len(told) == 1 and "2026年3月" in told[0] and "加回群" in told[0]  # once, not at every try
    assert all("发不到群里" not in t for p in (b.recorder, b.zhang) for t in private_texts(h, p, since))

    back_at = datetime(2026, 4, 3, 2, 0, tzinfo=UTC)  # 04-03 10:00 in Shanghai
    clock.set(back_at)
    back = said(await h.feed(h.world.bot_added(b.group, b.secretary)), b.group.id)
    assert "我回来了" in back and "2026年3月的积分公示此前没能发到群里" in back
    assert (await rows(h, "SELECT reachable FROM branches"))[0]["reachable"] == 1
    before = len(h.world.calls)
    assert (b.branch.id, "notice", "2026-03", "done") in await ticks(h, clock, back_at + timedelta(minutes=1),
                                                                     back_at + timedelta(minutes=1), timedelta(minutes=1))
    posted = [t for t in group_texts(h, b.group.id, before) if "党员积分公示" in t]
    assert len(posted) == 1
    assert "本公示原定 2026-04-01 09:00 发布，当时未能发到群里" in posted[0]  # late, and says so
    assert "异议期）至 2026-04-10 10:01" in posted[0] and f"#{entry}" in posted[0]  # its window from now
    notice = (await rows(h, "SELECT * FROM notices"))[0]
    assert notice["late"] == 1 and notice["sent_at"] == "2026-04-03T02:01:00+00:00"
    assert notice["closes_at"] == "2026-04-10T02:01:00+00:00"
    for person in (b.secretary, b.recorder, b.zhang, b.lisi):
        requests = asks(h, person)
        assert len(requests) == 1 and "异议期至 2026-04-10 10:01" in plain(requests[0].text or "")
    assert "处于异议期的公示记录" in said(await h.say(b.zhang, h.private(b.zhang), "/object"))

    # Safe to repeat: the same update delivered again, more ticks — nothing posted or asked twice.
    await h.feed(h.world.bot_added(b.group, b.secretary))
    await ticks(h, clock, back_at + timedelta(minutes=2), back_at + timedelta(hours=3), timedelta(minutes=30))
    assert sum("党员积分公示" in t for t in group_texts(h, b.group.id, before)) == 1
    assert [len(asks(h, p)) for p in (b.secretary, b.recorder, b.zhang, b.lisi)] == [1, 1, 1, 1]
    assert await count(h, "notice_members", "asked_at IS NOT NULL") == 4
    forget_refusals(h, b.group.id, "bot is not a member")


async def test_the_bot_left_and_muted_marks_the_branch_unreachable_and_allowed_to_post_again_takes_the_notice_up(h, clock, only_notices):
    b = await branch_at(h, clock, datetime(2026, 3, 20, 2, 0, tzinfo=UTC))
    await h.feed(bot_membership(h.world, b.group, b.secretary, "member", "left"))
    assert (await rows(h, "SELECT reachable FROM branches"))[0]["reachable"] == 0
    h.world._left.discard(b.group.id)
    await h.feed(h.world.bot_added(b.group, b.secretary))
    assert (await rows(h, "SELECT reachable FROM branches"))[0]["reachable"] == 1

    # Muted at 09:00 on the 1st ("not enough rights"), allowed to post again at 15:00: posted then.
    h.world.fail_next("sendMessage", {"error_code": 400, "description": "Bad Request: not enough rights to send text messages to the chat"})
    assert (b.branch.id, "notice", "2026-03", "failed") in await ticks(h, clock, APRIL_1, APRIL_1, timedelta(minutes=1))
    assert (await rows(h, "SELECT attempts FROM effects WHERE kind = 'notice'"))[0]["attempts"] == 0
    assert await ticks(h, clock, APRIL_1 + timedelta(minutes=1), APRIL_1 + timedelta(hours=5), timedelta(minutes=30)) == []
    update = bot_membership(h.world, b.group, b.secretary, "member", "member").to_dict()
    update["my_chat_member"]["old_chat_member"] = {"status": "restricted", "user": update["my_chat_member"]["old_chat_member"]["user"],
                                                   "is_member": True, "can_send_messages": False, "until_date": 0,
                                                   **{k: False for k in ("can_send_audios", "can_send_documents", "can_send_photos",
                                                                         "can_send_videos", "can_send_video_notes", "can_send_voice_notes",
                                                                         "can_send_polls", "can_send_other_messages", "can_add_web_page_previews",
                                                                         "can_change_info", "can_invite_users", "can_pin_messages",
                                                                         "can_manage_topics", "can_edit_tag", "can_react_to_messages")}}
    clock.set(APRIL_1 + timedelta(hours=6))
    assert said(await h.feed(telegram.Update.de_json(update, h.world._bot))) == ""  # nothing to say in the group
    done = await ticks(h, clock, APRIL_1 + timedelta(hours=6, minutes=1), APRIL_1 + timedelta(hours=6, minutes=1), timedelta(minutes=1))
    assert (b.branch.id, "notice", "2026-03", "done") in done
    assert sum("党员积分公示" in t for t in group_texts(h, b.group.id)) == 1
    forget_refusals(h, b.group.id, "not enough rights")


# --- a Telegram outage at the notice's moment ------------------------------------------------------------


async def test_a_telegram_outage_of_two_days_at_the_notice_moment_does_not_lose_the_notice(h, clock, only_notices):
    b = await branch_at(h, clock, datetime(2026, 3, 20, 2, 0, tzinfo=UTC))
    down = {"on": True}
    original = h.world._handlers["sendmessage"]

    def flaky(params, files):
        if down["on"]:
            raise _ApiError(502, "Bad Gateway")
        return original(params, files)

    h.world._handlers["sendmessage"] = flaky
    outage_end = APRIL_1 + timedelta(days=2, hours=3)
    failed = await ticks(h, clock, APRIL_1, outage_end, timedelta(minutes=10))
    assert failed and {outcome for *_, outcome in failed} == {"failed"}
    assert len(failed) < 30  # fewer tries as the outage goes on, not one every tick
    assert (await rows(h, "SELECT outcome FROM effects WHERE kind = 'notice'"))[0]["outcome"] == "failed"
    down["on"] = False
    done = await ticks(h, clock, outage_end + timedelta(minutes=10), outage_end + engine.RETRY_CAP, timedelta(minutes=10))
    assert done.count((b.branch.id, "notice", "2026-03", "done")) == 1
    notice = (await rows(h, "SELECT * FROM notices"))[0]
    posted = [t for t in group_texts(h, b.group.id) if "党员积分公示" in t]
    assert len(posted) == 1 and "本公示原定 2026-04-01 09:00 发布" in posted[0]
    assert notice["late"] == 1 and notice["sent_at"] > outage_end.isoformat()
    assert datetime.fromisoformat(notice["closes_at"]) == datetime.fromisoformat(notice["sent_at"]) + timedelta(days=7)
    assert [len(asks(h, p)) for p in (b.secretary, b.recorder, b.zhang, b.lisi)] == [1, 1, 1, 1]
    forget_refusals(h, b.group.id, "Bad Gateway")


# --- a supergroup upgrade the bot learnt of late -------------------------------------------------------


def supergroup(h: TestHarness, b: SimpleNamespace) -> telegram.Chat:
    """Telegram upgrades the group; the bot never gets the migration message."""
    h.world.chat_migrated(b.group, NEW_ID)
    return telegram.Chat(NEW_ID, "supergroup", title=b.group.title)


async def second_setup(h: TestHarness, chat: telegram.Chat) -> telegram.User:
    """Another administrator (not a secretary anywhere) runs /setup in the supergroup: a second branch."""
    admin = h.user(9001, "赵管理", username="zhao")
    h.private(admin)
    h.world.set_admin(chat.id, admin.id)
    await h.say(admin, chat, "/setup")
    await h.tap(admin, chat.id, "浠水")
    assert await count(h, "branches", "chat_id = ?", chat.id) == 1
    return admin


async def test_a_bare_branch_set_up_in_the_supergroup_is_retired_and_the_real_branch_moves_there(h, clock, only_notices):
    b = await branch_at(h, clock, datetime(2026, 3, 20, 2, 0, tzinfo=UTC))
    await record(h, b, "zhang", "-5", date(2026, 3, 10), "缺席学习")
    chat = supergroup(h, b)
    admin = await second_setup(h, chat)
    bare = (await rows(h, "SELECT id FROM branches WHERE chat_id = ?", NEW_ID))[0]["id"]
    await h.feed(bot_membership(h.world, b.group, b.secretary, "member", "left"))  # the old group is gone
    assert (await rows(h, "SELECT reachable FROM branches WHERE id = ?", b.branch.id))[0]["reachable"] == 0

    before = len(h.world.calls)
    done = await ticks(h, clock, APRIL_1 + timedelta(minutes=1), APRIL_1 + timedelta(minutes=1), timedelta(minutes=1))
    assert (b.branch.id, "notice", "2026-03", "done") in done
    assert all(branch_id != bare for branch_id, *_ in done)  # retired in this very tick: nothing of its own
    real, retired = (await rows(h, "SELECT * FROM branches WHERE id = ?", b.branch.id))[0], \
        (await rows(h, "SELECT * FROM branches WHERE id = ?", bare))[0]
    assert real["chat_id"] == NEW_ID and real["reachable"] == 1
    assert retired["retired_at"] is not None and retired["chat_id"] == RETIRED_CHAT_BASE - bare
    assert (await rows(h, "SELECT status FROM members WHERE branch_id = ?", bare)) == [{"status": "left"}]
    texts = group_texts(h, NEW_ID, before)
    assert "已跟随到本群" in texts[0] and "已撤销" in texts[0]  # the group is told, first
    notices = [t for t in texts if "党员积分公示" in t]
    assert len(notices) == 1 and "兰溪镇红星村党支部" in notices[0] and "共 4 名党员" in notices[0]
    assert [c.ok for c in h.world.calls[before:] if c.chat_id == b.group.id] == [False]  # one ChatMigrated
    # The group's commands are the real branch's; the one who set up the bare branch is in no branch.
    assert "张三" in said(await h.say(b.secretary, chat, "/members"), NEW_ID)
    assert "您还没有加入任何支部" in said(await h.say(admin, h.private(admin), "/points"))
    assert await count(h, "user_context", "branch_id = ?", bare) == 0
    # Later ticks: nothing for the retired branch, nothing twice.
    later = await ticks(h, clock, APRIL_1 + timedelta(hours=1), APRIL_1 + timedelta(days=8), timedelta(hours=12))
    assert all(branch_id == b.branch.id for branch_id, *_ in later)
    assert sum("党员积分公示" in t for t in group_texts(h, NEW_ID)) == 1
    forget_refusals(h, b.group.id, "upgraded to a supergroup")


async def test_a_branch_with_members_in_the_supergroup_blocks_the_move_both_secretaries_are_told_once(h, clock, only_notices):
    b = await branch_at(h, clock, datetime(2026, 3, 20, 2, 0, tzinfo=UTC))
    chat = supergroup(h, b)
    admin = await second_setup(h, chat)
    newcomer = h.user(9002, "钱党员")
    await h.say(newcomer, chat, "/join")
    await h.tap(admin, chat.id, "同意")
    other = (await rows(h, "SELECT id FROM branches WHERE chat_id = ?", NEW_ID))[0]["id"]

    before = len(h.world.calls)
    done = await ticks(h, clock, APRIL_1 + timedelta(minutes=1), APRIL_1 + timedelta(minutes=1), timedelta(minutes=1))
    assert (b.branch.id, "notice", "2026-03", "failed") in done and (other, "notice", "2026-03", "done") in done
    assert (await rows(h, "SELECT chat_id, reachable FROM branches WHERE id = ?", b.branch.id))[0] == {
        "chat_id": b.group.id, "reachable": 0}
    assert (await rows(h, "SELECT chat_id, retired_at FROM branches WHERE id = ?", other))[0] == {"chat_id": NEW_ID, "retired_at": None}
    detail = (await rows(h, "SELECT detail FROM effects WHERE branch_id = ? AND kind = 'notice'", b.branch.id))[0]["detail"]
    assert "UNIQUE" not in detail.upper() and "unique" not in detail
    for person in (b.secretary, admin):
        told = [t for t in private_texts(h, person, before) if "无法自动把" in t]
        assert len(told) == 1 and "兰溪镇红星村党支部" in told[0]
    # Nothing of the real branch is posted in the other branch's group; it waits, and is not told again.
    assert all("共 4 名党员" not in t for t in group_texts(h, NEW_ID, before))
    await ticks(h, clock, APRIL_1 + timedelta(hours=1), APRIL_1 + timedelta(days=1), timedelta(hours=1))
    for person in (b.secretary, admin):
        assert sum("无法自动把" in t for t in private_texts(h, person, before)) == 1
    assert (await rows(h, "SELECT chat_id FROM branches WHERE id = ?", b.branch.id))[0]["chat_id"] == b.group.id
    forget_refusals(h, b.group.id, "upgraded to a supergroup")


async def test_setup_in_the_supergroup_by_the_secretary_follows_the_branch_instead_of_making_a_second(h, clock, only_notices):
    b = await branch_at(h, clock, datetime(2026, 3, 20, 2, 0, tzinfo=UTC))
    chat = supergroup(h, b)
    assert "还没有设为党支部" in said(await h.say(b.zhang, chat, "/join"))
    answer = said(await h.say(b.secretary, chat, "/setup"), NEW_ID)
    assert "本群是 兰溪镇红星村党支部 原来的群升级成的超级群" in answer and "积分办法" in answer
    assert await count(h, "branches") == 1
    assert (await rows(h, "SELECT chat_id FROM branches"))[0]["chat_id"] == NEW_ID
    assert "您已经是本支部的党员了" in said(await h.say(b.zhang, chat, "/join"))
    before = len(h.world.calls)
    assert (b.branch.id, "notice", "2026-03", "done") in await ticks(
        h, clock, APRIL_1 + timedelta(minutes=1), APRIL_1 + timedelta(minutes=1), timedelta(minutes=1))
    assert sum("共 4 名党员" in t for t in group_texts(h, NEW_ID, before)) == 1
    assert all(c.ok for c in h.world.calls[before:])  # straight to the new id
    # /setup in a supergroup that is no upgrade of the sender's group: the usual set-up
    other = h.group(-1008888000001, "另一个群")
    h.world.set_admin(other.id, b.secretary.id)
    assert "请选择本支部采用的积分办法" in said(await h.say(b.secretary, other, "/setup"))
    assert await count(h, "branches") == 1
    forget_refusals(h, b.group.id, "upgraded to a supergroup")


async def test_setup_follows_also_when_getchat_describes_the_old_basic_group(h, clock, only_notices):
    """Should getChat on the old id describe the old basic group instead of answering ChatMigrated, the
    probe asks with a chat action there, which a migrated group refuses with the new id."""
    b = await branch_at(h, clock, datetime(2026, 3, 20, 2, 0, tzinfo=UTC))
    h.world._chats[b.group.id]["type"] = "group"  # a basic group, as groups are before the upgrade
    chat = supergroup(h, b)
    check = h.world._check_chat_access
    h.world._check_chat_access = lambda method, chat_id: None if method.lower() == "getchat" else check(method, chat_id)
    before = len(h.world.calls)
    answer = said(await h.say(b.secretary, chat, "/setup"), NEW_ID)
    assert "原来的群升级成的超级群" in answer
    assert [c.method for c in h.world.calls[before:] if c.chat_id == b.group.id] == ["getChat", "sendChatAction"]
    assert (await rows(h, "SELECT chat_id FROM branches")) == [{"chat_id": NEW_ID}]
    forget_refusals(h, b.group.id, "upgraded to a supergroup")
