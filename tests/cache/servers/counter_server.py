"""A stdio MCP server whose tools answer a counter that grows on every call (and the server's process id), so a cached
answer is visible, and so is the process that made it.

`read` is read-only and closed-world, `read_open` read-only but open-world, `read_unsaid` read-only without an
`openWorldHint` (open, by the spec's default), `write` has no annotations, `read_fail` is read-only, closed-world and
always fails.
"""

from __future__ import annotations

import itertools
import json
import os

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server

OBJECT = {"type": "object", "properties": {"x": {"type": "integer"}}}
READ_ONLY = types.ToolAnnotations(read_only_hint=True, open_world_hint=False)
TOOLS = [
    types.Tool(name="read", input_schema=OBJECT, annotations=READ_ONLY),
    types.Tool(name="read_open", input_schema=OBJECT,
               annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=True)),
    types.Tool(name="read_unsaid", input_schema=OBJECT, annotations=types.ToolAnnotations(read_only_hint=True)),
    types.Tool(name="write", input_schema=OBJECT),
    types.Tool(name="read_fail", input_schema=OBJECT, annotations=READ_ONLY),
]  # fmt: skip
COUNTER = itertools.count(1)


async def list_tools(ctx: ServerRequestContext, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    return types.ListToolsResult(tools=TOOLS)


async def call_tool(ctx: ServerRequestContext, params: types.CallToolRequestParams) -> types.CallToolResult:
    text = json.dumps({"n": next(COUNTER), "pid": os.getpid(), "args": params.arguments or {}})
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], is_error=params.name == "read_fail"
    )


async def main() -> None:
    server = Server("counter", version="1", on_list_tools=list_tools, on_call_tool=call_tool)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
