"""The hub's Python API for the tool loop, and per-key permissions on every face of the hub."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from hub.accounts.auth import MASTER, MasterKeyAuth, Principal
from hub.config import parse_config
from hub.errors import AuthenticationError
from hub.mcp.errors import ToolNotPermitted, UnknownTool, UpstreamUnavailable
from hub.mcp.hub import McpHub
from hub.state import HubState
from tests.mcp.conftest import (
    MASTER_KEY,
    eventually,
    hub_app,
    hub_of,
    mcp_client,
    running,
    script_server,
    text_of,
    time_server,
    tool_server,
)

pytestmark = pytest.mark.anyio
TIME_ONLY = Principal(key_id="k-time", mcp_servers=frozenset({"time"}))
ECHO_ONLY = Principal(key_id="k-echo", mcp_tools=frozenset({"tool/echo"}))


class FakeKeys:
    """Virtual keys for tests: `sk-time` may use only the time server, `sk-echo` only the tool `tool__echo`."""

    async def authenticate(self, token: str | None) -> Principal:
        keys = {"sk-time": TIME_ONLY, "sk-echo": ECHO_ONLY}
        if token not in keys:
            raise AuthenticationError("Invalid API key.", code="invalid_api_key")
        return keys[token]


@contextlib.asynccontextmanager
async def with_keys(state: HubState) -> AsyncIterator[None]:
    state.auth = MasterKeyAuth(MASTER_KEY, FakeKeys())
    yield


@contextlib.asynccontextmanager
async def hub_of_servers(**servers: dict[str, object]) -> AsyncIterator[McpHub]:
    config = parse_config({"mcp_servers": servers}, {})
    hub = McpHub(config.mcp_servers)
    async with hub.running():
        assert await hub.wait_ready()
        yield hub


async def test_tools_lists_healthy_permitted_tools_with_their_schemas() -> None:
    async with hub_of_servers(tool=tool_server(allowed_tools=["echo", "p*"]), time=time_server()) as hub:
        every = [(t.name, t.server, t.original_name) for t in hub.tools(MASTER)]
        only_tool = [t.name for t in hub.tools(MASTER, servers=["tool"])]
        for_time_key = {t.server for t in hub.tools(TIME_ONLY)}
        echo = hub.tools(ECHO_ONLY)
    assert every == [
        ("time__convert_time", "time", "convert_time"),
        ("time__get_current_time", "time", "get_current_time"),
        ("tool__echo", "tool", "echo"),
        ("tool__pid", "tool", "pid"),
    ]
    assert only_tool == ["tool__echo", "tool__pid"]
    assert for_time_key == {"time"}
    assert [t.name for t in echo] == ["tool__echo"]
    assert echo[0].input_schema == {"type": "object", "properties": {"text": {"type": "string"}}}
    assert echo[0].description == "the echo tool"


async def test_call_tool_returns_results_and_failures_and_raises_only_for_routing() -> None:
    servers = {"tool": tool_server(disallowed_tools=["crash"]), "slow": tool_server(call_timeout=0.5)}
    async with hub_of_servers(**servers) as hub:
        ok = await hub.call_tool("tool__echo", {"text": "api"}, MASTER)
        failed = await hub.call_tool("tool__fail", {}, MASTER)
        timed_out = await hub.call_tool("slow__slow", {}, MASTER)
        quick_timeout = await hub.call_tool("tool__slow", {}, MASTER, timeout=0.2)
        with pytest.raises(UnknownTool):
            await hub.call_tool("tool__crash", {}, MASTER)  # disallowed: not in the catalog
        with pytest.raises(ToolNotPermitted):
            await hub.call_tool("tool__pid", {}, ECHO_ONLY)
        assert hub.server_names() == ["slow", "tool"]
        assert hub.server_call_timeout("slow") == 0.5
        assert hub.server_call_timeout("slow__echo") == 0.5
    assert (ok.is_error, text_of(ok)) == (False, "echo: api")
    assert (failed.is_error, text_of(failed)) == (True, "it failed")
    assert timed_out.is_error and "timed out after 0.5 s" in text_of(timed_out)
    assert quick_timeout.is_error and "timed out after 0.2 s" in text_of(quick_timeout)


async def test_call_tool_to_a_down_upstream_raises_upstream_unavailable() -> None:
    async with hub_of_servers(tool=tool_server()) as hub:
        assert text_of(await hub.call_tool("tool__echo", {"text": "x"}, MASTER)) == "echo: x"
        with pytest.raises(UpstreamUnavailable):
            await hub.call_tool("tool__crash", {}, MASTER)
        with pytest.raises(UpstreamUnavailable) as raised:
            await hub.call_tool("tool__echo", {"text": "x"}, MASTER)
    assert raised.value.server == "tool"


async def test_a_hanging_upstream_does_not_delay_calls_to_others() -> None:
    servers = {"hang": script_server("hang.py", connect_timeout=30), "tool": tool_server()}
    config = parse_config({"mcp_servers": servers}, {})
    hub = McpHub(config.mcp_servers)
    async with hub.running():
        await hub.upstreams["tool"].first_attempt.wait()
        result = await hub.call_tool("tool__echo", {"text": "meanwhile"}, MASTER)
        hang = hub.status()["hang"]["state"]
    assert text_of(result) == "echo: meanwhile"
    assert hang == "connecting"


@pytest.fixture(scope="module")
def keyed_hub_url() -> Iterator[str]:
    with running(hub_app({"tool": tool_server(), "time": time_server()}, extra=[with_keys])) as url:
        yield url


async def test_a_key_sees_and_calls_only_its_servers_and_tools(keyed_hub_url: str) -> None:
    async with mcp_client(f"{keyed_hub_url}/mcp", key="sk-echo") as client:
        names = [t.name for t in (await client.list_tools()).tools]
        allowed = await client.call_tool("tool__echo", {"text": "ok"})
        with pytest.raises(MCPError) as denied:  # as an unknown tool (tests/mcp/test_scoped_names.py)
            await client.call_tool("tool__pid", {})
    async with mcp_client(f"{keyed_hub_url}/mcp", key="sk-time") as client:
        time_names = {t.name for t in (await client.list_tools()).tools}
    assert names == ["tool__echo"]
    assert text_of(allowed) == "echo: ok"
    assert denied.value.error.message == "Unknown tool: 'tool__pid'."
    assert time_names == {"time__convert_time", "time__get_current_time"}


async def test_a_key_cannot_open_another_servers_endpoint(keyed_hub_url: str) -> None:
    response = httpx2.post(f"{keyed_hub_url}/mcp/tool", headers={"Authorization": "Bearer sk-time"}, json={})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "server_not_found"
    async with mcp_client(f"{keyed_hub_url}/mcp/time", key="sk-time") as client:
        assert {t.name for t in (await client.list_tools()).tools} == {"convert_time", "get_current_time"}


def test_rest_applies_the_same_permissions(keyed_hub_url: str) -> None:
    headers = {"Authorization": "Bearer sk-echo"}
    listed = httpx2.get(f"{keyed_hub_url}/mcp/tools/list", headers=headers).json()
    denied = httpx2.post(f"{keyed_hub_url}/mcp/tools/call", headers=headers, json={"name": "tool__pid"})
    assert [t["name"] for t in listed["tools"]] == ["tool__echo"]
    assert denied.status_code == 404
    assert denied.json()["error"]["code"] == "tool_not_found"


def test_a_failed_upstream_stays_down_with_its_error_while_it_retries() -> None:
    app = hub_app({"hang": script_server("hang.py", connect_timeout=1)}, extra=[])
    with running(app, ready=False):
        upstream = hub_of(app).upstreams["hang"]
        eventually(lambda: upstream.status.attempts >= 2, what="the first retry")  # it lasts 1 s
        status = hub_of(app).status()["hang"]
    assert status["state"] == "down"
    assert status["detail"] == "TimeoutError: no answer within connect_timeout (1 s) (retrying now)"
