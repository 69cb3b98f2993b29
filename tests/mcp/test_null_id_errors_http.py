"""An upstream error answer whose id is null (a server that could not read a request, or tell its id) fails the one
request waiting on that SSE or plain-JSON streamable HTTP connection at once, as on stdio (test_null_id_errors.py),
instead of leaving it to its `call_timeout`; with several waiting it cannot be matched to one, and each waits for
its own answer. The upstreams are raw servers on loopback: the SDK's own never answer with a null id."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import mcp_types as types
import pytest
from anyio.streams.memory import MemoryObjectSendStream
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from hub.accounts.auth import MASTER
from hub.config import parse_config
from hub.mcp.hub import McpHub
from tests.mcp.conftest import text_of
from tests.support.servers import serve_app

pytestmark = pytest.mark.anyio
Message = dict[str, Any]
TOOLS = [{"name": name, "inputSchema": {"type": "object"}} for name in ("nullid", "slow")]


def answer_to(message: Message) -> tuple[float, Message | None]:
    """The delay before the answer to `message` and that answer (None for a notification); `nullid` answers an
    error with a null id, `slow` answers "done" after `sec` seconds."""
    rid, method, params = message.get("id"), message.get("method"), message.get("params") or {}
    if rid is None:
        return 0, None
    if method == "initialize":
        info = {"protocolVersion": params["protocolVersion"], "capabilities": {"tools": {}},
                "serverInfo": {"name": "nullid", "version": "1"}}  # fmt: skip
        return 0, {"jsonrpc": "2.0", "id": rid, "result": info}
    if method == "tools/list":
        return 0, {"jsonrpc": "2.0", "id": rid, "result": {"tools": TOOLS}}
    arguments = params.get("arguments") or {}
    if method == "tools/call" and params.get("name") == "nullid":
        error = {"code": -32700, "message": arguments.get("message", "Parse error")}
        return 0, {"jsonrpc": "2.0", "id": None, "error": error}
    if method == "tools/call" and params.get("name") == "slow":
        done = {"content": [{"type": "text", "text": "done"}]}
        return float(arguments.get("sec", 1)), {"jsonrpc": "2.0", "id": rid, "result": done}
    return 0, {"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": f"no method {method}"}}


async def plain_json(request: Request) -> Response:
    """Streamable HTTP answering each request with JSON in the POST's answer, no session, no GET stream."""
    if request.method != "POST":
        return Response(status_code=405)
    delay, answer = answer_to(await request.json())
    if answer is None:
        return Response(status_code=202)
    await anyio.sleep(delay)
    return JSONResponse(answer)


class LegacySse:
    """The 2024-11-05 SSE transport: GET /sse names the POST endpoint, and each answer comes as an event."""

    def __init__(self) -> None:
        self.streams: dict[str, MemoryObjectSendStream[Message]] = {}

    async def events(self, request: Request) -> Response:
        session = uuid.uuid4().hex
        send, receive = anyio.create_memory_object_stream[Message](100)
        self.streams[session] = send

        async def lines() -> AsyncIterator[str]:
            with send, receive:
                yield f"event: endpoint\ndata: /messages?session_id={session}\n\n"
                async for message in receive:
                    yield f"event: message\ndata: {json.dumps(message)}\n\n"

        return StreamingResponse(lines(), media_type="text/event-stream")

    async def post(self, request: Request) -> Response:
        stream = self.streams[request.query_params["session_id"]]
        delay, answer = answer_to(await request.json())
        if answer is None:
            return Response(status_code=202)
        reply = answer

        async def send() -> None:  # after the POST was answered, as an SSE server does
            await anyio.sleep(delay)
            await stream.send(reply)

        return Response(status_code=202, background=BackgroundTask(send))

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/sse", self.events), Route("/messages", self.post, methods=["POST"])])


@contextlib.contextmanager
def upstream(kind: str) -> Iterator[dict[str, Any]]:
    """A running upstream of `kind` ("sse" or "http") as a hub's server config, its call_timeout still to add."""
    if kind == "sse":
        with serve_app(LegacySse().app()) as url:
            yield {"url": f"{url}/sse", "transport": "sse"}
    else:
        with serve_app(Starlette(routes=[Route("/mcp", plain_json, methods=["GET", "POST", "DELETE"])])) as url:
            yield {"url": f"{url}/mcp", "transport": "http"}


@contextlib.asynccontextmanager
async def hub_with(server: dict[str, Any]) -> AsyncIterator[McpHub]:
    hub = McpHub(parse_config({"mcp_servers": {"nid": server}}, {}).mcp_servers)
    async with hub.running():
        assert await hub.wait_ready()
        yield hub


async def timed_call(hub: McpHub, name: str, arguments: dict[str, Any]) -> tuple[types.CallToolResult, float]:
    started = time.monotonic()
    with anyio.fail_after(40):
        result = await hub.call_tool(name, arguments, MASTER)
    return result, time.monotonic() - started


@pytest.mark.parametrize("kind", ["sse", "http"])
async def test_a_null_id_error_fails_the_only_request_waiting_at_once(kind: str) -> None:
    with upstream(kind) as server:
        async with hub_with({**server, "call_timeout": 30}) as hub:
            failed, took = await timed_call(hub, "nid__nullid", {"message": "Parse error: cannot read"})
            after, _ = await timed_call(hub, "nid__slow", {"sec": 0})
            status = hub.status()["nid"]
    assert failed.is_error and text_of(failed) == "Tool 'nullid' of MCP server 'nid' failed: Parse error: cannot read"
    assert took < 5  # call_timeout is 30 s
    assert (after.is_error, text_of(after)) == (False, "done")
    assert (status["state"], status["attempts"]) == ("ready", 1)


@pytest.mark.parametrize("kind", ["sse", "http"])
async def test_with_several_requests_waiting_a_null_id_error_is_matched_to_none(kind: str) -> None:
    results: dict[str, tuple[types.CallToolResult, float]] = {}

    async def run(hub: McpHub, label: str, name: str, arguments: dict[str, Any]) -> None:
        results[label] = await timed_call(hub, name, arguments)

    with upstream(kind) as server:
        async with hub_with({**server, "call_timeout": 2}) as hub, anyio.create_task_group() as tg:
            tg.start_soon(run, hub, "slow", "nid__slow", {"sec": 1})
            await anyio.sleep(0.3)  # the slow call is waiting upstream first
            tg.start_soon(run, hub, "nullid", "nid__nullid", {})
    (slow, _), (unmatched, took) = results["slow"], results["nullid"]
    assert text_of(slow) == "done"  # not failed by an error that may not have been its own
    assert unmatched.is_error
    assert took > 1.5  # it waited for its own answer, until call_timeout
