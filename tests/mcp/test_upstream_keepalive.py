"""Calls to a streamable HTTP upstream reuse their connections, also when it answers with event streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp.server import Server, ServerRequestContext
from starlette.applications import Starlette
from starlette.types import Scope

from hub.accounts.auth import MASTER
from hub.config import parse_config
from hub.mcp.hub import McpHub
from hub.mcp.transports import _BoundedStream  # pyright: ignore[reportPrivateUsage]
from tests.mcp.conftest import streamable_app, text_of
from tests.support.servers import serve_app

pytestmark = pytest.mark.anyio
CALLS = 10


def echo_upstream(json_response: bool, ports: list[int]) -> Starlette:
    """A streamable HTTP MCP server with an `echo` tool; the client port of every POST is appended to `ports`."""

    async def list_tools(ctx: ServerRequestContext[Any], params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool(name="echo", input_schema={"type": "object"})])

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        return types.CallToolResult(content=[types.TextContent(type="text", text=str(params.arguments))])

    server = Server("echo-http", on_list_tools=list_tools, on_call_tool=call_tool)

    def seen(scope: Scope) -> None:
        if scope["method"] == "POST" and scope.get("client"):
            ports.append(scope["client"][1])

    return streamable_app(server, json_response=json_response, seen=seen)


@pytest.mark.parametrize("json_response", [False, True], ids=["event-stream", "json"])
async def test_sequential_calls_to_an_http_upstream_reuse_connections(json_response: bool) -> None:
    ports: list[int] = []
    with serve_app(echo_upstream(json_response, ports)) as upstream:
        config = parse_config({"mcp_servers": {"web": {"url": f"{upstream}/mcp", "transport": "http"}}}, {})
        hub = McpHub(config.mcp_servers)
        async with hub.running():
            assert await hub.wait_ready()
            del ports[:]
            results = [await hub.call_tool("web__echo", {"n": n}, MASTER) for n in range(CALLS)]
    assert [text_of(r) for r in results] == [str({"n": n}) for n in range(CALLS)]
    assert len(ports) == CALLS
    # Each answered event stream closed its connection before: one new connection per call.
    assert len(set(ports)) <= CALLS // 2, ports


class _DroppedAfterAnswer(httpx2.AsyncByteStream):
    """An event stream whose server drops the connection after its answer, before the body's end."""

    def __init__(self) -> None:
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\n\n'
        raise httpx2.RemoteProtocolError("peer closed connection without sending complete message body")

    async def aclose(self) -> None:
        self.closed = True


async def test_closing_an_answered_stream_whose_connection_dropped_is_no_error() -> None:
    inner = _DroppedAfterAnswer()
    stream = _BoundedStream(inner, 10_000)
    async for _ in stream:
        break  # the SDK stops reading at the answer, then closes the response
    await stream.aclose()  # the drain meets the drop: raised before, so the SDK reconnected for an answered call
    assert inner.closed
