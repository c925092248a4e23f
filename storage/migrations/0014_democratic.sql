-- The democratic evaluation (民主评议) of 张店-style schemes: one round per branch and half-year.
-- Peer ratings are anonymous: rater ids are kept only so that a member rates each peer once (a re-rating
-- replaces the earlier one) and so that progress can be counted; no screen ever shows who gave whom what.

CREATE TABLE democratic_rounds (
    id          INTEGER PRIMARY KEY,
    branch_id   INTEGER NOT NULL REFERENCES branches(id),
    year        INTEGER NOT NULL,
    half        INTEGER NOT NULL CHECK (half IN (1, 2)),
    status      TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    opened_by   INTEGER REFERENCES members(id),
    opened_at   TEXT NOT NULL,
    closed_by   INTEGER REFERENCES members(id),
    closed_at   TEXT,
    UNIQUE (branch_id, year, half)                -- a redelivered /evaluate open finds the same round
);

-- Self (rater = ratee) and peer ratings, 0-100 as decimal text; one row per (round, rater, ratee).
CREATE TABLE democratic_ratings (
    round_id    INTEGER NOT NULL REFERENCES democratic_rounds(id),
    rater_id    INTEGER NOT NULL REFERENCES members(id),
    ratee_id    INTEGER NOT NULL REFERENCES members(id),
    value       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (round_id, rater_id, ratee_id)
);
CREATE INDEX democratic_ratings_by_ratee ON democratic_ratings(round_id, ratee_id);

-- The public (群众测评) and branch preliminary (党支部初评) ratings the secretary or deputy enters.
CREATE TABLE democratic_marks (
    round_id    INTEGER NOT NULL REFERENCES democratic_rounds(id),
    member_id   INTEGER NOT NULL REFERENCES members(id),
    kind        TEXT NOT NULL CHECK (kind IN ('public', 'branch')),
    value       TEXT NOT NULL,
    entered_by  INTEGER NOT NULL REFERENCES members(id),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (round_id, member_id, kind)
);

-- Whether each member's invitation reached them (0: no Telegram account, never started the bot, blocked);
-- set again when a member opens their ratings with /evaluate.
CREATE TABLE democratic_invites (
    round_id    INTEGER NOT NULL REFERENCES democratic_rounds(id),
    member_id   INTEGER NOT NULL REFERENCES members(id),
    reached     INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (round_id, member_id)
);
