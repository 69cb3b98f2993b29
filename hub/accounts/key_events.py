"""Key changes reach every process sharing Redis at once, through pub/sub.

A process that changes a key (`/key/update`, `/key/delete`, `/key/block`, `toolhub keys ...`) drops it from its own
cache and publishes `u:<hash>` (changed) or `d:<hash>` (deleted) on `toolhub:keys:changed`; every other process drops
it too, so its next request re-reads the key from the store. `*` means "re-read every key" (the CLI sends it). A
process that was not subscribed for a while (Redis down, a reconnect) may have missed messages: it marks every cached
key stale when it subscribes again. The key cache time (`key_cache_seconds`) stays the fallback.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import anyio

from hub.accounts.keys import KeyAuthenticator
from hub.accounts.ratelimit import redis_error

logger = logging.getLogger("toolhub.keys")
CHANNEL = "toolhub:keys:changed"
RETRY_SECONDS = 1.0


def listener_client(url: str) -> Any:
    """A client for a long-lived subscription: no read timeout, but a PING every 10 s finds a dead connection."""
    import redis.asyncio as redis

    return redis.Redis.from_url(url, socket_connect_timeout=1, health_check_interval=10, socket_keepalive=True)


async def publish(client: Any, message: str, channel: str = CHANNEL) -> None:
    """Publish one change; a failure is logged (the other processes fall back to their key cache time)."""
    try:
        with anyio.fail_after(1):
            await client.publish(channel, message)
    except (redis_error(), OSError, TimeoutError) as exc:
        logger.warning("could not publish a key change to Redis (%s); other processes see it within their key cache"
                       " time", exc)  # fmt: skip


class KeyEvents:
    """Publishes this process's key changes and applies everyone else's to `keys`."""

    def __init__(self, client: Any, listener: Any, keys: KeyAuthenticator, *, channel: str = CHANNEL) -> None:
        self._client = client
        self._listener = listener
        self._keys = keys
        self._channel = channel
        self._me = uuid.uuid4().hex[:12]
        self.subscribed = anyio.Event()
        keys.publish = self.publish

    async def publish(self, digest: str, deleted: bool) -> None:
        await publish(self._client, f"{'d' if deleted else 'u'}:{digest}:{self._me}", self._channel)

    async def aclose(self) -> None:
        await self._listener.aclose()

    async def run(self) -> None:
        """Listen until cancelled; resubscribe after a failure, marking every cached key stale."""
        while True:
            try:
                await self._listen()
            except (redis_error(), OSError) as exc:
                logger.warning("key change subscription failed (%s); retrying", exc)
            await anyio.sleep(RETRY_SECONDS)

    async def _listen(self) -> None:
        async with self._listener.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(self._channel)
            self._keys.expire_all()  # whatever was published while not subscribed
            self.subscribed.set()
            while True:
                message = await pubsub.get_message(timeout=5.0)
                if message is not None and message.get("type") == "message":
                    self.apply(message["data"])

    def apply(self, data: bytes | str) -> None:
        text = data.decode() if isinstance(data, bytes) else data
        if text == "*":
            self._keys.expire_all()
            return
        kind, _, rest = text.partition(":")
        digest, _, sender = rest.partition(":")
        if sender != self._me and kind in ("u", "d"):
            self._keys.invalidate(digest)
            if kind == "d":
                self._keys.ledger.forget(digest)
