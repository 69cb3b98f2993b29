"""OpenTelemetry traces (issue 18), off by default: `general_settings.otel` or the standard `OTEL_*` variables.

A request gets a server span (`middleware`), with children for each tool-loop round, each upstream attempt (retries
and fallbacks, `hub.router.call`) and each MCP tool call, carrying GenAI semantic-convention attributes (`genai`).
The hooks other modules call are below and in `spans`; each is one context-variable lookup when tracing is off.
Spans are recorded by `tracer` and exported by `otlp` (OTLP/HTTP protobuf, or gRPC with grpcio installed), not by
the OpenTelemetry SDK: its costs alone were over the budget (see `tracer`). Only the OpenTelemetry API is used.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from starlette.middleware import Middleware

from hub.ops.tracing.config import OtelSpec, TracingSettings, tracing_settings
from hub.ops.tracing.spans import RequestTrace, current, finish, next_round, tool_call, traceparent

if TYPE_CHECKING:
    from hub.ops.tracing.setup import Tracing

__all__ = ["OtelSpec", "RequestTrace", "TracingSettings", "app_middleware", "current", "finish", "from_settings",
           "next_round", "running", "tool_call", "traceparent", "tracing_settings"]  # fmt: skip


def from_settings(settings: TracingSettings | None) -> Tracing | None:
    """The app's tracing for `Config.otel` (None: off; the exporter is not even imported)."""
    if settings is None:
        return None
    from hub.ops.tracing.setup import Tracing

    return Tracing(settings)


def running(tracing: Tracing | None) -> contextlib.AbstractAsyncContextManager[Any]:
    """For the lifespan: open the tracer provider, flush and close it at shutdown."""
    return contextlib.nullcontext() if tracing is None else tracing.running()


def app_middleware(tracing: Tracing | None) -> list[Middleware]:
    """The outermost middleware of the app when tracing is on; none when it is off."""
    if tracing is None:
        return []
    from hub.ops.tracing.middleware import TracingMiddleware

    return [Middleware(TracingMiddleware, tracing=tracing)]
