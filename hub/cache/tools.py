"""Cached MCP tool results: a server that opts in (`mcp_servers.<name>.cache_ttl`) has the results of its read-only
tools kept for that many seconds, keyed by key (principal), tool and arguments.

A tool is cached when its annotations say `readOnlyHint: true` and do not say `openWorldHint: true` (an absent
`openWorldHint` counts as closed: the operator opted the server in). Only results that are not `is_error` are kept.
"""

from __future__ import annotations

import hashlib
from typing import Any

import mcp_types as types
import orjson

from hub.cache.store import LocalStore

MAX_ENTRIES = 10_000
MAX_BYTES = 32 * 1024 * 1024


def cacheable(tool: types.Tool) -> bool:
    hints = tool.annotations
    return hints is not None and hints.read_only_hint is True and hints.open_world_hint is not True


class ToolResultCache:
    """One in-process LRU for every opted-in server (bounded by entries and bytes)."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.store = LocalStore(max_entries, max_bytes)

    @staticmethod
    def key(scope: str, server: str, tool: str, arguments: dict[str, Any]) -> str:
        """Raises TypeError for arguments that are not JSON (the call then goes upstream uncached)."""
        payload = orjson.dumps([scope, server, tool, arguments], option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(payload).hexdigest()

    async def get(self, key: str) -> types.CallToolResult | None:
        raw = await self.store.get(key)
        return None if raw is None else types.CallToolResult.model_validate_json(raw)

    async def put(self, key: str, result: types.CallToolResult, ttl: float) -> None:
        if not result.is_error:
            await self.store.set(key, result.model_dump_json(by_alias=True, exclude_none=True).encode(), ttl)
