"""uvicorn's httptools protocol with the writes of one event-loop turn sent together (`uvicorn.Config(http=...)`).

uvicorn writes a response's status line and headers when the app sends `http.response.start`, and its body when
the app sends `http.response.body`: two `send(2)` calls and two TCP segments for an answer that is complete at once
(a cache hit, any JSON answer), each costing a system call, loopback delivery and a wake-up of the client. Measured
on a cache hit at 64 connections (bench/cache.py's setup): ~8 us less gateway CPU per request, and more requests per
second. Writes are held until the end of the event loop's turn (`call_soon`), so nothing waits for more than that,
and a stream's chunks still leave as they come (each in the turn it was sent in).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class TurnWrites:
    """A transport whose `write`s within one loop turn become one write of the wrapped transport; anything else is
    the wrapped transport's (`close` sends what is held first)."""

    __slots__ = ("transport", "loop", "held")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.loop = loop
        self.held: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        held = self.held
        if held is None:
            self.held = [data]
            self.loop.call_soon(self.flush)
        else:
            held.append(data)

    def flush(self) -> None:
        held, self.held = self.held, None
        if held and not self.transport.is_closing():
            self.transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


HEAD_TIMEOUT = 30.0
"""Seconds a connection may take to send a request's head (request line and header fields), from its opening or the
head's first byte; then it is answered 408 and closed. uvicorn bounds only the idle time between requests, so a
client sending a head a byte at a time (slowloris) held its connection, and with enough of them the file
descriptors, for ever. Node's `headersTimeout` is 60 s, nginx's `client_header_timeout` 60 s."""

_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class TurnWritesHttpTools(HttpToolsProtocol):
    """`HttpToolsProtocol` writing through `TurnWrites` (its flow control still watches the real transport), and
    closing a connection whose request head does not come whole within `HEAD_TIMEOUT`.

    The head's clock costs a request two attribute stores; one timer per connection checks it, re-armed for when
    the head in progress would run out (a connection waiting between requests is uvicorn's keep-alive's)."""

    head_since: float | None = None
    """When the head in progress (or the opened connection's first) began; None once a head is whole."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = TurnWrites(transport, self.loop)  # pyright: ignore[reportAttributeAccessIssue]
        self.head_since = self.loop.time()
        self.loop.call_later(HEAD_TIMEOUT, self._check_head)

    def on_message_begin(self) -> None:
        self.head_since = self.loop.time()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self.head_since = None
        super().on_headers_complete()

    def _check_head(self) -> None:
        if self.transport.is_closing():
            return
        since = self.head_since
        left = HEAD_TIMEOUT if since is None else since + HEAD_TIMEOUT - self.loop.time()
        if left > 0:
            self.loop.call_later(left, self._check_head)
        elif self.cycle is None or self.cycle.response_complete:  # (not mid-answer: a pipelined head waits for it)
            self.transport.write(_TIMED_OUT)
            self.transport.close()
        else:
            self.loop.call_later(HEAD_TIMEOUT, self._check_head)
