"""The stdin/stdout wire of `toolhub stdio`, read and written without threads so that a signal or a cancel ends it.

The SDK's `stdio_server` reads stdin in a worker thread that no cancel can stop: while the client keeps stdin open,
SIGINT and SIGTERM could not end the process, and interpreter exit waited for the thread. Here both descriptors are
non-blocking and awaited with `anyio.wait_readable` / `wait_writable`. As in the SDK, fd 0 and 1 are pointed at
/dev/null and stderr while serving (a stray `print` or a child cannot corrupt the wire) and restored on exit, and so is
each descriptor's blocking mode (a terminal's is shared with the shell).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import anyio
import anyio.lowlevel
import mcp_types as types
import orjson
from mcp.shared._context_streams import (  # the streams `Server.run` expects (they carry each sender's context)
    ContextReceiveStream,
    ContextSendStream,
    create_context_streams,  # pyright: ignore[reportPrivateImportUsage]
)
from mcp.shared.message import SessionMessage

from hub.limits import MAX_JSON_DEPTH, json_too_deep
from hub.mcp.lines import LineSplitter, Oversized, read_id

logger = logging.getLogger("toolhub.mcp")

MAX_LINE_BYTES = 256 * 1024 * 1024
"""A client message longer than this is discarded (and answered with an error, `refusal`) instead of buffered."""
_CHUNK = 65536
EOF_GRACE = 0.3
"""Seconds the requests still unanswered when stdin ends get to be answered (`toolhub stdio < requests.jsonl` ends
its input at once; a client that closes stdin to stop us waits 2 s, of which stopping the upstreams takes up to 1.5)."""
FLUSH_WAIT = 0.5
"""Seconds the answers already accepted get to reach stdout once serving ends (a client that stopped reading
would otherwise hold the exit)."""

Incoming = SessionMessage | Exception
_REQUEST_ID = re.compile(
    rb'^\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*(-?\d{1,18}|"(?:[^"\\]|\\.){0,200}")\s*,'
)
"""The id at the start of an oversized request line, as clients write it."""


class _Wire:
    """A private duplicate of a standard descriptor, with fd itself pointed elsewhere until `restore`."""

    def __init__(self, fd: int, diversion: int) -> None:
        self.fd = fd
        self.private = os.dup(fd)
        self.was_blocking = os.get_blocking(self.private)
        self.polls = _pollable(self.private)
        os.set_inheritable(self.private, False)
        os.dup2(diversion, fd)
        if self.polls:
            os.set_blocking(self.private, False)

    def restore(self) -> None:
        with contextlib.suppress(OSError):
            anyio.notify_closing(self.private)
        with contextlib.suppress(OSError):
            os.set_blocking(self.private, self.was_blocking)
            os.dup2(self.private, self.fd)
        with contextlib.suppress(OSError):
            os.close(self.private)


def _pollable(fd: int) -> bool:
    """Regular files (`toolhub stdio < requests.jsonl`) cannot be polled; they never block either."""
    return not stat.S_ISREG(os.fstat(fd).st_mode)


async def read_chunk(wire: _Wire) -> bytes:
    """The next bytes of the wire; b"" at end of file."""
    while True:
        try:
            return os.read(wire.private, _CHUNK)
        except BlockingIOError:
            await anyio.wait_readable(wire.private)


async def write_all(wire: _Wire, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(wire.private, view) :]
        except BlockingIOError:
            await anyio.wait_writable(wire.private)


class Unanswered:
    """Ids of the client's requests that have no answer yet."""

    def __init__(self) -> None:
        self.ids: set[types.RequestId | None] = set()
        self._none = anyio.Event()
        self._none.set()

    def read(self, message: types.JSONRPCMessage) -> None:
        if isinstance(message, types.JSONRPCRequest):
            if not self.ids:
                self._none = anyio.Event()
            self.ids.add(message.id)
        elif isinstance(message, types.JSONRPCNotification) and message.method == "notifications/cancelled":
            self._answered((message.params or {}).get("requestId", ""))  # a cancelled request gets no answer

    def written(self, message: types.JSONRPCMessage) -> None:
        if isinstance(message, types.JSONRPCResponse | types.JSONRPCError):
            self._answered(message.id)

    def _answered(self, request_id: types.RequestId | None) -> None:
        self.ids.discard(request_id)
        if not self.ids:
            self._none.set()

    async def wait(self, limit: float) -> None:
        with anyio.move_on_after(limit):
            await self._none.wait()


class _Inbox:
    """Where the lines read go: the session's read stream, and a writer for the answers to lines it cannot take."""

    def __init__(self, send: ContextSendStream[Incoming], replies: ContextSendStream[SessionMessage]) -> None:
        self.send = send
        self.replies = replies

    async def deliver(self, line: bytes | Oversized, unanswered: Unanswered) -> None:
        message = _parsed(line)
        if message is not None:
            unanswered.read(message)
            await self.send.send(SessionMessage(message))
        elif isinstance(line, Oversized) or line.strip():  # the SDK's session only logs it: the client would wait
            await self._refuse(line)

    async def _refuse(self, line: bytes | Oversized) -> None:
        error = refusal(line)
        said = error.error.message if error else "not answered (it looks like a notification or a response)"
        logger.warning("a line from the client is no JSON-RPC message: %s", said)
        if error is not None:
            await self.replies.send(SessionMessage(error))


