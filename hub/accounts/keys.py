"""Virtual keys: made and hashed here, checked on every request against a short in-memory cache of the store.

Only `sha256(key)` is stored. A request's key is hashed, looked up in the cache (then the store on a miss, one
query per key however many requests wait for it), and compared with `hmac.compare_digest`. Cached entries are
re-read after `ttl` seconds so a key blocked or deleted by another process stops working within that time; keys
changed through this process's API are dropped from its cache at once, and with Redis from every other process's
within a second (`hub.accounts.key_events`). While the store is down, known keys keep
working from the cache.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeGuard

import anyio

from hub.accounts.auth import Principal
from hub.accounts.ratelimit import Limit
from hub.accounts.spend import Account, BudgetLedger
from hub.errors import AuthenticationError, PermissionDenied, ServiceUnavailable
from hub.storage import KeyRow, Store, StoreError

_HASH = re.compile(r"^[0-9a-f]{64}$")


def new_key() -> str:
    return "sk-" + secrets.token_urlsafe(24)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def token_hash(key_or_hash: str) -> str:
    """The hash for a key given either as the key itself or as its hash (as /key/info accepts both)."""
    return key_or_hash if _HASH.match(key_or_hash) else hash_key(key_or_hash)


def display_name(key: str) -> str:
    return f"sk-...{key[-4:]}"


def is_expired(expires: float | None, now: float) -> TypeGuard[float]:
    """Whether a key with this expiry time (None: never) has expired at `now`: from that time on. The gateway, the
    console and `toolhub keys list` all ask this, so none of them calls a key active that another refuses."""
    return expires is not None and now >= expires


@dataclass(slots=True)
class KeyEntry:
    """A cached key: its row, the Principal handed to the app, its rate limit and its budget account."""

    row: KeyRow
    principal: Principal
    limit: Limit | None
    account: Account
    fetched_at: float


def principal_for(row: KeyRow) -> Principal:
    def scope(values: list[str] | None) -> frozenset[str] | None:
        return frozenset(values) if values else None  # LiteLLM: an empty list allows everything

    return Principal(key_id=row.token_hash, alias=row.key_alias, models=scope(row.models),
                     mcp_servers=scope(row.mcp_servers), mcp_tools=scope(row.mcp_tools),
                     metadata=row.metadata)  # fmt: skip


def limit_for(row: KeyRow) -> Limit | None:
    if row.rpm_limit is None and row.tpm_limit is None:
        return None
    label = f"key '{row.key_alias}'" if row.key_alias else f"key {row.key_name}"
    return Limit(name=f"key:{row.token_hash}", label=label, rpm=row.rpm_limit, tpm=row.tpm_limit)


class KeyAuthenticator:
    """The `Authenticator` for virtual keys (plugged into `MasterKeyAuth` after the master key)."""

    def __init__(self, store: Store, ledger: BudgetLedger, *, ttl: float = 5.0, negative_ttl: float = 1.0) -> None:
        self.store = store
        self.ledger = ledger
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self._cache: dict[str, KeyEntry] = {}
        self._misses: dict[str, float] = {}
        self._loading: dict[str, anyio.Event] = {}
        self._changes: dict[str, int] = {}
        """Per key, the number of the last change heard of (`invalidate`); `expire_all` bumps `_epoch`. A read in
        flight across a change does not cache what it read: it may be from before the change."""
        self._change_seq = 0
        self._epoch = 0
        self.publish: Callable[[str, bool], Awaitable[None]] | None = None
        """Tells the other processes (`hub.accounts.key_events`, with Redis); None: they wait for their `ttl`."""

    async def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise AuthenticationError(
                "Missing API key. Send it as 'Authorization: Bearer <key>'.", code="missing_api_key"
            )
        digest = hash_key(token)
        entry = self._cache.get(digest)
        if entry is None or time.monotonic() - entry.fetched_at > self.ttl:
            entry = await self._fresh(digest, entry)
        if entry is None or not hmac.compare_digest(entry.row.token_hash, digest):
            raise AuthenticationError("Invalid API key.", code="invalid_api_key")
        row = entry.row
        if row.blocked:
            raise PermissionDenied("This key is blocked. Ask the gateway admin to unblock it.", code="key_blocked")
        if is_expired(row.expires, time.time()):
            expired = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row.expires))
            raise AuthenticationError(f"This key expired at {expired}.", code="key_expired")
        return entry.principal

    def entry(self, key_id: str) -> KeyEntry | None:
        """The cached entry of an authenticated key (budget account, rate limit)."""
        return self._cache.get(key_id)

    async def reread(self, key_id: str) -> KeyEntry | None:
        """An authenticated key's entry read again, for when `entry()` has none (accounting's second chance).

        The cache may hold none for a key that was just authenticated: a change of the key dropped it since, or the
        read that authenticated it spanned a change and cached nothing. Accounting such a request by no entry held,
        charged and rate-limited nothing, and `/key/info` showed the key a request short for good. None: the key is
        gone. Raises ServiceUnavailable when the store is down."""
        return await self._fresh(key_id, None)

    def invalidate(self, digest: str) -> None:
        self._cache.pop(digest, None)
        self._misses.pop(digest, None)
        if len(self._changes) > 10_000:
            self._changes.clear()  # a read in flight then sees a change that may not be: it only skips caching
        self._change_seq += 1
        self._changes[digest] = self._change_seq

    async def changed(self, digest: str, *, deleted: bool = False) -> None:
        """A key was changed (or deleted) here: drop it from this cache and every other process's."""
        self.invalidate(digest)
        if deleted:
            self.ledger.forget(digest)
        if self.publish is not None:
            await self.publish(digest, deleted)

    def expire_all(self) -> None:
        """Re-read every cached key at its next use (a stale entry still serves while the store is down)."""
        for entry in self._cache.values():
            entry.fetched_at = -math.inf
        self._misses.clear()
        self._epoch += 1

    async def _fresh(self, digest: str, stale: KeyEntry | None) -> KeyEntry | None:
        missed = self._misses.get(digest)
        if stale is None and missed is not None and time.monotonic() - missed < self.negative_ttl:
            return None
        loading = self._loading.get(digest)
        if loading is not None:  # another request is already reading this key: wait for its answer
            await loading.wait()
            if digest not in self._cache and digest not in self._misses:
                return await self._fresh(digest, stale)  # that read failed: try again, and fail the same way
            return self._cache.get(digest)
        self._loading[digest] = anyio.Event()
        try:
            return await self._load(digest, stale)
        finally:
            self._loading.pop(digest).set()

    async def _load(self, digest: str, stale: KeyEntry | None) -> KeyEntry | None:
        version = self._version(digest)
        try:
            row = await self.store.get_key(digest)
            account = await self.ledger.account(row) if row is not None else None
        except StoreError as exc:
            if stale is not None:
                if version == self._version(digest):
                    stale.fetched_at = time.monotonic()  # keep serving known keys while the store is down
                return stale
            raise ServiceUnavailable(f"The key store is unavailable: {exc}", code="key_store_unavailable") from exc
        if version != self._version(digest):  # changed while read (maybe read before): answer, cache nothing
            return None if row is None or account is None else _entry(row, account, -math.inf)
        if row is None or account is None:
            self._cache.pop(digest, None)
            if len(self._misses) > 10_000:
                self._misses.clear()
            self._misses[digest] = time.monotonic()
            return None
        entry = self._cache[digest] = _entry(row, account, time.monotonic())
        return entry

    def _version(self, digest: str) -> tuple[int, int]:
        return self._epoch, self._changes.get(digest, 0)


def _entry(row: KeyRow, account: Account, fetched_at: float) -> KeyEntry:
    return KeyEntry(row, principal_for(row), limit_for(row), account, fetched_at)
