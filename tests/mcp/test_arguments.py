"""Tool arguments too deep or too large are refused at every entry, and never take a shared upstream session down."""

from __future__ import annotations

from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.shared.exceptions import MCPError

from hub.accounts.auth import MASTER
from hub.config import parse_config
from hub.limits import MAX_JSON_DEPTH
from hub.mcp.errors import InvalidArguments
from hub.mcp.hub import McpHub
from tests.mcp.conftest import MASTER_KEY, hub_app, mcp_client, running, text_of, tool_server

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}


def nested(depth: int) -> dict[str, Any]:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


def test_rest_answers_400_for_deep_or_large_arguments_and_the_upstream_keeps_serving() -> None:
    app = hub_app({"tool": tool_server(max_message_bytes=4096)}, extra=[])
    with running(app) as url:

        def call(arguments: dict[str, Any]) -> httpx2.Response:
            return httpx2.post(
                f"{url}/mcp/tools/call", headers=AUTH, json={"name": "tool__echo", "arguments": arguments}
            )

        before = call({"text": "before"})
        deep = [call(nested(254)) for _ in range(3)]
        large = call({"text": "y" * 5000})
        after = call({"text": "after"})
    assert before.json()["content"] == [{"type": "text", "text": "echo: before"}]
    assert {r.status_code for r in deep} == {400}
    assert deep[0].json()["error"]["code"] == "json_too_deep"  # the shared body reader of /v1 (hub.limits)
    assert deep[0].json()["error"]["param"].startswith("arguments")
    assert large.json()["error"] == {
        "message": "The arguments of 'echo' take 5011 bytes as JSON, over the limit of 4096.",
        "type": "invalid_request_error",
        "param": "arguments",
        "code": "invalid_arguments",
    }
    assert after.json()["content"] == [{"type": "text", "text": "echo: after"}]


async def test_mcp_and_sse_clients_get_invalid_params_for_deep_arguments_and_the_session_survives() -> None:
    app = hub_app({"tool": tool_server()}, extra=[])
    with running(app) as url:
        for path in ("/mcp", "/mcp/tool"):
            name = "tool__echo" if path == "/mcp" else "echo"
            async with mcp_client(f"{url}{path}") as client:
                with pytest.raises(MCPError) as refused:
                    await client.call_tool(name, nested(MAX_JSON_DEPTH + 20))
                after = await client.call_tool(name, {"text": "after"})
            assert refused.value.error.code == types.INVALID_PARAMS
            assert f"more than {MAX_JSON_DEPTH} levels deep" in refused.value.error.message
            assert text_of(after) == "echo: after"
        async with Client(sse_client(f"{url}/sse", headers=AUTH), mode="legacy") as client:
            with pytest.raises(MCPError) as over_sse:
                await client.call_tool("tool__echo", nested(MAX_JSON_DEPTH + 20))
            after_sse = await client.call_tool("tool__echo", {"text": "after"})
        assert over_sse.value.error.code == types.INVALID_PARAMS
        assert text_of(after_sse) == "echo: after"


async def test_the_python_api_raises_invalid_arguments() -> None:
    hub = McpHub(parse_config({"mcp_servers": {"tool": tool_server()}}, {}).mcp_servers)
    async with hub.running():
        assert await hub.wait_ready()
        with pytest.raises(InvalidArguments):
            await hub.call_tool("tool__echo", nested(MAX_JSON_DEPTH + 20), MASTER)
        after = await hub.call_tool("tool__echo", {"text": "after"}, MASTER)
    assert text_of(after) == "echo: after"


async def test_a_request_the_transport_cannot_encode_fails_alone() -> None:
    hub = McpHub(parse_config({"mcp_servers": {"tool": tool_server()}}, {}).mcp_servers)
    async with hub.running():
        assert await hub.wait_ready()
        upstream = hub.upstreams["tool"]
        pid = text_of(await hub.call_tool("tool__pid", {}, MASTER))
        # 255 levels pass the session's own encoding but not the transport's (the SDK's stdio writer died on it)
        params = types.CallToolRequestParams(name="echo", arguments=nested(255))
        with pytest.raises(MCPError) as failed:
            await upstream.request(types.CallToolRequest(params=params), types.CallToolResult, read_timeout=10)
        again = text_of(await hub.call_tool("tool__pid", {}, MASTER))
    assert failed.value.error.code == types.INVALID_PARAMS
    assert again == pid  # the same upstream process: the session was not restarted
