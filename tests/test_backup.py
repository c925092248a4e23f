"""Online backup: `python -m bot backup PATH` while the bot writes, and a restore from the copy."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from bot.cli import backup, main
from bot.services import Actor
from bot.services.declarations import Draft, Verdict
from bot.settings import Settings
from storage.db import Database
from tests.conftest import TestHarness

pytestmark = pytest.mark.sqlite_only  # `backup` copies the SQLite file (PostgreSQL: pg_dump)


def _actor(user) -> Actor:
    return Actor(user_id=user.id, name=user.full_name, username=user.username, language=user.language_code)


async def test_a_backup_taken_during_writes_is_whole_and_a_consistent_prefix(h: TestHarness, b, tmp_path: Path) -> None:
    """A writer submits and approves declarations through the services without pause (each approval
    is one transaction: the declaration's status and its ledger row together) while backups are taken.
    Each copy passes integrity_check, holds every write confirmed before the backup started, and is a
    prefix of the writes: declarations 1..k with no gap, and each approved declaration in it has its
    ledger row and no ledger row lacks its approved declaration."""
    path = tmp_path / "t.sqlite3"
    settings = Settings(database_path=path, _env_file=None)
    svc = h.services
    confirmed = 0
    stop = asyncio.Event()

    async def writer() -> None:
        nonlocal confirmed
        i = 0
        while not stop.is_set() or i < 5:
            draft = Draft(item_code="post_deed", occurred_on=date(2026, 3, 20), place="村委会", description=f"第{i}件好事")
            declaration, _ = await svc.declarations.submit(b.branch, _actor(b.zhang), draft, client_key=f"w:{i}")
            if i % 3:  # two in three approved, the rest left pending
                await svc.declarations.decide(declaration.id, _actor(b.recorder), Verdict.APPROVE)
            confirmed = i + 1
            i += 1

    task = asyncio.create_task(writer())
    copies: list[tuple[int, Path]] = []
    try:
        for n in range(4):
            while confirmed < 3 * (n + 1):
                await asyncio.sleep(0)
            target = tmp_path / "backups" / f"copy{n}.sqlite3"
            before = confirmed
            assert await asyncio.to_thread(backup, settings, target) == 0
            copies.append((before, target))
    finally:
        stop.set()
        await task
    total = confirmed
    for before, target in copies:
        assert not target.with_name(target.name + ".partial").exists()
        with sqlite3.connect(target) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
            ids = [r[0] for r in conn.execute("SELECT id FROM declarations ORDER BY id")]
            assert ids == list(range(1, len(ids) + 1))  # a prefix: no gap
            assert before <= len(ids) <= total  # every write confirmed before the backup started is in
            approved = {r[0] for r in conn.execute("SELECT id FROM declarations WHERE status = 'approved'")}
            booked = {int(r[0].split(":")[1]) for r in conn.execute("SELECT reference FROM ledger WHERE source = 'declaration'")}
            assert approved == booked  # a decision and its ledger row: both or neither
    assert len({len(list(sqlite3.connect(t).execute("SELECT id FROM declarations"))) for _, t in copies}) > 1


async def test_restore_is_copying_the_backup_back(tmp_path: Path, monkeypatch, capsys) -> None:
    """The documented restore: stop the bot, copy the backup over DATABASE_PATH, delete -wal/-shm, start."""
    path = tmp_path / "live.sqlite3"
    db = await Database(path).open()
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO branches (chat_id, title, preset, timezone, language, created_by, created_at)"
                           " VALUES (-5, 't', 'xishui', 'Asia/Shanghai', 'zh', 1, '2026-03-20T00:00:00+00:00')")
    monkeypatch.setenv("DATABASE_PATH", str(path))
    target = tmp_path / "b" / "copy.sqlite3"
    assert main(["backup", str(target)]) == 0  # while the database is open (the bot running)
    assert "backed up" in capsys.readouterr().out
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM branches")
    await db.close()
    # restore
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.write_bytes(target.read_bytes())
    restored = await Database(path).open()
    try:
        assert (await restored.pragma("journal_mode")).lower() == "wal"
        async with restored.read() as conn:
            async with conn.execute("SELECT chat_id FROM branches") as cursor:
                assert [r[0] for r in await cursor.fetchall()] == [-5]
    finally:
        await restored.close()


def test_backup_refuses_a_missing_database_and_its_own_file(tmp_path: Path, capsys) -> None:
    missing = Settings(database_path=tmp_path / "none.sqlite3", _env_file=None)
    assert backup(missing, tmp_path / "x.sqlite3") == 2
    live = tmp_path / "live.sqlite3"
    sqlite3.connect(live).close()
    assert backup(Settings(database_path=live, _env_file=None), live) == 2
    assert "must not overwrite" in capsys.readouterr().err


def test_backup_keeps_an_earlier_backup_unless_forced(tmp_path: Path, capsys) -> None:
    """A second backup to the same name (a typo, a reused date) does not silently replace the first."""
    live = tmp_path / "live.sqlite3"
    with contextlib.closing(sqlite3.connect(live)) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
        conn.commit()
    settings = Settings(database_path=live, _env_file=None)
    target = tmp_path / "backups" / "b.sqlite3"
    assert backup(settings, target) == 0
    assert f"to {target.resolve()}" in capsys.readouterr().out  # the full path: where it went is visible
    first = target.read_bytes()
    with contextlib.closing(sqlite3.connect(live)) as conn:
        conn.execute("INSERT INTO t VALUES (2)")
        conn.commit()
    assert backup(settings, target) == 2
    assert "exists already" in capsys.readouterr().err and target.read_bytes() == first
    assert backup(settings, target, force=True) == 0
    with contextlib.closing(sqlite3.connect(target)) as conn:
        assert [r[0] for r in conn.execute("SELECT x FROM t ORDER BY x")] == [1, 2]
