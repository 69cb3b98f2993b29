"""Keys, budgets, rate limits, pricing, usage storage and metrics, wired into the app as one lifespan extension.

On the request path: `admit` (before the provider call) holds the request's worst case against the key's budget
(`hub.accounts.budget`; in Redis when `redis_url` is set) and checks the key's and deployment's rate limits; the
returned ticket's `settle` (when the request finishes) prices it, releases the hold, charges the key and counts its
tokens;
`record` hands the finished record to the store's queue and the metrics. None of these touch the database.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio

from hub.accounts.auth import MasterKeyAuth, Principal
from hub.accounts.budget import Budgets, Hold, MemoryBudgets, worst_case
from hub.accounts.key_events import KeyEvents, listener_client
from hub.accounts.keys import KeyAuthenticator, KeyEntry
from hub.accounts.pricing import Pricer
from hub.accounts.ratelimit import Limit, MemoryLimiter, RedisLimiter, redis_client as make_redis_client
from hub.accounts.shared_budget import RedisBudgets
from hub.accounts.spend import BudgetLedger
from hub.accounts.usage import ToolCallRecord, UsageRecord
from hub.config import Config, ModelRoute
from hub.errors import RateLimited
from hub.metrics import Metrics
from hub.state import HubState
from hub.storage import Store, StoreError, is_postgres_url, open_store, sqlite_path
from hub.storage.writer import UsageWriter, database_scope

logger = logging.getLogger("toolhub.accounting")


class _Ticket:
    __slots__ = ("_accounting", "_entry", "_route", "_limits", "_hold")

    def __init__(self, accounting: Accounting, entry: KeyEntry | None, route: ModelRoute, limits: Sequence[Limit],
                 hold: Hold | None) -> None:  # fmt: skip
        self._accounting = accounting
        self._entry = entry
        self._route = route
        self._limits = limits
        self._hold = hold

    def check(self, record: UsageRecord) -> None:
        entry = self._entry
        if entry is not None and entry.account.max_budget is not None:
            entry.account.check(self._accounting.pricer.cost(record.priced_route or self._route, record))

    def settle(self, record: UsageRecord) -> None:
        accounting = self._accounting
        cost = record.cost = accounting.pricer.cost(record.priced_route or self._route, record)
        if self._hold is not None:
            accounting.budgets.settle(self._hold, cost)
        elif self._entry is not None:
            self._entry.account.charge(cost)
        if self._limits:
            accounting.limiter.add_tokens(self._limits, record.prompt_tokens + record.completion_tokens)

    def __del__(self) -> None:
        hold = self._hold
        if hold is not None and not hold.done:  # a request that ended without being accounted frees its hold
            self._accounting.budgets.settle(hold, 0.0)


class Accounting:
    """The `Guard` and `UsageSink` of an app with a store."""

    def __init__(self, keys: KeyAuthenticator, writer: UsageWriter, metrics: Metrics,
                 limiter: MemoryLimiter | RedisLimiter, budgets: Budgets | None = None) -> None:  # fmt: skip
        self.keys = keys
        self.writer = writer
        self.metrics = metrics
        self.limiter = limiter
        self.budgets: Budgets = budgets or MemoryBudgets()
        self.pricer = Pricer()
        self._route_limits: dict[int, Limit | None] = {}

    async def admit(self, principal: Principal, route: ModelRoute, body: Mapping[str, Any] | None = None) -> _Ticket:
        """Hold the request's worst case against its key's budget (`body`: what it asks for; without it, the model's
        output limit), then count it against the key's and the deployment's rate limits."""
        key_id = principal.key_id
        entry = None if key_id is None else self.keys.entry(key_id) or await self.keys.reread(key_id)
        limits = self._limits(entry, route)
        hold: Hold | None = None
        try:
            if entry is not None and entry.account.max_budget is not None:
                amount = worst_case(self.pricer.price(route), route.deployment.model, body)
                hold = await self.budgets.reserve(entry.row.token_hash, entry.account, amount)
            if limits:
                checked = self.limiter.check(limits)
                if checked is not None:  # RedisLimiter: a coroutine
                    await checked
        except BaseException as exc:  # refused or cancelled: nothing stays held
            if hold is not None:
                self.budgets.settle(hold, 0.0)
            if isinstance(exc, RateLimited):
                self.metrics.rejected.labels(exc.code or "rate_limited").inc()
            raise
        return _Ticket(self, entry, route, limits, hold)

    def record(self, record: UsageRecord) -> None:
        self.writer.record(record)
        self.metrics.record(record)

    def record_tool_call(self, call: ToolCallRecord) -> None:
        self.writer.record_tool_call(call)
        self.metrics.record_tool_call(call)

    def _limits(self, entry: KeyEntry | None, route: ModelRoute) -> list[Limit]:
        route_limit = self._route_limits.get(id(route), False)
        if isinstance(route_limit, bool):  # not seen yet (False is the marker; a route without limits is None)
            route_limit = self._route_limits[id(route)] = deployment_limit(route)
        limits: list[Limit] = []
        if entry is not None and entry.limit is not None:
            limits.append(entry.limit)
        if route_limit is not None:
            limits.append(route_limit)
        return limits


def deployment_limit(route: ModelRoute) -> Limit | None:
    if route.rpm is None and route.tpm is None:
        return None
    d = route.deployment
    name = f"deployment:{route.alias}:{d.provider}/{d.model}@{d.api_base}"
    label = f"model '{route.alias}' (deployment {d.provider}/{d.model})"
    return Limit(name=name, label=label, rpm=route.rpm, tpm=route.tpm)


LEGACY_SPILL = "toolhub-usage-spill.jsonl"


def spill_path(config: Config) -> Path:
    """Where usage records go while the database is down."""
    if config.usage_spill_path:
        return Path(config.usage_spill_path)
    if is_postgres_url(config.database_url):  # named after the database, as journals are: never replayed into another
        return Path(f"toolhub-usage-spill-{database_scope(config.database_url or '')}.jsonl")
    return Path(sqlite_path(config.database_url) + ".spill.jsonl")


def accounting_extension(
    *, store_factory: Callable[[Config], Store] | None = None, key_ttl: float | None = None
) -> Callable[[HubState], contextlib.AbstractAsyncContextManager[None]]:
    """The extension for `create_app`; `store_factory` lets tests wrap the store (e.g. one whose writes fail)."""

    @contextlib.asynccontextmanager
    async def extension(state: HubState) -> AsyncIterator[None]:
        config = state.config
        store = store_factory(config) if store_factory else open_store(config.database_url)
        await store.connect()
        try:
            applied = await store.migrate()
            if applied:
                logger.info("database %s: applied migrations %s", _redact(store.url), applied)
            async with _running(state, store, config.key_cache_seconds if key_ttl is None else key_ttl):
                yield
        finally:
            await store.aclose()

    return extension


def _adopt_legacy_spill(config: Config, path: Path) -> Path:
    """A spill file of a version before spill files were named after the database is replayed by the first
    PostgreSQL gateway started in its directory (as that version did)."""
    legacy = Path(LEGACY_SPILL)
    if is_postgres_url(config.database_url) and not config.usage_spill_path and legacy.exists():
        with contextlib.suppress(OSError):  # taken by another process meanwhile, or ours already exists
            os.link(legacy, path)
            legacy.unlink()
            logger.warning("spill file %s (unnamed database) is replayed into this database as %s", legacy, path)
    return path


@contextlib.asynccontextmanager
async def _running(state: HubState, store: Store, key_ttl: float) -> AsyncIterator[None]:
    config = state.config
    writer = UsageWriter(store, _adopt_legacy_spill(config, spill_path(config)))
    await writer.flush()  # replay what a previous run spilled before reading spend
    redis_client: Any = None
    limiter: MemoryLimiter | RedisLimiter = MemoryLimiter()
    budgets: MemoryBudgets | RedisBudgets = MemoryBudgets()
    keys = KeyAuthenticator(store, BudgetLedger(store), ttl=key_ttl)
    events: KeyEvents | None = None
    if config.redis_url:
        redis_client = make_redis_client(config.redis_url)
        limiter = RedisLimiter(redis_client)
        budgets = RedisBudgets(redis_client)
        events = KeyEvents(redis_client, listener_client(config.redis_url), keys)
    metrics = Metrics()
    accounting = Accounting(keys, writer, metrics, limiter, budgets)
    state.auth = MasterKeyAuth(config.master_key, keys)
    state.usage = accounting
    state.guard = accounting
    state.extras.update(store=store, keys=keys, metrics=metrics, accounting=accounting, usage_writer=writer,
                        key_events=events)  # fmt: skip
    state.extras.setdefault("readiness", {})["database"] = _readiness(store)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer.run)
            if isinstance(limiter, RedisLimiter):
                tg.start_soon(limiter.run)
            if isinstance(budgets, RedisBudgets):
                tg.start_soon(budgets.run)
            if events is not None:
                tg.start_soon(events.run)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await writer.aclose()
            if isinstance(limiter, RedisLimiter):
                await limiter.flush()
            if isinstance(budgets, RedisBudgets):
                await budgets.flush()
            if redis_client is not None:
                await redis_client.aclose()
            if events is not None:
                await events.aclose()


def _readiness(store: Store) -> Callable[[], Any]:
    async def check() -> tuple[bool, str]:
        try:
            with anyio.fail_after(2):
                await store.ping()
        except (StoreError, TimeoutError) as exc:
            return False, f"unreachable: {exc}"
        return True, "connected"

    return check


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url
