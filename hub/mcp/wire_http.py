"""An `httpx2` transport over `providers._wire`'s pool: the MCP SDK's HTTP client without httpcore2 under it.

Why (issue 15): with a streamable-HTTP upstream, about 1 ms of the hub's ~1.7 ms of CPU per `tools/call` went to
the SDK's client on httpx2 and httpcore2, most of it httpcore2's pure-Python pool and HTTP/1.1 parsing. The
gateway's providers already talk to their upstreams through `providers._wire` (pooled keep-alive connections
parsed by httptools), so the SDK's `httpx2.AsyncClient` gets that pool as its transport. The SDK's logic (sessions,
SSE parsing, reconnects, headers, redirects) is untouched: only what sends a request and reads its answer changes.

Measured (`bench/mcp_latency.py --upstream http`, before/after alternated, load 5-8): hub process CPU per call
through /mcp to an HTTP upstream 2.09, 1.71 -> 1.36, 1.23 ms; the in-process `McpHub.call_tool` 1.31, 1.25 -> 0.82,
0.86 ms. What is left of the client is httpx2's own Request and Response objects and the SDK's SSE decoding.

What it maps: a request's method, URL, header fields as httpx2 built them and its body (read whole: the SDK sends
JSON bytes), its connect and read timeouts (`read` bounds each wait for bytes, so a notification stream stays open
that long between events; `_wire`'s connect timeout covers waiting for a pool slot too, httpx2's `pool`; a write
goes to the socket's buffer, so `write` has nothing to bound); the answer as a streamed `httpx2.Response`;
`_wire`'s errors as the httpx2 errors httpcore2's would have been. A body `_wire` inflated (gzip, deflate) reaches
httpx2 without its Content-Encoding. Proxies from the environment are not used: httpx2 never used them for a client
given its transport (streamable HTTP always was); the legacy SSE client's did (HTTP(S)_PROXY), and no longer does.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import httpx2

from providers._wire import (
    STALE_WINDOW,
    ConnectFailed,
    Pool,
    Response,
    ServerDisconnected,
    UpstreamIOError,
    UpstreamTimeout,
)

KEEPALIVE_SECONDS = 5.0
"""How long an idle connection is kept: httpx2's default `keepalive_expiry`, and uvicorn's own keep-alive timeout
(the SDK's servers run on it), so the pool seldom offers a connection its server has just closed."""


_DROPPED = frozenset({"content-length", "transfer-encoding"})  # `_wire` frames the body it is given itself
_INFLATED = frozenset({"gzip", "x-gzip", "deflate"})  # what `_wire` inflates as it reads
_COOKIE = ("set-cookie",)  # joined in `fields`, one by one in `cookies`
_FRAMING = ("content-encoding", "content-length", *_COOKIE)  # of a body `_wire` inflated: no longer true
_HTTP11 = {"http_version": b"HTTP/1.1"}


class WireStream(httpx2.AsyncByteStream):
    """An answer's body as `_wire` reads it. Closed before its end, a notification stream (GET) closes its
    connection, and so does one closed as its request is cancelled (anyio's scopes, a timeout among them, leave
    the task `cancelling()`); any other answer is read on and dropped in the background for a moment
    (`Response.release`), so that the connection is pooled again if the body ends soon, and closed if not."""

    __slots__ = ("_response", "_method")

    def __init__(self, response: Response, method: str) -> None:
        self._response = response
        self._method = method

    async def __aiter__(self) -> AsyncIterator[bytes]:
        response = self._response
        try:
            while chunk := await response.read_chunk():
                yield chunk
        except UpstreamIOError as exc:
            raise _mapped(exc) from exc

    async def aclose(self) -> None:
        task = asyncio.current_task()
        if self._method == "GET" or (task is not None and task.cancelling()):
            self._response.close()  # a cancelled request's stream closed is how its upstream learns (2026-07-28)
        else:
            self._response.release()

    def abandon(self) -> None:
        """Close the connection now, whatever is left of the body (one over its size limit)."""
        self._response.close()


class WireTransport(httpx2.AsyncBaseTransport):
    """Requests over a `providers._wire.Pool` of HTTP/1.1 connections. `ssl_context` verifies https upstreams
    (`open_transport` passes httpx2's default, so certificates verify as they did with httpcore2)."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._pool = Pool(keepalive_timeout=KEEPALIVE_SECONDS, ssl_context=ssl_context)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        content = await request.aread()
        fields = _fields(request.headers.raw)
        body = content if content or "content-length" in request.headers else None
        timeout = request.extensions.get("timeout") or {}
        try:
            response = await self._send(request, fields, body, timeout.get("connect"), timeout.get("read"))
        except UpstreamIOError as exc:
            raise _mapped(exc) from exc
        except ValueError as exc:  # a URL `_wire` cannot call (httpx2 has checked the scheme), a line break
            raise httpx2.LocalProtocolError(str(exc)) from exc
        stream = WireStream(response, request.method)
        try:
            return httpx2.Response(response.status, headers=_answer_fields(response), stream=stream, extensions=_HTTP11)
        except BaseException:  # nobody else will close it: its connection would stay busy
            response.close()
            raise

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def _send(
        self, request: httpx2.Request, fields: dict[str, str], body: bytes | None, connect: float | None,
        read: float | None,
    ) -> Response:  # fmt: skip
        url = request.url
        target = str(url.copy_with(userinfo=b"")) if url.userinfo else str(url)  # httpx2 made the Authorization
        pool, method = self._pool, request.method
        loop_time = _loop_time()
        try:
            return await pool.request(method, target, fields, body, connect=connect, read=read)
        except ServerDisconnected as exc:
            if not exc.reused or _loop_time() - loop_time > STALE_WINDOW:
                raise
        return await pool.request(method, target, fields, body, connect=connect, read=read, fresh=True)


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


def _fields(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request's header fields as httpx2 built them (names in their case), less the body's framing."""
    fields: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1")
        if key.lower() in _DROPPED:
            continue
        text = value.decode("latin-1")
        fields[key] = f"{fields[key]}, {text}" if key in fields else text
    return fields


def _answer_fields(response: Response) -> list[tuple[bytes, bytes]]:
    """The answer's fields as the bytes they came in (httpx2 encodes a str value as ASCII, and a server may send
    UTF-8: httpcore2 passed bytes), less the framing of a body `_wire` inflated. Each Set-Cookie goes on its own,
    as it came: joined, httpx2's cookie jar would read one mangled cookie (a sticky load balancer's two lost)."""
    headers = response.headers
    fields = headers.fields
    encoding = fields.get("content-encoding")
    skip = _FRAMING if encoding is not None and encoding.strip().lower() in _INFLATED else _COOKIE
    answer = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in fields.items() if name not in skip]
    answer += [(b"set-cookie", value.encode("latin-1")) for value in headers.cookies]
    return answer


def _mapped(exc: UpstreamIOError) -> httpx2.TransportError:
    """The httpx2 error httpcore2's transport raised for the same failure (the SDK and httpx2 handle those)."""
    if isinstance(exc, UpstreamTimeout):
        kind: type[httpx2.TransportError] = httpx2.ConnectTimeout if exc.phase == "connect" else httpx2.ReadTimeout
    elif isinstance(exc, ConnectFailed):
        kind = httpx2.ConnectError
    else:  # dropped unanswered, cut short, not HTTP/1.1 (h11 said RemoteProtocolError; ReadError on a reset)
        kind = httpx2.RemoteProtocolError
    return kind(str(exc))
