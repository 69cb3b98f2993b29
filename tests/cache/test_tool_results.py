"""Cached MCP tool results: read-only tools of an opted-in server, per key, for `cache_ttl` seconds."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest

from hub.accounts.auth import MASTER, Principal
from hub.cache.store import LocalStore
from hub.cache.tools import ToolResultCache, cacheable, tool_results_in
from hub.config import parse_config
from hub.mcp.hub import McpHub
from tests.mcp.conftest import MASTER_KEY, hub_app, mcp_client, running, text_of

pytestmark = pytest.mark.anyio
SERVER = str(Path(__file__).parent / "servers" / "counter_server.py")
OTHER = Principal(key_id="k2", alias="other")


def counter_hub(**options: Any) -> McpHub:
    spec = {"command": sys.executable, "args": [SERVER], **options}
    return McpHub(parse_config({"mcp_servers": {"c": spec}}, {}).mcp_servers)


async def n(hub: McpHub, tool: str, principal: Principal = MASTER, **arguments: Any) -> int:
    result = await hub.call_tool(f"c__{tool}", arguments, principal)
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return json.loads(content.text)["n"]


async def test_a_read_only_tool_answers_from_the_cache_per_key_and_arguments() -> None:
    hub = counter_hub(cache_ttl=60)
    async with hub.running():
        assert await hub.wait_ready()
        first = await n(hub, "read", x=1)
        assert await n(hub, "read", x=1) == first
        assert await n(hub, "read", x=2) != first
        assert await n(hub, "read", OTHER, x=1) != first  # scoped per key


async def test_open_world_unannotated_and_failing_tools_are_never_cached() -> None:
    hub = counter_hub(cache_ttl=60)
    async with hub.running():
        assert await hub.wait_ready()
        for tool in ("read_open", "read_unsaid", "write", "read_fail"):
            assert await n(hub, tool) != await n(hub, tool)


async def test_without_cache_ttl_nothing_is_cached_and_with_it_results_expire() -> None:
    plain = counter_hub()
    async with plain.running():
        assert await plain.wait_ready()
        assert await n(plain, "read") != await n(plain, "read")
    short = counter_hub(cache_ttl=2)  # the second read comes within 2 s on a loaded machine (0.2 s: a stall)
    async with short.running():
        assert await short.wait_ready()
        first = await n(short, "read")
        assert await n(short, "read") == first
        await anyio.sleep(2.1)
        assert await n(short, "read") != first


async def test_mcp_and_rest_clients_get_the_cached_result_too() -> None:
    app = hub_app({"c": {"command": sys.executable, "args": [SERVER], "cache_ttl": 60}})
    with running(app) as url:
        async with mcp_client(f"{url}/mcp") as client:
            first = json.loads(text_of(await client.call_tool("c__read", {"x": 7})))["n"]
            again = json.loads(text_of(await client.call_tool("c__read", {"x": 7})))["n"]
        auth = {"Authorization": f"Bearer {MASTER_KEY}"}
        async with httpx2.AsyncClient(headers=auth) as http:
            body = {"name": "c__read", "arguments": {"x": 7}}
            rest = (await http.post(f"{url}/mcp/tools/call", json=body)).json()
    assert again == first
    assert json.loads(rest["content"][0]["text"])["n"] == first


@pytest.mark.parametrize(
    ("read_only", "open_world", "cached"),
    [(True, False, True), (True, None, False), (True, True, False), (None, False, False), (False, False, False)],
)
async def test_only_tools_that_say_read_only_and_closed_world_are_cacheable(
    read_only: bool | None, open_world: bool | None, cached: bool
) -> None:
    hints = types.ToolAnnotations(read_only_hint=read_only, open_world_hint=open_world)
    assert cacheable(types.Tool(name="t", input_schema={"type": "object"}, annotations=hints)) is cached
    assert not cacheable(types.Tool(name="t", input_schema={"type": "object"}))


async def test_a_tool_cache_keeps_results_in_the_store_of_the_open_response_cache() -> None:
    shared, own = LocalStore(10, 10_000), LocalStore(10, 10_000)
    with tool_results_in(shared, "team-a"):
        inside = ToolResultCache()
        given = ToolResultCache(own)  # an empty store is falsy (len 0): still the one used
    outside = ToolResultCache()
    assert (inside.store, given.store) == (shared, own) and outside.store not in (shared, own)
    key = inside.key("k1", "c", "read", {"x": 1})
    assert key.startswith("team-a:tool:") and outside.key("k1", "c", "read", {"x": 1}).startswith("toolhub:tool:")
    result = types.CallToolResult(content=[types.TextContent(type="text", text="1")])
    await inside.put(key, result, 60)
    assert await ToolResultCache(shared).get(key) == result and len(shared) == 1
