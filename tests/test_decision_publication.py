"""A decision is committed, then shown (the card's copies edited, the member told). A process that dies
in between used to leave the member never told: the redelivered press only finds the declaration decided.
Now the decision's transaction opens a publication, showing it marks it, and a sweep
(schedules/decisions.py) shows what stayed unshown long after its claim — once, in the decider's language."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from telegram.error import TimedOut

import handlers.decide
from bot.offline import OfflineRequest
from schedules import decisions as sweep_job
from tests.conftest import card_message, count, declare, rows, said


async def _sweep(h) -> tuple[int, list]:
    before = len(h.world.calls)
    taken = await sweep_job.sweep(SimpleNamespace(application=h.app, bot=h.app.bot))
    return taken, h.world.calls[before:]


async def _publication(h, number: int) -> dict:
    found = await rows(h, "SELECT * FROM decision_publications WHERE declaration_id = ?", number)
    assert len(found) == 1
    return found[0]


async def _die_before_showing(monkeypatch) -> None:
    """What a process killed right after the decision's COMMIT leaves behind: nothing shown, nothing marked."""
    async def killed(*args, **kwargs) -> None:
        return None

    monkeypatch.setattr(handlers.decide, "show_decision", killed)


async def test_an_approval_shown_as_usual_is_marked_and_the_sweep_leaves_it_alone(h, b, clock) -> None:
    number = await declare(h, b.zhang)
    calls = await h.press(b.recorder, card_message(h, b.recorder.id, number), f"dc:ok:{number}")
    assert "已通过" in said(calls, b.zhang.id)
    publication = await _publication(h, number)
    assert publication["published_at"] is not None
    clock.set(clock.now() + timedelta(hours=1))
    assert await _sweep(h) == (0, [])


async def test_a_decision_whose_process_died_before_showing_it_is_shown_once_by_the_sweep(h, b, clock, monkeypatch) -> None:
    number = await declare(h, b.zhang)
    card = card_message(h, b.recorder.id, number)
    with monkeypatch.context() as patch:
        await _die_before_showing(patch)
        calls = await h.press(b.recorder, card, f"dc:ok:{number}")
    assert said(calls, b.zhang.id) == ""  # the member was never told
    assert await count(h, "ledger", "reference = ?", f"decl:{number}") == 1
    assert (await _publication(h, number))["published_at"] is None

    # Telegram delivers the press again: the declaration is decided; the member is still not told here.
    calls = await h.press(b.recorder, card, f"dc:ok:{number}")
    assert said(calls, b.zhang.id) == ""
    assert await count(h, "ledger", "reference = ?", f"decl:{number}") == 1

    # Too soon: the process that decided may still be showing it.
    clock.set(clock.now() + sweep_job.STALE_AFTER - timedelta(seconds=5))
    assert await _sweep(h) == (0, [])

    clock.set(clock.now() + timedelta(seconds=10))
    taken, calls = await _sweep(h)
    assert taken == 1
    told = said(calls, b.zhang.id)
    assert "已通过" in told and f"#{number}" in told and "记 10分" in told
    edits = [c for c in calls if c.method == "editMessageText"]
    assert [(c.params["chat_id"], c.params["message_id"]) for c in edits] == [(b.recorder.id, card.message_id)]
    assert "已通过" in edits[0].params["text"]
    assert (await _publication(h, number))["published_at"] is not None

    clock.set(clock.now() + timedelta(hours=1))
    assert await _sweep(h) == (0, [])  # shown once
    assert await count(h, "ledger", "reference = ?", f"decl:{number}") == 1


