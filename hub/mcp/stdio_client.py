"""The stdio client transport to upstream MCP servers, with a bounded reader that is linear in the message length.

The SDK's `stdio_client` joins each chunk to the pending text (`buffer + chunk`), which is quadratic in the length of
a line (a 50 MB tool result cost 15 CPU-seconds, a 78 MB one 525) and has no limit. This transport is the SDK's, with
its process handling replaced by `hub.mcp.process` (own process group, the spec's shutdown sequence applied to the
whole group within `STOP_BUDGET`), and two changes:

- Lines are split as bytes, each byte looked at once. A message over `max_message_bytes` is discarded as it streams
  in, up to its newline; the request it answers fails at once with `MESSAGE_TOO_LARGE`. Its id is read from the first
  or last bytes of the message (`{"jsonrpc":"2.0","id":7,"result":...` or `{"result":...,"id":7}`); when neither
  names it and exactly one request is waiting, that one fails. The session stays usable.
- A request that cannot be encoded (pydantic refuses values nested about 255 deep) fails alone, with an error
  result, instead of ending the transport and with it every other caller's session.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TextIO

import anyio
import anyio.lowlevel
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp import StdioServerParameters
from mcp.client._transport import TransportStreams
from mcp.client.stdio import (
    _aclose_all,  # pyright: ignore[reportPrivateUsage]
    _drain_stdout,  # pyright: ignore[reportPrivateUsage]
    get_default_environment,
)
from mcp.shared.message import SessionMessage
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from hub.mcp import process as processes

logger = logging.getLogger("toolhub.mcp")

MESSAGE_TOO_LARGE = -32013
"""JSON-RPC error code (implementation-defined range, unused by the SDK) of an answer over `max_message_bytes`."""
TOO_LARGE_MARK = "exceeded max_message_bytes"


def too_large(limit: int) -> str:
    """The error text of an answer over the limit (also how an HTTP transport's report of it is recognised)."""
    return f"The MCP server's answer {TOO_LARGE_MARK} ({limit} bytes) and was discarded."


_EDGE = 1024
_ID = rb'(-?\d+|"(?:[^"\\]|\\.){0,200}")'
_JSONRPC = rb'(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?'
_HEAD = re.compile(rb"^\s*\{\s*" + _JSONRPC + rb'(?:"id"\s*:\s*' + _ID + rb'\s*,\s*)?"(?:result|error)"\s*:')
_TAIL = re.compile(rb'"id"\s*:\s*' + _ID + rb"\s*\}\s*$")
_WRITER_FLUSH_TIMEOUT = 0.1
"""Seconds the writer gets to flush before the process is stopped (part of `processes.STOP_BUDGET`)."""

Incoming = SessionMessage | Exception


@dataclass
class Oversized:
    """A line longer than the limit: its first and last bytes and its length."""

    head: bytes
    tail: bytes
    size: int

    def response_id(self) -> types.RequestId | None:
        """The id of the request this message answers, if it is a response and the id is at its start or end."""
        head = _HEAD.match(self.head)
        if head is None:
            return None
        raw = head.group(1)
        if raw is None:
            tail = _TAIL.search(self.tail)
            raw = tail.group(1) if tail is not None else None
        return json.loads(raw) if raw is not None else None

    @property
    def may_be_response(self) -> bool:
        return b'"method"' not in self.head


class LineSplitter:
    """Splits a byte stream into lines in linear time; a line over `limit` bytes comes out as `Oversized`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._pending = bytearray()
        self._skipping: Oversized | None = None

    def feed(self, chunk: bytes) -> list[bytes | Oversized]:
        out: list[bytes | Oversized] = []
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            out.append(self._finish(chunk[start:end]))
            start = end + 1
        self._keep(chunk[start:])
        return out

    def rest(self) -> bytes | Oversized:
        """What is left after the last newline (a last message without one), once the stream has ended."""
        return self._finish(b"")

    def _keep(self, piece: bytes) -> None:
        if self._skipping is not None:
            self._skip(piece)
            return
        self._pending += piece
        if len(self._pending) > self.limit:
            pending = bytes(self._pending)
            self._pending.clear()
            self._skipping = Oversized(pending[:_EDGE], b"", 0)
            self._skip(pending)

    def _skip(self, piece: bytes) -> None:
        assert self._skipping is not None
        self._skipping.size += len(piece)
        self._skipping.tail = (self._skipping.tail + piece[-_EDGE:])[-_EDGE:]

    def _finish(self, piece: bytes) -> bytes | Oversized:
        if self._skipping is None and len(self._pending) + len(piece) <= self.limit:
            line = bytes(self._pending) + piece if self._pending else piece
            self._pending.clear()
            return line
        self._keep(piece)
        skipped, self._skipping = self._skipping, None
        assert skipped is not None
        return skipped


class _Pipes:
    """The two pipe tasks of one upstream process, and the requests waiting for an answer."""

    def __init__(self, process: Any, server: str, limit: int) -> None:
        self.process = process
        self.server = server
        self.limit = limit
        self.waiting: set[types.RequestId] = set()
        self.read_writer, self.read_stream = anyio.create_memory_object_stream[Incoming](0)
        self.write_stream, self.write_reader = anyio.create_memory_object_stream[SessionMessage](0)
        self.writer_done = anyio.Event()
        self.shutting_down = False

    async def read(self) -> None:
        splitter = LineSplitter(self.limit)
        try:
            async with self.read_writer:
                try:
                    while True:
                        for line in splitter.feed(await self.process.stdout.receive()):
                            await self._deliver(line)
                except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                    return
                finally:
                    await _drain_stdout(self.process)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, ConnectionError):
            if not self.shutting_down:
                logger.warning("MCP server %s: reading its stdout failed", self.server, exc_info=True)

    async def _deliver(self, line: bytes | Oversized) -> None:
        if isinstance(line, Oversized):
            await self._refuse(line)
            return
        if not line.strip():
            return
        try:
            message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        except ValueError as exc:
            logger.warning("MCP server %s sent an invalid message (%d bytes): %s", self.server, len(line), exc)
            await self.read_writer.send(exc)
            return
        if isinstance(message, types.JSONRPCResponse | types.JSONRPCError):
            self.waiting.discard(message.id)
        await self.read_writer.send(SessionMessage(message))

    async def _refuse(self, line: Oversized) -> None:
        """Fail the request an oversized message answers; the message itself is gone."""
        request_id = line.response_id()
        if request_id is None and line.may_be_response and len(self.waiting) == 1:
            request_id = next(iter(self.waiting))
        logger.warning("MCP server %s sent a message of %d bytes, over max_message_bytes (%d): discarded (id %s)",
                       self.server, line.size, self.limit, request_id)  # fmt: skip
        if request_id is None or request_id not in self.waiting:
            return
        await self._fail(request_id, MESSAGE_TOO_LARGE, too_large(self.limit))

    async def _fail(self, request_id: types.RequestId, code: int, message: str) -> None:
        self.waiting.discard(request_id)
        error = types.JSONRPCError(jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=message))
        await self.read_writer.send(SessionMessage(error))

    async def write(self) -> None:
        try:
            async with self.write_reader:
                async for session_message in self.write_reader:
                    await self._send(session_message.message)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            await self.read_writer.aclose()  # the server may be alive: let the session see the connection end
        finally:
            self.writer_done.set()

    async def _send(self, message: types.JSONRPCMessage) -> None:
        is_request = isinstance(message, types.JSONRPCRequest)
        try:
            data = message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n"
        except (PydanticSerializationError, ValidationError, ValueError) as exc:
            logger.warning("MCP server %s: a message could not be encoded: %s", self.server, exc)
            if is_request:
                await self._fail(message.id, types.INVALID_PARAMS, f"The request could not be encoded: {exc}")
            return
        if is_request:
            self.waiting.add(message.id)
        elif isinstance(message, types.JSONRPCNotification) and message.method == "notifications/cancelled":
            self.waiting.discard((message.params or {}).get("requestId"))  # no answer is awaited any more
        await self.process.stdin.send(data)

    async def shutdown(self) -> None:
        """The SDK's sequence: stop traffic, let the writer flush briefly, stop the process group, close the streams."""
        self.shutting_down = True
        self.read_stream.close()
        self.write_stream.close()
        with anyio.move_on_after(_WRITER_FLUSH_TIMEOUT):
            await self.writer_done.wait()
        await processes.stop(self.process)
        streams: tuple[MemoryObjectReceiveStream[Any] | MemoryObjectSendStream[Any], ...] = (
            self.read_stream, self.write_stream, self.read_writer, self.write_reader)  # fmt: skip
        await _aclose_all(*streams)
        await anyio.lowlevel.checkpoint()


@contextlib.asynccontextmanager
async def bounded_stdio_client(
    params: StdioServerParameters, errlog: TextIO, *, server: str, max_message_bytes: int
) -> AsyncIterator[TransportStreams]:
    """Spawn the server in its own process group and exchange newline-delimited JSON-RPC with it.

    Raises:
        OSError: the process cannot be spawned.
    """
    env = get_default_environment() | (params.env or {})
    process = await processes.spawn(params.command, params.args, env, errlog, params.cwd)
    pipes = _Pipes(process, server, max_message_bytes)
    async with anyio.create_task_group() as tg:
        tg.start_soon(pipes.read)
        tg.start_soon(pipes.write)
        try:
            yield pipes.read_stream, pipes.write_stream
        finally:
            with anyio.CancelScope(shield=True):  # every wait inside is bounded; a cancel must not leak the process
                await pipes.shutdown()
            tg.cancel_scope.cancel()
