"""Where per-conversation state goes so that any replica can read it: Redis when configured, nowhere else otherwise.

Writes never wait: `put` queues the value and a background task sends the queue in one pipeline. Reads batch every
key a request needs into one MGET. A Redis that fails is logged (once per 30 s) and read as empty: the caller falls
back to what its own process has, as with no Redis at all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

import anyio

from hub.accounts.ratelimit import redis_error

logger = logging.getLogger("toolhub.shared")
MAX_VALUE_BYTES = 1024 * 1024
"""A value larger than this stays in its process (one huge conversation must not fill Redis)."""


class SharedStore(Protocol):
    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The values found (missing, expired and unreadable keys are left out)."""
        ...

    def put(self, key: str, value: bytes, ttl: float) -> None:
        """Keep `value` for `ttl` seconds, without blocking the caller."""
        ...


class LocalOnly:
    """No sharing: each process keeps its own state (the default without `redis_url`)."""

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        return {}

    def put(self, key: str, value: bytes, ttl: float) -> None:
        return None


class RedisShared:
    """Values in Redis under `prefix`, written in the background."""

    def __init__(self, client: Any, *, prefix: str = "toolhub:shared:") -> None:
        self._client = client
        self.prefix = prefix
        self._queue: dict[str, tuple[bytes, int]] = {}
        self._wake = anyio.Event()
        self._warned_at = 0.0

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        try:
            with anyio.fail_after(1):
                values = await self._client.mget([self.prefix + key for key in keys])
        except (redis_error(), OSError, TimeoutError) as exc:
            self._warn(exc)
            return {}
        found = {key: value for key, value in zip(keys, values, strict=True) if value is not None}
        found.update((key, self._queue[key][0]) for key in keys if key in self._queue)  # not sent yet
        return found

    def put(self, key: str, value: bytes, ttl: float) -> None:
        if len(value) <= MAX_VALUE_BYTES:
            self._queue[key] = (value, max(1, int(ttl * 1000)))
            self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            await self.flush()

    async def flush(self) -> None:
        batch, self._queue = self._queue, {}
        if not batch:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, (value, ttl_ms) in batch.items():
                    pipe.set(self.prefix + key, value, px=ttl_ms)
                await pipe.execute()
        except (redis_error(), OSError) as exc:
            self._warn(exc)

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned_at > 30:
            self._warned_at = now
            logger.warning("shared conversation state in Redis failed (%s); using this process's own", exc)
