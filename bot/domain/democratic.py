"""The democratic evaluation (民主评议) of 张店-style schemes: pure rules, no Telegram, no SQL, no clock.

Seed 003: 民主评议分按照个人自评、党员互评、群众测评、党支部初评四部分加权得出. The weights are the
rulebook's ``year_result.democratic_weights`` (default 10% / 30% / 30% / 30%, DOMAIN decision 5).

Decisions where the seed is silent (stated here and in the catalog's help):
- A rating is a number 0-100 (at most two decimals) or one of the four grades, which stand for
  优秀 95, 合格 80, 基本合格 65, 不合格 50. A number reads back as a grade by band: >= 90 优秀,
  >= 70 合格, >= 60 基本合格, below 60 不合格.
- A member's evaluation = self x w_self + (mean of the peer ratings received) x w_peer + public x
  w_public + branch x w_branch; it exists only when all four parts do (at least one peer rating).
- Unqualified (民主评议中被评定为不合格, "handled separately, not ranked"): the branch's preliminary
  rating is 不合格 (below 60), or the evaluation is below 60.
- A round is per half-year (``YEAR-H1`` / ``YEAR-H2``); without one given, the current half, except in
  January and July, when the half just ended is the one being evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from bot.domain.scoring import democratic_score

LOW, HIGH = Decimal(0), Decimal(100)
PASS_MARK = Decimal(60)  # below this: 不合格
PARTS = ("self", "peer", "public", "branch")


@dataclass(frozen=True)
class Grade:
    code: str  # catalog key democratic.grade.<code>
    value: Decimal  # what a tap on the grade records
    floor: Decimal  # a number >= floor (and below the grade above) reads as this grade


# From the best down; the values are what the grade buttons record.
GRADES: tuple[Grade, ...] = (
    Grade("excellent", Decimal(95), Decimal(90)),
    Grade("qualified", Decimal(80), Decimal(70)),
    Grade("basic", Decimal(65), Decimal(60)),
    Grade("unqualified", Decimal(50), Decimal(0)),
)


def grade_of(value: Decimal) -> Grade:
    """The grade a number reads as."""
    return next(g for g in GRADES if value >= g.floor)


class RatingError(ValueError):
    pass


_NUMBER = re.compile(r"^\d{1,3}(?:\.\d{1,2})?$")


def valid_rating(value: Decimal) -> bool:
    return value.is_finite() and LOW <= value <= HIGH and value == value.quantize(Decimal("0.01"))


def parse_rating(text: str) -> Decimal:
    """A typed rating: 0-100 with at most two decimals (87, 87.5)."""
    cleaned = text.strip()
    if not _NUMBER.match(cleaned):
        raise RatingError(cleaned)
    try:
        value = Decimal(cleaned)
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        raise RatingError(cleaned) from None
    if not valid_rating(value):
        raise RatingError(cleaned)
    return value.normalize() if value == value.to_integral_value() else value


def clamp(value: Decimal) -> Decimal:
    return min(HIGH, max(LOW, value))


# --- half-years -------------------------------------------------------------------------------


class HalfError(ValueError):
    def __init__(self, reason: str):  # "bad", "future", "too_old"
        self.reason = reason
        super().__init__(reason)


def half_of(day: date) -> tuple[int, int]:
    return day.year, 1 if day.month <= 6 else 2


def previous_half(year: int, half: int) -> tuple[int, int]:
    return (year, 1) if half == 2 else (year - 1, 2)


def default_half(today: date) -> tuple[int, int]:
    """The half being evaluated: the current one, or in its first month the one just ended."""
    current = half_of(today)
    return previous_half(*current) if today.month in (1, 7) else current


def half_bounds(year: int, half: int) -> tuple[date, date]:
    return (date(year, 1, 1), date(year, 6, 30)) if half == 1 else (date(year, 7, 1), date(year, 12, 31))


def half_code(year: int, half: int) -> str:
    return f"{year}-H{half}"


def check_half(year: int, half: int, today: date) -> tuple[int, int]:
    """A half that has begun, of this year or the last."""
    if half not in (1, 2):
        raise HalfError("bad")
    if (year, half) > half_of(today):
        raise HalfError("future")
    if year < today.year - 1:
        raise HalfError("too_old")
    return year, half


def parse_half(text: str, today: date) -> tuple[int, int]:
    """``2026-H1``, ``2026H2``, ``2026 1``, ``2026上半年``; a bare ``H1``/``H2`` is this year's."""
    cleaned = text.strip().replace("－", "-")
    bare = re.fullmatch(r"[Hh]([12])", cleaned)
    if bare:
        return check_half(today.year, int(bare.group(1)), today)
    words = re.fullmatch(r"(\d{4})\s*(上半年|下半年)", cleaned)
    if words:
        return check_half(int(words.group(1)), 1 if words.group(2) == "上半年" else 2, today)
    match = re.fullmatch(r"(\d{4})\s*-?\s*[Hh]?\s*([12])", cleaned)
    if not match:
        raise HalfError("bad")
    return check_half(int(match.group(1)), int(match.group(2)), today)


def in_half(joined_on: date | None, left_on: date | None, year: int, half: int) -> bool:
    """Whether a member belonged to the branch at some time in the half."""
    first, last = half_bounds(year, half)
    return (joined_on is None or joined_on <= last) and (left_on is None or left_on >= first)


# --- the evaluation ---------------------------------------------------------------------------


def peer_mean(values: Sequence[Decimal]) -> Decimal | None:
    if not values:
        return None
    return sum(values, Decimal(0)) / len(values)


@dataclass(frozen=True)
class Parts:
    """One member's four parts in a round (None: not given yet)."""

    self_rating: Decimal | None
    peers: tuple[Decimal, ...]
    public: Decimal | None
    branch: Decimal | None

    def ratings(self) -> dict[str, Decimal] | None:
        peer = peer_mean(self.peers)
        if self.self_rating is None or peer is None or self.public is None or self.branch is None:
            return None
        return {"self": self.self_rating, "peer": peer, "public": self.public, "branch": self.branch}

    @property
    def complete(self) -> bool:
        return self.ratings() is not None


def evaluation(parts: Parts, weights: Mapping[str, Decimal]) -> Decimal | None:
    """The weighted democratic evaluation (0-100), or None while a part is missing."""
    ratings = parts.ratings()
    if ratings is None:
        return None
    return democratic_score(ratings, dict(weights))


def unqualified(parts: Parts, weights: Mapping[str, Decimal]) -> bool:
    """Rated unqualified: the branch's preliminary rating is 不合格, or the evaluation is below 60."""
    if parts.branch is not None and parts.branch < PASS_MARK:
        return True
    score = evaluation(parts, weights)
    return score is not None and score < PASS_MARK


# --- records ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    """One branch's democratic evaluation for one half-year."""

    id: int
    branch_id: int
    year: int
    half: int
    status: str  # "open" or "closed"
    opened_by: int | None
    closed_by: int | None

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def code(self) -> str:
        return half_code(self.year, self.half)


def canonical(value: Decimal) -> str:
    """How a rating is stored: the same number always as the same text (80, 87.5)."""
    text = format(value.normalize(), "f")
    return text if "." not in text else text.rstrip("0").rstrip(".")
