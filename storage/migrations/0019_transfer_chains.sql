-- Transfers make a chain of stints (bot.domain.town.chains_of), read from the accepted transfers rather
-- than from members.transferred_from, so that a member may return to a branch they were in (A→B→A): the
-- old row there is reactivated and continues the chain, the chain stays a chain.

-- The leaving row's joined_on at the move (its stint's first day: a reactivated row's joined_on is
-- later overwritten by the day it came back).
ALTER TABLE member_transfers ADD COLUMN left_joined_on TEXT;
UPDATE member_transfers SET left_joined_on = (SELECT joined_on FROM members WHERE members.id = member_transfers.member_id)
    WHERE status = 'accepted';
-- A receiving row that existed before (reactivated): its stay before the move, kept for the chain.
ALTER TABLE member_transfers ADD COLUMN reopened_joined_on TEXT;
ALTER TABLE member_transfers ADD COLUMN reopened_left_on TEXT;
ALTER TABLE member_transfers ADD COLUMN reopened INTEGER NOT NULL DEFAULT 0;

-- A row may now be continued more than once (A→B, back to A, then to C: A's row is left twice), so
-- transferred_from ("the row this one was created from") is no longer unique.
DROP INDEX members_transferred_from;
CREATE INDEX members_transferred_from ON members(transferred_from) WHERE transferred_from IS NOT NULL;
CREATE INDEX member_transfers_accepted ON member_transfers(member_id) WHERE status = 'accepted';
