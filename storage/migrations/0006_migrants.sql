-- Migrant members (流动党员): quarterly reports of thought and work, their review, and missing reports.

-- From when a branch's migrant reports are kept (as for dues): no quarter before it is ever closed.
CREATE TABLE migrant_tracking (
    branch_id   INTEGER PRIMARY KEY REFERENCES branches(id),
    since       TEXT NOT NULL                        -- UTC ISO-8601
);
INSERT INTO migrant_tracking (branch_id, since)
    SELECT id, strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now') FROM branches;

CREATE TABLE migrant_reports (
    id            INTEGER PRIMARY KEY,
    branch_id     INTEGER NOT NULL REFERENCES branches(id),
    member_id     INTEGER NOT NULL REFERENCES members(id),
    quarter       TEXT NOT NULL,                     -- 'YYYY-Qn'
    body          TEXT NOT NULL,
    photo_file_id TEXT,
    status        TEXT NOT NULL DEFAULT 'submitted' CHECK (status IN ('submitted', 'accepted', 'returned')),
    reviewed_by   INTEGER REFERENCES members(id),
    reviewed_at   TEXT,
    reason        TEXT,                              -- why it was returned
    client_key    TEXT NOT NULL,                     -- the confirming press; a replay finds the same row
    created_at    TEXT NOT NULL,
    UNIQUE (member_id, client_key)
);
-- One live report per member and quarter (a returned one may be sent again).
CREATE UNIQUE INDEX migrant_reports_live ON migrant_reports(member_id, quarter) WHERE status IN ('submitted', 'accepted');

CREATE TABLE migrant_report_messages (
    report_id   INTEGER NOT NULL REFERENCES migrant_reports(id),
    chat_id     INTEGER NOT NULL,
    message_id  INTEGER NOT NULL,
    PRIMARY KEY (report_id, chat_id, message_id)
);

CREATE TABLE migrant_closed (
    branch_id   INTEGER NOT NULL REFERENCES branches(id),
    quarter     TEXT NOT NULL,
    closed_at   TEXT NOT NULL,
    PRIMARY KEY (branch_id, quarter)
);

-- A report missing at the quarter's close, as recorded (ledger_id when the rulebook deducts for it).
CREATE TABLE migrant_missing (
    branch_id   INTEGER NOT NULL REFERENCES branches(id),
    member_id   INTEGER NOT NULL REFERENCES members(id),
    quarter     TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    ledger_id   INTEGER REFERENCES ledger(id),
    PRIMARY KEY (member_id, quarter)
);
