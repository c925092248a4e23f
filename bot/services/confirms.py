"""Confirm steps that wait for a button press: /remove, /undo and a zero-out /record.

The command checks everything, then keeps what the press needs (the payload) under a short random token
that the buttons' callback data carries — ``VERB:VERDICT:TOKEN``, well under Telegram's 64 bytes. The token
is no authority: the press is checked against the one who sent the command (or the role, by the caller)
and the service that acts re-checks everything. Kept in the database, a step survives a restart; it
expires an hour after the command; a press takes it once (a conditional update), so a double tap acts
once, and the claim is given back if the action is refused (the button works again, as before).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from bot.clock import Clock
from storage import confirms as repo
from storage.db import Database

CONFIRM_TTL = timedelta(hours=1)
KEEP_EXPIRED = timedelta(days=7)  # an expired step is still told apart ("expired") for this long, then swept
KINDS = frozenset({"remove", "undo", "zero_out"})
TOKEN_BYTES = 9  # 12 characters of URL-safe base64: 72 random bits


class PressState(Enum):
    OPEN = "open"  # pending: the press may act
    USED = "used"  # a press acted on it (or cancelled it) already
    EXPIRED = "expired"  # not pressed within CONFIRM_TTL


@dataclass(frozen=True)
class PendingConfirm:
    token: str
    kind: str
    chat_id: int
    user_id: int  # who sent the command
    branch_id: int
    payload: dict[str, Any]
    state: PressState


@dataclass(frozen=True)
class Claim:
    """A pending step taken by one press (ConfirmService.take); given back with ConfirmService.give_back."""
    token: str
    at: str


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


class ConfirmService:
    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock

    async def keep(self, *, kind: str, chat_id: int, user_id: int, branch_id: int, payload: dict[str, Any]) -> str:
        """Keep a step until its press; returns the token for the buttons. Steps expired a week ago are
        swept in the same transaction."""
        if kind not in KINDS:
            raise ValueError(f"unknown confirm kind {kind!r}")
        now = self.clock.now()
        body = json.dumps(payload, ensure_ascii=False, sort_keys=True)
        async with self.db.transaction() as conn:
            await repo.sweep(conn, _iso(now - KEEP_EXPIRED))
            while True:  # 72 random bits: a clash is next to impossible, and then another is drawn
                token = secrets.token_urlsafe(TOKEN_BYTES)
                if await repo.insert(conn, token=token, kind=kind, chat_id=chat_id, user_id=user_id, branch_id=branch_id,
                                     payload=body, created_at=_iso(now), expires_at=_iso(now + CONFIRM_TTL)):
                    return token

    async def find(self, token: str) -> PendingConfirm | None:
        """The step under this token as it is now, or None when the bot does not know it."""
        async with self.db.read() as conn:
            row = await repo.by_token(conn, token)
        if row is None:
            return None
        if row.used_at is not None:
            state = PressState.USED
        elif row.expires_at <= _iso(self.clock.now()):
            state = PressState.EXPIRED
        else:
            state = PressState.OPEN
        return PendingConfirm(token=row.token, kind=row.kind, chat_id=row.chat_id, user_id=row.user_id,
                              branch_id=row.branch_id, payload=json.loads(row.payload), state=state)

    async def take(self, token: str) -> Claim | None:
        """Take the step for one press: None when another press took it first or it expired meanwhile."""
        now = _iso(self.clock.now())
        async with self.db.transaction() as conn:
            taken = await repo.claim(conn, token, now)
        return Claim(token, now) if taken else None

    async def give_back(self, claim: Claim) -> None:
        """The action the claim was for was refused or failed: the step is pending again (until it expires)."""
        async with self.db.transaction() as conn:
            await repo.unclaim(conn, claim.token, claim.at)
