"""`TracingMiddleware`: one server span per HTTP request, continuing the caller's `traceparent`.

Pure ASGI and outermost, so the span covers the gateway's whole time for the request (its own middleware included);
a streamed answer's span ends when the last byte is sent. Unsampled requests get no `RequestTrace` (their hooks cost
what they cost with tracing off) but still pass their trace context on to upstreams, with the sampled flag off.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.ops.tracing.setup import Tracing
from hub.ops.tracing.spans import _TRACE, LazyTraceparent, RequestTrace, end_failed  # pyright: ignore[reportPrivateUsage]
from providers._http import TRACE_HEADERS

_PROPAGATOR = TraceContextTextMapPropagator()
_OVERHEAD = b"x-toolhub-overhead-duration-ms"
MAX_TRACEPARENT = 512
MAX_TRACESTATE = 512
MAX_TRACESTATE_MEMBERS = 32


class TracingMiddleware:
    """A server span per request (`tracing.tracer` is None before the lifespan opened it: requests pass through)."""

    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracer = self.tracing.tracer
        if tracer is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        span = tracer.start_span(method, incoming_context(scope["headers"]), SpanKind.SERVER, _attributes(scope))
        status = 0

        async def traced_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                _note_overhead(span, message.get("headers") or ())
            await send(message)

        trace = RequestTrace(tracer, span, self.tracing.settings.capture_content)
        token = _TRACE.set(trace) if span.is_recording() else None
        headers = TRACE_HEADERS.set(LazyTraceparent(span))  # unsampled too: upstreams learn the trace and its flag
        try:
            await self.app(scope, receive, traced_send)
        except BaseException as exc:
            trace.close()
            end_failed(span, exc, self.tracing.settings.capture_content)
            raise
        finally:
            TRACE_HEADERS.reset(headers)
            if token is not None:
                _TRACE.reset(token)
        trace.close()
        _name(span, scope, method)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()


def incoming_context(headers: Any) -> Context | None:
    """The caller's trace context from `traceparent` / `tracestate`, or None (a new trace). An oversized
    `traceparent` is ignored, and `tracestate` is cut to W3C's limits (`_tracestate`), so no caller makes the gateway
    carry, forward or export kilobytes of it (nor log a warning per request)."""
    carrier: dict[str, str] = {}
    states: list[bytes] = []
    for name, value in headers:
        if name == b"traceparent" and len(value) <= MAX_TRACEPARENT:
            carrier["traceparent"] = value.decode("latin-1")
        elif name == b"tracestate":
            states.append(value)
    if not carrier:
        return None
    if states:
        carrier["tracestate"] = _tracestate(b",".join(states).decode("latin-1"))
    return _PROPAGATOR.extract(carrier)


def _tracestate(header: str) -> str:
    """At most `MAX_TRACESTATE_MEMBERS` members in `MAX_TRACESTATE` characters: members over 128 characters go first,
    then members from the end (W3C Trace Context, "tracestate Limits")."""
    members = [m.strip() for m in header.split(",") if m.strip()][: MAX_TRACESTATE_MEMBERS * 4]
    if len(members) <= MAX_TRACESTATE_MEMBERS and len(",".join(members)) <= MAX_TRACESTATE:
        return ",".join(members)
    members = [m for m in members if len(m) <= 128][:MAX_TRACESTATE_MEMBERS]
    while len(",".join(members)) > MAX_TRACESTATE:
        members.pop()
    return ",".join(members)


def _attributes(scope: Scope) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "http.request.method": scope["method"],
        "url.path": scope["path"],
        "url.scheme": scope.get("scheme", "http"),
    }
    client = scope.get("client")
    if client:
        attrs["client.address"] = client[0]
    return attrs


def _name(span: Any, scope: Scope, method: str) -> None:
    """`METHOD /route/{template}` once routing is done; the request id the gateway answered with."""
    route = getattr(scope.get("route"), "path", None)
    if route:
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
    rid = (scope.get("state") or {}).get("request_id")
    if rid:
        span.set_attribute("toolhub.request_id", rid)


def _note_overhead(span: Any, headers: Any) -> None:
    for name, value in headers:
        if name == _OVERHEAD:
            try:
                span.set_attribute("toolhub.overhead_ms", float(value))
            except ValueError:
                pass
            return
