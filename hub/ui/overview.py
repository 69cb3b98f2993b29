"""Overview: requests, errors, spend and latency over time, top models and keys, and upstream and MCP health."""

from __future__ import annotations

import time
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response

from hub.accounts.auth import Principal
from hub.errors import json_response
from hub.state import hub_state
from hub.ui import queries
from hub.ui.api import call_api
from hub.ui.logs import key_aliases
from hub.ui.models import deployments
from hub.ui.session import Session
from hub.ui.web import SECURITY_HEADERS, page, render

RANGES = {"hour": (3600, 60), "day": (86400, 3600), "month": (30 * 86400, 86400)}
"""Range name -> (seconds shown, seconds per bucket). Hours and days are read from the spend rollup."""
LABELS = {"hour": "Last hour", "day": "Last day", "month": "Last 30 days"}


def _range(request: Request) -> str:
    wanted = request.query_params.get("range", "day")
    return wanted if wanted in RANGES else "day"


def window(span: int, step: int, now: float) -> int:
    """The first bucket's start: whole buckets, the last one holding `now` (the charts and top lists agree)."""
    return int(now - span) // step * step + step


@page
async def overview_page(request: Request, session: Session) -> Response:
    span = _range(request)
    health = await call_api(request, session, "GET", "/health/readiness")
    tools = await call_api(request, session, "GET", "/mcp/tools/list")
    aliases = [a for a in hub_state(request).config.models if session.principal.may_use_model(a)]
    upstreams = [(alias, d) for alias, ds in deployments(request, aliases, session.principal).items() for d in ds]
    shown = shown_health(health.body, session.principal, len(aliases))
    return render(request, "overview.html", session, span=span, labels=LABELS, health=shown, healthy=health.ok,
                  health_lines=health_lines(shown), servers=tools.body["servers"] if tools.ok else {},
                  upstreams=upstreams)  # fmt: skip


def shown_health(body: Any, principal: Principal, models: int) -> Any:
    """The readiness answer as a virtual key may see it: its own number of model aliases, and of the MCP servers
    (their states, the degraded ones) only those it may use: it hears nothing of the others, as on `/v1/models` and
    `/mcp/tools/list`."""
    if principal.is_master or not isinstance(body, dict):
        return body
    shown: dict[str, Any] = {**body, "models": models}
    if isinstance(states := shown.get("mcp"), dict):
        shown["mcp"] = {name: state for name, state in states.items() if principal.may_use_server(str(name))}
    problems = [p for p in shown.pop("degraded", []) if principal.may_use_server(str(p.get("name")))]
    if problems:
        shown["degraded"] = problems
    elif shown.get("status") == "degraded":
        shown["status"] = "healthy"
    return shown


def health_lines(health: Any) -> list[tuple[str, str]]:
    """The readiness answer's checks as (label, sentence) lines: MCP as how many servers are ready (each one is
    listed under "MCP servers"), each degraded component on its own line, anything else as plain text."""
    if not isinstance(health, dict):
        return []
    lines: list[tuple[str, str]] = []
    for name, value in cast(dict[str, Any], health).items():
        if name in ("status", "version", "models"):
            continue
        if name == "mcp" and isinstance(value, dict):
            lines.append(("MCP", _mcp_summary(cast(dict[str, Any], value))))
        elif name == "degraded" and isinstance(value, list):
            lines.extend(("Degraded", _problem(problem)) for problem in cast(list[Any], value))
        else:
            lines.append((name.capitalize(), _plain(value)))
    return lines


def _mcp_summary(states: dict[str, Any]) -> str:
    if not states:
        return "no servers"
    down = [f"{name} ({state})" for name, state in states.items() if state != "ready"]
    ready = f"{len(states) - len(down)} of {len(states)} server{'' if len(states) == 1 else 's'} ready"
    return f"{ready}; not ready: {', '.join(down)}" if down else ready


def _problem(problem: Any) -> str:
    if isinstance(problem, dict) and "name" in problem:
        entry = cast(dict[str, Any], problem)
        return f"{entry['name']}: {entry.get('state', 'down')} ({_plain(entry.get('error') or 'no detail')})"
    return _plain(problem)


def _plain(value: Any) -> str:
    """A JSON value as a sentence: objects as "key: value" pairs, lists joined, no braces or quotes."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_plain(v)}" for k, v in cast(dict[str, Any], value).items())
    if isinstance(value, list):
        return "; ".join(_plain(v) for v in cast(list[Any], value))
    return str(value)


@page
async def top_panel(request: Request, session: Session) -> Response:
    """Top models and keys of the range, over the same buckets as the charts (loaded after the page)."""
    store = hub_state(request).extras.get("store")
    top_models: list[dict[str, Any]] = []
    top_keys: list[dict[str, Any]] = []
    if store is not None:
        span, step = RANGES[_range(request)]
        start = window(span, step, time.time())
        key_hash = None if session.principal.is_master else session.principal.key_id
        top_models = await queries.top(store, "model_alias", key_hash, start, step)
        names = await key_aliases(store, session)
        by_key = await queries.top(store, "key_hash", key_hash, start, step)
        top_keys = [{**row, "name": names.get(row["name"] or "", "master" if row["name"] is None else "")}
                    for row in by_key]  # fmt: skip
    return render(request, "_top.html", session, top_models=top_models, top_keys=top_keys)


@page
async def series(request: Request, session: Session) -> Response:
    """The chart data: one point per bucket (empty buckets are zero), as parallel arrays for uPlot."""
    store = hub_state(request).extras.get("store")
    span, step = RANGES[_range(request)]
    now = time.time()
    start = window(span, step, now)
    key_hash = None if session.principal.is_master else session.principal.key_id
    rows = [] if store is None else await queries.series(store, key_hash, start, step)
    by_bucket = {int(r["bucket"]): r for r in rows}
    buckets = range((int(now) - start) // step + 1)
    body = {"t": [start + b * step for b in buckets],
            "requests": [int(by_bucket[b]["requests"]) if b in by_bucket else 0 for b in buckets],
            "errors": [int(by_bucket[b]["errors"] or 0) if b in by_bucket else 0 for b in buckets],
            "spend": [float(by_bucket[b]["spend"] or 0) if b in by_bucket else 0 for b in buckets],
            "latency_ms": [float(by_bucket[b]["latency_ms"]) if b in by_bucket else None for b in buckets]}  # fmt: skip
    return json_response(body, headers=SECURITY_HEADERS)
