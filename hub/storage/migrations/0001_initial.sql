-- Virtual keys (only a SHA-256 of each key is kept), spend logs and tool calls.
-- One dialect for SQLite and PostgreSQL: times are Unix seconds, JSON is TEXT, booleans are INTEGER 0/1.
CREATE TABLE toolhub_keys (
    token_hash TEXT PRIMARY KEY,
    key_name TEXT NOT NULL,
    key_alias TEXT,
    models TEXT,
    mcp_servers TEXT,
    mcp_tools TEXT,
    max_budget DOUBLE PRECISION,
    budget_duration TEXT,
    rpm_limit BIGINT,
    tpm_limit BIGINT,
    expires DOUBLE PRECISION,
    metadata TEXT NOT NULL DEFAULT '{}',
    blocked INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE UNIQUE INDEX toolhub_keys_alias ON toolhub_keys (key_alias);

CREATE TABLE toolhub_spend_logs (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    key_hash TEXT,
    model_alias TEXT NOT NULL,
    upstream_model TEXT NOT NULL,
    provider TEXT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    reasoning_tokens BIGINT NOT NULL,
    cost DOUBLE PRECISION NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    upstream_ms DOUBLE PRECISION NOT NULL,
    status_code INTEGER NOT NULL,
    stream INTEGER NOT NULL,
    error TEXT,
    tool_calls INTEGER NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    day TEXT NOT NULL
);
CREATE INDEX toolhub_spend_key_time ON toolhub_spend_logs (key_hash, created_at);
CREATE INDEX toolhub_spend_time ON toolhub_spend_logs (created_at);

CREATE TABLE toolhub_tool_calls (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    key_hash TEXT,
    server TEXT NOT NULL,
    tool TEXT NOT NULL,
    duration_ms DOUBLE PRECISION NOT NULL,
    error TEXT,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX toolhub_tool_calls_time ON toolhub_tool_calls (created_at);
