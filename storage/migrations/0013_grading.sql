-- Year-end grading (评定/定级): each round of a year's results (the annual publicity, then final), the
-- results as published and as finalised (the snapshot later reports read), the year's lock and the
-- logged re-openings.

-- A round: confirmed by the secretary (publicity, with its notice and objection window), finalised
-- after the window (final: the year is locked), possibly re-opened later (reopened: history; a new
-- round is needed). At most one round of a year is not re-opened.
CREATE TABLE grade_rounds (
    id             INTEGER PRIMARY KEY,
    branch_id      INTEGER NOT NULL REFERENCES branches(id),
    year           INTEGER NOT NULL,
    round          INTEGER NOT NULL,                 -- 1, 2 after a re-open, …
    status         TEXT NOT NULL DEFAULT 'publicity' CHECK (status IN ('publicity', 'final', 'reopened')),
    rulebook_code  TEXT NOT NULL,
    tie_choice     TEXT NOT NULL DEFAULT '[]',       -- JSON: the member ids the secretary put in the quota band
    notice_id      INTEGER NOT NULL REFERENCES notices(id),  -- the annual publicity notice (公示) and its window
    publicity_days INTEGER NOT NULL,                 -- max(7, the rulebook's publicity_days)
    published      TEXT NOT NULL,                    -- JSON: the published result's summary (distribution, quota, tie)
    published_upto INTEGER NOT NULL,                 -- the last ledger row the published result saw
    confirmed_by   INTEGER NOT NULL REFERENCES members(id),
    confirmed_at   TEXT NOT NULL,
    final          TEXT,                             -- JSON: the final result's summary
    final_upto     INTEGER,
    finalised_by   INTEGER REFERENCES members(id),
    finalised_at   TEXT,
    UNIQUE (branch_id, year, round)
);
-- A double-tapped confirmation finds the round already there (ON CONFLICT DO NOTHING).
CREATE UNIQUE INDEX grade_rounds_current ON grade_rounds(branch_id, year) WHERE status != 'reopened';

-- Each member's line, as published and as finalised ('final' rows are the snapshot). Never changed.
CREATE TABLE grade_results (
    round_id       INTEGER NOT NULL REFERENCES grade_rounds(id),
    stage          TEXT NOT NULL CHECK (stage IN ('published', 'final')),
    member_id      INTEGER NOT NULL REFERENCES members(id),
    position       INTEGER NOT NULL,                 -- the result's order (rank, then name)
    name           TEXT NOT NULL,
    figure         TEXT,                             -- the published (rounded) year figure; NULL: not scored
    band_code      TEXT,
    stars          INTEGER,
    graded         INTEGER NOT NULL,
    passing        INTEGER,
    rank           INTEGER,
    flags          TEXT NOT NULL DEFAULT '[]',       -- JSON list of flag codes
    rulebook_code  TEXT NOT NULL,
    detail         TEXT NOT NULL,                    -- JSON: the whole line (halves, tiers, cumulative ranking)
    PRIMARY KEY (round_id, stage, member_id)
);
CREATE TRIGGER grade_results_no_update BEFORE UPDATE ON grade_results
BEGIN SELECT RAISE(ABORT, 'grade results are never changed'); END;
CREATE TRIGGER grade_results_no_delete BEFORE DELETE ON grade_results
BEGIN SELECT RAISE(ABORT, 'grade results are never changed'); END;

-- A finalised year: no ledger row dated in it may be written, by any feature.
CREATE TABLE locked_years (
    branch_id      INTEGER NOT NULL REFERENCES branches(id),
    year           INTEGER NOT NULL,
    round_id       INTEGER NOT NULL REFERENCES grade_rounds(id),
    locked_at      TEXT NOT NULL,
    PRIMARY KEY (branch_id, year)
);
CREATE TRIGGER ledger_year_locked BEFORE INSERT ON ledger
WHEN EXISTS (SELECT 1 FROM locked_years
             WHERE branch_id = NEW.branch_id AND year = CAST(substr(NEW.occurred_on, 1, 4) AS INTEGER))
BEGIN SELECT RAISE(ABORT, 'ledger year locked'); END;

-- The secretary's explicit re-openings of a finalised year: who, when, why.
CREATE TABLE grade_reopens (
    id             INTEGER PRIMARY KEY,
    branch_id      INTEGER NOT NULL REFERENCES branches(id),
    year           INTEGER NOT NULL,
    round_id       INTEGER NOT NULL UNIQUE REFERENCES grade_rounds(id),  -- a round is re-opened once
    reopened_by    INTEGER NOT NULL REFERENCES members(id),
    reopened_at    TEXT NOT NULL,
    reason         TEXT NOT NULL
);
CREATE TRIGGER grade_reopens_no_update BEFORE UPDATE ON grade_reopens
BEGIN SELECT RAISE(ABORT, 'the re-open log is append-only'); END;
CREATE TRIGGER grade_reopens_no_delete BEFORE DELETE ON grade_reopens
BEGIN SELECT RAISE(ABORT, 'the re-open log is append-only'); END;
