-- The town's part in a branch's year (issue 6): appeals (申诉) that reach the town and its decisions,
-- the town's review of a branch's confirmed grades before the ≥ 7-day publicity, and the filing (备案)
-- of each finalised year. The town never writes a branch's ledger: a correction it orders is written
-- by the branch (town_appeals.correction_id names that row).

-- One appeal per objection: /appeal on a branch that belongs to a town puts it here (ON CONFLICT DO
-- NOTHING). open → upheld | correction_ordered → corrected (the branch wrote the correcting row).
CREATE TABLE town_appeals (
    id               INTEGER PRIMARY KEY,
    objection_id     INTEGER NOT NULL UNIQUE REFERENCES objections(id),
    branch_id        INTEGER NOT NULL REFERENCES branches(id),
    town_id          INTEGER NOT NULL REFERENCES towns(id),
    appellant_id     INTEGER NOT NULL REFERENCES members(id),
    reason           TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'upheld', 'correction_ordered', 'corrected')),
    decided_by       INTEGER,                          -- Telegram user id of the town administrator
    decided_at       TEXT,
    decision_reason  TEXT,
    target_ledger_id INTEGER REFERENCES ledger(id),    -- the row the ordered correction is about
    correction_kind  TEXT CHECK (correction_kind IN ('reverse', 'reinstate')),
    correction_id    INTEGER REFERENCES ledger(id),    -- the row the branch wrote (reference 'appeal:<id>')
    applied_by       INTEGER REFERENCES members(id),
    applied_at       TEXT,
    created_at       TEXT NOT NULL
);
CREATE INDEX town_appeals_by_town ON town_appeals(town_id, status);
CREATE INDEX town_appeals_by_branch ON town_appeals(branch_id, status);

-- The town's review of a branch's confirmed grades (before the publicity). Each confirmation is an
-- attempt; at most one attempt of a year waits at a time. pending → approved (round_id: the publicity
-- it started) | returned (reason: what to change) | stale (the figures changed before the decision).
CREATE TABLE year_reviews (
    id               INTEGER PRIMARY KEY,
    branch_id        INTEGER NOT NULL REFERENCES branches(id),
    town_id          INTEGER NOT NULL REFERENCES towns(id),
    year             INTEGER NOT NULL,
    attempt          INTEGER NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'approved', 'returned', 'stale')),
    tie_mask         INTEGER NOT NULL,                 -- the secretary's tie pick (as /grade's buttons carry it)
    fingerprint      TEXT NOT NULL,                    -- of the confirmed result: approval publishes exactly it
    result           TEXT NOT NULL,                    -- JSON: the confirmed result, as the town reviews it
    submitted_by     INTEGER NOT NULL REFERENCES members(id),
    submitted_at     TEXT NOT NULL,
    decided_by       INTEGER,                          -- Telegram user id of the town administrator
    decided_at       TEXT,
    reason           TEXT,                             -- why it was sent back
    round_id         INTEGER REFERENCES grade_rounds(id),
    UNIQUE (branch_id, year, attempt)
);
-- A double-tapped confirmation finds the waiting attempt (ON CONFLICT DO NOTHING).
CREATE UNIQUE INDEX year_reviews_waiting ON year_reviews(branch_id, year) WHERE status = 'pending';
CREATE INDEX year_reviews_by_town ON year_reviews(town_id, status);

-- Where a town card (an appeal, a review) was shown, so every administrator's copy shows the decision.
CREATE TABLE town_cards (
    kind             TEXT NOT NULL CHECK (kind IN ('appeal', 'review')),
    ref_id           INTEGER NOT NULL,
    chat_id          INTEGER NOT NULL,
    message_id       INTEGER NOT NULL,
    PRIMARY KEY (kind, ref_id, chat_id, message_id)
);

-- The filing (备案): each finalised round of a branch in a town, recorded with the finalisation. The
-- snapshot itself is grade_results (stage 'final'), never changed; a re-opened round stays filed as
-- history and its next finalisation files again.
CREATE TABLE town_filings (
    round_id         INTEGER PRIMARY KEY REFERENCES grade_rounds(id),
    branch_id        INTEGER NOT NULL REFERENCES branches(id),
    town_id          INTEGER NOT NULL REFERENCES towns(id),
    year             INTEGER NOT NULL,
    filed_at         TEXT NOT NULL
);
CREATE INDEX town_filings_by_town ON town_filings(town_id, year);
