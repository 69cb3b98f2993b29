-- Tool results too large for the model (hub/catalog/results.py): kept whole until expires_at, read back in parts or
-- by grep through hub__read_result and resources/read of toolhub://results/<handle>; only by the key that made them.
CREATE TABLE toolhub_tool_results (
    handle TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    server TEXT NOT NULL,
    tool TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    size BIGINT NOT NULL,
    lines BIGINT NOT NULL,
    content TEXT NOT NULL
);
CREATE INDEX toolhub_tool_results_expires ON toolhub_tool_results (expires_at);
