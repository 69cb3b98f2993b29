"""A straight `tools/call` (`hub.mcp.direct_call`) is sent in the OpenTelemetry client span the SDK's session opens
for a request: its name, kind and attributes, its context in the request's `_meta`, an error answer noted on it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import anyio
import orjson
import pytest
from mcp.shared.exceptions import MCPError
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags

from hub.mcp import direct_call
from hub.mcp.stdio_client import Pipes

pytestmark = pytest.mark.anyio
VERSION = "2025-11-25"
TRACE_ID, SPAN_ID = 0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331


class Recorded(NonRecordingSpan):
    """A span that keeps what is noted on it (the test has no OpenTelemetry SDK)."""

    def __init__(self, name: str, kind: SpanKind, attributes: dict[str, Any]) -> None:
        super().__init__(SpanContext(TRACE_ID, SPAN_ID, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED)))
        self.name, self.kind, self.attributes = name, kind, dict(attributes)
        self.status: tuple[StatusCode, str | None] | None = None

    def set_attributes(self, attributes: Any) -> None:
        self.attributes.update(attributes)

    def set_status(self, status: Any, description: str | None = None) -> None:
        self.status = (status, description)


class Upstream:
    """A process whose stdout answers each request written to its stdin: a result, or an error for tool `fail`."""

    def __init__(self) -> None:
        self.stdin, self.stdout = self, self
        self.sent: list[dict[str, Any]] = []
        self.written, self.requests = anyio.create_memory_object_stream[dict[str, Any]](10)

    async def send(self, data: bytes) -> None:
        self.sent.append(orjson.loads(data))
        await self.written.send(self.sent[-1])

    async def receive(self) -> bytes:
        request = await self.requests.receive()
        if request["params"]["name"] == "fail":
            answer = {"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32602, "message": "Unknown tool"}}
        else:
            answer = {"jsonrpc": "2.0", "id": request["id"], "result": {"content": []}}
        return orjson.dumps(answer) + b"\n"


async def test_a_straight_call_goes_in_the_sdks_client_span_with_its_context_in_meta(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spans: list[Recorded] = []

    @contextlib.contextmanager
    def recording(name: str, *, kind: SpanKind, attributes: dict[str, Any]) -> Iterator[Recorded]:
        spans.append(Recorded(name, kind, attributes))
        with trace.use_span(spans[-1]):
            yield spans[-1]

    monkeypatch.setattr(direct_call, "otel_span", recording)  # this module's names only
    monkeypatch.setattr(direct_call, "get_tracer_provider", lambda: object())  # as if a provider were configured
    upstream = Upstream()
    pipes = Pipes(upstream, "s", 10_000)  # pyright: ignore[reportArgumentType]
    with anyio.fail_after(5), upstream.written, upstream.requests:
        async with anyio.create_task_group() as reading:
            reading.start_soon(drain, pipes)
            await direct_call.call_tool(pipes, "echo", {"a": 1}, 5, VERSION, "s")
            with pytest.raises(MCPError):
                await direct_call.call_tool(pipes, "fail", None, 5, VERSION, "s")
            reading.cancel_scope.cancel()
    ok, failed = spans
    assert (ok.name, ok.kind, ok.status) == ("MCP send tools/call echo", SpanKind.CLIENT, None)
    assert ok.attributes == {"mcp.method.name": "tools/call", "jsonrpc.request.id": str(upstream.sent[0]["id"])}
    traceparent = upstream.sent[0]["params"]["_meta"]["traceparent"]
    assert traceparent == f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01"  # the client span's context, as the SDK sends it
    assert failed.attributes["error.type"] == failed.attributes["rpc.response.status_code"] == "-32602"
    assert failed.status == (StatusCode.ERROR, "Unknown tool")


async def drain(pipes: Pipes) -> None:
    while True:
        await pipes.receive()
