-- The public notice of a review period (公示), objections to its entries (异议), appeals (申诉)
-- and each member's confirmation of their period score (签字确认).

-- One notice per branch and period: posting it twice is impossible.
CREATE TABLE notices (
    id          INTEGER PRIMARY KEY,
    branch_id   INTEGER NOT NULL REFERENCES branches(id),
    period_key  TEXT NOT NULL,                    -- '2026-02', '2026-Q1'
    first_day   TEXT NOT NULL,                    -- branch-local dates of the period
    last_day    TEXT NOT NULL,
    due_at      TEXT NOT NULL,                    -- when it was due (UTC)
    posted_at   TEXT NOT NULL,                    -- when it was posted (UTC): the objection window opens
    closes_at   TEXT NOT NULL,                    -- posted_at + objection_days (UTC)
    late        INTEGER NOT NULL DEFAULT 0,       -- posted after its moment (the bot was down)
    UNIQUE (branch_id, period_key)
);

-- The ledger rows the notice published: what may be objected to.
CREATE TABLE notice_entries (
    notice_id   INTEGER NOT NULL REFERENCES notices(id),
    ledger_id   INTEGER NOT NULL REFERENCES ledger(id),
    member_id   INTEGER NOT NULL REFERENCES members(id),
    PRIMARY KEY (notice_id, ledger_id)
);
CREATE INDEX notice_entries_by_ledger ON notice_entries(ledger_id);

-- Each member in the notice, their published figures and their confirmation.
CREATE TABLE notice_members (
    notice_id   INTEGER NOT NULL REFERENCES notices(id),
    member_id   INTEGER NOT NULL REFERENCES members(id),
    score       TEXT NOT NULL,                    -- the period's figure as published
    year_score  TEXT NOT NULL,                    -- the year so far as published
    status      TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'confirmed', 'disputed')),
    answered_at TEXT,
    PRIMARY KEY (notice_id, member_id)
);

CREATE TABLE objections (
    id            INTEGER PRIMARY KEY,
    branch_id     INTEGER NOT NULL REFERENCES branches(id),
    notice_id     INTEGER NOT NULL REFERENCES notices(id),
    kind          TEXT NOT NULL CHECK (kind IN ('objection', 'dispute')),
    ledger_id     INTEGER REFERENCES ledger(id),   -- the entry objected to; NULL for a dispute of the score
    member_id     INTEGER NOT NULL REFERENCES members(id),  -- whose points
    objector_id   INTEGER NOT NULL REFERENCES members(id),
    target        TEXT NOT NULL,                  -- 'entry:<ledger id>' or 'score'
    reason        TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'open'
                  CHECK (status IN ('open', 'upheld', 'withdrawn', 'resolved')),
    decided_by    INTEGER REFERENCES members(id),
    decided_at    TEXT,
    reversal_id   INTEGER REFERENCES ledger(id),   -- the reversing row of a withdrawal
    appealed_by   INTEGER REFERENCES members(id),  -- an appeal upward (申诉): a flag and a record
    appealed_at   TEXT,
    appeal_reason TEXT,
    created_at    TEXT NOT NULL,
    UNIQUE (notice_id, objector_id, target)        -- one objection per person and entry
);
CREATE INDEX objections_open ON objections(branch_id, status);

-- Where an objection was shown to deciders, so every copy shows the decision.
CREATE TABLE objection_messages (
    objection_id INTEGER NOT NULL REFERENCES objections(id),
    chat_id      INTEGER NOT NULL,
    message_id   INTEGER NOT NULL,
    PRIMARY KEY (objection_id, chat_id, message_id)
);
