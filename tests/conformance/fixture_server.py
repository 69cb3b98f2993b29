"""MCP conformance fixture server: every fixture `@modelcontextprotocol/conformance` 0.1.16 server scenarios call.

A low-level mcp 2.x `Server`; the static content is in `fixture_data.py`. One extra tool, `trigger_resource_update`,
sends `notifications/resources/updated` to a connection subscribed to the URI (pass-through tests). Run it as
    python tests/conformance/fixture_server.py --port P     # streamable HTTP at /mcp (stateful, SSE responses)
    python tests/conformance/fixture_server.py --fd N       # the same on an inherited, bound socket
    python tests/conformance/fixture_server.py --stdio      # stdio, e.g. as a hub upstream
It logs to stderr only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import warnings
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `tests.conformance` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import anyio
import mcp_types as types
from mcp import MCPDeprecationWarning, MCPError
from mcp.server import NotificationOptions, Server, ServerRequestContext
from starlette.applications import Starlette
from starlette.requests import Request

from tests.conformance import fixture_data as data

LOG_LEVELS = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]

# --- per-connection state -----------------------------------------------------------------------------------------


class SessionState:
    """What one client connection set: its minimum log level and its resource subscriptions."""

    def __init__(self) -> None:
        self.log_level: str | None = None
        self.subscriptions: set[str] = set()


_STATES: OrderedDict[str, SessionState] = OrderedDict()
MAX_SESSIONS = 1000


def state_of(ctx: ServerRequestContext) -> SessionState:
    """The state of the connection `ctx` arrived on: its Mcp-Session-Id over HTTP; stdio has one connection."""
    request = ctx.request
    key = request.headers.get("mcp-session-id", "") if isinstance(request, Request) else "stdio"
    state = _STATES.pop(key, None) or SessionState()
    _STATES[key] = state  # most recently used last; the oldest sessions are forgotten first
    while len(_STATES) > MAX_SESSIONS:
        _STATES.popitem(last=False)
    return state


async def send_log(ctx: ServerRequestContext, message: str, level: str = "info") -> None:
    """Send a log notification tied to the current request, unless the connection's level filters it out."""
    threshold = state_of(ctx).log_level
    if threshold is None or LOG_LEVELS.index(level) >= LOG_LEVELS.index(threshold):
        await ctx.session.send_log_message(level, message, logger="conformance_fixture",  # type: ignore[arg-type]
                                           related_request_id=ctx.request_id)  # fmt: skip


# --- tools --------------------------------------------------------------------------------------------------------

ToolFn = Callable[[ServerRequestContext, dict[str, Any]], Awaitable[types.CallToolResult]]


def _result(message: str, *, is_error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[data.text(message)], is_error=is_error)


def _static(*content: types.ContentBlock, is_error: bool = False) -> ToolFn:
    async def call(ctx: ServerRequestContext, args: dict[str, Any]) -> types.CallToolResult:
        return types.CallToolResult(content=list(content), is_error=is_error)

    return call


async def _with_logging(ctx: ServerRequestContext, args: dict[str, Any]) -> types.CallToolResult:
    await send_log(ctx, "Tool execution started")
    await anyio.sleep(0.05)
    await send_log(ctx, "Tool processing data")
    await anyio.sleep(0.05)
    await send_log(ctx, "Tool execution completed")
    return _result("Tool with logging executed successfully")


async def _with_progress(ctx: ServerRequestContext, args: dict[str, Any]) -> types.CallToolResult:
    for step, progress in enumerate((0, 50, 100)):
        if step:
            await anyio.sleep(0.05)
        await ctx.session.report_progress(progress, 100, f"Completed step {step + 1} of 3")
    return _result("Tool with progress executed successfully")


async def _sampling(ctx: ServerRequestContext, args: dict[str, Any]) -> types.CallToolResult:
    if not ctx.session.check_client_capability(types.ClientCapabilities(sampling=types.SamplingCapability())):
        return _result("Client does not support sampling", is_error=True)
    message = types.SamplingMessage(role="user", content=data.text(str(args.get("prompt", ""))))
    result = await ctx.session.create_message([message], max_tokens=100, related_request_id=ctx.request_id)
    blocks = result.content if isinstance(result.content, list) else [result.content]
    return _result("LLM response: " + " ".join(b.text for b in blocks if isinstance(b, types.TextContent)))


