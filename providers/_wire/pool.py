"""Keep-alive connections per upstream origin, and requests over them.

A pool per origin (scheme, host, port) holds idle connections newest first, so the ones a lull leaves unused age
out after `keepalive_timeout` (a timer sweeps them, one per origin); at most `limit_per_host` connections per origin
are in use or being opened, and further requests wait for one (within their connect timeout). Proxies from the
environment are not used, as aiohttp without `trust_env` did not use them.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import re
import ssl
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from providers._wire.connection import Connection, Response
from providers._wire.dial import Resolver, dial
from providers._wire.errors import ConnectFailed, UpstreamTimeout

ACCEPT_ENCODING = "gzip, deflate"
"""What aiohttp sent, so upstreams answer as they did before: a compressed JSON body (embeddings run to megabytes)
costs less time on the wire than it costs to inflate here; streams come uncompressed in practice."""

_DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int


class Target(NamedTuple):
    """What a URL comes to on the wire: its origin, the `Host` field, the request target and the `Authorization`
    field its credentials make (`user:password@`), if any."""

    origin: Origin
    host_field: str
    path: str
    authorization: str | None


class Pool:
    """Upstream connections, pooled per origin; `request()` sends a request and returns its `Response` once
    the upstream has started to answer.

    `ssl_context` is for tests (a test CA); by default a context from `ssl.create_default_context()` verifies
    certificates and host names, made on the first https request.
    """

    def __init__(
        self, *, limit_per_host: int = 256, keepalive_timeout: float = 30.0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.limit_per_host = limit_per_host
        self.keepalive_timeout = keepalive_timeout
        self._ssl = ssl_context
        self.resolver = Resolver()
        self._hosts: dict[Origin, _Host] = {}
        self._targets: dict[str, Target] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
        *,
        connect: float | None = None,
        total: float | None = None,
        read: float | None = None,
        fresh: bool = False,
    ) -> Response:
        """Send a request; return the answer once its status line and headers have arrived.

        `connect` bounds getting a connection (a free slot, connecting, the TLS handshake), `total` the whole call
        up to the body's last byte, `read` each wait for bytes of the answer. `fresh` passes over idle connections
        (a retry after a stale one). The caller reads the body and `release()`s or `close()`s the response.

        Raises:
            UpstreamIOError: the exchange failed (`UpstreamTimeout` for a timeout).
            ValueError: a header name or value holds a line break, the URL is not http(s), or it holds credentials
                and `headers` an Authorization field.
        """
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._rebind(loop)
        target = self._targets.get(url) or self._target(url)
        data = _head(method, target, headers, body)
        host = self._hosts.get(target.origin) or self._host(target.origin, loop)
        deadline = None if total is None else loop.time() + total
        conn = (None if fresh else host.idle_connection()) or await host.connect(connect, deadline)
        response = Response(url, loop, deadline, read)
        conn.send(response, data)
        try:
            await response.answered()
        except BaseException:
            response.close()
            raise
        return response

    async def aclose(self) -> None:
        """Close idle connections; those in use close when their answers end."""
        hosts, self._hosts = self._hosts, {}
        for host in hosts.values():
            host.shut()
        if hosts:
            loop = asyncio.get_running_loop()
            turn = loop.create_future()
            loop.call_soon(_resolve, turn)
            await turn  # one loop turn: the transports finish closing their sockets

    def tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    def _rebind(self, loop: asyncio.AbstractEventLoop) -> None:
        """A new event loop (tests run several): the old loop's connections cannot serve it."""
        for host in self._hosts.values():
            try:
                host.shut()
            except RuntimeError:  # the old loop is closed; its sockets went with it
                pass
        self._hosts = {}
        self._loop = loop

    def _host(self, origin: Origin, loop: asyncio.AbstractEventLoop) -> _Host:
        host = self._hosts[origin] = _Host(self, origin, loop)
        return host

    def _target(self, url: str) -> Target:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:  # a port out of range or not a number, an IPv6 address without its "]"
            raise ValueError(f"not a valid URL: {shown_url(url)} ({exc})") from None
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {shown_url(url)}")
        userinfo, _, host_field = parts.netloc.rpartition("@")
        if port == _DEFAULT_PORTS[parts.scheme]:  # left out of Host, as yarl (aiohttp) and browsers do
            host_field = host_field.rpartition(":")[0]
        port = port or _DEFAULT_PORTS[parts.scheme]
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        authorization = _basic(parts.username or "", parts.password or "") if userinfo else None
        target = Target(Origin(parts.scheme, parts.hostname, port), host_field, path, authorization)
        if len(self._targets) >= 1024:  # URLs come from the configuration: a handful, unless something is odd
            self._targets.clear()
        self._targets[url] = target
        return target


