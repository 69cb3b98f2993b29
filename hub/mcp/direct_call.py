"""`tools/call` on a stdio upstream's pipes, straight: the request written and its answer taken by `Pipes`, without
the SDK session's request machinery.

The SDK's `ClientSession.send_request` dumps the request model, opens a span, a memory stream and a cancel scope,
hands the line to the pipes, and gets the answer back through the session's reading task, the dispatcher and that
memory stream before it validates the result twice: about 0.2 ms of CPU per call on top of a bare pipe round trip of
0.08 (bench/mcp_cpu.py). Here the answer goes from the reading task to the caller's future, and the result is
checked as `send_request` checks it (`validate_server_result` for the negotiated version, later revisions' fields
dropped, `CallToolResult`).

Everything a call may bring besides its answer keeps working as on the SDK's path: the call has the SDK's
OpenTelemetry client span ("MCP send tools/call <tool>", its context in the request's `_meta`), the request carries a
`progressToken` when a client waits, so the upstream's requests and logs naming it are routed to that client
(`hub.mcp.routing`); a timeout, a cancelled caller and a closed stream end the call as they end an SDK request
(`notifications/cancelled` is sent to the upstream). Only progress has no wire here, so `applies` leaves calls whose
client wants progress, task-augmented calls and the 2026 era (whose requests carry a `_meta` stamp) to the SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

import anyio
import mcp_types as types
import orjson
import pydantic_core
from mcp.client.session import (
    _clamp_inbound_ttl,  # pyright: ignore[reportPrivateUsage]
    _later_revision_fields,  # pyright: ignore[reportPrivateUsage]
)
from mcp.shared._otel import inject_trace_context, otel_span
from mcp.shared.exceptions import MCPError
from mcp_types import methods
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from opentelemetry.trace import (
    INVALID_SPAN,
    NoOpTracerProvider,
    ProxyTracerProvider,
    Span,
    SpanKind,
    StatusCode,
    get_tracer_provider,
)

from hub.mcp.health import timed_out
from hub.mcp.lines import exact_dumps
from hub.mcp.routing import CURRENT
from hub.mcp.sanitize import sanitize_listing
from hub.mcp.stdio_client import Pipes

FIRST_ID = 1 << 40
"""Ids of these requests start far above the session's own (it counts from 0), so the two never meet."""
ABANDON_WRITE_TIMEOUT = 5.0
"""Seconds for writing `notifications/cancelled` of an abandoned call, as the SDK bounds its own."""
_ids = itertools.count(FIRST_ID)
_UNSPANNED = contextlib.nullcontext(INVALID_SPAN)


def _span(name: str, request_id: int) -> contextlib.AbstractContextManager[Span]:
    """The SDK's client span of a call, when OpenTelemetry has a tracer provider. Without one the SDK's span records
    nothing and carries its parent's context: a call goes without it (~7 us of CPU) and sends the same `_meta`."""
    if isinstance(get_tracer_provider(), (ProxyTracerProvider, NoOpTracerProvider)):
        return _UNSPANNED
    attributes = {"mcp.method.name": "tools/call", "jsonrpc.request.id": str(request_id)}
    return otel_span(f"MCP send tools/call {name}", kind=SpanKind.CLIENT, attributes=attributes)


def applies(version: str | None, arguments: Any, wants_progress: bool) -> bool:
    """Whether a call can go straight: a handshake-era session, arguments the SDK would take as they are (a dict or
    none), and no client waiting for progress."""
    return (
        version in HANDSHAKE_PROTOCOL_VERSIONS and (arguments is None or type(arguments) is dict) and not wants_progress
    )


async def call_tool(pipes: Pipes, name: str, arguments: dict[str, Any] | None, read_timeout: float | None,
                    version: str, server: str, *,
                    wedged_after: float | None = None) -> types.CallToolResult:  # fmt: skip
    """The upstream's `CallToolResult` for tool `name`.

    Raises:
        TimeoutError: the request could not be written within `wedged_after` seconds (the upstream stopped reading;
            `Upstream.send` restarts it).
        MCPError: a JSON-RPC error answer, `REQUEST_TIMEOUT` after `read_timeout`, `CONNECTION_CLOSED` when the
            stream ends, `MESSAGE_TOO_LARGE` for an answer over the limit, `INVALID_PARAMS` for arguments that cannot
            be encoded.
        pydantic.ValidationError: the result is not a valid `CallToolResult` for `version`.
    """
    request_id = next(_ids)
    outcome: dict[str, Any] | MCPError
    with _span(name, request_id) as span:
        data = _encoded(_request(request_id, name, arguments))
        try:
            outcome = await _exchange(pipes, request_id, data, read_timeout, wedged_after)
        except MCPError as exc:
            outcome = _noted(span, exc)
    if isinstance(outcome, MCPError):
        raise outcome  # after the span closed, as the SDK raises an error answer
    return _result(outcome, version, server)


