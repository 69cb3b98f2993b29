"""Per-conversation state mirrored from each process's own map into a `SharedStore`, keyed by tool-call id.

What OpenAI clients do not send back is kept on the gateway between turns: Anthropic thinking blocks
(`providers/anthropic`), Gemini thought signatures (`providers/gemini/signatures.py`) and the tool loop's hub rounds
(`hub/loop/memory.py`), each under the tool-call ids of the assistant turn. Behind several replicas the next turn
may reach another process, so each write is also sent to the shared store (`Mirror.publish`), and before a request
is translated `SharedState.warm` loads, in one round trip, what its conversation's tool-call ids have there and the
process lacks. The process-local maps stay the only thing the providers read, synchronously.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import orjson

from hub.shared.store import SharedStore
from providers._cache import TTLCache

logger = logging.getLogger("toolhub.shared")
V = TypeVar("V")
MAX_WARM_IDS = 64
"""Tool-call ids looked up per request, newest first (an agent's long history needs only its recent turns)."""


class Mirror(Generic[V]):
    """One kind of state (`namespace`) between a process-local map and the shared store."""

    def __init__(self, namespace: str, store: SharedStore, *, ttl: float, dump: Callable[[V], bytes],
                 load: Callable[[bytes], V], keep: Callable[[str, V], None],
                 has: Callable[[str], bool] = lambda _key: False) -> None:  # fmt: skip
        self.namespace = namespace
        self.store = store
        self.ttl = ttl
        self.dump = dump
        self.load = load
        self.keep = keep
        """Put a value read from the store into the local map (without publishing it again)."""
        self.has = has
        self._loading = False

    def publish(self, key: str, value: V, ttl: float | None = None) -> None:
        if not self._loading:
            self.store.put(f"{self.namespace}:{key}", self.dump(value), self.ttl if ttl is None else ttl)

    def load_local(self, key: str, data: bytes) -> None:
        try:
            value = self.load(data)
        except (ValueError, TypeError, KeyError) as exc:  # written by another version: ignore it
            logger.debug("unreadable shared %s entry %s: %s", self.namespace, key, exc)
            return
        self._loading = True
        try:
            self.keep(key, value)
        finally:
            self._loading = False


class SharedTTLCache(TTLCache[V]):
    """A provider's `TTLCache` whose writes are also shared (swap it in for the provider's own)."""

    def __init__(self, namespace: str, store: SharedStore, *, dump: Callable[[V], bytes], load: Callable[[bytes], V],
                 max_items: int = 10_000, ttl: float = 3600.0) -> None:  # fmt: skip
        super().__init__(max_items, ttl)
        self.mirror: Mirror[V] = Mirror(namespace, store, ttl=ttl, dump=dump, load=load, keep=super().put,
                                        has=lambda key: self.get(key) is not None)  # fmt: skip

    def put(self, key: str, value: V, ttl: float | None = None, size: int = 0) -> None:
        super().put(key, value, ttl, size)
        self.mirror.publish(key, value, ttl)


class SharedState:
    """Every mirror of the app; `warm` fills them for one request."""

    def __init__(self, store: SharedStore) -> None:
        self.store = store
        self.mirrors: list[Mirror[Any]] = []

    def add(self, mirror: Mirror[Any]) -> None:
        self.mirrors.append(mirror)

    async def warm(self, messages: Any) -> int:
        """Load what the shared store has for the tool-call ids of `messages` and this process lacks; how many."""
        ids = call_ids(messages) if self.mirrors else []
        if not ids:
            return 0
        wanted = [(mirror, key) for mirror in self.mirrors for key in ids if not mirror.has(key)]
        found = await self.store.get_many([f"{mirror.namespace}:{key}" for mirror, key in wanted])
        loaded = 0
        for mirror, key in wanted:
            data = found.get(f"{mirror.namespace}:{key}")
            if data is not None:
                mirror.load_local(key, data)
                loaded += 1
        return loaded


def call_ids(messages: Any, limit: int = MAX_WARM_IDS) -> list[str]:
    """The tool-call ids of the assistant messages of a Chat Completions conversation, newest first."""
    ids: list[str] = []
    if not isinstance(messages, Sequence) or isinstance(messages, str):
        return ids
    for message in reversed(messages):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        calls = message.get("tool_calls") if isinstance(message, dict) else None  # pyright: ignore[reportUnknownMemberType]
        if not isinstance(calls, list):
            continue
        for call in calls:  # pyright: ignore[reportUnknownVariableType]
            call_id = call.get("id") if isinstance(call, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            if isinstance(call_id, str) and call_id:
                ids.append(call_id)
                if len(ids) >= limit:
                    return ids
    return ids


def json_dump(value: Any) -> bytes:
    return orjson.dumps(value)
