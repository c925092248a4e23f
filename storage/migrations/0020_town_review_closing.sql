-- A waiting town item can end without the town's decision (issue 6, the town-review fixes):
-- - year_reviews 'withdrawn': the branch's secretary took back a submission still waiting (so nothing
--   stays stuck when no administrator could be reached); decided_by is then the secretary's Telegram id;
-- - year_reviews 'closed' and town_appeals 'closed': the branch left the town before the town decided
--   (the detach closes them in its transaction; decided_at says when, decided_by stays NULL).
-- A CHECK cannot be changed in place in SQLite: each table is rebuilt with the same rows and ids, and its
-- indexes made again. The PostgreSQL twin moves the rebuilt tables' id sequences past the copied ids.

CREATE TABLE town_appeals_new (
    id               INTEGER PRIMARY KEY,
    objection_id     INTEGER NOT NULL UNIQUE REFERENCES objections(id),
    branch_id        INTEGER NOT NULL REFERENCES branches(id),
    town_id          INTEGER NOT NULL REFERENCES towns(id),
    appellant_id     INTEGER NOT NULL REFERENCES members(id),
    reason           TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'upheld', 'correction_ordered', 'corrected', 'closed')),
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
INSERT INTO town_appeals_new (id, objection_id, branch_id, town_id, appellant_id, reason, status, decided_by,
                              decided_at, decision_reason, target_ledger_id, correction_kind, correction_id,
                              applied_by, applied_at, created_at)
    SELECT id, objection_id, branch_id, town_id, appellant_id, reason, status, decided_by, decided_at,
           decision_reason, target_ledger_id, correction_kind, correction_id, applied_by, applied_at, created_at
    FROM town_appeals;
DROP TABLE town_appeals;
ALTER TABLE town_appeals_new RENAME TO town_appeals;
CREATE INDEX town_appeals_by_town ON town_appeals(town_id, status);
CREATE INDEX town_appeals_by_branch ON town_appeals(branch_id, status);

CREATE TABLE year_reviews_new (
    id               INTEGER PRIMARY KEY,
    branch_id        INTEGER NOT NULL REFERENCES branches(id),
    town_id          INTEGER NOT NULL REFERENCES towns(id),
    year             INTEGER NOT NULL,
    attempt          INTEGER NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'approved', 'returned', 'stale', 'withdrawn', 'closed')),
    tie_mask         INTEGER NOT NULL,                 -- the secretary's tie pick (as /grade's buttons carry it)
    fingerprint      TEXT NOT NULL,                    -- of the confirmed result: approval publishes exactly it
    result           TEXT NOT NULL,                    -- JSON: the confirmed result, as the town reviews it
    submitted_by     INTEGER NOT NULL REFERENCES members(id),
    submitted_at     TEXT NOT NULL,
    decided_by       INTEGER,                          -- Telegram user id: the administrator, or the secretary who withdrew
    decided_at       TEXT,
    reason           TEXT,                             -- why it was sent back
    round_id         INTEGER REFERENCES grade_rounds(id),
    UNIQUE (branch_id, year, attempt)
);
INSERT INTO year_reviews_new (id, branch_id, town_id, year, attempt, status, tie_mask, fingerprint, result,
                              submitted_by, submitted_at, decided_by, decided_at, reason, round_id)
    SELECT id, branch_id, town_id, year, attempt, status, tie_mask, fingerprint, result, submitted_by,
           submitted_at, decided_by, decided_at, reason, round_id
    FROM year_reviews;
DROP TABLE year_reviews;
ALTER TABLE year_reviews_new RENAME TO year_reviews;
CREATE UNIQUE INDEX year_reviews_waiting ON year_reviews(branch_id, year) WHERE status = 'pending';
CREATE INDEX year_reviews_by_town ON year_reviews(town_id, status);
