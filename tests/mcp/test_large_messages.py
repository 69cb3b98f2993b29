"""Large upstream messages: read in linear time, bounded by `max_message_bytes`, failing only the request at fault."""

from __future__ import annotations

from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp.server import Server, ServerRequestContext
from mcp.shared.message import SessionMessage
from starlette.applications import Starlette

from hub.mcp.lines import LineSplitter, Oversized
from hub.mcp.stdio_client import Pipes
from tests.mcp.conftest import MASTER_KEY, hub_app, mcp_client, running, script_server, streamable_app, text_of
from tests.support.servers import serve_app

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
LIMIT = 64 * 1024


def test_lines_split_across_chunks_come_out_whole() -> None:
    splitter = LineSplitter(100)
    assert splitter.feed(b'{"a":') == []
    assert splitter.feed(b'1}\n{"b"') == [b'{"a":1}']
    assert splitter.feed(b":2}\n\n") == [b'{"b":2}', b""]


def test_a_line_over_the_limit_is_discarded_as_it_streams_and_the_next_line_is_intact() -> None:
    splitter = LineSplitter(100)
    head = b'{"jsonrpc":"2.0","id":7,"result":{"text":"'
    assert splitter.feed(head + b"x" * 80) == []
    assert splitter.feed(b"x" * 1000) == []
    [skipped, after] = splitter.feed(b'x"}}\n{"jsonrpc":"2.0","id":8,"result":{}}\n')
    assert isinstance(skipped, Oversized)
    assert (skipped.size, skipped.response_id()) == (len(head) + 1080 + 4, 7)
    assert after == b'{"jsonrpc":"2.0","id":8,"result":{}}'


@pytest.mark.parametrize(
    ("message", "expected"),
    [(b'{"jsonrpc":"2.0","id":7,"result":{"t":"', 7), (b'{"jsonrpc": "2.0", "id": "a-1", "error": {"m":"', "a-1"),
     (b'{"result":{"t":"', 9), (b'{"jsonrpc":"2.0","id":3,"method":"sampling/createMessage","params":{"', None),
     (b'{"jsonrpc":"2.0","method":"notifications/message","params":{"', None),
     (b'{"jsonrpc":"2.0","id":"\\x","result":{"t":"', None), (b'{"jsonrpc":"2.0","id":"\\udc00","error":{"m":"', None)],
)  # fmt: skip
def test_the_answered_request_is_found_at_the_start_or_the_end_of_an_oversized_message(
    message: bytes, expected: object
) -> None:
    splitter = LineSplitter(20)
    [skipped] = splitter.feed(message + b"x" * 50 + b'"}},"jsonrpc":"2.0","id":9}\n')
    assert isinstance(skipped, Oversized)
    assert skipped.response_id() == expected


async def test_an_oversized_result_fails_that_call_with_a_clear_error_and_the_session_stays_usable() -> None:
    app = hub_app({"big": script_server("big_server.py", max_message_bytes=LIMIT)}, extra=[])
    with running(app) as url:
        async with mcp_client(f"{url}/mcp") as client:
            small = await client.call_tool("big__big", {"size": LIMIT // 2})
            huge = await client.call_tool("big__big", {"size": 4 * LIMIT})
            huge_id_last = await client.call_tool("big__big", {"size": 4 * LIMIT, "id_last": True})
            after = await client.call_tool("big__echo", {"text": "still here"})
        rest = httpx2.post(
            f"{url}/mcp/tools/call", headers=AUTH, json={"name": "big__big", "arguments": {"size": 10**6}}
        )
    assert len(text_of(small)) == LIMIT // 2 and not small.is_error
    for result in (huge, huge_id_last):
        assert result.is_error
        assert f"exceeded max_message_bytes ({LIMIT} bytes)" in text_of(result)
    assert text_of(after) == "echo: still here"
    assert rest.status_code == 200 and rest.json()["isError"] is True
    assert f"exceeded max_message_bytes ({LIMIT} bytes)" in rest.json()["content"][0]["text"]


async def test_a_line_without_newline_fails_the_waiting_call_instead_of_swallowing_it() -> None:
    app = hub_app({"big": script_server("big_server.py", max_message_bytes=LIMIT, call_timeout=30)}, extra=[])
    with running(app) as url:
        async with mcp_client(f"{url}/mcp") as client:
            junk = await client.call_tool("big__junk", {"size": 2 * LIMIT})
            after = await client.call_tool("big__echo", {"text": "next"})
    assert junk.is_error and "exceeded max_message_bytes" in text_of(junk)
    assert text_of(after) == "echo: next"


def big_http_upstream(json_response: bool) -> Starlette:
    """A streamable HTTP MCP server (JSON answers or event streams) whose `big` tool answers `size` bytes."""

    async def list_tools(ctx: ServerRequestContext[Any], params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool(name="big", input_schema={"type": "object"})])

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        size = int((params.arguments or {})["size"])
        return types.CallToolResult(content=[types.TextContent(type="text", text="x" * size)])

    server = Server("big-http", on_list_tools=list_tools, on_call_tool=call_tool)
    return streamable_app(server, json_response=json_response)


@pytest.mark.parametrize("json_response", [True, False], ids=["json", "event-stream"])
async def test_an_oversized_answer_over_streamable_http_fails_that_call_only(json_response: bool) -> None:
    with serve_app(big_http_upstream(json_response)) as upstream:
        app = hub_app({"web": {"url": f"{upstream}/mcp", "max_message_bytes": LIMIT}}, extra=[])
        with running(app) as url:
            async with mcp_client(f"{url}/mcp/web") as client:
                small = await client.call_tool("big", {"size": LIMIT // 2})
                huge = await client.call_tool("big", {"size": 4 * LIMIT})
                after = await client.call_tool("big", {"size": 10})
    assert len(text_of(small)) == LIMIT // 2
    assert huge.is_error and str(LIMIT) in text_of(huge)
    assert text_of(after) == "x" * 10


class _Pipe:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, data: bytes) -> None:
        self.sent.append(data)


class _Process:
    def __init__(self) -> None:
        self.stdin = _Pipe()


async def test_a_cancelled_request_is_no_longer_waited_for() -> None:
    process = _Process()
    pipes = Pipes(process, "s", LIMIT)
    for rid in (1, 2):
        await pipes.send(SessionMessage(types.JSONRPCRequest(jsonrpc="2.0", id=rid, method="tools/call",
                                                             params={"name": "x"})))  # fmt: skip
    cancel = {"requestId": 1, "reason": "timed out"}
    await pipes.send(SessionMessage(types.JSONRPCNotification(jsonrpc="2.0", method="notifications/cancelled",
                                                              params=cancel)))  # fmt: skip
    waiting = set(pipes.waiting)
    assert waiting == {2}  # so an oversized answer without an id is still pinned on the one request left
    assert len(process.stdin.sent) == 3
