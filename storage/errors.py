"""Driver errors the repositories catch, whichever backend is in use."""

from __future__ import annotations

import sqlite3

try:
    import asyncpg
except ImportError:  # a SQLite-only installation
    asyncpg = None

# A constraint or trigger refused the statement (UNIQUE, CHECK, FOREIGN KEY, the ledger's triggers).
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError,) + (
    (asyncpg.IntegrityConstraintViolationError,) if asyncpg is not None else ()
)
