"""A member's request for a set of posts, written once: per submitting message or press (its client key),
and not again while the same set is already waiting for a decision (storage.posts has the rest)."""

from __future__ import annotations

import json

from storage._util import utcnow
from storage.db import Connection
from storage.posts import PostRequest, request_by_id


async def create_unless_pending(conn: Connection, *, branch_id: int, member_id: int, post_ids: list[int],
                                client_key: str) -> tuple[PostRequest, bool]:
    """Insert the request unless this client key was used already (a replay) or the member has a pending
    request for exactly these posts, in one statement. Returns (request, created_now): when not created,
    the replayed request, else the pending one with the same posts."""
    wanted = json.dumps(sorted(post_ids))
    async with conn.execute(
        "INSERT INTO post_requests (branch_id, member_id, post_ids, client_key, created_at) SELECT ?, ?, ?, ?, ?"
        " WHERE NOT EXISTS (SELECT 1 FROM post_requests WHERE member_id = ? AND status = 'pending' AND post_ids = ?)"
        " ON CONFLICT (member_id, client_key) DO NOTHING RETURNING id",
        (branch_id, member_id, wanted, client_key, utcnow(), member_id, wanted),
    ) as cursor:
        row = await cursor.fetchone()
    if row:
        created = await request_by_id(conn, int(row["id"]))
        assert created is not None
        return created, True
    for sql, args in (("SELECT id FROM post_requests WHERE member_id = ? AND client_key = ?", (member_id, client_key)),
                      ("SELECT id FROM post_requests WHERE member_id = ? AND status = 'pending' AND post_ids = ?"
                       " ORDER BY id LIMIT 1", (member_id, wanted))):
        async with conn.execute(sql, args) as cursor:
            found = await cursor.fetchone()
        if found:
            existing = await request_by_id(conn, int(found["id"]))
            assert existing is not None
            return existing, False
    raise AssertionError("a request neither inserted nor found")  # this transaction saw one or the other
