-- Spend-log retention (hub/storage/retention.py): spend logs older than the retention period are moved, batch by
-- batch, into daily aggregates, so /spend/daily and budgets keep their history. key_hash '' stands for the master
-- key (NULL in the logs), so that the primary key can merge its rows. day_start: Unix seconds of the day's start.
CREATE TABLE toolhub_spend_daily (
    day TEXT NOT NULL,
    day_start DOUBLE PRECISION NOT NULL,
    key_hash TEXT NOT NULL,
    model_alias TEXT NOT NULL,
    requests BIGINT NOT NULL,
    spend DOUBLE PRECISION NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    PRIMARY KEY (day, key_hash, model_alias)
);
CREATE INDEX toolhub_spend_daily_key ON toolhub_spend_daily (key_hash, day_start);
CREATE INDEX toolhub_spend_daily_start ON toolhub_spend_daily (day_start);
-- /spend/logs?model=... newest first
CREATE INDEX toolhub_spend_model_time ON toolhub_spend_logs (model_alias, created_at);
