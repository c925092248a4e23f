-- The higher organisation (镇党委 / 党总支): a town above branches. A branch belongs to at most one.
-- Town administrators are Telegram users named by the bot's operator (or by another administrator);
-- a branch joins a town with a one-time code its secretary gives to /setup.

CREATE TABLE towns (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    timezone        TEXT NOT NULL DEFAULT 'Asia/Shanghai',
    language        TEXT NOT NULL DEFAULT 'zh',
    created_by      INTEGER NOT NULL,                 -- Telegram user id (the operator or an administrator)
    created_at      TEXT NOT NULL
);

CREATE TABLE town_admins (
    town_id         INTEGER NOT NULL REFERENCES towns(id),
    user_id         INTEGER NOT NULL,                 -- Telegram user id
    name            TEXT,
    reachable       INTEGER NOT NULL DEFAULT 1,       -- 0 once the administrator blocked the bot
    added_by        INTEGER NOT NULL,                 -- Telegram user id
    added_at        TEXT NOT NULL,
    PRIMARY KEY (town_id, user_id)
);
CREATE INDEX town_admins_by_user ON town_admins(user_id);

-- One-time join codes: a code is used by one branch, once (used_by_branch set by a conditional update).
CREATE TABLE town_codes (
    code            TEXT PRIMARY KEY,
    town_id         INTEGER NOT NULL REFERENCES towns(id),
    created_by      INTEGER NOT NULL,                 -- Telegram user id
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    used_by_branch  INTEGER REFERENCES branches(id),
    used_at         TEXT
);

ALTER TABLE branches ADD COLUMN town_id INTEGER REFERENCES towns(id);
CREATE INDEX branches_by_town ON branches(town_id);
