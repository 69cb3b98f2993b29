"""A small bounded, expiring map for state that must outlive one request (thinking and thought signatures)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    """At most `max_items` entries, each kept `ttl` seconds; the oldest entries go first when it is full.

    Signatures are keyed by tool-call id: an OpenAI client sends the id back on the next turn, without the signature.
    """

    def __init__(
        self, max_items: int = 10_000, ttl: float = 3600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._max_items = max_items
        self._ttl = ttl
        self._clock = clock

    def __len__(self) -> int:
        return len(self._items)

    def put(self, key: str, value: V) -> None:
        self._items[key] = (self._clock() + self._ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self._max_items:
            self._items.popitem(last=False)

    def get(self, key: str) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        if expires < self._clock():
            del self._items[key]
            return None
        return value
