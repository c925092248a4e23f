-- Rewards (issue 7; seed 001's 先锋指数积分卡 and 红色存折): a branch's catalog, members' redemptions, partner
-- merchants and their one-time codes, and the audit trail of all of it. Spending never touches the ledger:
-- the evaluation score is computed from the ledger alone, the redeemable balance from the ledger minus these.
-- Costs are decimal text (exact, never REAL); times are UTC ISO-8601 text.

-- Off until the secretary switches it on. carry_over: an unspent balance counts in the next year (default no:
-- the seeds reset points each year). show_balance: a merchant checking a code also sees the balance.
CREATE TABLE reward_settings (
    branch_id       INTEGER PRIMARY KEY REFERENCES branches(id),
    enabled         INTEGER NOT NULL DEFAULT 0,
    carry_over      INTEGER NOT NULL DEFAULT 0,
    show_balance    INTEGER NOT NULL DEFAULT 0,
    updated_by      INTEGER REFERENCES members(id),
    updated_at      TEXT NOT NULL
);

CREATE TABLE reward_items (
    id              INTEGER PRIMARY KEY,
    branch_id       INTEGER NOT NULL REFERENCES branches(id),
    name            TEXT NOT NULL,
    cost            TEXT NOT NULL,                    -- points, > 0
    stock           INTEGER CHECK (stock IS NULL OR stock >= 0),  -- NULL: unlimited
    photo_file_id   TEXT,
    active          INTEGER NOT NULL DEFAULT 1,
    created_by      INTEGER REFERENCES members(id),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX reward_items_by_branch ON reward_items(branch_id, active);

-- One row per member, written first in every redemption: the write makes two redemptions of one member
-- queue behind each other (a row lock in PostgreSQL; SQLite serialises writers anyway), so the balance a
-- redemption checks is the balance it spends from.
CREATE TABLE reward_wallets (
    member_id       INTEGER PRIMARY KEY REFERENCES members(id),
    version         INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE redemptions (
    id              INTEGER PRIMARY KEY,
    branch_id       INTEGER NOT NULL REFERENCES branches(id),
    member_id       INTEGER NOT NULL REFERENCES members(id),
    item_id         INTEGER NOT NULL REFERENCES reward_items(id),
    item_name       TEXT NOT NULL,                    -- as it was when redeemed
    cost            TEXT NOT NULL,                    -- as it was when redeemed
    status          TEXT NOT NULL DEFAULT 'reserved' CHECK (status IN ('reserved', 'handed_over', 'cancelled')),
    client_key      TEXT NOT NULL,                    -- the confirming press; a replay finds the same row
    created_at      TEXT NOT NULL,
    decided_by      INTEGER REFERENCES members(id),
    decided_at      TEXT,
    UNIQUE (member_id, client_key)
);
CREATE INDEX redemptions_by_branch ON redemptions(branch_id, status);
CREATE INDEX redemptions_by_member ON redemptions(member_id);

-- Where a redemption was shown to the keepers, so that every copy shows the decision.
CREATE TABLE redemption_messages (
    redemption_id   INTEGER NOT NULL REFERENCES redemptions(id),
    chat_id         INTEGER NOT NULL,
    message_id      INTEGER NOT NULL,
    PRIMARY KEY (redemption_id, chat_id, message_id)
);

CREATE TABLE merchants (
    id              INTEGER PRIMARY KEY,
    branch_id       INTEGER NOT NULL REFERENCES branches(id),
    user_id         INTEGER NOT NULL,                 -- Telegram user id
    name            TEXT NOT NULL,
    discount        TEXT NOT NULL,
    active          INTEGER NOT NULL DEFAULT 1,
    added_by        INTEGER REFERENCES members(id),
    added_at        TEXT NOT NULL
);
CREATE UNIQUE INDEX merchants_one_active ON merchants(branch_id, user_id) WHERE active = 1;
CREATE INDEX merchants_by_user ON merchants(user_id);

-- One-time codes a member shows a merchant. Only a hash is stored; a code works once (used_at set by a
-- conditional update) and until expires_at; a newer code of the same member retires the older ones.
CREATE TABLE merchant_codes (
    id              INTEGER PRIMARY KEY,
    branch_id       INTEGER NOT NULL REFERENCES branches(id),
    member_id       INTEGER NOT NULL REFERENCES members(id),
    code_hash       TEXT NOT NULL UNIQUE,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    retired         INTEGER NOT NULL DEFAULT 0,
    used_at         TEXT,
    merchant_id     INTEGER REFERENCES merchants(id)
);
CREATE INDEX merchant_codes_by_member ON merchant_codes(member_id);

-- Who did what and when: every reservation, hand-over, cancellation, code and verification (failures too:
-- they limit guessing), catalog, merchant and setting change. Append-only.
CREATE TABLE reward_audit (
    id              INTEGER PRIMARY KEY,
    branch_id       INTEGER REFERENCES branches(id),  -- NULL: a failed /verify that names no branch
    action          TEXT NOT NULL,
    actor_user_id   INTEGER NOT NULL,                 -- Telegram user id
    actor_member_id INTEGER REFERENCES members(id),
    member_id       INTEGER REFERENCES members(id),   -- whose points or code it concerns
    redemption_id   INTEGER REFERENCES redemptions(id),
    item_id         INTEGER REFERENCES reward_items(id),
    merchant_id     INTEGER REFERENCES merchants(id),
    code_id         INTEGER REFERENCES merchant_codes(id),
    detail          TEXT,
    at              TEXT NOT NULL
);
CREATE INDEX reward_audit_by_branch ON reward_audit(branch_id, at);
CREATE INDEX reward_audit_by_actor ON reward_audit(actor_user_id, action, at);

CREATE TRIGGER reward_audit_no_update BEFORE UPDATE ON reward_audit
BEGIN SELECT RAISE(ABORT, 'reward audit is append-only'); END;
CREATE TRIGGER reward_audit_no_delete BEFORE DELETE ON reward_audit
BEGIN SELECT RAISE(ABORT, 'reward audit is append-only'); END;
