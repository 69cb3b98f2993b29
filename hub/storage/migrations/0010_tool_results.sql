-- Tool results too large for the model (hub/catalog/results.py): kept whole until expires_at, read back in parts or
-- by grep through hub__read_result and resources/read of toolhub://results/<handle>; only by the key that made them.
-- The text is kept in chunks of chunk_chars characters, so reading a part reads only the chunks it spans.
CREATE TABLE toolhub_tool_results (
    handle TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    server TEXT NOT NULL,
    tool TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    size BIGINT NOT NULL,
    lines BIGINT NOT NULL,
    chunk_chars INTEGER NOT NULL
);
CREATE INDEX toolhub_tool_results_expires ON toolhub_tool_results (expires_at);
CREATE TABLE toolhub_tool_result_chunks (
    handle TEXT NOT NULL,
    seq INTEGER NOT NULL,
    content TEXT NOT NULL,
    PRIMARY KEY (handle, seq)
);
