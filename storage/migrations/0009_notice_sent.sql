-- A notice is recorded first, then sent: until it has reached the group it is sent again (only the
-- messages still missing), and its objection window counts from when it did.
ALTER TABLE notices ADD COLUMN sent_at TEXT;                          -- the whole notice reached the group (UTC); NULL: still to send
ALTER TABLE notices ADD COLUMN parts_sent INTEGER NOT NULL DEFAULT 0; -- how many of its messages reached the group
ALTER TABLE notices ADD COLUMN ledger_upto INTEGER;                   -- the last ledger row it saw: later rows dated in
                                                                      -- its period are corrections for the next notice
-- Each member is asked to confirm once, even when the sending is tried again.
ALTER TABLE notice_members ADD COLUMN asked_at TEXT;

-- Notices recorded before this: they were sent when recorded (the old code sent them right away).
UPDATE notices SET sent_at = posted_at;
UPDATE notices SET ledger_upto = (SELECT COALESCE(MAX(l.id), 0) FROM ledger l
                                  WHERE l.branch_id = notices.branch_id AND l.created_at <= notices.posted_at);
UPDATE notice_members SET asked_at = (SELECT n.posted_at FROM notices n WHERE n.id = notice_members.notice_id);
