-- Party dues (党费): each member's status per month, members' "I have paid" reports, and month closes.
-- Amounts are decimal text (exact, never REAL); months are 'YYYY-MM' in the branch's timezone.

-- From when a branch's dues are kept: a branch that existed before this feature starts now, so that
-- no month before it is ever closed (everyone "unpaid"). A newer branch starts at its creation.
CREATE TABLE dues_tracking (
    branch_id   INTEGER PRIMARY KEY REFERENCES branches(id),
    since       TEXT NOT NULL                        -- UTC ISO-8601
);
INSERT INTO dues_tracking (branch_id, since)
    SELECT id, strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now') FROM branches;

CREATE TABLE dues (
    id          INTEGER PRIMARY KEY,
    branch_id   INTEGER NOT NULL REFERENCES branches(id),
    member_id   INTEGER NOT NULL REFERENCES members(id),
    month       TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('on_time', 'late', 'short', 'unpaid')),
    amount      TEXT,
    marked_by   INTEGER REFERENCES members(id),      -- NULL: set by the month close
    marked_at   TEXT NOT NULL,
    revision    INTEGER NOT NULL DEFAULT 0,          -- corrections after the close
    ledger_id   INTEGER REFERENCES ledger(id),       -- what the close (or the last correction) booked
    UNIQUE (member_id, month)
);
CREATE INDEX dues_by_month ON dues(branch_id, month);

-- A closed month: statuses are final; a change is a correction (reversing row + new row).
CREATE TABLE dues_closed (
    branch_id   INTEGER NOT NULL REFERENCES branches(id),
    month       TEXT NOT NULL,
    closed_at   TEXT NOT NULL,
    PRIMARY KEY (branch_id, month)
);

CREATE TABLE dues_reports (
    id          INTEGER PRIMARY KEY,
    branch_id   INTEGER NOT NULL REFERENCES branches(id),
    member_id   INTEGER NOT NULL REFERENCES members(id),
    month       TEXT NOT NULL,
    amount      TEXT,
    status      TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed', 'rejected')),
    decided_by  INTEGER REFERENCES members(id),
    decided_at  TEXT,
    client_key  TEXT NOT NULL,                       -- the command or button press; a replay finds the same row
    created_at  TEXT NOT NULL,
    UNIQUE (member_id, client_key)
);
-- At most one report waiting per member and month.
CREATE UNIQUE INDEX dues_reports_one_pending ON dues_reports(member_id, month) WHERE status = 'pending';

CREATE TABLE dues_report_messages (
    report_id   INTEGER NOT NULL REFERENCES dues_reports(id),
    chat_id     INTEGER NOT NULL,
    message_id  INTEGER NOT NULL,
    PRIMARY KEY (report_id, chat_id, message_id)
);