def _elicitation_tool(message: str | None, schema: dict[str, Any], prefix: str) -> ToolFn:
    async def call(ctx: ServerRequestContext, args: dict[str, Any]) -> types.CallToolResult:
        capability = types.ClientCapabilities(elicitation=types.ElicitationCapability())
        if not ctx.session.check_client_capability(capability):
            return _result("Client does not support elicitation", is_error=True)
        prompt = message if message is not None else str(args.get("message", ""))
        result = await ctx.session.elicit_form(prompt, schema, related_request_id=ctx.request_id)
        return _result(f"{prefix}action={result.action}, content={json.dumps(result.content or {})}")

    return call


async def _reconnection(ctx: ServerRequestContext, args: dict[str, Any]) -> types.CallToolResult:
    if ctx.close_sse_stream is not None:  # SEP-1699: the client resumes with Last-Event-ID and gets the result
        await ctx.close_sse_stream()
        await anyio.sleep(0.1)
    return _result("Reconnection test completed successfully")


async def _update_resource(ctx: ServerRequestContext, args: dict[str, Any]) -> types.CallToolResult:
    uri = str(args.get("uri", "test://watched-resource"))
    if uri not in state_of(ctx).subscriptions:
        return _result(f"Not subscribed to {uri}: no notification sent")
    await ctx.session.send_resource_updated(uri)
    return _result(f"Sent notifications/resources/updated for {uri}")


def _tool(name: str, description: str, schema: dict[str, Any] | None = None) -> types.Tool:
    return types.Tool(name=name, description=description, input_schema=schema or data.NO_ARGS)


def _string_args(*names: str) -> dict[str, Any]:
    return {"type": "object", "properties": {n: {"type": "string"} for n in names}, "required": list(names)}


TOOLS: dict[str, tuple[types.Tool, ToolFn]] = {
    t.name: (t, fn)
    for t, fn in [
        (_tool("test_simple_text", "Returns simple text content"),
         _static(data.text("This is a simple text response for testing."))),
        (_tool("test_image_content", "Returns image content"), _static(data.image())),
        (_tool("test_audio_content", "Returns audio content"), _static(data.audio())),
        (_tool("test_embedded_resource", "Returns an embedded resource"),
         _static(data.embedded("test://embedded-resource", "text/plain", "This is an embedded resource content."))),
        (_tool("test_multiple_content_types", "Returns text, image and resource content"),
         _static(data.text("Multiple content types test:"), data.image(),
                 data.embedded("test://mixed-content-resource", "application/json", '{"test":"data","value":123}'))),
        (_tool("test_tool_with_logging", "Sends three log notifications while it runs"), _with_logging),
        (_tool("test_tool_with_progress", "Reports progress 0, 50 and 100 of 100"), _with_progress),
        (_tool("test_error_handling", "Always returns an error result"),
         _static(data.text("This tool intentionally returns an error for testing"), is_error=True)),
        (_tool("test_sampling", "Asks the client's LLM to answer a prompt", _string_args("prompt")), _sampling),
        (_tool("test_elicitation", "Asks the user for a username and an email", _string_args("message")),
         _elicitation_tool(None, data.USERNAME_EMAIL, "User response: ")),
        (_tool("test_elicitation_sep1034_defaults", "Elicitation with defaults for every primitive type"),
         _elicitation_tool("Please review and update the form fields with defaults", data.SEP1034_SCHEMA,
                           "Elicitation completed: ")),
        (_tool("test_elicitation_sep1330_enums", "Elicitation with every enum schema variant"),
         _elicitation_tool("Please select options from the enum fields", data.SEP1330_SCHEMA,
                           "Elicitation completed: ")),
        (_tool("test_reconnection", "Closes the SSE stream mid-call to test client reconnection"), _reconnection),
        (_tool("trigger_resource_update", "Not a conformance fixture: notifies this connection that a resource it "
               "subscribed to changed", _string_args("uri")), _update_resource),
        (_tool("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features", data.JSON_SCHEMA_2020_12),
         _static(data.text("JSON Schema 2020-12 tool called"))),
    ]
}  # fmt: skip


