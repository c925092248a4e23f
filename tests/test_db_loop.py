"""Where the SQLite statements run (storage/db.py): short ones on the loop, the COMMIT in a worker
thread, a BEGIN that must wait for another writer off the loop, bulk reads from a snapshot."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from storage.db import Database


@pytest.fixture
async def db(tmp_path: Path):
    database = await Database(tmp_path / "d.sqlite3").open()
    await database.conn.execute("CREATE TABLE t (x INTEGER)")
    yield database
    await database.close()


async def _count(db: Database) -> int:
    async with db.read() as conn:
        async with conn.execute("SELECT count(*) FROM t") as cursor:
            return (await cursor.fetchone())[0]


async def test_statements_run_on_the_loop_and_the_commit_in_the_worker(db: Database) -> None:
    ran: list[tuple[str, str]] = []
    db.conn.raw.set_trace_callback(lambda sql: ran.append((sql.split()[0].upper(), threading.current_thread().name)))
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO t VALUES (1)")
        async with conn.execute("SELECT count(*) FROM t") as cursor:
            assert (await cursor.fetchone())[0] == 1
    async with db.transaction() as conn:  # writes nothing: its COMMIT has nothing to fsync
        await conn.execute("SELECT 1")
    db.conn.raw.set_trace_callback(None)
    loop_thread = threading.current_thread().name
    commits = [thread for verb, thread in ran if verb == "COMMIT"]
    assert commits[0].startswith("sqlite-commit") and commits[1] == loop_thread
    assert all(thread == loop_thread for verb, thread in ran if verb != "COMMIT")
    assert [verb for verb, _ in ran].count("BEGIN") == 2 and await _count(db) == 1


async def test_only_durable_commits_count_as_waiting_for_the_disk(db: Database) -> None:
    """``commit_seconds``/``commits`` (what the benchmark prints as the disk's share of an update) count a
    COMMIT that waits for the fsync, not one that wrote nothing nor one that does not wait for the disk."""
    assert (db.commits, db.commit_seconds) == (0, 0.0)
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO t VALUES (1)")
    assert db.commits == 1 and db.commit_seconds > 0
    waited = db.commit_seconds
    async with db.transaction() as conn:  # wrote nothing
        await conn.execute("SELECT 1")
    async with db.transaction(wait_for_disk=False) as conn:
        await conn.execute("INSERT INTO t VALUES (2)")
    assert (db.commits, db.commit_seconds) == (1, waited) and await _count(db) == 2


async def test_a_begin_waiting_for_another_writer_does_not_block_the_loop(db: Database) -> None:
    other = sqlite3.connect(db.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process's writer holds the lock
    other.execute("INSERT INTO t VALUES (7)")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    async def write() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO t VALUES (8)")

    tick = asyncio.create_task(ticker())
    writer = asyncio.create_task(write())
    await asyncio.sleep(0.2)
    assert not writer.done() and ticks >= 10  # waiting, and the loop kept running meanwhile
    other.execute("COMMIT")
    await asyncio.wait_for(writer, 5)
    tick.cancel()
    other.close()
    assert await _count(db) == 2


async def test_a_failed_body_or_a_cancelled_commit_leaves_no_transaction_open(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO t VALUES (1)")
            raise RuntimeError("boom")
    assert not db.conn.raw.in_transaction and await _count(db) == 0

    async def write() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO t VALUES (2)")

    task = asyncio.create_task(write())
    for _ in range(50):  # until the COMMIT has been handed to the worker
        await asyncio.sleep(0)
        if db.conn.raw.total_changes and not task.done():
            break
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert not db.conn.raw.in_transaction  # committed or rolled back, never left open
    async with db.transaction() as conn:  # and the connection still works
        await conn.execute("INSERT INTO t VALUES (3)")
    assert await _count(db) in (1, 2)


async def test_a_snapshot_sees_committed_data_only_and_takes_no_writer_lock(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO t VALUES (1)")
    inside = asyncio.Event()
    release = asyncio.Event()

    async def slow_writer() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO t VALUES (2)")
            inside.set()
            await release.wait()

    writer = asyncio.create_task(slow_writer())
    await inside.wait()
    async with db.snapshot() as snap:  # the writer holds our lock: the snapshot does not need it
        async with snap.execute("SELECT count(*) FROM t") as cursor:
            assert (await cursor.fetchone())[0] == 1  # not the uncommitted row
        rows = await snap.execute_fetchall("SELECT x FROM t ORDER BY x")
        assert [r["x"] for r in rows] == [1]
    release.set()
    await writer
    async with db.snapshot() as snap:
        async with snap.execute("SELECT count(*) FROM t") as cursor:
            assert (await cursor.fetchone())[0] == 2
        with pytest.raises(sqlite3.OperationalError):
            await snap.executemany("INSERT INTO t VALUES (?)", [(3,)])
