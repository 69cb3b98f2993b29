"""`GET /spend/logs`, `GET /spend/daily` and `GET /spend/tool_calls`: what was spent and which MCP tools ran.

The master key sees everything; a virtual key sees only its own requests (tool calls: master key only).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.accounts.admin import query_int, query_text, store_errors
from hub.accounts.keys import token_hash
from hub.accounts.spend import usd
from hub.errors import BadRequest, NotFound, PermissionDenied, json_response
from hub.state import authenticate, hub_state
from hub.storage import SpendQuery, Store


def parse_time(value: str | None, param: str, *, end: bool = False) -> float | None:
    """Unix seconds from a Unix time, an ISO date ("2026-01-31": a whole day, UTC) or an ISO datetime.

    Raises:
        BadRequest: anything else, naming `param` (also dates out of range and non-finite numbers).
    """
    if value is None or value == "":
        return None
    try:
        return _seconds(value, end)
    except (ValueError, OverflowError) as exc:
        raise BadRequest(f"Invalid '{param}': use a date (2026-01-31), an ISO datetime or Unix seconds.",
                         param=param, code="invalid_value") from exc  # fmt: skip


def _seconds(value: str, end: bool) -> float:
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"not a finite number: {value}")
        return seconds
    if len(value) == 10:
        day = dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp()
        return day + 86400 if end else day  # seconds, not a datetime: 9999-12-31 has no next day
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")


async def _scope(request: Request) -> tuple[Store, str | None]:
    """The store, and the key hash the caller is limited to (None: every key, for the master key)."""
    principal = await authenticate(request)
    store = hub_state(request).extras.get("store")
    if store is None:
        raise NotFound("Spend tracking needs a database (general_settings.database_url).", code="no_database")
    writer = hub_state(request).extras.get("usage_writer")
    if writer is not None:
        await writer.flush()  # read your writes: what is still queued is stored first
    wanted = request.query_params.get("api_key") or request.query_params.get("key")
    if principal.is_master:
        return store, token_hash(wanted) if wanted else None
    return store, principal.key_id


def _log(row: dict[str, Any]) -> dict[str, Any]:
    started = row["created_at"] - row["latency_ms"] / 1000
    return {
        "id": row["id"], "request_id": row["request_id"], "api_key": row["key_hash"], "model": row["model_alias"],
        "model_group": row["model_alias"], "upstream_model": row["upstream_model"],
        "custom_llm_provider": row["provider"], "prompt_tokens": row["prompt_tokens"],
        "completion_tokens": row["completion_tokens"], "total_tokens": row["prompt_tokens"] + row["completion_tokens"],
        "cached_tokens": row["cached_tokens"], "reasoning_tokens": row["reasoning_tokens"], "spend": usd(row["cost"]),
        "status": "success" if row["status_code"] == 200 else "failure", "status_code": row["status_code"],
        "error": row["error"], "stream": bool(row["stream"]), "tool_calls": row["tool_calls"],
        "latency_ms": row["latency_ms"], "overhead_ms": max(0.0, row["latency_ms"] - row["upstream_ms"]),
        "startTime": _iso(started), "endTime": _iso(row["created_at"]),
        "answered_by_group": row["answered_group"] or row["model_alias"], "api_base": row["api_base"],
        "attempted_retries": row["retries"], "attempted_fallbacks": row["fallbacks"],
        "cache_hit": bool(row["cache_hit"]),
    }  # fmt: skip


async def spend_logs(request: Request) -> Response:
    store, key_hash = await _scope(request)
    q = request.query_params
    page = query_int(request, "page", 1, 1, 1_000_000)
    size = query_int(request, "page_size", 50, 1, 1000)
    query = SpendQuery(key_hash=key_hash, model=query_text(request, "model"),
                       start=parse_time(q.get("start_date"), "start_date"),
                       end=parse_time(q.get("end_date"), "end_date", end=True), limit=size,
                       offset=(page - 1) * size)  # fmt: skip
    rows, total = await store.spend_logs(query)
    body = {"data": [_log(r) for r in rows], "total": total, "page": page, "page_size": size,
            "total_pages": -(-total // size)}  # fmt: skip
    return json_response(body)


async def spend_daily(request: Request) -> Response:
    store, key_hash = await _scope(request)
    q = request.query_params
    group_by = q.get("group_by", "key")
    if group_by not in ("key", "model"):
        raise BadRequest("'group_by' must be 'key' or 'model'.", param="group_by", code="invalid_value")
    grouping: Literal["key", "model"] = "key" if group_by == "key" else "model"
    start = parse_time(q.get("start_date"), "start_date")
    end = parse_time(q.get("end_date"), "end_date", end=True)
    if start is None and end is None:
        start = time.time() - 30 * 86400  # LiteLLM's activity views default to the last 30 days
    rows = await store.daily_spend(grouping, start=start, end=end, key_hash=key_hash)
    data = [{"date": r["day"], group_by: r["grp"], "requests": r["requests"], "spend": usd(r["spend"]),
             "prompt_tokens": r["prompt_tokens"], "completion_tokens": r["completion_tokens"],
             "cached_tokens": r["cached_tokens"]} for r in rows]  # fmt: skip
    return json_response({"group_by": group_by, "data": data})


async def tool_calls(request: Request) -> Response:
    """The latest MCP tool calls made through the hub (REST, /mcp, /sse and the tool loop), newest first."""
    if not (await authenticate(request)).is_master:
        raise PermissionDenied("Only the master key may read tool calls.", code="master_key_required")
    store, _ = await _scope(request)
    rows = await store.tool_calls(limit=query_int(request, "limit", 100, 1, 1000))
    data = [{**row, "created_at": _iso(row["created_at"])} for row in rows]
    return json_response({"data": data})


ROUTES = [
    Route("/spend/logs", store_errors(spend_logs), methods=["GET"]),
    Route("/spend/daily", store_errors(spend_daily), methods=["GET"]),
    Route("/spend/tool_calls", store_errors(tool_calls), methods=["GET"]),
]
