"""A stdio MCP server for the hub's fault and pass-through tests; logs to stderr only.

Tools: `echo`, `pid` (this process id), `crash` (exits at once), `fail` (an `isError` result), `slow` (reports
progress, then waits until cancelled), `was_cancelled` (waits up to 10 s for `slow` to be cancelled; each answer
resets it), `log` (sends a log message during the call), `add_tool` (registers a tool, sends
`notifications/tools/list_changed`).
Run: python tool_server.py [any marker words]
"""

from __future__ import annotations

import os
import sys
from typing import Any

import anyio
import mcp_types as types
from mcp.server import NotificationOptions, Server, ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.stdio import stdio_server

OBJECT = {"type": "object", "properties": {"text": {"type": "string"}}}
TOOLS: dict[str, types.Tool] = {
    name: types.Tool(name=name, description=f"the {name} tool", input_schema=OBJECT)
    for name in ("echo", "pid", "crash", "fail", "slow", "was_cancelled", "log", "add_tool")
}
CANCELLED = anyio.Event()


def _take_cancelled() -> bool:
    """Whether `slow` was cancelled since the last question (each answer resets it)."""
    global CANCELLED
    seen = CANCELLED.is_set()
    if seen:
        CANCELLED = anyio.Event()
    return seen


def text(value: Any) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=str(value))])


async def list_tools(ctx: ServerRequestContext, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    return types.ListToolsResult(tools=list(TOOLS.values()))


async def call_tool(ctx: ServerRequestContext, params: types.CallToolRequestParams) -> types.CallToolResult:
    args = params.arguments or {}
    match params.name:
        case "echo":
            return text(f"echo: {args.get('text', '')}")
        case "pid":
            return text(os.getpid())
        case "crash":
            os._exit(3)
        case "fail":
            return types.CallToolResult(content=[types.TextContent(type="text", text="it failed")], is_error=True)
        case "slow":
            try:
                await ctx.session.report_progress(1, 2, "started")
                await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                CANCELLED.set()
                raise
        case "was_cancelled":
            with anyio.move_on_after(10):
                await CANCELLED.wait()
            return text(_take_cancelled())
        case "log":
            send = ServerSession.send_log_message.__wrapped__  # pyright: ignore[reportFunctionMemberAccess]
            data = {"said": args.get("text")}
            await send(ctx.session, "warning", data, "tool_server", related_request_id=ctx.request_id)
            return text("logged")
        case "add_tool":
            name = str(args.get("text") or "extra")
            TOOLS[name] = types.Tool(name=name, description="added at run time", input_schema=OBJECT)
            await ctx.session.send_tool_list_changed()
            return text(f"added {name}")
    return types.CallToolResult(content=[types.TextContent(type="text", text="unknown tool")], is_error=True)


async def set_level(ctx: ServerRequestContext, params: types.SetLevelRequestParams) -> types.EmptyResult:
    return types.EmptyResult()


async def main() -> None:
    server = Server("tool-server", version="1", on_list_tools=list_tools, on_call_tool=call_tool)
    server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_level)  # it logs: it says so
    options = server.create_initialization_options(NotificationOptions(tools_changed=True))
    async with stdio_server() as (read, write):
        await server.run(read, write, options)


if __name__ == "__main__":
    print("tool_server starting", file=sys.stderr)
    anyio.run(main)
