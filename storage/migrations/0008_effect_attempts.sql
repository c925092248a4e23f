-- How many times an effect has been tried: an idempotent effect that failed is tried again, a few times.
ALTER TABLE effects ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;
