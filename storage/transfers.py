"""Member transfers (组织关系转接) between branches, and the chain of a member's rows they leave (read
from the accepted transfers: migration 0019)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from bot.domain.assessment import Claim
from bot.domain.records import LedgerRow
from bot.domain.scoring import EntryRow
from storage._util import row_dict, utcnow
from storage.db import Connection
from storage.members import PROFILE_FIELDS


async def create(conn: Connection, *, code: str, member_id: int, from_branch: int, to_branch: int | None,
                 requested_by: int, expires_at: datetime) -> dict | None:
    """The pending transfer; None when the member already has one open (or the code clashed)."""
    async with conn.execute(
        "INSERT INTO member_transfers (code, member_id, from_branch, to_branch, requested_by, requested_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING *",
        (code, member_id, from_branch, to_branch, requested_by, utcnow(), expires_at.isoformat(timespec="seconds")),
    ) as cursor:
        row = await cursor.fetchone()
    return row_dict(row) if row else None


async def by_code(conn: Connection, code: str) -> dict | None:
    async with conn.execute("SELECT * FROM member_transfers WHERE code = ?", (code,)) as cursor:
        row = await cursor.fetchone()
    return row_dict(row) if row else None


async def open_of_member(conn: Connection, member_id: int) -> dict | None:
    async with conn.execute("SELECT * FROM member_transfers WHERE member_id = ? AND status = 'pending'", (member_id,)) as cursor:
        row = await cursor.fetchone()
    return row_dict(row) if row else None


async def accept(conn: Connection, transfer_id: int, *, to_branch: int, accepted_by: int, moved_on: str, now: datetime,
                 left_joined_on: str | None) -> bool:
    """pending → accepted, once, while not expired and addressed to this branch (or to any).
    ``left_joined_on``: the leaving row's joined_on, the first day of the stint that ends (migration 0019)."""
    cursor = await conn.execute(
        "UPDATE member_transfers SET status = 'accepted', to_branch = ?, accepted_by = ?, decided_at = ?, moved_on = ?,"
        " left_joined_on = ?"
        " WHERE id = ? AND status = 'pending' AND expires_at > ? AND (to_branch IS NULL OR to_branch = ?)",
        (to_branch, accepted_by, utcnow(), moved_on, left_joined_on, transfer_id, now.isoformat(timespec="seconds"), to_branch),
    )
    return cursor.rowcount == 1


async def set_new_member(conn: Connection, transfer_id: int, new_member_id: int,
                         reopened: tuple[str | None, str | None] | None = None) -> None:
    """The row that continues the member; ``reopened``: a reactivated row's (joined_on, left_on) before."""
    joined, left = reopened or (None, None)
    await conn.execute(
        "UPDATE member_transfers SET new_member_id = ?, reopened = ?, reopened_joined_on = ?, reopened_left_on = ?"
        " WHERE id = ?", (new_member_id, 1 if reopened else 0, joined, left, transfer_id))


async def reactivate(conn: Connection, member_id: int, *, joined_on: str, name: str, username: str | None,
                     language: str | None, state: str, state_reason: str | None, profile: dict[str, str | None]) -> bool:
    """A member returning to a branch they were in (A→B→A): their old row there (left, or a refused
    /join, or a /join of theirs still waiting) becomes approved again from ``joined_on``, with the person's
    current name, state and profile. Its ledger stays as it was; roles do not come back (roles do not
    travel). Once: only from left/rejected/pending."""
    fields = ", ".join(f"{k} = ?" for k in PROFILE_FIELDS)
    cursor = await conn.execute(
        "UPDATE members SET status = 'approved', joined_on = ?, left_on = NULL, name = ?, username = ?, language = ?,"
        f" state = ?, state_reason = ?, {fields} WHERE id = ? AND status IN ('left', 'rejected', 'pending')",
        (joined_on, name, username, language, state, state_reason, *(profile.get(k) for k in PROFILE_FIELDS), member_id),
    )
    if cursor.rowcount != 1:
        return False
    await conn.execute("DELETE FROM roles WHERE member_id = ?", (member_id,))
    return True


async def cancel(conn: Connection, transfer_id: int) -> bool:
    cursor = await conn.execute(
        "UPDATE member_transfers SET status = 'cancelled', decided_at = ? WHERE id = ? AND status = 'pending'",
        (utcnow(), transfer_id),
    )
    return cursor.rowcount == 1


