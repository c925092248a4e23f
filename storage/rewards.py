"""Rewards: settings, the catalog, redemptions, partner merchants, one-time codes and the audit trail.

Every change is a conditional statement (stock > 0, status = 'reserved', used_at IS NULL …): a repeat or a
race changes nothing the second time, and the caller learns so from the row count or the returned row.
"""

from __future__ import annotations

from decimal import Decimal

from bot.domain.rewards import Merchant, Redemption, RewardItem, RewardSettings
from storage._util import row_dict, utcnow
from storage.db import Connection


def _item(row) -> RewardItem:
    data = row_dict(row)
    return RewardItem(id=data["id"], branch_id=data["branch_id"], name=data["name"], cost=Decimal(data["cost"]),
                      stock=data["stock"], photo_file_id=data["photo_file_id"], active=bool(data["active"]))


def _redemption(row) -> Redemption:
    data = row_dict(row)
    data.pop("client_key", None)
    return Redemption(**data)


def _merchant(row) -> Merchant:
    data = row_dict(row)
    return Merchant(id=data["id"], branch_id=data["branch_id"], user_id=data["user_id"], name=data["name"],
                    discount=data["discount"], active=bool(data["active"]))


# --- settings -----------------------------------------------------------------------------------------


async def settings(conn: Connection, branch_id: int) -> RewardSettings:
    async with conn.execute("SELECT enabled, carry_over, show_balance, code_minutes FROM reward_settings WHERE branch_id = ?",
                            (branch_id,)) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return RewardSettings()
    return RewardSettings(enabled=bool(row[0]), carry_over=bool(row[1]), show_balance=bool(row[2]), code_minutes=int(row[3]))


SETTING_COLUMNS = ("enabled", "carry_over", "show_balance", "code_minutes")  # the only names set_setting puts into SQL


async def set_setting(conn: Connection, branch_id: int, field: str, value: int, by: int) -> bool:
    """Set one option to ``value``; False when it already had it (a repeated press changes nothing)."""
    if field not in SETTING_COLUMNS:
        raise ValueError(f"not a reward setting: {field}")
    await conn.execute("INSERT INTO reward_settings (branch_id, updated_at) VALUES (?, ?) ON CONFLICT (branch_id) DO NOTHING",
                       (branch_id, utcnow()))
    async with conn.execute(
        f"UPDATE reward_settings SET {field} = ?, updated_by = ?, updated_at = ? WHERE branch_id = ? AND {field} <> ?"
        " RETURNING branch_id",
        (value, by, utcnow(), branch_id, value),
    ) as cursor:
        return await cursor.fetchone() is not None


# --- the catalog ----------------------------------------------------------------------------------------


async def add_item(conn: Connection, *, branch_id: int, name: str, cost: Decimal, stock: int | None,
                   photo_file_id: str | None, by: int) -> RewardItem:
    now = utcnow()
    async with conn.execute(
        "INSERT INTO reward_items (branch_id, name, cost, stock, photo_file_id, created_by, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        (branch_id, name, str(cost), stock, photo_file_id, by, now, now),
    ) as cursor:
        row = await cursor.fetchone()
    return _item(row)


KEEP = object()  # update_item: leave the stock as it is


async def update_item(conn: Connection, item_id: int, branch_id: int, *, name: str, cost: Decimal, stock: int | None | object,
                      photo_file_id: str | None) -> RewardItem | None:
    """Change an item; with ``stock=KEEP`` the stock is not written (redemptions may have taken some since the
    secretary saw it)."""
    stock_set, stock_args = ("", ()) if stock is KEEP else (", stock = ?", (stock,))
    async with conn.execute(
        f"UPDATE reward_items SET name = ?, cost = ?{stock_set}, photo_file_id = ?, updated_at = ?"
        " WHERE id = ? AND branch_id = ? RETURNING *",
        (name, str(cost), *stock_args, photo_file_id, utcnow(), item_id, branch_id),
    ) as cursor:
        row = await cursor.fetchone()
    return _item(row) if row else None


