-- A member who left the branch (/remove, or a transfer out) and is approved again through /join comes back
-- on the day of the approval: the row's joined_on is that day (it kept the first one before, so the months
-- away counted as months with no entries). The stay before is kept here, one row per return, and joins the
-- row's stays as a transfer's reopened stay does (bot.services.transfers: the chain of stints), so that
-- the earlier months still count and the months away count nowhere.
CREATE TABLE member_stays (
    id          INTEGER PRIMARY KEY,
    member_id   INTEGER NOT NULL REFERENCES members(id),
    branch_id   INTEGER NOT NULL REFERENCES branches(id),
    joined_on   TEXT,                -- the row's joined_on then (NULL: from before the bot kept it)
    left_on     TEXT NOT NULL,       -- the row's left_on then
    recorded_at TEXT NOT NULL        -- UTC: the approval that ended the absence
);
-- A stay is recorded once: a repeated approval (a second press, a concurrent twin) adds nothing.
CREATE UNIQUE INDEX member_stays_once ON member_stays(member_id, left_on);
CREATE INDEX member_stays_of_branch ON member_stays(branch_id);
