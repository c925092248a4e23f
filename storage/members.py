"""Members of a branch and their roles."""

from __future__ import annotations

from storage._util import row_dict, utcnow
from storage.db import Connection
from bot.domain.records import Branch, Member, Role

PROFILE_FIELDS = ("sex", "birth_month", "ethnicity", "education", "party_joined_on", "health", "phone")


def _member(row) -> Member:
    data = row_dict(row)
    data.pop("created_at", None)
    return Member(**data)


async def by_id(conn: Connection, member_id: int) -> Member | None:
    async with conn.execute("SELECT * FROM members WHERE id = ?", (member_id,)) as cursor:
        row = await cursor.fetchone()
    return _member(row) if row else None


async def by_user(conn: Connection, branch_id: int, user_id: int) -> Member | None:
    async with conn.execute("SELECT * FROM members WHERE branch_id = ? AND user_id = ?", (branch_id, user_id)) as cursor:
        row = await cursor.fetchone()
    return _member(row) if row else None


# The columns of a branch and of a member row, as the models name them, for a statement that reads both.
_BRANCH_COLUMNS = tuple(Branch.model_fields)
_MEMBER_COLUMNS = tuple(Member.model_fields)
_MEMBERSHIPS = (
    "SELECT " + ", ".join(f"b.{c}" for c in _BRANCH_COLUMNS) + ", " + ", ".join(f"m.{c}" for c in _MEMBER_COLUMNS)
    + ", c.branch_id, EXISTS (SELECT 1 FROM member_transfers t JOIN members o ON o.id = t.member_id"
    " WHERE t.status = 'accepted' AND o.user_id = m.user_id)"
    " OR EXISTS (SELECT 1 FROM member_stays s JOIN members o ON o.id = s.member_id WHERE o.user_id = m.user_id)"
    " OR EXISTS (SELECT 1 FROM members o LEFT JOIN member_states x ON x.member_id = o.id"
    " WHERE o.user_id = m.user_id AND (o.state = 'exempt' OR x.state = 'exempt'))"
    " FROM members m JOIN branches b ON b.id = m.branch_id LEFT JOIN user_context c ON c.user_id = m.user_id"
    " WHERE m.user_id = ? AND m.status = 'approved' ORDER BY b.id"
)


async def memberships(conn: Connection, user_id: int) -> tuple[list[tuple[Branch, Member]], int | None, bool]:
    """The branches where this Telegram user is an approved member, in id order, each with the member
    row (``branches.for_user``, then ``by_user`` in each); the branch the user chose last
    (``branches.context``; None when not chosen, or when the user is in no branch); and whether the
    person ever moved between branches or came back to one (an accepted transfer of any of their rows,
    or a stay kept by a return through /join: False means ``storage.transfers.moves_of_person`` and
    ``stays_of_person`` of their rows are empty) or their months may be cut otherwise (the row is
    exempt, or was: ``storage.member_states``, any of the person's rows). One statement."""
    async with conn.execute(_MEMBERSHIPS, (user_id,)) as cursor:
        rows = await cursor.fetchall()
    split = len(_BRANCH_COLUMNS)
    found = []
    chosen, moved = None, False
    for row in rows:
        values = tuple(row)
        found.append((Branch(**dict(zip(_BRANCH_COLUMNS, values[:split]))),
                      Member(**dict(zip(_MEMBER_COLUMNS, values[split:-2])))))
        chosen, moved = values[-2], bool(values[-1])  # the same on every row: the user's
    return found, None if chosen is None else int(chosen), moved


async def by_username(conn: Connection, branch_id: int, username: str) -> Member | None:
    async with conn.execute(
        "SELECT * FROM members WHERE branch_id = ? AND lower(username) = lower(?)", (branch_id, username)
    ) as cursor:
        row = await cursor.fetchone()
    return _member(row) if row else None


async def unclaimed_by_name(conn: Connection, branch_id: int, name: str) -> Member | None:
    async with conn.execute(
        "SELECT * FROM members WHERE branch_id = ? AND user_id IS NULL AND name = ? AND status = 'approved' ORDER BY id LIMIT 1",
        (branch_id, name),
    ) as cursor:
        row = await cursor.fetchone()
    return _member(row) if row else None


async def request_join(conn: Connection, *, branch_id: int, user_id: int, username: str | None, name: str, language: str | None) -> Member:
    """A pending member row for this user; a repeated /join returns the row as it stands."""
    await conn.execute(
        "INSERT INTO members (branch_id, user_id, username, name, language, status, created_at)"
        " VALUES (?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT (branch_id, user_id) DO NOTHING",
        (branch_id, user_id, username, name, language, utcnow()),
    )
    # Someone refused or gone before may ask again.
    await conn.execute(
        "UPDATE members SET status = 'pending', name = ?, username = ? WHERE branch_id = ? AND user_id = ? AND status IN ('rejected', 'left')",
        (name, username, branch_id, user_id),
    )
    member = await by_user(conn, branch_id, user_id)
    assert member is not None
    return member


async def add_approved(conn: Connection, *, branch_id: int, name: str, joined_on: str, user_id: int | None = None,
                       username: str | None = None, language: str | None = None, state: str = "active",
                       state_reason: str | None = None, profile: dict[str, str | None] | None = None) -> Member:
    profile = {k: (profile or {}).get(k) for k in PROFILE_FIELDS}
    async with conn.execute(
        "INSERT INTO members (branch_id, user_id, username, name, language, status, state, state_reason, joined_on, created_at, "
        + ", ".join(PROFILE_FIELDS) + ") VALUES (?, ?, ?, ?, ?, 'approved', ?, ?, ?, ?, " + ", ".join("?" for _ in PROFILE_FIELDS) + ")"
        " RETURNING *",
        (branch_id, user_id, username, name, language, state, state_reason, joined_on, utcnow(), *profile.values()),
    ) as cursor:
        row = await cursor.fetchone()
    return _member(row)


