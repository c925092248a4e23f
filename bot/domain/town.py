"""The higher organisation (镇党委 / 党总支) and member transfers (组织关系转接), as pure rules.

No Telegram, no SQL: the town's records, the join code's validity, the dashboard's per-branch
figures, and which branch grades a transferred member's year.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud and typed
CODE_LENGTH = 8
CODE_VALID = timedelta(days=7)
OVERDUE_DAYS_DEFAULT = 3  # a declaration pending longer than this is overdue (town reminder)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class Town(_Record):
    id: int
    name: str
    timezone: str
    language: str
    created_by: int
    created_at: datetime


class TownAdmin(_Record):
    town_id: int
    user_id: int
    name: str | None
    reachable: bool
    added_by: int
    added_at: datetime


class TownCode(_Record):
    code: str
    town_id: int
    created_by: int
    created_at: datetime
    expires_at: datetime
    used_by_branch: int | None
    used_at: datetime | None


class CodeState(StrEnum):
    VALID = "valid"
    USED = "used"
    EXPIRED = "expired"


def new_code(length: int = CODE_LENGTH) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def normalise_code(text: str | None) -> str:
    """What people type: spaces, dashes and lower case are forgiven."""
    return "".join(ch for ch in (text or "").upper() if ch.isalnum())


def code_state(code: TownCode, now: datetime) -> CodeState:
    if code.used_by_branch is not None:
        return CodeState.USED
    if now >= code.expires_at:
        return CodeState.EXPIRED
    return CodeState.VALID


# --- the dashboard ---------------------------------------------------------------------------------


class NoticeState(StrEnum):
    ON_TIME = "on_time"
    LATE = "late"
    SENDING = "sending"  # recorded, not yet whole in the group
    NOT_YET = "not_yet"  # owed and not posted
    NOT_DUE = "not_due"  # the period's notice moment has not come
    NONE = "none"  # the branch owes no notice yet (too new)


@dataclass(frozen=True)
class BranchFigures:
    """One branch's line on the town's dashboard (all figures read, none computed from the ledger)."""

    branch_id: int
    title: str
    reachable: bool = True
    scored: int = 0  # approved members who are not exempt
    pending_declarations: int = 0
    oldest_pending: datetime | None = None
    notice_period: str | None = None
    notice_state: NoticeState = NoticeState.NONE
    unconfirmed: int = 0  # member lines of notice_period's notice neither confirmed nor disputed (that notice only)
    open_objections: int = 0
    appeals: int = 0
    grade_year: int | None = None
    grade_final: bool = False
    distribution: tuple[tuple[str, int], ...] = ()  # (band code, count), in the rulebook's band order


def notice_state(expected_key: str | None, due_at: datetime | None, now: datetime,
                 notice: tuple[bool, bool] | None) -> NoticeState:
    """The state of the last ended period's notice; ``notice`` is (late, sent) of its row, if any."""
    if expected_key is None:
        return NoticeState.NONE
    if notice is None:
        return NoticeState.NOT_YET if due_at is not None and now >= due_at else NoticeState.NOT_DUE
    late, sent = notice
    if not sent:
        return NoticeState.SENDING
    return NoticeState.LATE if late else NoticeState.ON_TIME


def overdue(created_at: datetime, now: datetime, days: int) -> bool:
    return now - created_at >= timedelta(days=days)


def wait_days(oldest: datetime | None, now: datetime) -> int | None:
    return None if oldest is None else max(0, (now - oldest).days)


