-- An appeal closed because its branch left the town can be made again (issue 6, the town-review fixes).
-- Until now town_appeals.objection_id was UNIQUE: one appeal per objection for good, so an appeal the
-- detach closed ('closed', the town never decided it) blocked any later one, and the objection kept its
-- appealed_* flag, so /appeal refused ("already appealed").
--
-- The rule from here on:
-- - an objection has at most one live appeal (open, upheld, correction_ordered or corrected) — the
--   partial unique index below, so a double tap or a redelivered /appeal adds nothing (ON CONFLICT DO
--   NOTHING); a town's decision is final, so a decided appeal still blocks another;
-- - closed appeals are history: any number of them, each row kept as it was;
-- - when the detach closes an appeal, the objection's appealed_* flag is cleared in the same transaction
--   (storage.town_review.reopen_objections), so the objector or the member concerned may /appeal again:
--   to the town the branch is in by then (a new row), or as a branch without a town (the flag alone).
--   Who appealed, why and when stays in the closed town_appeals row.
--
-- A UNIQUE cannot be dropped in place in SQLite: the table is rebuilt with the same rows and ids, its
-- indexes made again (as 0020 did). The PostgreSQL twin moves the rebuilt table's id sequence past the
-- copied ids. The objections whose appeal a detach already closed get their flag cleared here too.

CREATE TABLE town_appeals_0023 (
    id               INTEGER PRIMARY KEY,
    objection_id     INTEGER NOT NULL REFERENCES objections(id),
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
INSERT INTO town_appeals_0023 (id, objection_id, branch_id, town_id, appellant_id, reason, status, decided_by,
                               decided_at, decision_reason, target_ledger_id, correction_kind, correction_id,
                               applied_by, applied_at, created_at)
    SELECT id, objection_id, branch_id, town_id, appellant_id, reason, status, decided_by, decided_at,
           decision_reason, target_ledger_id, correction_kind, correction_id, applied_by, applied_at, created_at
    FROM town_appeals;
DROP TABLE town_appeals;
ALTER TABLE town_appeals_0023 RENAME TO town_appeals;
CREATE INDEX town_appeals_by_town ON town_appeals(town_id, status);
CREATE INDEX town_appeals_by_branch ON town_appeals(branch_id, status);
-- One live appeal per objection; closed ones (any number) are history.
CREATE UNIQUE INDEX town_appeals_live ON town_appeals(objection_id) WHERE status != 'closed';
CREATE INDEX town_appeals_by_objection ON town_appeals(objection_id, id);

-- Appeals closed by a detach before this migration: their objections may be appealed again.
UPDATE objections SET appealed_by = NULL, appealed_at = NULL, appeal_reason = NULL
    WHERE appealed_at IS NOT NULL
      AND id IN (SELECT objection_id FROM town_appeals WHERE status = 'closed')
      AND id NOT IN (SELECT objection_id FROM town_appeals WHERE status != 'closed');
