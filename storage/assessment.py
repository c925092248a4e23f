"""Assessment revisions: which value is current for (member, month, item), and which were defaults.

The current revision is the latest; it is ``withdrawn`` when its ledger row has been reversed by anyone
(an objection upheld, a correction) — then the item has no value until assessed again.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from bot.domain.assessment import Assessed
from bot.domain.records import LedgerRow
from storage import ledger as ledger_repo
from storage._util import row_dict, utcnow
from storage.db import Connection

_CURRENT = (
    "SELECT a.member_id, a.item_code, a.revision, a.value, a.is_default, a.ledger_id FROM assessments a"
    " WHERE a.branch_id = ? AND a.month = ?{extra} AND a.revision = ("
    "   SELECT max(b.revision) FROM assessments b"
    "   WHERE b.member_id = a.member_id AND b.month = a.month AND b.item_code = a.item_code)"
)


async def _latest(conn: Connection, sql: str, args: tuple) -> list[Assessed]:
    async with conn.execute(sql, args) as cursor:
        found = await cursor.fetchall()
    withdrawn = await ledger_repo.reversed_among(conn, [int(r[5]) for r in found])
    return [Assessed(member_id=r[0], item_code=r[1], revision=int(r[2]), value=Decimal(r[3]), is_default=bool(r[4]),
                     ledger_id=int(r[5]), withdrawn=int(r[5]) in withdrawn) for r in found]


async def current(conn: Connection, branch_id: int, month: str) -> dict[tuple[int, str], Assessed]:
    """The latest revision of every assessed (member, item) in the month."""
    return {(a.member_id, a.item_code): a for a in await _latest(conn, _CURRENT.format(extra=""), (branch_id, month))}


async def current_of_member(conn: Connection, branch_id: int, member_id: int, month: str) -> dict[str, Assessed]:
    found = await _latest(conn, _CURRENT.format(extra=" AND a.member_id = ?"), (branch_id, month, member_id))
    return {a.item_code: a for a in found}


async def add(conn: Connection, *, branch_id: int, member_id: int, month: str, item_code: str, revision: int,
              value: Decimal, ledger_id: int, actor_id: int | None, is_default: bool) -> bool:
    """Record a revision once; False when that revision already exists (a second tap)."""
    cursor = await conn.execute(
        "INSERT INTO assessments (branch_id, member_id, month, item_code, revision, value, is_default, ledger_id,"
        " actor_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (member_id, month, item_code, revision) DO NOTHING",
        (branch_id, member_id, month, item_code, revision, str(value), int(is_default), ledger_id, actor_id, utcnow()),
    )
    return cursor.rowcount == 1


async def defaulted(conn: Connection, branch_id: int, month: str) -> list[int]:
    """Members whose current value of some item is the default (nobody assessed them by the notice)."""
    found = await current(conn, branch_id, month)
    return sorted({a.member_id for a in found.values() if a.is_default and not a.withdrawn})


async def item_rows(conn: Connection, branch_id: int, first: date, last: date, item_codes: list[str],
                    member_id: int | None = None) -> list[LedgerRow]:
    """The branch's ledger rows (reversals included) for these items between two days."""
    if not item_codes:
        return []
    marks = ", ".join("?" for _ in item_codes)
    sql = (f"SELECT * FROM ledger WHERE branch_id = ? AND occurred_on >= ? AND occurred_on <= ? AND item_code IN ({marks})"
           + (" AND member_id = ?" if member_id is not None else "") + " ORDER BY id")
    args = (branch_id, first.isoformat(), last.isoformat(), *item_codes, *(() if member_id is None else (member_id,)))
    async with conn.execute(sql, args) as cursor:
        return [LedgerRow(**row_dict(r)) for r in await cursor.fetchall()]
