"""The SDK's streamable-HTTP client over `WireTransport` (`providers._wire` under httpx2) against a real upstream on
127.0.0.1: what it did over httpcore2 (each behaviour test runs over both and compares)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.client.session import MessageHandlerFnT
from mcp.client.streamable_http import streamable_http_client
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from hub.mcp.transports import BoundedTransport, MessageTooLarge, _proxied  # pyright: ignore[reportPrivateUsage]
from hub.mcp.wire_http import WireTransport
from tests.mcp.conftest import streamable_app, text_of
from tests.providers.wire_support import Upstream, answer, chunked, keep_answering, read_request, upstream
from tests.support.servers import serve_app

pytestmark = pytest.mark.anyio

TRANSPORTS: dict[str, Callable[[], httpx2.AsyncBaseTransport]] = {
    "httpcore2": httpx2.AsyncHTTPTransport,
    "wire": WireTransport,
}


def upstream_app(methods: list[str], *, json_response: bool = False) -> Starlette:
    """A streamable HTTP MCP server: `echo`, `slow` (sleeps `seconds`), `big` (`n` characters) and `announce`
    (a tools/list_changed notification, on the session's GET stream). Each request's method goes to `methods`."""

    async def list_tools(ctx: ServerRequestContext[Any], params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool(name="echo", input_schema={"type": "object"})])

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        arguments = params.arguments or {}
        if params.name == "slow":
            await anyio.sleep(arguments["seconds"])
        elif params.name == "big":
            return types.CallToolResult(content=[types.TextContent(type="text", text="x" * arguments["n"])])
        elif params.name == "announce":
            await ctx.session.send_tool_list_changed()
        return types.CallToolResult(content=[types.TextContent(type="text", text=str(arguments))])

    server = Server("wire-upstream", on_list_tools=list_tools, on_call_tool=call_tool)
    return streamable_app(server, json_response=json_response, seen=lambda scope: methods.append(scope["method"]))


@contextlib.contextmanager
def served(methods: list[str] | None = None, *, json_response: bool = False) -> Iterator[str]:
    app = upstream_app([] if methods is None else methods, json_response=json_response)
    with serve_app(app, graceful_timeout=1) as base:  # a session's GET stream stays open to the end
        yield f"{base}/mcp"


@contextlib.asynccontextmanager
async def session(
    url: str,
    transport: httpx2.AsyncBaseTransport,
    *,
    read: float = 30.0,
    on_message: MessageHandlerFnT | None = None,
) -> AsyncIterator[ClientSession]:
    async with (
        httpx2.AsyncClient(transport=transport, timeout=httpx2.Timeout(5.0, read=read), follow_redirects=True) as http,
        streamable_http_client(url, http_client=http) as (read_stream, write_stream),
        ClientSession(read_stream, write_stream, message_handler=on_message) as client,
    ):
        await client.initialize()
        yield client


@pytest.mark.parametrize("json_response", [False, True], ids=["event-stream", "json"])
async def test_calls_are_answered_and_the_session_is_deleted_at_close(json_response: bool) -> None:
    methods: list[str] = []
    with served(methods, json_response=json_response) as url:
        with anyio.fail_after(20):
            async with session(url, WireTransport()) as client:
                results = [await client.call_tool("echo", {"n": n}) for n in range(3)]
    assert [text_of(r) for r in results] == [str({"n": n}) for n in range(3)]
    assert methods[-1] == "DELETE"


async def test_the_notification_stream_brings_a_notification() -> None:
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    with served() as url:
        with anyio.fail_after(20):
            async with session(url, WireTransport(), on_message=on_message) as client:
                await client.call_tool("announce", {})
                await changed.wait()


async def _outcome(call: Callable[[], Any]) -> str:
    """What a call came to: its answer's text or the kind of error the SDK raised."""
    try:
        result = await call()
    except MCPError as exc:
        return f"MCPError {exc.error.code}"
    except Exception as exc:
        return type(exc).__name__
    return f"error: {text_of(result)}" if result.is_error else text_of(result)


@pytest.mark.parametrize("name", TRANSPORTS)
async def test_a_read_timeout_ends_the_call_as_over_httpcore(name: str) -> None:
    with served() as url:
        with anyio.fail_after(20):
            async with session(url, TRANSPORTS[name](), read=0.3) as client:
                timed_out = await _outcome(lambda: client.call_tool("slow", {"seconds": 2}))
                after = await _outcome(lambda: client.call_tool("echo", {"n": 1}))
    assert (timed_out, after) == ("MCPError -32000", "{'n': 1}")  # the SDK's error for a failed POST


async def _after_death(transport: httpx2.AsyncBaseTransport) -> tuple[str, list[str]]:
    """A call once the upstream has stopped: its outcome, and the errors the SDK's transport raised on the way out."""
    outcome = "not answered"
    try:
        with contextlib.ExitStack() as stack:
            url = stack.enter_context(served())
            async with session(url, transport) as client:
                await client.call_tool("echo", {})
                stack.close()  # the upstream stops (its port then refuses)
                outcome = await _outcome(lambda: client.call_tool("echo", {"n": 2}))
    except BaseExceptionGroup as group:  # the SDK's task group raises its POST's error as it closes
        return outcome, sorted({type(exc).__name__ for exc in _leaves(group)})
    return outcome, []


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        yield from _leaves(exc) if isinstance(exc, BaseExceptionGroup) else (exc,)


async def test_an_upstream_that_dies_fails_as_over_httpcore() -> None:
    with anyio.fail_after(30):
        outcomes = {name: await _after_death(transport()) for name, transport in TRANSPORTS.items()}
    assert outcomes["wire"] == outcomes["httpcore2"], outcomes
    assert "ConnectError" in outcomes["wire"][1], outcomes


@pytest.mark.parametrize("json_response", [False, True], ids=["event-stream", "json"])
async def test_an_answer_over_the_limit_fails_that_call_only(json_response: bool) -> None:
    with served(json_response=json_response) as url:
        with anyio.fail_after(20):
            async with session(url, BoundedTransport(2_000, WireTransport())) as client:
                big = await _outcome(lambda: client.call_tool("big", {"n": 5_000}))
                after = await _outcome(lambda: client.call_tool("echo", {"n": 3}))
    assert big.startswith("MCPError"), big
    assert after == "{'n': 3}"


async def test_an_over_limit_body_raises_message_too_large() -> None:
    with served() as url:
        async with httpx2.AsyncClient(transport=BoundedTransport(100, WireTransport())) as http:
            body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
            headers = {"accept": "application/json, text/event-stream"}
            with pytest.raises(MessageTooLarge):
                async with http.stream("POST", url, json=body, headers=headers) as response:
                    await response.aread()


# -- the transport's mapping, over a plain app --------------------------------------------------------------------


async def _plain(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers /gzip with a gzip body, /redirect with a 307 to /gzip, anything else with the request's method,
    body and Authorization header."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = dict(scope["headers"])
    if scope["path"] == "/gzip":
        fields = [(b"content-encoding", b"gzip"), (b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": fields})
        await send({"type": "http.response.body", "body": gzip.compress(b"inflated once")})
        return
    if scope["path"] == "/redirect":
        await send({"type": "http.response.start", "status": 307, "headers": [(b"location", b"/gzip")]})
        await send({"type": "http.response.body", "body": b""})
        return
    text = b"%s %s %s" % (scope["method"].encode(), body, headers.get(b"authorization", b"-"))
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": text})


async def test_methods_bodies_a_gzip_answer_a_redirect_and_url_credentials() -> None:
    with serve_app(_plain) as base:
        async with httpx2.AsyncClient(transport=WireTransport(), follow_redirects=True) as http:
            posted = await http.post(f"{base}/echo", content=b"abc")
            streamed = await http.post(f"{base}/echo", content=_chunks(b"a", b"bc"))
            deleted = await http.delete(f"{base}/echo")
            inflated = await http.get(f"{base}/gzip")
            redirected = await http.get(f"{base}/redirect")
            credentials = await http.get(base.replace("//", "//user:pw@") + "/echo")
    assert [posted.text, streamed.text, deleted.text] == ["POST abc -", "POST abc -", "DELETE  -"]
    assert (inflated.text, "content-encoding" in inflated.headers) == ("inflated once", False)
    assert (redirected.text, [r.status_code for r in redirected.history]) == ("inflated once", [307])
    assert credentials.text == "GET  Basic dXNlcjpwdw=="


async def _chunks(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def test_failures_are_the_httpx2_errors_httpcore_raised() -> None:
    with serve_app(_plain) as base:
        port = int(base.rpartition(":")[2])
    async with httpx2.AsyncClient(transport=WireTransport()) as http:
        with pytest.raises(httpx2.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/")  # the server is gone: refused
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    silent = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, _hold)
        async with httpx2.AsyncClient(transport=WireTransport(), timeout=httpx2.Timeout(5.0, read=0.2)) as http:
            with pytest.raises(httpx2.ReadTimeout):
                await http.get(f"http://127.0.0.1:{silent}/")
        tg.cancel_scope.cancel()


async def _hold(stream: anyio.abc.SocketStream) -> None:
    """Reads a request and never answers."""
    async with stream:
        await stream.receive()
        await anyio.sleep_forever()


async def test_a_pooled_connection_its_server_closed_as_the_request_left_is_retried_on_a_new_one() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"first" if served.connections == 1 else b"again"))
        await writer.drain()
        if served.connections == 1:
            await read_request(reader)  # the keep-alive timeout crossed this request on the wire: closed unanswered

    async with upstream(handler) as served:
        async with httpx2.AsyncClient(transport=WireTransport()) as http:
            first = await http.post(served.url, content=b"{}")
            again = await http.post(served.url, content=b"{}")
    assert (first.text, again.text, served.connections) == ("first", "again", 2)


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_an_answer_closed_before_its_end_closes_its_connection(method: str) -> None:
    dropped = anyio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        if served.connections == 1:  # an event stream that goes on: none of it may answer a later request
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"first")[:-5])
            await writer.drain()
            await reader.read()  # until the client closes the connection
            dropped.set()
        else:
            writer.write(answer(b"next"))
            await reader.read()

    async with upstream(handler) as served:
        async with httpx2.AsyncClient(transport=WireTransport()) as http:
            async with http.stream(method, served.url) as response:
                first = await anext(response.aiter_bytes())
            following = await http.request(method, served.url)
            with anyio.fail_after(5):  # a POST's answer is read on for a moment (`Response.release`), a GET's not
                await dropped.wait()
    assert (first, following.text, served.connections) == (b"first", "next", 2)


@pytest.mark.parametrize(
    ("url", "proxies", "proxied"),
    [
        ("http://a.example/sse", {}, False),
        ("http://a.example/sse", {"http": "http://proxy:3128"}, True),
        ("https://a.example/sse", {"http": "http://proxy:3128"}, False),
        ("https://u:pw@a.example:8443/sse", {"all": "http://proxy:3128"}, True),
        ("http://a.example:8080/sse", {"http": "http://proxy:3128", "no": "b.example,a.example"}, False),
    ],
)
def test_a_legacy_sse_upstream_behind_an_environment_proxy_keeps_the_sdk_client(
    url: str, proxies: dict[str, str], proxied: bool
) -> None:
    assert _proxied(url, proxies) is proxied


async def test_a_header_value_beyond_ascii_reaches_httpx2_as_its_bytes() -> None:
    async with upstream(keep_answering(answer(b"{}", "X-Served-By: café"))) as served:
        async with httpx2.AsyncClient(transport=WireTransport()) as http:
            response = await http.get(served.url)
            again = await http.get(served.url)
    assert (b"x-served-by", b"caf\xc3\xa9") in response.headers.raw
    assert (again.status_code, served.connections) == (200, 1)


async def test_each_set_cookie_reaches_the_cookie_jar_and_goes_back() -> None:
    cookies = ("Set-Cookie: AWSALB=r1; Expires=Sat, 12 Dec 2037 10:00:00 GMT; Path=/",
               "Set-Cookie: AWSALBCORS=r1; Expires=Sat, 12 Dec 2037 10:00:00 GMT; Path=/; SameSite=None")  # fmt: skip
    record = Upstream("")
    async with upstream(keep_answering(answer(b"{}", *cookies), record=record)) as served:
        async with httpx2.AsyncClient(transport=WireTransport()) as http:
            first = await http.post(served.url, content=b"{}")
            await http.post(served.url, content=b"{}")
    assert len(first.headers.get_list("set-cookie")) == 2
    assert record.requests[1].field("cookie") == "AWSALB=r1; AWSALBCORS=r1"


async def test_a_cancelled_posts_answer_closes_its_connection_at_once() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"first")[:-5])
        while True:  # the tool runs on: a progress event now and then
            await anyio.sleep(0.02)
            writer.write(chunked(b": ping\n")[:-5])
            await writer.drain()

    transport = WireTransport()
    async with upstream(handler) as served:
        async with httpx2.AsyncClient(transport=transport) as http:
            with anyio.CancelScope() as scope:
                async with http.stream("POST", served.url, content=b"{}") as response:
                    async for _ in response.aiter_bytes():
                        scope.cancel()
            hosts = transport._pool._hosts.values()  # pyright: ignore[reportPrivateUsage]
            busy = [host.busy for host in hosts]
    assert busy == [0]  # not read on for a moment (`Response.release`): the upstream learns of the cancel now