def _request(request_id: int, name: str, arguments: dict[str, Any] | None) -> dict[str, Any]:
    """The `tools/call` request, its `_meta` as the SDK's session would send it (within the call's client span)."""
    call = CURRENT.get()
    params: dict[str, Any] = {"name": name} if arguments is None else {"name": name, "arguments": arguments}
    meta: dict[str, Any] = {}
    if call is not None:  # the id names the call for the upstream's requests (hub.mcp.routing), as on the SDK's path
        call.progress_token = request_id
        if call.caller is not None:  # sent whenever a client waits, as `Upstream.call_tool` sends it
            meta["progressToken"] = request_id
    inject_trace_context(meta)  # the client span's W3C context, as the SDK puts it in every request
    if meta:
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def _noted(span: Span, error: MCPError) -> MCPError:
    """`error` noted on the call's span as the SDK's `send_request` notes it: an error answer's code and status, a
    timeout's status; the stream's end not at all. The SDK raises these after its span closed, as `call_tool` does."""
    code = error.error.code
    if timed_out(error):
        span.set_status(StatusCode.ERROR, "TimeoutError: ")  # the SDK's span records the clock's TimeoutError
    elif code != types.CONNECTION_CLOSED:
        span.set_attributes({"error.type": str(code), "rpc.response.status_code": str(code)})
        span.set_status(StatusCode.ERROR, error.error.message)
    return error


def _encoded(message: dict[str, Any]) -> bytes:
    """The request's line: by orjson, or by pydantic as the SDK writes it where orjson refuses (an integer over 64
    bits, which pydantic writes exactly).

    Raises: MCPError INVALID_PARAMS, as `Pipes.send` fails a request it cannot encode."""
    try:
        return exact_dumps(message, line=True)
    except (ValueError, pydantic_core.PydanticSerializationError) as exc:
        raise MCPError(code=types.INVALID_PARAMS, message=f"The request could not be encoded: {exc}") from None


async def _exchange(pipes: Pipes, request_id: int, data: bytes, read_timeout: float | None,
                    wedged_after: float | None) -> dict[str, Any]:  # fmt: skip
    """Write the request and wait for its answer; on a timeout or a cancelled caller, tell the upstream."""
    answer = pipes.expect(request_id)
    timer = None
    try:
        try:
            await pipes.write(data, wedged_after)  # a TimeoutError here means a wedged upstream: it propagates
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise MCPError(code=types.CONNECTION_CLOSED, message="Connection closed") from None
        if read_timeout is not None:  # the clock starts once the request is written, as the SDK's does
            timer = asyncio.get_running_loop().call_later(read_timeout, _expire, answer)
        try:
            return await answer
        except TimeoutError:
            await _cancel(pipes, request_id, f"timed out after {read_timeout}s")
            raise MCPError(code=types.REQUEST_TIMEOUT, message="Request 'tools/call' timed out") from None
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            await _cancel(pipes, request_id, "caller cancelled")
        raise
    finally:
        if timer is not None:
            timer.cancel()
        pipes.forget(request_id)
        _settled(answer)


def _settled(answer: asyncio.Future[dict[str, Any]]) -> None:
    """Leave no failed future unread: a call that ends otherwise (its write failed, it was cancelled) may find its
    future failed too (the pipes fail every waiting request when they close), which asyncio would log at its end."""
    if answer.done():
        if not answer.cancelled():
            answer.exception()
    else:
        answer.cancel()


def _expire(answer: asyncio.Future[dict[str, Any]]) -> None:
    if not answer.done():
        answer.set_exception(TimeoutError())


async def _cancel(pipes: Pipes, request_id: int, reason: str) -> None:
    """`notifications/cancelled` for an abandoned request, best effort within `ABANDON_WRITE_TIMEOUT`."""
    pipes.forget(request_id)
    note = {
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": request_id, "reason": reason},
    }
    with anyio.move_on_after(ABANDON_WRITE_TIMEOUT):
        try:
            await pipes.write(orjson.dumps(note, option=orjson.OPT_APPEND_NEWLINE))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the upstream is gone: nothing to stop


def _result(raw: dict[str, Any], version: str, server: str) -> types.CallToolResult:
    """The result as `ClientSession.send_request` takes it, after the listing sanitizer the session's stream runs."""
    sanitize_listing(raw, version, server)
    _clamp_inbound_ttl(raw)
    try:
        methods.validate_server_result("tools/call", version, raw)
    except KeyError:
        pass
    if not (foreign := _later_revision_fields("tools/call", version)).isdisjoint(raw):
        raw = {key: value for key, value in raw.items() if key not in foreign}
    return types.CallToolResult.model_validate(raw, by_name=False)
