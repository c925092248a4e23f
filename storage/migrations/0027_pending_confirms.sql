-- A confirm button's pending step (/remove, /undo, a zero-out /record): what the command checked, kept
-- until the press under a short random token that the button's callback data carries. In the database,
-- so a restart loses none (they were in PTB's chat_data before). The token carries no authority: the
-- press re-checks the presser (the sender, or the role) and the service re-checks everything. A press
-- acts once: used_at is set by a conditional update (given back if the action was refused). A pending
-- step expires at expires_at (an hour after the command); old rows are swept when new ones are kept.
CREATE TABLE pending_confirms (
    token       TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('remove', 'undo', 'zero_out')),
    chat_id     INTEGER NOT NULL,            -- where the buttons are
    user_id     INTEGER NOT NULL,            -- who sent the command
    branch_id   INTEGER NOT NULL REFERENCES branches(id),
    payload     TEXT NOT NULL,               -- JSON: what the command checked (ids, reason, …)
    created_at  TEXT NOT NULL,               -- UTC
    expires_at  TEXT NOT NULL,               -- UTC
    used_at     TEXT                         -- UTC: the press that acted (or cancelled); NULL while pending
);
CREATE INDEX pending_confirms_expiry ON pending_confirms(expires_at);
