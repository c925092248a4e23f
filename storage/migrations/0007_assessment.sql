-- The monthly assessment (月度考评) and the volunteer posts members claim (浠水 岗位认领).

-- Each assessment of one item for one member in one month is a revision; the ledger holds the points
-- (reference 'assess:YYYY-MM:item:revision'), this table the revision chain and which were defaults.
-- Re-assessing = the previous revision's ledger row reversed + a new revision; UNIQUE makes a double
-- tap or a redelivered update write once.
CREATE TABLE assessments (
    id          INTEGER PRIMARY KEY,
    branch_id   INTEGER NOT NULL REFERENCES branches(id),
    member_id   INTEGER NOT NULL REFERENCES members(id),
    month       TEXT NOT NULL,                    -- 'YYYY-MM' (branch-local)
    item_code   TEXT NOT NULL,
    revision    INTEGER NOT NULL CHECK (revision >= 1),
    value       TEXT NOT NULL,                    -- decimal text, exact
    is_default  INTEGER NOT NULL DEFAULT 0,       -- 1: nobody assessed by the notice, the item's default
    ledger_id   INTEGER NOT NULL REFERENCES ledger(id),
    actor_id    INTEGER REFERENCES members(id),   -- NULL for a default
    created_at  TEXT NOT NULL,
    UNIQUE (member_id, month, item_code, revision)
);
CREATE INDEX assessments_by_month ON assessments(branch_id, month);

-- The branch's volunteer posts: seeded once from the rulebook's [posts] names, then the branch's own.
CREATE TABLE post_boards (
    branch_id   INTEGER PRIMARY KEY REFERENCES branches(id),
    seeded_at   TEXT NOT NULL
);

CREATE TABLE posts (
    id          INTEGER PRIMARY KEY,
    branch_id   INTEGER NOT NULL REFERENCES branches(id),
    number      INTEGER NOT NULL,                 -- what people type and see; never reused
    name_zh     TEXT NOT NULL,
    name_en     TEXT NOT NULL,
    origin      TEXT NOT NULL CHECK (origin IN ('seed', 'branch')),
    removed_at  TEXT,
    created_at  TEXT NOT NULL,
    UNIQUE (branch_id, number)
);

-- Who holds which post; a released claim keeps its row (history: "has this member ever claimed").
CREATE TABLE post_claims (
    id          INTEGER PRIMARY KEY,
    branch_id   INTEGER NOT NULL REFERENCES branches(id),
    member_id   INTEGER NOT NULL REFERENCES members(id),
    post_id     INTEGER NOT NULL REFERENCES posts(id),
    claimed_on  TEXT NOT NULL,
    released_on TEXT,
    request_id  INTEGER REFERENCES post_requests(id),
    created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX post_claims_held ON post_claims(member_id, post_id) WHERE released_on IS NULL;
CREATE INDEX post_claims_by_branch ON post_claims(branch_id, released_on);

-- A member asks for a new set of posts; the secretary or deputy approves or refuses, once.
CREATE TABLE post_requests (
    id          INTEGER PRIMARY KEY,
    branch_id   INTEGER NOT NULL REFERENCES branches(id),
    member_id   INTEGER NOT NULL REFERENCES members(id),
    post_ids    TEXT NOT NULL,                    -- JSON list of posts.id: the whole set wanted
    status      TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'approved', 'rejected', 'withdrawn')),
    decided_by  INTEGER REFERENCES members(id),
    decided_at  TEXT,
    client_key  TEXT NOT NULL,                    -- the submitting message or press: a replay finds the same row
    created_at  TEXT NOT NULL,
    UNIQUE (member_id, client_key)
);
CREATE INDEX post_requests_pending ON post_requests(branch_id, status);

-- Where a request was shown to the secretary and deputy, so every copy shows the decision.
CREATE TABLE post_request_messages (
    request_id  INTEGER NOT NULL REFERENCES post_requests(id),
    chat_id     INTEGER NOT NULL,
    message_id  INTEGER NOT NULL,
    PRIMARY KEY (request_id, chat_id, message_id)
);
