"""The console talks to the hub through its own HTTP API: the same routes and handlers as scripts, called in process.

`call_api` runs one request through the whole app (middleware, routing, the `/key/*`, `/spend/*`, `/mcp/tools/*` and
`/v1` handlers) with the session's key as the bearer, and hands back the status and JSON body. `proxy` does the same
for a browser request and streams the answer through (the playground's `/v1/chat/completions`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import anyio
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from hub.mcp.lines import exact_dumps, exact_json
from hub.ui.session import Session

_KEPT_HEADERS = (b"host", b"user-agent")


@dataclass(frozen=True, slots=True)
class ApiResult:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def error(self) -> str:
        """The API's own error message (OpenAI's `{"error": {"message"}}` shape), or the raw body."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return str(self.body["error"].get("message"))
        return f"HTTP {self.status}: {self.body}"


def _scope(request: Request, session: Session, method: str, path: str, query: str, json: bool) -> Scope:
    headers = [(k, v) for k, v in request.scope["headers"] if k in _KEPT_HEADERS]
    headers.append((b"authorization", f"Bearer {session.key}".encode()))
    if json:
        headers.append((b"content-type", b"application/json"))
    return {**{k: v for k, v in request.scope.items() if k not in ("state", "router", "endpoint", "path_params")},
            "method": method, "path": path, "raw_path": path.encode(), "root_path": "", "query_string": query.encode(),
            "headers": headers, "state": {}}  # fmt: skip


async def call_api(
    request: Request,
    session: Session,
    method: str,
    path: str,
    *,
    query: Mapping[str, Any] | None = None,
    body: Any = None,
) -> ApiResult:
    """One API request as the session's key; `query` values of None are left out. Integers beyond 64 bits in `body`
    and in the answer stay exact, as over REST (`hub.mcp.lines`)."""
    params = urlencode({k: v for k, v in (query or {}).items() if v is not None and v != ""})
    scope = _scope(request, session, method, path, params, body is not None)
    payload = b"" if body is None else exact_dumps(body)
    done = anyio.Event()
    status = 500
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal payload
        if payload is not None:
            message, payload = {"type": "http.request", "body": payload, "more_body": False}, None
            return message
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await request.scope["app"](scope, receive, send)
    done.set()
    raw = b"".join(chunks)
    try:
        return ApiResult(status, exact_json(raw) if raw else None)
    except ValueError:
        return ApiResult(status, raw.decode(errors="replace"))


async def proxy(request: Request, session: Session, path: str, receive: Receive, send: Send) -> None:
    """Pass a browser request to `path` as the session's key, streaming the answer back unchanged. A body already
    read off `receive` (a form's CSRF token) is handed on again: the API would wait for it for ever."""
    scope = _scope(request, session, request.method, path, request.url.query, json=True)
    kept: bytes | None = getattr(request, "_body", None)
    await request.scope["app"](scope, receive if kept is None else replaying(kept, receive), send)


def replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` after `body` was read off it: `body` once more, then whatever `receive` says next (a disconnect)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
