"""What the hub adds around the SDK's HTTP transports: sessions bound to a key, JSON-RPC error bodies, quiet logs.

- Each streamable HTTP and SSE session belongs to the key that opened it: the SDK compares the `AuthenticatedUser` in
  the ASGI scope with the session's creator and answers any other key as if the session did not exist (404).
- The SDK's transports answer some failures in plain text (`Invalid Content-Type header`, `session_id is required`,
  `Could not find session`, a bare 405 or 406); `JsonRpcErrors` rewrites each into a JSON-RPC error with the same
  status. (`Invalid HTTP request received.` comes from uvicorn's HTTP parser before any application code runs, so it
  stays plain text.)
- Session ids are bearer-like secrets for the key that owns them: the SDK logs them at INFO and WARNING, so
  `RedactSessionIds` blanks them out of those records (DEBUG keeps them, for debugging one's own deployment).
"""

from __future__ import annotations

import functools
import logging
import re
from http import HTTPStatus

import mcp_types as types
import orjson
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.accounts.auth import Principal

SDK_LOGGERS = ("mcp.server.streamable_http_manager", "mcp.server.streamable_http", "mcp.server.sse", "uvicorn.access")
"""The SDK's transports, and uvicorn's access log (`toolhub serve --access-log`: `/sse/messages/?session_id=...`)."""
_SESSION_ID = re.compile(r"\b[0-9a-fA-F]{32}\b|\b[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\b")


def session_owner(principal: Principal) -> AuthenticatedUser:
    """The identity the SDK binds a session to: the virtual key's id, or the master key (or an open gateway)."""
    if principal.key_id is not None:
        return _user(f"key:{principal.key_id}")
    return _user("master" if principal.is_master else "open")


@functools.lru_cache(maxsize=4096)
def _user(owner: str) -> AuthenticatedUser:
    """One (read-only) user per owner: building the pydantic token costs ~3 us per request otherwise."""
    return AuthenticatedUser(AccessToken(token="", client_id=owner, scopes=[]))


class JsonRpcErrors:
    """ASGI wrapper: a 4xx/5xx answer that is not JSON becomes a JSON-RPC error body with the same status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message | None = None
        body = bytearray()

        async def rewrite(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] >= 400 and not _is_json(message):
                start = message
            elif start is not None and message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    await _send_error(send, start, bytes(body))
            else:
                await send(message)

        await self.app(scope, receive, rewrite)


def _is_json(start: Message) -> bool:
    for name, value in start.get("headers", []):
        if name.lower() == b"content-type":
            return value.split(b";")[0].strip().lower() in (b"application/json", b"text/event-stream")
    return False


async def _send_error(send: Send, start: Message, text: bytes) -> None:
    status = int(start["status"])
    message = text.decode("utf-8", "replace").strip() or HTTPStatus(status).phrase
    code = types.PARSE_ERROR if message == "Could not parse message" else types.INVALID_REQUEST
    body = orjson.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}})
    kept = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-type", b"content-length")]
    headers = [*kept, (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RedactSessionIds(logging.Filter):
    """Blanks session ids out of records at INFO and above, in the message and in its arguments (uvicorn's access
    formatter reads the arguments, so they keep their number and order)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.INFO:
            if isinstance(record.msg, str):
                record.msg = _redact(record.msg)
            if isinstance(record.args, tuple):
                record.args = tuple(_redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def _redact(text: str) -> str:
    return _SESSION_ID.sub("<session id>", text)


def redact_session_ids() -> None:
    """Install `RedactSessionIds` on the SDK's transport loggers (once)."""
    for name in SDK_LOGGERS:
        log = logging.getLogger(name)
        if not any(isinstance(f, RedactSessionIds) for f in log.filters):
            log.addFilter(RedactSessionIds())
