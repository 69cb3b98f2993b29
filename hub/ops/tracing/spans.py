"""One request's spans: the server span (`middleware`), a span per tool-loop round, per upstream attempt and per
MCP tool call.

The request's `RequestTrace` lives in a context variable that only the tracing middleware sets, so with tracing off
every hook costs one `ContextVar.get`. Child tasks (the disconnect watcher, a round's parallel tool calls) inherit
it; rounds are sequential, so the round under way is a plain attribute rather than a context variable. A trace is
closed when its request ends: work that outlives it (an MCP session task spawned by the request) records nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar

import anyio
import orjson
from opentelemetry import context as otel_context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, set_span_in_context

from hub.ops.tracing.genai import StreamWatch, completion_attributes, record_attributes, request_attributes
from hub.ops.tracing.tracer import SpanRecorder
from providers._http import TRACE_HEADERS
from providers.base import JSON, ChatRequest, ProviderError

T = TypeVar("T")
_TRACE: ContextVar[RequestTrace | None] = ContextVar("toolhub_trace", default=None)


def current() -> RequestTrace | None:
    """The trace of the request being served here, or None (tracing off, unsampled, or the request has ended)."""
    trace = _TRACE.get()
    return None if trace is None or trace.closed else trace


def next_round(number: int) -> None:
    """Hook: the tool loop starts round `number` (1-based); its model calls and tool calls become its children."""
    trace = _TRACE.get()
    if trace is not None and not trace.closed:
        trace.next_round(number)


def finish(record: Any) -> None:
    """Hook: the request's `UsageRecord` is final (model, tokens, cost, retries): put it on the server span."""
    trace = _TRACE.get()
    if trace is not None and not trace.closed:
        trace.span.set_attributes(record_attributes(record))
        if record.error and trace.capture:
            trace.span.set_attribute("toolhub.error", str(record.error)[:500])
        elif record.error:  # the text may quote the prompt or the upstream's answer: content
            trace.span.set_attribute("error.type", str(record.status_code) if record.status_code >= 400 else "_OTHER")


async def tool_call(server: str, tool: str, arguments: Mapping[str, Any] | None, call: Awaitable[T]) -> T:
    """Hook: await an MCP `tools/call` (`call`) inside its span; the span is current in OpenTelemetry's context
    meanwhile, so the MCP SDK puts its `traceparent` in the request's `_meta`."""
    trace = _TRACE.get()
    if trace is None or trace.closed:
        return await call
    return await trace.tool_call(server, tool, arguments, call)


