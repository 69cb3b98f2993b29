"""The pieces as an MCP server would use them, driven by the SDK's own `Client`: search mode chosen by
`clientInfo`, the meta-tools on the wire, a large result as a `resource_link` read back with `resources/read`.

The hub's server (`hub/mcp/server.py`) is wired by the lead's hooks; this server is a stand-in with the same calls,
so that the wire shapes are checked through the SDK before the wiring lands."""

from __future__ import annotations

from typing import Any

import mcp_types as types
import pytest
from mcp import Client
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError

from hub.catalog.dispatch import handle_meta_call, is_meta
from hub.catalog.index import ToolIndex
from hub.catalog.meta import exposure, meta_tools, pinned
from hub.catalog.results import ResultError, ResultStore, read_resource, shrink_result
from tests.catalog.synthetic import catalog

pytestmark = pytest.mark.anyio
Ctx = ServerRequestContext[Any, Any]
BIG = "\n".join(f"log line {i} status={'ERROR' if i % 1000 == 7 else 'ok'}" for i in range(200_000))


def build(results: ResultStore) -> Server[Any]:
    tools = {t.name: t for t in catalog()}
    index = ToolIndex()
    index.sync(tuple(tools.values()))  # the owner keeps the view's index in sync with its catalog

    def mode(ctx: Ctx) -> str:
        params = ctx.session.client_params
        return exposure(None, 40, params.client_info.name if params else None, len(tools))

    async def call(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        text = BIG if name == "files__read_file" else f"{name} ran with {arguments}"
        result = types.CallToolResult(content=[types.TextContent(type="text", text=text)])
        return await shrink_result(result, 20_000, results, "key-a", tool=name)

    async def list_tools(ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        if mode(ctx) == "all":
            return types.ListToolsResult(tools=[_mcp_tool(t) for t in tools.values()])
        return types.ListToolsResult(tools=meta_tools() + [_mcp_tool(t) for t in pinned(tools.values(), ["time/*"])])

    async def call_tool(ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        if is_meta(params.name):
            return await handle_meta_call(params.name, params.arguments, list(tools.values()), call, index=index,
                                          results=(results, "key-a"))  # fmt: skip
        return await call(params.name, params.arguments or {})

    async def read(ctx: Ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        try:
            return await read_resource(params.uri, "key-a", results)
        except ResultError as exc:
            raise MCPError(code=-32002, message=exc.message) from None

    return Server("catalog-test", on_list_tools=list_tools, on_call_tool=call_tool, on_read_resource=read)


def _mcp_tool(tool: Any) -> types.Tool:
    return types.Tool(name=tool.name, description=tool.description, input_schema=dict(tool.input_schema))


def _info(name: str) -> types.Implementation:
    return types.Implementation(name=name, version="1.0")


async def test_clients_with_a_known_limit_get_the_meta_tools_and_others_everything(results: ResultStore) -> None:
    server = build(results)
    async with Client(server, client_info=_info("cursor-vscode")) as cursor:
        listed = (await cursor.list_tools()).tools
    assert [t.name for t in listed][:4] == ["hub__search_tools", "hub__describe_tool", "hub__call_tool",
                                            "hub__read_result"]  # fmt: skip
    assert len(listed) == 14 and all(t.name.startswith(("hub__", "time__")) for t in listed)
    async with Client(server, client_info=_info("Visual Studio Code")) as vscode:
        assert len((await vscode.list_tools()).tools) == 14  # 500 tools are past its 128
    async with Client(server, client_info=_info("claude-ai")) as claude:
        assert len((await claude.list_tools()).tools) == 500  # no known limit and no mode configured: everything


async def test_a_client_finds_calls_and_reads_a_large_result_through_the_meta_tools(results: ResultStore) -> None:
    async with Client(build(results), client_info=_info("cursor")) as client:
        found = await client.call_tool("hub__search_tools", {"query": "read a file", "limit": 3})
        assert found.structured_content is not None
        assert "files__read_file" in [t["name"] for t in found.structured_content["tools"]]
        called = await client.call_tool("hub__call_tool", {"name": "files__read_file", "arguments": {"path": "/x"}})
        head, link = called.content
        assert isinstance(head, types.TextContent) and len(head.text) <= 20_000
        assert isinstance(link, types.ResourceLink) and link.uri.startswith("toolhub://results/res_")
        read = await client.read_resource(link.uri)
        whole = read.contents[0]
        assert isinstance(whole, types.TextResourceContents) and whole.text == BIG
        grep = await client.call_tool("hub__read_result", {"handle": link.name, "grep": "status=ERROR", "limit": 200})
        assert isinstance(grep.content[0], types.TextContent)
        assert grep.content[0].text.split("\n")[1] == "8: log line 7 status=ERROR"
        with pytest.raises(MCPError) as missing:
            await client.read_resource("toolhub://results/res_unknown")
        assert missing.value.error.code == -32002
