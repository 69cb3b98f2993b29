"""An upstream's JSON-RPC error answer is that call's answer, whatever its code: the shared session stays up.

-32000 is the generic "server error" many servers answer with, and also the code the SDK gives its own waiters when a
connection closes; only the latter, seen by the transport (`hub.mcp.link`), restarts an upstream."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from hub.accounts.auth import MASTER
from hub.config import parse_config
from hub.mcp.errors import UpstreamUnavailable
from hub.mcp.hub import McpHub
from tests.mcp.conftest import script_server, streamable_app, text_of
from tests.mcp.test_direct_call import Progress
from tests.support.servers import serve_app

pytestmark = pytest.mark.anyio
REFUSALS = [
    (-32000, "upstream refused: bad input"),
    (-32000, "Connection closed"),
    (-32600, "Session terminated"),
    (-32001, "upstream refused: bad input"),
]  # -32001 is also the SDK's timeout: no timeout happened here


@contextlib.asynccontextmanager
async def hub_of(servers: dict[str, Any]) -> AsyncIterator[McpHub]:
    hub = McpHub(parse_config({"mcp_servers": servers}, {}).mcp_servers)
    async with hub.running():
        assert await hub.wait_ready()
        yield hub


async def call(hub: McpHub, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
    with anyio.fail_after(10):
        return await hub.call_tool(name, arguments, MASTER)


@pytest.mark.parametrize(("code", "message"), REFUSALS)
async def test_an_error_answer_of_a_stdio_tool_fails_that_call_only(code: int, message: str) -> None:
    async with hub_of({"ans": script_server("answers_server.py")}) as hub:
        pid = text_of(await call(hub, "ans__pid", {}))
        results: dict[str, types.CallToolResult] = {}

        async def other_client() -> None:
            results["slow"] = await call(hub, "ans__slow", {"sec": 0.5})

        async with anyio.create_task_group() as tg:
            tg.start_soon(other_client)
            await anyio.sleep(0.1)
            results["refused"] = await call(hub, "ans__refuse", {"code": code, "message": message})
        after = await call(hub, "ans__pid", {})
        status = hub.status()["ans"]
    assert results["refused"].is_error and text_of(results["refused"]) == f"MCP error {code}: {message}"
    assert text_of(results["slow"]) == "done"
    assert text_of(after) == pid  # the same process: never restarted
    assert (status["state"], status["attempts"]) == ("ready", 1)


@pytest.mark.parametrize(("code", "message"), REFUSALS)
async def test_an_error_answer_on_the_sdk_path_is_raised_as_the_upstreams_error(code: int, message: str) -> None:
    async with hub_of({"ans": script_server("answers_server.py")}) as hub:
        upstream = hub.upstreams["ans"]
        params = types.CallToolRequestParams(name="refuse", arguments={"code": code, "message": message})
        with pytest.raises(MCPError) as raised:
            await upstream.request(types.CallToolRequest(params=params), types.CallToolResult, read_timeout=5)
        assert upstream.healthy and hub.status()["ans"]["attempts"] == 1
    assert not isinstance(raised.value, UpstreamUnavailable)
    assert (raised.value.error.code, raised.value.error.message) == (code, message)


class RefusingUpstream:
    """A streamable HTTP server whose `refuse` tool answers a JSON-RPC error; after `forget()` it answers 404 to every
    session it served before, as a restarted server does."""

    def __init__(self) -> None:
        async def list_tools(ctx: ServerRequestContext[Any], params: Any) -> types.ListToolsResult:
            return types.ListToolsResult(tools=[types.Tool(name="refuse", input_schema={"type": "object"})])

        async def call_tool(
            ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
        ) -> types.CallToolResult:
            args = params.arguments or {}
            raise MCPError(code=int(args["code"]), message=str(args["message"]))

        self.inner = streamable_app(Server("refusing", on_list_tools=list_tools, on_call_tool=call_tool))
        self.sessions: set[str] = set()
        self.forgotten: set[str] = set()

    def forget(self) -> None:
        self.forgotten |= self.sessions - {""}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            session = dict(scope["headers"]).get(b"mcp-session-id", b"").decode()
            if session and session in self.forgotten:
                await Response(status_code=404)(scope, receive, send)
                return
            self.sessions.add(session)
        await self.inner(scope, receive, send)


@pytest.mark.parametrize(("code", "message"), REFUSALS)
async def test_an_error_answer_of_an_http_tool_fails_that_call_only(code: int, message: str) -> None:
    upstream = RefusingUpstream()
    with serve_app(upstream) as url:
        async with hub_of({"web": {"url": f"{url}/mcp", "transport": "http"}}) as hub:
            refused = await call(hub, "web__refuse", {"code": code, "message": message})
            again = await call(hub, "web__refuse", {"code": -32602, "message": "still here"})
            status = hub.status()["web"]
    assert text_of(refused) == f"MCP error {code}: {message}"
    assert text_of(again) == "MCP error -32602: still here"
    assert (status["state"], status["attempts"]) == ("ready", 1)


async def test_an_http_upstream_that_forgot_the_session_is_reconnected_at_once() -> None:
    upstream = RefusingUpstream()
    with serve_app(upstream) as url:
        async with hub_of({"web": {"url": f"{url}/mcp", "transport": "http"}}) as hub:
            back_up = anyio.Event()

            async def changed(server: str, kinds: object) -> None:
                if hub.upstreams[server].healthy and hub.status()[server]["attempts"] == 2:
                    back_up.set()

            hub.on_change(changed)
            upstream.forget()  # as if it restarted: our session id now gets 404
            with pytest.raises(UpstreamUnavailable):
                await call(hub, "web__refuse", {"code": -32602, "message": "x"})
            with anyio.fail_after(10):
                await back_up.wait()
            back = await call(hub, "web__refuse", {"code": -32602, "message": "back"})
    assert text_of(back) == "MCP error -32602: back"


async def test_a_call_that_gets_no_answer_in_time_still_reads_as_timed_out() -> None:
    async with hub_of({"ans": script_server("answers_server.py")}) as hub:
        direct = await hub.call_tool("ans__slow", {"sec": 3}, MASTER, timeout=0.3)
        through_session = await hub.call_tool("ans__slow", {"sec": 3}, MASTER, timeout=0.3, caller=Progress())
    for result in (direct, through_session):
        assert result.is_error and text_of(result) == "Tool 'slow' of MCP server 'ans' timed out after 0.3 s."


@pytest.mark.parametrize(
    ("status", "body", "media_type"),
    [(401, "go away", "text/plain"), (403, "go away", "text/plain"),
     (401, '{"error": "invalid_token", "error_description": "expired"}', "application/json")],
)  # fmt: skip
async def test_an_http_upstream_refusing_the_hubs_credentials_is_reported_by_its_status(
    status: int, body: str, media_type: str
) -> None:
    async def go_away(request: Request) -> Response:
        return Response(body, status_code=status, media_type=media_type)

    with serve_app(Starlette(routes=[Route("/mcp", go_away, methods=["GET", "POST", "DELETE"])])) as url:
        hub = McpHub(parse_config({"mcp_servers": {"web": {"url": f"{url}/mcp", "transport": "http"}}}, {}).mcp_servers)
        async with hub.running():
            with anyio.fail_after(10):
                await hub.upstreams["web"].first_attempt.wait()
            detail = hub.status()["web"]["detail"]
    phrase = {401: "401 Unauthorized", 403: "403 Forbidden"}[status]
    assert f"upstream answered {phrase} (check the server's headers/credentials)" in detail


async def test_an_http_upstream_refusing_with_a_json_rpc_error_has_its_message_passed_on() -> None:
    async def refuse(request: Request) -> Response:
        error = {"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": "token expired: renew it"}}
        return JSONResponse(error, status_code=401)

    with serve_app(Starlette(routes=[Route("/mcp", refuse, methods=["GET", "POST", "DELETE"])])) as url:
        hub = McpHub(parse_config({"mcp_servers": {"web": {"url": f"{url}/mcp", "transport": "http"}}}, {}).mcp_servers)
        async with hub.running():
            with anyio.fail_after(10):
                await hub.upstreams["web"].first_attempt.wait()
            detail = hub.status()["web"]["detail"]
    assert "token expired: renew it" in detail
