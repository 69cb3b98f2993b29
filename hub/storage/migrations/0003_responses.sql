-- Stored Responses API answers (hub/api/responses): the response object, the input items that led to it and the
-- whole conversation as chat messages, for previous_response_id continuations; owned by the key that made them.
CREATE TABLE toolhub_responses (
    id TEXT PRIMARY KEY,
    key_hash TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    response TEXT NOT NULL,
    input_items TEXT NOT NULL,
    messages TEXT NOT NULL
);
CREATE INDEX toolhub_responses_created ON toolhub_responses (created_at);
