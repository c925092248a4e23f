-- Meetings (三会一课 and the theme party day): the schedule, each member's answer, check-in and mark.
-- Times are UTC ISO-8601 text. Points never live here: closing a meeting writes ledger rows.

CREATE TABLE meetings (
    id                  INTEGER PRIMARY KEY,
    branch_id           INTEGER NOT NULL REFERENCES branches(id),
    kind                TEXT NOT NULL
                        CHECK (kind IN ('branch_meeting', 'committee', 'group_meeting', 'party_lecture', 'theme_day')),
    starts_at           TEXT NOT NULL,                    -- UTC
    place               TEXT NOT NULL,
    topic               TEXT NOT NULL,
    status              TEXT NOT NULL DEFAULT 'scheduled'
                        CHECK (status IN ('scheduled', 'closed', 'cancelled')),
    created_by          INTEGER REFERENCES members(id),
    created_at          TEXT NOT NULL,
    client_key          TEXT NOT NULL,                    -- the confirming press; a replay finds the same meeting
    announce_chat_id    INTEGER,                          -- the announcement in the group, edited with the tally
    announce_message_id INTEGER,
    closed_by           INTEGER REFERENCES members(id),
    closed_at           TEXT,
    UNIQUE (branch_id, client_key)
);
CREATE INDEX meetings_by_branch ON meetings(branch_id, status, starts_at);

CREATE TABLE meeting_attendance (
    meeting_id          INTEGER NOT NULL REFERENCES meetings(id),
    member_id           INTEGER NOT NULL REFERENCES members(id),
    attending           INTEGER NOT NULL DEFAULT 0,       -- tapped "Attend"
    leave_reason        TEXT,
    leave_status        TEXT CHECK (leave_status IN ('pending', 'approved', 'refused', 'withdrawn')),
    leave_decided_by    INTEGER REFERENCES members(id),
    leave_decided_at    TEXT,
    checked_in_at       TEXT,
    mark                TEXT CHECK (mark IN ('present', 'late', 'early', 'leave', 'absent')),
    marked_by           INTEGER REFERENCES members(id),
    marked_at           TEXT,
    counted             INTEGER NOT NULL DEFAULT 0,       -- on the roll frozen at close
    state_at_close      TEXT,                             -- the member's state then (migrant or not)
    PRIMARY KEY (meeting_id, member_id)
);