async def list_tools(ctx: ServerRequestContext, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    """Every fixture tool, in one page."""
    return types.ListToolsResult(tools=[tool for tool, _ in TOOLS.values()])


async def call_tool(ctx: ServerRequestContext, params: types.CallToolRequestParams) -> types.CallToolResult:
    """Run one fixture tool; an unknown name is a protocol error (-32602)."""
    entry = TOOLS.get(params.name)
    if entry is None:
        raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {params.name}")
    return await entry[1](ctx, params.arguments or {})


# --- resources, prompts, completion, logging ----------------------------------------------------------------------


async def list_resources(
    ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
) -> types.ListResourcesResult:
    """The direct resources (the template is listed separately)."""
    return types.ListResourcesResult(resources=data.RESOURCES)


async def list_templates(
    ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
) -> types.ListResourceTemplatesResult:
    """The one resource template."""
    return types.ListResourceTemplatesResult(resource_templates=[data.TEMPLATE])


async def read_resource(ctx: ServerRequestContext, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
    """A static resource or a template instance; -32002 for anything else."""
    return types.ReadResourceResult(contents=[data.resource_contents(str(params.uri))])


async def subscribe(ctx: ServerRequestContext, params: types.SubscribeRequestParams) -> types.EmptyResult:
    """Remember the subscription for this connection."""
    state_of(ctx).subscriptions.add(str(params.uri))
    return types.EmptyResult()


async def unsubscribe(ctx: ServerRequestContext, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
    """Forget the subscription for this connection."""
    state_of(ctx).subscriptions.discard(str(params.uri))
    return types.EmptyResult()


async def list_prompts(
    ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
) -> types.ListPromptsResult:
    """The four fixture prompts."""
    return types.ListPromptsResult(prompts=data.PROMPTS)


async def get_prompt(ctx: ServerRequestContext, params: types.GetPromptRequestParams) -> types.GetPromptResult:
    """Render one fixture prompt; an unknown name is -32602."""
    return types.GetPromptResult(messages=data.prompt_messages(params.name, params.arguments or {}))


async def complete(ctx: ServerRequestContext, params: types.CompleteRequestParams) -> types.CompleteResult:
    """Prefix completion for test_prompt_with_arguments; empty for anything else."""
    values: list[str] = []
    if isinstance(params.ref, types.PromptReference) and params.ref.name == "test_prompt_with_arguments":
        values = [v for v in data.COMPLETIONS.get(params.argument.name, []) if v.startswith(params.argument.value)]
    return types.CompleteResult(completion=types.Completion(values=values, total=len(values), has_more=False))


async def set_level(ctx: ServerRequestContext, params: types.SetLevelRequestParams) -> types.EmptyResult:
    """Set this connection's minimum log level."""
    state_of(ctx).log_level = params.level
    return types.EmptyResult()


# --- server and transports ----------------------------------------------------------------------------------------


class FixtureServer(Server):
    """Advertises list_changed for tools, resources and prompts on every transport."""

    def create_initialization_options(self, notification_options=None, *args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        options = notification_options or NotificationOptions(tools_changed=True, resources_changed=True,
                                                              prompts_changed=True)  # fmt: skip
        return super().create_initialization_options(options, *args, **kwargs)


def build_server() -> Server:
    """The fixture server with every handler registered."""
    return FixtureServer(
        "toolhub-conformance-fixture", version="1.0.0",
        on_list_tools=list_tools, on_call_tool=call_tool,
        on_list_resources=list_resources, on_list_resource_templates=list_templates, on_read_resource=read_resource,
        on_subscribe_resource=subscribe, on_unsubscribe_resource=unsubscribe,
        on_list_prompts=list_prompts, on_get_prompt=get_prompt, on_completion=complete, on_set_logging_level=set_level,
    )  # fmt: skip


def build_http_app(server: Server) -> Starlette:
    """A Starlette app serving `server` at /mcp: stateful, SSE responses, resumable, Host/Origin checked."""
    from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.routing import Route

    from tests.conformance.event_store import MemoryEventStore

    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )
    manager = StreamableHTTPSessionManager(app=server, event_store=MemoryEventStore(), security_settings=security)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield

    return Starlette(routes=[Route("/mcp", endpoint=StreamableHTTPASGIApp(manager))], lifespan=lifespan)


async def serve_stdio(server: Server) -> None:
    """Serve `server` on stdin/stdout until the client closes stdin."""
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve over HTTP or stdio."""
    parser = argparse.ArgumentParser(description="MCP conformance fixture server")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--port", type=int, help="serve streamable HTTP at http://HOST:PORT/mcp")
    mode.add_argument("--fd", type=int, help="serve streamable HTTP on this inherited, bound socket")
    mode.add_argument("--stdio", action="store_true", help="serve on stdin/stdout")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="fixture: %(levelname)s %(name)s %(message)s")
    warnings.filterwarnings("ignore", category=MCPDeprecationWarning)  # logging/sampling are deprecated in 2026-07-28
    server = build_server()
    if args.stdio:
        anyio.run(serve_stdio, server)
        return
    import socket

    import uvicorn

    http = uvicorn.Server(
        uvicorn.Config(build_http_app(server), host=args.host, port=args.port or 0, log_level="warning")
    )
    http.run(sockets=None if args.fd is None else [socket.socket(fileno=args.fd)])


if __name__ == "__main__":
    main()
