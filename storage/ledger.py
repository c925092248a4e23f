"""The append-only ledger: every point change is a row; corrections are reversing rows."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from operator import attrgetter, itemgetter
from typing import NamedTuple

from pydantic import TypeAdapter

from storage._util import row_dict, utcnow
from storage.errors import INTEGRITY_ERRORS
from storage.db import Connection
from bot.domain.assessment import Claim
from bot.domain.records import LedgerRow, NewLedgerRow, Source
from bot.domain.scoring import EntryRow
from bot.errors import InvalidInput

# The message of the trigger in migration 0013: the row is dated in a year its branch has finalised.
YEAR_LOCKED = "ledger year locked"

# A list of rows validated in one call into pydantic-core: the same models as ``LedgerRow(**row)`` each,
# about three times faster (/history reads 30).
_ROWS = TypeAdapter(list[LedgerRow])
_ID = itemgetter(0)
_ID_OF = attrgetter("id")


def _models(rows: list) -> list[LedgerRow]:
    """Rows of ``SELECT * FROM ledger`` as models, validated as one list. Each row's dict is its column
    names (read once, from the first row) zipped with its values: ``row_dict``'s dict, at half the cost."""
    if not rows:
        return []
    names = tuple(rows[0].keys())
    return _ROWS.validate_python([dict(zip(names, row)) for row in rows])


async def append(conn: Connection, row: NewLedgerRow) -> LedgerRow | None:
    """Append once per (branch, source, reference, member); None when that key is already there.

    A row dated in a year the branch has finalised (locked_years) is refused by the database for every
    writer; that refusal becomes ``InvalidInput("year.locked")``, a message the user can act on.
    """
    try:
        async with conn.execute(
            "INSERT INTO ledger (branch_id, member_id, item_code, event_code, value, occurred_on, source, reference, actor_id,"
            " reason, reverses_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING RETURNING *",
            (row.branch_id, row.member_id, row.item_code, row.event_code, str(row.value), row.occurred_on.isoformat(),
             row.source.value, row.reference, row.actor_id, row.reason, row.reverses_id, utcnow()),
        ) as cursor:
            created = await cursor.fetchone()
    except INTEGRITY_ERRORS as exc:
        if YEAR_LOCKED in str(exc):
            raise InvalidInput("year.locked", year=row.occurred_on.year) from None
        raise
    return LedgerRow(**row_dict(created)) if created else None


async def of_member(conn: Connection, member_id: int, year: int | None = None) -> list[LedgerRow]:
    if year is None:
        sql, args = "SELECT * FROM ledger WHERE member_id = ? ORDER BY id", (member_id,)
    else:
        sql, args = (
            "SELECT * FROM ledger WHERE member_id = ? AND occurred_on >= ? AND occurred_on < ? ORDER BY id",
            (member_id, f"{year}-01-01", f"{year + 1}-01-01"),
        )
    async with conn.execute(sql, args) as cursor:
        return _models(await cursor.fetchall())


class _EntryParser:
    """Ledger columns to an ``EntryRow``, each distinct value and day text parsed once (they repeat a lot:
    a branch's year is thousands of rows over a few dozen values and days)."""

    __slots__ = ("values", "days", "sources")

    def __init__(self) -> None:
        self.values: dict[str, Decimal] = {}
        self.days: dict[str, date] = {}
        self.sources: dict[str, Source] = {}

    def entry(self, row_id: int, item_code: str, value: str, occurred_on: str, event_code: str | None,
              reverses_id: int | None) -> EntryRow:
        amount = self.values.get(value)
        if amount is None:
            amount = self.values[value] = Decimal(value)
        day = self.days.get(occurred_on)
        if day is None:
            day = self.days[occurred_on] = date.fromisoformat(occurred_on)
        return EntryRow(row_id, item_code, amount, day, event_code, reverses_id)

    def shown(self, row_id: int, branch_id: int, item_code: str, event_code: str | None, value: str, occurred_on: str,
              source: str, reason: str | None) -> Shown:
        """The columns of a history line as ``Shown``, parsed as the model parses them."""
        amount = self.values.get(value)
        if amount is None:
            amount = self.values[value] = Decimal(value)
        day = self.days.get(occurred_on)
        if day is None:
            day = self.days[occurred_on] = date.fromisoformat(occurred_on)
        kind = self.sources.get(source)
        if kind is None:
            kind = self.sources[source] = Source(source)
        return Shown(row_id, branch_id, item_code, event_code, amount, day, kind, reason)


