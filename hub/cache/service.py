"""The response cache the gateway consults: lookup with the request's controls, store, and in-flight collapsing.

An entry is `<unix time stored>\n<completion JSON>`, and for a tool loop that ended with client tool calls
`\n<its hub rounds JSON>` after (`hub.cache.loops`); one read from Redis that is not such an entry is a miss
(`hub.cache.entries`), and the answer it then gets replaces it. `ResponseCache.begin` takes the `cache` controls out
of the body (they never reach the upstream) and gives a `Lookup` for cacheable requests; a tool loop's key holds its
owner and tools. Identical non-streamed misses that arrive while the first is in flight wait for it (at most
`inflight_wait` seconds), then are served its answer; if it fails, or its answer may not be shared (a fallback's, a
cut loop's: `loops.shareable`), each goes upstream itself. A `no-store` request never leads (`follow`): its answer is
not stored, so waiting for it would only delay the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import orjson

from hub.cache import entries, loops, tools
from hub.cache.controls import Controls, parse_controls
from hub.cache.keys import cache_key
from hub.cache.replay import StreamGatherer
from hub.cache.serve import Replays
from hub.cache.store import LocalStore, RedisStore, Store

if TYPE_CHECKING:
    from hub.accounts.usage import UsageRecord
    from hub.config import CacheSettings, ModelRoute
    from hub.loop.plan import LoopPlan

JSON = dict[str, Any]


@dataclass(slots=True)
class Lookup:
    """One request's view of the cache: its key and controls, and whether it leads an in-flight call."""

    cache: ResponseCache
    key: str
    controls: Controls
    future: asyncio.Future[JSON | None] | None = None
    hit: bool = False
    plan: LoopPlan | None = None
    """The tool loop this request runs, if any (its hub rounds are stored with the answer)."""
    record: UsageRecord | None = None
    """The request's usage record, which tells whether a fallback answered."""
    field: str = "choices"
    """What a stored answer must hold a list of to be served (`data` for embeddings): `entries.readable`."""

    def readable(self, entry: bytes) -> bool:
        return entries.readable(entry, self.field)

    def headers(self) -> dict[str, str]:
        return {"x-litellm-cache-key": self.key, "x-toolhub-cache-hit": "true" if self.hit else "false"}

    async def save(self, completion: JSON | None) -> None:
        """A finished request's answer (None: no complete answer): store it if allowed, then wake waiters.

        An answer that may not be shared (`loops.shareable`) is neither stored nor handed to waiters. Waiters are
        woken once it is stored: until then an identical request that arrives waits too, rather than missing while
        Redis stores it."""
        if completion is not None and not loops.shareable(completion, self.record):
            completion = None
        if completion is not None and not self.controls.no_store:
            await self.cache.store(self, completion)
        self.release(completion)

    async def saving(self, items: AsyncIterator[JSON | bytes]) -> AsyncGenerator[JSON | bytes]:
        """Pass a stream's items through (chunks, and bytes such as SSE comments); once it has ended normally,
        store the answer its chunks add up to. A stream that fails, is cut or is abandoned is not stored."""
        gatherer = self.gatherer()
        try:
            async for item in items:
                if gatherer is not None and isinstance(item, dict):
                    gatherer.add(item)  # before the relay takes usage out of the chunk
                yield item
        finally:  # closed here when the stream is cut, not by the garbage collector: the tool loop accounts its
            if (aclose := getattr(items, "aclose", None)) is not None:  # round in progress as it closes
                await aclose()
        await self.save(None if gatherer is None else gatherer.completion())

    def gatherer(self) -> StreamGatherer | None:
        """What gathers this request's stream into the answer to store; None when it may not be stored."""
        return None if self.controls.no_store else StreamGatherer(self.cache.max_entry_bytes)

    def release(self, completion: JSON | None) -> None:
        future, self.future = self.future, None
        if future is not None:
            self.cache.inflight.pop(self.key, None)
            future.set_result(completion)


