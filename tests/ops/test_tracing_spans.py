"""The span hooks in memory: the SDK's in-memory exporter, scripted providers behind the real router, an in-process
MCP server. What each hook records, what it costs nothing to skip, and what goes upstream."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.server import Server, ServerRequestContext
from opentelemetry import trace as otel_trace
from opentelemetry.trace import SpanKind, StatusCode

from hub.accounts.auth import MASTER
from hub.accounts.usage import UsageRecord
from hub.config import parse_config
from hub.gateway.routing import ModelRouter
from hub.ops import tracing
from hub.ops.tracing.spans import _TRACE, RequestTrace  # pyright: ignore[reportPrivateUsage]
from hub.ops.tracing.tracer import RecordedSpan, Sampling, SpanRecorder
from providers._http import TRACE_HEADERS, HttpPool
from providers.base import JSON, ChatRequest, ProviderError


class Spans:
    """The spans a recorder ended, in memory (what the exporter would have sent)."""

    def __init__(self) -> None:
        self.ended: list[RecordedSpan] = []
        self.tracer = SpanRecorder(Sampling("parentbased_always_on", 1.0), self.ended.append)

    def all(self) -> list[RecordedSpan]:
        return list(self.ended)

    def named(self, name: str) -> RecordedSpan:
        [found] = [s for s in self.ended if s.name == name]
        return found

    def children(self, parent: RecordedSpan) -> list[RecordedSpan]:
        found = [s for s in self.ended if s.parent_id == parent.context.span_id]
        return sorted(found, key=lambda s: s.start_ns)


def traceparent(span: RecordedSpan) -> str:
    ctx = span.context
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"


@contextlib.contextmanager
def request_trace(capture: bool = False) -> Iterator[tuple[Spans, RequestTrace]]:
    """What the middleware does for a sampled request: a server span and its RequestTrace in the context."""
    spans = Spans()
    root = spans.tracer.start_span("POST /v1/chat/completions", kind=SpanKind.SERVER)
    trace = RequestTrace(spans.tracer, root, capture)
    token = _TRACE.set(trace)
    try:
        yield spans, trace
    finally:
        _TRACE.reset(token)
        trace.close()
        root.end()


class Scripted:
    """Answers per api_base from a script (an exception to raise, or None: answer); records the trace headers."""

    name = "scripted"

    def __init__(self, script: dict[str, list[Exception | None]]) -> None:
        self.script = script
        self.headers: list[Any] = []

    async def complete(self, request: ChatRequest) -> JSON:
        self.headers.append(TRACE_HEADERS.get())
        step = self.script[request.deployment.api_base].pop(0)
        if step is not None:
            raise step
        return {"id": "chatcmpl-1", "model": "m-2026", "usage": {"prompt_tokens": 7, "completion_tokens": 3},
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there"},
                             "finish_reason": "stop"}]}  # fmt: skip

    async def stream(self, request: ChatRequest) -> AsyncIterator[JSON]:
        self.headers.append(TRACE_HEADERS.get())
        yield {"id": "c1", "model": "m-2026", "choices": [{"index": 0, "delta": {"content": "Hi"}}]}
        yield {"id": "c1", "model": "m-2026", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield {"id": "c1", "model": "m-2026", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1}}


def routed(script: dict[str, list[Exception | None]], **settings: Any) -> tuple[Any, ChatRequest, Scripted]:
    models = [{"model_name": "g", "litellm_params": {"model": "openai/m", "api_base": base, "temperature": 0.5}}
              for base in script]  # fmt: skip
    config = parse_config({"model_list": models, "router_settings": settings}, {})
    router = ModelRouter(config.models, HttpPool(), config.router)
    provider = Scripted(script)
    for slot in router.groups["g"].slots:
        slot.provider = provider
    target = router.resolve("g", MASTER, {"model": "g"})
    body = {"model": "m", "messages": [{"role": "user", "content": "secret prompt"}], "max_tokens": 20}
    return target.provider, ChatRequest(body=body, deployment=target.route.deployment), provider


def server_error() -> ProviderError:
    return ProviderError("openai error (500): boom", status_code=502, provider="openai", upstream_status=500,
                         retryable=True, code="server_error")  # fmt: skip


@pytest.mark.anyio
async def test_without_a_trace_every_hook_does_nothing_and_nothing_goes_upstream() -> None:
    assert tracing.current() is None
    tracing.next_round(1)
    tracing.finish(UsageRecord("r", None, "g", "m", "openai", 200, False, 1.0))

    async def answer() -> str:
        return "done"

    assert await tracing.tool_call("s", "t", {}, answer()) == "done"
    call, request, provider = routed({"http://a/v1": [None]})
    await call.complete(request)
    assert provider.headers == [None]


@pytest.mark.anyio
async def test_each_attempt_is_a_client_span_of_the_request_and_sends_its_own_traceparent() -> None:
    with request_trace() as (spans, trace):
        call, request, provider = routed({"http://a/v1": [server_error()], "http://b/v1": [None]}, num_retries=1)
        await call.complete(request)
    root = spans.named("POST /v1/chat/completions")
    failed, answered = spans.children(root)
    assert (failed.name, failed.kind, answered.kind) == ("chat m", SpanKind.CLIENT, SpanKind.CLIENT)
    assert (failed.status.status_code, failed.status.description) == (StatusCode.ERROR, None)  # no text: content
    assert dict(failed.attributes) | {"toolhub.deployment_id": "-"} == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "m",
        "gen_ai.request.max_tokens": 20, "server.address": failed.attributes["server.address"],
        "server.port": 80, "toolhub.model_group": "g", "toolhub.deployment_id": "-", "toolhub.retry": 0,
        "toolhub.fallback": False, "error.type": "server_error", "http.response.status_code": 500,
    }  # fmt: skip
    assert answered.attributes["toolhub.retry"] == 1
    assert answered.attributes["gen_ai.response.model"] == "m-2026"
    assert answered.attributes["gen_ai.response.id"] == "chatcmpl-1"
    assert answered.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert (answered.attributes["gen_ai.usage.input_tokens"], answered.attributes["gen_ai.usage.output_tokens"]) == (
        7, 3,
    )  # fmt: skip
    assert "gen_ai.input.messages" not in answered.attributes
    assert failed.context.trace_id == root.context.trace_id
    assert [h["traceparent"] for h in provider.headers] == [traceparent(failed), traceparent(answered)]
    assert TRACE_HEADERS.get() is None  # reset after each attempt


@pytest.mark.anyio
async def test_a_fallback_attempt_says_so() -> None:
    with request_trace() as (spans, _):
        models = [{"model_name": name, "litellm_params": {"model": "openai/m", "api_base": f"http://{name}/v1"}}
                  for name in ("g", "h")]  # fmt: skip
        config = parse_config({"model_list": models, "router_settings": {"fallbacks": [{"g": ["h"]}]}}, {})
        router = ModelRouter(config.models, HttpPool(), config.router)
        provider = Scripted({"http://g/v1": [server_error()], "http://h/v1": [None]})
        for group in router.groups.values():
            for slot in group.slots:
                slot.provider = provider
        target = router.resolve("g", MASTER, {"model": "g"})
        await target.provider.complete(ChatRequest(body={"messages": []}, deployment=target.route.deployment))
    first, second = spans.children(spans.named("POST /v1/chat/completions"))
    assert (first.attributes)["toolhub.fallback"] is False
    assert (second.attributes)["toolhub.fallback"] is True
    assert (second.attributes)["toolhub.model_group"] == "h"


@pytest.mark.anyio
async def test_a_streamed_attempt_ends_with_the_stream_and_has_its_usage_and_finish_reason() -> None:
    with request_trace(capture=True) as (spans, _):
        call, request, _provider = routed({"http://a/v1": [None]})
        chunks = [chunk async for chunk in call.stream(request)]
        assert len(chunks) == 3
    [attempt] = spans.children(spans.named("POST /v1/chat/completions"))
    attrs = dict(attempt.attributes)
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (5, 1)
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["gen_ai.output.messages"] == '[{"role":"assistant","content":"Hi"}]'
    assert "secret prompt" in str(attrs["gen_ai.input.messages"])


@pytest.mark.anyio
async def test_a_stream_the_client_abandons_ends_its_span_marked_closed_early() -> None:
    with request_trace() as (spans, _):
        call, request, _provider = routed({"http://a/v1": [None]})
        stream = call.stream(request)
        await anext(aiter(stream))
        await stream.aclose()
    [attempt] = spans.children(spans.named("POST /v1/chat/completions"))
    assert (attempt.attributes)["toolhub.stream.closed_early"] is True


@pytest.mark.anyio
async def test_rounds_parent_their_attempts_and_tool_calls_and_end_when_the_next_starts() -> None:
    with request_trace() as (spans, trace):
        call, request, _ = routed({"http://a/v1": [None, None]})
        tracing.next_round(1)
        await call.complete(request)

        async def tool() -> types.CallToolResult:
            return types.CallToolResult(content=[types.TextContent(type="text", text="noon")])

        async with anyio.create_task_group() as tg:  # parallel tool calls run in child tasks
            tg.start_soon(tracing.tool_call, "time", "get_time", {"tz": "UTC"}, tool())
        tracing.next_round(2)
        await call.complete(request)
        assert trace.round is not None
    root = spans.named("POST /v1/chat/completions")
    first, second = spans.children(root)
    assert (first.name, (first.attributes)["toolhub.round"]) == ("toolhub.tool_loop.round", 1)
    assert [s.name for s in spans.children(first)] == ["chat m", "tools/call get_time"]
    assert [s.name for s in spans.children(second)] == ["chat m"]
    assert second.end_ns  # closed with the request


@pytest.mark.anyio
async def test_a_tool_call_span_records_server_tool_and_errors_but_no_content_unless_asked() -> None:
    async def failing() -> types.CallToolResult:
        return types.CallToolResult(content=[types.TextContent(type="text", text="no such city")], is_error=True)

    async def crashing() -> types.CallToolResult:
        raise RuntimeError("connection lost")

    with request_trace() as (spans, _):
        await tracing.tool_call("weather", "forecast", {"city": "Atlantis"}, failing())
        with pytest.raises(RuntimeError):
            await tracing.tool_call("weather", "forecast", {}, crashing())
    failed = [s for s in spans.all() if s.name == "tools/call forecast"]
    assert [dict(s.attributes) for s in failed] == [
        {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "forecast", "mcp.method.name": "tools/call",
         "toolhub.mcp.server": "weather", "error.type": error}
        for error in ("tool_error", "RuntimeError")
    ]  # fmt: skip
    assert [s.status.status_code for s in failed] == [StatusCode.ERROR, StatusCode.ERROR]
    assert failed[0].status.description == "the tool answered with an error"  # its text is content: not captured


@pytest.mark.anyio
async def test_capture_content_puts_tool_arguments_and_results_on_the_span() -> None:
    async def answer() -> types.CallToolResult:
        return types.CallToolResult(content=[types.TextContent(type="text", text="12:00")])

    async def failing() -> types.CallToolResult:
        return types.CallToolResult(content=[types.TextContent(type="text", text="no such zone")], is_error=True)

    with request_trace(capture=True) as (spans, _):
        await tracing.tool_call("time", "now", {"tz": "UTC"}, answer())
        await tracing.tool_call("time", "zone", {"tz": "Mars"}, failing())
    attrs = dict(spans.named("tools/call now").attributes)
    assert (attrs["gen_ai.tool.call.arguments"], attrs["gen_ai.tool.call.result"]) == ('{"tz":"UTC"}', "12:00")
    assert spans.named("tools/call zone").status.description == "no such zone"


@pytest.mark.anyio
async def test_the_mcp_sdk_sends_the_tool_call_spans_context_in_meta() -> None:
    seen: list[Any] = []

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        seen.append(ctx.meta)
        return types.CallToolResult(content=[types.TextContent(type="text", text="ok")])

    async def list_tools(ctx: ServerRequestContext[Any], params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool(name="echo", input_schema={"type": "object"})])

    server = Server("echo", on_list_tools=list_tools, on_call_tool=call_tool)
    with request_trace() as (spans, _):
        async with Client(server, mode="legacy") as client:  # JSON-RPC, as the hub's upstream sessions speak
            await tracing.tool_call("echo", "echo", {}, client.call_tool("echo", {}))
        assert otel_trace.get_current_span() is otel_trace.INVALID_SPAN  # the context is restored
    span = spans.named("tools/call echo")
    [meta] = seen
    assert meta["traceparent"] == traceparent(span)


@pytest.mark.anyio
@pytest.mark.parametrize(("capture", "status", "error"), [
    (True, 200, {"toolhub.error": "boom"}),
    (False, 200, {"error.type": "_OTHER"}),  # the error's text may quote content: only its kind
    (False, 502, {"error.type": "502"}),
])  # fmt: skip
async def test_finish_puts_the_requests_totals_on_the_server_span(
    capture: bool, status: int, error: dict[str, str]
) -> None:
    record = UsageRecord("r1", None, "g", "m-2026", "anthropic", status, True, 12.0, prompt_tokens=9,
                         completion_tokens=4, cost=0.002, upstream_ms=10.0, retries=1, error="boom")  # fmt: skip
    with request_trace(capture) as (spans, _):
        tracing.finish(record)
    attrs = dict(spans.named("POST /v1/chat/completions").attributes)
    assert attrs == {
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "g", "gen_ai.response.model": "m-2026",
        "gen_ai.provider.name": "anthropic", "gen_ai.usage.input_tokens": 9, "gen_ai.usage.output_tokens": 4,
        "toolhub.cost_usd": 0.002, "toolhub.stream": True, "toolhub.upstream_ms": 10.0, "toolhub.retries": 1,
        **error,
    }  # fmt: skip


@pytest.mark.anyio
async def test_a_trace_whose_request_ended_records_nothing_more() -> None:
    with request_trace() as (spans, trace):
        trace.close()
        assert tracing.current() is None
        tracing.next_round(1)
    assert [s.name for s in spans.all()] == ["POST /v1/chat/completions"]


@pytest.mark.anyio
async def test_a_cancelled_attempt_ends_its_span_as_cancelled() -> None:
    class Hanging(Scripted):
        async def complete(self, request: ChatRequest) -> JSON:
            await anyio.sleep_forever()
            raise AssertionError

    with request_trace() as (spans, _):
        call, request, _ = routed({"http://a/v1": [None]})
        for slot in call.group.slots:
            slot.provider = Hanging({})
        with anyio.move_on_after(0.01):
            await call.complete(request)
    [attempt] = spans.children(spans.named("POST /v1/chat/completions"))
    assert (attempt.attributes)["error.type"] == "cancelled"


@pytest.mark.anyio
async def test_with_capture_content_a_failed_attempt_says_the_upstreams_message() -> None:
    with request_trace(capture=True) as (spans, _):
        call, request, _ = routed({"http://a/v1": [server_error()], "http://b/v1": [None]}, num_retries=1)
        await call.complete(request)
    failed, _ = spans.children(spans.named("POST /v1/chat/completions"))
    assert failed.status.description == "openai error (500): boom"