def _resolve(turn: asyncio.Future[None]) -> None:
    if not turn.done():  # cancelled with the task that waited (an httpx2 client closed in a cancel scope)
        turn.set_result(None)


def _basic(user: str, password: str) -> str:
    """HTTP Basic credentials from a URL's (percent-encoded) userinfo, as aiohttp sent them: latin-1 where it can
    encode them (aiohttp's default), else UTF-8 (RFC 7617's only charset) where aiohttp failed."""
    pair = f"{unquote(user)}:{unquote(password)}"
    try:
        raw = pair.encode("latin-1")
    except UnicodeEncodeError:
        raw = pair.encode()
    return f"Basic {base64.b64encode(raw).decode()}"


def shown_url(url: str) -> str:
    """`url` as a client may read it (an error message, a response header): without a query (Gemini's key can be one)
    or credentials (up to the authority's last `@`, so a password holding an unescaped `@` goes whole)."""
    return re.sub(r"^([^/?#]*//)?[^/?#]*@", r"\1", url.partition("?")[0])


def _head(method: str, target: Target, headers: Mapping[str, str], body: bytes | None) -> bytes:
    """The request's head (and its body when small, so both leave in one write)."""
    lines = [f"{method} {target.path} HTTP/1.1\r\n"]
    names: set[str] = set()
    for name, value in headers.items():
        lines.append(f"{name}: {value}\r\n")
        names.add(name.lower())
    if "host" not in names:
        lines.append(f"Host: {target.host_field}\r\n")
    if target.authorization is not None:
        if "authorization" in names:  # aiohttp refused the two together too
            raise ValueError("the URL holds credentials (user:password@) and the request an Authorization header")
        lines.append(f"Authorization: {target.authorization}\r\n")
    if "accept" not in names:
        lines.append("Accept: */*\r\n")
    if "accept-encoding" not in names:
        lines.append(f"Accept-Encoding: {ACCEPT_ENCODING}\r\n")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}\r\n")
    lines.append("\r\n")
    head = "".join(lines)
    if head.count("\n") != len(lines) or head.count("\r") != len(lines):
        raise ValueError("a header name or value holds a line break")
    data = head.encode()
    return data + body if body else data


