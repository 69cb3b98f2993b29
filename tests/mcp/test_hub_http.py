"""The hub end to end over loopback: real stdio upstreams, the official MCP client on /mcp, /sse and /mcp/<server>."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.mcp.conftest import (
    MASTER_KEY,
    Notifications,
    everything_stdio,
    hub_app,
    mcp_client,
    requires_everything,
    running,
    text_of,
    time_server,
    tool_server,
)

pytestmark = pytest.mark.anyio
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(scope="module")
def hub_url() -> Iterator[str]:
    requires_everything()
    servers = {"time": time_server(), "ev": everything_stdio(), "tool": tool_server()}
    with running(hub_app(servers)) as url:
        yield url


async def test_the_catalog_is_prefixed_sorted_and_valid_for_every_provider(hub_url: str) -> None:
    async with mcp_client(f"{hub_url}/mcp") as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
    assert names == sorted(names)
    assert all(NAME.match(name) for name in names)
    assert {"time__get_current_time", "ev__get-sum", "tool__echo"} <= set(names)
    assert {name.split("__")[0] for name in names} == {"ev", "time", "tool"}


async def test_tools_of_every_upstream_are_called_through_one_session(hub_url: str) -> None:
    async with mcp_client(f"{hub_url}/mcp") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        total = await client.call_tool("ev__get-sum", {"a": 2, "b": 3})
        now = await client.call_tool("time__get_current_time", {"timezone": "Europe/Berlin"})
        failed = await client.call_tool("tool__fail", {})
    assert tools["ev__get-sum"].meta == {
        **(tools["ev__get-sum"].meta or {}),
        "io.toolhub/original_name": "get-sum",
        "io.toolhub/server": "ev",
    }
    assert text_of(total) == "The sum of 2 and 3 is 5."
    assert '"timezone": "Europe/Berlin"' in text_of(now)
    assert failed.is_error and text_of(failed) == "it failed"


async def test_an_unknown_tool_is_a_json_rpc_error(hub_url: str) -> None:
    async with mcp_client(f"{hub_url}/mcp") as client:
        with pytest.raises(MCPError) as raised:
            await client.call_tool("nope__nothing", {})
    assert raised.value.error.code == types.INVALID_PARAMS


async def test_progress_notifications_reach_the_downstream_caller(hub_url: str) -> None:
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    async with mcp_client(f"{hub_url}/mcp") as client:
        args = {"duration": 0.3, "steps": 3}
        result = await client.call_tool("ev__trigger-long-running-operation", args, progress_callback=on_progress)
    assert "completed" in text_of(result)
    assert seen == [(1.0, 3.0), (2.0, 3.0), (3.0, 3.0)]


async def test_upstream_sampling_and_elicitation_requests_go_to_the_calling_client(hub_url: str) -> None:
    prompts: list[str] = []

    async def sample(ctx: ClientRequestContext, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        content = params.messages[0].content
        prompts.append(content.text if isinstance(content, types.TextContent) else "")
        return types.CreateMessageResult(
            role="assistant", model="test-model", content=types.TextContent(type="text", text="sampled by the client")
        )

    async def elicit(ctx: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="decline")

    async with mcp_client(f"{hub_url}/mcp", sampling_callback=sample, elicitation_callback=elicit) as client:
        sampled = await client.call_tool("ev__trigger-sampling-request", {"prompt": "hello hub", "maxTokens": 10})
        elicited = await client.call_tool("ev__trigger-elicitation-request", {})
    assert prompts == ["Resource trigger-sampling-request context: hello hub"]
    assert "sampled by the client" in text_of(sampled)
    assert "declined" in text_of(elicited).lower()


async def test_upstream_log_messages_reach_the_calling_client(hub_url: str) -> None:
    logs: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params)

    async with mcp_client(f"{hub_url}/mcp", logging_callback=on_log) as client:
        result = await client.call_tool("tool__log", {"text": "hi"})
    assert text_of(result) == "logged"
    assert [(p.level, p.data, p.logger) for p in logs] == [("warning", {"said": "hi"}, "tool_server")]


async def test_a_downstream_cancel_cancels_the_upstream_call(hub_url: str) -> None:
    started = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        started.set()

    async with mcp_client(f"{hub_url}/mcp") as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: client.call_tool("tool__slow", {}, progress_callback=on_progress))
            with anyio.fail_after(10):
                await started.wait()
            tg.cancel_scope.cancel()
        answer = await client.call_tool("tool__was_cancelled", {})
    assert text_of(answer) == "True"


async def test_resources_and_prompts_are_aggregated(hub_url: str) -> None:
    async with mcp_client(f"{hub_url}/mcp") as client:
        resources = (await client.list_resources()).resources
        templates = (await client.list_resource_templates()).resource_templates
        prompts = [p.name for p in (await client.list_prompts()).prompts]
        read = await client.read_resource(resources[0].uri)
        prompt = await client.get_prompt("ev__simple-prompt")
    assert resources and templates
    assert read.contents and read.contents[0].uri == resources[0].uri
    assert "ev__simple-prompt" in prompts and all(p.startswith("ev__") for p in prompts)
    assert prompt.messages


async def test_one_upstream_keeps_its_original_names_on_its_own_endpoint(hub_url: str) -> None:
    async with mcp_client(f"{hub_url}/mcp/ev") as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        result = await client.call_tool("echo", {"message": "direct"})
        assert client.server_info.name == "ev"
    assert "echo" in names and "get-sum" in names and not any("__" in n for n in names)
    assert text_of(result) == "Echo: direct"


async def test_legacy_sse_clients_get_the_same_catalog(hub_url: str) -> None:
    async with Client(sse_client(f"{hub_url}/sse", headers=AUTH), mode="legacy") as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        result = await client.call_tool("tool__echo", {"text": "over sse"})
    assert "time__get_current_time" in names
    assert text_of(result) == "echo: over sse"


async def test_clients_in_auto_mode_get_the_modern_protocol_without_waiting(hub_url: str) -> None:
    async with httpx2.AsyncClient(headers=AUTH) as http:
        with anyio.fail_after(8):  # a silent server/discover would cost 10 s
            async with Client(streamable_http_client(f"{hub_url}/mcp", http_client=http)) as client:
                result = await client.call_tool("tool__echo", {"text": "modern"})
                version = client.protocol_version
    assert version == "2026-07-28"
    assert text_of(result) == "echo: modern"


@pytest.mark.parametrize("path", ["/mcp", "/mcp/ev", "/sse", "/mcp/tools/list"])
def test_every_mcp_endpoint_requires_a_key(hub_url: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = httpx2.get(f"{hub_url}{path}", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"


def test_an_unknown_server_endpoint_is_404(hub_url: str) -> None:
    response = httpx2.post(f"{hub_url}/mcp/nope", headers=AUTH, json={})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "server_not_found"


@pytest.mark.parametrize(
    ("headers", "status"), [({"Host": "evil.example"}, 421), ({"Origin": "http://evil.example"}, 403)]
)
def test_dns_rebinding_is_refused(hub_url: str, headers: dict[str, str], status: int) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    response = httpx2.post(
        f"{hub_url}/mcp", headers={**AUTH, **headers, "Accept": "application/json, text/event-stream"}, json=body
    )
    assert response.status_code == status


def test_rest_lists_tools_with_servers_and_health(hub_url: str) -> None:
    body = httpx2.get(f"{hub_url}/mcp/tools/list", headers=AUTH).json()
    echo = next(t for t in body["tools"] if t["name"] == "tool__echo")
    assert echo == {
        "name": "tool__echo",
        "server": "tool",
        "original_name": "echo",
        "description": "the echo tool",
        "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
    }
    states = {name: s["state"] for name, s in body["servers"].items()}
    assert states == {"ev": "ready", "time": "ready", "tool": "ready"}
    assert body["servers"]["tool"]["transport"] == "stdio"


@pytest.mark.parametrize(
    ("payload", "status", "expected"),
    [
        (
            {"name": "tool__echo", "arguments": {"text": "rest"}},
            200,
            {"content": [{"type": "text", "text": "echo: rest"}], "isError": False},
        ),
        ({"name": "tool__fail"}, 200, {"content": [{"type": "text", "text": "it failed"}], "isError": True}),
        ({"name": "tool__nothing", "arguments": {}}, 404, "tool_not_found"),
        ({"name": 5}, 400, None),
        ({"name": "tool__echo", "arguments": [1]}, 400, None),
    ],
)
def test_rest_calls_a_tool(hub_url: str, payload: dict[str, Any], status: int, expected: Any) -> None:
    response = httpx2.post(f"{hub_url}/mcp/tools/call", headers=AUTH, json=payload)
    assert response.status_code == status
    body = response.json()
    if status == 200:
        assert {k: v for k, v in body.items() if k in ("content", "isError")} == expected
    else:
        assert body["error"]["type"] == "invalid_request_error"
        assert expected is None or body["error"]["code"] == expected


def test_rest_rejects_invalid_json(hub_url: str) -> None:
    response = httpx2.post(
        f"{hub_url}/mcp/tools/call", headers={**AUTH, "Content-Type": "application/json"}, content=b"{not json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


async def test_tools_list_changed_reaches_connected_clients_in_both_eras(hub_url: str) -> None:
    notes = Notifications()
    async with httpx2.AsyncClient(headers=AUTH) as http:
        async with (
            mcp_client(f"{hub_url}/mcp", message_handler=notes) as legacy,
            Client(streamable_http_client(f"{hub_url}/mcp", http_client=http)) as modern,
        ):
            async with modern.listen(tools_list_changed=True) as subscription:
                await legacy.call_tool("tool__add_tool", {"text": "fresh"})
                await notes.next(types.ToolListChangedNotification)
                with anyio.fail_after(20):
                    async for _event in subscription:
                        break
            names = {t.name for t in (await legacy.list_tools()).tools}
    assert "tool__fresh" in names
