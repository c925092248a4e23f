-- /remove (a member who died, left the party or was added by mistake): the secretary's reason and who
-- removed whom when, kept with the member's record (the member row only says 'left' from a day, or
-- 'rejected' when voided). One row per removal: someone re-admitted and removed again has two.
CREATE TABLE member_removals (
    id          INTEGER PRIMARY KEY,
    branch_id   INTEGER NOT NULL REFERENCES branches(id),
    member_id   INTEGER NOT NULL REFERENCES members(id),
    removed_by  INTEGER NOT NULL REFERENCES members(id),
    removed_at  TEXT NOT NULL,           -- UTC
    reason      TEXT NOT NULL,
    voided      INTEGER NOT NULL DEFAULT 0 CHECK (voided IN (0, 1))
);
CREATE INDEX member_removals_of_member ON member_removals(member_id);
