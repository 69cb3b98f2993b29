-- A request's rows by request id (hub/scale/journal.py replays journals after a crash; operators and tests look up
-- what one request recorded). Not UNIQUE: request_id is the client's x-request-id when it sends a sane one, and two
-- requests that reuse an id are two requests to account. A replay is idempotent by the row id instead, which is fixed
-- per request when the record is journaled, before the answer leaves (INSERT ... ON CONFLICT (id) DO NOTHING).
CREATE INDEX toolhub_spend_request ON toolhub_spend_logs (request_id);
CREATE INDEX toolhub_tool_calls_request ON toolhub_tool_calls (request_id);
