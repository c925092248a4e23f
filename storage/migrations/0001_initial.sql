-- The spine: branches, members, roles, declarations and the append-only ledger.
-- Times are UTC ISO-8601 text; points are decimal text (exact, never REAL).

CREATE TABLE branches (
    id              INTEGER PRIMARY KEY,
    chat_id         INTEGER NOT NULL UNIQUE,          -- the group chat; one branch per group
    title           TEXT NOT NULL,
    preset          TEXT NOT NULL,                    -- rulebook preset code
    custom_items    TEXT NOT NULL DEFAULT '[]',       -- JSON list of the branch's own items
    timezone        TEXT NOT NULL DEFAULT 'Asia/Shanghai',
    language        TEXT NOT NULL DEFAULT 'zh',
    reachable       INTEGER NOT NULL DEFAULT 1,
    created_by      INTEGER NOT NULL,                 -- Telegram user id
    created_at      TEXT NOT NULL
);

CREATE TABLE members (
    id              INTEGER PRIMARY KEY,
    branch_id       INTEGER NOT NULL REFERENCES branches(id),
    user_id         INTEGER,                          -- NULL for a roster row nobody has claimed yet
    username        TEXT,
    name            TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'   -- pending (asked to join), approved, rejected, left
                    CHECK (status IN ('pending', 'approved', 'rejected', 'left')),
    state           TEXT NOT NULL DEFAULT 'active'
                    CHECK (state IN ('active', 'probationary', 'exempt', 'migrant')),
    state_reason    TEXT,
    joined_on       TEXT,                             -- first day in the branch (branch-local date)
    left_on         TEXT,
    language        TEXT,                             -- from Telegram, for private messages
    reachable       INTEGER NOT NULL DEFAULT 1,       -- 0 once the member blocked the bot
    -- the seed's record sheet (附件2)
    sex             TEXT,
    birth_month     TEXT,
    ethnicity       TEXT,
    education       TEXT,
    party_joined_on TEXT,
    health          TEXT,
    phone           TEXT,
    created_at      TEXT NOT NULL,
    UNIQUE (branch_id, user_id)
);
CREATE INDEX members_by_user ON members(user_id);

CREATE TABLE roles (
    branch_id       INTEGER NOT NULL REFERENCES branches(id),
    member_id       INTEGER NOT NULL REFERENCES members(id),
    role            TEXT NOT NULL CHECK (role IN ('secretary', 'deputy', 'recorder', 'supervisor')),
    granted_by      INTEGER,
    granted_at      TEXT NOT NULL,
    PRIMARY KEY (branch_id, member_id, role)
);

CREATE TABLE declarations (
    id              INTEGER PRIMARY KEY,
    branch_id       INTEGER NOT NULL REFERENCES branches(id),
    member_id       INTEGER NOT NULL REFERENCES members(id),
    item_code       TEXT NOT NULL,
    occurred_on     TEXT NOT NULL,
    place           TEXT NOT NULL,
    description     TEXT NOT NULL,
    photo_file_id   TEXT,
    value           TEXT NOT NULL,                    -- what the item gives as declared
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'approved', 'rejected', 'withdrawn')),
    decided_value   TEXT,
    decided_by      INTEGER REFERENCES members(id),
    decided_at      TEXT,
    decision_reason TEXT,
    client_key      TEXT NOT NULL,                    -- the confirming press; a replay finds the same row
    created_at      TEXT NOT NULL,
    UNIQUE (member_id, client_key)
);
CREATE INDEX declarations_pending ON declarations(branch_id, status);

-- Where a declaration was shown to deciders, so every copy shows the decision.
CREATE TABLE declaration_messages (
    declaration_id  INTEGER NOT NULL REFERENCES declarations(id),
    chat_id         INTEGER NOT NULL,
    message_id      INTEGER NOT NULL,
    PRIMARY KEY (declaration_id, chat_id, message_id)
);

CREATE TABLE ledger (
    id              INTEGER PRIMARY KEY,
    branch_id       INTEGER NOT NULL REFERENCES branches(id),
    member_id       INTEGER NOT NULL REFERENCES members(id),
    item_code       TEXT NOT NULL,
    event_code      TEXT,
    value           TEXT NOT NULL,
    occurred_on     TEXT NOT NULL,                    -- branch-local date: decides the period
    source          TEXT NOT NULL CHECK (source IN ('declaration', 'recorder', 'automatic', 'correction')),
    reference       TEXT NOT NULL,                    -- e.g. 'decl:12'; with source and member, unique
    actor_id        INTEGER REFERENCES members(id),
    reason          TEXT,
    reverses_id     INTEGER UNIQUE REFERENCES ledger(id),
    created_at      TEXT NOT NULL,
    UNIQUE (branch_id, source, reference, member_id)
);
CREATE INDEX ledger_by_member ON ledger(member_id, occurred_on);

-- Append-only: corrections are reversing rows, never edits.
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;

-- Which branch a user's private chat is about (set by a deep link or /branch).
CREATE TABLE user_context (
    user_id         INTEGER PRIMARY KEY,
    branch_id       INTEGER NOT NULL REFERENCES branches(id),
    updated_at      TEXT NOT NULL
);
