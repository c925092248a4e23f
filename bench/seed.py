"""Bulk test data for the benchmark, straight into SQLite.

This is the one place outside storage/ with SQL, on purpose: it seeds *test data* in bulk
(executemany over generators, one transaction per table and batch) so that a county of about a
million ledger rows is built in seconds. Row by row through the services it would take hours. The
app's own code never runs these statements; the schema comes from the app's migrations
(storage.db.Database.open), so the data is exactly what the app would read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime

CREATED = datetime(2026, 1, 1, tzinfo=UTC).isoformat()
JOINED = "2026-01-01"
YEAR = 2026

# (item, event, value, source) — 浠水 items that exist in the preset; about 2.5 rows per member-month.
_MONTH_ROWS = (
    ("post_deed", None, "10", "declaration"),
    ("study", "absent", "-5", "recorder"),
    ("org_life", "late", "-2", "recorder"),
)


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")  # test data: durability of the seeding does not matter
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def add_branches(conn: sqlite3.Connection, count: int, *, chat_base: int = -1002000000000, preset: str = "xishui",
                 creator: int = 1) -> list[tuple[int, int]]:
    """``count`` branches; returns (branch id, chat id)."""
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO branches (chat_id, title, preset, timezone, language, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ((chat_base - i, f"第{i + 1}党支部", preset, "Asia/Shanghai", "zh", creator, CREATED) for i in range(count)),
    )
    conn.execute("COMMIT")
    return [(int(r[0]), int(r[1])) for r in conn.execute(
        "SELECT id, chat_id FROM branches WHERE chat_id <= ? AND chat_id > ? ORDER BY id", (chat_base, chat_base - count))]


def add_members(conn: sqlite3.Connection, branch_ids: list[int], per_branch: int, *, user_base: int) -> dict[int, list[tuple[int, int]]]:
    """``per_branch`` approved members in each branch (user ids from ``user_base`` on, one per member);
    returns branch id -> [(member id, user id)]."""
    def rows() -> Iterator[tuple]:
        user = user_base
        for branch_id in branch_ids:
            for i in range(per_branch):
                user += 1
                yield (branch_id, user, f"m{user}", f"党员{user}", "approved", JOINED, "zh", CREATED)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO members (branch_id, user_id, username, name, status, joined_on, language, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows(),
    )
    conn.execute("COMMIT")
    found: dict[int, list[tuple[int, int]]] = {}
    marks = ",".join("?" * len(branch_ids))
    for member_id, branch_id, user_id in conn.execute(
            f"SELECT id, branch_id, user_id FROM members WHERE branch_id IN ({marks}) AND user_id > ? ORDER BY id",
            (*branch_ids, user_base)):
        found.setdefault(branch_id, []).append((member_id, user_id))
    return found


def add_history(conn: sqlite3.Connection, members: dict[int, list[tuple[int, int]]], months: range,
                *, batch: int = 250_000) -> int:
    """A year of ledger rows: for each member and month 2 or 3 rows (about 2.5 per member-month).
    Committed every ``batch`` rows (a few transactions, not one per row). Returns the number of rows."""
    def rows() -> Iterator[tuple]:
        for branch_id, people in members.items():
            for member_id, _ in people:
                for month in months:
                    count = 2 + (member_id + month) % 2
                    for k in range(count):
                        item, event, value, source = _MONTH_ROWS[k]
                        day = 3 + 7 * k
                        yield (branch_id, member_id, item, event, value, f"{YEAR}-{month:02d}-{day:02d}", source,
                               f"seed:{month}:{k}", None, "seed", CREATED)
    total = 0
    source = rows()
    while True:
        chunk = [row for _, row in zip(range(batch), source)]
        if not chunk:
            return total
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO ledger (branch_id, member_id, item_code, event_code, value, occurred_on, source, reference,"
            " actor_id, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", chunk)
        conn.execute("COMMIT")
        total += len(chunk)
