"""Client transports to upstream MCP servers: stdio (own process group, bounded reader), SSE, and streamable HTTP.

Messages from an upstream are bounded by its `max_message_bytes` on stdio, and on streamable HTTP both in event streams
(the SDK's `max_sse_event_size`) and in JSON answers (`BoundedTransport`: the SDK turns the stream error into a JSON-RPC
error for that request only). The legacy SSE client reads its events without a bound.

Both HTTP kinds send through `WireTransport` (hub/mcp/wire_http.py: `providers._wire`'s pool under the SDK's httpx2
client) rather than httpcore2; the legacy SSE client keeps the SDK's own where the environment names a proxy for its
URL (`_proxied`: `_wire` has no proxies, and httpx2 never used them for the streamable-HTTP client given its transport).

An answer's connection is kept for the next request: the SDK stops reading a request's event stream at its answer
and closes it, and a response closed before its end cannot give its connection back, so every call opened a new
TCP connection to the upstream. `_BoundedStream.aclose` reads what is left first (the server ends the stream right
after the answer), within `DRAIN_SECONDS` and the size limit, in the request's own task after the answer was handed
on; a `WireStream` does the same itself, in the background. Hub CPU per call to an HTTP upstream 1.60 -> 1.26 ms,
wall 6.5 -> 4.1 ms (load ~6)."""

from __future__ import annotations

import contextlib
import json
import ssl
import urllib.request
from collections.abc import AsyncIterator, Mapping
from typing import TextIO

import anyio
import httpx2
import mcp_types as types
from mcp import StdioServerParameters
from mcp.client._transport import TransportStreams
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import McpHttpClientFactory, create_mcp_http_client

from hub.mcp.config import McpServerSpec
from hub.mcp.link import Link
from hub.mcp.stdio_client import bounded_stdio_client, too_large
from hub.mcp.wire_http import WireStream, WireTransport
from hub.ops.tracing.propagate import copy_meta_traceparent

REFUSAL_BYTES = 64 * 1024
"""The largest 401/403 body read to tell a JSON-RPC error (passed on) from any other refusal (named by its status)."""
DRAIN_SECONDS = 0.2
"""How long a closed answer's stream is read on for the rest of its body (its connection is then reused). The SDK's
servers end it right after the answer; one that keeps it open would hold a pooled connection this long per call."""


class MessageTooLarge(httpx2.StreamError, httpx2.SSEError):
    """An answer longer than the upstream's `max_message_bytes`; the SDK reports either kind with its message."""


class _BoundedStream(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, limit: int, link: Link | None = None) -> None:
        self._inner = inner
        self._limit = limit
        self._link = link
        self._chunks: AsyncIterator[bytes] | None = None
        self._seen = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self._chunks = chunks = aiter(self._inner)
        try:
            async for chunk in chunks:
                self._seen += len(chunk)
                if self._seen > self._limit:
                    raise MessageTooLarge(too_large(self._limit))
                yield chunk
        except httpx2.TransportError:
            if self._link is not None:  # the connection broke off: the SDK reports -32000 for its request
                self._link.failed()
            raise

    async def aclose(self) -> None:
        try:
            await self._drain()
        finally:
            await self._inner.aclose()

    async def _drain(self) -> None:
        """Read the rest of a body its reader stopped short of, so that its connection can be reused."""
        if isinstance(self._inner, WireStream):  # drains itself on closing, without holding up this task
            if self._seen > self._limit:
                self._inner.abandon()  # no more of it read: its connection goes
            return
        if self._chunks is None or self._seen > self._limit:
            return
        # best effort: an upstream that drops the connection after its answer must not turn the closing of an
        # answered stream into an error (the SDK would take it for a stream that ended unanswered, and reconnect)
        with anyio.move_on_after(DRAIN_SECONDS), contextlib.suppress(httpx2.HTTPError):
            async for chunk in self._chunks:
                self._seen += len(chunk)
                if self._seen > self._limit:
                    return


