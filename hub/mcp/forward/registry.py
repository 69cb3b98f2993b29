"""Which replica serves at which internal URL: `toolhub:mcp:replica:<id>` -> URL in Redis, with a TTL.

Each replica that has Redis and an advertised URL (`general_settings.replica_url`) picks a random id at start,
writes its URL under that id and refreshes it every third of the TTL. The MCP session ids it issues start with the
id (`<replica id>-<32 hex>`), so any replica can tell from a session id alone which replica holds the session, and
this registry tells it where that replica is. A replica that stops deletes its entry; one that was killed leaves it
for at most the TTL (a forward to it is then refused, which answers 404 as for an unknown session).
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any, Protocol

import anyio

from hub.accounts.ratelimit import redis_error

logger = logging.getLogger("toolhub.mcp")

KEY_PREFIX = "toolhub:mcp:replica:"
TTL_SECONDS = 15.0
LOOKUP_SECONDS = 5.0
"""How long a lookup may wait on Redis: a failed one ends the client's session (404), so it is worth waiting for."""
_KNOWN_MAX = 1024
_REPLICA_ID = re.compile(r"[0-9a-f]{12}")


def registry_client(url: str) -> Any:
    """Patient where `hub.accounts.ratelimit.redis_client` fails fast (a loaded 2-core machine saw 1 s connect
    timeouts): only requests for sessions held elsewhere wait on it, and giving up costs the client its session."""
    import redis.asyncio as redis

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def new_replica_id() -> str:
    """A fresh id per process: a restarted replica holds none of its predecessor's sessions, so it takes no name
    that would draw their requests."""
    return secrets.token_hex(6)


def session_prefix(replica_id: str) -> str:
    """What every MCP session id of `replica_id` starts with (visible ASCII, as the spec requires)."""
    return f"{replica_id}-"


def owner_of(session_id: str) -> str | None:
    """The replica id a session id names, or None (an id of a replica without forwarding, or made up)."""
    prefix, dash, rest = session_id.partition("-")
    return prefix if dash and rest and valid_replica_id(prefix) else None


def valid_replica_id(text: str) -> bool:
    """Whether `text` has the shape of a replica id (and so is safe as a Redis key part or a file name)."""
    return _REPLICA_ID.fullmatch(text) is not None


class Registry(Protocol):
    """Where the replicas listen: `ReplicaRegistry` (Redis, across machines) or `WorkerRegistry` (the workers of one
    `toolhub serve --workers N` without Redis, hub/mcp/forward/local.py)."""

    replica_id: str
    url: str

    async def run(self) -> None:
        """Keep this replica's entry until cancelled."""
        ...

    async def url_of(self, replica_id: str) -> str | None:
        """The URL `replica_id` advertised, or None (unknown or gone)."""
        ...

    async def unregister(self) -> None:
        """Remove this replica's entry (at stop)."""
        ...


class ReplicaRegistry:
    """This replica's entry in Redis (kept alive by `run`), and the lookup of the others'."""

    def __init__(self, client: Any, replica_id: str, url: str, *, ttl: float = TTL_SECONDS) -> None:
        self.client = client
        self.replica_id = replica_id
        self.url = url
        self.ttl = ttl
        self._known: dict[str, tuple[str, float]] = {}
        """Replica id -> (URL, until when it is trusted): an id's URL never changes (a restart takes a new id), so
        only a replica's death makes an entry wrong, and a forward to a dead replica answers 404 anyway."""

    async def register(self) -> bool:
        """Write (or refresh) this replica's entry; False when Redis failed (logged, retried by `run`)."""
        try:
            with anyio.fail_after(2):
                await self.client.set(KEY_PREFIX + self.replica_id, self.url, px=int(self.ttl * 1000))
        except (redis_error(), OSError, TimeoutError) as exc:
            logger.warning("could not register this replica's MCP URL in Redis (%s); retrying", exc)
            return False
        return True

    async def run(self) -> None:
        """Refresh the entry every third of the TTL until cancelled, so one missed beat does not drop it."""
        while True:
            await self.register()
            await anyio.sleep(self.ttl / 3)

    async def url_of(self, replica_id: str) -> str | None:
        """The URL `replica_id` advertised, or None (unknown, expired, or Redis failed)."""
        known = self._known.get(replica_id)
        if known is not None and known[1] > anyio.current_time():
            return known[0]
        try:
            with anyio.fail_after(LOOKUP_SECONDS):
                value = await self.client.get(KEY_PREFIX + replica_id)
        except (redis_error(), OSError, TimeoutError) as exc:
            logger.warning("could not look up a replica in Redis (%s); answering as for an unknown session", exc)
            return None
        if value is None:
            self._known.pop(replica_id, None)
            return None
        url = value.decode() if isinstance(value, bytes) else str(value)
        if len(self._known) >= _KNOWN_MAX:
            self._known.clear()
        self._known[replica_id] = (url, anyio.current_time() + self.ttl)
        return url

    async def unregister(self) -> None:
        """Delete this replica's entry (at stop): its sessions end with it, other replicas answer 404 at once."""
        self._known.pop(self.replica_id, None)
        try:
            with anyio.fail_after(1):
                await self.client.delete(KEY_PREFIX + self.replica_id)
        except (redis_error(), OSError, TimeoutError) as exc:
            logger.warning("could not remove this replica from Redis (%s); its entry expires", exc)