async def link(conn: Connection, new_member_id: int, old_member_id: int) -> bool:
    cursor = await conn.execute(
        "UPDATE members SET transferred_from = ? WHERE id = ? AND transferred_from IS NULL", (old_member_id, new_member_id)
    )
    return cursor.rowcount == 1


_MOVES = (
    "SELECT t.id, t.member_id, t.from_branch, t.left_joined_on, t.moved_on, t.new_member_id, t.to_branch, t.reopened,"
    " t.reopened_joined_on, t.reopened_left_on, n.joined_on AS new_joined_on, n.left_on AS new_left_on,"
    " fb.preset AS from_preset, fb.title AS from_title, tb.preset AS to_preset, tb.title AS to_title"
    " FROM member_transfers t JOIN members m ON m.id = t.member_id JOIN members n ON n.id = t.new_member_id"
    " JOIN branches fb ON fb.id = t.from_branch JOIN branches tb ON tb.id = t.to_branch"
    " WHERE t.status = 'accepted' AND "
)


async def moves_of_person(conn: Connection, member_id: int) -> list[dict]:
    """Every accepted transfer of the person behind a member row (the rows of a chain share the
    person's Telegram id), in the order they happened, with both branches' preset and title. One
    statement; [] for a member who never moved (bot.domain.town.chains_of makes the chains)."""
    async with conn.execute(
        _MOVES + "m.user_id = (SELECT user_id FROM members WHERE id = ?) ORDER BY t.id", (member_id,)
    ) as cursor:
        return [row_dict(r) for r in await cursor.fetchall()]


# The people who moved into or out of a branch: the transfers first, then their rows by id. Joined the
# other way round (members JOIN member_transfers), SQLite walked every member of the database through
# members_by_user for each branch graded (no index on the transfers' branches): 2–3 ms a branch in a county.
_MOVED_NEAR = ("SELECT user_id FROM members WHERE id IN (SELECT member_id FROM member_transfers"
               " WHERE status = 'accepted' AND (from_branch = ? OR to_branch = ?))")


async def moves_near_branch(conn: Connection, branch_id: int) -> list[dict]:
    """``moves_of_person`` for everyone who moved into or out of the branch, in one statement (grading)."""
    async with conn.execute(
        _MOVES + f"m.user_id IN ({_MOVED_NEAR}) ORDER BY t.id",
        (branch_id, branch_id),
    ) as cursor:
        return [row_dict(r) for r in await cursor.fetchall()]


_STAYS = (
    "SELECT s.member_id, s.branch_id, s.joined_on, s.left_on, m.joined_on AS now_joined_on, m.left_on AS now_left_on,"
    " m.status AS now_status, b.preset, b.title"
    " FROM member_stays s JOIN members m ON m.id = s.member_id JOIN branches b ON b.id = s.branch_id WHERE "
)


async def stays_of_person(conn: Connection, member_id: int) -> list[dict]:
    """The stays kept by returns through /join (migration 0026) of every row of the person behind a member
    row, oldest first, each with its row's joined_on, left_on and status as they are now and its branch's
    preset and title. One statement; [] for a person who never came back to a branch that way."""
    async with conn.execute(
        _STAYS + "m.user_id = (SELECT user_id FROM members WHERE id = ?) ORDER BY s.id", (member_id,)
    ) as cursor:
        return [row_dict(r) for r in await cursor.fetchall()]


async def stays_near_branch(conn: Connection, branch_id: int) -> list[dict]:
    """``stays_of_person`` for everyone with a kept stay in the branch or who moved into or out of it, in one
    statement (grading: the people ``moves_near_branch`` reads, and those who came back through /join)."""
    async with conn.execute(
        _STAYS + "m.user_id IN (SELECT m2.user_id FROM member_stays s2 JOIN members m2 ON m2.id = s2.member_id"
        f" WHERE s2.branch_id = ? UNION {_MOVED_NEAR}) ORDER BY s.id",
        (branch_id, branch_id, branch_id),
    ) as cursor:
        return [row_dict(r) for r in await cursor.fetchall()]


def _marks(ids: list[int]) -> str:
    return ", ".join("?" for _ in ids)


