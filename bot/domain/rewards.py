"""Rewards (issue 7): the redeemable balance and the passbook (先锋指数积分卡 / 红色存折, seed 001).

Seed 001: 鼓勵有條件的村(社區)向黨員發放“先鋒指數積分卡”，可憑積分兌換適當物資獎勵；“紅色存折”……用積分兌換生活物品，
還可在購物、住店、就餐等過程中享受打折優惠. The seed does not say which points are exchanged. Our reading: the
points a member *earned by deeds* — the positive index (正向指数) — not the base (基本指数) everyone starts with,
and not the obligations allotments or monthly assessments that measure duties rather than deeds. The rulebook
says which items count (``settings.redeemable``; 尖草坪 lists its three positive categories); without a list,
every bonus item counts (fixed or ranged, not a deduction, not assessed).

The balance is a view over two independent records: the ledger (what was earned, approved; corrections are
reversing rows and count) and the redemptions (what was spent: reserved or handed over; a cancelled one is
released). Spending writes no ledger row, so the evaluation score and grade never change by spending.

Pure: no Telegram, no SQL. Points are ``Decimal``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from bot.domain.records import LedgerRow
from bot.domain.rulebook import ItemKind, Rulebook, YearMethod

COST_MAX = Decimal(100000)
STOCK_MAX = 100000
NAME_MAX = 60
DISCOUNT_MAX = 200
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud at a shop counter
CODE_LENGTH = 8  # 31**8 ≈ 8.5e11 codes; with a few guesses an hour per merchant, guessing is hopeless
CODE_MINUTES = 10  # the default; each branch sets its own (RewardSettings.code_minutes)
CODE_MINUTES_MIN, CODE_MINUTES_MAX = 1, 120  # as the CHECK of migration 0021
CODE_MINUTES_CHOICES = (5, 10, 15, 30, 60)  # the secretary's buttons
VERIFY_FAILURES_PER_HOUR = 5


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class RedemptionStatus(StrEnum):
    RESERVED = "reserved"  # points and stock held; the recorder has not handed it over yet
    HANDED_OVER = "handed_over"
    CANCELLED = "cancelled"  # points and stock released


class RewardSettings(_Record):
    enabled: bool = False
    carry_over: bool = False  # an unspent balance counts in the next year (the seeds reset points yearly)
    show_balance: bool = False  # a merchant checking a code also sees the member's balance
    code_minutes: int = CODE_MINUTES  # how long a merchant code stays valid


class RewardItem(_Record):
    id: int
    branch_id: int
    name: str
    cost: Decimal
    stock: int | None  # None: unlimited
    photo_file_id: str | None
    active: bool


class Redemption(_Record):
    id: int
    branch_id: int
    member_id: int
    item_id: int
    item_name: str
    cost: Decimal
    status: RedemptionStatus
    created_at: datetime
    decided_by: int | None
    decided_at: datetime | None


class Merchant(_Record):
    id: int
    branch_id: int
    user_id: int
    name: str
    discount: str
    active: bool


# --- which points count ---------------------------------------------------------------------------


def counts_for_rewards(rulebook: Rulebook, item_code: str) -> bool:
    """Whether ledger rows of this item are points a member may spend."""
    item = rulebook.item(item_code)
    if item is None:
        return False
    chosen = rulebook.settings.redeemable
    if chosen:
        category = rulebook.category_of(item_code)
        return item_code in chosen or (category is not None and category.code in chosen)
    return item.kind in (ItemKind.FIXED, ItemKind.RANGED) and not item.is_deduction and not item.assessed


def _is_zero_out(rulebook: Rulebook, item_code: str) -> bool:
    item = rulebook.item(item_code)
    return item is not None and item.kind is ItemKind.ZERO_OUT


def _scope(rulebook: Rulebook, day: date) -> tuple[int, int]:
    """The period a zero-out clears: the year, or its half (张店's veto is per half-year)."""
    half = (day.month - 1) // 6 if rulebook.year_result.method is YearMethod.WEIGHTED_HALVES else 0
    return day.year, half


# --- the passbook -----------------------------------------------------------------------------------


class LineKind(StrEnum):
    EARNED = "earned"
    CORRECTED = "corrected"  # a reversing row of an earned one (an objection, a correction)
    CLEARED = "cleared"  # a zero-out cleared the period's points (清零)
    SPENT = "spent"
    RELEASED = "released"  # a cancelled redemption gives its points back


_ORDER = {LineKind.EARNED: 0, LineKind.CORRECTED: 0, LineKind.CLEARED: 1, LineKind.SPENT: 2, LineKind.RELEASED: 3}


@dataclass(frozen=True)
class PassbookLine:
    at: datetime  # when it was booked (UTC)
    kind: LineKind
    subject: str  # an item code (earned, corrected, cleared) or the reward's name (spent, released)
    amount: Decimal  # signed
    balance: Decimal  # redeemable after this line: never below zero
    reference: int  # the ledger row or redemption
    shortfall: Decimal = Decimal(0)  # after this line: how far corrections went past the unspent points


@dataclass(frozen=True)
class Passbook:
    """The issue: "a balance never goes below zero". Spending cannot take it below (a redemption is refused
    first), but a correction or a zero-out of points already spent can take away more than is left unspent.
    Then the balance is 0 and ``shortfall`` says by how much the corrections exceeded the unspent points;
    points earned later cover the shortfall first (balance = max(0, earned - spent))."""

    lines: list[PassbookLine]
    earned: Decimal
    spent: Decimal  # reserved + handed over, net of releases
    year: int | None  # the year it covers; None: every year (carry-over)

    @property
    def balance(self) -> Decimal:
        return max(Decimal(0), self.earned - self.spent)

    @property
    def shortfall(self) -> Decimal:
        return max(Decimal(0), self.spent - self.earned)


def local_year(moment: datetime, timezone: str) -> int:
    return moment.astimezone(ZoneInfo(timezone)).year


def passbook(rulebook: Rulebook, rows: list[LedgerRow], redemptions: list[Redemption], *, year: int,
             carry_over: bool, timezone: str) -> Passbook:
    """A member's statement and balance, line by line as booked.

    Earned: ledger rows of items that count (reversals of them too), dated in ``year`` (every year with
    ``carry_over``). A zero-out that stands (not reversed) clears what its period earned before it; rows of
    that period booked after it count nothing. Spent: redemptions made in ``year`` (local time; every year
    with ``carry_over``), reserved or handed over; a cancelled one shows its release.
    """
    rows = sorted(rows, key=lambda r: (r.created_at, r.id))
    reversed_ids = {r.reverses_id for r in rows if r.reverses_id is not None}
    in_scope = [r for r in rows if carry_over or r.occurred_on.year == year]
    cleared_at: dict[tuple[int, int], LedgerRow] = {}
    for row in in_scope:
        if _is_zero_out(rulebook, row.item_code) and row.reverses_id is None and row.id not in reversed_ids:
            cleared_at.setdefault(_scope(rulebook, row.occurred_on), row)
    events: list[tuple[datetime, int, int, LineKind, str, Decimal]] = []
    earned_in: dict[tuple[int, int], Decimal] = {}
    for row in in_scope:
        if not counts_for_rewards(rulebook, row.item_code):
            continue
        scope = _scope(rulebook, row.occurred_on)
        zero = cleared_at.get(scope)
        if zero is not None and (row.created_at, row.id) > (zero.created_at, zero.id):
            continue  # booked after the period was cleared
        kind = LineKind.CORRECTED if row.reverses_id is not None else LineKind.EARNED
        events.append((row.created_at, _ORDER[kind], row.id, kind, row.item_code, row.value))
        earned_in[scope] = earned_in.get(scope, Decimal(0)) + row.value
    for scope, zero in cleared_at.items():
        amount = earned_in.get(scope, Decimal(0))
        if amount:
            events.append((zero.created_at, _ORDER[LineKind.CLEARED], zero.id, LineKind.CLEARED, zero.item_code, -amount))
    for redemption in redemptions:
        if not carry_over and local_year(redemption.created_at, timezone) != year:
            continue
        events.append((redemption.created_at, _ORDER[LineKind.SPENT], redemption.id, LineKind.SPENT,
                       redemption.item_name, -redemption.cost))
        if redemption.status is RedemptionStatus.CANCELLED:
            events.append((redemption.decided_at or redemption.created_at, _ORDER[LineKind.RELEASED], redemption.id,
                           LineKind.RELEASED, redemption.item_name, redemption.cost))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    running = earned = spent = Decimal(0)
    lines: list[PassbookLine] = []
    for at, _, reference, kind, subject, amount in events:
        running += amount
        if kind in (LineKind.SPENT, LineKind.RELEASED):
            spent -= amount
        else:
            earned += amount
        lines.append(PassbookLine(at=at, kind=kind, subject=subject, amount=amount, balance=max(Decimal(0), running),
                                  reference=reference, shortfall=max(Decimal(0), -running)))
    return Passbook(lines=lines, earned=earned, spent=spent, year=None if carry_over else year)


def zeroed_out(rulebook: Rulebook, rows: list[LedgerRow], year: int) -> bool:
    """Whether a zero-out stands against the member in ``year`` (not reversed)."""
    reversed_ids = {r.reverses_id for r in rows if r.reverses_id is not None}
    return any(_is_zero_out(rulebook, r.item_code) and r.occurred_on.year == year and r.reverses_id is None
               and r.id not in reversed_ids for r in rows)


def good_standing(*, approved: bool, zeroed_out_this_year: bool, last_final_passing: bool | None) -> bool:
    """What a merchant is told (no points): an approved member of the branch, no zero-out standing this year,
    and the last finalised year's grade not in a failing band (no finalised year: nothing against them)."""
    return approved and not zeroed_out_this_year and last_final_passing is not False


# --- input ------------------------------------------------------------------------------------------


_NUMBER = re.compile(r"^\d{1,6}(\.\d{1,2})?$")


def parse_cost(text: str) -> Decimal | None:
    """A reward's cost: a positive number of points, at most 2 decimal places; None when it is not one."""
    text = (text or "").strip().translate(str.maketrans("０１２３４５６７８９．", "0123456789."))
    if not _NUMBER.match(text):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if Decimal(0) < value <= COST_MAX else None


def parse_stock(text: str) -> int | None:
    """How many are in stock: a whole number 0..STOCK_MAX; None when it is not one."""
    text = (text or "").strip().translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        return None
    value = int(text)
    return value if value <= STOCK_MAX else None


def normalise_code(text: str) -> str | None:
    """A code as typed (any case, with spaces or dashes) in its stored form; None when it cannot be one."""
    cleaned = re.sub(r"[\s\-‐‑–—_]", "", text or "").upper()
    if len(cleaned) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in cleaned):
        return None
    return cleaned


def show_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"
