-- Spend logs say whether the response cache answered (hub/cache): a hit is a request of zero cost.
ALTER TABLE toolhub_spend_logs ADD COLUMN cache_hit INTEGER NOT NULL DEFAULT 0;