class BoundedTransport(httpx2.AsyncBaseTransport):
    """An HTTP transport whose answers to POSTs (one request's JSON or event stream) stop at `limit` bytes with
    `MessageTooLarge`; the long-lived GET stream of notifications is bounded per event by the SDK instead."""

    def __init__(self, limit: int, inner: httpx2.AsyncBaseTransport, link: Link | None = None) -> None:
        self._inner = inner
        self._limit = limit
        self._link = link

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        copy_meta_traceparent(request)  # the `_meta.traceparent` the SDK wrote, as the HTTP header too
        link, post = self._link, request.method == "POST"
        try:
            response = await self._inner.handle_async_request(request)
        except httpx2.TransportError:
            if link is not None and post:
                link.failed()
            raise
        if link is not None and response.status_code == 404 and request.headers.get("mcp-session-id"):
            link.forgotten()  # the server no longer knows the session (it restarted, or ended it)
        if post and response.status_code in (401, 403) and not await _is_jsonrpc_error(response):
            return await _refused(request, response)
        if post:
            assert isinstance(response.stream, httpx2.AsyncByteStream)
            response.stream = _BoundedStream(response.stream, self._limit, link)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _is_jsonrpc_error(response: httpx2.Response) -> bool:
    """Whether a refusal's body is a JSON-RPC error (the SDK passes its message on); read whole when it is JSON of
    at most `REFUSAL_BYTES`: an OAuth server's `{"error": "invalid_token"}` is JSON too, and is no such error."""
    if response.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return False
    length = response.headers.get("content-length")
    if length is None or not length.isdigit() or int(length) > REFUSAL_BYTES:
        return False
    try:
        body = json.loads(await response.aread())
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and isinstance(error.get("message"), str)


async def _refused(request: httpx2.Request, response: httpx2.Response) -> httpx2.Response:
    """A 401 or 403 without a JSON-RPC error as a JSON-RPC error naming the status (the SDK's own stand-in for any
    answer over 400 says only "Server returned an error response": a bad token read as a server fault)."""
    await response.aclose()
    status = f"{response.status_code} {response.reason_phrase}".strip()
    message = f"upstream answered {status} (check the server's headers/credentials)"
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": types.INTERNAL_ERROR, "message": message}}
    return httpx2.Response(response.status_code, json=body, request=request)


@contextlib.asynccontextmanager
async def open_transport(spec: McpServerSpec, errlog: TextIO, server: str,
                         link: Link | None = None) -> AsyncIterator[TransportStreams]:  # fmt: skip
    """The read/write streams to one upstream; on exit a stdio child and its process group are stopped. A streamable
    HTTP transport tells `link` of failed exchanges and of a session the server forgot."""
    read_timeout = max(300.0, spec.call_timeout)  # idle notification streams stay open between calls
    if spec.kind == "stdio":
        assert spec.command is not None
        params = StdioServerParameters(command=spec.command, args=spec.args, env=spec.env or None, cwd=spec.cwd)
        async with bounded_stdio_client(
            params, errlog, server=server, max_message_bytes=spec.max_message_bytes
        ) as streams:
            yield streams
    elif spec.kind == "sse":
        assert spec.url is not None
        headers = spec.all_headers or None
        proxied = _proxied(spec.url, urllib.request.getproxies())  # the SDK's own client goes through it, as before
        factory = create_mcp_http_client if proxied else _wire_client_factory(_tls(spec.url))
        async with sse_client(spec.url, headers=headers, timeout=spec.connect_timeout, sse_read_timeout=read_timeout,
                              httpx_client_factory=factory) as streams:  # fmt: skip
            yield streams
    else:
        assert spec.url is not None
        timeout = httpx2.Timeout(spec.connect_timeout, read=read_timeout)
        async with (
            httpx2.AsyncClient(
                headers=spec.all_headers,
                timeout=timeout,
                follow_redirects=True,
                transport=BoundedTransport(spec.max_message_bytes, WireTransport(ssl_context=_tls(spec.url)), link),
            ) as http,  # fmt: skip
            streamable_http_client(spec.url, http_client=http, max_sse_event_size=spec.max_message_bytes) as streams,
        ):
            yield streams


def _tls(url: str) -> ssl.SSLContext | None:
    """httpx2's default context for an https upstream (what httpcore2 verified with: `SSL_CERT_FILE` or
    `SSL_CERT_DIR` if set, else OpenSSL's default paths); an upstream's config has no TLS settings of its own."""
    return httpx2.create_ssl_context() if url.startswith("https:") else None


def _wire_client_factory(tls: ssl.SSLContext | None) -> McpHttpClientFactory:
    """The legacy SSE client's httpx2 client, as the SDK's `create_mcp_http_client` makes it, over `WireTransport`."""

    def factory(
        headers: dict[str, str] | None = None, timeout: httpx2.Timeout | None = None, auth: httpx2.Auth | None = None
    ) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth, transport=WireTransport(ssl_context=tls))

    return factory


def _proxied(url: str, proxies: Mapping[str, str]) -> bool:
    """Whether `proxies` (from the environment: HTTP(S)_PROXY, ALL_PROXY, NO_PROXY) send `url` through a proxy, which
    the SDK's own client honours and `WireTransport` does not."""
    scheme, _, rest = url.partition("://")
    if scheme not in proxies and "all" not in proxies:
        return False
    host = rest.partition("/")[0].rpartition("@")[2]
    # NO_PROXY as urllib reads it (undocumented, in the stdlib since Python 2; typeshed leaves it out)
    return not urllib.request.proxy_bypass_environment(host, proxies)  # pyright: ignore[reportAttributeAccessIssue]
