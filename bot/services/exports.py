"""(being built) year end: the exports part."""

from __future__ import annotations

from bot.clock import Clock
from storage.db import Database


class ExportService:
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock
