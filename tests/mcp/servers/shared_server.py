"""A stdio MCP server whose calls overlap on purpose, for routing logs and server requests; logs to stderr only.

Tools: `log` and `ask` (a log message / an elicitation during the call), `log_when_parked` and `ask_when_parked`
(the same, once a `park` call is in flight too), `park` (waits until the other call is done, at most 20 s).
Also one prompt (`greet`) and one resource (`shared://note`), for key-scope tests.
Run: python shared_server.py
"""

from __future__ import annotations

import sys

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

OBJECT = {"type": "object"}
NAMES = ("log", "ask", "log_when_parked", "ask_when_parked", "park")
PARKED = anyio.Event()
DONE = anyio.Event()
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}}


def text(value: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=value)])


async def log(ctx: ServerRequestContext) -> types.CallToolResult:
    send = ServerSession.send_log_message.__wrapped__  # the public one warns (SEP-2577)
    await send(ctx.session, "warning", {"secret": "for the caller only"}, "shared", related_request_id=ctx.request_id)
    return text("logged")


async def ask(ctx: ServerRequestContext) -> types.CallToolResult:
    try:
        result = await ctx.session.elicit_form("The caller's question?", SCHEMA, related_request_id=ctx.request_id)
    except MCPError as exc:
        return text(f"refused: {exc.error.message}")
    return text(f"{result.action}: {result.content}")


async def list_tools(ctx: ServerRequestContext, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[types.Tool(name=name, input_schema=OBJECT) for name in NAMES])


async def call_tool(ctx: ServerRequestContext, params: types.CallToolRequestParams) -> types.CallToolResult:
    if params.name == "park":
        PARKED.set()
        with anyio.move_on_after(20):
            await DONE.wait()
        return text("parked")
    if params.name.endswith("_when_parked"):
        with anyio.move_on_after(20):
            await PARKED.wait()
    try:
        return await (log if params.name.startswith("log") else ask)(ctx)
    finally:
        DONE.set()


async def list_prompts(
    ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
) -> types.ListPromptsResult:
    return types.ListPromptsResult(prompts=[types.Prompt(name="greet")])


async def get_prompt(ctx: ServerRequestContext, params: types.GetPromptRequestParams) -> types.GetPromptResult:
    message = types.PromptMessage(role="user", content=types.TextContent(type="text", text="hello"))
    return types.GetPromptResult(messages=[message])


async def list_resources(
    ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
) -> types.ListResourcesResult:
    return types.ListResourcesResult(resources=[types.Resource(name="note", uri="shared://note")])


async def read_resource(ctx: ServerRequestContext, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
    contents = [types.TextResourceContents(uri=params.uri, mime_type="text/plain", text="a note")]
    return types.ReadResourceResult(contents=contents)


async def main() -> None:
    server = Server(
        "shared-server",
        version="1",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
    )
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    print("shared_server starting", file=sys.stderr)
    anyio.run(main)
