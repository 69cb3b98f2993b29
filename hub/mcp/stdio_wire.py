"""The stdin/stdout wire of `toolhub stdio`, read and written without threads so that a signal or a cancel ends it.

The SDK's `stdio_server` reads stdin in a worker thread that no cancel can stop: while the client keeps stdin open,
SIGINT and SIGTERM could not end the process, and interpreter exit waited for the thread. Here both descriptors are
non-blocking and awaited with `anyio.wait_readable` / `wait_writable`. As in the SDK, fd 0 and 1 are pointed at
/dev/null and stderr while serving (a stray `print` or a child cannot corrupt the wire) and restored on exit, and so is
each descriptor's blocking mode (a terminal's is shared with the shell).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import anyio
import anyio.lowlevel
import mcp_types as types
from mcp.shared._context_streams import (  # the streams `Server.run` expects (they carry each sender's context)
    ContextReceiveStream,
    ContextSendStream,
    create_context_streams,  # pyright: ignore[reportPrivateImportUsage]
)
from mcp.shared.message import SessionMessage

from hub.mcp.lines import LineSplitter, Oversized

MAX_LINE_BYTES = 256 * 1024 * 1024
"""A client message longer than this is discarded (and reported to the session as an error) instead of buffered."""
_CHUNK = 65536
EOF_GRACE = 0.3
"""Seconds the requests still unanswered when stdin ends get to be answered (`toolhub stdio < requests.jsonl` ends
its input at once; a client that closes stdin to stop us waits 2 s, of which stopping the upstreams takes up to 1.5)."""
FLUSH_WAIT = 0.5
"""Seconds the answers already accepted get to reach stdout once serving ends (a client that stopped reading
would otherwise hold the exit)."""

Incoming = SessionMessage | Exception


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


async def _read(wire: _Wire, send: ContextSendStream[Incoming], unanswered: Unanswered) -> None:
    splitter = LineSplitter(MAX_LINE_BYTES)
    async with send:
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            while chunk := await read_chunk(wire):
                for line in splitter.feed(chunk):
                    await _deliver(send, line, unanswered)
                await anyio.lowlevel.checkpoint()  # a regular file never waits: let the others run
            await _deliver(send, splitter.rest(), unanswered)
            await unanswered.wait(EOF_GRACE)  # closing `send` ends serving, and with it the requests in flight


async def _deliver(send: ContextSendStream[Incoming], line: bytes | Oversized, unanswered: Unanswered) -> None:
    if isinstance(line, Oversized):
        await send.send(ValueError(f"A message of {line.size} bytes is over {MAX_LINE_BYTES} and was discarded."))
    elif line.strip():
        try:
            message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        except ValueError as exc:
            await send.send(exc)
            return
        unanswered.read(message)
        await send.send(SessionMessage(message))


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
            tg.start_soon(_cancellable, reading, _read(wire_in, read_send, unanswered))
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
