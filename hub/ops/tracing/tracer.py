"""A small OpenTelemetry tracer: API spans recorded as plain objects, sampled like the SDK's samplers.

Why not the SDK's `TracerProvider`: measured on this project's 2-core machine (bench/tracing.py), starting and ending
the two spans of a plain request costs about 50 µs of CPU in the SDK and encoding them with its OTLP encoder about
80 µs more, over the whole 0.1 ms budget; these spans and `proto.encode` cost a fraction of that. The spans implement
`opentelemetry.trace.Span`, so `set_span_in_context`, the W3C propagator and the MCP SDK's `_meta` injection work
with them unchanged.
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
    get_current_span,
    use_span,
)
from opentelemetry.util import types
from opentelemetry.util._decorator import _agnosticcontextmanager  # pyright: ignore[reportPrivateUsage]

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
UNSET_STATUS = Status(StatusCode.UNSET)
"""The status of a span nobody set one on (one object: `proto` tells it by identity)."""
_NO_EVENTS: list[Any] = []
_UNSAMPLED = TraceFlags(TraceFlags.DEFAULT)
Event = tuple[str, int, Mapping[str, Any]]


class Sampling:
    """The SDK samplers by their `OTEL_TRACES_SAMPLER` names: always_on/off, traceidratio, and their parent-based
    forms (a parent's decision is kept; a new trace is decided by its id, as `TraceIdRatioBased` does).

    As in the SDK's `ParentBased(root)`, a remote parent's flag decides (sampled: recorded, even with ratio 0), and
    only roots meet the ratio; the non-parent-based forms ignore the caller's flag and apply their own decision."""

    def __init__(self, name: str, ratio: float) -> None:
        self.parent_based = name.startswith("parentbased_")
        rate = 0.0 if name.endswith("always_off") else ratio if name.endswith("traceidratio") else 1.0
        self.bound = round(rate * (1 << 64))

    def sampled(self, trace_id: int, parent: SpanContext | None) -> bool:
        if self.parent_based and parent is not None and parent.is_valid:
            return parent.trace_flags.sampled
        return (trace_id & 0xFFFFFFFFFFFFFFFF) < self.bound


class RecordedSpan(Span):
    """A sampled span; `end()` hands it to the exporter's buffer."""

    __slots__ = ("name", "context", "parent_id", "kind", "attributes", "events", "status", "start_ns", "end_ns",
                 "remote_parent", "_finish")  # fmt: skip

    def __init__(self, name: str, context: SpanContext, parent_id: int, kind: SpanKind,
                 attributes: types.Attributes, finish: Callable[[RecordedSpan], None]) -> None:  # fmt: skip
        self.name = name
        self.context = context
        self.parent_id = parent_id
        self.kind = kind
        # A dict is taken as it is: the gateway's callers build a fresh one per span (a copy per span costs).
        self.attributes: dict[str, Any] = attributes if type(attributes) is dict else dict(attributes or {})
        self.events: list[Event] = _NO_EVENTS
        self.status = UNSET_STATUS
        self.start_ns = time.time_ns()
        self.end_ns = 0
        self.remote_parent = False
        """Whether the parent came from another process (an inbound `traceparent`)."""
        self._finish = finish

    def end(self, end_time: int | None = None) -> None:
        if self.end_ns:
            return
        self.end_ns = end_time or time.time_ns()
        self._finish(self)

    def get_span_context(self) -> SpanContext:
        return self.context

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        if not self.end_ns:
            self.attributes.update(attributes)

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        if not self.end_ns:
            self.attributes[key] = value

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        if not self.end_ns:
            if self.events is _NO_EVENTS:
                self.events = []
            self.events.append((name, timestamp or time.time_ns(), dict(attributes or {})))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        return None  # links are not recorded

    def update_name(self, name: str) -> None:
        self.name = name

    def is_recording(self) -> bool:
        return not self.end_ns

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        self.status = status if isinstance(status, Status) else Status(status, description)

    def record_exception(self, exception: BaseException, attributes: types.Attributes = None,
                         timestamp: int | None = None, escaped: bool = False) -> None:  # fmt: skip
        trace = "".join(traceback.format_exception(type(exception), exception, exception.__traceback__))
        attrs = {"exception.type": type(exception).__qualname__, "exception.message": str(exception),
                 "exception.stacktrace": trace, **(attributes or {})}  # fmt: skip
        self.add_event("exception", attrs, timestamp)


class SpanRecorder(Tracer):
    """Makes spans: recorded ones go to `finish` when they end; unsampled ones are the API's non-recording spans
    (they still carry the trace id, so propagation goes on with the sampled flag off)."""

    def __init__(self, sampling: Sampling, finish: Callable[[RecordedSpan], None], seed: int | None = None) -> None:
        self.sampling = sampling
        self.finish = finish
        self._bits = random.Random(seed).getrandbits

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        parent = get_current_span(context).get_span_context() if context is not None else INVALID_SPAN_CONTEXT
        valid = parent.is_valid
        trace_id = parent.trace_id if valid else self._bits(128) or 1
        span_id = self._bits(64) or 1
        if not self.sampling.sampled(trace_id, parent if valid else None):
            ctx = SpanContext(trace_id, span_id, False, _UNSAMPLED, parent.trace_state if valid else None)
            return NonRecordingSpan(ctx)
        ctx = SpanContext(trace_id, span_id, False, _SAMPLED, parent.trace_state if valid else None)
        span = RecordedSpan(name, ctx, parent.span_id if valid else 0, kind, attributes, self.finish)
        span.remote_parent = valid and parent.is_remote
        if start_time:
            span.start_ns = start_time
        return span

    def start_child(self, name: str, parent: Span, kind: SpanKind, attributes: dict[str, Any]) -> Span:
        """`start_span` under `parent` without building an OpenTelemetry context for it (the hot path)."""
        ctx = parent.get_span_context()
        span_id = self._bits(64) or 1
        if not ctx.trace_flags.sampled:
            return NonRecordingSpan(SpanContext(ctx.trace_id, span_id, False, _UNSAMPLED, ctx.trace_state))
        child = SpanContext(ctx.trace_id, span_id, False, _SAMPLED, ctx.trace_state)
        return RecordedSpan(name, child, ctx.span_id, kind, attributes, self.finish)

    @_agnosticcontextmanager
    def start_as_current_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[Span]:
        span = self.start_span(name, context, kind, attributes, links, start_time)
        with use_span(span, end_on_exit, record_exception, set_status_on_exception) as current:
            yield current
