"""One HTTP/1.1 connection to an upstream (an asyncio protocol parsed by httptools) and the answer read over it.

The connection parses what arrives as it arrives (`httptools.HttpResponseParser`, the C parser uvicorn serves
with) and hands header fields and body bytes to the `Response` in flight; the response wakes whoever waits on it.
A connection goes back to its pool the moment the parser has seen the whole body, keep-alive allowing; one whose
answer was cut short, timed out or was abandoned is aborted instead, so no later request reads its leftovers.
"""

from __future__ import annotations

import asyncio
from typing import Literal, Protocol

import httptools

from providers._wire.errors import (
    BodyTooLarge,
    IncompleteResponse,
    MalformedResponse,
    ServerDisconnected,
    UpstreamIOError,
    UpstreamTimeout,
)
from providers._wire.headers import Headers
from providers._wire.inflate import Inflater

DRAIN_SECONDS = 0.2
"""How long `Response.release()` waits for the rest of a body it drops, to keep the connection (OpenAI-style
streams end with `[DONE]`, and the chunked framing's last bytes often come in a later packet)."""

HIGH_WATER = 1 << 20
"""Body bytes held unread before the connection stops reading (a stream whose client reads slowly); it reads on
once they are taken. A compressed body is inflated no further than that either (`inflate.Inflater`)."""

MAX_WHOLE = 256 << 20
"""The most body bytes `read()` holds (all in memory, and gzip can inflate a thousandfold): past it, `BodyTooLarge`.
Far above what an answer holds: embeddings of 2,048 inputs of 3,072 dimensions are ~80 MB of JSON."""


class Owner(Protocol):
    """Where a connection goes when its answer is over (`pool._Host`)."""

    def release(self, connection: Connection, reusable: bool) -> None: ...


