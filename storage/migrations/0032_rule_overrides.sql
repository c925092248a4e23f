-- A branch's own values for its preset's defaults (/rulebook; bot.domain.overrides): the values the seed does
-- not give (origin = "default" in bot/presets/*.toml — an item's value, 尖草坪's base, 张店's democratic
-- weights) that the branch has changed, as a JSON object {key: decimal text}, next to custom_items. Applied
-- by bot.services.branches.rulebook_of, so every reader of the branch's rulebook sees them.
ALTER TABLE branches ADD COLUMN rule_overrides TEXT NOT NULL DEFAULT '{}';
