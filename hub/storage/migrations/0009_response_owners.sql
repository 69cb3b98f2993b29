-- Who made what a passthrough upstream stored (hub/api/responses/owners.py): one row per upstream-made response id
-- and output item id, with the key that made it and its response. Kept after the response row is deleted or purged,
-- so an id Toolhub has seen is never forwarded again (the upstream would serve it to any key).
CREATE TABLE toolhub_response_owners (
    id TEXT PRIMARY KEY,
    response_id TEXT NOT NULL,
    key_hash TEXT,
    created_at DOUBLE PRECISION NOT NULL
);
