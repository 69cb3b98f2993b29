"""Forwarding one MCP request to the replica that holds its session, and streaming the answer back.

The request goes as it came (method, path, query, headers with `Authorization` and `Host`, the body: one JSON-RPC
message, read whole so that this replica can still answer it if the owner turns out to be unreachable),
marked with `x-toolhub-forwarded-by` so that the owner never forwards it again (a loop answers the normal 404).
The answer comes back as the owner sent it (less its `date`, `server` and `x-request-id`, which this replica sets):
JSON, an event stream (a POST's, or a GET's standalone stream, which lasts until the client goes away), or a
DELETE's empty answer; an owner that breaks off mid-answer breaks the client's connection too, so that the client
cannot take a cut stream for a finished one. The target URL always comes from the registry (signed entries in Redis,
or the workers' private directory), never from the request. When the registry cannot be asked (Redis down) and the
owner's URL was never known here, the answer is a retryable 503 JSON-RPC error, not 404: a 404 would end a session
its replica still holds.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import anyio
import httpx2
import orjson
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.mcp.forward.registry import Registry, RegistryUnavailable, owner_of

logger = logging.getLogger("toolhub.mcp")

FORWARDED_HEADER = b"x-toolhub-forwarded-by"
_SESSION_HEADER = MCP_SESSION_ID_HEADER.lower().encode("latin-1")
_HOP_BY_HOP = frozenset(
    (b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
     b"transfer-encoding", b"upgrade")
)  # fmt: skip
_BODY_HEADERS = (b"content-length", b"transfer-encoding")
_FRONT_SETS = frozenset((b"date", b"server", b"x-request-id"))
"""Response headers this replica's server and middleware add themselves: the owner's would be sent twice."""
UNAVAILABLE = "unavailable:"
"""What `Forwarder.target` gives for a session whose owner cannot be looked up now: `forward` answers 503."""
_UNAVAILABLE_BODY = orjson.dumps({
    "jsonrpc": "2.0", "id": None,
    "error": {"code": -32000, "message": "The session registry is unavailable; retry shortly (the session is kept)"},
})  # fmt: skip

Holds = Callable[[str], bool]


def forward_client() -> httpx2.AsyncClient:
    """The client for replica-to-replica hops: no proxies from the environment, no read timeout (a GET stream lasts
    as long as the client keeps it), no cap on connections (each open stream holds one)."""
    timeout = httpx2.Timeout(connect=2.0, read=None, write=30.0, pool=10.0)
    # An idle connection is dropped before uvicorn's own 5 s keep-alive would close it under a request in flight.
    limits = httpx2.Limits(max_connections=None, max_keepalive_connections=50, keepalive_expiry=2.0)
    # No read timeout, so TCP keep-alive finds an owner that vanished without a reset (~1 min) instead of never.
    transport = httpx2.AsyncHTTPTransport(limits=limits, trust_env=False, socket_options=_keepalive())
    return httpx2.AsyncClient(transport=transport, timeout=timeout, trust_env=False, follow_redirects=False)


def _keepalive() -> list[tuple[int, int, int]]:
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):  # Linux names
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    return options


class Forwarder:
    """Decides whether a request belongs to another replica's session, and forwards it there."""

    def __init__(self, registry: Registry, client: httpx2.AsyncClient) -> None:
        self.registry = registry
        self.client = client

    async def target(self, scope: Scope, holds: Holds) -> str | None:
        """The base URL of the live replica holding this request's session, or None to answer here: no session id,
        a session held here, a request already forwarded once, an id naming this replica or no known one; or
        `UNAVAILABLE` when the registry cannot say now."""
        session_id: str | None = None
        for name, value in scope["headers"]:
            if name == FORWARDED_HEADER:
                return None
            if name == _SESSION_HEADER and session_id is None:  # the first, as the SDK's manager reads it
                session_id = value.decode("latin-1")
        if session_id is None or holds(session_id):
            return None
        owner = owner_of(session_id)
        if owner is None or owner == self.registry.replica_id:
            return None
        try:
            return await self.registry.url_of(owner)
        except RegistryUnavailable:
            return UNAVAILABLE

    async def forward(self, base_url: str, scope: Scope, receive: Receive, send: Send, *, otherwise: ASGIApp) -> None:
        """Send the request to `base_url` and stream its answer back; when the owner cannot be reached before it
        answers (or the hop fails in any way before that), `otherwise` answers (this replica's normal 404), given
        the request body again.

        Raises:
            OwnerBrokeOff: the owner's answer broke off after it started (the server then drops the connection).
        """
        if base_url == UNAVAILABLE:
            await _unavailable(send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client left while sending
        reached = True  # stays so when the client went away first: nobody is left to answer
        async with anyio.create_task_group() as tg:
            tg.start_soon(_until_disconnect, receive, tg.cancel_scope)
            reached = await self._relay(base_url, scope, body, send)
            tg.cancel_scope.cancel()
        if not reached:
            await otherwise(scope, _replay(body, receive), send)

    async def _relay(self, base_url: str, scope: Scope, body: bytes, send: Send) -> bool:
        try:
            request = self.client.build_request(
                scope["method"], _url(base_url, scope), headers=self._headers(scope),
                content=body if body or _has_body(scope) else None,
            )  # fmt: skip
            response = await self.client.send(request, stream=True)
        except httpx2.TransportError as exc:
            self.registry.forget(base_url)
            logger.warning("could not forward an MCP request to its session's replica (%s)", exc)
            return False
        except Exception:  # e.g. a URL httpx2 refuses: still an answer from here, never a plain 500
            logger.exception("could not forward an MCP request to %s; answering here", base_url)
            return False
        try:
            await send({"type": "http.response.start", "status": response.status_code, "headers": _kept(response)})
            await _stream(response, send)
        finally:
            with anyio.CancelScope(shield=True):  # also when the client left: the connection goes back or closes
                await response.aclose()
        return True

    def _headers(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        """The client's headers less hop-by-hop ones (the hop frames the body anew), with this replica's request id
        (the owner logs the same one) and the mark that stops a second forward."""
        request_id = scope.get("state", {}).get("request_id")
        dropped = _hop_by_hop(scope["headers"]) | ({b"x-request-id"} if request_id else set())
        kept = [(k, v) for k, v in scope["headers"] if k not in dropped]
        if request_id:
            kept.append((b"x-request-id", str(request_id).encode("latin-1")))
        return [*kept, (FORWARDED_HEADER, self.registry.replica_id.encode())]


class OwnerBrokeOff(Exception):
    """The owner's answer broke off mid-stream: raised so that the client's connection breaks too."""


def _hop_by_hop(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes] | set[bytes]:
    """The standard hop-by-hop headers and those a `Connection` header names."""
    named = {n.strip().lower() for k, v in headers if k.lower() == b"connection" for n in v.split(b",")}
    return _HOP_BY_HOP | named if named else _HOP_BY_HOP


def _kept(response: httpx2.Response) -> list[tuple[bytes, bytes]]:
    """The owner's response headers less hop-by-hop ones and those this replica adds itself."""
    raw = [(k.lower(), v) for k, v in response.headers.raw]
    dropped = _hop_by_hop(raw) | _FRONT_SETS
    return [(k, v) for k, v in raw if k not in dropped]


async def _unavailable(send: Send) -> None:
    """503 with a JSON-RPC error: the client retries later and keeps its session (a 404 would end it)."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(_UNAVAILABLE_BODY)).encode()),
               (b"retry-after", b"2")]  # fmt: skip
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": _UNAVAILABLE_BODY})


def _url(base_url: str, scope: Scope) -> str:
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    return base_url.rstrip("/") + path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")


def _has_body(scope: Scope) -> bool:
    return any(name in _BODY_HEADERS for name, _ in scope["headers"])


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body (a JSON-RPC message or batch, under the app's size limit), or None if the client left: kept
    so that the local answer can read it too when the owner is unreachable."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` with the already-read body given once more first."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


async def _until_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    """Cancel the hop when the client goes away (a GET stream never ends by itself)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


async def _stream(response: httpx2.Response, send: Send) -> None:
    """The owner's bytes as they come.

    Raises:
        OwnerBrokeOff: the owner failed mid-answer; the answer must not end cleanly (a client would take a cut
            stream for a complete one), so the server drops the connection, as the owner's did.
    """
    try:
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except httpx2.TransportError as exc:
        logger.warning("the replica holding an MCP session broke off its answer (%s)", exc)
        raise OwnerBrokeOff(str(exc)) from exc
    await send({"type": "http.response.body", "body": b"", "more_body": False})
