-- What the router did for each request: the model group and api_base that answered, retries and fallbacks taken.
ALTER TABLE toolhub_spend_logs ADD COLUMN answered_group TEXT;
ALTER TABLE toolhub_spend_logs ADD COLUMN api_base TEXT;
ALTER TABLE toolhub_spend_logs ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE toolhub_spend_logs ADD COLUMN fallbacks INTEGER NOT NULL DEFAULT 0;
