"""Prometheus metrics at `GET /metrics` (text format), guarded by the master key when one is set.

Records are observed lazily: the request path only appends the finished `UsageRecord` to a list (as it does for the
store), and the list is turned into counter and histogram updates when `/metrics` is scraped or the list grows past
a bound. Each app has its own registry, so several gateways can live in one test process.

Under `toolhub serve --workers N` (hub/scale/supervisor.py) `PROMETHEUS_MULTIPROC_DIR` is set: prometheus_client then
keeps every value in a file per process in that directory, whichever worker answers a scrape reads them all
(`MultiProcessCollector`), and each worker applies its records and refreshes its gauges every second
(`metrics_sync`), so a scrape shows every worker's requests at most a second late. Series that collectors compute at
scrape time (the router's per-deployment ones) are the answering worker's.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from hub.accounts.usage import ToolCallRecord, UsageRecord
from hub.errors import PermissionDenied
from hub.state import HubState, authenticate, hub_state

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_OVERHEAD = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
_BATCH = 256
"""Records held until they are applied (or `/metrics` is scraped). Each keeps its request's strings alive: at 2,048
they were about 1 MB of a worker's RSS, growing with every request until a scrape (bench/rss.py, issue 17)."""
_SYNC_SECONDS = 1.0


def _add(sums: dict[Any, float], child: Any, amount: float) -> None:
    sums[child] = sums.get(child, 0.0) + amount


def multiprocess_dir() -> str | None:
    """The directory of multiprocess mode; prometheus_client itself reads this variable when it is imported."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """The gateway's Prometheus series; `record`/`record_tool_call` are cheap enough for the request path."""

    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir() is not None
        self.registry = CollectorRegistry()
        """What `/metrics` renders besides the series below: collectors added by other layers (the router's)."""
        # In multiprocess mode the series live in the shared files, read by MultiProcessCollector: registering them
        # here too would render this worker's values a second time.
        r = None if self.multiprocess else self.registry
        self.requests = Counter("toolhub_requests", "Chat requests by model alias, provider and status.",
                                ["model", "provider", "status"], registry=r)  # fmt: skip
        self.tokens = Counter("toolhub_tokens", "Tokens by model alias and kind (prompt, completion, cached, "
                              "reasoning).", ["model", "kind"], registry=r)  # fmt: skip
        self.cost = Counter("toolhub_spend_usd", "Cost in USD by model alias.", ["model"], registry=r)
        self.latency = Histogram("toolhub_request_duration_seconds", "Whole request time (to the end of a stream).",
                                 ["model"], buckets=_LATENCY, registry=r)  # fmt: skip
        self.upstream = Histogram("toolhub_upstream_duration_seconds", "Time waiting on the provider (to the first "
                                  "chunk for streams).", ["model", "provider"], buckets=_LATENCY,
                                  registry=r)  # fmt: skip
        self.overhead = Histogram("toolhub_gateway_overhead_seconds", "Gateway time outside the provider call "
                                  "(non-streaming requests).", buckets=_OVERHEAD, registry=r)  # fmt: skip
        self.upstream_up = Gauge("toolhub_upstream_up", "1 if the deployment's last request got an upstream answer, "
                                 "0 after a 5xx/timeout/connection failure.", ["model", "provider"],
                                 registry=r, multiprocess_mode="mostrecent")  # fmt: skip
        self.upstream_failures = Counter("toolhub_upstream_failures", "Upstream failures (status >= 500).",
                                         ["model", "provider", "status"], registry=r)  # fmt: skip
        self.tool_calls = Counter("toolhub_tool_calls", "MCP tool calls by server, tool and outcome.",
                                  ["server", "tool", "outcome"], registry=r)  # fmt: skip
        self.tool_duration = Histogram("toolhub_tool_call_duration_seconds", "MCP tool call time.", ["server"],
                                       buckets=_LATENCY, registry=r)  # fmt: skip
        self.rejected = Counter("toolhub_rejected_requests", "Requests refused before the provider by budget or "
                                "rate limit.", ["reason"], registry=r)  # fmt: skip
        self.queue = Gauge("toolhub_usage_queue_records", "Usage records waiting to be written.", registry=r,
                           multiprocess_mode="livesum")  # fmt: skip
        self.spilled = Gauge("toolhub_usage_spilled_records", "Usage records spilled to the local file since start.",
                             registry=r, multiprocess_mode="livesum")  # fmt: skip
        self.cache_hits = Counter("toolhub_cache_hits", "Chat requests served from the response cache.", registry=r)
        self.cache_misses = Counter("toolhub_cache_misses", "Cacheable chat requests not found in the response cache.",
                                    registry=r)  # fmt: skip
        self.cache_bytes = Gauge("toolhub_cache_bytes", "Bytes of cached answers (local: held now; Redis: written by "
                                 "this process).", registry=r, multiprocess_mode="livesum")  # fmt: skip
        self._pending: list[UsageRecord | ToolCallRecord] = []
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        self._cache_seen = (0, 0)

    def record(self, record: UsageRecord) -> None:
        self._pending.append(record)
        if len(self._pending) >= _BATCH:
            self.observe()

    def record_tool_call(self, call: ToolCallRecord) -> None:
        self._pending.append(call)
        if len(self._pending) >= _BATCH:
            self.observe()

    def observe(self) -> None:
        """Apply the records taken since the last call: counters get one `inc` per series with the batch's sum."""
        pending, self._pending = self._pending, []
        sums: dict[Any, float] = {}
        latest: dict[Any, float] = {}
        for item in pending:
            if isinstance(item, UsageRecord):
                self._usage(item, sums, latest)
            else:
                outcome = "error" if item.error else "ok"
                _add(sums, self._child(self.tool_calls, item.server, item.tool, outcome), 1)
                self._child(self.tool_duration, item.server).observe(item.duration_ms / 1000)
        for child, amount in sums.items():
            child.inc(amount)
        for child, value in latest.items():
            child.set(value)

    def _child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, kept: labels() costs 2 us a call, and a record touched up to eight series."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _usage(self, r: UsageRecord, sums: dict[Any, float], latest: dict[Any, float]) -> None:
        model, provider, status = r.model_alias, r.provider, r.status_code
        _add(sums, self._child(self.requests, model, provider, str(status)), 1)
        for kind, n in (("prompt", r.prompt_tokens), ("completion", r.completion_tokens),
                        ("cached", r.cached_tokens), ("reasoning", r.reasoning_tokens)):  # fmt: skip
            if n > 0:  # a counter refuses a negative increment, and would drop the whole batch with it
                _add(sums, self._child(self.tokens, model, kind), n)
        if r.cost > 0:
            _add(sums, self._child(self.cost, model), r.cost)
        self._child(self.latency, model).observe(r.latency_ms / 1000)
        if r.upstream_ms:
            self._child(self.upstream, model, provider).observe(r.upstream_ms / 1000)
        if not r.stream and status == 200 and r.upstream_ms and not r.tool_calls:
            self.overhead.observe(max(0.0, r.latency_ms - r.upstream_ms) / 1000)
        if status >= 500:
            _add(sums, self._child(self.upstream_failures, model, provider, str(status)), 1)
            latest[self._child(self.upstream_up, model, provider)] = 0
        elif status and status != 499 and not r.cache_hit:  # a hit says nothing of the upstream
            latest[self._child(self.upstream_up, model, provider)] = 1

    def observe_cache(self, hits: int, misses: int, size: int) -> None:
        """Bring the cache series up to the response cache's own counts (taken at scrape time)."""
        seen_hits, seen_misses = self._cache_seen
        self.cache_hits.inc(max(0, hits - seen_hits))
        self.cache_misses.inc(max(0, misses - seen_misses))
        self._cache_seen = (max(hits, seen_hits), max(misses, seen_misses))
        self.cache_bytes.set(size)

    def render(self) -> bytes:
        self.observe()
        if not self.multiprocess:
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker)
        return generate_latest(every_worker) + generate_latest(self.registry)


