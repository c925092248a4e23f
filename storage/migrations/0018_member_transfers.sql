-- Member transfers (组织关系转接): a member moves to another branch. The sending branch's secretary
-- starts it (a one-time code, optionally addressed to one branch); the receiving branch's secretary
-- accepts it. The old member row is marked left and keeps its ledger; the receiving branch gets a new
-- member row linked to the old one (members.transferred_from), so the member's history is a chain.

CREATE TABLE member_transfers (
    id              INTEGER PRIMARY KEY,
    code            TEXT NOT NULL UNIQUE,
    member_id       INTEGER NOT NULL REFERENCES members(id),   -- the row in the sending branch
    from_branch     INTEGER NOT NULL REFERENCES branches(id),
    to_branch       INTEGER REFERENCES branches(id),           -- NULL: any branch with the code; set on accept
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'accepted', 'cancelled')),
    requested_by    INTEGER NOT NULL REFERENCES members(id),   -- the sending secretary
    requested_at    TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    accepted_by     INTEGER REFERENCES members(id),            -- the receiving secretary (their row there)
    decided_at      TEXT,
    moved_on        TEXT,                                      -- the day of the move (sending branch-local date)
    new_member_id   INTEGER REFERENCES members(id)
);
-- One open transfer per member row: a second /transfer is refused, not a second code.
CREATE UNIQUE INDEX member_transfers_open ON member_transfers(member_id) WHERE status = 'pending';

ALTER TABLE members ADD COLUMN transferred_from INTEGER REFERENCES members(id);
CREATE UNIQUE INDEX members_transferred_from ON members(transferred_from) WHERE transferred_from IS NOT NULL;

-- Town-level scheduled sends (the monthly digest to each town administrator): the engine's effects
-- are keyed by branch; a town's send is claimed here once per (town, kind, key, recipient).
CREATE TABLE town_sends (
    town_id         INTEGER NOT NULL REFERENCES towns(id),
    kind            TEXT NOT NULL,
    key             TEXT NOT NULL,
    user_id         INTEGER NOT NULL,
    claimed_at      TEXT NOT NULL,
    outcome         TEXT NOT NULL DEFAULT 'claimed' CHECK (outcome IN ('claimed', 'sent', 'unreachable')),
    PRIMARY KEY (town_id, kind, key, user_id)
);
