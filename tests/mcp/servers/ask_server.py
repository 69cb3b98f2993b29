"""An MCP server whose tool asks the client for sampling while another client's call is in flight; logs to stderr.

Tools: `ask` (asks the client for sampling and returns the answer), `ask_after_go` (the same, once a `go` call is
in flight), `go` (waits until `ask_after_go` is done, at most 20 s), `roots` (asks the client for its roots),
`log_all` (one log message at each of debug, info, warning and error, as far as the level set allows),
`level` (the last level set by `logging/setLevel`), `touch` (sends `resources/updated` for `note://shared` if a
client subscribed to it). Resources: `note://shared` and the template `note://{id}`, read as "<id> of <NAME>";
subscriptions are recorded. Prompt: `asked` (asks the client for sampling while it is got).
Run: python ask_server.py [NAME] (stdio) or python ask_server.py http PORT (streamable HTTP at /mcp); `http_app()`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from starlette.applications import Starlette
from starlette.routing import Route

OBJECT = {"type": "object"}
NAMES = ("ask", "ask_after_go", "go", "roots", "log_all", "level", "touch")
NOTE = "note://shared"
LEVELS: list[types.LoggingLevel] = ["debug", "info", "warning", "error"]


class State:
    def __init__(self, name: str = "ask") -> None:
        self.name = name
        self.subscribed: set[str] = set()
        self.going = anyio.Event()
        self.asked = anyio.Event()
        self.level: types.LoggingLevel = "debug"


def text(value: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=value)])


async def ask(ctx: ServerRequestContext[Any, Any]) -> str:
    message = types.SamplingMessage(role="user", content=types.TextContent(type="text", text="who are you?"))
    request = types.CreateMessageRequest(params=types.CreateMessageRequestParams(messages=[message], max_tokens=5))
    metadata = ServerMessageMetadata(related_request_id=ctx.request_id)
    try:
        result = await ctx.session.send_request(request, types.CreateMessageResult, metadata=metadata)
    except MCPError as exc:
        return f"refused: {exc.error.message}"
    return result.content.text if isinstance(result.content, types.TextContent) else "?"


async def log_all(ctx: ServerRequestContext[Any, Any], state: State) -> types.CallToolResult:
    send = ServerSession.send_log_message.__wrapped__  # pyright: ignore[reportFunctionMemberAccess]
    for level in LEVELS[LEVELS.index(state.level) :] if state.level in LEVELS else LEVELS:
        await send(ctx.session, level, f"{level} line", "ask", related_request_id=ctx.request_id)
    return text("logged")


def build(state: State) -> Server[Any]:
    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool(name=name, input_schema=OBJECT) for name in NAMES])

    async def call_tool(ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams) -> Any:
        match params.name:
            case "ask":
                return text(await ask(ctx))
            case "ask_after_go":
                with anyio.move_on_after(20):
                    await state.going.wait()
                try:
                    return text(await ask(ctx))
                finally:
                    state.asked.set()
            case "go":
                state.going.set()
                with anyio.move_on_after(20):
                    await state.asked.wait()
                return text("went")
            case "roots":
                try:
                    roots = await ctx.session.send_request(types.ListRootsRequest(), types.ListRootsResult)
                except MCPError as exc:
                    return text(f"refused: {exc.error.message}")
                return text(" ".join(str(root.uri) for root in roots.roots))
            case "log_all":
                return await log_all(ctx, state)
            case "touch":
                if NOTE in state.subscribed:
                    await ctx.session.send_resource_updated(NOTE)
                return text(f"touched {sorted(state.subscribed)}")
            case _:
                return text(state.level)

    async def set_level(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
        state.level = params.level
        return types.EmptyResult()

    async def list_resources(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[types.Resource(name="note", uri=NOTE)])

    async def list_templates(ctx: Any, params: types.PaginatedRequestParams | None) -> Any:
        template = types.ResourceTemplate(name="notes", uri_template="note://{id}")
        return types.ListResourceTemplatesResult(resource_templates=[template, template])  # listed twice on purpose

    async def read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        name = params.uri.removeprefix("note://")
        content = types.TextResourceContents(uri=params.uri, mime_type="text/plain", text=f"{name} of {state.name}")
        return types.ReadResourceResult(contents=[content])

    async def subscribe(ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
        state.subscribed.add(params.uri)
        return types.EmptyResult()

    async def list_prompts(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[types.Prompt(name="asked")])

    async def get_prompt(ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams) -> Any:
        message = types.PromptMessage(role="user", content=types.TextContent(type="text", text=await ask(ctx)))
        return types.GetPromptResult(messages=[message])

    server = Server(
        "ask-server",
        version="1",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_subscribe_resource=subscribe,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
    )
    server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_level)
    return server


def http_app() -> Starlette:
    """The server over stateful streamable HTTP at `/mcp`."""
    manager = StreamableHTTPSessionManager(app=build(State()))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield

    return Starlette(routes=[Route("/mcp", StreamableHTTPASGIApp(manager))], lifespan=lifespan)


async def main() -> None:
    server = build(State(*sys.argv[1:2]))
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    print("ask_server starting", file=sys.stderr)
    if sys.argv[1:2] == ["http"]:
        import uvicorn

        uvicorn.run(http_app(), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
    else:
        anyio.run(main)
