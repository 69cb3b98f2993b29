"""Per-client limits by `clientInfo` over `/mcp` (issue 19): the real server with six real stdio upstreams (60 tools)
and the MCP SDK's client over streamable HTTP. Cursor (40 tools at most) gets search mode, Claude (no published
limit) every tool, VS Code (128) every tool; a scoped key searches and calls only its own servers' tools."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from hub.accounts.auth import MasterKeyAuth, Principal
from hub.app import create_app
from hub.catalog.service import CatalogSettings, catalog_extension
from hub.config import parse_config
from hub.mcp.http import mcp_extension, mcp_routes
from hub.state import HubState
from tests.mcp.conftest import MASTER_KEY, FakeKeys, hub_app, mcp_client, running
from tests.support.servers import ROOT

pytestmark = pytest.mark.anyio

SERVERS = ("github", "slack", "jira", "stripe", "notion", "linear")
META = ["hub__search_tools", "hub__describe_tool", "hub__call_tool", "hub__read_result"]


SERVER_SPECS = {name: {"transport": "stdio", "command": sys.executable, "cwd": str(ROOT),
                       "args": ["-m", "tests.catalog.servers.catalog_server", name]} for name in SERVERS}  # fmt: skip
NO_GITHUB = Principal(key_id="k-no-github", mcp_servers=frozenset(SERVERS[1:]))
SLACK_ONLY = Principal(key_id="k-slack", mcp_servers=frozenset({"slack"}))


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("limits")
    app = hub_app(SERVER_SPECS, database_url=f"sqlite:///{tmp / 'hub.db'}")
    with running(app) as url:
        yield url


async def names_for(url: str, client_name: str, key: str = MASTER_KEY) -> list[str]:
    info = types.Implementation(name=client_name, version="1.0")
    async with mcp_client(f"{url}/mcp", key, client_info=info) as client:
        return [t.name for t in (await client.list_tools()).tools]


async def test_cursor_gets_the_meta_tools_for_a_60_tool_catalog(url: str) -> None:
    assert await names_for(url, "Cursor") == META


async def test_a_2026_era_cursor_without_a_session_gets_them_too(url: str) -> None:
    info = types.Implementation(name="Cursor", version="1.0")
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(10, read=60)) as http:
        async with Client(streamable_http_client(f"{url}/mcp", http_client=http), client_info=info) as client:
            version = client.session.protocol_version
            names = [t.name for t in (await client.list_tools()).tools]
    assert (version, names) == ("2026-07-28", META)


async def test_claude_and_vs_code_get_all_60_tools(url: str) -> None:
    for client_name in ("claude-ai", "Visual Studio Code"):
        names = await names_for(url, client_name)
        assert len(names) == 60 and not set(names) & set(META), client_name


async def test_cursor_finds_and_calls_a_tool_through_the_meta_tools(url: str) -> None:
    info = types.Implementation(name="cursor-vscode", version="1.0")
    async with mcp_client(f"{url}/mcp", client_info=info) as client:
        found = await client.call_tool("hub__search_tools", {"query": "open a pull request", "limit": 3})
        schema = await client.call_tool("hub__describe_tool", {"name": "github__create_pull_request"})
        pr = {"name": "github__create_pull_request", "arguments": {"repo": "a/b", "head": "x", "base": "main"}}
        called = await client.call_tool("hub__call_tool", pr)
    assert "github__create_pull_request" in text(found)
    assert '"head"' in text(schema) and not called.is_error
    assert text(called) == 'create_pull_request called with {"base": "main", "head": "x", "repo": "a/b"}'


def text(result: types.CallToolResult) -> str:
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return content.text


def test_rest_listing_is_unchanged(url: str) -> None:
    listed: dict[str, Any] = httpx2.get(f"{url}/mcp/tools/list", headers={"Authorization": f"Bearer {MASTER_KEY}"},
                                        timeout=20).json()  # fmt: skip
    assert len(listed["tools"]) == 60


@pytest.fixture(scope="module")
def scoped_url() -> Iterator[str]:
    """The hub with two scoped keys (no store: results are not stored, so no `hub__read_result`)."""
    config = parse_config({"general_settings": {"master_key": MASTER_KEY}, "mcp_servers": SERVER_SPECS}, {})

    @contextlib.asynccontextmanager
    async def with_keys(state: HubState) -> AsyncIterator[None]:
        state.auth = MasterKeyAuth(MASTER_KEY, FakeKeys({"sk-no-github": NO_GITHUB, "sk-slack": SLACK_ONLY}))
        yield

    extensions = [mcp_extension(), catalog_extension(CatalogSettings.from_config), with_keys]
    with running(create_app(config, extensions=extensions, routes=mcp_routes())) as url:
        yield url


async def test_the_limit_counts_the_tools_a_key_may_see(scoped_url: str) -> None:
    assert await names_for(scoped_url, "Cursor", "sk-no-github") == META[:3]  # 50 tools
    slack = await names_for(scoped_url, "Cursor", "sk-slack")  # 10 tools: all of them
    assert len(slack) == 10 and all(name.startswith("slack__") for name in slack)


async def test_a_scoped_key_neither_finds_nor_calls_tools_of_servers_it_may_not_use(scoped_url: str) -> None:
    info = types.Implementation(name="Cursor", version="1.0")
    async with mcp_client(f"{scoped_url}/mcp", "sk-no-github", client_info=info) as client:
        found = await client.call_tool("hub__search_tools", {"query": "create pull request github", "limit": 50})
        described = await client.call_tool("hub__describe_tool", {"name": "github__create_pull_request"})
        called = await client.call_tool("hub__call_tool", {"name": "github__create_pull_request", "arguments": {}})
    assert "github__" not in text(found)
    assert described.is_error and called.is_error
    assert "create_pull_request called" not in text(called)
