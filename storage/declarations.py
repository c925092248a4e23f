"""Declarations (申报) and their state machine: pending → approved | rejected | withdrawn."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from storage._util import row_dict, utcnow
from storage.db import Connection
from bot.domain.records import Branch, Declaration, Member, Role


def _declaration(row) -> Declaration:
    data = row_dict(row)
    data.pop("client_key", None)
    return Declaration(**data)


async def create(conn: Connection, *, branch_id: int, member_id: int, item_code: str, occurred_on: date, place: str,
                 description: str, photo_file_id: str | None, value: Decimal, client_key: str) -> tuple[Declaration, bool]:
    """Insert once per (member, client_key); returns (declaration, created_now)."""
    async with conn.execute(
        "INSERT INTO declarations (branch_id, member_id, item_code, occurred_on, place, description, photo_file_id, value,"
        " client_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (member_id, client_key) DO NOTHING RETURNING *",
        (branch_id, member_id, item_code, occurred_on.isoformat(), place, description, photo_file_id, str(value), client_key, utcnow()),
    ) as cursor:
        row = await cursor.fetchone()
    if row:
        return _declaration(row), True
    async with conn.execute("SELECT * FROM declarations WHERE member_id = ? AND client_key = ?", (member_id, client_key)) as cursor:
        row = await cursor.fetchone()
    return _declaration(row), False


async def by_id(conn: Connection, declaration_id: int) -> Declaration | None:
    async with conn.execute("SELECT * FROM declarations WHERE id = ?", (declaration_id,)) as cursor:
        row = await cursor.fetchone()
    return _declaration(row) if row else None


# --- what deciding a declaration reads: one statement ---------------------------------------------
#
# The declaration, its branch, its declarant, the presser's membership of that branch (if any) and the
# roles of both, as ``by_id`` + ``branches.by_id`` + ``members.by_id`` + ``members.by_user`` + two
# ``members.roles_of`` would read them (a role set as a bit mask: SUM(DISTINCT …) of one bit per role,
# portable to PostgreSQL; roles are matched by member id only, as roles_of does), and the copies of the
# card (``messages``: one row per copy, in (chat, message) order). The columns are the records' fields
# (the tables' other columns, e.g. members.created_at, are not read by those either).

_DECLARATION_FIELDS = tuple(Declaration.model_fields)
_BRANCH_FIELDS = tuple(Branch.model_fields)
_MEMBER_FIELDS = tuple(Member.model_fields)
_ROLE_BITS = {role: 1 << index for index, role in enumerate(Role)}
_ROLE_MASK = "(SELECT SUM(DISTINCT CASE r.role {}END) FROM roles r WHERE r.member_id = {}.id)".format(
    "".join(f"WHEN '{role.value}' THEN {bit} " for role, bit in _ROLE_BITS.items()), "{}")


def _columns(alias: str, fields: tuple[str, ...]) -> str:
    return ", ".join(f"{alias}.{field}" for field in fields)


_CONTEXT_SQL = (
    f"SELECT {_columns('d', _DECLARATION_FIELDS)}, {_columns('b', _BRANCH_FIELDS)}, {_columns('m', _MEMBER_FIELDS)},"
    f" {_columns('u', _MEMBER_FIELDS)}, {_ROLE_MASK.format('m')}, {_ROLE_MASK.format('u')}, dm.chat_id, dm.message_id"
    " FROM declarations d JOIN branches b ON b.id = d.branch_id JOIN members m ON m.id = d.member_id"
    " LEFT JOIN members u ON u.branch_id = d.branch_id AND u.user_id = ?"
    " LEFT JOIN declaration_messages dm ON dm.declaration_id = d.id"
    " WHERE d.id = ? ORDER BY dm.chat_id, dm.message_id"
)


@dataclass(frozen=True)
class DecisionContext:
    declaration: Declaration
    branch: Branch
    declarant: Member
    declarant_roles: frozenset[Role]
    decider: Member | None  # the presser's membership of the declaration's branch, if any
    decider_roles: frozenset[Role]
    messages: tuple[tuple[int, int], ...]  # (chat id, message id) of every copy of the card


def _roles(mask) -> frozenset[Role]:
    bits = int(mask or 0)
    return frozenset(role for role, bit in _ROLE_BITS.items() if bits & bit)


async def decision_context(conn: Connection, declaration_id: int, user_id: int) -> DecisionContext | None:
    """Everything deciding (or viewing to decide) a declaration reads, in one statement; None when the
    declaration does not exist."""
    async with conn.execute(_CONTEXT_SQL, (user_id, declaration_id)) as cursor:
        found = await cursor.fetchall()
    if not found:
        return None
    values = tuple(found[0])
    d, b, m = len(_DECLARATION_FIELDS), len(_BRANCH_FIELDS), len(_MEMBER_FIELDS)
    declarant_at, decider_at, roles_at = d + b, d + b + m, d + b + 2 * m
    decider = None
    if values[decider_at] is not None:  # members.id: NULL when the presser is no member of the branch
        decider = Member(**dict(zip(_MEMBER_FIELDS, values[decider_at:roles_at])))
    return DecisionContext(
        declaration=Declaration(**dict(zip(_DECLARATION_FIELDS, values[:d]))),
        branch=Branch(**dict(zip(_BRANCH_FIELDS, values[d:declarant_at]))),
        declarant=Member(**dict(zip(_MEMBER_FIELDS, values[declarant_at:decider_at]))),
        declarant_roles=_roles(values[roles_at]),
        decider=decider,
        decider_roles=_roles(values[roles_at + 1]),
        messages=tuple((int(row[-2]), int(row[-1])) for row in found if row[-2] is not None),
    )


async def decide(conn: Connection, declaration_id: int, *, status: str, value: Decimal | None, decided_by: int,
                 reason: str | None) -> Declaration | None:
    """pending → status, exactly once: the declaration as decided; None for the second of two taps,
    which changes nothing."""
    async with conn.execute(
        "UPDATE declarations SET status = ?, decided_value = ?, decided_by = ?, decided_at = ?, decision_reason = ?"
        " WHERE id = ? AND status = 'pending' RETURNING *",
        (status, None if value is None else str(value), decided_by, utcnow(), reason, declaration_id),
    ) as cursor:
        row = await cursor.fetchone()
    return _declaration(row) if row else None


async def pending(conn: Connection, branch_id: int, limit: int = 50) -> list[Declaration]:
    async with conn.execute(
        "SELECT * FROM declarations WHERE branch_id = ? AND status = 'pending' ORDER BY id LIMIT ?", (branch_id, limit)
    ) as cursor:
        return [_declaration(r) for r in await cursor.fetchall()]


async def count_pending(conn: Connection, branch_id: int) -> int:
    async with conn.execute("SELECT count(*) FROM declarations WHERE branch_id = ? AND status = 'pending'", (branch_id,)) as cursor:
        row = await cursor.fetchone()
    return int(row[0])


async def of_member(conn: Connection, member_id: int, limit: int = 20) -> list[Declaration]:
    async with conn.execute(
        "SELECT * FROM declarations WHERE member_id = ? ORDER BY id DESC LIMIT ?", (member_id, limit)
    ) as cursor:
        return [_declaration(r) for r in await cursor.fetchall()]


async def add_message(conn: Connection, declaration_id: int, chat_id: int, message_id: int) -> None:
    await conn.execute(
        "INSERT INTO declaration_messages (declaration_id, chat_id, message_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (declaration_id, chat_id, message_id),
    )


async def messages(conn: Connection, declaration_id: int) -> list[tuple[int, int]]:
    async with conn.execute(
        "SELECT chat_id, message_id FROM declaration_messages WHERE declaration_id = ?", (declaration_id,)
    ) as cursor:
        return [(int(r[0]), int(r[1])) for r in await cursor.fetchall()]


# --- publishing a decision: claimed in the decision's transaction, marked once shown ----------------


async def open_publication(conn: Connection, declaration_id: int) -> None:
    """In the decision's transaction: the decision is to be shown, claimed by this process now."""
    await conn.execute(
        "INSERT INTO decision_publications (declaration_id, claimed_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
        (declaration_id, utcnow()),
    )


