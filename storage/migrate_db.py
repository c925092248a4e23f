"""``python -m bot migrate-db``: copy a SQLite deployment into an empty PostgreSQL database, then verify.

Both databases are first brought to the newest schema (as starting the bot would). The copy runs in one
target transaction holding the writers' lock: it lands whole or not at all, and a bot pointed at the
target waits for it. Tables are copied parent before child (foreign keys), each in primary-key order (a
reversing ledger row after the row it reverses), with binary COPY; ``locked_years`` goes after the
ledger, whose trigger would otherwise refuse the finalised years' rows. Identity sequences are then set
past the copied ids. Verified afterwards, from both databases: the row count of every table and every
member's ledger total (Decimal sums of the decimal text, never floats).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from storage.db import Database
from storage.postgres import PgConnection, PostgresDatabase, _converters

_CHUNK = 5000
# Copied after every other table: a row here makes the ledger trigger refuse that year's rows.
_LAST = ("locked_years",)


class MigrationRefused(RuntimeError):
    """The copy cannot start (the target holds data, the schemas differ); nothing was written."""


@dataclass
class CopyReport:
    tables: dict[str, tuple[int, int]] = field(default_factory=dict)  # table → (source rows, target rows)
    totals: dict[int, tuple[Decimal, Decimal]] = field(default_factory=dict)  # member id → (source, target)

    @property
    def ok(self) -> bool:
        return all(a == b for a, b in self.tables.values()) and all(a == b for a, b in self.totals.values())


async def _sqlite_tables(conn) -> list[str]:
    async with conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " AND name != 'schema_migrations' ORDER BY name"
    ) as cursor:
        return [r[0] for r in await cursor.fetchall()]


async def _sqlite_parents(conn, table: str) -> set[str]:
    async with conn.execute(f'PRAGMA foreign_key_list("{table}")') as cursor:
        return {r["table"] for r in await cursor.fetchall()}


async def _sqlite_columns(conn, table: str) -> list[str]:
    async with conn.execute(f'PRAGMA table_info("{table}")') as cursor:
        return [r["name"] for r in await cursor.fetchall()]


def _copy_order(parents: dict[str, set[str]]) -> list[str]:
    order: list[str] = []
    placed: set[str] = set()

    def place(table: str, path: tuple[str, ...]) -> None:
        if table in placed:
            return
        for parent in sorted(parents.get(table, ())):
            if parent != table and parent not in path and parent in parents:
                place(parent, path + (table,))
        placed.add(table)
        order.append(table)

    for table in sorted(parents):
        if table not in _LAST:
            place(table, ())
    return order + [t for t in _LAST if t in parents]


async def _pg_tables(conn: PgConnection) -> list[str]:
    async with conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        " AND table_type = 'BASE TABLE' AND table_name != 'schema_migrations' ORDER BY table_name"
    ) as cursor:
        return [r[0] for r in await cursor.fetchall()]


async def _pg_column_types(conn: PgConnection, table: str) -> dict[str, str]:
    async with conn.execute(
        "SELECT column_name, udt_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?",
        (table,),
    ) as cursor:
        return {r[0]: r[1] for r in await cursor.fetchall()}


async def _count(conn, table: str) -> int:
    async with conn.execute(f'SELECT count(*) FROM "{table}"') as cursor:
        row = await cursor.fetchone()
    return int(row[0])


async def _ledger_totals(conn) -> dict[int, Decimal]:
    totals: dict[int, Decimal] = {}
    async with conn.execute("SELECT member_id, value FROM ledger ORDER BY id") as cursor:
        for row in await cursor.fetchall():
            totals[int(row[0])] = totals.get(int(row[0]), Decimal(0)) + Decimal(row[1])
    return totals


async def copy_database(source: Database, target: PostgresDatabase, echo: Callable[[str], None] = print) -> CopyReport:
    """Copy every row of ``source`` (opened SQLite) into ``target`` (opened, empty PostgreSQL); verify."""
    async with source.read() as src:
        tables = await _sqlite_tables(src)
        parents = {t: await _sqlite_parents(src, t) for t in tables}
        columns = {t: await _sqlite_columns(src, t) for t in tables}
    order = _copy_order(parents)
    async with target.transaction() as dst:
        missing = sorted(set(tables) - set(await _pg_tables(dst)))
        if missing:
            raise MigrationRefused(f"the target has no table(s) {', '.join(missing)}: is it the same version of the bot?")
        holding = [t for t in tables if await _count(dst, t)]
        if holding:
            raise MigrationRefused(f"the target is not empty ({', '.join(holding)} hold rows): refusing to copy into it")
        for table in order:
            types = await _pg_column_types(dst, table)
            names = [c for c in columns[table] if c in types]
            converters = _converters([types[c] for c in names])
            copied = 0
            last_rowid = None
            while True:
                async with source.read() as src:
                    where = "" if last_rowid is None else " WHERE rowid > ?"
                    select = ", ".join(f'"{c}"' for c in names)
                    async with src.execute(
                        f'SELECT rowid, {select} FROM "{table}"{where} ORDER BY rowid LIMIT {_CHUNK}',
                        () if last_rowid is None else (last_rowid,),
                    ) as cursor:
                        chunk = await cursor.fetchall()
                if not chunk:
                    break
                last_rowid = chunk[-1][0]
                records = []
                for row in chunk:
                    values = list(row)[1:]
                    if converters is not None:
                        values = [v if f is None or v is None else f(v) for f, v in zip(converters, values)]
                    records.append(tuple(values))
                await dst.raw.copy_records_to_table(table, records=records, columns=names)
                copied += len(records)
            echo(f"copied {table}: {copied}")
        for table in order:
            types = await _pg_column_types(dst, table)
            if "id" in types:
                async with dst.execute(f"SELECT pg_get_serial_sequence('{table}', 'id')") as cursor:
                    sequence = (await cursor.fetchone())[0]
                if sequence:
                    await dst.execute(
                        f"SELECT setval('{sequence}', COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM \"{table}\""
                    )
    return await verify(source, target, tables, echo)


async def verify(source: Database, target: PostgresDatabase, tables: list[str], echo: Callable[[str], None] = print) -> CopyReport:
    """Row counts per table and ledger totals per member, from both databases, printed."""
    report = CopyReport()
    async with source.read() as src, target.read() as dst:
        for table in tables:
            report.tables[table] = (await _count(src, table), await _count(dst, table))
        src_totals, dst_totals = await _ledger_totals(src), await _ledger_totals(dst)
    for member in sorted(set(src_totals) | set(dst_totals)):
        report.totals[member] = (src_totals.get(member, Decimal(0)), dst_totals.get(member, Decimal(0)))
    echo("rows per table (source → target):")
    for table, (a, b) in report.tables.items():
        echo(f"  {table:<28} {a:>9} → {b:<9} {'ok' if a == b else 'MISMATCH'}")
    echo("ledger total per member (source → target):")
    for member, (a, b) in report.totals.items():
        echo(f"  member {member:<8} {a:>12} → {b:<12} {'ok' if a == b else 'MISMATCH'}")
    echo("verified: every table and every member's total match" if report.ok else "VERIFICATION FAILED")
    return report
