-- Secretary succession (bot.services.succession): every role a member lost by leaving the group, a
-- secretary's role handed over or added by its button, and the secretary role claimed by a group
-- administrator while the branch had no secretary in the group. One row per member and role changed;
-- the roles table only says who holds what now.
CREATE TABLE role_changes (
    id          INTEGER PRIMARY KEY,
    branch_id   INTEGER NOT NULL REFERENCES branches(id),
    member_id   INTEGER NOT NULL REFERENCES members(id),
    role        TEXT NOT NULL,
    change      TEXT NOT NULL CHECK (change IN ('left_group', 'claimed', 'handed_over', 'stepped_down', 'added')),
    by_user     INTEGER,                 -- the Telegram user who did it (NULL: the member's leaving the group)
    changed_at  TEXT NOT NULL            -- UTC
);
CREATE INDEX role_changes_of_branch ON role_changes(branch_id, id);