async def entries_of_branch(conn: Connection, branch_id: int, year: int) -> dict[int, list[EntryRow]]:
    """member id → the year's ledger rows of every member of the branch, in id order, as scoring reads
    them: the same rows as ``of_member(conn, member_id, year)`` for each member, in one statement, as
    plain ``EntryRow`` tuples (grading a branch reads thousands of rows: a validated model per row cost
    more than the scoring). Values and days repeat a lot, so each distinct text is parsed once."""
    async with conn.execute(
        "SELECT id, member_id, item_code, value, occurred_on, event_code, reverses_id FROM ledger"
        " WHERE member_id IN (SELECT id FROM members WHERE branch_id = ?) AND occurred_on >= ? AND occurred_on < ?"
        " ORDER BY id",
        (branch_id, f"{year}-01-01", f"{year + 1}-01-01"),
    ) as cursor:
        rows = await cursor.fetchall()
    entry_of = _EntryParser().entry
    found: dict[int, list[EntryRow]] = {}
    for row_id, member_id, item_code, value, occurred_on, event_code, reverses_id in rows:
        entry = entry_of(row_id, item_code, value, occurred_on, event_code, reverses_id)
        mine = found.get(member_id)
        if mine is None:
            found[member_id] = [entry]
        else:
            mine.append(entry)
    return found


async def entries_of_member(conn: Connection, member_id: int, year: int) -> list[EntryRow]:
    """``of_member(conn, member_id, year)`` as scoring reads it: plain ``EntryRow``s, no model per row.
    Read in the index's (day) order and put in id order here: SQLite's sorter cost more than Python's."""
    async with conn.execute(
        "SELECT id, item_code, value, occurred_on, event_code, reverses_id FROM ledger"
        " WHERE member_id = ? AND occurred_on >= ? AND occurred_on < ?",
        (member_id, f"{year}-01-01", f"{year + 1}-01-01"),
    ) as cursor:
        rows = sorted(await cursor.fetchall(), key=_ID)
    entry_of = _EntryParser().entry
    return [entry_of(*row) for row in rows]


# A member's latest rows: their ids from the index alone (ledger_by_member holds the id), then those
# rows only — not every row the member ever had, read whole and sorted to keep a few. ``id + 0``: the
# member's ids sorted, never the primary key walked backwards until enough of the member's rows turn up
# (PostgreSQL's choice in a small ledger, 0.2 ms for 1,800 rows; rows read ∝ the rows written by everyone
# since the member's latest); SQLite's plan is the same either way.
_LATEST_IDS = "SELECT id FROM ledger WHERE member_id = ? ORDER BY id + 0 DESC LIMIT ?"
_LATEST = f"WHERE id IN ({_LATEST_IDS}) ORDER BY id DESC"


async def recent_of_member(conn: Connection, member_id: int, limit: int) -> list[LedgerRow]:
    async with conn.execute("SELECT * FROM ledger " + _LATEST, (member_id, limit)) as cursor:
        return _models(await cursor.fetchall())


class Shown(NamedTuple):
    """A ledger row as a history line shows it (``handlers.queries.LedgerLines`` reads these fields of a
    ``LedgerRow`` too): what /history reads of the 30 rows it shows, without a validated model each."""

    id: int
    branch_id: int
    item_code: str
    event_code: str | None
    value: Decimal
    occurred_on: date
    source: Source
    reason: str | None


async def shown_of_member(conn: Connection, member_id: int, limit: int) -> list[Shown]:
    """``recent_of_member``'s rows (the same, in the same order) as ``Shown``: the values are parsed as
    the model parses them (``Decimal``, ``date.fromisoformat``, ``Source``), each distinct text once."""
    async with conn.execute(
        "SELECT id, branch_id, item_code, event_code, value, occurred_on, source, reason FROM ledger " + _LATEST,
        (member_id, limit),
    ) as cursor:
        rows = await cursor.fetchall()
    shown = _EntryParser().shown
    return [shown(*row) for row in rows]


class StandingRows(NamedTuple):
    """What a member's standing reads of the database (``standing_rows``)."""

    entries: list[EntryRow]  # the year's rows, in id order: ``entries_of_member``
    latest: list[Shown]  # the latest rows of any year, newest first: ``shown_of_member``
    claims: list[Claim] | None  # every post claim, in id order (``storage.posts.claims_of``); None when not asked


