"""Forwarding one MCP request to the replica that holds its session, and streaming the answer back.

The request goes as it came (method, path, query, headers with `Authorization` and `Host`, the body: one JSON-RPC
message, read whole so that this replica can still answer it if the owner turns out to be unreachable),
marked with `x-toolhub-forwarded-by` so that the owner never forwards it again (a loop answers the normal 404).
The answer comes back as the owner sent it: JSON, an event stream (a POST's, or a GET's standalone stream, which
lasts until the client goes away), or a DELETE's empty answer. The target URL always comes from the registry (Redis,
or the workers' directory), never from the request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
import httpx2
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.mcp.forward.registry import Registry, owner_of

logger = logging.getLogger("toolhub.mcp")

FORWARDED_HEADER = b"x-toolhub-forwarded-by"
_SESSION_HEADER = MCP_SESSION_ID_HEADER.lower().encode("latin-1")
_HOP_BY_HOP = frozenset(
    (b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
     b"transfer-encoding", b"upgrade")
)  # fmt: skip
_BODY_HEADERS = (b"content-length", b"transfer-encoding")

Holds = Callable[[str], bool]


def forward_client() -> httpx2.AsyncClient:
    """The client for replica-to-replica hops: no proxies from the environment, no read timeout (a GET stream lasts
    as long as the client keeps it), no cap on connections (each open stream holds one)."""
    timeout = httpx2.Timeout(connect=2.0, read=None, write=30.0, pool=10.0)
    # An idle connection is dropped before uvicorn's own 5 s keep-alive would close it under a request in flight.
    limits = httpx2.Limits(max_connections=None, max_keepalive_connections=50, keepalive_expiry=2.0)
    return httpx2.AsyncClient(timeout=timeout, limits=limits, trust_env=False, follow_redirects=False)


class Forwarder:
    """Decides whether a request belongs to another replica's session, and forwards it there."""

    def __init__(self, registry: Registry, client: httpx2.AsyncClient) -> None:
        self.registry = registry
        self.client = client

    async def target(self, scope: Scope, holds: Holds) -> str | None:
        """The base URL of the live replica holding this request's session, or None to answer here: no session id,
        a session held here, a request already forwarded once, an id naming this replica or no known one."""
        session_id: str | None = None
        for name, value in scope["headers"]:
            if name == FORWARDED_HEADER:
                return None
            if name == _SESSION_HEADER:
                session_id = value.decode("latin-1")
        if session_id is None or holds(session_id):
            return None
        owner = owner_of(session_id)
        if owner is None or owner == self.registry.replica_id:
            return None
        return await self.registry.url_of(owner)

    async def forward(self, base_url: str, scope: Scope, receive: Receive, send: Send, *, otherwise: ASGIApp) -> None:
        """Send the request to `base_url` and stream its answer back; when the owner cannot be reached before it
        answers, `otherwise` answers (this replica's normal 404), given the request body again."""
        body = await _read_body(receive)
        if body is None:
            return  # the client left while sending
        request = self.client.build_request(
            scope["method"], _url(base_url, scope), headers=self._headers(scope),
            content=body if body or _has_body(scope) else None,
        )  # fmt: skip
        reached = True  # stays so when the client went away first: nobody is left to answer
        async with anyio.create_task_group() as tg:
            tg.start_soon(_until_disconnect, receive, tg.cancel_scope)
            reached = await self._relay(request, send)
            tg.cancel_scope.cancel()
        if not reached:
            await otherwise(scope, _replay(body, receive), send)

    async def _relay(self, request: httpx2.Request, send: Send) -> bool:
        try:
            response = await self.client.send(request, stream=True)
        except httpx2.TransportError as exc:
            logger.warning("could not forward an MCP request to its session's replica (%s)", exc)
            return False
        try:
            headers = [(k.lower(), v) for k, v in response.headers.raw if k.lower() not in _HOP_BY_HOP]
            await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
            await _stream(response, send)
        finally:
            with anyio.CancelScope(shield=True):  # also when the client left: the connection goes back or closes
                await response.aclose()
        return True

    def _headers(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        kept = [(k, v) for k, v in scope["headers"] if k not in _HOP_BY_HOP]  # the hop frames the body anew
        return [*kept, (FORWARDED_HEADER, self.registry.replica_id.encode())]


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
    """The owner's bytes as they come; an owner that fails mid-answer ends the answer (the client's stream breaks,
    as it would have on the owner)."""
    try:
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except httpx2.TransportError as exc:
        logger.warning("the replica holding an MCP session broke off its answer (%s)", exc)
    await send({"type": "http.response.body", "body": b"", "more_body": False})