def traceparent(span: Span) -> dict[str, str]:
    """W3C trace-context headers naming `span` as the parent."""
    ctx = span.get_span_context()
    headers = {"traceparent": f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"}
    if ctx.trace_state:
        headers["tracestate"] = ctx.trace_state.to_header()
    return headers


class LazyTraceparent(Mapping[str, str]):
    """`traceparent(span)`, formatted only if an upstream call outside the router's attempts asks for it."""

    __slots__ = ("span", "_headers")

    def __init__(self, span: Span) -> None:
        self.span = span
        self._headers: dict[str, str] | None = None

    def _get(self) -> dict[str, str]:
        if self._headers is None:
            self._headers = traceparent(self.span)
        return self._headers

    def __getitem__(self, key: str) -> str:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


class RequestTrace:
    """The spans of one request; children hang from the round under way, else from the server span."""

    __slots__ = ("tracer", "span", "capture", "round", "closed")

    def __init__(self, tracer: Tracer, span: Span, capture: bool) -> None:
        self.tracer = tracer
        self.span = span
        self.capture = capture
        self.round: Span | None = None
        self.closed = False

    def start(self, name: str, kind: SpanKind, attributes: dict[str, Any]) -> Span:
        parent = self.round or self.span
        if isinstance(self.tracer, SpanRecorder):
            return self.tracer.start_child(name, parent, kind, attributes)
        return self.tracer.start_span(name, set_span_in_context(parent), kind, attributes)

    def next_round(self, number: int) -> None:
        if self.round is not None:
            self.round.end()
        self.round = None  # the new round hangs from the request's span
        self.round = self.start("toolhub.tool_loop.round", SpanKind.INTERNAL, {"toolhub.round": number})

    def close(self) -> None:
        self.closed = True
        if self.round is not None:
            self.round.end()
            self.round = None

    async def attempt(
        self, call: Callable[[], Awaitable[Any]], request: ChatRequest, attributes: dict[str, Any], stream: bool
    ) -> Any:
        """One upstream attempt in its span, with its trace context on the upstream request (`TRACE_HEADERS`).

        A stream's span lasts until the stream ends: `(first, chunks)` comes back with `chunks` watched."""
        deployment = request.deployment
        attrs = request_attributes(deployment, request.body, self.capture) | attributes
        span = self.start(f"chat {deployment.model}", SpanKind.CLIENT, attrs)
        token = TRACE_HEADERS.set(traceparent(span))
        try:
            result = await call()
        except BaseException as exc:
            end_failed(span, exc, self.capture)
            raise
        finally:
            TRACE_HEADERS.reset(token)
        if not stream:
            span.set_attributes(completion_attributes(result, self.capture))
            span.end()
            return result
        first, chunks = result
        if first is None:
            span.end()
            return result
        watch = StreamWatch(self.capture)
        watch.see(first)
        return first, TracedChunks(span, watch, chunks)

    async def tool_call(self, server: str, tool: str, arguments: Mapping[str, Any] | None, call: Awaitable[T]) -> T:
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool,
            "mcp.method.name": "tools/call",
            "toolhub.mcp.server": server,
        }
        if self.capture and arguments is not None:
            attrs["gen_ai.tool.call.arguments"] = orjson.dumps(arguments, default=str).decode()
        span = self.start(f"tools/call {tool}", SpanKind.CLIENT, attrs)
        token = otel_context.attach(set_span_in_context(span))
        try:
            result = await call
        except BaseException as exc:
            end_failed(span, exc, self.capture)
            raise
        finally:
            otel_context.detach(token)
        if getattr(result, "is_error", False):
            span.set_attribute("error.type", "tool_error")
            # The tool's text is content: on the span only with capture_content.
            text = _result_text(result)[:500] if self.capture else "the tool answered with an error"
            span.set_status(Status(StatusCode.ERROR, text))
        if self.capture:
            span.set_attribute("gen_ai.tool.call.result", _result_text(result))
        span.end()
        return result


class TracedChunks:
    """A stream's chunks, passed through unchanged; the attempt's span ends with the stream."""

    __slots__ = ("span", "watch", "chunks", "ended")

    def __init__(self, span: Span, watch: StreamWatch, chunks: Any) -> None:
        self.span = span
        self.watch = watch
        self.chunks = chunks
        self.ended = False

    def __aiter__(self) -> TracedChunks:
        return self

    async def __anext__(self) -> JSON:
        try:
            chunk = await anext(self.chunks)
        except StopAsyncIteration:
            self._end(None)
            raise
        except BaseException as exc:
            self._end(exc)
            raise
        self.watch.see(chunk)
        return chunk

    async def aclose(self) -> None:
        try:
            await self.chunks.aclose()
        finally:
            if not self.ended:
                self.span.set_attribute("toolhub.stream.closed_early", True)
            self._end(None)

    def _end(self, exc: BaseException | None) -> None:
        if self.ended:
            return
        self.ended = True
        self.span.set_attributes(self.watch.attributes())
        if exc is None:
            self.span.end()
        else:
            end_failed(self.span, exc, self.watch.capture)


def end_failed(span: Span, exc: BaseException, capture: bool = False) -> None:
    """End `span` as failed: a provider error with its code and upstream status, a cancellation, or a crash. The
    error's text (and a crash's stack) only with `capture`: a message may quote the prompt or the upstream's answer;
    without it the span says `error.type` and the status code only."""
    if isinstance(exc, ProviderError):
        span.set_attribute("error.type", exc.code or exc.type or "provider_error")
        if exc.upstream_status:
            span.set_attribute("http.response.status_code", exc.upstream_status)
        span.set_status(Status(StatusCode.ERROR, exc.message[:500] if capture else None))
    elif isinstance(exc, anyio.get_cancelled_exc_class()):
        span.set_attribute("error.type", "cancelled")
        span.set_status(Status(StatusCode.ERROR, "cancelled"))
    else:
        span.set_attribute("error.type", type(exc).__qualname__)
        if capture:
            span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:500] if capture else None))
    span.end()


def _result_text(result: Any) -> str:
    texts = [getattr(item, "text", None) for item in getattr(result, "content", None) or ()]
    return "\n".join(t for t in texts if isinstance(t, str))


__all__ = ["RequestTrace", "TracedChunks", "current", "finish", "next_round", "tool_call", "traceparent"]
