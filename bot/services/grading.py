"""(being built) year end: the grading part."""

from __future__ import annotations

from bot.clock import Clock
from storage.db import Database


class GradingService:
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock
