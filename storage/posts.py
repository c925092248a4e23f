"""Volunteer posts (浠水): the branch's posts, members' claims, and claim-change requests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from bot.domain.assessment import Claim, Post
from storage._util import utcnow
from storage.db import Connection


@dataclass(frozen=True)
class PostRequest:
    id: int
    branch_id: int
    member_id: int
    post_ids: tuple[int, ...]
    status: str
    decided_by: int | None


def _post(row) -> Post:
    return Post(id=row["id"], branch_id=row["branch_id"], number=row["number"], name_zh=row["name_zh"],
                name_en=row["name_en"], origin=row["origin"], removed=row["removed_at"] is not None)


def _request(row) -> PostRequest:
    return PostRequest(id=row["id"], branch_id=row["branch_id"], member_id=row["member_id"],
                       post_ids=tuple(json.loads(row["post_ids"])), status=row["status"], decided_by=row["decided_by"])


# --- the branch's posts -----------------------------------------------------------------------------


async def seed(conn: Connection, branch_id: int, names: list[tuple[str, str]]) -> bool:
    """The rulebook's posts, once per branch (the marker row makes it once); True when seeded now."""
    cursor = await conn.execute(
        "INSERT INTO post_boards (branch_id, seeded_at) VALUES (?, ?) ON CONFLICT (branch_id) DO NOTHING", (branch_id, utcnow())
    )
    if cursor.rowcount != 1:
        return False
    for number, (zh, en) in enumerate(names, start=1):
        await conn.execute(
            "INSERT INTO posts (branch_id, number, name_zh, name_en, origin, created_at) VALUES (?, ?, ?, ?, 'seed', ?)"
            " ON CONFLICT (branch_id, number) DO NOTHING",
            (branch_id, number, zh, en, utcnow()),
        )
    return True


async def active(conn: Connection, branch_id: int) -> list[Post]:
    async with conn.execute(
        "SELECT * FROM posts WHERE branch_id = ? AND removed_at IS NULL ORDER BY number", (branch_id,)
    ) as cursor:
        return [_post(r) for r in await cursor.fetchall()]


async def by_ids(conn: Connection, post_ids: list[int]) -> list[Post]:
    if not post_ids:
        return []
    marks = ", ".join("?" for _ in post_ids)
    async with conn.execute(f"SELECT * FROM posts WHERE id IN ({marks}) ORDER BY number", tuple(post_ids)) as cursor:
        return [_post(r) for r in await cursor.fetchall()]


async def add(conn: Connection, branch_id: int, name: str) -> Post:
    """A branch's own post, numbered after every post it ever had (numbers are never reused)."""
    async with conn.execute(
        "INSERT INTO posts (branch_id, number, name_zh, name_en, origin, created_at)"
        " VALUES (?, (SELECT coalesce(max(number), 0) + 1 FROM posts WHERE branch_id = ?), ?, ?, 'branch', ?) RETURNING *",
        (branch_id, branch_id, name, name, utcnow()),
    ) as cursor:
        row = await cursor.fetchone()
    return _post(row)


async def remove(conn: Connection, branch_id: int, number: int) -> Post | None:
    """Retire a post once; None when there is no such active post (or it was already removed)."""
    async with conn.execute(
        "UPDATE posts SET removed_at = ? WHERE branch_id = ? AND number = ? AND removed_at IS NULL RETURNING *",
        (utcnow(), branch_id, number),
    ) as cursor:
        row = await cursor.fetchone()
    return _post(row) if row else None


# --- claims ---------------------------------------------------------------------------------------


async def held(conn: Connection, member_id: int) -> list[Post]:
    async with conn.execute(
        "SELECT p.* FROM post_claims c JOIN posts p ON p.id = c.post_id"
        " WHERE c.member_id = ? AND c.released_on IS NULL ORDER BY p.number",
        (member_id,),
    ) as cursor:
        return [_post(r) for r in await cursor.fetchall()]


async def held_on(conn: Connection, member_id: int, day: date) -> list[Post]:
    """The posts the member held on ``day`` (claimed on or before it, not released by it)."""
    async with conn.execute(
        "SELECT p.* FROM post_claims c JOIN posts p ON p.id = c.post_id"
        " WHERE c.member_id = ? AND c.claimed_on <= ? AND (c.released_on IS NULL OR c.released_on > ?) ORDER BY p.number",
        (member_id, day.isoformat(), day.isoformat()),
    ) as cursor:
        return [_post(r) for r in await cursor.fetchall()]


def _claim(row) -> Claim:
    released = row["released_on"]
    return Claim(claimed_on=date.fromisoformat(row["claimed_on"]),
                 released_on=date.fromisoformat(released) if released else None)


async def claims_of(conn: Connection, member_id: int) -> list[Claim]:
    """Every claim the member ever made, released ones included (the history scoring counts by month)."""
    async with conn.execute(
        "SELECT claimed_on, released_on FROM post_claims WHERE member_id = ? ORDER BY id", (member_id,)
    ) as cursor:
        return [_claim(r) for r in await cursor.fetchall()]


async def claims_of_branch(conn: Connection, branch_id: int) -> dict[int, list[Claim]]:
    """member id → every claim they ever made in the branch."""
    found: dict[int, list[Claim]] = {}
    async with conn.execute(
        "SELECT member_id, claimed_on, released_on FROM post_claims WHERE branch_id = ? ORDER BY id", (branch_id,)
    ) as cursor:
        for row in await cursor.fetchall():
            found.setdefault(int(row["member_id"]), []).append(_claim(row))
    return found


async def holders(conn: Connection, branch_id: int) -> dict[int, list[int]]:
    """post id → the member ids holding it now."""
    result: dict[int, list[int]] = {}
    async with conn.execute(
        "SELECT post_id, member_id FROM post_claims WHERE branch_id = ? AND released_on IS NULL ORDER BY id", (branch_id,)
    ) as cursor:
        for post_id, member_id in await cursor.fetchall():
            result.setdefault(post_id, []).append(member_id)
    return result


async def release_post(conn: Connection, post_id: int, today: date) -> list[int]:
    """Release every claim on a post (it was removed); returns who held it."""
    async with conn.execute(
        "UPDATE post_claims SET released_on = ? WHERE post_id = ? AND released_on IS NULL RETURNING member_id",
        (today.isoformat(), post_id),
    ) as cursor:
        return [int(r[0]) for r in await cursor.fetchall()]


async def set_claims(conn: Connection, branch_id: int, member_id: int, post_ids: list[int], today: date,
                     request_id: int | None = None) -> None:
    """The member holds exactly these posts from today: others released, new ones claimed (each once)."""
    keep = f" AND post_id NOT IN ({', '.join('?' for _ in post_ids)})" if post_ids else ""
    await conn.execute(
        "UPDATE post_claims SET released_on = ? WHERE member_id = ? AND released_on IS NULL" + keep,
        (today.isoformat(), member_id, *post_ids),
    )
    for post_id in post_ids:
        await conn.execute(
            "INSERT INTO post_claims (branch_id, member_id, post_id, claimed_on, request_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (branch_id, member_id, post_id, today.isoformat(), request_id, utcnow()),
        )


# --- requests -------------------------------------------------------------------------------------


async def withdraw_others(conn: Connection, member_id: int, keep_id: int) -> None:
    """A newer request replaces the member's older pending ones."""
    await conn.execute(
        "UPDATE post_requests SET status = 'withdrawn', decided_at = ? WHERE member_id = ? AND status = 'pending' AND id != ?",
        (utcnow(), member_id, keep_id),
    )


async def request_by_id(conn: Connection, request_id: int) -> PostRequest | None:
    async with conn.execute("SELECT * FROM post_requests WHERE id = ?", (request_id,)) as cursor:
        row = await cursor.fetchone()
    return _request(row) if row else None


async def decide(conn: Connection, request_id: int, status: str, decided_by: int) -> bool:
    """pending → approved | rejected, exactly once."""
    cursor = await conn.execute(
        "UPDATE post_requests SET status = ?, decided_by = ?, decided_at = ? WHERE id = ? AND status = 'pending'",
        (status, decided_by, utcnow(), request_id),
    )
    return cursor.rowcount == 1


async def pending(conn: Connection, branch_id: int) -> list[PostRequest]:
    async with conn.execute(
        "SELECT * FROM post_requests WHERE branch_id = ? AND status = 'pending' ORDER BY id", (branch_id,)
    ) as cursor:
        return [_request(r) for r in await cursor.fetchall()]


async def add_message(conn: Connection, request_id: int, chat_id: int, message_id: int) -> None:
    await conn.execute(
        "INSERT INTO post_request_messages (request_id, chat_id, message_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (request_id, chat_id, message_id),
    )


async def messages(conn: Connection, request_id: int) -> list[tuple[int, int]]:
    async with conn.execute(
        "SELECT chat_id, message_id FROM post_request_messages WHERE request_id = ? ORDER BY chat_id, message_id", (request_id,)
    ) as cursor:
        return [(int(r[0]), int(r[1])) for r in await cursor.fetchall()]
