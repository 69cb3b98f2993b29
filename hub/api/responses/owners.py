"""Which key made what a passthrough upstream stored (hub/api/responses/passthrough.py).

An upstream that serves `/responses` itself keeps its responses and items under the gateway's one API key, so it
would hand them to any key naming them. Toolhub keeps a row per upstream-made response id and output item id (table
`toolhub_response_owners`, migration 0009) with the key that made it and the response it belongs to. The row outlives
the stored response (DELETE, retention): an id Toolhub has seen is answered by Toolhub (404 when it is gone or
another key's) and only ids Toolhub never saw reach the upstream as they are.

The queries run on the store's own SQL (`Store.fetch` / `execute_many`), as hub/catalog/results.py does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from hub.storage import Store

_INSERT = (
    "INSERT INTO toolhub_response_owners (id, response_id, key_hash, created_at) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (id) DO NOTHING"
)
_SELECT = "SELECT response_id, key_hash FROM toolhub_response_owners WHERE id = $1"


@dataclass(frozen=True, slots=True)
class Owner:
    """The key (None: the master key) that made an upstream id, and the response holding it."""

    key_hash: str | None
    response_id: str


async def record(store: Store, key_hash: str | None, response_id: str, item_ids: Sequence[str]) -> None:
    """Remember that `key_hash` made the upstream response `response_id` and its output items."""
    now = time.time()
    rows = [[ident, response_id, key_hash, now] for ident in (response_id, *item_ids)]
    await store.execute_many(_INSERT, rows)


async def find(store: Store, ident: str) -> Owner | None:
    """Who made the upstream response or item `ident`; None when Toolhub never saw it."""
    rows = await store.fetch(_SELECT, [ident])
    return Owner(rows[0]["key_hash"], rows[0]["response_id"]) if rows else None
