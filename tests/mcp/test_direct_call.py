"""`tools/call` straight on a stdio upstream's pipes (`hub.mcp.direct_call`): each answer reaches its caller, anything
else the session, and what a call may bring besides its answer still reaches the client it belongs to."""

from __future__ import annotations

import asyncio
import gc
from collections import deque
from typing import Any

import anyio
import mcp_types as types
import orjson
import pytest
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage

from hub.accounts.auth import MASTER
from hub.config import parse_config
from hub.mcp.direct_call import FIRST_ID, call_tool
from hub.mcp.hub import McpHub
from hub.mcp.stdio_client import MESSAGE_TOO_LARGE, Pipes
from tests.mcp.conftest import text_of, tool_server

pytestmark = pytest.mark.anyio
LIMIT = 1000


class _Stdin:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, data: bytes) -> None:
        self.sent.append(data)


class _Stdout:
    def __init__(self, *chunks: bytes) -> None:
        self.chunks = deque(chunks)

    async def receive(self) -> bytes:
        if not self.chunks:
            raise anyio.EndOfStream
        return self.chunks.popleft()


class _Process:
    def __init__(self, *chunks: bytes) -> None:
        self.stdin = _Stdin()
        self.stdout = _Stdout(*chunks)


def line(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message) + b"\n"


async def test_direct_answers_reach_their_futures_and_everything_else_the_session() -> None:
    plain, quoted, failed, huge, unanswered = (FIRST_ID + n for n in range(5))
    sampling = {"jsonrpc": "2.0", "id": 0, "method": "sampling/createMessage", "params": {"messages": [],
                                                                                         "maxTokens": 1}}  # fmt: skip
    process = _Process(
        line({"jsonrpc": "2.0", "id": plain, "result": {"content": []}}),
        line(sampling) + line({"result": {"content": [], "isError": True}, "id": str(quoted), "jsonrpc": "2.0"}),
        line({"jsonrpc": "2.0", "id": failed, "error": {"code": -32602, "message": "Unknown tool"}}),
        line({"jsonrpc": "2.0", "id": 7, "result": {}}),  # the session's own request
        b'{"jsonrpc":"2.0","id":' + str(huge).encode() + b',"result":{"pad":"' + b"x" * LIMIT + b'"}}\n',
    )
    pipes = Pipes(process, "s", LIMIT)
    futures = {rid: pipes.expect(rid) for rid in (plain, quoted, failed, huge, unanswered)}
    session: list[Any] = []
    with anyio.fail_after(5):
        session.append(await pipes.receive())  # the sampling request, read with the next answer
        assert futures[plain].done() and not futures[quoted].done()  # that one settles after it, in wire order
        while True:
            try:
                session.append(await pipes.receive())
            except anyio.EndOfStream:
                break
    assert futures[plain].result() == {"content": []}
    assert futures[quoted].result() == {"content": [], "isError": True}  # a quoted id is the same id, as in the SDK
    errors = {rid: futures[rid].exception() for rid in (failed, huge, unanswered)}
    assert all(isinstance(e, MCPError) for e in errors.values())
    codes = {rid: e.error.code for rid, e in errors.items() if isinstance(e, MCPError)}
    assert codes == {failed: -32602, huge: MESSAGE_TOO_LARGE, unanswered: types.CONNECTION_CLOSED}
    assert [getattr(m.message, "id", None) for m in session if isinstance(m, SessionMessage)] == [0, 7]
    assert not pipes.answers and not pipes.waiting


async def test_an_oversized_answer_naming_its_request_by_a_quoted_id_fails_that_request() -> None:
    huge, other = FIRST_ID + 10, FIRST_ID + 11
    process = _Process(
        b'{"jsonrpc":"2.0","id":"' + str(huge).encode() + b'","result":{"pad":"' + b"x" * LIMIT + b'"}}\n',
        line({"jsonrpc": "2.0", "id": other, "result": {"content": []}}),
    )
    pipes = Pipes(process, "s", LIMIT)
    futures = {rid: pipes.expect(rid) for rid in (huge, other)}
    with anyio.fail_after(5):
        with pytest.raises(anyio.EndOfStream):
            while True:
                await pipes.receive()
    error = futures[huge].exception()
    assert isinstance(error, MCPError) and error.error.code == MESSAGE_TOO_LARGE  # not the stream's end
    assert futures[other].result() == {"content": []}


async def test_a_plain_call_goes_straight_and_one_whose_client_wants_progress_through_the_session() -> None:
    hub = McpHub(parse_config({"mcp_servers": {"tool": tool_server()}}, {}).mcp_servers)
    async with hub.running():
        assert await hub.wait_ready()
        upstream = hub.upstreams["tool"]
        session = upstream.session()
        through_session: list[str] = []
        send_request = session.send_request

        async def noted(request: Any, *args: Any, **kwargs: Any) -> Any:
            through_session.append(request.method)
            return await send_request(request, *args, **kwargs)

        session.send_request = noted  # this hub's session only
        plain = await hub.call_tool("tool__echo", {"text": "plain"}, MASTER)
        assert through_session == []
        progress = Progress()
        with_progress = await hub.call_tool("tool__echo", {"text": "shown"}, MASTER, caller=progress)
    assert text_of(plain) == "echo: plain" and text_of(with_progress) == "echo: shown"
    assert through_session == ["tools/call"]


class _GoneStdin:
    async def send(self, data: bytes) -> None:
        raise anyio.BrokenResourceError


async def test_a_call_whose_write_fails_leaves_no_unretrieved_future_behind() -> None:
    process = _Process()
    process.stdin = _GoneStdin()  # pyright: ignore[reportAttributeAccessIssue]
    pipes = Pipes(process, "s", LIMIT)
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        for _ in range(2):  # the stdin fails under the first; the second finds the pipes closed
            with pytest.raises(MCPError) as raised:
                await call_tool(pipes, "echo", {}, 5, "2025-11-25", "s")
            assert raised.value.error.code == types.CONNECTION_CLOSED
            del raised
        gc.collect()
    finally:
        loop.set_exception_handler(None)
    assert [context.get("message") for context in reported] == []


class Progress:
    """A downstream caller that wants progress (and is asked nothing else)."""

    session = "one"
    wants_progress = True

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        pass

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        pass

    async def sample(self, params: types.CreateMessageRequestParams) -> Any:
        return types.ErrorData(code=types.INVALID_REQUEST, message="no")

    async def elicit(self, params: types.ElicitRequestParams) -> Any:
        return types.ErrorData(code=types.INVALID_REQUEST, message="no")

    async def list_roots(self) -> Any:
        return types.ErrorData(code=types.INVALID_REQUEST, message="no")
