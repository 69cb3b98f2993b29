"""Where cached answers live: `LocalStore` (this process, LRU bounded by entries and bytes) or `RedisStore` (shared).

Both keep opaque bytes under a key for a TTL, and the TTL holds in every process: nothing is kept past it.
A Redis that fails is a miss (and a store that does not happen), logged, never a failed request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from hub.accounts.ratelimit import redis_error
from providers._cache import TTLCache

logger = logging.getLogger("toolhub.cache")
WARN_EVERY = 3600.0
"""Seconds between two warnings about the same unreadable key."""


class Store(Protocol):
    local: TTLCache[bytes]
    """What this process holds, read without awaiting: every entry (`LocalStore`), or near copies (`RedisStore`)."""

    @property
    def bytes_used(self) -> int:
        """For /metrics: the bytes the store holds, or (a shared one) this process wrote."""
        ...

    async def fetch(self, key: str, check: Callable[[bytes], bool] | None = None) -> bytes | None:
        """An entry `local` does not hold: from the shared store (None for a store that is only local). With
        `check`, a value it refuses is None too (a miss, never kept nearby), warned about once per key and hour."""
        ...

    async def set(self, key: str, value: bytes, ttl: float) -> None: ...

    async def aclose(self) -> None: ...


async def read(store: Store, key: str) -> bytes | None:
    """The entry under `key`: this process's copy, else the shared store's."""
    value = store.local.get(key)
    return value if value is not None else await store.fetch(key)


class LocalStore:
    """In-process LRU: at most `max_entries` entries and `max_bytes` bytes of keys and values (`providers._cache`)."""

    def __init__(self, max_entries: int, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.local: TTLCache[bytes] = TTLCache(max_entries, clock=clock, max_bytes=max_bytes)

    def __len__(self) -> int:
        return len(self.local)

    @property
    def bytes_used(self) -> int:
        """Bytes of the keys and values held now."""
        return self.local.bytes_used

    async def get(self, key: str) -> bytes | None:
        return self.local.get(key)

    async def fetch(self, key: str, check: Callable[[bytes], bool] | None = None) -> bytes | None:
        return None

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self.local.put(key, value, ttl, len(key) + len(value))

    async def aclose(self) -> None:
        self.local.clear()


class RedisStore:
    """Entries in Redis with `PX` expiry, shared by every Toolhub process on that Redis.

    A process keeps a near copy of what it read or wrote (`local`, an LRU bounded like a `LocalStore`) that expires
    when the Redis entry does (its remaining `PTTL` at the read): a hit seen again costs no round trip, and nothing
    outlives its TTL anywhere.
    """

    def __init__(self, client: Any, max_entries: int, max_bytes: int) -> None:
        self._redis = client
        self.local: TTLCache[bytes] = TTLCache(max_entries, max_bytes=max_bytes)
        self.bytes_used = 0
        """Bytes this process wrote (Redis itself bounds memory with its own `maxmemory` policy)."""
        self._warned: TTLCache[bool] = TTLCache(1_000, WARN_EVERY)
        """Keys whose unreadable value was warned about lately: a value nobody replaces (every request `no-store`)
        is logged once an hour, not once a request."""

    async def get(self, key: str) -> bytes | None:
        return await read(self, key)

    async def fetch(self, key: str, check: Callable[[bytes], bool] | None = None) -> bytes | None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                value, pttl = await pipe.get(key).pttl(key).execute()
        except (redis_error(), OSError) as exc:
            logger.warning("cache: Redis GET failed, served as a miss: %s", exc)
            return None
        if value is not None and check is not None and not check(value):
            self._unreadable(key, value)
            return None
        if value is not None and pttl > 0:
            self.local.put(key, value, pttl / 1000, len(key) + len(value))
        return value

    def _unreadable(self, key: str, value: bytes) -> None:
        if self._warned.get(key) is None:
            self._warned.put(key, True)
            logger.warning(
                "cache: the value under %s is not a stored answer (%d bytes), served as a miss", key, len(value)
            )

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        if ttl <= 0:
            return
        try:
            await self._redis.set(key, value, px=max(1, int(ttl * 1000)))
        except (redis_error(), OSError) as exc:
            logger.warning("cache: Redis SET failed, answer not cached: %s", exc)
            return
        self.bytes_used += len(key) + len(value)
        self.local.put(key, value, ttl, len(key) + len(value))

    async def aclose(self) -> None:
        """Drop the near copies (the Redis client belongs to whoever made it, and may serve other stores)."""
        self.local.clear()
