"""The span tree of a tool-loop request, end to end, as configured by `general_settings.otel`: the wiring in
hub/config, hub/app.py, `tracing.finish` in hub/gateway/chat.py, `tracing.next_round` in hub/loop, `tracing.tool_call`
in hub/mcp/hub.py and `copy_meta_traceparent` in hub/mcp/transports.py.

The openai SDK -> the gateway -> a fake model that calls a hub tool (tests/fakes/loop_upstream.py), whose first
answer is a 500 (one router retry), and a real MCP server over streamable HTTP; spans go over OTLP/HTTP to an
in-process receiver that decodes them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from mcp.server import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.app import create_app
from hub.config import parse_config
from hub.mcp.http import mcp_extension, mcp_routes
from tests.e2e.conftest import MASTER_KEY
from tests.fakes.faults import OPENAI_500, Faults
from tests.fakes.loop_upstream import LoopModel
from tests.ops.otlp_receiver import OtlpReceiver, Span
from tests.ops.tracing_support import PARENT_ID, TRACE_ID, receiver
from tests.support.hub import wait_for_tools
from tests.support.servers import replaying, serve_app

TIME = {"type": "mcp", "server_label": "time", "require_approval": "never"}


class ToolCalls:
    """In front of an MCP server: the `traceparent` header and `_meta` of each `tools/call` POST."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[tuple[str | None, dict[str, Any]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        data = json.loads(body) if body else {}
        if isinstance(data, dict) and data.get("method") == "tools/call":
            header = dict(scope["headers"]).get(b"traceparent")
            self.seen.append((header.decode() if header else None, data["params"].get("_meta") or {}))
        await self.app(scope, replaying(body, receive), send)


def time_server() -> ASGIApp:
    server = MCPServer("time")

    @server.tool()
    def get_current_time(timezone: str) -> str:
        """The time now."""
        return f"12:00 {timezone}"

    return server.streamable_http_app(stateless_http=True)


@contextlib.contextmanager
def gateway(capture: bool = False) -> Iterator[tuple[openai.OpenAI, Faults, ToolCalls, OtlpReceiver]]:
    """Yields while the gateway serves; its spans are all exported once the block ends (the lifespan flushes)."""
    model = LoopModel()
    faults = Faults(model.app)
    mcp = ToolCalls(time_server())
    with receiver() as (found, otlp), serve_app(faults) as upstream, serve_app(mcp) as mcp_url:
        config = {
            "model_list": [{"model_name": "timer", "litellm_params": {"model": "openai/timer",
                                                                      "api_base": f"{upstream}/v1", "api_key": "k"}}],
            "router_settings": {"num_retries": 1},
            "general_settings": {"master_key": MASTER_KEY, "otel": {"endpoint": otlp, "capture_content": capture}},
            "mcp_servers": {"time": {"transport": "http", "url": f"{mcp_url}/mcp"}},
        }  # fmt: skip
        app = create_app(parse_config(config, {}), extensions=[mcp_extension()], routes=mcp_routes())
        with serve_app(app) as url:
            wait_for_tools(url, {"time"}, MASTER_KEY)
            with openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=30) as client:
                yield client, faults, mcp, found


def ask(client: openai.OpenAI, stream: bool) -> str:
    params: dict[str, Any] = {
        "model": "timer",
        "messages": [{"role": "user", "content": "What time is it?"}],
        "tools": [TIME],
        "extra_headers": {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
    }
    if not stream:
        return client.chat.completions.create(**params).choices[0].message.content or ""
    chunks = client.chat.completions.create(stream=True, **params)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def check_tree(found: OtlpReceiver, mcp: ToolCalls) -> tuple[Span, list[Span]]:
    [server] = found.named("POST /v1/chat/completions")
    assert (server.trace_id, server.parent_id) == (TRACE_ID, PARENT_ID)
    first, second = found.children(server)
    assert [(r.name, r.attributes["toolhub.round"]) for r in (first, second)] == [
        ("toolhub.tool_loop.round", 1), ("toolhub.tool_loop.round", 2),
    ]  # fmt: skip
    failed, answered, tool = found.children(first)
    assert [(s.name, s.status) for s in (failed, answered, tool)] == [
        ("chat timer", "ERROR"), ("chat timer", "UNSET"), ("tools/call get_current_time", "UNSET"),
    ]  # fmt: skip
    assert failed.attributes["http.response.status_code"] == 500
    assert answered.attributes["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert tool.attributes["toolhub.mcp.server"] == "time"
    assert tool.attributes["gen_ai.tool.name"] == "get_current_time"
    [final] = found.children(second)
    assert final.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert server.attributes["gen_ai.request.model"] == "timer"
    assert server.attributes["toolhub.retries"] == 1
    assert server.attributes["toolhub.tool_calls"] == 1
    assert server.attributes["gen_ai.usage.input_tokens"] == 22  # two rounds of the fake's usage
    # The MCP server got the tool call span's context, in `_meta` and as the HTTP header.
    [(header, meta)] = mcp.seen
    assert header == meta["traceparent"]
    assert header is not None and header.startswith(f"00-{TRACE_ID}-{tool.span_id}-")
    return server, [failed, answered, tool, final]


@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_loop_request_with_a_retry_is_one_span_tree(stream: bool) -> None:
    with gateway() as (client, faults, mcp, found):
        faults.queue = [OPENAI_500]
        assert "noon" in ask(client, stream)
    _, spans = check_tree(found, mcp)
    assert not any(k.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.tool.call.")) for s in spans
                   for k in s.attributes)  # fmt: skip


def test_capture_content_true_puts_messages_and_tool_io_on_the_spans() -> None:
    with gateway(capture=True) as (client, faults, mcp, found):
        faults.queue = [OPENAI_500]
        ask(client, False)
    _, (_, answered, tool, final) = check_tree(found, mcp)
    assert "What time is it?" in answered.attributes["gen_ai.input.messages"]
    assert "noon" in final.attributes["gen_ai.output.messages"]
    assert tool.attributes["gen_ai.tool.call.arguments"] == '{"timezone":"UTC"}'
    assert tool.attributes["gen_ai.tool.call.result"] == "12:00 UTC"
