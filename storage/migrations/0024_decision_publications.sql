-- A decision (approve / adjust / reject) is committed first, then shown: every copy of the card edited and
-- the member told. If the process dies in between (kill -9, a crash, a restart during a deploy), Telegram
-- delivers the press again, but the press then finds the declaration decided and only says "already
-- done": the member was never told. So the decision's own transaction opens a publication (claimed now);
-- the publishing marks it published; a sweep publishes what stayed unpublished long after its claim.
-- Decisions made before this have no row: they were published by the code of their time.
CREATE TABLE decision_publications (
    declaration_id  INTEGER PRIMARY KEY REFERENCES declarations(id),
    claimed_at      TEXT NOT NULL,       -- UTC; the decision, or the sweep that took it over
    published_at    TEXT                 -- UTC; NULL: not known to have been shown
);
CREATE INDEX decision_publications_open ON decision_publications(claimed_at) WHERE published_at IS NULL;
