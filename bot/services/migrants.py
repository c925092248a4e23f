"""(being built) the migrants part of the branch calendar."""

from __future__ import annotations

from bot.clock import Clock
from storage.db import Database


class MigrantService:
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock
