-- The group's life (schedules.engine, services.branches.migrate_chat).

-- A failed effect is taken again after a growing delay (schedules.engine.retry_delay: a few quick tries,
-- then minutes, then hours, for about a week), not at every tick: the moment before which it is not taken
-- again (UTC); NULL: at the next tick. Re-adding the bot to the group clears it for the branch.
ALTER TABLE effects ADD COLUMN retry_at TEXT;

-- A branch set up in a supergroup that was another branch's group before an upgrade the bot missed (only
-- its set-up: its secretary alone, no records) is retired when the real branch follows its group there:
-- its rows stay, it has no group any more (its chat_id becomes a number no Telegram chat has, so the real
-- branch can take the group's id), the calendar leaves it alone and its lone member has left it.
ALTER TABLE branches ADD COLUMN retired_at TEXT;