def _parsed(line: bytes | Oversized) -> types.JSONRPCMessage | None:
    """The message on `line`; None for none, or for a request whose id is no string or number (the SDK's models take
    it as a notification, dropping the id, and the client would wait for an answer)."""
    if isinstance(line, Oversized) or not line.strip():
        return None
    with contextlib.suppress(ValueError):
        message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        if isinstance(message, types.JSONRPCNotification) and b'"id"' in line and "id" in orjson.loads(line):
            return None
        return message
    return None


def refusal(line: bytes | Oversized) -> types.JSONRPCError | None:
    """The answer to a line that is no JSON-RPC message (JSON-RPC 2.0, section 5.1): -32700 with a null id for what is
    no JSON; for the rest -32600, or -32602 for a request nested deeper than the SDK's parser reads, with the request's
    id when it has one. None for what looks like a notification or a response: those are never answered."""
    if isinstance(line, Oversized):
        if line.may_be_response:  # no "method" in its first KiB
            return None
        found = _REQUEST_ID.match(line.head)
        too_long = f"A message of {line.size} bytes is over {MAX_LINE_BYTES} and was discarded."
        return _error(read_id(found.group(1) if found else None), types.INVALID_REQUEST, too_long)
    try:
        value = orjson.loads(line)  # reads 1024 levels, where the SDK's parser stops at 200
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):
            return _error(None, types.PARSE_ERROR, "Parse error: nesting too deep (over 1024 levels) to read.")
        return _error(None, types.PARSE_ERROR, "Parse error: the line is not JSON.")
    if isinstance(value, list):
        return _error(None, types.INVALID_REQUEST, "Invalid Request: batches are not supported.")
    if not isinstance(value, dict):
        return _error(None, types.INVALID_REQUEST, "Invalid Request: not a JSON-RPC message (one JSON object).")
    request_id = value.get("id")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if "method" not in value and ("result" in value or "error" in value):
        return None
    if not isinstance(request_id, str | int) or isinstance(request_id, bool):
        if "id" not in value and value.get("jsonrpc") == "2.0" and isinstance(value.get("method"), str):  # pyright: ignore[reportUnknownMemberType]
            return None
        request_id = None
    if json_too_deep(value):
        deep = f"Invalid params: the message nests objects and arrays more than {MAX_JSON_DEPTH} levels deep."
        return _error(request_id, types.INVALID_PARAMS, deep)
    return _error(request_id, types.INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 request or notification.")


def _error(request_id: types.RequestId | None, code: int, message: str) -> types.JSONRPCError:
    return types.JSONRPCError(jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=message))


async def _read(wire: _Wire, inbox: _Inbox, unanswered: Unanswered) -> None:
    splitter = LineSplitter(MAX_LINE_BYTES)
    async with inbox.send, inbox.replies:
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            while chunk := await read_chunk(wire):
                for line in splitter.feed(chunk):
                    await inbox.deliver(line, unanswered)
                await anyio.lowlevel.checkpoint()  # a regular file never waits: let the others run
            await inbox.deliver(splitter.rest(), unanswered)
            await unanswered.wait(EOF_GRACE)  # closing `send` ends serving, and with it the requests in flight


async def _write(wire: _Wire, receive: ContextReceiveStream[SessionMessage], unanswered: Unanswered) -> None:
    async with receive:
        with contextlib.suppress(BrokenPipeError, ConnectionError):
            async for session_message in receive:
                message = session_message.message
                await write_all(wire, message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n")
                unanswered.written(message)


@contextlib.asynccontextmanager
async def stdio_wire() -> AsyncIterator[tuple[ContextReceiveStream[Incoming], ContextSendStream[SessionMessage]]]:
    """The (read, write) streams of this process's stdin and stdout, for `Server.run`."""
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        wire_in = _Wire(0, null)
    finally:
        os.close(null)
    try:
        wire_out = _Wire(1, 2)
    except OSError:
        wire_in.restore()
        raise
    read_send, read_receive = create_context_streams[Incoming](0)
    write_send, write_receive = create_context_streams[SessionMessage](0)
    try:
        async with anyio.create_task_group() as tg:
            reading = anyio.CancelScope()
            unanswered = Unanswered()
            inbox = _Inbox(read_send, write_send.clone())
            tg.start_soon(_cancellable, reading, _read(wire_in, inbox, unanswered))
            tg.start_soon(_write, wire_out, write_receive, unanswered)
            try:
                yield read_receive, write_send
            finally:
                reading.cancel()  # the client may keep stdin open: nothing more is read once serving ends
                write_send.close()
                tg.cancel_scope.deadline = anyio.current_time() + FLUSH_WAIT
    finally:
        wire_out.restore()
        wire_in.restore()


async def _cancellable(scope: anyio.CancelScope, work: Coroutine[Any, Any, None]) -> None:
    with scope:
        await work
