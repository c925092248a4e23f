-- The calendar's spine: per-branch schedule settings and the record of every scheduled effect.

ALTER TABLE branches ADD COLUMN calendar TEXT NOT NULL DEFAULT '{}';  -- JSON of CalendarSettings

-- Each scheduled effect (a notice for a period, a reminder for a meeting, a month close) is claimed
-- here before it happens: the UNIQUE key makes it happen once across ticks, restarts and replicas.
CREATE TABLE effects (
    id          INTEGER PRIMARY KEY,
    branch_id   INTEGER NOT NULL REFERENCES branches(id),
    kind        TEXT NOT NULL,
    key         TEXT NOT NULL,
    due_at      TEXT NOT NULL,
    claimed_at  TEXT NOT NULL,
    done_at     TEXT,
    outcome     TEXT NOT NULL DEFAULT 'claimed'
                CHECK (outcome IN ('claimed', 'done', 'skipped', 'failed')),
    detail      TEXT,
    UNIQUE (branch_id, kind, key)
);
