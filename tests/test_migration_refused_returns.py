"""Migration 0028: a return refused before 306b04a left the row 'rejected' (graded nowhere); it is 'left'
again, so the months before the member left count. A rejected row that never left is untouched."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from storage.db import Database, migrations


async def test_a_refused_return_is_left_again_and_nothing_else_moves(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    before = [(version, name, sql) for version, name, sql in migrations() if version < 28]
    with sqlite3.connect(path) as raw:  # a database migrated up to 0027, as a deployment had it
        raw.execute("PRAGMA foreign_keys = ON")
        raw.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        for version, name, sql in before:
            raw.executescript(sql)
            raw.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, name))
        raw.execute(f"PRAGMA user_version = {before[-1][0]}")
        raw.execute("INSERT INTO branches (id, chat_id, title, preset, custom_items, timezone, language, reachable, created_by, created_at)"
                    " VALUES (1, -1, 't', 'xishui', '[]', 'Asia/Shanghai', 'zh', 1, 1, '2026-01-01T00:00:00+00:00')")
        for member_id, status, left_on in ((1, "rejected", "2026-03-20"), (2, "rejected", None), (3, "left", "2026-03-20"),
                                           (4, "approved", None)):
            raw.execute("INSERT INTO members (id, branch_id, user_id, name, language, status, state, joined_on, left_on, created_at)"
                        " VALUES (?, 1, ?, ?, 'zh', ?, 'active', '2026-01-05', ?, '2026-01-05T00:00:00+00:00')",
                        (member_id, 100 + member_id, f"m{member_id}", status, left_on))
    db = await Database(path).open()
    try:
        async with db.read() as conn:
            async with conn.execute("SELECT id, status FROM members ORDER BY id") as cursor:
                assert [tuple(r) for r in await cursor.fetchall()] == [(1, "left"), (2, "rejected"), (3, "left"), (4, "approved")]
    finally:
        await db.close()