async def mark_published(conn: Connection, declaration_id: int) -> bool:
    """The decision has been shown (or showing it was given up); False when it already was."""
    cursor = await conn.execute(
        "UPDATE decision_publications SET published_at = ? WHERE declaration_id = ? AND published_at IS NULL",
        (utcnow(), declaration_id),
    )
    return cursor.rowcount == 1


async def claim_unpublished(conn: Connection, claimed_before: str, limit: int) -> list[tuple[int, int | None]]:
    """Take over decisions still unpublished whose claim is older than ``claimed_before`` (their process
    died between the COMMIT and the showing): (declaration id, the decider's user id) of each one this
    call claimed. Conditional on the old claim, so two sweeping processes never take the same one."""
    async with conn.execute(
        "SELECT declaration_id FROM decision_publications WHERE published_at IS NULL AND claimed_at < ?"
        " ORDER BY claimed_at, declaration_id LIMIT ?",
        (claimed_before, limit),
    ) as cursor:
        stale = [int(row[0]) for row in await cursor.fetchall()]
    taken = []
    now = utcnow()
    for declaration_id in stale:
        async with conn.execute(
            "UPDATE decision_publications SET claimed_at = ? WHERE declaration_id = ? AND published_at IS NULL"
            " AND claimed_at < ? RETURNING (SELECT m.user_id FROM declarations d JOIN members m ON m.id = d.decided_by"
            " WHERE d.id = decision_publications.declaration_id)",
            (now, declaration_id, claimed_before),
        ) as cursor:
            row = await cursor.fetchone()
        if row is not None:
            taken.append((declaration_id, None if row[0] is None else int(row[0])))
    return taken


async def withdraw_pending_of_member(conn: Connection, member_id: int, reason: str) -> list[int]:
    """Every pending declaration of the member, withdrawn (a member removed for good: nobody is left to
    decide them for); the numbers withdrawn. Conditional on pending, so a card pressed meanwhile wins."""
    async with conn.execute(
        "UPDATE declarations SET status = 'withdrawn', decided_at = ?, decision_reason = ?"
        " WHERE member_id = ? AND status = 'pending' RETURNING id",
        (utcnow(), reason, member_id),
    ) as cursor:
        return sorted(int(r[0]) for r in await cursor.fetchall())
