"""Cached MCP tool results: a server that opts in (`mcp_servers.<name>.cache_ttl`) has the results of its read-only
tools kept for that many seconds, keyed by key (principal), tool and arguments.

A tool is cached when its annotations say `readOnlyHint: true` and `openWorldHint: false`. Both are written out
because the MCP specification's defaults are the other way (`readOnlyHint` false, `openWorldHint` true: a tool that
says nothing may reach outside entities, whose answers a cache would freeze). Only results that are not `is_error`
are kept.

Where they are kept: the store of the gateway's response cache when one is open (`litellm_settings.cache`), so with
`cache_params.type: redis` every Toolhub process on that Redis shares them; otherwise an LRU in this process.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
from collections.abc import Iterator
from typing import Any

import mcp_types as types
import orjson

from hub.cache.store import LocalStore, Store, read

MAX_ENTRIES = 10_000
MAX_BYTES = 32 * 1024 * 1024
DEFAULT_NAMESPACE = "toolhub"

_OPEN: contextvars.ContextVar[tuple[Store, str] | None] = contextvars.ContextVar("toolhub_tool_results", default=None)
"""The tool-result store and namespace of the response cache the app's lifespan opened (`open_cache`): the MCP hub
is built later in that same lifespan, and takes them when it builds its `ToolResultCache`."""


def cacheable(tool: types.Tool) -> bool:
    hints = tool.annotations
    return hints is not None and hints.read_only_hint is True and hints.open_world_hint is False


@contextlib.contextmanager
def tool_results_in(store: Store, namespace: str | None = None) -> Iterator[None]:
    """Within the block, a `ToolResultCache()` built without a store keeps its results in `store`."""
    token = _OPEN.set((store, namespace or DEFAULT_NAMESPACE))
    try:
        yield
    finally:
        _OPEN.reset(token)


class ToolResultCache:
    """Results by key in a `Store`: the one given, else the open response cache's, else a local LRU of its own."""

    def __init__(self, store: Store | None = None, namespace: str = DEFAULT_NAMESPACE) -> None:
        opened = _OPEN.get() if store is None else (store, namespace)
        self.store, namespace = opened or (LocalStore(MAX_ENTRIES, MAX_BYTES), namespace)
        self.prefix = f"{namespace}:tool:"

    def key(self, scope: str, server: str, tool: str, arguments: dict[str, Any]) -> str:
        """`<namespace>:tool:<sha256 of scope, server, tool and arguments>`.

        Raises:
            TypeError: arguments that are not JSON (the call then goes upstream uncached).
        """
        payload = orjson.dumps([scope, server, tool, arguments], option=orjson.OPT_SORT_KEYS)
        return self.prefix + hashlib.sha256(payload).hexdigest()

    async def get(self, key: str) -> types.CallToolResult | None:
        raw = await read(self.store, key)
        return None if raw is None else types.CallToolResult.model_validate_json(raw)

    async def put(self, key: str, result: types.CallToolResult, ttl: float) -> None:
        if not result.is_error:
            await self.store.set(key, result.model_dump_json(by_alias=True, exclude_none=True).encode(), ttl)
