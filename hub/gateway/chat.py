"""`POST /v1/chat/completions`: authenticate, check, route, call the provider, relay, account.

Every request is accounted exactly once (`finish_record`), whatever happens: an answer, an upstream error, a crash, or a
client that goes away. A client that disconnects cancels what the gateway is doing for it: the upstream call, and in
the tool loop the running tools and the rounds still to come.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
from starlette.requests import Request
from starlette.responses import Response

from hub.accounts.auth import Principal, bearer_token
from hub.accounts.usage import UsageRecord
from hub.cache.serve import hit_response
from hub.cache.service import Lookup, ResponseCache
from hub.errors import HubError, json_response
from hub.gateway import sse
from hub.gateway.relay import CLIENT_GONE, Relay, RelayResponse, cut_short, noting_estimate
from hub.gateway.requests import check_chat_request, read_json_body
from hub.gateway.routing import Target
from hub.loop.plan import LoopPlan, prepare_tool_loop
from hub.loop.run import LoopObserver, LoopSettings, complete_with_tools
from hub.loop.stream import KeepAliveStreamingResponse, stream_with_tools
from hub.loop.tools import ToolRun
from hub.loop.trace import FIELD as TRACE_FIELD, trace_mode
from hub.ops import shutdown, tracing
from hub.state import HubState, hub_state, request_id
from providers.base import JSON, ChatRequest, ProviderError

T = TypeVar("T")


class ClientDisconnected(Exception):
    """The client went away before its answer was ready."""


async def chat_completions(request: Request) -> Response:
    state = hub_state(request)  # looked up once: `authenticate(request)` and `run_chat` would each look again
    started = time.perf_counter()
    principal = await state.auth.authenticate(bearer_token(request.headers))
    body = check_chat_request(await read_json_body(request, state.config.max_request_bytes))
    return await run_chat(request, principal, body, started, state)


async def run_chat(
    request: Request, principal: Principal, body: dict[str, Any], started: float, state: HubState | None = None
) -> Response:
    """Serve a checked Chat Completions `body` for `principal`: route, tool loop, stream or not, account.

    The inbound APIs that are not Chat Completions (hub/api/) translate their request to a body for this and its
    OpenAI-shaped answer back, so keys, limits, the router, the tool loop and accounting apply to them unchanged.
    """
    state = hub_state(request) if state is None else state
    target = state.router.resolve(body["model"], principal, body)  # hub/router: takes out `fallbacks` & co
    plan = await prepare_tool_loop(body, target.route.mcp_servers, state.extras, principal)
    if TRACE_FIELD in body and plan is None:  # the tool loop's own field (hub/loop/trace.py): checked, never sent
        trace_mode(body, "none")
        del body[TRACE_FIELD]
    shared = state.extras.get("shared")  # hub/shared, only with redis_url: other replicas' thinking and hub rounds
    if shared is not None:
        await shared.warm(body.get("messages"))  # one round trip, and only when the conversation has tool calls
    cache: ResponseCache | None = state.extras.get("cache")  # the only cost of the cache when it is off
    record = new_record(request, target, body, principal.key_id)
    lookup = None if cache is None else cache.begin(body, target.route, plan, record)
    target.provider.record = record  # the router names the deployment that answered on it
    if state.guard is not None:  # budget and rate limits; no database on this path
        record.ticket = await state.guard.admit(principal, target.route, body)  # holds the body's worst case
    try:
        if lookup is not None:
            return await _cached(request, state, target, body, plan, principal, record, started, lookup)
        chat = ChatRequest(body=body, deployment=target.route.deployment, request_id=record.request_id)
        if plan is not None:
            return await _tool_loop(request, state, target, chat, plan, principal, record, started)
        if body.get("stream"):
            return await _stream(request, state, target, chat, record, started)
        return await _complete(request, state, target, chat, record, started)
    except ClientDisconnected:
        return Response(status_code=CLIENT_GONE)  # nobody reads it; uvicorn only logs it


async def _cached(
    request: Request,
    state: HubState,
    target: Target,
    body: JSON,
    plan: LoopPlan | None,
    principal: Principal,
    record: UsageRecord,
    started: float,
    lookup: Lookup,
) -> Response:
    """A cacheable request (hub/cache): a hit is served at zero cost, a miss goes on and its complete answer is kept."""
    stream, cache = bool(body.get("stream")), lookup.cache
    try:
        try:  # as `settled`, without a generator context manager's cost on the path of every hit
            found: JSON | bytes | None = await cache.find(lookup)
            if found is None and (leader := cache.follow(lookup, stream=stream)) is not None:
                found = await until_disconnect(request, lambda: cache.wait(leader))
        except BaseException as exc:
            _settle_failure(state, record, started, exc)
            raise
        cache.count(lookup, found)
        if found is not None:
            record.cache_hit = True  # no tokens on the record: a hit costs nothing and counts only as a request
            finish_record(state, record, started, 200)
            headers = {**cost_headers(record), **lookup.headers()}
            return hit_response(body, found, headers, cache.replays, lookup.key)
        chat = ChatRequest(body=body, deployment=target.route.deployment, request_id=record.request_id)
        if plan is not None:
            response = await _tool_loop(request, state, target, chat, plan, principal, record, started, lookup)
        elif stream:
            response = await _stream(request, state, target, chat, record, started, lookup)
        else:
            response = await _complete(request, state, target, chat, record, started, lookup)
    finally:
        lookup.release(None)  # waiters of a failed call go upstream themselves (no-op once saved)
    response.headers.update(lookup.headers())
    return response


async def _complete(
    request: Request,
    state: HubState,
    target: Target,
    chat: ChatRequest,
    record: UsageRecord,
    started: float,
    lookup: Lookup | None = None,
) -> Response:
    with settled(state, record, started):
        upstream_started = time.perf_counter()
        try:
            completion = await until_disconnect(request, lambda: target.provider.complete(chat))
        finally:
            record.upstream_ms = (time.perf_counter() - upstream_started) * 1000
        record.add_usage(completion.get("usage"))  # unreadable counts: a 502 (upstream_bad_response), accounted
    finish_record(state, record, started, 200)
    if lookup is not None:
        await lookup.save(completion)
    headers = {**cost_headers(record), **target.provider.headers(), **_dropped_header(chat)}
    return json_response(completion, headers=headers)


async def _tool_loop(
    request: Request,
    state: HubState,
    target: Target,
    chat: ChatRequest,
    plan: LoopPlan,
    principal: Principal,
    record: UsageRecord,
    started: float,
    lookup: Lookup | None = None,
) -> Response:
    """The request asks for hub tools: the gateway runs them between model rounds (hub/loop)."""
    hub = state.extras["mcp"]
    config = state.config
    settings = LoopSettings(config.max_tool_rounds, config.max_tool_result_chars, config.tool_loop_keepalive_seconds,
                            target.route.tool_loop_trace)  # fmt: skip

    def runs(new: list[ToolRun]) -> None:  # every call made, cancelled ones included: as /spend/tool_calls lists them
        record.tool_calls += [run.public() for run in new]

    def next_round() -> None:
        if record.ticket is not None:
            record.ticket.check(record)  # a key whose budget ran out mid-loop gets no further model calls

    estimated: list[bool] = []  # read by the non-streamed loop's `settled`; the streamed one's response notes it itself
    observer = LoopObserver(  # accounted as it happens
        usage=record.add_usage, runs=runs, next_round=next_round, estimated=lambda: estimated.append(True)
    )
    if chat.body.get("stream"):
        relay = Relay(chat.body, record, count_usage=False)

        def done(status: int, error: str | None) -> None:
            finish_record(state, record, started, status, error)

        items = stream_with_tools(target.provider, chat, plan, hub, principal, settings, observer)
        if lookup is not None:  # only an alias with cache_tool_loops gets here: the whole loop is stored when it ends
            items = lookup.saving(items)
        return KeepAliveStreamingResponse(items, relay.event, done, settings.keepalive_seconds)
    with settled(state, record, started, estimated):
        completion = await until_disconnect(
            request, lambda: complete_with_tools(target.provider, chat, plan, hub, principal, settings, observer)
        )
    finish_record(state, record, started, 200)
    if lookup is not None:
        await lookup.save(completion)
    headers = {**cost_headers(record), **target.provider.headers(), **_dropped_header(chat)}
    return json_response(completion, headers=headers)


async def _stream(
    request: Request,
    state: HubState,
    target: Target,
    chat: ChatRequest,
    record: UsageRecord,
    started: float,
    lookup: Lookup | None = None,
) -> Response:
    chunks = aiter(target.provider.stream(chat))
    upstream_started = time.perf_counter()
    try:
        with settled(state, record, started):
            first = await until_disconnect(request, lambda: anext(chunks, None))
    except BaseException:
        with anyio.CancelScope(shield=True):
            await chunks.aclose()  # pyright: ignore[reportAttributeAccessIssue]
        raise
    now = time.perf_counter()
    record.upstream_ms = (now - upstream_started) * 1000  # to the first chunk; the cost is known only at the end
    overhead = {"x-toolhub-overhead-duration-ms": f"{(now - started) * 1000 - record.upstream_ms:.3f}"}
    relay = Relay(chat.body, record, count_usage=True, lookup=lookup)
    headers = {**sse.HEADERS, **overhead, **target.provider.headers(), **_dropped_header(chat)}

    def done(status: int, error: str | None) -> None:
        finish_record(state, record, started, status, error)

    return RelayResponse(relay, first, chunks, done, headers)


async def until_disconnect(request: Request, work: Callable[[], Awaitable[T]]) -> T:
    """Await `work()`, cancelling it if the client disconnects first.

    Plain asyncio tasks rather than an anyio task group: measured on the gateway's hot path, the task group cost
    about 0.19 ms of CPU per request and two bare tasks a small fraction of that (bench/gateway.py).

    Raises:
        ClientDisconnected: the client went away; `work` was cancelled.
    """
    loop = asyncio.get_running_loop()
    worker: asyncio.Task[T] = loop.create_task(_call(work))
    watcher = loop.create_task(_disconnected(request))
    try:
        await asyncio.wait((worker, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not worker.done():  # the client left, or this request itself is being cancelled (shutdown)
            worker.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.wait((worker,))
    if worker.cancelled():
        raise ClientDisconnected
    return worker.result()


async def _call(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


@contextlib.contextmanager
def settled(state: HubState, record: UsageRecord, started: float, estimated: Sequence[bool] = ()) -> Iterator[None]:
    """Account the request if the block fails (the success path calls `finish_record` itself, after the usage is in).
    `estimated` is non-empty when the block charged estimated usage (a tool loop cut mid-round): the error says so."""
    try:
        yield
    except BaseException as exc:
        _settle_failure(state, record, started, exc, estimated=bool(estimated))
        raise


def _settle_failure(
    state: HubState, record: UsageRecord, started: float, exc: BaseException, *, estimated: bool = False
) -> None:
    status, error = _failure(exc)
    finish_record(state, record, started, status, noting_estimate(error, estimated))


def _failure(exc: BaseException) -> tuple[int, str | None]:
    """The status and error text a request that failed with `exc` is recorded with."""
    if isinstance(exc, ProviderError | HubError):
        return exc.status_code, exc.message
    if isinstance(exc, ClientDisconnected) or shutdown.is_shutdown(exc):
        return cut_short(exc)
    return 500, f"{type(exc).__name__}: {exc}"


def new_record(request: Request, target: Target, body: dict[str, Any], key_id: str | None) -> UsageRecord:
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


def finish_record(state: HubState, record: UsageRecord, started: float, status: int, error: str | None = None) -> None:
    record.status_code = status
    record.error = error
    record.latency_ms = (time.perf_counter() - started) * 1000
    record.created_at = time.time()
    ticket = record.ticket
    if ticket is not None:
        record.ticket = None
        ticket.settle(record)
    state.usage.record(record)
    tracing.finish(record)  # the request's totals on its server span (one lookup when tracing is off)


def _dropped_header(chat: ChatRequest) -> dict[str, str]:
    """`x-toolhub-dropped-params: a,b`: the client's parameters the provider left out for this deployment."""
    return {"x-toolhub-dropped-params": header_list(chat.dropped)} if chat.dropped else {}


_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
HEADER_LIST_MAX = 512
"""The longest list of names a response header carries (then `,...`)."""


def header_list(names: Iterable[str]) -> str:
    """Client-chosen names as a header value: a name of other characters than letters, digits and `_.-` percent-encoded
    (a line break or a character past Latin-1 in a header made uvicorn drop the answer after it was charged), the
    whole cut at `HEADER_LIST_MAX` characters."""
    value = ",".join(name if _NAME.fullmatch(name) else quote(name, safe="") for name in names)
    return value if len(value) <= HEADER_LIST_MAX else value[: HEADER_LIST_MAX - 4] + ",..."


def cost_headers(record: UsageRecord) -> dict[str, str]:
    """`x-toolhub-cost` (USD) and the gateway's own time, as LiteLLM's x-litellm-response-cost / overhead headers."""
    overhead = record.latency_ms - record.upstream_ms
    return {
        "x-toolhub-cost": f"{record.cost:.10f}".rstrip("0").rstrip(".") or "0",
        "x-toolhub-overhead-duration-ms": f"{overhead:.3f}",
    }
