"""The branch calendar: its settings and the exactly-once record of scheduled effects."""

from __future__ import annotations

import json
import re
import unicodedata
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


# The words a yes/no setting takes (after NFKC and lower-casing; the setting's help text lists them):
# anything else is refused, never read as "no".
YES_WORDS = ("是", "开", "开启", "yes", "on", "true", "1")
NO_WORDS = ("否", "关", "关闭", "no", "off", "false", "0")
# meeting_reminders_minutes: minutes before the start, separated by commas (full-width too, after NFKC),
# 、, ; or spaces; each from 1 minute to 7 days, at most 5 of them; one of these words for none at all.
NO_REMINDER_WORDS = ("无", "不提醒", "关", "关闭", "none", "off")
MAX_REMINDER_MINUTES = 7 * 24 * 60
MAX_REMINDERS = 5
_LIST_SEPARATORS = re.compile(r"[,;、\s]+")
_MINUTES = re.compile(r"\d{1,6}")


def parse_reminders(raw: str) -> tuple[int, ...]:
    """``1440，60`` → (1440, 60), largest first; ``无`` → (); anything unparseable is refused."""
    text = unicodedata.normalize("NFKC", raw).strip()
    parts = [p for p in _LIST_SEPARATORS.split(text) if p]
    if len(parts) == 1 and parts[0].lower() in NO_REMINDER_WORDS:
        return ()
    if not parts or len(parts) > MAX_REMINDERS or not all(_MINUTES.fullmatch(p) for p in parts):
        raise InvalidInput("calendar.bad_reminders", value=raw, most=MAX_REMINDERS, max=MAX_REMINDER_MINUTES)
    minutes = sorted({int(p) for p in parts}, reverse=True)
    if not all(1 <= m <= MAX_REMINDER_MINUTES for m in minutes):
        raise InvalidInput("calendar.bad_reminders", value=raw, most=MAX_REMINDERS, max=MAX_REMINDER_MINUTES)
    return tuple(minutes)


def parse_yes_no(name: str, raw: str) -> bool:
    """One of YES_WORDS or NO_WORDS (zh or en, any case, full-width too); anything else is refused."""
    word = unicodedata.normalize("NFKC", raw).strip().lower()
    if word in YES_WORDS:
        return True
    if word in NO_WORDS:
        return False
    raise InvalidInput("calendar.bad_yes_no", name=name, value=raw)


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
        value: object = unicodedata.normalize("NFKC", raw).strip()  # full-width digits are digits
        if name == "meeting_reminders_minutes":
            value = parse_reminders(raw)
        elif isinstance(current[name], bool):
            value = parse_yes_no(name, raw)
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

    async def reclaim_failed(self, branch_id: int, kind: str, key: str, max_attempts: int, now: datetime,
                             *, after: Sequence[str] = (), busy_since: datetime | None = None) -> int:
        """Take a failed effect again once its retry time has come (``now``); with ``after``, not while one
        of those kinds is in progress (as ``claim``). Which attempt this is, 0 when not taken."""
        since = busy_since.astimezone(UTC).isoformat(timespec="seconds") if busy_since else ""
        async with self.db.transaction() as conn:
            return await effect_repo.reclaim_failed(conn, branch_id, kind, key, max_attempts,
                                                    now.astimezone(UTC).isoformat(timespec="seconds"),
                                                    after=after, busy_since=since)

    async def finish(self, branch_id: int, kind: str, key: str, outcome: str, detail: str | None = None,
                     *, retry_at: datetime | None = None, refund: bool = False) -> None:
        """Record the outcome; a failed effect waits until ``retry_at`` (``refund``: the try is not counted)."""
        at = retry_at.astimezone(UTC).isoformat(timespec="seconds") if retry_at else None
        async with self.db.transaction() as conn:
            await effect_repo.finish(conn, branch_id, kind, key, outcome, detail, retry_at=at, refund=refund)

    async def rearm(self, branch_id: int) -> list[tuple[str, str]]:
        """The branch's failed effects are taken again at the next tick (its group is reachable again)."""
        async with self.db.transaction() as conn:
            return await effect_repo.rearm(conn, branch_id)

    async def outcome(self, branch_id: int, kind: str, key: str) -> str | None:
        async with self.db.read() as conn:
            return await effect_repo.outcome(conn, branch_id, kind, key)
