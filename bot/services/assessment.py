"""(being built) the monthly assessment (月度考评) and volunteer post claims."""

from __future__ import annotations

from bot.clock import Clock
from storage.db import Database


class AssessmentService:
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock

    async def defaulted_members(self, branch_id: int, year: int, month: int) -> list[int]:
        """Member ids who were given the items' defaults for that month because nobody assessed them.

        The monthly notice says so (contract between the assessment and the notice).
        """
        return []
