-- Rewards (issue 7): how long a partner merchant's one-time code stays valid is a branch setting, not a
-- constant — the issue says "default 10 minutes". The secretary picks it (1 to 120 minutes: long enough to
-- walk to the counter, short enough that a code shown once is not reusable by someone else much later).
ALTER TABLE reward_settings ADD COLUMN code_minutes INTEGER NOT NULL DEFAULT 10 CHECK (code_minutes BETWEEN 1 AND 120);
