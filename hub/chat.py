"""`POST /v1/chat/completions`: authenticate, check, route, call the provider, relay, account."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from hub.auth import Principal
from hub.errors import HubError, json_response, stream_error_event
from hub.loop.plan import LoopPlan, plan_tool_loop
from hub.loop.run import LoopSettings, complete_with_tools
from hub.loop.stream import KeepAliveStreamingResponse, stream_with_tools
from hub.requests import check_chat_request, read_json_body
from hub.routing import Target
from hub.state import HubState, authenticate, hub_state, request_id
from hub.usage import UsageRecord
from providers.base import JSON, ChatRequest, ProviderError

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
DONE = b"data: [DONE]\n\n"


async def chat_completions(request: Request) -> Response:
    state = hub_state(request)
    started = time.perf_counter()
    principal = await authenticate(request)
    body = check_chat_request(await read_json_body(request, state.config.max_request_bytes))
    target = state.router.resolve(body["model"], principal)
    plan = plan_tool_loop(body, target.route.mcp_servers, state.extras.get("mcp"), principal)
    record = _new_record(request, target, body, principal.key_id)
    if state.guard is not None:  # budget and rate limits; no database on this path
        record.ticket = await state.guard.admit(principal, target.route)
    chat = ChatRequest(body=body, deployment=target.route.deployment, request_id=record.request_id)
    if plan is not None:
        return await _tool_loop(state, target, chat, plan, principal, record, started)
    if body.get("stream"):
        return await _stream(state, target, chat, record, started)
    upstream_started = time.perf_counter()
    try:
        completion = await target.provider.complete(chat)
    except ProviderError as exc:
        record.upstream_ms = (time.perf_counter() - upstream_started) * 1000
        _finish(state, record, started, exc.status_code, exc.message)
        raise
    record.upstream_ms = (time.perf_counter() - upstream_started) * 1000
    record.add_usage(completion.get("usage"))
    _finish(state, record, started, 200)
    return json_response(completion, headers=_cost_headers(record))


async def _tool_loop(
    state: HubState,
    target: Target,
    chat: ChatRequest,
    plan: LoopPlan,
    principal: Principal,
    record: UsageRecord,
    started: float,
) -> Response:
    """The request asks for hub tools: the gateway runs them between model rounds (hub/loop)."""
    hub = state.extras["mcp"]
    config = state.config
    settings = LoopSettings(config.max_tool_rounds, config.max_tool_result_chars, config.tool_loop_keepalive_seconds)
    if chat.body.get("stream"):
        include_usage = bool((chat.body.get("stream_options") or {}).get("include_usage"))

        def encode(chunk: JSON) -> bytes:
            if "toolhub" in chunk:
                record.tool_calls = chunk["toolhub"]["tool_calls"]
            return _event(chunk, include_usage, record)

        def done(status: int, error: str | None) -> None:
            _finish(state, record, started, status, error)

        items = stream_with_tools(target.provider, chat, plan, hub, principal, settings)
        return KeepAliveStreamingResponse(items, encode, done, settings.keepalive_seconds)
    try:
        completion = await complete_with_tools(target.provider, chat, plan, hub, principal, settings)
    except ProviderError as exc:
        _finish(state, record, started, exc.status_code, exc.message)
        raise
    record.add_usage(completion.get("usage"))
    record.tool_calls = completion["toolhub"]["tool_calls"]
    _finish(state, record, started, 200)
    return json_response(completion, headers=_cost_headers(record))


async def _stream(state: HubState, target: Target, chat: ChatRequest, record: UsageRecord, started: float) -> Response:
    include_usage = bool((chat.body.get("stream_options") or {}).get("include_usage"))
    chunks = aiter(target.provider.stream(chat))
    upstream_started = time.perf_counter()
    try:
        first = await anext(chunks, None)
    except ProviderError as exc:
        record.upstream_ms = (time.perf_counter() - upstream_started) * 1000
        _finish(state, record, started, exc.status_code, exc.message)
        raise
    now = time.perf_counter()
    record.upstream_ms = (now - upstream_started) * 1000  # to the first chunk; the cost is known only at the end
    overhead = {"x-toolhub-overhead-duration-ms": f"{(now - started) * 1000 - record.upstream_ms:.3f}"}
    relay = _relay(state, first, chunks, include_usage, record, started)
    return StreamingResponse(relay, media_type="text/event-stream", headers={**SSE_HEADERS, **overhead})


async def _relay(
    state: HubState,
    first: JSON | None,
    chunks: AsyncIterator[JSON],
    include_usage: bool,
    record: UsageRecord,
    started: float,
) -> AsyncIterator[bytes]:
    """Relay chunks as SSE the moment they arrive; an error after the start becomes a final error event."""
    status, error = 200, None
    try:
        if first is not None:
            yield _event(first, include_usage, record)
            async for chunk in chunks:
                if event := _event(chunk, include_usage, record):
                    yield event
        yield DONE
    except (ProviderError, HubError) as exc:
        status, error = exc.status_code, exc.message
        yield stream_error_event(exc)
    except anyio.get_cancelled_exc_class():
        status, error = 499, "client disconnected"
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await chunks.aclose()  # pyright: ignore[reportAttributeAccessIssue]
        _finish(state, record, started, status, error)


def _event(chunk: JSON, include_usage: bool, record: UsageRecord) -> bytes:
    usage = chunk.get("usage") if include_usage else chunk.pop("usage", None)
    if usage:
        record.add_usage(usage)
        if not include_usage and not chunk.get("choices"):
            return b""
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _new_record(request: Request, target: Target, body: dict[str, Any], key_id: str | None) -> UsageRecord:
    deployment = target.route.deployment
    return UsageRecord(
        request_id=request_id(request),
        key_id=key_id,
        model_alias=target.route.alias,
        upstream_model=deployment.model,
        provider=deployment.provider,
        status_code=0,
        stream=bool(body.get("stream")),
        latency_ms=0.0,
    )


def _finish(state: HubState, record: UsageRecord, started: float, status: int, error: str | None = None) -> None:
    record.status_code = status
    record.error = error
    record.latency_ms = (time.perf_counter() - started) * 1000
    record.created_at = time.time()
    ticket = record.ticket
    if ticket is not None:
        record.ticket = None
        ticket.settle(record)
    state.usage.record(record)


def _cost_headers(record: UsageRecord) -> dict[str, str]:
    """`x-toolhub-cost` (USD) and the gateway's own time, as LiteLLM's x-litellm-response-cost / overhead headers."""
    overhead = record.latency_ms - record.upstream_ms
    return {"x-toolhub-cost": f"{record.cost:.10f}".rstrip("0").rstrip(".") or "0",
            "x-toolhub-overhead-duration-ms": f"{overhead:.3f}"}  # fmt: skip
