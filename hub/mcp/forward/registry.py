"""Which replica serves at which internal URL: `toolhub:mcp:replica:<id>` -> URL in Redis, with a TTL.

Each replica that has Redis and an advertised URL (`general_settings.replica_url`) picks a random id at start,
writes its URL under that id and refreshes it every third of the TTL. The MCP session ids it issues start with the
id (`<replica id>-<32 hex>`), so any replica can tell from a session id alone which replica holds the session, and
this registry tells it where that replica is. A replica that stops deletes its entry; one that was killed leaves it
for at most the TTL (a forward to it is then refused, which answers 404 as for an unknown session).

Each entry is signed (HMAC-SHA256 of id and URL, keyed on a hash of the master key, which every replica has and Redis
does not): a forward carries the client's `Authorization`, so an entry anyone able to write Redis could set would
hand them every bearer key, the master key included. An entry whose signature does not verify is unknown. When Redis
fails, the last URL known for the id is used even if stale (ids never move), else the lookup raises
`RegistryUnavailable` (a retryable 503: a 404 would end the client's session on a healthy replica), and Redis is not
asked again for `BACKOFF_SECONDS`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from typing import Any, Protocol

import anyio

from hub.accounts.ratelimit import redis_error

logger = logging.getLogger("toolhub.mcp")

KEY_PREFIX = "toolhub:mcp:replica-signed:"
"""Not the unsigned entries' old prefix: a replica of the previous version neither reads these nor writes there."""
TTL_SECONDS = 15.0
LOOKUP_SECONDS = 5.0
"""How long a lookup may wait on Redis (a failed one answers 503 unless the URL was known before)."""
BACKOFF_SECONDS = 2.0
"""After a failed lookup, how long Redis is not asked: an outage costs one request the wait, not every one."""
_KNOWN_MAX = 1024
_REPLICA_ID = re.compile(r"[0-9a-f]{12}")


def registry_client(url: str) -> Any:
    """Patient where `hub.accounts.ratelimit.redis_client` fails fast (a loaded 2-core machine saw 1 s connect
    timeouts): only requests for sessions held elsewhere wait on it, and giving up costs the client its session."""
    import redis.asyncio as redis

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


class RegistryUnavailable(Exception):
    """Redis could not be asked where a replica is, and its URL was never known here."""


def forward_secret(master_key: str) -> bytes:
    """The key entries are signed with: derived from the master key (every replica has it, Redis does not), and not
    the master key itself, which must never be an HMAC key that something else might also use."""
    return hashlib.sha256(b"toolhub-mcp-forward:" + master_key.encode()).digest()


def sign(secret: bytes, replica_id: str, url: str) -> str:
    """The signature of one entry: replica id and URL together, so an entry cannot be moved to another id."""
    return hmac.new(secret, f"{replica_id}\n{url}".encode(), hashlib.sha256).hexdigest()


def entry(secret: bytes, replica_id: str, url: str) -> str:
    """What is stored under `replica_id`: `<signature> <url>` (a URL never holds whitespace)."""
    return f"{sign(secret, replica_id, url)} {url}"


def verified_url(secret: bytes, replica_id: str, value: bytes | str) -> str | None:
    """The URL of a stored entry when its signature verifies, else None."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    signature, _, url = text.partition(" ")
    return url if url and hmac.compare_digest(signature, sign(secret, replica_id, url)) else None


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

    def forget(self, url: str) -> None:
        """Drop what is remembered of `url` (a connect to it failed)."""
        ...


class ReplicaRegistry:
    """This replica's signed entry in Redis (kept alive by `run`), and the lookup of the others'."""

    def __init__(self, client: Any, replica_id: str, url: str, secret: bytes, *, ttl: float = TTL_SECONDS) -> None:
        self.client = client
        self.replica_id = replica_id
        self.url = url
        self.secret = secret
        self.ttl = ttl
        self._known: dict[str, tuple[str, float]] = {}
        """Replica id -> (URL, until when it is trusted without asking): an id's URL never changes (a restart takes
        a new id), so only a replica's death makes an entry wrong, and a forward to a dead replica answers 404."""
        self._quiet_until = 0.0
        """Until when Redis is not asked (it failed just before)."""

    async def register(self) -> bool:
        """Write (or refresh) this replica's entry; False when Redis failed (logged, retried by `run`)."""
        try:
            with anyio.fail_after(2):
                value = entry(self.secret, self.replica_id, self.url)
                await self.client.set(KEY_PREFIX + self.replica_id, value, px=int(self.ttl * 1000))
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
        """The URL `replica_id` advertised, or None (unknown, expired, or not signed with our secret).

        Raises:
            RegistryUnavailable: Redis failed (now or just before) and the URL was never known here.
        """
        known = self._known.get(replica_id)
        now = anyio.current_time()
        if known is not None and known[1] > now:
            return known[0]
        if now < self._quiet_until:
            return self._stale(known)
        try:
            with anyio.fail_after(LOOKUP_SECONDS):
                value = await self.client.get(KEY_PREFIX + replica_id)
        except (redis_error(), OSError, TimeoutError) as exc:
            self._quiet_until = anyio.current_time() + BACKOFF_SECONDS
            logger.warning("could not look up a replica in Redis (%s); not asking for %.0f s", exc, BACKOFF_SECONDS)
            return self._stale(known)
        url = None if value is None else verified_url(self.secret, replica_id, value)
        if url is None:
            if value is not None:
                logger.warning("ignored replica %s's entry in Redis: its signature does not verify (another "
                               "master key, or written by something else)", replica_id)  # fmt: skip
            self._known.pop(replica_id, None)
            return None
        if len(self._known) >= _KNOWN_MAX:
            self._known.clear()
        self._known[replica_id] = (url, anyio.current_time() + self.ttl)
        return url

    @staticmethod
    def _stale(known: tuple[str, float] | None) -> str:
        if known is None:
            raise RegistryUnavailable
        return known[0]

    def forget(self, url: str) -> None:
        """Drop the ids known at `url`: a connect to it failed, so its replica is probably gone."""
        for replica_id in [rid for rid, (known, _) in self._known.items() if known == url]:
            del self._known[replica_id]

    async def unregister(self) -> None:
        """Delete this replica's entry (at stop): its sessions end with it, other replicas answer 404 at once."""
        self._known.pop(self.replica_id, None)
        try:
            with anyio.fail_after(1):
                await self.client.delete(KEY_PREFIX + self.replica_id)
        except (redis_error(), OSError, TimeoutError) as exc:
            logger.warning("could not remove this replica from Redis (%s); its entry expires", exc)
