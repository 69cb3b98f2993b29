"""What the upstream client raises: one family under `UpstreamIOError`, an `OSError`.

    UpstreamIOError                 any failure to exchange a request and its answer with an upstream
     ├─ ConnectFailed               no connection: name lookup, refused, unreachable, TLS handshake or certificate
     ├─ ServerDisconnected          the connection closed before a byte of the answer came (`reused`: it was a
     │                              pooled one; the stale keep-alive case `providers._http` retries once)
     ├─ IncompleteResponse          the connection closed or broke part way through the answer
     ├─ MalformedResponse           bytes that are not an HTTP/1.1 answer (httptools refused them)
     ├─ BodyTooLarge                a body read whole (`Response.read`) past `connection.MAX_WHOLE` bytes
     └─ UpstreamTimeout             also a `TimeoutError`: the connect, total or read timeout ran out (`phase`)

A subclass of `OSError` because that is what it is (a socket that failed us), so code that already handles
`OSError` from a socket handles these too.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "BodyTooLarge",
    "ConnectFailed",
    "IncompleteResponse",
    "MalformedResponse",
    "ServerDisconnected",
    "UpstreamIOError",
    "UpstreamTimeout",
]


class UpstreamIOError(OSError):
    """A request and its answer could not be exchanged with an upstream."""


class ConnectFailed(UpstreamIOError):
    """No connection could be made (or none with a certificate that verifies)."""


STALE_WINDOW = 0.25
"""Seconds after sending within which a connection dropped unanswered (`ServerDisconnected`) counts as a stale pooled
one, its server's keep-alive timeout crossing the request on the wire: the gateway (`providers._http.post`) and the
MCP client (`hub.mcp.wire_http`) send such a request once more on a new connection."""


class ServerDisconnected(UpstreamIOError):
    """The upstream closed the connection without sending any of its answer.

    `reused` says whether the connection had served a request before: the upstream's keep-alive timeout then crossed
    the request on the wire, and the request was not worked on.
    """

    def __init__(self, message: str, *, reused: bool) -> None:
        super().__init__(message)
        self.reused = reused


class IncompleteResponse(UpstreamIOError):
    """The connection closed or broke after the answer had started and before it ended."""


class MalformedResponse(UpstreamIOError):
    """The upstream sent bytes that are not an HTTP/1.1 answer."""


class BodyTooLarge(UpstreamIOError):
    """A body read whole grew past the bound on what one answer may hold in memory."""


class UpstreamTimeout(UpstreamIOError, TimeoutError):
    """A timeout ran out: `connect` (a pool slot, the connection and its TLS handshake), `total` (a whole call) or
    `read` (the wait for the next bytes of an answer)."""

    def __init__(self, message: str, *, phase: Literal["connect", "total", "read"], seconds: float = 0.0) -> None:
        super().__init__(message)
        self.phase = phase
        self.seconds = seconds
        """The seconds that ran out, where the raiser knows them (a connect's: its timeout or the deadline's rest)."""