async def set_item_active(conn: Connection, item_id: int, branch_id: int, active: bool) -> RewardItem | None:
    """None when the item is not the branch's or already in that state."""
    async with conn.execute(
        "UPDATE reward_items SET active = ?, updated_at = ? WHERE id = ? AND branch_id = ? AND active = ? RETURNING *",
        (int(active), utcnow(), item_id, branch_id, int(not active)),
    ) as cursor:
        row = await cursor.fetchone()
    return _item(row) if row else None


async def item(conn: Connection, item_id: int) -> RewardItem | None:
    async with conn.execute("SELECT * FROM reward_items WHERE id = ?", (item_id,)) as cursor:
        row = await cursor.fetchone()
    return _item(row) if row else None


async def items(conn: Connection, branch_id: int, *, active_only: bool) -> list[RewardItem]:
    sql = "SELECT * FROM reward_items WHERE branch_id = ?" + (" AND active = 1" if active_only else "") + " ORDER BY id"
    async with conn.execute(sql, (branch_id,)) as cursor:
        return [_item(r) for r in await cursor.fetchall()]


async def take_stock(conn: Connection, item_id: int, branch_id: int) -> RewardItem | None:
    """One taken from an active item that has any (unlimited: always); None when there is none left."""
    async with conn.execute(
        "UPDATE reward_items SET stock = CASE WHEN stock IS NULL THEN NULL ELSE stock - 1 END"
        " WHERE id = ? AND branch_id = ? AND active = 1 AND (stock IS NULL OR stock > 0) RETURNING *",
        (item_id, branch_id),
    ) as cursor:
        row = await cursor.fetchone()
    return _item(row) if row else None


async def return_stock(conn: Connection, item_id: int) -> None:
    await conn.execute("UPDATE reward_items SET stock = stock + 1 WHERE id = ? AND stock IS NOT NULL", (item_id,))


# --- redemptions ----------------------------------------------------------------------------------------


async def lock_wallet(conn: Connection, member_id: int) -> None:
    """Queue this member's redemptions behind each other (see migration 0016)."""
    await conn.execute(
        "INSERT INTO reward_wallets (member_id, version) VALUES (?, 1)"
        " ON CONFLICT (member_id) DO UPDATE SET version = reward_wallets.version + 1",
        (member_id,),
    )


async def redemption_by_key(conn: Connection, member_id: int, client_key: str) -> Redemption | None:
    async with conn.execute("SELECT * FROM redemptions WHERE member_id = ? AND client_key = ?",
                            (member_id, client_key)) as cursor:
        row = await cursor.fetchone()
    return _redemption(row) if row else None


async def add_redemption(conn: Connection, *, branch_id: int, member_id: int, item: RewardItem, client_key: str) -> Redemption | None:
    """None when this press was already taken (the unique client key)."""
    async with conn.execute(
        "INSERT INTO redemptions (branch_id, member_id, item_id, item_name, cost, client_key, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (member_id, client_key) DO NOTHING RETURNING *",
        (branch_id, member_id, item.id, item.name, str(item.cost), client_key, utcnow()),
    ) as cursor:
        row = await cursor.fetchone()
    return _redemption(row) if row else None


async def decide_redemption(conn: Connection, redemption_id: int, status: str, by: int) -> Redemption | None:
    """Only a reserved redemption is handed over or cancelled; None when it no longer is (a double tap)."""
    async with conn.execute(
        "UPDATE redemptions SET status = ?, decided_by = ?, decided_at = ? WHERE id = ? AND status = 'reserved' RETURNING *",
        (status, by, utcnow(), redemption_id),
    ) as cursor:
        row = await cursor.fetchone()
    return _redemption(row) if row else None


