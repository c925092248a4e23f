"""The branch's records as the domain sees them; storage/ returns these."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from bot.domain.scoring import Entry


class Role(StrEnum):
    SECRETARY = "secretary"
    DEPUTY = "deputy"
    RECORDER = "recorder"
    SUPERVISOR = "supervisor"


class MemberStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    LEFT = "left"


class MemberState(StrEnum):
    ACTIVE = "active"
    PROBATIONARY = "probationary"
    EXEMPT = "exempt"
    MIGRANT = "migrant"


class DeclarationStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class Source(StrEnum):
    DECLARATION = "declaration"
    RECORDER = "recorder"
    AUTOMATIC = "automatic"
    CORRECTION = "correction"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class Branch(_Record):
    id: int
    chat_id: int
    title: str
    preset: str
    custom_items: str  # JSON
    timezone: str
    language: str
    reachable: bool
    created_by: int
    created_at: datetime
    calendar: str = "{}"  # JSON of bot.domain.calendar.CalendarSettings
    town_id: int | None = None  # the town (镇党委 / 党总支) it belongs to, if any
    rule_overrides: str = "{}"  # JSON: the branch's values for its preset's defaults (bot.domain.overrides)


class Member(_Record):
    id: int
    branch_id: int
    user_id: int | None
    username: str | None
    name: str
    status: MemberStatus
    state: MemberState
    state_reason: str | None
    joined_on: date | None
    left_on: date | None
    language: str | None
    reachable: bool
    sex: str | None = None
    birth_month: str | None = None
    ethnicity: str | None = None
    education: str | None = None
    party_joined_on: str | None = None
    health: str | None = None
    phone: str | None = None

    @property
    def scored(self) -> bool:
        """Exempt members are neither scored nor graded."""
        return self.status is MemberStatus.APPROVED and self.state is not MemberState.EXEMPT


class Declaration(_Record):
    id: int
    branch_id: int
    member_id: int
    item_code: str
    occurred_on: date
    place: str
    description: str
    photo_file_id: str | None
    value: Decimal
    status: DeclarationStatus
    decided_value: Decimal | None
    decided_by: int | None
    decided_at: datetime | None
    decision_reason: str | None
    created_at: datetime


class LedgerRow(_Record):
    id: int
    branch_id: int
    member_id: int
    item_code: str
    event_code: str | None
    value: Decimal
    occurred_on: date
    source: Source
    reference: str
    actor_id: int | None
    reason: str | None
    reverses_id: int | None
    created_at: datetime

    def entry(self) -> Entry:
        return Entry(
            id=self.id,
            item_code=self.item_code,
            value=self.value,
            occurred_on=self.occurred_on,
            event_code=self.event_code,
            reverses_id=self.reverses_id,
        )


class NewLedgerRow(_Record):
    """A row to append; the repository gives it an id and a time."""

    branch_id: int
    member_id: int
    item_code: str
    value: Decimal
    occurred_on: date
    source: Source
    reference: str
    event_code: str | None = None
    actor_id: int | None = None
    reason: str | None = None
    reverses_id: int | None = None