class Response:
    """An upstream's answer: `status` and `headers` once it has started, its body through `read()` (whole) or
    `read_chunk()` (as it comes). `close()` gives up on what is left of the body (the connection is then closed).

    Raises (from the reads): `UpstreamIOError` (an `UpstreamTimeout` when a timeout runs out).
    """

    __slots__ = ("status", "headers", "url", "conn", "loop", "_chunks", "_size", "_done", "_error", "_waiter",
                 "_deadline", "_read_timeout", "_encoding", "_inflater", "until_close", "_whole",
                 "_draining", "_ended", "_timer", "heard_at")  # fmt: skip

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop, deadline: float | None, read: float | None) -> None:
        self.status = 0
        self.headers = Headers()
        self.url = url
        self.conn: Connection | None = None
        self.loop = loop
        self._chunks: list[bytes] = []
        self._size = 0
        self._done = False
        self._error: UpstreamIOError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._deadline = deadline
        self._read_timeout = read
        self._encoding: str | None = None
        self._inflater: Inflater | None = None
        self.until_close = False
        self._whole = False
        self._draining: asyncio.TimerHandle | None = None
        self._ended = False  # the body's last bytes have come, some still to inflate
        self._timer: asyncio.TimerHandle | None = None
        self.heard_at = 0.0
        """When bytes last came on the connection (`loop.time()`), whether or not they woke the reader."""

    async def read(self) -> bytes:
        """The whole body (what is left of it)."""
        self._whole = True  # held until the end: no reading stops at HIGH_WATER
        if self._size > MAX_WHOLE:  # held before this read (only when MAX_WHOLE is below HIGH_WATER)
            raise self._too_large()
        if (conn := self.conn) is not None and conn.paused:
            conn.resume()
        while not self._done:
            await self._more()
        chunks, self._chunks, self._size = self._chunks, [], 0
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _more(self) -> None:
        """One step towards more body: inflate what is held compressed, raise the failure, or wait for bytes."""
        if self._inflater is not None and self._inflater.pending:
            self._inflate_pending()
        elif self._error is not None:
            raise self._error
        else:
            await self._wait()

    async def read_chunk(self) -> bytes:
        """The body bytes that have arrived since the last read, waiting for some if none have; b"" at its end.
        Bytes that arrived before a failure are returned before the failure is raised."""
        while not self._chunks:
            if self._done:
                return b""
            await self._more()
        chunks, self._chunks, self._size = self._chunks, [], 0
        if (conn := self.conn) is not None and conn.paused and not (self._inflater and self._inflater.pending):
            conn.resume()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def close(self) -> None:
        """Stop reading: a body not read whole takes its connection with it."""
        if self._draining is not None:
            self._draining.cancel()
        if (conn := self.conn) is not None:
            conn.finish(False)
            self._fail(IncompleteResponse("the answer was closed before its end"))
        self._chunks, self._size = [], 0
        if self._inflater is not None:
            self._inflater.pending.clear()

    def release(self) -> None:
        """Done reading, the answer used: what is left of the body is read and dropped for `DRAIN_SECONDS` at most,
        so that the connection serves again; if it has not ended by then, it is closed (at once if the connection
        could not serve again anyway)."""
        conn = self.conn
        if conn is None or not self.status or self.until_close or not conn.keep_alive:
            self.close()  # not to be reused whatever comes (Connection: close, a body ending with the connection)
            return
        self._chunks, self._size = [], 0
        if self._inflater is not None:
            self._inflater.pending.clear()
        self._draining = self.loop.call_later(DRAIN_SECONDS, self.close)
        if conn.paused:
            conn.resume()

    async def answered(self) -> None:
        """Wait until the status line and headers have arrived."""
        while not self.status:
            if self._error is not None:
                raise self._error
            await self._wait()

    async def _wait(self) -> None:
        loop = self.loop
        waiter = self._waiter = loop.create_future()
        if self._read_timeout is not None:
            self._timer = loop.call_later(self._read_timeout, self._expire, "read")
        elif self._deadline is not None:
            self._timer = loop.call_at(self._deadline, self._expire, "total")
        try:
            await waiter
        finally:
            self._waiter = None
            if (timer := self._timer) is not None:
                self._timer = None
                timer.cancel()

    def _wake(self) -> None:
        if (waiter := self._waiter) is not None and not waiter.done():
            waiter.set_result(None)

    def _expire(self, phase: Literal["total", "read"]) -> None:
        self._timer = None
        if phase == "read":
            seconds = self._read_timeout or 0.0
            if (at := self.heard_at + seconds) > self.loop.time():
                # bytes came that woke nobody (a head in pieces, an interim answer, gzip that inflated to nothing
                # yet): the wait counts from them, as aiohttp's sock_read did; a timer per wait, not per read
                self._timer = self.loop.call_at(at, self._expire, "read")
                return
            error = UpstreamTimeout(f"the upstream sent no bytes within {seconds:g} s", phase=phase)
        else:
            error = UpstreamTimeout("the call's total time ran out", phase=phase)
        self._fail_all(error)

    def _fail_all(self, error: UpstreamIOError) -> None:
        """End the answer with `error`, and its connection with it if it has one still."""
        if (conn := self.conn) is not None:
            conn.fail(error)
        else:
            self._fail(error)

    def _fail(self, error: UpstreamIOError) -> None:
        if not self._done and self._error is None:
            self._error = error
            self._wake()

    # called by the connection as the parser goes
    def on_headers(self, status: int) -> None:
        self.status = status
        fields = self.headers.fields
        if (encoding := fields.get("content-encoding")) is not None:  # a token: any case (RFC 9110 section 8.4.1)
            encoding = encoding.strip().lower()
            self._encoding = None if encoding in ("identity", "") else encoding
        self.until_close = "content-length" not in fields and "transfer-encoding" not in fields and status not in (
            204, 304)  # fmt: skip
        self._wake()

    def on_body(self, data: bytes) -> None:
        if self._draining is not None:
            return  # released: read to keep the connection, not to use
        if self._encoding is not None:
            data = self._decode(data)
        if data:
            self._chunks.append(data)
            self._size += len(data)
            if self._size > HIGH_WATER and not self._whole and (conn := self.conn) is not None and not conn.paused:
                conn.pause()
            elif self._whole and self._size > MAX_WHOLE:
                raise self._too_large()  # from the parser's callback: `Connection.data_received` fails the answer
            self._wake()

    def _room(self) -> int:
        """How much more may be inflated now: up to `HIGH_WATER` held, or read whole, one byte past `MAX_WHOLE`."""
        return (MAX_WHOLE + 1 if self._whole else HIGH_WATER) - self._size

    def _too_large(self) -> BodyTooLarge:
        """The failure of a read past `MAX_WHOLE`, what it held let go."""
        self._chunks, self._size = [], 0
        if self._inflater is not None:
            self._inflater.pending.clear()
        return BodyTooLarge(f"the answer's body is larger than {MAX_WHOLE / (1 << 20):g} MiB")

    def on_end(self) -> None:
        if self._draining is not None:
            self._draining.cancel()
            return
        if self._inflater is not None and self._inflater.pending:
            self._ended = True  # done once the reader has inflated the rest (`_inflate_pending`)
            self._wake()
            return
        self._end()

    def _end(self) -> None:
        if self._inflater is not None and (rest := self._inflater.flush()):
            self._chunks.append(rest)
        self._done = True
        self._wake()

    def _decode(self, data: bytes) -> bytes:
        inflater = self._inflater
        if inflater is None:
            inflater = self._inflater = Inflater.of(self._encoding or "", data)
            if inflater is None:  # an encoding we did not ask for: passed on as it came
                self._encoding = None
                return data
        data = inflater.inflate(data, self._room())
        if inflater.pending and not self._whole and (conn := self.conn) is not None and not conn.paused:
            conn.pause()  # more inflates than the reader has room for: no more reading until it takes some
        return data

    def _inflate_pending(self) -> None:
        """Inflate held compressed bytes, the reader having taken what was inflated (or reading whole)."""
        inflater = self._inflater
        assert inflater is not None
        try:
            data = inflater.inflate(b"", self._room())
        except MalformedResponse as exc:
            inflater.pending.clear()
            self._fail_all(exc)
            return
        if data:
            self._chunks.append(data)
            self._size += len(data)
            if self._whole and self._size > MAX_WHOLE:
                self._fail_all(self._too_large())
                return
        if not inflater.pending:
            if self._ended:
                self._end()
            elif (conn := self.conn) is not None and conn.paused and self._size <= HIGH_WATER:
                conn.resume()


