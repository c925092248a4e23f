"""The branch calendar: its settings and the exactly-once record of scheduled effects."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import ValidationError

from bot.clock import Clock
from bot.domain.calendar import CalendarSettings
from bot.domain.records import Branch
from bot.errors import InvalidInput
from bot.services.branches import MANAGERS, Actor, require_role
from storage import branches as branch_repo
from storage import effects as effect_repo
from storage.db import Database


def calendar_of(branch: Branch) -> CalendarSettings:
    return CalendarSettings.model_validate(json.loads(branch.calendar or "{}"))


class CalendarService:
    def __init__(self, db: Database, clock: Clock):
        self.db, self.clock = db, clock

    async def branches(self) -> list[Branch]:
        async with self.db.read() as conn:
            return await branch_repo.all_branches(conn)

    async def change(self, branch: Branch, actor: Actor, name: str, raw: str) -> CalendarSettings:
        """Set one calendar setting (e.g. notice_day 3), validated; the secretary or deputy only."""
        if name not in CalendarSettings.model_fields:
            raise InvalidInput("calendar.unknown_setting", name=name)
        current = calendar_of(branch).model_dump()
        value: object = raw
        if name == "meeting_reminders_minutes":
            value = tuple(int(p) for p in raw.split(",") if p.strip().isdigit())
        elif isinstance(current[name], bool):
            value = raw.lower() in ("1", "true", "yes", "on", "是")
        current[name] = value
        try:
            settings = CalendarSettings.model_validate(current)
        except ValidationError:
            raise InvalidInput("calendar.bad_value", name=name, value=raw) from None
        async with self.db.transaction() as conn:
            await require_role(conn, branch.id, actor.user_id, MANAGERS)
            await branch_repo.set_calendar(conn, branch.id, settings.model_dump_json())
        return settings

    async def claim(self, branch_id: int, kind: str, key: str, due_at: datetime, outcome: str = "claimed",
                    *, after: Sequence[str] = (), busy_since: datetime | None = None) -> bool:
        """Claim an effect once; with ``after``, not while one of those kinds is in progress (claimed since
        ``busy_since``) for the branch — in another process, since this one runs its effects one by one."""
        since = busy_since.astimezone(UTC).isoformat(timespec="seconds") if busy_since else ""
        async with self.db.transaction() as conn:
            return await effect_repo.claim(conn, branch_id, kind, key, due_at.isoformat(), outcome,
                                           after=after, busy_since=since)

    async def reclaim_failed(self, branch_id: int, kind: str, key: str, max_attempts: int,
                             *, after: Sequence[str] = (), busy_since: datetime | None = None) -> bool:
        """Take a failed effect again; with ``after``, not while one of those kinds is in progress (as ``claim``)."""
        since = busy_since.astimezone(UTC).isoformat(timespec="seconds") if busy_since else ""
        async with self.db.transaction() as conn:
            return await effect_repo.reclaim_failed(conn, branch_id, kind, key, max_attempts,
                                                    after=after, busy_since=since)

    async def finish(self, branch_id: int, kind: str, key: str, outcome: str, detail: str | None = None) -> None:
        async with self.db.transaction() as conn:
            await effect_repo.finish(conn, branch_id, kind, key, outcome, detail)

    async def outcome(self, branch_id: int, kind: str, key: str) -> str | None:
        async with self.db.read() as conn:
            return await effect_repo.outcome(conn, branch_id, kind, key)
