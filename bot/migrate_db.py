"""``python -m bot migrate-db --from sqlite:///… --to postgresql://…``: move a deployment to PostgreSQL.

Stop the bot first (a copy of a database still being written would miss the last writes); start it
again with DATABASE_URL set to the target once the copy is verified.
"""

from __future__ import annotations

import asyncio
import sys

from storage.backends import is_postgres, sqlite_path


async def _copy(source_url: str, target_url: str) -> int:
    from pathlib import Path

    from storage.db import Database
    from storage.migrate_db import MigrationRefused, copy_database
    from storage.postgres import PostgresDatabase, redact

    path = Path(sqlite_path(source_url))
    if not path.exists():
        print(f"error: no SQLite database at {path}", file=sys.stderr)
        return 2
    source = await Database(path).open()
    try:
        try:
            target = await PostgresDatabase(target_url).open()
        except (OSError, ConnectionError) as exc:
            print(f"error: cannot reach PostgreSQL at {redact(target_url)}: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:  # asyncpg's own errors: authentication, a missing database, …
            print(f"error: PostgreSQL at {redact(target_url)} refused: {exc}", file=sys.stderr)
            return 2
        try:
            print(f"copying {path} → {redact(target_url)}")
            report = await copy_database(source, target)
        except MigrationRefused as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            await target.close()
    finally:
        await source.close()
    return 0 if report.ok else 1


def main(source_url: str, target_url: str) -> int:
    if is_postgres(source_url) or not is_postgres(target_url):
        print("error: migrate-db copies a SQLite database into PostgreSQL: --from sqlite:///PATH --to postgresql://USER@HOST:PORT/DB",
              file=sys.stderr)
        return 2
    try:
        sqlite_path(source_url)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_copy(source_url, target_url))