class Connection(asyncio.Protocol):
    """A connection to one origin; `response` is the answer in flight, if any (one at a time: no pipelining)."""

    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.closed = False
        self.paused = False
        self.keep_alive = False
        self.answering = False
        self.uses = 0
        self.idle_since = 0.0

    def send(self, response: Response, data: bytes) -> None:
        """Write a request (head and body in `data`); its answer goes to `response`."""
        self.response, response.conn = response, self
        self.uses += 1
        self.answering = False
        if self.closed or self.transport is None:
            self.fail(ServerDisconnected("the upstream closed the connection before the request", reused=True))
        else:
            self.transport.write(data)

    def finish(self, reusable: bool) -> None:
        """The answer in flight is over: back to the pool if `reusable`, else closed."""
        response = self.response
        if response is None:
            return
        self.response = response.conn = None
        if self.paused:
            self.resume()
        if not reusable:
            self.abort()
        self.owner.release(self, reusable and not self.closed)

    def fail(self, error: UpstreamIOError) -> None:
        """End the answer in flight with `error`, and the connection with it (even an idle one: what it read after
        an answer's end cannot be trusted)."""
        response = self.response
        if response is None:
            self.abort()
            return
        self.finish(False)
        response._fail(error)  # pyright: ignore[reportPrivateUsage]

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()

    def close(self) -> None:
        """Close an idle connection."""
        self.closed = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def pause(self) -> None:
        self.paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume(self) -> None:
        self.paused = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if (response := self.response) is None:  # bytes nobody asked for: nothing read here can be trusted
            self.abort()
            return
        self.answering = True
        response.heard_at = response.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            self.fail(cause if isinstance(cause, UpstreamIOError) else MalformedResponse(str(cause or exc)))
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self.fail(MalformedResponse(f"the upstream's answer is not HTTP/1.1: {exc or type(exc).__name__}"))

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost ends the answer in flight

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self.response
        if response is None:
            return
        if response.status and response.until_close and exc is None:  # a body that ends where the connection does
            self.finish(False)
            response.on_end()
        elif not self.answering:
            detail = f"the upstream closed the connection without answering{f' ({exc})' if exc else ''}"
            self.fail(ServerDisconnected(detail, reused=self.uses > 1))
        else:
            detail = f"the connection ended in the middle of the answer{f' ({exc})' if exc else ''}"
            self.fail(IncompleteResponse(detail))

    # httptools.HttpResponseParser callbacks
    def on_message_begin(self) -> None:
        if self.response is None:  # bytes after the answer's end in the same read: the connection is already pooled
            raise MalformedResponse("the upstream sent bytes after its answer's end")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._response().headers.add(name, value)

    def on_headers_complete(self) -> None:
        response = self._response()
        status = self.parser.get_status_code()
        if status < 200:  # an interim answer (100 Continue, 103 Early Hints): the real one follows
            if status < 100:
                raise MalformedResponse(f"the upstream answered with status {status}, which HTTP does not have")
            response.headers.clear()
            return
        self.keep_alive = self.parser.should_keep_alive()
        response.on_headers(status)

    def on_body(self, body: bytes) -> None:
        self._response().on_body(body)

    def on_message_complete(self) -> None:
        response = self._response()
        if not response.status:
            return  # the end of an interim answer
        self.finish(self.keep_alive)
        response.on_end()

    def _response(self) -> Response:
        if (response := self.response) is None:
            raise MalformedResponse("the upstream sent a second answer to one request")
        return response
