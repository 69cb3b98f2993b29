"""One bounded, expiring LRU map for state that must outlive one request: the providers' thinking blocks and thought
signatures, and the hub's response cache (`hub.cache.store.LocalStore`) and cached tool results."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    """At most `max_items` entries (and, when set, `max_bytes` of the sizes given to `put`), each kept for its TTL;
    when it is full the least recently used entries go first.

    Signatures are keyed by tool-call id: an OpenAI client sends the id back on the next turn, without the signature.
    """

    def __init__(
        self,
        max_items: int = 10_000,
        ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        max_bytes: int | None = None,
    ) -> None:
        self._items: OrderedDict[str, tuple[float, V, int]] = OrderedDict()
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._ttl = ttl
        self._clock = clock
        self.bytes_used = 0
        """The sum of the sizes of the entries held (0 unless `put` is given sizes)."""

    def __len__(self) -> int:
        return len(self._items)

    def put(self, key: str, value: V, ttl: float | None = None, size: int = 0) -> None:
        """Keep `value` for `ttl` seconds (the cache's own TTL when None); a value with no time to live, or larger
        than `max_bytes` alone, is not kept."""
        ttl = self._ttl if ttl is None else ttl
        if ttl <= 0 or (self._max_bytes is not None and size > self._max_bytes):
            return
        if key in self._items:
            self._drop(key)
        self._items[key] = (self._clock() + ttl, value, size)
        self.bytes_used += size
        while len(self._items) > self._max_items or (self._max_bytes is not None and self.bytes_used > self._max_bytes):
            self._drop(next(iter(self._items)))

    def get(self, key: str) -> V | None:
        """The value, if it is still live (it becomes the most recently used)."""
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] <= self._clock():
            self._drop(key)
            return None
        self._items.move_to_end(key)
        return item[1]

    def clear(self) -> None:
        self._items.clear()
        self.bytes_used = 0

    def _drop(self, key: str) -> None:
        self.bytes_used -= self._items.pop(key)[2]
