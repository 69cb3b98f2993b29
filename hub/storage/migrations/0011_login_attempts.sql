-- Console login attempts per client address (hub/storage/login_attempts.py, hub/ui/session.py): counted here, so
-- every process and replica on this database counts the same attempts. A successful login deletes its own row (by
-- id); each attempt deletes every row older than the window (a minute), so the table holds about one window.
CREATE TABLE toolhub_login_attempts (
    id TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL
);
CREATE INDEX toolhub_login_attempts_address ON toolhub_login_attempts (address, at);
CREATE INDEX toolhub_login_attempts_at ON toolhub_login_attempts (at);
