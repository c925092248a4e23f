-- The periodic notice's review (支委会审核，支部书记签字确认; seeds 000 l.25, 004 l.28-30): the notice still
-- posts at its moment; the secretary or a deputy signs it off by a button, once (who and when).
ALTER TABLE notices ADD COLUMN signed_by INTEGER REFERENCES members(id);  -- NULL: not signed yet
ALTER TABLE notices ADD COLUMN signed_at TEXT;                            -- UTC

-- The public's objection (群众反映; seeds 000 l.29, 004 l.32): recorded by a supervisor, secretary or deputy
-- (objector_id: who recorded it), target 'public:entry:<ledger id>'; decided as members' objections are.
ALTER TABLE objections ADD COLUMN source TEXT NOT NULL DEFAULT 'member' CHECK (source IN ('member', 'public'));