async def redemption(conn: Connection, redemption_id: int) -> Redemption | None:
    async with conn.execute("SELECT * FROM redemptions WHERE id = ?", (redemption_id,)) as cursor:
        row = await cursor.fetchone()
    return _redemption(row) if row else None


async def redemptions_of_member(conn: Connection, member_id: int) -> list[Redemption]:
    async with conn.execute("SELECT * FROM redemptions WHERE member_id = ? ORDER BY id", (member_id,)) as cursor:
        return [_redemption(r) for r in await cursor.fetchall()]


async def redemptions_of_branch(conn: Connection, branch_id: int, status: str | None = None) -> list[Redemption]:
    sql = "SELECT * FROM redemptions WHERE branch_id = ?" + (" AND status = ?" if status else "") + " ORDER BY id"
    async with conn.execute(sql, (branch_id, status) if status else (branch_id,)) as cursor:
        return [_redemption(r) for r in await cursor.fetchall()]


async def remember_message(conn: Connection, redemption_id: int, chat_id: int, message_id: int) -> None:
    await conn.execute(
        "INSERT INTO redemption_messages (redemption_id, chat_id, message_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (redemption_id, chat_id, message_id),
    )


async def messages(conn: Connection, redemption_id: int) -> list[tuple[int, int]]:
    async with conn.execute("SELECT chat_id, message_id FROM redemption_messages WHERE redemption_id = ?",
                            (redemption_id,)) as cursor:
        return [(int(r[0]), int(r[1])) for r in await cursor.fetchall()]


# --- merchants and codes ----------------------------------------------------------------------------------


async def add_merchant(conn: Connection, *, branch_id: int, user_id: int, name: str, discount: str, by: int) -> Merchant | None:
    """None when this user is already an active merchant of the branch."""
    async with conn.execute(
        "INSERT INTO merchants (branch_id, user_id, name, discount, added_by, added_at) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING RETURNING *",
        (branch_id, user_id, name, discount, by, utcnow()),
    ) as cursor:
        row = await cursor.fetchone()
    return _merchant(row) if row else None


async def deactivate_merchant(conn: Connection, merchant_id: int, branch_id: int) -> Merchant | None:
    async with conn.execute(
        "UPDATE merchants SET active = 0 WHERE id = ? AND branch_id = ? AND active = 1 RETURNING *", (merchant_id, branch_id)
    ) as cursor:
        row = await cursor.fetchone()
    return _merchant(row) if row else None


async def merchants(conn: Connection, branch_id: int) -> list[Merchant]:
    async with conn.execute("SELECT * FROM merchants WHERE branch_id = ? AND active = 1 ORDER BY id", (branch_id,)) as cursor:
        return [_merchant(r) for r in await cursor.fetchall()]


async def merchant_names(conn: Connection, branch_id: int) -> dict[int, str]:
    """Telegram id → name of every merchant the branch ever registered (removed ones too: the audit trail
    names them; registered again under another name: the latest)."""
    async with conn.execute("SELECT user_id, name FROM merchants WHERE branch_id = ? ORDER BY id", (branch_id,)) as cursor:
        return {r[0]: r[1] for r in await cursor.fetchall()}


async def merchant_roles(conn: Connection, user_id: int) -> list[Merchant]:
    async with conn.execute("SELECT * FROM merchants WHERE user_id = ? AND active = 1 ORDER BY id", (user_id,)) as cursor:
        return [_merchant(r) for r in await cursor.fetchall()]


