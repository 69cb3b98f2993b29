"""The stdio client transport to upstream MCP servers, with a bounded reader that is linear in the message length.

The SDK's `stdio_client` joins each chunk to the pending text (`buffer + chunk`), which is quadratic in the length of
a line (a 50 MB tool result cost 15 CPU-seconds, a 78 MB one 525) and has no limit. This transport is the SDK's, with
its process handling replaced by `hub.mcp.process` (own process group, the spec's shutdown sequence applied to the
whole group within `STOP_BUDGET`), and these changes:

- Lines are split as bytes, each byte looked at once. A message over `max_message_bytes` is discarded as it streams
  in, up to its newline; the request it answers fails at once with `MESSAGE_TOO_LARGE`. Its id is read from the first
  or last bytes of the message (`{"jsonrpc":"2.0","id":7,"result":...` or `{"result":...,"id":7}`); when neither
  names it and exactly one request is waiting, that one fails. The session stays usable.
- A request that cannot be encoded (pydantic refuses values nested about 255 deep) fails alone, with an error
  result, instead of ending the transport and with it every other caller's session.
- An error answer with a null id (a server that could not read a request, or could not tell its id) fails the one
  request waiting, when exactly one is, at once instead of after its `call_timeout`; with several waiting it cannot
  be matched and each waits for its own answer (one warning in the log).
- A line pydantic refuses is read leniently when it is JSON with a lone surrogate escape or bytes that are no UTF-8
  (each becomes U+FFFD); one that cannot be read at all fails the request it names (the same first or last bytes)
  at once with PARSE_ERROR, rather than leaving it to its timeout; else it is one warning in the log.
- No task or memory stream between the session and the pipes: the session's reading task reads and parses stdout,
  and a sender writes its message to stdin itself (`Pipes`). 0.31 -> 0.24 ms of CPU per call.
- A request written with `Pipes.write` after `Pipes.expect` (hub/mcp/direct_call.py) is answered straight to its
  future by the reading task; the session sees neither it nor its answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Self, TextIO

import anyio
import anyio.lowlevel
import mcp_types as types
from anyio.abc import TaskGroup
from mcp import StdioServerParameters
from mcp.client._transport import TransportStreams
from mcp.client.stdio import (
    _drain_stdout,  # pyright: ignore[reportPrivateUsage]
    get_default_environment,
)
from mcp.shared.dispatcher import as_request_id, coerce_request_id
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from hub.mcp import process as processes
from hub.mcp.lines import LineSplitter, Oversized, answer_id, exact_json, mended
from hub.mcp.streams import ClosingStream
from hub.mcp.waiting import addressed

logger = logging.getLogger("toolhub.mcp")

MESSAGE_TOO_LARGE = -32013
"""JSON-RPC error code (implementation-defined range, unused by the SDK) of an answer over `max_message_bytes`."""
TOO_LARGE_MARK = "exceeded max_message_bytes"


def too_large(limit: int) -> str:
    """The error text of an answer over the limit (also how an HTTP transport's report of it is recognised)."""
    return f"The MCP server's answer {TOO_LARGE_MARK} ({limit} bytes) and was discarded."


Incoming = SessionMessage | Exception


@dataclass
class _Settle:
    """A direct request's answer, in its place among the messages the session reads (`Pipes.receive`)."""

    future: asyncio.Future[dict[str, Any]]
    outcome: Any
    """A result dict, a `JSONRPCError`, or an exception."""

    def apply(self) -> None:
        future, outcome = self.future, self.outcome
        if future.done():
            return
        if isinstance(outcome, types.JSONRPCResponse):
            future.set_result(outcome.result)
        elif isinstance(outcome, types.JSONRPCError):
            error = outcome.error
            future.set_exception(MCPError(code=error.code, message=error.message, data=error.data))
        elif isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


class Pipes(ClosingStream):
    """One upstream process's pipes, as the session's two streams, and the requests waiting for an answer.

    No task or memory stream stands between the session and the pipes (each hop cost an event-loop iteration or two
    per message, bench/mcp_cpu.py): `receive` reads and parses stdout in the session's own reading task, `send`
    writes a message to stdin in the sender's task (whole, so concurrent senders cannot interleave).
    """

    def __init__(self, process: Any, server: str, limit: int) -> None:
        self.process = process
        self.server = server
        self.limit = limit
        self.waiting: set[types.RequestId] = set()
        self._splitter = LineSplitter(limit)
        self._ready: deque[Incoming | _Settle] = deque()
        self._ended = False
        """Stdout ended, failed or was closed: nothing more is read."""
        self._reading = False
        self._write_closed = False
        self._stdin = _stream_writer(process.stdin)
        self.shutting_down = False
        self.answers: dict[types.RequestId, asyncio.Future[dict[str, Any]]] = {}
        """Requests written with `write` (hub/mcp/direct_call.py): each answer goes to its future, not the session."""

    @property
    def ended(self) -> bool:
        """Stdout ended, failed or was closed, or stdin failed: the connection is gone."""
        return self._ended

    # -- the read stream -------------------------------------------------------------------------------------------

    async def receive(self) -> Incoming:
        while True:
            while not self._ready:
                if self._ended:
                    self._fail_answers()
                    raise anyio.EndOfStream
                await self._read_more()
            item = self._ready.popleft()
            if not isinstance(item, _Settle):
                return item
            # A direct answer is settled when the session would have read it: what came before it (a log, a
            # request naming its call) has been dispatched, so it is routed while the call is still in flight.
            item.apply()

    async def _read_more(self) -> None:
        self._reading = True
        try:
            chunk = await self.process.stdout.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._ended = True
            return
        except OSError:
            self._ended = True
            if not self.shutting_down:
                logger.warning("MCP server %s: reading its stdout failed", self.server, exc_info=True)
            return
        finally:
            self._reading = False
        for line in self._splitter.feed(chunk):
            self._deliver(line)

    def _deliver(self, line: bytes | Oversized) -> None:
        if isinstance(line, Oversized):
            self._refuse(line)
            return
        if not line.strip() or (self.answers and self._answered_plainly(line)):
            return
        try:
            message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        except ValueError as exc:
            message = self._leniently(line, exc)
            if message is None:
                return
        if isinstance(message, types.JSONRPCError) and message.id is None:
            message = addressed(message, self.waiting, self.server)
        if isinstance(message, types.JSONRPCResponse | types.JSONRPCError):
            self.waiting.discard(message.id)
            if self._answer(message.id, message):
                return
        self._ready.append(SessionMessage(message))

    def _leniently(self, line: bytes, exc: ValueError) -> types.JSONRPCMessage | None:
        """A line the strict parser refused, read with its lone surrogates and bytes that are no UTF-8 replaced
        (`mended`); when it cannot be read at all, the request it answers (if it names one) fails at once instead of
        waiting out its timeout, and one warning says why."""
        if (fixed := mended(line)) is not None:
            with contextlib.suppress(ValueError):
                return types.jsonrpc_message_adapter.validate_json(fixed, by_name=False)
        reason = _reason(exc)
        request_id = answer_id(line)
        logger.warning("MCP server %s sent a message that cannot be read (%d bytes, answer to request %s): %s",
                       self.server, len(line), request_id, reason)  # fmt: skip
        self._fail(request_id, types.PARSE_ERROR, f"The MCP server's answer could not be read ({reason}).")
        return None

    def _answered_plainly(self, line: bytes) -> bool:
        """A direct request's answer in the usual shape, taken without pydantic; anything else is left to it."""
        try:
            message = exact_json(line)
        except ValueError:
            return False
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or "error" in message:
            return False
        result = message.get("result")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        request_id = message.get("id")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if type(result) is not dict or type(request_id) not in (int, str):  # pyright: ignore[reportUnknownArgumentType]
            return False
        return self._answer(request_id, result)  # pyright: ignore[reportUnknownArgumentType]

    def _answer(self, request_id: types.RequestId | None, outcome: Any) -> bool:
        """Settle the direct request `request_id` with a result dict, a JSON-RPC error or an exception."""
        if request_id is None:
            return False
        key = coerce_request_id(request_id)
        future = self.answers.pop(key, None)
        if future is None:
            return False
        self.waiting.discard(key)
        self._ready.append(_Settle(future, outcome))
        return True

    def _fail_answers(self) -> None:
        """The stream ended: every direct request waiting fails as the SDK fails its own (`CONNECTION_CLOSED`)."""
        for request_id in list(self.answers):
            self._answer(request_id, MCPError(code=types.CONNECTION_CLOSED, message="Connection closed"))
        settled = [item for item in self._ready if isinstance(item, _Settle)]  # an answer that came stands
        self._ready = deque(item for item in self._ready if not isinstance(item, _Settle))
        for item in settled:
            item.apply()

    def _refuse(self, line: Oversized) -> None:
        """Fail the request an oversized message answers; the message itself is gone."""
        request_id = line.response_id()
        if request_id is None and line.may_be_response and len(self.waiting) == 1:
            request_id = next(iter(self.waiting))
        logger.warning("MCP server %s sent a message of %d bytes, over max_message_bytes (%d): discarded (id %s)",
                       self.server, line.size, self.limit, request_id)  # fmt: skip
        self._fail(request_id, MESSAGE_TOO_LARGE, too_large(self.limit))

    def _fail(self, request_id: object, code: int, message: str) -> None:
        """Answer the waiting request `request_id` (if it is one) with an error, for its caller or the session."""
        key = None if (plain_id := as_request_id(request_id)) is None else coerce_request_id(plain_id)  # "7" is 7
        if key is None or key not in self.waiting:
            return
        self.waiting.discard(key)
        answer = types.JSONRPCError(jsonrpc="2.0", id=key, error=types.ErrorData(code=code, message=message))
        if not self._answer(key, answer):
            self._ready.append(SessionMessage(answer))

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Incoming:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    # -- the write stream ------------------------------------------------------------------------------------------

    async def send(self, item: SessionMessage, /) -> None:
        """Write one message to stdin.

        Raises:
            MCPError: a request that cannot be encoded (INVALID_PARAMS); it fails alone, the session goes on.
            anyio.ClosedResourceError: the session closed its write stream.
            anyio.BrokenResourceError: stdin is gone; the session then sees its connection end.
        """
        if self._write_closed:
            raise anyio.ClosedResourceError
        message = item.message
        is_request = isinstance(message, types.JSONRPCRequest)
        try:
            data = message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n"
        except (PydanticSerializationError, ValidationError, ValueError) as exc:
            logger.warning("MCP server %s: a message could not be encoded: %s", self.server, exc)
            if is_request:
                raise MCPError(code=types.INVALID_PARAMS, message=f"The request could not be encoded: {exc}") from None
            return
        if is_request:
            self.waiting.add(message.id)
        elif isinstance(message, types.JSONRPCNotification) and message.method == "notifications/cancelled":
            self.waiting.discard((message.params or {}).get("requestId"))  # no answer is awaited any more
        await self.write(data)

    def expect(self, request_id: types.RequestId) -> asyncio.Future[dict[str, Any]]:
        """The future of a request about to be written with `write`: its result dict, or its error raised (`MCPError`
        for a JSON-RPC error, an over-limit answer or the stream's end), without passing through the session."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if self._ended:
            future.set_exception(MCPError(code=types.CONNECTION_CLOSED, message="Connection closed"))
            return future
        self.answers[request_id] = future
        self.waiting.add(request_id)
        return future

    def forget(self, request_id: types.RequestId) -> None:
        """No answer to `request_id` is awaited any more (it came, or its caller gave up)."""
        self.answers.pop(request_id, None)
        self.waiting.discard(request_id)

    async def write(self, data: bytes, within: float | None = None) -> None:
        """Write one encoded message (a whole line) to stdin, within `within` seconds if given.

        Raises:
            TimeoutError: the upstream took none of it for `within` seconds (it stopped reading its input).
            anyio.ClosedResourceError: the session closed its write stream.
            anyio.BrokenResourceError: stdin is gone; the session then sees its connection end.
        """
        if self._write_closed:
            raise anyio.ClosedResourceError
        try:
            await self._write(data, within)
        except TimeoutError:
            raise
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, RuntimeError, OSError):
            await self._broken()
            raise anyio.BrokenResourceError from None

    async def _write(self, data: bytes, within: float | None = None) -> None:
        writer = self._stdin
        if writer is None:
            with contextlib.nullcontext() if within is None else anyio.fail_after(within):
                await self.process.stdin.send(data)
            return
        if writer.is_closing():
            raise BrokenPipeError
        writer.write(data)
        if within is None or not writer.transport.get_write_buffer_size():
            await writer.drain()  # returns at once: nothing waits in the pipe's buffer
            return
        with anyio.fail_after(within):  # a cancel scope (~10 us) only when the pipe did not take it all at once
            await writer.drain()

    async def _broken(self) -> None:
        """Stdin failed; the server may be alive: let the session see the connection end."""
        self._write_closed = True
        self._fail_answers()
        if not self._ended:
            self._ended = True
            with contextlib.suppress(Exception):
                await self.process.stdout.aclose()  # wakes a `receive` waiting for stdout

    # -- both ------------------------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """The session closes one of its streams: the read stream ends, or the write stream takes nothing more."""

    async def shutdown(self, tg: TaskGroup) -> None:
        """The SDK's sequence: stop traffic, stop the process group, meanwhile reading what it still writes."""
        self.shutting_down = True
        self._write_closed = True
        if not self._reading:  # a server flushing its output must not block on a full pipe and miss its exit
            tg.start_soon(_drain_stdout, self.process)
        self._ended = True
        self._fail_answers()
        await processes.stop(self.process)
        await anyio.lowlevel.checkpoint()


def _reason(exc: ValueError) -> str:
    """What the parser said, in one line (pydantic's first error, without its documentation link)."""
    if isinstance(exc, ValidationError) and (errors := exc.errors()):
        return str(errors[0]["msg"])
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _stream_writer(stdin: Any) -> asyncio.StreamWriter | None:
    """The asyncio writer under anyio's process stdin: writing to it directly saves the event-loop iteration that
    `send` adds per message; None for any other stream (then its `send` is used)."""
    writer = getattr(stdin, "_stream", None)
    return writer if isinstance(writer, asyncio.StreamWriter) else None


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
    pipes = Pipes(process, server, max_message_bytes)
    async with anyio.create_task_group() as tg:
        try:
            yield pipes, pipes
        finally:
            with anyio.CancelScope(shield=True):  # every wait inside is bounded; a cancel must not leak the process
                await pipes.shutdown(tg)
            tg.cancel_scope.cancel()