async def test_a_rejection_left_unshown_is_shown_in_the_decider_s_language(h, b, clock, monkeypatch) -> None:
    number = await declare(h, b.zhang)
    card = card_message(h, b.recorder.id, number)
    await h.press(b.recorder, card, f"dc:rj:{number}")
    with monkeypatch.context() as patch:
        await _die_before_showing(patch)
        await h.say(b.recorder, h.private(b.recorder), "时间写错了")
    assert (await rows(h, "SELECT status FROM declarations WHERE id = ?", number))[0]["status"] == "rejected"
    clock.set(clock.now() + sweep_job.STALE_AFTER + timedelta(minutes=1))
    taken, calls = await _sweep(h)
    assert taken == 1
    assert "时间写错了" in said(calls, b.zhang.id) and "未通过" in said(calls, b.zhang.id)


async def test_two_sweeps_at_once_take_each_decision_once(h, b, clock, monkeypatch) -> None:
    numbers = [await declare(h, b.zhang), await declare(h, b.lisi)]
    with monkeypatch.context() as patch:
        await _die_before_showing(patch)
        for number in numbers:
            await h.press(b.recorder, card_message(h, b.recorder.id, number), f"dc:ok:{number}")
    clock.set(clock.now() + sweep_job.STALE_AFTER + timedelta(minutes=1))
    later = clock.now()
    first = await h.services.declarations.unpublished(later - sweep_job.STALE_AFTER)
    second = await h.services.declarations.unpublished(later - sweep_job.STALE_AFTER)
    assert sorted(d.declaration.id for d in first) == sorted(numbers) and second == []
    # Taken over but never shown either (that sweeping process died too): the next sweep, as late, shows them.
    clock.set(later + sweep_job.STALE_AFTER + timedelta(minutes=1))
    taken, calls = await _sweep(h)
    assert taken == 2 and "已通过" in said(calls, b.zhang.id) and "已通过" in said(calls, b.lisi.id)


async def test_a_member_message_that_timed_out_is_not_sent_again_by_the_sweep(h, b, clock, monkeypatch) -> None:
    """TimedOut: unknown whether it arrived; the decision is marked shown (given up), never repeated blindly."""
    number = await declare(h, b.zhang)
    original = OfflineRequest.do_request

    async def flaky(self, url, method, request_data=None, *args, **kwargs):
        chat = (request_data.parameters if request_data else {}).get("chat_id")
        if url.endswith("/sendMessage") and str(chat) == str(b.zhang.id):
            raise TimedOut("offline: timed out")
        return await original(self, url, method, request_data, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(OfflineRequest, "do_request", flaky)
        await h.press(b.recorder, card_message(h, b.recorder.id, number), f"dc:ok:{number}")
    assert (await _publication(h, number))["published_at"] is not None
    clock.set(clock.now() + sweep_job.STALE_AFTER + timedelta(minutes=1))
    assert await _sweep(h) == (0, [])


@pytest.mark.sqlite_only
async def test_marking_a_decision_shown_does_not_wait_for_the_disk_and_leaves_synchronous_full(h, b, monkeypatch) -> None:
    """The mark is committed with synchronous=NORMAL (no fsync, survives the process dying); the setting
    is FULL again afterwards, for every other transaction."""
    number = await declare(h, b.zhang)
    raw = h.db.conn.raw
    seen: list[str] = []
    raw.set_trace_callback(lambda sql: seen.append(sql.strip()))
    try:
        await h.press(b.recorder, card_message(h, b.recorder.id, number), f"dc:ok:{number}")
    finally:
        raw.set_trace_callback(None)
    normal, full = seen.index("PRAGMA synchronous = NORMAL"), seen.index("PRAGMA synchronous = FULL")
    marked = [s for s in seen[normal:full] if s in ("BEGIN IMMEDIATE", "COMMIT") or s.startswith("UPDATE decision_publications")]
    assert [s.split(" SET")[0] for s in marked] == ["BEGIN IMMEDIATE", "UPDATE decision_publications", "COMMIT"]
    assert seen.count("PRAGMA synchronous = NORMAL") == 1  # the decision itself: FULL, as always
    assert not any(s.startswith("UPDATE declarations") for s in seen[normal:])
    assert await h.db.pragma("synchronous") == "2"  # FULL
