"""Helpers for the tracing tests: an app wrapped as the lead's hooks in hub/app.py wrap it, a header recorder in
front of fake upstreams, and the OTLP receiver on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.ops.tracing import tracing_settings
from hub.ops.tracing.config import OtelSpec
from hub.ops.tracing.middleware import TracingMiddleware
from hub.ops.tracing.setup import Tracing
from tests.ops.otlp_receiver import OtlpReceiver
from tests.support.servers import serve_app

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


class Traced:
    """`app` with `TracingMiddleware` outermost and the tracer provider opened around its lifespan: what
    `create_app` does once `general_settings.otel` is wired in (hub/app.py hooks)."""

    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing
        self.middleware = TracingMiddleware(app, tracing)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # the provider closes before uvicorn hears the shutdown is complete
            held: list[Message] = []

            async def hold_completion(message: Message) -> None:
                if message["type"] == "lifespan.shutdown.complete":
                    held.append(message)
                else:
                    await send(message)

            async with self.tracing.running():
                await self.app(scope, receive, hold_completion)
            for message in held:
                await send(message)
            return
        await self.middleware(scope, receive, send)


class Headers:
    """Records the trace-context headers of every request that reaches `app`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[dict[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            wanted = {b"traceparent", b"tracestate"}
            self.seen.append({k.decode(): v.decode() for k, v in scope["headers"] if k in wanted})
        await self.app(scope, receive, send)


@contextlib.contextmanager
def receiver() -> Iterator[tuple[OtlpReceiver, str]]:
    """The OTLP receiver on loopback; yields it and its base URL (the `endpoint` to configure)."""
    found = OtlpReceiver()
    with serve_app(found.app) as url:
        yield found, url


def tracing_to(url: str, **spec: Any) -> Tracing:
    """Tracing that exports to the receiver at `url` over OTLP/HTTP, batched as in production: what it recorded is
    all exported once the app's lifespan ended."""
    settings = tracing_settings(OtelSpec(endpoint=url, **spec), {})
    assert settings is not None
    return Tracing(settings)
