"""`toolhub stdio` with the catalog service: a 60-tool hub is searched by Cursor (40 at most) and listed in full to
Claude Desktop, over the real stdio wire with the MCP SDK's client; with a database, large results get handles."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
import yaml
from mcp import Client, StdioServerParameters

from tests.support.servers import ROOT

pytestmark = pytest.mark.anyio

SERVERS = ("github", "slack", "jira", "stripe", "notion", "linear")
META = ["hub__search_tools", "hub__describe_tool", "hub__call_tool"]


def write_config(tmp_path: Path, general: dict[str, Any] | None = None) -> Path:
    servers = {name: {"transport": "stdio", "command": sys.executable, "cwd": str(ROOT),
                      "args": ["-m", "tests.catalog.servers.catalog_server", name]} for name in SERVERS}  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"general_settings": general or {}, "mcp_servers": servers}))
    return path


def client(config: Path, name: str) -> Client:
    params = StdioServerParameters(command=sys.executable, args=["-m", "hub", "stdio", "--config", str(config)],
                                   cwd=str(ROOT))  # fmt: skip
    return Client(params, client_info=types.Implementation(name=name, version="1.0"), mode="legacy")


async def listed(client: Client, done: Callable[[list[str]], bool]) -> list[str]:
    """The tool names once `done` holds (upstreams come up one by one, announced with `list_changed`)."""
    names: list[str] = []
    for _ in range(600):  # 30 s at most
        if done(names := [t.name for t in (await client.list_tools()).tools]):
            return names
        await anyio.sleep(0.05)
    raise AssertionError(f"the listing never settled: {names}")


async def search(client: Client, query: str, expected: str) -> str:
    """`hub__search_tools` once the server of `expected` is up."""
    text = ""
    for _ in range(600):
        if expected in (text := _text(await client.call_tool("hub__search_tools", {"query": query}))):
            return text
        await anyio.sleep(0.05)
    raise AssertionError(f"{expected} was never found: {text}")


def _text(result: types.CallToolResult) -> str:
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return content.text


async def test_cursor_gets_search_mode_and_calls_a_tool_it_found(tmp_path: Path) -> None:
    async with client(write_config(tmp_path), "Cursor") as cursor:
        names = await listed(cursor, lambda names: names == META)
        found = await search(cursor, "post a message to a slack channel", "slack__post_message")
        called = await cursor.call_tool("hub__call_tool", {"name": "slack__post_message",
                                                           "arguments": {"channel": "#ops", "text": "hi"}})  # fmt: skip
    assert names == META
    assert "slack__post_message" in found
    assert _text(called) == 'post_message called with {"channel": "#ops", "text": "hi"}'


async def test_claude_desktop_gets_every_tool(tmp_path: Path) -> None:
    async with client(write_config(tmp_path), "claude-ai") as claude:
        names = await listed(claude, lambda names: len(names) >= 60)
    assert len(names) == 60 and not any(name.startswith("hub__") for name in names)


async def test_configured_search_mode_pins_tools_and_stores_results_in_the_configured_database(tmp_path: Path) -> None:
    general = {"tool_exposure": "search", "always_expose": ["github/*_pull_request"], "max_tool_result_chars": 1000,
               "database_url": f"sqlite:///{tmp_path / 'hub.db'}"}  # fmt: skip
    long = "line of text\n" * 3000
    async with client(write_config(tmp_path, general), "claude-ai") as claude:
        names = await listed(claude, lambda names: len(names) == 6)
        await search(claude, "post a message to a slack channel", "slack__post_message")
        result = await claude.call_tool("slack__post_message", {"channel": "#ops", "text": long})
        link = next(c for c in result.content if isinstance(c, types.ResourceLink))
        stored = (await claude.read_resource(link.uri)).contents[0]
    assert names == [*META, "hub__read_result", "github__create_pull_request", "github__merge_pull_request"]
    assert len(_text(result)) < 2000 and str(link.uri).startswith("toolhub://results/")
    assert isinstance(stored, types.TextResourceContents)
    assert stored.text == "post_message called with " + json.dumps({"channel": "#ops", "text": long}, sort_keys=True)
