"""A group upgraded to a supergroup (ChatMigrated): every message the bot posts to a branch's group goes
through handlers.common.send_group, which moves the branch to the new chat id (one transaction) and
sends the message there, once.

The migration message itself never reaches the bot in these tests (Telegram knows, the bot does not):
the first send to the old id is refused with ChatMigrated — the one refused call each test expects.
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.domain.meetings import MeetingKind
from bot.services import Actor
from bot.services.meetings import MeetingDraft
from schedules import engine
from storage import members as member_repo
from tests.conftest import TestHarness, count

APRIL_1 = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)  # 09:00 Asia/Shanghai: March's notice is due
ROOT = Path(__file__).resolve().parent.parent


def only(monkeypatch: pytest.MonkeyPatch, *kinds: str) -> None:
    monkeypatch.setattr(engine, "PRODUCERS", [p for p in engine.PRODUCERS if p.kind in kinds])


def group_calls(h: TestHarness, before: int, chat_id: int) -> list:
    return [c for c in h.world.calls[before:] if c.method == "sendMessage" and c.chat_id == chat_id]


def forget_expected_refusals(h: TestHarness, old_chat_id: int) -> None:
    """The refused sends to the old id were expected (the harness refuses any refused call at teardown)."""
    h.world.calls[:] = [c for c in h.world.calls if c.ok or c.chat_id != old_chat_id]


async def add_members(h: TestHarness, branch_id: int, n: int) -> None:
    """Enough members that the monthly notice takes several messages."""
    async with h.db.transaction() as conn:
        for i in range(n):
            person = h.user(70_000 + i, f"党员{i:03d}")
            h.private(person)
            await member_repo.add_approved(conn, branch_id=branch_id, name=person.full_name, joined_on="2026-03-01", user_id=person.id)


async def test_a_notice_of_several_parts_follows_the_group_to_its_new_id_each_part_once(h, b, clock, monkeypatch) -> None:
    only(monkeypatch, "notice")
    await add_members(h, b.branch.id, 150)
    new_id = -1009999999001
    h.world.chat_migrated(b.group, new_id)
    before = len(h.world.calls)
    clock.set(APRIL_1 + timedelta(minutes=1))
    assert (b.branch.id, "notice", "2026-03", "done") in await engine.tick(h.app, clock.now())

    assert (await h.services.branches.by_id(b.branch.id)).chat_id == new_id
    assert await count(h, "branches", "chat_id = ?", b.group.id) == 0
    old = group_calls(h, before, b.group.id)
    assert [c.ok for c in old] == [False]  # one refusal, then the later parts go straight to the new id
    parts = [c.params["text"] for c in group_calls(h, before, new_id)]
    assert len(parts) >= 2 and all(c.ok for c in group_calls(h, before, new_id))
    assert len(parts) == len(set(parts))  # every part once
    assert sum("党员积分公示" in t for t in parts) == 1
    assert await count(h, "notices", "sent_at IS NOT NULL") == 1
    forget_expected_refusals(h, b.group.id)


async def test_a_meeting_reminder_follows_the_group_to_its_new_id_once(h, b, clock) -> None:
    start = datetime(2026, 3, 25, 6, 30, tzinfo=UTC)
    meeting, _ = await h.services.meetings.schedule(
        b.branch, Actor(user_id=b.secretary.id, name="王书记"),
        MeetingDraft(MeetingKind.BRANCH_MEETING, start, "村委会议室", "学习党章"), client_key="m1")
    new_id = -1009999999002
    h.world.chat_migrated(b.group, new_id)
    before = len(h.world.calls)
    clock.set(start - timedelta(days=1) + timedelta(minutes=1))
    assert (b.branch.id, "meeting_reminder", f"{meeting.id}:1440", "done") in await engine.tick(h.app, clock.now())

    assert (await h.services.branches.by_id(b.branch.id)).chat_id == new_id
    assert [c.ok for c in group_calls(h, before, b.group.id)] == [False]
    reminders = group_calls(h, before, new_id)
    assert len(reminders) == 1 and reminders[0].ok and "学习党章" in reminders[0].params["text"]
    # the next reminder (an hour before) goes straight to the new id
    clock.set(start - timedelta(minutes=59))
    await engine.tick(h.app, clock.now())
    assert [c.ok for c in group_calls(h, before, b.group.id)] == [False]
    assert len(group_calls(h, before, new_id)) == 2
    forget_expected_refusals(h, b.group.id)


async def test_a_meeting_cancelled_in_private_is_announced_at_the_new_id(h, b) -> None:
    """A handler's group post (not only scheduled work) follows the group too."""
    start = datetime(2026, 3, 25, 6, 30, tzinfo=UTC)
    meeting, _ = await h.services.meetings.schedule(
        b.branch, Actor(user_id=b.secretary.id, name="王书记"),
        MeetingDraft(MeetingKind.BRANCH_MEETING, start, "村委会议室", "学习党章"), client_key="m1")
    new_id = -1009999999003
    h.world.chat_migrated(b.group, new_id)
    chat = h.private(b.secretary)
    await h.say(b.secretary, chat, "/meetings")
    listing, _ = h.find_button(chat.id, f"取消 #{meeting.id}")
    before = len(h.world.calls)
    await h.press(b.secretary, listing, f"mt:cx:{meeting.id}")
    assert (await h.services.branches.by_id(b.branch.id)).chat_id == new_id
    posted = [c for c in group_calls(h, before, new_id) if c.ok]
    assert len(posted) == 1 and f"#{meeting.id}" in posted[0].params["text"]
    forget_expected_refusals(h, b.group.id)


# --- the property, in the source: no group post bypasses send_group ------------------------------------

SENDS = {"send_message", "send_photo", "send_document", "send_media_group", "send_video", "send_animation"}


def _direct_group_sends(path: Path) -> list[str]:
    """Calls ``<x>.send_*(<something>.chat_id, …)`` or ``chat_id=<something>.chat_id``: a send to a stored
    chat id (a branch's group) rather than to the chat an update came from or a person."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SENDS):
            continue
        targets = list(node.args[:1]) + [k.value for k in node.keywords if k.arg == "chat_id"]
        for target in targets:
            if isinstance(target, ast.Attribute) and target.attr == "chat_id":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_module_posts_to_a_stored_group_id_except_send_group() -> None:
    offenders = []
    for folder in ("handlers", "schedules", "bot/services"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "common.py" and path.parent.name == "handlers":
                continue  # send_group itself
            offenders += _direct_group_sends(path)
    assert offenders == [], "send these through handlers.common.send_group: " + ", ".join(offenders)


def test_the_source_check_finds_a_direct_send() -> None:
    probe = ROOT / "tests" / "_probe_direct_send.py"
    probe.write_text("async def f(app, branch):\n    await app.bot.send_message(branch.chat_id, 'x')\n", encoding="utf-8")
    try:
        assert _direct_group_sends(probe) == ["tests/_probe_direct_send.py:2"]
    finally:
        probe.unlink()