async def entries_of_rows(conn: Connection, member_ids: list[int], year: int) -> dict[int, list[EntryRow]]:
    """member id → the year's ledger rows of other branches' rows of a chain, as scoring reads them
    (``storage.ledger.entries_of_branch``'s shape), in one statement."""
    found: dict[int, list[EntryRow]] = {}
    if not member_ids:
        return found
    async with conn.execute(
        "SELECT id, member_id, item_code, value, occurred_on, event_code, reverses_id FROM ledger"
        f" WHERE member_id IN ({_marks(member_ids)}) AND occurred_on >= ? AND occurred_on < ? ORDER BY id",
        (*member_ids, f"{year}-01-01", f"{year + 1}-01-01"),
    ) as cursor:
        for row_id, member_id, item_code, value, occurred_on, event_code, reverses_id in await cursor.fetchall():
            found.setdefault(member_id, []).append(
                EntryRow(row_id, item_code, Decimal(value), date.fromisoformat(occurred_on), event_code, reverses_id))
    return found


async def claims_of_rows(conn: Connection, member_ids: list[int]) -> dict[int, list[Claim]]:
    """member id → every post claim of those rows (浠水: the posts of the months in another branch)."""
    found: dict[int, list[Claim]] = {}
    if not member_ids:
        return found
    async with conn.execute(
        f"SELECT member_id, claimed_on, released_on FROM post_claims WHERE member_id IN ({_marks(member_ids)}) ORDER BY id",
        tuple(member_ids),
    ) as cursor:
        for member_id, claimed_on, released_on in await cursor.fetchall():
            found.setdefault(member_id, []).append(Claim(claimed_on=date.fromisoformat(claimed_on),
                                                         released_on=date.fromisoformat(released_on) if released_on else None))
    return found


def _recent_of_rows(count: int) -> str:
    return (f"SELECT * FROM ledger WHERE id IN (SELECT id FROM ledger WHERE member_id IN ({_marks([0] * count)})"
            " ORDER BY id + 0 DESC LIMIT ?) ORDER BY id DESC")


async def recent_of_rows(conn: Connection, member_ids: list[int], limit: int) -> list[LedgerRow]:
    """The latest ledger rows of all of a chain's rows, newest first (/history of a member who moved). As
    ``storage.ledger.recent_of_member`` reads one member's: the ids from the member index (``id + 0``: never
    the primary key walked backwards until enough of these rows turn up, PostgreSQL's choice for ``ORDER BY
    id DESC LIMIT``), then those rows only."""
    if not member_ids:
        return []
    async with conn.execute(_recent_of_rows(len(member_ids)), (*member_ids, limit)) as cursor:
        return [LedgerRow(**row_dict(r)) for r in await cursor.fetchall()]


async def moved_from(conn: Connection, branch_id: int, user_id: int) -> str | None:
    """The title of the branch a person transferred out of ``branch_id`` is in now (the receiving branch of
    their latest accepted transfer, where they went last), when their row here has left by a transfer;
    None otherwise (never here, still here, removed without a transfer)."""
    async with conn.execute(
        "SELECT tb.title FROM member_transfers t JOIN members m ON m.id = t.member_id JOIN branches tb ON tb.id = t.to_branch"
        " WHERE t.status = 'accepted' AND m.user_id = ? AND EXISTS (SELECT 1 FROM member_transfers o"
        " JOIN members h ON h.id = o.member_id WHERE o.status = 'accepted' AND o.from_branch = ? AND h.user_id = ?"
        " AND h.status = 'left') ORDER BY t.id DESC LIMIT 1",
        (user_id, branch_id, user_id),
    ) as cursor:
        row = await cursor.fetchone()
    return str(row[0]) if row else None


async def waiting_for(conn: Connection, branch_id: int, user_id: int, now: datetime) -> str | None:
    """The title of the branch a person is being transferred out of, when that transfer is still waiting
    and may be accepted by ``branch_id`` (addressed to it, or to any branch); None otherwise."""
    async with conn.execute(
        "SELECT fb.title FROM member_transfers t JOIN members m ON m.id = t.member_id JOIN branches fb ON fb.id = t.from_branch"
        " WHERE t.status = 'pending' AND m.user_id = ? AND t.from_branch != ? AND (t.to_branch IS NULL OR t.to_branch = ?)"
        " AND t.expires_at > ? ORDER BY t.id DESC LIMIT 1",
        (user_id, branch_id, branch_id, now.isoformat(timespec="seconds")),
    ) as cursor:
        row = await cursor.fetchone()
    return str(row[0]) if row else None


async def drop_pending_request(conn: Connection, member_id: int) -> bool:
    """A pending /join of the person being transferred in: the transfer's new row replaces it. Only a request
    of someone never approved here (no joined_on): a row that was here before keeps its history (False)."""
    cursor = await conn.execute("DELETE FROM members WHERE id = ? AND status = 'pending' AND joined_on IS NULL", (member_id,))
    return cursor.rowcount == 1
