"""``storage.transfers.recent_of_rows`` (the latest rows of a chain's rows: /history of a member who moved)
reads the ids from the member index as ``storage.ledger.recent_of_member`` does (``ORDER BY id + 0``, not
the primary key walked backwards on PostgreSQL) and gives what the plain reading gives: every row of those
members, newest first, the first ``limit``. Both backends."""

from __future__ import annotations

from datetime import date

import pytest

from storage import ledger as ledger_repo
from storage import transfers as transfer_repo
from tests.conftest import TestHarness
from tests.test_transfers import branches, move, put, utc


async def _plain(h: TestHarness, member_ids: list[int], limit: int) -> list[int]:
    async with h.db.read() as conn:
        found = [r.id for m in member_ids for year in (2025, 2026) for r in await ledger_repo.of_member(conn, m, year)]
    return sorted(found, reverse=True)[:limit]


async def test_the_latest_rows_of_a_chain_are_the_plain_readings(h: TestHarness, clock) -> None:
    b1, b2 = await branches(h, clock)
    zhang = b1.member_ids["zhang"]
    for day in range(1, 8):  # his rows interleaved with everyone else's, in both branches
        await put(h, b1, zhang, str(day), date(2026, 2, day))
        await put(h, b1, b1.member_ids["lisi"], str(day), date(2026, 2, day))
        await put(h, b2, b2.member_ids["lisi"], str(day), date(2026, 2, day))
    zhang_b2 = await move(h, clock, utc(2026, 5, 10, 2, 0), b1, b2, b1.zhang)
    for day in range(11, 15):
        await put(h, b2, zhang_b2, str(day), date(2026, 5, day))
        await put(h, b2, b2.member_ids["lisi"], str(day), date(2026, 5, day))
    await put(h, b1, zhang, "1", date(2025, 12, 30))  # a row of an earlier year, written last
    chain = [zhang, zhang_b2]
    for limit in (0, 1, 3, 4, 5, 12, 13, 100):
        async with h.db.read() as conn:
            latest = await transfer_repo.recent_of_rows(conn, chain, limit)
            one = await transfer_repo.recent_of_rows(conn, [zhang], limit)
            assert [r.id for r in one] == [r.id for r in await ledger_repo.recent_of_member(conn, zhang, limit)]
        assert [r.id for r in latest] == await _plain(h, chain, limit), limit
        assert {r.member_id for r in latest} <= set(chain)
    async with h.db.read() as conn:
        assert await transfer_repo.recent_of_rows(conn, [], 5) == []
    # /history of the member who moved: his 12 rows, newest first, the other branch's marked
    history = [c for c in await h.say(b1.zhang, h.private(b1.zhang), "/history") if c.method == "sendMessage"]
    text = str(history[-1].params["text"])
    assert text.count("考评") == 12 and text.count("〔兰溪镇红星村党支部〕") == 8


@pytest.mark.parametrize("statement", ["new", "old"])
async def test_postgres_does_not_walk_the_primary_key_backwards(h: TestHarness, clock, statement: str) -> None:
    if h.db.backend != "postgresql":
        pytest.skip("SQLite's plan is the same either way (storage.ledger's note)")
    b1, b2 = await branches(h, clock)
    for day in range(1, 30):
        await put(h, b1, b1.member_ids["lisi"], str(day), date(2026, 2, 1 + day % 28))
    sql = transfer_repo._recent_of_rows(2) if statement == "new" else OLD
    async with h.db.read() as conn:
        # a sort made to look dear, as a large ledger makes it: the old statement then walks the primary key
        # backwards (every row written since the member's latest), the new one cannot
        await conn.execute("SET enable_sort = off")
        try:
            async with conn.execute("EXPLAIN " + sql, (b1.member_ids["zhang"], b2.member_ids["zhang"], 5)) as cursor:
                plan = "\n".join(str(r[0]) for r in await cursor.fetchall())
        finally:
            await conn.execute("RESET enable_sort")
    assert ("Index Scan Backward using ledger_pkey" in _under_limit(plan)) == (statement == "old"), plan


def _under_limit(plan: str) -> str:
    """The plan's lines under its LIMIT node (what finds the member's latest ids; the rows read for those
    ids afterwards are not the walk this avoids)."""
    lines = plan.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().removeprefix("->").strip().startswith("Limit"))
    depth = len(lines[start]) - len(lines[start].lstrip())
    below = []
    for line in lines[start + 1:]:
        if line.strip() and len(line) - len(line.lstrip()) <= depth:
            break
        below.append(line)
    return "\n".join(below)


OLD = "SELECT * FROM ledger WHERE member_id IN (?, ?) ORDER BY id DESC LIMIT ?"  # before: the plan this avoids
