-- The admin console (/ui) with a million spend logs: an hourly and daily rollup of the logs, the indexes its pages
-- read through, and console sessions shared by every process.
--
-- toolhub_spend_rollup (hub/storage/rollup.py): requests, errors, spend and summed latency per bucket of `span`
-- seconds (3600 or 86400) starting at bucket_start, per key and model. key_hash '*' sums every key and model_alias
-- '*' every model; '' stands for the master key (NULL in the logs). Spans of an hour keep no key-and-model rows
-- (there would be nearly as many as logs). Logs are folded in batches and marked `rolled`; readers add the logs not
-- folded yet (a partial index: only those are in it), so answers never wait for the fold.
ALTER TABLE toolhub_spend_logs ADD COLUMN rolled INTEGER NOT NULL DEFAULT 0;
CREATE INDEX toolhub_spend_unrolled ON toolhub_spend_logs (key_hash, created_at) WHERE rolled = 0;
CREATE TABLE toolhub_spend_rollup (
    span BIGINT NOT NULL,
    key_hash TEXT NOT NULL,
    model_alias TEXT NOT NULL,
    bucket_start BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    spend DOUBLE PRECISION NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (span, key_hash, model_alias, bucket_start)
);
CREATE INDEX toolhub_spend_rollup_by_model ON toolhub_spend_rollup (span, model_alias, bucket_start);

-- Keys page and budgets: a key's spend over a time range read from the index alone (hub/storage/key_spend.py).
CREATE INDEX toolhub_spend_key_time_cost ON toolhub_spend_logs (key_hash, created_at, cost);
DROP INDEX toolhub_spend_key_time;
-- Logs page: failures (a few percent of the rows), newest first, overall, by model and by key.
CREATE INDEX toolhub_spend_failures_time ON toolhub_spend_logs (created_at) WHERE status_code <> 200;
CREATE INDEX toolhub_spend_failures_model ON toolhub_spend_logs (model_alias, created_at) WHERE status_code <> 200;
CREATE INDEX toolhub_spend_failures_key ON toolhub_spend_logs (key_hash, created_at) WHERE status_code <> 200;

-- Console sessions: the cookie names a session by id; only its SHA-256 is stored. `sealed` is the key the operator
-- typed, encrypted with a secret derived from the master key (hub/ui/session.py), so logout ends it everywhere.
CREATE TABLE toolhub_ui_sessions (
    id_hash TEXT PRIMARY KEY,
    sealed TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires DOUBLE PRECISION NOT NULL
);
CREATE INDEX toolhub_ui_sessions_expires ON toolhub_ui_sessions (expires);