class ResponseCache:
    """Answers by key in a `Store`, with hit/miss counts for /metrics."""

    def __init__(self, settings: CacheSettings, store: Store, replays: Replays | None = None) -> None:
        self.settings = settings
        self.backend = store
        self.replays = replays or Replays(*replay_bounds(settings))
        """Rendered streams of recent streamed hits (`hub.cache.serve`)."""
        self.inflight: dict[str, asyncio.Future[JSON | None]] = {}
        self.hits = 0
        self.misses = 0

    def begin(
        self,
        body: JSON,
        route: ModelRoute,
        plan: LoopPlan | Literal[False] | None = None,
        record: UsageRecord | None = None,
    ) -> Lookup | None:
        """Take the controls out of `body`; None when this request is not cached (a tool loop not opted in).

        `plan` is the request's tool loop (None or False: none); `record` its usage record, read when it is saved.

        Raises:
            BadRequest: the `cache` controls are malformed.
        """
        controls = parse_controls(body.pop("cache", None))
        loop = plan or None
        if loop is not None and not route.cache_tool_loops:
            return None
        scope = b"" if loop is None else loops.scope(loop)
        key = cache_key(route.alias, body, controls.namespace or self.settings.namespace, scope)
        field = "data" if body.get("endpoint") == "embeddings" else "choices"  # (hub/api/embeddings keys it so)
        return Lookup(self, key, controls, plan=loop, record=record, field=field)

    async def find(self, lookup: Lookup) -> bytes | None:
        """The stored answer for `lookup` as JSON bytes (None: a miss, or `no-cache`, or older than its `s-maxage`)."""
        return None if lookup.controls.no_cache else await self._get(lookup)

    def follow(self, lookup: Lookup, *, stream: bool) -> asyncio.Future[JSON | None] | None:
        """The identical non-streamed request in flight to wait for; None makes `lookup` the one others wait for,
        unless it is `no-store`: its answer is not stored, so it is handed to no one (the README's rule) and others
        go on at once rather than wait for it and then go upstream anyway. (A `no-store` request may still wait for
        a leader that stores: it would read that answer from the cache a moment later.)"""
        if stream or lookup.controls.no_cache:
            return None
        leader = self.inflight.get(lookup.key)
        if leader is None and not lookup.controls.no_store:
            lookup.future = self.inflight[lookup.key] = asyncio.get_running_loop().create_future()
        return leader

    async def wait(self, leader: asyncio.Future[JSON | None]) -> JSON | None:
        """The leader's answer, or None if it failed or took longer than `inflight_wait`."""
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(leader), self.settings.inflight_wait)
        return None

    def count(self, lookup: Lookup, found: JSON | bytes | None) -> None:
        lookup.hit = found is not None
        if found is None:
            self.misses += 1
        else:
            self.hits += 1

    async def _get(self, lookup: Lookup) -> bytes | None:
        raw = self.backend.local.get(lookup.key)  # a hit in this process awaits nothing
        if raw is None and (raw := await self.backend.fetch(lookup.key, lookup.readable)) is None:
            return None
        stored_at, completion, *rounds = raw.split(b"\n", 2)  # one pass: a completion holds no newline (orjson)
        max_age = lookup.controls.s_maxage
        if max_age is not None and time.time() - float(stored_at) > max_age:
            return None
        if rounds and rounds[0]:
            loops.restore_rounds(lookup.plan, rounds[0])
        return completion

    @property
    def max_entry_bytes(self) -> int:
        """The largest answer kept: an eighth of the cache's bytes, so one answer never empties it."""
        return self.settings.max_bytes // 8

    async def store(self, lookup: Lookup, completion: JSON) -> None:
        if not entries.servable(completion, lookup.field):
            return  # what a reader would refuse (`entries.readable`) is not written
        ttl = lookup.controls.ttl if lookup.controls.ttl is not None else self.settings.ttl
        entry = b"%.6f\n%b" % (time.time(), orjson.dumps(completion))  # served as is on a non-streamed hit
        if rounds := loops.kept_rounds(lookup.plan, completion):
            entry += b"\n" + rounds
        if len(entry) <= self.max_entry_bytes:
            await self.backend.set(lookup.key, entry, ttl)


def replay_bounds(settings: CacheSettings) -> tuple[int, int]:
    """(entries, bytes) of rendered replays: an eighth of the configured bounds, which the store gets the rest of."""
    return max(1, settings.max_entries // 8), settings.max_bytes // 8


@contextlib.asynccontextmanager
async def open_cache(settings: CacheSettings) -> AsyncIterator[ResponseCache]:
    """The cache the settings describe, and beside it the store of cached MCP tool results (`hub.cache.tools`): both
    in this process, or both in the one Redis (with near copies); the Redis connection is closed on exit."""
    client: Any = None
    if settings.type == "redis":
        from hub.accounts.ratelimit import redis_client

        client = redis_client(settings.redis_url or "redis://127.0.0.1:6379/0")
        store: Store = RedisStore(client, settings.max_entries, settings.max_bytes - replay_bounds(settings)[1])
        tool_store: Store = RedisStore(client, tools.MAX_ENTRIES, tools.MAX_BYTES)
    else:
        store = LocalStore(settings.max_entries, settings.max_bytes - replay_bounds(settings)[1])
        tool_store = LocalStore(tools.MAX_ENTRIES, tools.MAX_BYTES)
    try:
        with tools.tool_results_in(tool_store, settings.namespace):
            yield ResponseCache(settings, store, Replays(*replay_bounds(settings)))
    finally:
        await store.aclose()
        await tool_store.aclose()
        if client is not None:
            await client.aclose()
