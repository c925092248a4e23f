-- A member's state with its dates (不纳入积分管理 covers the time of the exemption, seeds 003 l.35, 004
-- l.8–9; DOMAIN decision 3: the 浠水 year averages the months the member "was not exempt"). members.state
-- stays the state now; each /state change adds a row here, in force from the first day of from_date's
-- month (bot.domain.states: a month takes the state recorded last for it). from_date NULL: since the
-- row began. Readers cut the exempt months out of the months they count, as stays cut the months away.
CREATE TABLE member_states (
    id          INTEGER PRIMARY KEY,
    member_id   INTEGER NOT NULL REFERENCES members(id),
    state       TEXT NOT NULL CHECK (state IN ('active', 'probationary', 'exempt', 'migrant')),
    reason      TEXT,
    from_date   TEXT,                    -- YYYY-MM-DD (NULL: since the member row began)
    set_by      INTEGER REFERENCES members(id),  -- NULL: recorded by this migration, or the state before the first change
    set_at      TEXT NOT NULL            -- UTC
);
CREATE INDEX member_states_of_member ON member_states(member_id, id);
-- Members exempt before this table: exempt from their joined_on (the start of their current stay; the
-- bot never knew a later date, and it graded them as exempt for the whole year), NULL where the bot
-- never kept a joined_on. A secretary who knows better re-dates it: /state N active YYYY-MM, then
-- /state N exempt YYYY-MM.
INSERT INTO member_states (member_id, state, reason, from_date, set_by, set_at)
SELECT id, 'exempt', state_reason, joined_on, NULL, strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now')
FROM members WHERE state = 'exempt';