async def known_user(conn: Connection, username: str, branch_id: int) -> tuple[int, str] | None:
    """(Telegram id, name) of @username among the people a branch's secretary may look up: a member of that
    branch, or a user already registered as a partner merchant (of any branch: a shop that shows its
    codes' holders; named by its shop name, nothing said about its owner's membership elsewhere). Members of
    other branches stay unknown — their Telegram ids and names are not this secretary's to learn."""
    async with conn.execute(
        "SELECT user_id, name FROM members WHERE branch_id = ? AND lower(username) = lower(?) AND user_id IS NOT NULL"
        " ORDER BY id DESC LIMIT 1",
        (branch_id, username),
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        async with conn.execute(
            "SELECT m.user_id, s.name FROM members m JOIN merchants s ON s.user_id = m.user_id AND s.active = 1"
            " WHERE lower(m.username) = lower(?) ORDER BY s.id DESC LIMIT 1",
            (username,),
        ) as cursor:
            row = await cursor.fetchone()
    return (int(row[0]), str(row[1])) if row else None


async def add_code(conn: Connection, *, branch_id: int, member_id: int, code_hash: str, expires_at: str) -> int:
    """A new code; the member's earlier unused codes are retired (one valid code at a time)."""
    await conn.execute("UPDATE merchant_codes SET retired = 1 WHERE member_id = ? AND used_at IS NULL AND retired = 0",
                       (member_id,))
    async with conn.execute(
        "INSERT INTO merchant_codes (branch_id, member_id, code_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
        (branch_id, member_id, code_hash, utcnow(), expires_at),
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0])


async def use_code(conn: Connection, code_hash: str, merchant_ids: dict[int, int], now: str) -> tuple[int, int, int] | None:
    """Use a valid code of one of the branches in ``merchant_ids`` (branch id -> the merchant's row there)
    once: (code id, branch id, member id); None when the code is unknown, of another branch, expired,
    retired or used — the one conditional update decides, the second only names the merchant."""
    if not merchant_ids:
        return None
    marks = ", ".join("?" for _ in merchant_ids)
    async with conn.execute(
        f"UPDATE merchant_codes SET used_at = ? WHERE code_hash = ? AND branch_id IN ({marks})"
        " AND used_at IS NULL AND retired = 0 AND expires_at > ? RETURNING id, branch_id, member_id",
        (now, code_hash, *merchant_ids, now),
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return None
    code_id, branch_id, member_id = int(row[0]), int(row[1]), int(row[2])
    await conn.execute("UPDATE merchant_codes SET merchant_id = ? WHERE id = ?", (merchant_ids[branch_id], code_id))
    return code_id, branch_id, member_id


async def code_state(conn: Connection, code_hash: str) -> dict | None:
    """Why a code did not work (used, expired, retired), for the message; None when no such code."""
    async with conn.execute("SELECT branch_id, used_at, expires_at, retired FROM merchant_codes WHERE code_hash = ?",
                            (code_hash,)) as cursor:
        row = await cursor.fetchone()
    return row_dict(row) if row else None


# --- the audit trail --------------------------------------------------------------------------------------


async def audit(conn: Connection, *, action: str, actor_user_id: int, branch_id: int | None = None,
                actor_member_id: int | None = None, member_id: int | None = None, redemption_id: int | None = None,
                item_id: int | None = None, merchant_id: int | None = None, code_id: int | None = None,
                detail: str | None = None) -> None:
    await conn.execute(
        "INSERT INTO reward_audit (branch_id, action, actor_user_id, actor_member_id, member_id, redemption_id, item_id,"
        " merchant_id, code_id, detail, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (branch_id, action, actor_user_id, actor_member_id, member_id, redemption_id, item_id, merchant_id, code_id,
         detail, utcnow()),
    )


async def failures_since(conn: Connection, actor_user_id: int, since: str) -> int:
    async with conn.execute(
        "SELECT count(*) FROM reward_audit WHERE actor_user_id = ? AND action = 'verify_failed' AND at > ?",
        (actor_user_id, since),
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0])


async def audit_of_branch(conn: Connection, branch_id: int) -> list[dict]:
    async with conn.execute("SELECT * FROM reward_audit WHERE branch_id = ? ORDER BY id", (branch_id,)) as cursor:
        return [row_dict(r) for r in await cursor.fetchall()]