def page_of(items: list, page: int, size: int) -> tuple[list, int, int]:
    """(the page's items, the page actually shown, the number of pages); out-of-range pages clamp."""
    pages = max(1, -(-len(items) // size))
    page = min(max(page, 0), pages - 1)
    return items[page * size:(page + 1) * size], page, pages


# --- member transfers (组织关系转接) ------------------------------------------------------------------


class TransferRule(StrEnum):
    """Which branch grades the year of a member who moved during it. The seeds say nothing
    (DOMAIN.md decision 8 only covers joining and leaving): by default the branch the member
    belongs to at the year's end grades the whole year — the branch that will talk with, praise or
    mentor them next year — counting the months and points earned in the earlier branch too."""

    RECEIVING = "receiving"  # the branch at the year's end, the whole year counted (default)
    LONGER = "longer"  # the branch where the member spent more of the year, the whole year counted
    SEPARATE = "separate"  # each branch grades its own months as for joining/leaving mid-year


@dataclass(frozen=True)
class Stint:
    """One member row's time in one branch: the member's history is a chain of these."""

    member_id: int
    branch_id: int
    first: date | None  # joined_on
    last: date | None  # left_on (None: still there)


@dataclass(frozen=True)
class YearHome:
    """Who grades the year and whose rows count: ``grader`` grades over ``counted`` (oldest first);
    the other stints' branches list the member as transferred out, not graded."""

    grader: Stint
    counted: tuple[Stint, ...] = field(default=())


def _days_in(stint: Stint, year: int) -> int:
    start = max(stint.first or date(year, 1, 1), date(year, 1, 1))
    end = min(stint.last or date(year, 12, 31), date(year, 12, 31))
    return max(0, (end - start).days + 1)


def year_home(stints: list[Stint], year: int, rule: TransferRule) -> YearHome | None:
    """Which stint grades ``year`` and which stints' ledger rows count toward it.

    ``stints`` is the chain of one member's rows, oldest first (each transfer adds one; a member who
    returns to a branch continues their old row there, so a row may have several stints). Stints that
    do not touch the year are ignored. None when no stint touches the year. A stint ending the day the
    next begins (a transfer's day) counts for both branches' days. Under LONGER the days are summed per
    branch (A→B→A: both stays in A count) and the branch's last stint grades; ties go to the branch the
    member reached later (the receiving one).
    """
    touching = [s for s in stints if _days_in(s, year) > 0]
    if not touching:
        return None
    if rule is TransferRule.SEPARATE or len(touching) == 1:
        last = touching[-1]
        return YearHome(grader=last, counted=(last,))
    if rule is TransferRule.RECEIVING:
        return YearHome(grader=touching[-1], counted=tuple(touching))
    days: dict[int, int] = {}
    last_of: dict[int, int] = {}
    for index, stint in enumerate(touching):
        days[stint.branch_id] = days.get(stint.branch_id, 0) + _days_in(stint, year)
        last_of[stint.branch_id] = index
    branch = max(days, key=lambda b: (days[b], last_of[b]))
    return YearHome(grader=touching[last_of[branch]], counted=tuple(touching))


def graded_here(stints: list[Stint], member_id: int, year: int, rule: TransferRule) -> bool:
    """Whether the branch of ``member_id``'s row grades that member for ``year``."""
    home = year_home(stints, year, rule)
    if home is None:
        return False
    if rule is TransferRule.SEPARATE:
        return any(s.member_id == member_id and _days_in(s, year) > 0 for s in stints)
    return home.grader.member_id == member_id


def days_counted(stints: list[Stint], year: int) -> int:
    return sum(_days_in(s, year) for s in stints)


@dataclass(frozen=True)
class Move:
    """One accepted transfer as the chain needs it: the row that left (its stint ran from ``first``,
    its joined_on then, to ``moved_on``) and the row that continued (new, or an earlier row of the
    member's in the receiving branch, reactivated; ``reopened`` is that row's stay before, if any)."""

    member_id: int
    from_branch: int
    first: date | None
    moved_on: date
    new_member_id: int
    to_branch: int
    new_first: date | None  # the continuing row's joined_on and left_on as they are now
    new_last: date | None
    reopened: tuple[date | None, date | None] | None = None


def chains_of(moves: list[Move]) -> list[tuple[Stint, ...]]:
    """The chains of stints the moves make, oldest stint first: a move whose leaving row is the tail
    of a chain continues it (A→B→A continues the chain through the old row: still one chain). A row
    reactivated by a move keeps its earlier stay as a stint of its own unless the chain has it already."""
    chains: list[list[Stint]] = []
    tails: dict[int, int] = {}  # row id → index of the chain it ends
    for move in moves:
        index = tails.pop(move.member_id, None)
        if index is None:
            index = len(chains)
            chains.append([])
        chain = chains[index]
        chain.append(Stint(member_id=move.member_id, branch_id=move.from_branch, first=move.first, last=move.moved_on))
        if move.reopened is not None:
            before = Stint(member_id=move.new_member_id, branch_id=move.to_branch, first=move.reopened[0], last=move.reopened[1])
            if before not in chain:
                chain.insert(_position(chain, before), before)
        tails[move.new_member_id] = index
    for row_id, index in tails.items():
        move = next(m for m in reversed(moves) if m.new_member_id == row_id)
        chains[index].append(Stint(member_id=row_id, branch_id=move.to_branch, first=move.new_first, last=move.new_last))
    return [tuple(chain) for chain in chains]


def _position(chain: list[Stint], stint: Stint) -> int:
    """Where an earlier stay goes in a chain kept oldest first."""
    for i, other in enumerate(chain):
        if other.first is not None and (stint.first is None or stint.first < other.first):
            return i
    return len(chain)


def rule_of_year(stints: tuple[Stint, ...] | list[Stint], year: int, rules: dict[int, TransferRule]) -> TransferRule:
    """The rule in force for the year: the one of the branch the member was in last that year."""
    touching = [s for s in stints if _days_in(s, year) > 0]
    return rules.get(touching[-1].branch_id, TransferRule.RECEIVING) if touching else TransferRule.RECEIVING


@dataclass(frozen=True)
class YearPart:
    """One member row's part in a transferred member's year: graded here over ``counted`` (the stints
    whose ledger rows and months count), or listed as transferred out (``graded`` False: another
    branch grades the year). ``grader`` is the stint that grades."""

    graded: bool
    counted: tuple[Stint, ...]
    grader: Stint
    others: bool  # ``counted`` holds another row's stints (the history of another branch counts here)


def year_part(stints: tuple[Stint, ...] | list[Stint], member_id: int, year: int, rule: TransferRule) -> YearPart | None:
    """What ``member_id``'s row does with ``year``; None when the chain does not concern that row's
    year (no stint of the row touches it, or the row is the only one touching it: nothing moved)."""
    touching = [s for s in stints if _days_in(s, year) > 0]
    mine = tuple(s for s in touching if s.member_id == member_id)
    if not mine or all(s.member_id == member_id for s in touching):
        return None
    home = year_home(list(stints), year, rule)
    assert home is not None
    if rule is TransferRule.SEPARATE:
        return YearPart(graded=True, counted=mine, grader=mine[-1], others=False)
    graded = home.grader.member_id == member_id
    return YearPart(graded=graded, counted=home.counted if graded else (), grader=home.grader,
                    others=graded and any(s.member_id != member_id for s in home.counted))


def in_year(stints: tuple[Stint, ...] | list[Stint], year: int) -> tuple[Stint, ...]:
    """The stints that touch ``year``."""
    return tuple(s for s in stints if _days_in(s, year) > 0)


def stays_in_year(stints: tuple[Stint, ...] | list[Stint], member_id: int, year: int) -> tuple[Stint, ...]:
    """The row's own stints that touch ``year`` (a reactivated row may have two)."""
    return tuple(s for s in stints if s.member_id == member_id and _days_in(s, year) > 0)


def months_of(stints: tuple[Stint, ...] | list[Stint], year: int, today: date) -> list[tuple[int, int]]:
    """The months of ``year`` up to ``today`` in which the member was in at least one of ``stints``
    (DOMAIN decision 8 per stint; a month of a move counts once)."""
    from bot.domain.scoring import counted_months  # scoring → rulebook → this module: imported when used
    return sorted({m for s in stints for m in counted_months(year, today, s.first, s.last)})


__all__ = [
    "BranchFigures", "CodeState", "NoticeState", "Stint", "Town", "TownAdmin", "TownCode",
    "Move", "TransferRule", "YearHome", "YearPart", "chains_of", "code_state", "days_counted", "graded_here", "in_year",
    "months_of", "new_code", "normalise_code", "notice_state", "overdue", "page_of", "rule_of_year", "stays_in_year", "wait_days",
    "year_home", "year_part",
]