class _Host:
    """The connections to one origin: idle ones (oldest first), a count of those in use, requests waiting."""

    __slots__ = ("pool", "origin", "loop", "idle", "busy", "waiters", "sweeper", "shut_down")

    def __init__(self, pool: Pool, origin: Origin, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = pool
        self.origin = origin
        self.loop = loop
        self.idle: list[Connection] = []
        self.busy = 0
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.sweeper: asyncio.TimerHandle | None = None
        self.shut_down = False

    def idle_connection(self) -> Connection | None:
        """The most recently used idle connection still open, taken for a request."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed and self.loop.time() - conn.idle_since < self.pool.keepalive_timeout:
                self.busy += 1
                return conn
            conn.close()
        return None

    async def connect(self, timeout: float | None, deadline: float | None) -> Connection:
        """A connection for a request: a free slot (or an idle connection freed meanwhile), then a new connection.

        Raises:
            ConnectFailed: the connection or its TLS handshake failed.
            UpstreamTimeout: no connection within `timeout` (or before `deadline`).
        """
        if deadline is not None:
            left = deadline - self.loop.time()
            timeout = left if timeout is None else min(timeout, left)
        try:
            async with asyncio.timeout(timeout):
                while self.busy >= self.pool.limit_per_host:
                    await self._slot()
                    if (conn := self.idle_connection()) is not None:
                        return conn
                return await self._open()
        except TimeoutError as exc:  # asyncio.timeout's: ConnectFailed is no TimeoutError, whatever its cause
            origin = self.origin
            raise UpstreamTimeout(f"no connection to {origin.host}:{origin.port} within {timeout or 0:g} s",
                                  phase="connect", seconds=timeout or 0.0) from exc  # fmt: skip

    async def _slot(self) -> None:
        waiter = self.loop.create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._wake()  # woken and cancelled at once: the slot goes to the next in line
            else:
                with contextlib.suppress(ValueError):  # a slot freed since passed it over (`_wake`) and dropped it
                    self.waiters.remove(waiter)
            raise

    async def _open(self) -> Connection:
        origin = self.origin
        self.busy += 1
        try:
            return await self._connected(origin)
        except OSError as exc:
            self._released()
            raise ConnectFailed(f"cannot connect to {origin.host}:{origin.port}: {exc}") from exc
        except BaseException:
            self._released()
            raise

    async def _connected(self, origin: Origin) -> Connection:
        """A new connection to one of the name's addresses, its TLS handshake done.

        Whatever ends it without a connection drops the addresses (`Resolver.forget`): refused, silent until the
        connect timeout cancels it (a black hole where the name no longer points), or a TLS handshake failed or
        timed out. The handshake counts too: an address that takes TCP but does not speak TLS as the name's server
        does (a recycled address, a load balancer left without backends) is as wrong as one that drops SYNs, and a
        lookup costs little next to a failed connect. A cancellation for another reason (the client gone) costs one
        lookup more at worst.
        """
        resolver = self.pool.resolver
        addresses = await resolver.resolve(self.loop, origin.host, origin.port)
        tls = origin.scheme == "https"
        try:
            sock = await dial(self.loop, addresses)
            _, conn = await self.loop.create_connection(
                lambda: Connection(self),
                sock=sock,
                ssl=self.pool.tls() if tls else None,
                server_hostname=origin.host if tls else None,
            )
        except BaseException:
            resolver.forget(origin.host, origin.port, addresses)
            raise
        return conn

    def release(self, connection: Connection, reusable: bool) -> None:
        if reusable and not self.shut_down:
            connection.idle_since = self.loop.time()
            self.idle.append(connection)
            if self.sweeper is None:
                self.sweeper = self.loop.call_at(self.idle[0].idle_since + self.pool.keepalive_timeout, self._sweep)
        else:
            connection.close()
        self._released()

    def _released(self) -> None:
        self.busy -= 1
        self._wake()

    def _wake(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _sweep(self) -> None:
        """Close the connections idle for `keepalive_timeout`; come back when the next one will have been."""
        self.sweeper = None
        idle, limit = self.idle, self.loop.time() - self.pool.keepalive_timeout
        expired = 0
        while expired < len(idle) and (idle[expired].closed or idle[expired].idle_since <= limit):
            idle[expired].close()
            expired += 1
        del idle[:expired]
        if idle:
            self.sweeper = self.loop.call_at(idle[0].idle_since + self.pool.keepalive_timeout, self._sweep)

    def shut(self) -> None:
        """Close the idle connections and pool no more (in-use ones close when their answers end)."""
        self.shut_down = True
        if self.sweeper is not None:
            self.sweeper.cancel()
            self.sweeper = None
        idle, self.idle = self.idle, []
        for conn in idle:
            conn.abort()
