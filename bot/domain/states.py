"""A member's state over time, and the months it takes out of the year (不纳入积分管理 has dates).

Seeds 003 l.35 and 004 l.8–9 take an exempt member (年老体弱, 长期生病 …) out of points management for
the time of the exemption; DOMAIN decision 3 averages the 浠水 year over the months the member "belonged
to the branch and was not exempt". A member row's history is its /state changes (``member_states``,
migration 0031), each in force from the first day of its ``from_date``'s month:

* **A month takes the state recorded last for it**: the change with the latest month not after it (two
  changes in one month: the later one). Exempted on 3 December: December is exempt; made active again
  on 15 July: July is scored. The month granularity is the year's (DOMAIN decision 8 counts months).
* Before the first change the member was in the state that change recorded (``from_date`` NULL: since
  the row began) — the migration's row for members exempt before the table, and the row ``/state``
  writes first for the state a member had before their first change, cover the start.
* No change recorded: the state now (``members.state``) throughout, as before the table. A state now
  that differs from the last change (set where no history is written) counts from that change's month.

Exempt months are cut out of a member's stints (``scored``) the way stays cut out the months away: the
readers' ``months_of`` over the scored stints gives the months the member was scored, and the rows
dated in the cut months count nowhere (``drop_months``). Pure: no SQL, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

from bot.domain.records import MemberState
from bot.domain.town import Stint


@dataclass(frozen=True)
class StateChange:
    """One recorded change: ``state`` from the first day of ``from_date``'s month (None: from the start)."""

    state: MemberState
    from_date: date | None
    id: int = 0
    reason: str | None = None


@dataclass(frozen=True)
class History:
    """A member row's state now and its recorded changes (any order: ``changes`` sorts them)."""

    current: MemberState
    changes: tuple[StateChange, ...] = ()

    def timeline(self) -> list[tuple[date | None, MemberState]]:
        """(first day of the month it starts, state), oldest first, one entry per change that holds a
        month: the first starts None (from the start)."""
        ordered = sorted(self.changes, key=lambda c: (_month(c.from_date), c.id))
        if not ordered:
            return [(None, self.current)]
        line: list[tuple[date | None, MemberState]] = []
        for change in ordered:
            start = None if change.from_date is None else change.from_date.replace(day=1)
            if line and line[-1][0] == start:
                line[-1] = (start, change.state)  # two changes in one month: the later one holds it
            else:
                line.append((start, change.state))
        line[0] = (None, line[0][1])  # before the first change: the state it recorded
        if line[-1][1] is not self.current:  # the state now, set where no history is written: from that month
            line[-1] = (line[-1][0], self.current)
        return line

    def state_in(self, year: int, month: int) -> MemberState:
        """The state that holds the month."""
        first = date(year, month, 1)
        found = self.timeline()[0][1]
        for start, state in self.timeline():
            if start is None or start <= first:
                found = state
        return found

    def exempt_spans(self) -> list[tuple[date | None, date | None]]:
        """The exempt periods as [start, end) in days, month-aligned (None: open at that end)."""
        spans: list[tuple[date | None, date | None]] = []
        line = self.timeline()
        for i, (start, state) in enumerate(line):
            if state is not MemberState.EXEMPT:
                continue
            end = line[i + 1][0] if i + 1 < len(line) else None
            if spans and spans[-1][1] == start:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((start, end))
        return spans

    @property
    def ever_exempt(self) -> bool:
        return bool(self.exempt_spans())

    def last_scored_state(self, months: Sequence[tuple[int, int]]) -> MemberState | None:
        """The state in the last of ``months`` (the months the member was scored); None for none."""
        return self.state_in(*months[-1]) if months else None


def _month(day: date | None) -> tuple[int, int]:
    return (0, 0) if day is None else (day.year, day.month)


def scored(stints: Iterable[Stint], histories: Mapping[int, History]) -> tuple[Stint, ...]:
    """The stints with their member row's exempt months cut out: what ``bot.domain.town.months_of``
    counts as the months the member was scored. A row without a history (never exempt) is unchanged."""
    found: list[Stint] = []
    for stint in stints:
        history = histories.get(stint.member_id)
        if history is None:
            found.append(stint)
            continue
        pieces = [(stint.first, stint.last)]
        for start, end in history.exempt_spans():
            cut: list[tuple[date | None, date | None]] = []
            for first, last in pieces:
                before_last = None if start is None else start - timedelta(days=1)
                if start is not None and (first is None or first <= before_last):  # the part before the span
                    cut.append((first, before_last if last is None or last > before_last else last))
                if end is not None and (last is None or last >= end):  # the part after it
                    cut.append((end if first is None or first < end else first, last))
            pieces = cut
        found.extend(replace(stint, first=first, last=last) for first, last in pieces)
    return tuple(found)


def exempt_months(stints: Iterable[Stint], histories: Mapping[int, History], year: int,
                  today: date) -> set[tuple[int, int]]:
    """The months of ``year`` up to ``today`` the stints cover but no scored stint does: the months the
    member was exempt (a month of a move counts as scored if any row was scored in it)."""
    from bot.domain.town import months_of
    stints = tuple(stints)
    return set(months_of(stints, year, today)) - set(months_of(scored(stints, histories), year, today))


def drop_months(entries: Iterable, months: set[tuple[int, int]]) -> list:
    """The rows not dated in ``months`` (rows dated while exempt count nowhere)."""
    if not months:
        return list(entries)
    return [e for e in entries if (e.occurred_on.year, e.occurred_on.month) not in months]


def exempt_in(histories: Mapping[int, History], member_id: int, year: int, month: int) -> bool:
    """Whether the member row was exempt in the month (no history: never; see ``History.state_in``) — for
    whoever books a month's automatic rows (dues, meetings, assessment defaults)."""
    history = histories.get(member_id)
    return history is not None and history.state_in(year, month) is MemberState.EXEMPT


def month_arg(text: str) -> date | None:
    """``YYYY-MM`` or ``YYYY-MM-DD`` as the first day of that month; None when it is neither."""
    parts = text.strip().split("-")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts) or len(parts[0]) != 4:
        return None
    try:
        day = date(int(parts[0]), int(parts[1]), int(parts[2]) if len(parts) == 3 else 1)
    except ValueError:
        return None
    return day.replace(day=1)


__all__ = ["History", "StateChange", "drop_months", "exempt_in", "exempt_months", "month_arg", "scored"]
