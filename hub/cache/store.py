"""Where cached answers live: `LocalStore` (this process, LRU bounded by entries and bytes) or `RedisStore` (shared).

Both keep opaque bytes under a key for a TTL, and the TTL holds in every process: nothing is kept past it.
A Redis that fails is a miss (and a store that does not happen), logged, never a failed request.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any, Protocol

from redis.exceptions import RedisError

logger = logging.getLogger("toolhub.cache")


class Store(Protocol):
    bytes_used: int

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float) -> None: ...

    async def aclose(self) -> None: ...


class LocalStore:
    """In-process LRU: at most `max_entries` entries and `max_bytes` bytes of keys and values."""

    def __init__(self, max_entries: int, max_bytes: int, clock: Any = time.monotonic) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes_used = 0
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry[1]

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        size = len(key) + len(value)
        if size > self.max_bytes or ttl <= 0:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (self._clock() + ttl, value)
        self.bytes_used += size
        while len(self._entries) > self.max_entries or self.bytes_used > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        _, value = self._entries.pop(key)
        self.bytes_used -= len(key) + len(value)

    async def aclose(self) -> None:
        self._entries.clear()
        self.bytes_used = 0


class RedisStore:
    """Entries in Redis with `PX` expiry, shared by every Toolhub process on that Redis.

    A process keeps a near copy of what it read or wrote in a `LocalStore` that expires when the Redis entry does
    (its remaining `PTTL` at the read): a hit seen again costs no round trip, and nothing outlives its TTL anywhere.
    """

    def __init__(self, client: Any, near: LocalStore) -> None:
        self._redis = client
        self.near = near
        self.bytes_used = 0
        """Bytes this process wrote (Redis itself bounds memory with its own `maxmemory` policy)."""

    async def get(self, key: str) -> bytes | None:
        if (value := await self.near.get(key)) is not None:
            return value
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                value, pttl = await pipe.get(key).pttl(key).execute()
        except (RedisError, OSError) as exc:
            logger.warning("cache: Redis GET failed, served as a miss: %s", exc)
            return None
        if value is not None and pttl > 0:
            await self.near.set(key, value, pttl / 1000)
        return value

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        if ttl <= 0:
            return
        try:
            await self._redis.set(key, value, px=max(1, int(ttl * 1000)))
        except (RedisError, OSError) as exc:
            logger.warning("cache: Redis SET failed, answer not cached: %s", exc)
            return
        self.bytes_used += len(key) + len(value)
        await self.near.set(key, value, ttl)

    async def aclose(self) -> None:
        """Drop the near copies (the Redis client belongs to whoever made it, and may serve other stores)."""
        await self.near.aclose()