async def approve(conn: Connection, member_id: int, joined_on: str) -> bool:
    """pending → approved from ``joined_on`` (the approval's day), once; False if it was not pending (a
    second tap). A member who had left (/remove, a transfer out: left_on set) comes back that day: their
    stay before is kept in member_stays (migration 0026), so that its months still count and the months
    away count nowhere. A row refused or voided before counted no month: it starts that day too."""
    await conn.execute(
        "INSERT INTO member_stays (member_id, branch_id, joined_on, left_on, recorded_at)"
        " SELECT id, branch_id, joined_on, left_on, ? FROM members WHERE id = ? AND status = 'pending' AND left_on IS NOT NULL"
        " ON CONFLICT DO NOTHING",
        (utcnow(), member_id),
    )
    cursor = await conn.execute(
        "UPDATE members SET status = 'approved', joined_on = ?, left_on = NULL WHERE id = ? AND status = 'pending'",
        (joined_on, member_id),
    )
    return cursor.rowcount == 1


async def reject(conn: Connection, member_id: int) -> bool:
    """pending → refused, once. A member who had left and asked to come back is left again (from the same
    day): their months there still count, as before they asked."""
    cursor = await conn.execute(
        "UPDATE members SET status = CASE WHEN left_on IS NULL THEN 'rejected' ELSE 'left' END WHERE id = ? AND status = 'pending'",
        (member_id,))
    return cursor.rowcount == 1


async def claim_roster_row(conn: Connection, *, pending_id: int, roster_id: int, user_id: int, username: str | None, language: str | None) -> bool:
    """Join a pending request to the roster row of the same person: the roster row keeps its history."""
    cursor = await conn.execute("DELETE FROM members WHERE id = ? AND status = 'pending'", (pending_id,))
    if cursor.rowcount != 1:
        return False
    cursor = await conn.execute(
        "UPDATE members SET user_id = ?, username = ?, language = ? WHERE id = ? AND user_id IS NULL",
        (user_id, username, language, roster_id),
    )
    return cursor.rowcount == 1


async def set_state(conn: Connection, member_id: int, state: str, reason: str | None) -> None:
    await conn.execute("UPDATE members SET state = ?, state_reason = ? WHERE id = ?", (state, reason, member_id))


async def set_left(conn: Connection, member_id: int, left_on: str) -> bool:
    cursor = await conn.execute("UPDATE members SET status = 'left', left_on = ? WHERE id = ? AND status = 'approved'", (left_on, member_id))
    return cursor.rowcount == 1


async def set_reachable(conn: Connection, member_id: int, reachable: bool) -> None:
    await conn.execute("UPDATE members SET reachable = ? WHERE id = ?", (int(reachable), member_id))


async def set_reachable_user(conn: Connection, user_id: int, reachable: bool) -> None:
    await conn.execute("UPDATE members SET reachable = ? WHERE user_id = ? AND reachable != ?", (int(reachable), user_id, int(reachable)))


async def refresh_identity(conn: Connection, member_id: int, username: str | None, language: str | None) -> None:
    await conn.execute(
        "UPDATE members SET username = ?, language = COALESCE(?, language) WHERE id = ?", (username, language, member_id)
    )


async def listing(conn: Connection, branch_id: int, statuses: tuple[str, ...] = ("approved",)) -> list[Member]:
    marks = ", ".join("?" for _ in statuses)
    async with conn.execute(
        f"SELECT * FROM members WHERE branch_id = ? AND status IN ({marks}) ORDER BY id", (branch_id, *statuses)
    ) as cursor:
        return [_member(r) for r in await cursor.fetchall()]


# --- roles ------------------------------------------------------------------------------------


async def grant(conn: Connection, branch_id: int, member_id: int, role: Role, granted_by: int | None) -> bool:
    cursor = await conn.execute(
        "INSERT INTO roles (branch_id, member_id, role, granted_by, granted_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (branch_id, member_id, role.value, granted_by, utcnow()),
    )
    return cursor.rowcount == 1


async def revoke(conn: Connection, branch_id: int, member_id: int, role: Role) -> bool:
    cursor = await conn.execute(
        "DELETE FROM roles WHERE branch_id = ? AND member_id = ? AND role = ?", (branch_id, member_id, role.value)
    )
    return cursor.rowcount == 1


async def roles_of(conn: Connection, member_id: int) -> set[Role]:
    async with conn.execute("SELECT role FROM roles WHERE member_id = ?", (member_id,)) as cursor:
        return {Role(r[0]) for r in await cursor.fetchall()}


async def holders(conn: Connection, branch_id: int, roles: tuple[Role, ...]) -> list[Member]:
    marks = ", ".join("?" for _ in roles)
    async with conn.execute(
        f"SELECT DISTINCT m.* FROM members m JOIN roles r ON r.member_id = m.id"
        f" WHERE r.branch_id = ? AND r.role IN ({marks}) AND m.status = 'approved' ORDER BY m.id",
        (branch_id, *(r.value for r in roles)),
    ) as cursor:
        return [_member(r) for r in await cursor.fetchall()]


async def roles_by_member(conn: Connection, branch_id: int) -> dict[int, set[Role]]:
    result: dict[int, set[Role]] = {}
    async with conn.execute("SELECT member_id, role FROM roles WHERE branch_id = ?", (branch_id,)) as cursor:
        for member_id, role in await cursor.fetchall():
            result.setdefault(member_id, set()).add(Role(role))
    return result
