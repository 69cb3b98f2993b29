"""Overview: requests, errors, spend and latency over time, top models and keys, and upstream and MCP health."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from hub.errors import json_response
from hub.state import hub_state
from hub.ui import queries
from hub.ui.api import call_api
from hub.ui.logs import key_aliases
from hub.ui.models import deployments
from hub.ui.session import Session
from hub.ui.web import SECURITY_HEADERS, page, render

RANGES = {"hour": (3600, 60), "day": (86400, 1800), "month": (30 * 86400, 86400)}
"""Range name -> (seconds shown, seconds per bucket)."""
MONTH_CACHE_SECONDS = 60
LABELS = {"hour": "Last hour", "day": "Last day", "month": "Last 30 days"}


T = TypeVar("T")


def _range(request: Request) -> str:
    wanted = request.query_params.get("range", "day")
    return wanted if wanted in RANGES else "day"


async def _recent(request: Request, what: tuple[Any, ...], compute: Callable[[], Awaitable[T]]) -> T:
    """A 30-day aggregate reads every row (seconds with a million rows): its answer is kept for a minute."""
    if _range(request) != "month":
        return await compute()
    cache: dict[tuple[Any, ...], tuple[float, Any]] = hub_state(request).extras.setdefault("ui_recent", {})
    now = time.monotonic()
    hit = cache.get(what)
    if hit is not None and now - hit[0] < MONTH_CACHE_SECONDS:
        return hit[1]
    value = await compute()
    if len(cache) > 1000:
        cache.clear()
    cache[what] = (now, value)
    return value


@page
async def overview_page(request: Request, session: Session) -> Response:
    span = _range(request)
    health = await call_api(request, session, "GET", "/health/readiness")
    tools = await call_api(request, session, "GET", "/mcp/tools/list")
    aliases = [a for a in hub_state(request).config.models if session.principal.may_use_model(a)]
    upstreams = [(alias, d) for alias, ds in deployments(request, aliases).items() for d in ds]
    return render(request, "overview.html", session, span=span, labels=LABELS, health=health.body, healthy=health.ok,
                  servers=tools.body["servers"] if tools.ok else {}, upstreams=upstreams)  # fmt: skip


@page
async def top_panel(request: Request, session: Session) -> Response:
    """Top models and keys of the range: loaded after the page, as over 30 days it reads every row."""
    store = hub_state(request).extras.get("store")
    top_models: list[dict[str, Any]] = []
    top_keys: list[dict[str, Any]] = []
    if store is not None:
        start = time.time() - RANGES[_range(request)][0]
        key_hash = None if session.principal.is_master else session.principal.key_id
        top_models = await _recent(
            request, ("models", key_hash), lambda: queries.top(store, "model_alias", key_hash, start)
        )
        names = await key_aliases(store, session)
        by_key = await _recent(request, ("keys", key_hash), lambda: queries.top(store, "key_hash", key_hash, start))
        top_keys = [{**row, "name": names.get(row["name"] or "", "master" if row["name"] is None else "")}
                    for row in by_key]  # fmt: skip
    return render(request, "_top.html", session, top_models=top_models, top_keys=top_keys)


@page
async def series(request: Request, session: Session) -> Response:
    """The chart data: one point per bucket (empty buckets are zero), as parallel arrays for uPlot."""
    store = hub_state(request).extras.get("store")
    span, step = RANGES[_range(request)]
    now = time.time()
    start = int(now - span) // step * step + step
    key_hash = None if session.principal.is_master else session.principal.key_id
    rows = [] if store is None else await _recent(request, ("series", key_hash, start),
                                                  lambda: queries.series(store, key_hash, start, step))  # fmt: skip
    by_bucket = {int(r["bucket"]): r for r in rows}
    buckets = range((int(now) - start) // step + 1)
    body = {"t": [start + b * step for b in buckets],
            "requests": [int(by_bucket[b]["requests"]) if b in by_bucket else 0 for b in buckets],
            "errors": [int(by_bucket[b]["errors"] or 0) if b in by_bucket else 0 for b in buckets],
            "spend": [float(by_bucket[b]["spend"] or 0) if b in by_bucket else 0 for b in buckets],
            "latency_ms": [float(by_bucket[b]["latency_ms"]) if b in by_bucket else None for b in buckets]}  # fmt: skip
    return json_response(body, headers=SECURITY_HEADERS)
