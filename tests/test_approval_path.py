"""The recorder's Approve press, as the database sees it: one write transaction that reads what the
decision needs in one statement (the presser's role included, afresh on every press), and nothing read
after its COMMIT; SQLite's checkpoints off the COMMIT's path."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

import storage.db as sqlite_db
from storage.db import Database
from tests.conftest import card_message, count, declare, popups, rows, said


def alert_texts(calls) -> list[str]:
    return [str(c.params.get("text", "")) for c in popups(calls) if c.params.get("show_alert")]


def count_database_work(h, monkeypatch, blocks: dict[str, str]) -> dict[str, int]:
    """Repository statements (either backend's connection class) and the blocks entered through h.db
    (``blocks``: method name → its counter's name), from now on."""
    used = {"statements": 0, **{key: 0 for key in blocks.values()}}
    if h.db.backend == "sqlite":
        from storage.db import Connection
    else:
        from storage.postgres import PgConnection as Connection
    execute = Connection.execute

    def counting(self, sql, *args, **kwargs):
        used["statements"] += 1
        return execute(self, sql, *args, **kwargs)

    monkeypatch.setattr(Connection, "execute", counting)
    for name, key in blocks.items():
        method = getattr(h.db, name)

        def entering(*args, _method=method, _key=key, **kwargs):
            used[_key] += 1
            return _method(*args, **kwargs)

        monkeypatch.setattr(h.db, name, entering)
    return used


def _count_database_work(h, monkeypatch) -> dict[str, int]:
    """Statements, and the transactions and read blocks entered through h.db."""
    return count_database_work(h, monkeypatch, {"transaction": "transactions", "read": "reads", "snapshot": "reads"})


async def test_an_approval_is_one_transaction_of_four_statements_then_a_mark_and_reads_nothing_after(h, b, monkeypatch) -> None:
    number = await declare(h, b.zhang)
    card = card_message(h, b.recorder.id, number)
    used = _count_database_work(h, monkeypatch)
    calls = await h.press(b.recorder, card, f"dc:ok:{number}")
    # the context (declaration, branch, declarant, presser, roles, card copies), the UPDATE … RETURNING,
    # the ledger row, the publication opened: one transaction, no read block before or after; then,
    # once shown, the publication marked in a second transaction that does not wait for the disk
    # (tests/test_decision_publication.py)
    assert used == {"statements": 5, "transactions": 2, "reads": 0}, used
    assert [c.method for c in calls] == ["answerCallbackQuery", "editMessageText", "sendMessage"]
    assert "已通过" in calls[1].params["text"] and "为民办一件实事" in calls[1].params["text"]
    assert "记 10分" in said(calls, b.zhang.id)
    ledger = await rows(h, "SELECT * FROM ledger WHERE reference = ?", f"decl:{number}")
    assert len(ledger) == 1 and ledger[0]["value"] == "10"

    used.update(statements=0, transactions=0, reads=0)  # the double tap: refused in the same one statement
    calls = await h.press(b.recorder, card, f"dc:ok:{number}")
    assert alert_texts(calls) == ["这条申报已经处理过了。"]
    assert used == {"statements": 1, "transactions": 1, "reads": 0}, used
    assert await count(h, "ledger") == 1


async def test_the_presser_s_role_is_read_on_every_press(h, b) -> None:
    """A recorder whose role is revoked after the card was sent is refused on the next press; given back,
    the press works (nothing about the presser is remembered between presses)."""
    first, second = await declare(h, b.zhang), await declare(h, b.lisi)
    await h.say(b.secretary, b.group, f"/role @{b.recorder.username} -recorder")
    calls = await h.press(b.recorder, card_message(h, b.recorder.id, first), f"dc:ok:{first}")
    assert alert_texts(calls) == ["您没有审核这条申报的权限。"]
    assert (await rows(h, "SELECT status FROM declarations WHERE id = ?", first))[0]["status"] == "pending"
    await h.say(b.secretary, b.group, f"/role @{b.recorder.username} recorder")
    calls = await h.press(b.recorder, card_message(h, b.recorder.id, second), f"dc:ok:{second}")
    assert "已通过" in calls[1].params["text"]
    assert [r["status"] for r in await rows(h, "SELECT status FROM declarations ORDER BY id")] == ["pending", "approved"]


async def test_every_copy_of_the_card_shows_the_decision(h, b) -> None:
    """The copies are read in the decision's transaction: with two recorders, both copies are edited."""
    await h.say(b.secretary, b.group, f"/role @{b.lisi.username} recorder")
    number = await declare(h, b.zhang)
    copies = await rows(h, "SELECT chat_id, message_id FROM declaration_messages WHERE declaration_id = ?", number)
    assert {r["chat_id"] for r in copies} == {b.recorder.id, b.lisi.id}
    calls = await h.press(b.lisi, card_message(h, b.lisi.id, number), f"dc:ok:{number}")
    edits = [c for c in calls if c.method == "editMessageText"]
    assert [(int(c.params["chat_id"]), int(c.params["message_id"])) for c in edits] == sorted(
        (r["chat_id"], r["message_id"]) for r in copies)
    assert all("已通过" in c.params["text"] and "李四" in c.params["text"] for c in edits)


@pytest.mark.sqlite_only  # SQLite's WAL file
async def test_checkpoints_run_in_the_background_not_in_a_commit(tmp_path: Path, monkeypatch) -> None:
    """The writing connection never checkpoints at SQLite's 1000 pages (the COMMIT that crossed it waited
    for the copy and the database file's fsync); the background checkpoint moves the WAL into the file."""
    monkeypatch.setattr(sqlite_db, "CHECKPOINT_EVERY", 10**9)  # no background checkpoint for now
    db = await Database(tmp_path / "c.sqlite3").open()
    try:
        assert await db.pragma("wal_autocheckpoint") == str(sqlite_db.SAFETY_CHECKPOINT_PAGES)
        await db.conn.execute("CREATE TABLE t (x BLOB)")
        for _ in range(120):  # ~10 pages a transaction: ~1200 pages, past SQLite's default mark
            async with db.transaction() as conn:
                await conn.execute("INSERT INTO t VALUES (randomblob(40000))")
        # (the WAL file's size proves nothing: a restarted WAL keeps its size; the pages the checkpoint
        # below finds waiting do: ~1200 with no COMMIT checkpointing, ~400 with SQLite's default mark)
        monkeypatch.setattr(sqlite_db, "CHECKPOINT_EVERY", 1)
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO t VALUES (1)")
        job = db._checkpoint_job
        assert job is not None
        busy, pages, moved = await asyncio.wrap_future(job)
        assert busy == 0 and pages > 1000 and moved == pages  # every committed page is in the file now
        size = os.path.getsize(db.path)
        assert size > 1000 * 4096
    finally:
        await db.close()


async def test_a_per_post_ranged_item_is_checked_against_the_posts_the_declarant_holds(h, b, clock) -> None:
    """The posts are read only for a per-post ranged item (the only kind whose allowed values depend on
    them): a custom item of 1-5 points per post allows 8 for a member counting the 浠水 scheme's 2 posts,
    not for one holding 1."""
    from decimal import Decimal

    from bot.domain.rulebook import CustomItem, Item, ItemKind, Text, Trigger
    from bot.errors import InvalidInput
    from bot.services.branches import Actor
    from bot.services.declarations import Draft, Verdict

    secretary = Actor(b.secretary.id, "王书记")
    item = Item(code="post_help", name=Text(zh="岗位帮扶", en="Post help"), kind=ItemKind.RANGED, min=Decimal(1),
                max=Decimal(5), default=Decimal(1), per_post=True, triggers=frozenset({Trigger.DECLARATION}))
    await h.services.branches.add_custom_item(b.branch, secretary, CustomItem(category="posts", item=item))
    branch = await h.services.branches.by_chat(b.group.id)
    await h.say(b.secretary, b.group, f"/posts set @{b.lisi.username} 3")  # lisi holds 1 post; zhang never claimed: 2
    today = clock.today(branch.timezone)
    numbers = {}
    for person in (b.zhang, b.lisi):
        draft = Draft(item_code="post_help", occurred_on=today, place="村里", description="帮扶")
        declaration, _ = await h.services.declarations.submit(branch, Actor(person.id, person.full_name), draft, f"k{person.id}")
        numbers[person.id] = declaration.id
    recorder = Actor(b.recorder.id, "李记录")
    decision = await h.services.declarations.decide(numbers[b.zhang.id], recorder, Verdict.APPROVE, value=Decimal(8))
    assert decision.declaration.decided_value == Decimal(8) and decision.ledger_row is not None
    with pytest.raises(InvalidInput) as refused:
        await h.services.declarations.decide(numbers[b.lisi.id], recorder, Verdict.APPROVE, value=Decimal(8))
    assert refused.value.key == "decision.value_not_allowed"
    decision = await h.services.declarations.decide(numbers[b.lisi.id], recorder, Verdict.APPROVE, value=Decimal(5))
    assert decision.declaration.decided_value == Decimal(5)


async def test_a_failing_background_checkpoint_is_logged(tmp_path: Path, monkeypatch, caplog) -> None:
    """Otherwise the WAL would grow unnoticed up to SAFETY_CHECKPOINT_PAGES."""
    monkeypatch.setattr(sqlite_db, "CHECKPOINT_EVERY", 1)
    db = await Database(tmp_path / "f.sqlite3").open()

    def broken() -> tuple[int, int, int]:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(db, "_checkpoint", broken)
    try:
        await db.conn.execute("CREATE TABLE t (x)")
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO t VALUES (1)")
        job = db._checkpoint_job
        assert job is not None
        await asyncio.wait([asyncio.wrap_future(job)])
        await asyncio.sleep(0)
    finally:
        await db.close()
    assert "background WAL checkpoint failed" in caplog.text and "disk I/O error" in caplog.text
