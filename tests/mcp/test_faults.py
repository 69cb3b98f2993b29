"""Faults: upstreams that crash, hang at start, or serve broken tool lists; shutdown leaves no child process."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import httpx2
import pytest
import yaml

from tests.mcp.conftest import (
    MASTER_KEY,
    Notifications,
    children_matching,
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
from tests.support.servers import toolhub_process

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}


def rest_call(url: str, name: str, arguments: dict[str, object] | None = None) -> httpx2.Response:
    return httpx2.post(f"{url}/mcp/tools/call", headers=AUTH, json={"name": name, "arguments": arguments or {}})


async def test_a_killed_upstream_vanishes_while_others_work_and_returns_by_itself() -> None:
    app = hub_app({"tool": tool_server(), "time": time_server()})
    with running(app) as url:
        notes = Notifications()
        async with mcp_client(f"{url}/mcp", message_handler=notes) as client:
            pid = int(text_of(await client.call_tool("tool__pid", {})))
            os.kill(pid, signal.SIGKILL)
            await notes.next()
            names = {t.name for t in (await client.list_tools()).tools}
            assert not any(name.startswith("tool__") for name in names)
            assert "time__get_current_time" in names
            status = hub_of(app).status()["tool"]
            assert status["state"] == "down" and "retrying" in status["detail"]
            assert rest_call(url, "tool__echo").status_code == 503
            assert rest_call(url, "time__get_current_time", {"timezone": "UTC"}).status_code == 200

            await notes.next()  # reconnected after its backoff
            result = await client.call_tool("tool__echo", {"text": "back"})
            new_pid = int(text_of(await client.call_tool("tool__pid", {})))
    assert text_of(result) == "echo: back"
    assert new_pid != pid


async def test_an_upstream_that_crashes_during_a_call_fails_that_call_only() -> None:
    app = hub_app({"tool": tool_server(), "time": time_server()})
    with running(app) as url:
        crashed = rest_call(url, "tool__crash")
        other = rest_call(url, "time__get_current_time", {"timezone": "UTC"})
        eventually(lambda: hub_of(app).upstreams["tool"].healthy, what="the crashed upstream to come back")
        again = rest_call(url, "tool__echo", {"text": "again"})
    assert crashed.status_code == 503
    assert crashed.json()["error"]["code"] == "mcp_server_unavailable"
    assert other.status_code == 200
    assert again.json()["content"] == [{"type": "text", "text": "echo: again"}]


async def test_a_hanging_upstream_blocks_neither_start_nor_other_calls() -> None:
    app = hub_app({"hang": script_server("hang.py", connect_timeout=1), "tool": tool_server()})
    with running(app, ready=False) as url:
        hub = hub_of(app)
        eventually(lambda: hub.upstreams["tool"].healthy, what="the healthy upstream")
        during = rest_call(url, "tool__echo", {"text": "meanwhile"})
        eventually(lambda: hub.status()["hang"]["state"] == "down", what="the connect timeout")
        listed = httpx2.get(f"{url}/mcp/tools/list", headers=AUTH).json()
    assert during.json()["content"] == [{"type": "text", "text": "echo: meanwhile"}]
    assert "connect_timeout" in listed["servers"]["hang"]["detail"]
    assert {t["server"] for t in listed["tools"]} == {"tool"}


async def test_broken_and_huge_tool_lists_are_repaired_not_fatal() -> None:
    app = hub_app({"bad": script_server("bad_tools.py", "1200")})
    with running(app) as url:
        async with mcp_client(f"{url}/mcp") as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            long_name = next(name for name in tools if name.startswith("bad__long_"))
            called = await client.call_tool(long_name, {})
            dotted = next(name for name in tools if name.startswith("bad__dotted_name_"))
            called_dotted = await client.call_tool(dotted, {})
    assert len(tools) == 1200 + 5  # 3 repaired schemas, the dotted and the long name; no nameless or duplicate tool
    repaired = ("no_schema", "empty_schema", "string_schema")
    assert {tools[f"bad__{n}"].input_schema["type"] for n in repaired} == {"object"}
    assert len(long_name) == 64
    assert tools[long_name].meta is not None and tools[long_name].meta["io.toolhub/original_name"] == "long_" + "n" * 95
    assert text_of(called) == "called long_" + "n" * 95
    assert text_of(called_dotted) == "called dotted.name"


async def test_an_upstream_with_a_missing_secret_is_disabled_and_says_why() -> None:
    needs = {**tool_server(), "env": {"TOKEN": "os.environ/TOOLHUB_UNSET_MCP_TOKEN"}}
    servers = {"tool": tool_server(), "needs": needs}
    app = hub_app(servers)
    with running(app) as url:
        listed = httpx2.get(f"{url}/mcp/tools/list", headers=AUTH).json()
    assert listed["servers"]["needs"]["state"] == "disabled"
    assert "TOOLHUB_UNSET_MCP_TOKEN" in listed["servers"]["needs"]["detail"]


async def test_stopping_the_hub_leaves_no_child_process() -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    servers = {"a": tool_server(marker), "b": tool_server(marker), "hang": script_server("hang.py", marker)}
    with running(hub_app(servers), ready=False):
        eventually(lambda: len(children_matching(marker)) == 3, what="three upstream processes")
    assert children_matching(marker) == []


def test_sigterm_to_toolhub_serve_stops_every_upstream(tmp_path: Path) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    config = {"mcp_servers": {"a": tool_server(marker), "b": tool_server(marker)}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    with toolhub_process(path) as (_url, proc):
        eventually(lambda: len(children_matching(marker)) == 2, what="two upstream processes")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == -signal.SIGTERM  # uvicorn shuts down gracefully, then re-raises the signal
    assert children_matching(marker) == []


def test_a_hub_without_upstreams_serves_an_empty_catalog() -> None:
    with running(hub_app({})) as url:
        body = httpx2.get(f"{url}/mcp/tools/list", headers=AUTH).json()
    assert body == {"tools": [], "servers": {}}
