"""Faults (issue 5): redelivered updates, concurrent decisions, sends that fail, a group that moved,
and the database's start-up guarantees.

Each test drives the real Application (handlers, services, the database: SQLite and PostgreSQL, see
conftest) through the offline Telegram and compares what is in the database afterwards; where Telegram
misbehaves (429, timeouts, 403, a group upgraded to a supergroup) the offline world is told to
misbehave in that way.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import telegram
from telegram.error import TimedOut

from bot.app import build_application
from bot.cli import backup
from bot.domain.meetings import MeetingKind
from bot.offline import OfflineRequest, OfflineTelegram
from bot.services import Actor, Services
from bot.services.declarations import Draft
from bot.services.meetings import MeetingDraft
from bot.settings import Settings
from handlers.common import send_group
from schedules import engine
from storage import members as member_repo
from storage.db import Database
from tests.conftest import TestHarness, assert_healthy, card_message, count, declare, dump_tables, member_row, rows, second_connection

TABLES = ("ledger", "declarations", "members", "roles", "branches")
APRIL_1 = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)  # 09:00 Asia/Shanghai: March's notice is due


# --- helpers ---------------------------------------------------------------------------------------


async def dump(url: str | Path, tables: tuple[str, ...] = TABLES) -> dict[str, list[tuple]]:
    """Every row of the tables that matter, read through a second connection opened on the same database
    (as another process would): what is committed. Either backend."""
    async with second_connection(url) as db:
        return await dump_tables(db, tables)


def as_actor(user: telegram.User) -> Actor:
    return Actor(user_id=user.id, name=user.full_name, username=user.username, language=user.language_code)


class SameWorldHarness(TestHarness):
    """The bot started again (new Application, Database, Services) against the same Telegram."""

    __test__ = False

    def __init__(self, url: str | Path, clock, world: OfflineTelegram, *, rate_limit: bool = False):
        super().__init__(url, clock)
        self.world = world
        self.app = build_application(world.token, self.services, request=world.request, rate_limit=rate_limit, set_menus=False)


def only(monkeypatch: pytest.MonkeyPatch, *kinds: str) -> None:
    monkeypatch.setattr(engine, "PRODUCERS", [p for p in engine.PRODUCERS if p.kind in kinds])


async def approve_by_button(h: TestHarness, b: SimpleNamespace, declaration_id: int) -> list:
    card = card_message(h, b.recorder.id, declaration_id)
    return await h.press(b.recorder, card, f"dc:ok:{declaration_id}")


# --- replayed updates ------------------------------------------------------------------------------


async def test_the_same_update_twice_changes_nothing_the_second_time(h, b, database_url) -> None:
    number = await declare(h, b.zhang)
    assert number is not None
    submit = h.fed[-1]  # the Submit press
    await approve_by_button(h, b, number)
    approve = h.fed[-1]
    before = await dump(database_url)
    assert len([r for r in before["ledger"] if f"decl:{number}" in r]) == 1
    assert [r for r in before["declarations"] if "approved" in r]
    for update in (submit, approve, submit, approve):  # same update_id, same callback query
        await h.feed(update)
    assert await dump(database_url) == before


async def test_a_whole_batch_replayed_after_a_restart_changes_nothing(h, b, clock, database_url) -> None:
    """PTB acknowledges updates by offset only after they were handled: a crash in between redelivers
    the whole batch to the next process. Replaying every update of a set-up, joins, roles, a declaration
    and its approval through a new process on the same database leaves ledger, declarations, members,
    roles and branches exactly as they were."""
    number = await declare(h, b.zhang)
    await approve_by_button(h, b, number)
    await h.say(b.recorder, h.private(b.recorder), f"/record @{b.lisi.username} study absent 3月5日无故缺席")
    batch = [u.to_dict() for u in h.fed]
    before = await dump(database_url)
    assert len(before["ledger"]) == 2
    assert len(before["roles"]) >= 2  # the secretary and the recorder
    async with SameWorldHarness(database_url, clock, h.world) as again:
        for data in batch:
            await again.feed(telegram.Update.de_json(data, again.app.bot))
        assert await dump(database_url) == before
        assert_healthy(again)
    h.world.attach(h.app.bot)


# --- concurrent decisions --------------------------------------------------------------------------


async def test_two_approvals_of_the_same_declaration_at_once_book_it_once(h, b) -> None:
    number = await declare(h, b.zhang)
    card = card_message(h, b.recorder.id, number)
    double_tap = [h.world.press(b.recorder, card, f"dc:ok:{number}") for _ in range(2)]
    redelivered = double_tap[0]
    await asyncio.gather(*(h.feed(u) for u in (*double_tap, redelivered)))
    assert await count(h, "ledger", "reference = ?", f"decl:{number}") == 1
    assert (await rows(h, "SELECT status FROM declarations WHERE id = ?", number))[0]["status"] == "approved"
    told = [c for c in h.world.sent(b.zhang.id, "sendMessage") if f"#{number} 已通过" in str(c.params.get("text"))]
    assert len(told) == 1  # the member is told once
    # and by the service directly, two deciders at once: one wins, the other is told it is done
    other = await declare(h, b.lisi)
    results = await asyncio.gather(
        h.services.declarations.decide(other, as_actor(b.recorder), _approve()),
        h.services.declarations.decide(other, as_actor(b.secretary), _approve()),
        return_exceptions=True,
    )
    assert sum(1 for r in results if not isinstance(r, Exception)) == 1
    assert [type(r).__name__ for r in results if isinstance(r, Exception)] == ["AlreadyDone"]
    assert await count(h, "ledger", "reference = ?", f"decl:{other}") == 1


def _approve():
    from bot.services.declarations import Verdict

    return Verdict.APPROVE


async def _submit_many(services: Services, branch, people: list[telegram.User], n: int, tag: str) -> list[int]:
    ids = []
    for i in range(n):
        person = people[i % len(people)]
        draft = Draft(item_code="post_deed", occurred_on=date(2026, 3, 20), place="村委会", description=f"{tag} 第{i}件")
        declaration, _ = await services.declarations.submit(branch, as_actor(person), draft, client_key=f"{tag}:{i}")
        ids.append(declaration.id)
    return ids


@pytest.mark.sqlite_only  # SQLite's backup API; PostgreSQL: test_postgres.test_twenty_concurrent_approvals_here_and_…
async def test_twenty_concurrent_approvals_with_a_second_process_and_a_backup_running(h, b, clock, tmp_path, caplog) -> None:
    """20 button presses at once in this process, 20 approvals at once by a second process on the same
    file (its own connection), and backups copying the file meanwhile: every approval is booked exactly
    once and nobody sees "database is locked" (BEGIN IMMEDIATE + busy_timeout)."""
    caplog.set_level(logging.WARNING)
    path = tmp_path / "t.sqlite3"
    mine = await _submit_many(h.services, b.branch, [b.zhang, b.lisi], 20, "a")
    theirs = await _submit_many(h.services, b.branch, [b.zhang, b.lisi], 20, "b")
    anchor = h.world.last_message(b.recorder.id)
    presses = [h.world.press(b.recorder, anchor, f"dc:ok:{n}") for n in mine]
    other_db = await Database(path).open()
    other = Services(other_db, clock)
    stop = asyncio.Event()
    copies: list[Path] = []

    async def backups() -> None:
        settings = Settings(database_path=path, _env_file=None)
        while not stop.is_set():
            target = tmp_path / f"copy{len(copies)}.sqlite3"
            assert await asyncio.to_thread(backup, settings, target) == 0
            copies.append(target)
            await asyncio.sleep(0)

    backup_task = asyncio.create_task(backups())
    try:
        results = await asyncio.gather(
            *(h.app.process_update(u) for u in presses),
            *(other.declarations.decide(n, as_actor(b.secretary), _approve()) for n in theirs),
            return_exceptions=True,
        )
    finally:
        stop.set()
        await backup_task
        await other_db.close()
    assert [r for r in results if isinstance(r, BaseException)] == []
    booked = await rows(h, "SELECT reference, count(*) AS n FROM ledger WHERE source = 'declaration' GROUP BY reference")
    assert {r["reference"]: r["n"] for r in booked} == {f"decl:{n}": 1 for n in mine + theirs}
    assert await count(h, "declarations", "status = 'approved'") == 40
    assert "locked" not in caplog.text.lower()
    assert copies, "no backup ran during the approvals"
    for copy in copies:
        with sqlite3.connect(copy) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# --- sends that fail ---------------------------------------------------------------------------------


async def _add_members(h: TestHarness, b: SimpleNamespace, n: int) -> list[telegram.User]:
    """n more approved members with a private chat, straight into the roster (a large branch)."""
    people = []
    async with h.db.transaction() as conn:
        for i in range(n):
            person = h.user(60_000 + i, f"党员{i:03d}")
            h.private(person)
            await member_repo.add_approved(conn, branch_id=b.branch.id, name=person.full_name, joined_on="2026-03-01", user_id=person.id)
            people.append(person)
    return people


def _asked(h: TestHarness, user_id: int) -> int:
    return len([c for c in h.world.sent(user_id, "sendMessage") if any(d.startswith("nt:cf:") for _, d in h.world.buttons(c))])


async def test_a_timed_out_send_is_not_repeated_blindly_and_the_notice_goes_out_once(h, b, clock, monkeypatch) -> None:
    """A notice long enough for several messages; its second message times out before reaching
    Telegram. Nothing retries it on the spot (PTB retries nothing, the rate limiter only RetryAfter):
    the tick records the notice as failed; the next tick sends only what is missing, so every part and
    every confirmation request goes out exactly once, and the notice is stored and marked sent once."""
    only(monkeypatch, "notice")
    others = await _add_members(h, b, 150)
    original = OfflineRequest.do_request
    attempts: list[str] = []

    async def flaky(self, url, method, request_data=None, *args, **kwargs):
        chat = (request_data.parameters if request_data else {}).get("chat_id")
        if url.endswith("/sendMessage") and str(chat) == str(b.group.id):
            attempts.append(url)
            if len(attempts) == 2:
                raise TimedOut("offline: timed out before reaching Telegram")
        return await original(self, url, method, request_data, *args, **kwargs)

    monkeypatch.setattr(OfflineRequest, "do_request", flaky)
    before = len(h.world.calls)

    def in_group() -> list[str]:
        return [c.params["text"] for c in h.world.calls[before:] if c.method == "sendMessage" and c.ok and c.chat_id == b.group.id]

    clock.set(APRIL_1 + timedelta(minutes=1))
    first = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "notice", "2026-03", "failed") in first
    assert len(attempts) == 2  # the part that timed out was tried once, not again and again
    assert len(in_group()) == 1
    assert await count(h, "notices") == 1
    clock.set(APRIL_1 + timedelta(minutes=2))
    second = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "notice", "2026-03", "done") in second
    group_texts = in_group()
    assert len(group_texts) >= 2 and len(group_texts) == len(set(group_texts))  # every part once
    assert sum("党员积分公示" in t for t in group_texts) == 1  # the notice's heading: one notice
    assert len(attempts) == len(group_texts) + 1
    for person in (b.secretary, b.recorder, b.zhang, b.lisi, *others):
        assert _asked(h, person.id) == 1, person.full_name
    clock.set(APRIL_1 + timedelta(minutes=3))
    assert [d for d in await engine.tick(h.app, clock.now()) if d[1] == "notice"] == []
    assert await count(h, "notices", "sent_at IS NOT NULL") == 1


async def test_a_confirmation_request_that_timed_out_after_delivery_is_asked_at_most_twice(h, b, clock, monkeypatch) -> None:
    """A timeout after delivery: unknown to the bot whether it arrived. The request is sent again on the
    retry (a duplicate is better than a member never asked); nobody else is asked twice."""
    only(monkeypatch, "notice")
    original = OfflineRequest.do_request
    failures = {"zhang": 1}

    async def flaky(self, url, method, request_data=None, *args, **kwargs):
        result = await original(self, url, method, request_data, *args, **kwargs)
        chat = (request_data.parameters if request_data else {}).get("chat_id")
        if url.endswith("/sendMessage") and str(chat) == str(b.zhang.id) and failures["zhang"]:
            failures["zhang"] -= 1
            raise TimedOut("offline: delivered, then timed out")
        return result

    monkeypatch.setattr(OfflineRequest, "do_request", flaky)
    clock.set(APRIL_1 + timedelta(minutes=1))
    await engine.tick(h.app, clock.now())
    clock.set(APRIL_1 + timedelta(minutes=2))
    await engine.tick(h.app, clock.now())
    clock.set(APRIL_1 + timedelta(minutes=3))
    await engine.tick(h.app, clock.now())
    asked = {person.id: _asked(h, person.id) for person in (b.secretary, b.recorder, b.zhang, b.lisi)}
    assert asked[b.zhang.id] in (1, 2)
    assert all(n == 1 for uid, n in asked.items() if uid != b.zhang.id), asked
    assert len({c.params["text"] for c in h.world.sent(b.group.id, "sendMessage")}) == len(h.world.sent(b.group.id, "sendMessage"))


async def test_a_member_who_blocked_the_bot_is_marked_unreachable_and_the_meeting_reminders_go_on(h, b, clock) -> None:
    start = datetime(2026, 3, 25, 6, 30, tzinfo=UTC)
    meeting, _ = await h.services.meetings.schedule(
        b.branch, as_actor(b.secretary), MeetingDraft(MeetingKind.BRANCH_MEETING, start, "村委会议室", "学习党章"), client_key="m1")
    h.world.block(b.zhang.id)
    before = len(h.world.calls)
    clock.set(start - timedelta(days=1) + timedelta(minutes=1))
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "meeting_reminder", f"{meeting.id}:1440", "done") in done
    reached = {c.chat_id for c in h.world.calls[before:] if c.method == "sendMessage" and c.ok}
    assert reached == {b.group.id, b.secretary.id, b.recorder.id, b.lisi.id}
    assert (await member_row(h, b.zhang.id))["reachable"] == 0
    assert (await member_row(h, b.lisi.id))["reachable"] == 1


async def test_a_group_that_removed_the_bot_marks_the_branch_unreachable_and_members_are_still_reminded(h, b, clock) -> None:
    start = datetime(2026, 3, 25, 6, 30, tzinfo=UTC)
    await h.services.meetings.schedule(
        b.branch, as_actor(b.secretary), MeetingDraft(MeetingKind.BRANCH_MEETING, start, "村委会议室", "学习党章"), client_key="m1")
    await h.app.bot.leave_chat(b.group.id)  # from now on the group answers 403
    before = len(h.world.calls)
    clock.set(start - timedelta(days=1) + timedelta(minutes=1))
    await engine.tick(h.app, clock.now())
    reached = {c.chat_id for c in h.world.calls[before:] if c.method == "sendMessage" and c.ok}
    assert reached == {b.secretary.id, b.recorder.id, b.zhang.id, b.lisi.id}
    assert (await rows(h, "SELECT reachable FROM branches WHERE id = ?", b.branch.id))[0]["reachable"] == 0
    h.world.calls[:] = [c for c in h.world.calls if c.ok]  # the refused group send was expected


async def test_a_blocked_member_is_marked_unreachable_and_the_other_confirmations_still_go_out(h, b, clock, monkeypatch) -> None:
    only(monkeypatch, "notice")
    h.world.block(b.recorder.id)
    clock.set(APRIL_1 + timedelta(minutes=1))
    assert (b.branch.id, "notice", "2026-03", "done") in await engine.tick(h.app, clock.now())
    for person in (b.secretary, b.zhang, b.lisi):
        assert any(any(d.startswith("nt:cf:") for _, d in h.world.buttons(c)) for c in h.world.sent(person.id, "sendMessage"))
    assert (await member_row(h, b.recorder.id))["reachable"] == 0
    assert h.world.sent(b.group.id, "sendMessage")


async def _dues_round_with_lisi_blocked(h, b, clock, monkeypatch) -> list:
    only(monkeypatch, "dues_reminder")
    h.world.block(b.lisi.id)
    before = len(h.world.calls)
    clock.set(datetime(2026, 4, 5, 1, 1, tzinfo=UTC))  # the 5th, 09:01 in Asia/Shanghai
    done = await engine.tick(h.app, clock.now())
    assert (b.branch.id, "dues_reminder", "2026-04:first", "done") in done
    return h.world.calls[before:]


async def test_a_blocked_member_does_not_stop_the_dues_reminders(h, b, clock, monkeypatch) -> None:
    calls = await _dues_round_with_lisi_blocked(h, b, clock, monkeypatch)
    reminded = {c.chat_id for c in calls if c.method == "sendMessage" and c.ok and "2026-04" in str(c.params["text"])}
    assert {b.secretary.id, b.recorder.id, b.zhang.id} <= reminded
    summary = " ".join(str(c.params["text"]) for c in calls if c.ok and c.chat_id == b.recorder.id)
    assert b.lisi.full_name in summary  # the recorder is told who could not be reached


async def test_a_blocked_member_is_marked_unreachable_by_the_dues_reminders(h, b, clock, monkeypatch) -> None:
    await _dues_round_with_lisi_blocked(h, b, clock, monkeypatch)
    assert (await member_row(h, b.lisi.id))["reachable"] == 0


# --- a group upgraded to a supergroup ------------------------------------------------------------------


async def test_the_migration_message_moves_the_branch_once(h, b) -> None:
    new_id = -1009999999999
    update = h.world.chat_migrated(b.group, new_id)
    await h.feed(update)
    await h.feed(update)  # redelivered
    moved = await h.services.branches.by_id(b.branch.id)
    assert moved.chat_id == new_id
    assert await count(h, "branches", "chat_id = ?", b.group.id) == 0


async def test_a_send_to_the_old_chat_moves_the_branch_and_is_sent_once_to_the_new_one(h, b) -> None:
    new_id = -1009999999998
    h.world.chat_migrated(b.group, new_id)  # Telegram knows; the migration message never reached the bot
    before = len(h.world.calls)
    sent = await send_group(h.app, b.branch, "支部通知：本周五学习")
    assert sent is not None and sent.chat_id == new_id
    assert (await h.services.branches.by_id(b.branch.id)).chat_id == new_id
    calls = [c for c in h.world.calls[before:] if c.method == "sendMessage"]
    assert [(c.chat_id, c.ok) for c in calls] == [(b.group.id, False), (new_id, True)]
    # a caller still holding the old record: fails over again, moves nothing, sends once
    again = await send_group(h.app, b.branch, "第二条")
    assert again is not None and again.chat_id == new_id
    assert len(h.world.sent(new_id, "sendMessage")) == 2
    h.world.calls[:] = [c for c in h.world.calls if c.ok]  # the refused calls were expected


async def test_send_group_to_a_group_that_removed_the_bot_marks_it_unreachable(h, b) -> None:
    await h.app.bot.leave_chat(b.group.id)
    assert await send_group(h.app, b.branch, "通知") is None
    assert (await h.services.branches.by_id(b.branch.id)).reachable is False
    h.world.calls[:] = [c for c in h.world.calls if c.ok]


# --- the database's start-up guarantees -----------------------------------------------------------------


async def test_pragmas_hold_for_every_connection_the_bot_opens(tmp_path) -> None:
    path = tmp_path / "p.sqlite3"
    for _ in range(2):  # a fresh file, then an existing one
        db = await Database(path).open()
        try:
            assert (await db.pragma("journal_mode")).lower() == "wal"
            assert await db.pragma("synchronous") == "2"  # FULL: a confirmed change survives a power cut
            assert await db.pragma("foreign_keys") == "1"
            assert int(await db.pragma("busy_timeout")) >= 1000
        finally:
            await db.close()
    with sqlite3.connect(path) as raw:  # WAL is persistent in the file itself
        assert raw.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"


@pytest.mark.sqlite_only  # traces SQLite's statements
async def test_every_write_happens_inside_begin_immediate(h, b) -> None:
    """Trace every statement the connection runs during a declaration, its approval, a recorder entry
    and a refusal: each BEGIN is BEGIN IMMEDIATE, and no INSERT/UPDATE/DELETE runs outside one."""
    statements: list[str] = []
    raw = h.db.conn.raw  # the stdlib sqlite3 connection (statements run on the loop, COMMITs in a worker)
    raw.set_trace_callback(statements.append)
    try:
        number = await declare(h, b.zhang)
        await approve_by_button(h, b, number)
        await h.say(b.recorder, h.private(b.recorder), f"/record @{b.lisi.username} study absent 3月5日无故缺席")
        await h.say(b.zhang, h.private(b.zhang), "/points")
        await h.feed(h.world.press(b.zhang, h.world.last_message(b.zhang.id), f"dc:ok:{number}"))  # refused
    finally:
        raw.set_trace_callback(None)
    in_transaction = False
    writes = 0
    for sql in statements:
        head = sql.lstrip().split(None, 2)
        verb = head[0].upper() if head else ""
        if verb == "BEGIN":
            assert sql.strip().upper() == "BEGIN IMMEDIATE", sql
            in_transaction = True
        elif verb in ("COMMIT", "END", "ROLLBACK"):
            in_transaction = False
        elif verb in ("INSERT", "UPDATE", "DELETE", "REPLACE"):
            assert in_transaction, f"a write outside BEGIN IMMEDIATE: {sql}"
            writes += 1
    assert writes >= 3 and not in_transaction


async def test_every_write_happens_inside_a_write_transaction_on_postgres(h, b, backend, monkeypatch) -> None:
    """PostgreSQL's counterpart of the test above: during the same declaration, approval, recorder entry,
    /points and refusal, every INSERT/UPDATE/DELETE runs on a connection that ``db.transaction()`` holds
    (BEGIN, the cross-process write lock, COMMIT before the user is told), never through the autocommit
    ``db.conn`` nor inside a read-only snapshot."""
    if backend != "postgres":
        pytest.skip("SQLite: test_every_write_happens_inside_begin_immediate")
    from storage.postgres import PgConnection, PostgresDatabase

    writers: set[int] = set()  # the connections a write transaction holds right now
    writes: list[tuple[str, bool]] = []
    transaction, execute = PostgresDatabase.transaction, PgConnection.execute
    executemany, executescript = PgConnection.executemany, PgConnection.executescript

    @asynccontextmanager
    async def traced_transaction(self, *args, **kwargs):
        async with transaction(self, *args, **kwargs) as conn:
            writers.add(id(conn))
            try:
                yield conn
            finally:
                writers.discard(id(conn))

    def note(conn: PgConnection, sql: str) -> None:
        if re.search(r"\b(INSERT|UPDATE|DELETE)\b", sql.upper()):
            writes.append((sql, id(conn) in writers and conn.raw.is_in_transaction()))

    def traced_execute(self, sql, args=None):
        note(self, sql)
        return execute(self, sql, args)

    async def traced_executemany(self, sql, seq_of_args):
        note(self, sql)
        return await executemany(self, sql, seq_of_args)

    async def traced_executescript(self, script):
        note(self, script)
        return await executescript(self, script)

    monkeypatch.setattr(PostgresDatabase, "transaction", traced_transaction)
    monkeypatch.setattr(PgConnection, "execute", traced_execute)
    monkeypatch.setattr(PgConnection, "executemany", traced_executemany)
    monkeypatch.setattr(PgConnection, "executescript", traced_executescript)
    number = await declare(h, b.zhang)
    await approve_by_button(h, b, number)
    await h.say(b.recorder, h.private(b.recorder), f"/record @{b.lisi.username} study absent 3月5日无故缺席")
    await h.say(b.zhang, h.private(b.zhang), "/points")
    await h.feed(h.world.press(b.zhang, h.world.last_message(b.zhang.id), f"dc:ok:{number}"))  # refused
    monkeypatch.undo()
    outside = [sql for sql, inside in writes if not inside]
    assert not outside, outside
    assert len(writes) >= 3
    assert await count(h, "ledger") == 2