def refresh(state: HubState, metrics: Metrics) -> None:
    """Bring the gauges read from other layers (usage queue, spill, response cache) up to date."""
    writer = state.extras.get("usage_writer")
    if writer is not None:
        metrics.queue.set(writer.pending)
        metrics.spilled.set(writer.spilled)
    cache = state.extras.get("cache")
    if cache is not None:
        metrics.observe_cache(cache.hits, cache.misses, cache.backend.bytes_used)


async def metrics_endpoint(request: Request) -> Response:
    """`GET /metrics`: master key required when the gateway has one (scrape with `authorization: Bearer`)."""
    principal = await authenticate(request)
    if not principal.is_master:
        raise PermissionDenied("Only the master key may read /metrics.", code="master_key_required")
    state = hub_state(request)
    metrics: Metrics = state.extras["metrics"]
    refresh(state, metrics)
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


def metrics_sync() -> Callable[[HubState], contextlib.AbstractAsyncContextManager[None]]:
    """The extension that, in multiprocess mode, applies this worker's records every second (any worker may answer
    the scrape, and only the shared files reach it); nothing otherwise. After the accounting extension."""

    @contextlib.asynccontextmanager
    async def extension(state: HubState) -> AsyncIterator[None]:
        metrics: Metrics | None = state.extras.get("metrics")
        if metrics is None or not metrics.multiprocess:
            yield
            return
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_sync, state, metrics)
                try:
                    yield
                finally:
                    tg.cancel_scope.cancel()
        finally:
            metrics.observe()  # the last records of a worker that stops

    return extension


async def _sync(state: HubState, metrics: Metrics) -> None:
    while True:
        await anyio.sleep(_SYNC_SECONDS)
        metrics.observe()
        refresh(state, metrics)
