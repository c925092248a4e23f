"""A member's state history (member_states, migration 0031; bot.domain.states reads it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from bot.domain.records import MemberState
from bot.domain.states import History, StateChange
from storage._util import utcnow
from storage.db import Connection

_COLUMNS = "m.id, m.state, s.id, s.state, s.from_date, s.reason"
# Only the rows that may cut a month: exempt now, or with a recorded change (a member never exempt and
# never changed has no history to read: the state now throughout).
_OF_BRANCH = (
    f"SELECT {_COLUMNS} FROM members m LEFT JOIN member_states s ON s.member_id = m.id"
    " WHERE m.branch_id = ? AND (m.state = 'exempt' OR s.id IS NOT NULL) ORDER BY m.id, s.id"
)


def _histories(rows) -> dict[int, History]:
    current: dict[int, MemberState] = {}
    changes: dict[int, list[StateChange]] = {}
    for member_id, state, change_id, change_state, from_date, reason in rows:
        current[member_id] = MemberState(state)
        found = changes.setdefault(member_id, [])
        if change_id is not None:
            found.append(StateChange(state=MemberState(change_state), id=change_id, reason=reason,
                                     from_date=date.fromisoformat(from_date) if from_date else None))
    return {m: History(current=current[m], changes=tuple(changes[m])) for m in current}


async def of_branch(conn: Connection, branch_id: int) -> dict[int, History]:
    """The histories of the branch's member rows that have one (exempt now, or a change recorded)."""
    async with conn.execute(_OF_BRANCH, (branch_id,)) as cursor:
        return _histories(await cursor.fetchall())


async def of_members(conn: Connection, member_ids: Sequence[int]) -> dict[int, History]:
    """``of_branch`` for given member rows (a member's chain: rows in other branches too)."""
    if not member_ids:
        return {}
    marks = ", ".join("?" for _ in member_ids)
    async with conn.execute(
        f"SELECT {_COLUMNS} FROM members m LEFT JOIN member_states s ON s.member_id = m.id"
        f" WHERE m.id IN ({marks}) AND (m.state = 'exempt' OR s.id IS NOT NULL) ORDER BY m.id, s.id",
        tuple(member_ids),
    ) as cursor:
        return _histories(await cursor.fetchall())


async def latest(conn: Connection, member_id: int) -> StateChange | None:
    async with conn.execute(
        "SELECT id, state, from_date, reason FROM member_states WHERE member_id = ? ORDER BY id DESC LIMIT 1", (member_id,)
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return None
    return StateChange(state=MemberState(row[1]), id=row[0], reason=row[3],
                       from_date=date.fromisoformat(row[2]) if row[2] else None)


async def record(conn: Connection, member_id: int, *, before: MemberState, before_reason: str | None,
                 state: MemberState, reason: str | None, from_date: date, set_by: int | None) -> None:
    """A change of state from ``from_date``. A member's first change first records the state they had
    until then (``before``, from the start: set_by NULL), so that the months before keep it."""
    now = utcnow()
    await conn.execute(
        "INSERT INTO member_states (member_id, state, reason, from_date, set_by, set_at)"
        " SELECT ?, ?, ?, NULL, NULL, ? WHERE NOT EXISTS (SELECT 1 FROM member_states WHERE member_id = ?)",
        (member_id, before.value, before_reason, now, member_id),
    )
    await conn.execute(
        "INSERT INTO member_states (member_id, state, reason, from_date, set_by, set_at) VALUES (?, ?, ?, ?, ?, ?)",
        (member_id, state.value, reason, from_date.isoformat(), set_by, now),
    )
