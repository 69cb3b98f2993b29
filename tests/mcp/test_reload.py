"""MCP servers added, changed and removed while the hub runs (config reload)."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import pytest

from hub.accounts.auth import MASTER
from hub.config import ConfigError, parse_config
from hub.mcp.config import McpServerConfig
from hub.mcp.http import McpHttp
from hub.mcp.hub import McpHub
from tests.mcp.conftest import children_matching, text_of, tool_server

pytestmark = pytest.mark.anyio


def servers(**entries: Any) -> dict[str, McpServerConfig]:
    return dict(parse_config({"general_settings": {"master_key": "sk-x"}, "mcp_servers": entries}, {}).mcp_servers)


async def wait_until(predicate: Any) -> None:
    with anyio.fail_after(20):
        while not predicate():  # noqa: ASYNC110 - a process that exits sends no event
            await anyio.sleep(0.02)


async def test_servers_are_added_restarted_and_removed_while_the_hub_runs() -> None:
    first, second, third = (f"reload-{uuid.uuid4().hex}" for _ in range(3))
    hub = McpHub(servers(a=tool_server(first)))
    http = McpHttp(hub)
    changed: list[str] = []

    async def note(server: str, kinds: frozenset[str]) -> None:
        changed.append(server)

    hub.on_change(note)
    async with hub.running(), http.running():
        await hub.wait_ready()
        added = await http.sync(servers(a=tool_server(first), b=tool_server(second)))
        await hub.wait_started(["b"])
        echoed = await hub.call_tool("b__echo", {"text": "new"}, MASTER)
        restarted = await http.sync(servers(a=tool_server(third), b=tool_server(second)))
        await hub.wait_started(["a"])
        await wait_until(lambda: not children_matching(first))  # the replaced process
        removed = await http.sync(servers(b=tool_server(second)))
        await wait_until(lambda: not children_matching(third))  # the removed one
        names = {info.server for info in hub.tools(MASTER)}
        with pytest.raises(ConfigError):
            await http.sync(servers(b=tool_server(second), c={**tool_server(), "alias": "b"}))
        assert set(hub.upstreams) == set(http.per_server) == {"b"}
    assert added == {"added": ["b"], "removed": [], "restarted": []}
    assert restarted == {"added": [], "removed": [], "restarted": ["a"]}
    assert removed == {"added": [], "removed": ["a"], "restarted": []}
    assert text_of(echoed) == "echo: new"
    assert names == {"b"}
    assert "b" in changed and "a" in changed
    assert children_matching(second) == []