# Three reads in one statement, each part tagged by its first column: 0 the year's rows (as
# ``entries_of_member`` reads them), 1 the latest rows (as ``shown_of_member``), 2 the post claims (as
# ``storage.posts.claims_of``: claimed_on in the day's column, released_on in the reason's). Columns a part
# does not have are NULL.
_STANDING = (
    "SELECT 0, id, NULL, item_code, event_code, value, occurred_on, NULL, NULL, reverses_id FROM ledger"
    " WHERE member_id = ?1 AND occurred_on >= ?2 AND occurred_on < ?3"
    " UNION ALL SELECT 1, id, branch_id, item_code, event_code, value, occurred_on, source, reason, NULL FROM ledger"
    " WHERE id IN (SELECT id FROM ledger WHERE member_id = ?1 ORDER BY id + 0 DESC LIMIT ?4)"
)
_STANDING_CLAIMS = (
    _STANDING + " UNION ALL SELECT 2, id, NULL, NULL, NULL, NULL, claimed_on, NULL, released_on, NULL FROM post_claims"
    " WHERE member_id = ?1"
)


async def standing_rows(conn: Connection, member_id: int, year: int, latest: int, claims: bool) -> StandingRows:
    """A member's rows of ``year``, their latest ``latest`` rows and (``claims``) their post claims, in one
    statement: what ``entries_of_member``, ``shown_of_member`` and ``claims_of`` give, the same rows in the
    same order (on PostgreSQL one round trip instead of three)."""
    async with conn.execute(_STANDING_CLAIMS if claims else _STANDING,
                            (member_id, f"{year}-01-01", f"{year + 1}-01-01", latest)) as cursor:
        rows = await cursor.fetchall()
    parser = _EntryParser()
    entry_of, shown_of = parser.entry, parser.shown
    entries, shown, held = [], [], []
    for part, row_id, branch_id, item_code, event_code, value, occurred_on, source, reason, reverses_id in rows:
        if part == 0:
            entries.append(entry_of(row_id, item_code, value, occurred_on, event_code, reverses_id))
        elif part == 1:
            shown.append(shown_of(row_id, branch_id, item_code, event_code, value, occurred_on, source, reason))
        else:
            held.append((row_id, Claim(claimed_on=date.fromisoformat(occurred_on),
                                       released_on=date.fromisoformat(reason) if reason else None)))
    entries.sort(key=_ID_OF)
    shown.sort(key=_ID_OF, reverse=True)
    held.sort(key=_ID)
    return StandingRows(entries, shown, [claim for _, claim in held] if claims else None)


async def by_id(conn: Connection, row_id: int) -> LedgerRow | None:
    async with conn.execute("SELECT * FROM ledger WHERE id = ?", (row_id,)) as cursor:
        row = await cursor.fetchone()
    return LedgerRow(**row_dict(row)) if row else None


async def of_branch(conn: Connection, branch_id: int) -> list[LedgerRow]:
    async with conn.execute("SELECT * FROM ledger WHERE branch_id = ? ORDER BY id", (branch_id,)) as cursor:
        return _models(await cursor.fetchall())


async def reverse(conn: Connection, original: LedgerRow, *, reference: str, actor_id: int | None,
                  reason: str | None, source: Source = Source.CORRECTION) -> LedgerRow | None:
    """The one way to take a row back: a row of the opposite value that names it (``reverses_id`` is
    UNIQUE, so a row is reversed at most once; None when it already was). Dated like the original, so a
    row of a finalised year cannot be reversed (``InvalidInput("year.locked")``, from ``append``)."""
    return await append(conn, NewLedgerRow(
        branch_id=original.branch_id, member_id=original.member_id, item_code=original.item_code,
        event_code=original.event_code, value=-original.value, occurred_on=original.occurred_on,
        source=source, reference=reference, actor_id=actor_id, reason=reason, reverses_id=original.id,
    ))


async def reversal_of(conn: Connection, row_id: int) -> LedgerRow | None:
    """The row that reversed ``row_id``, whoever wrote it (an objection, a correction, a re-mark)."""
    async with conn.execute("SELECT * FROM ledger WHERE reverses_id = ?", (row_id,)) as cursor:
        row = await cursor.fetchone()
    return LedgerRow(**row_dict(row)) if row else None


async def reversed_among(conn: Connection, row_ids: list[int]) -> set[int]:
    """Which of these rows have been reversed."""
    if not row_ids:
        return set()
    marks = ", ".join("?" for _ in row_ids)
    async with conn.execute(f"SELECT reverses_id FROM ledger WHERE reverses_id IN ({marks})", row_ids) as cursor:
        return {int(r[0]) for r in await cursor.fetchall()}
