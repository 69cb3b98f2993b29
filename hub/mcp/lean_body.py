"""How the lean `/mcp` hop (`hub.mcp.lean`) reads a request: a POST's body once, within the SDK's limit, the JSON-RPC
request in it, and a protocol version header no path serves."""

from __future__ import annotations

from typing import Any

import mcp_types as types
import orjson
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, AuthorizationContext, authorization_context
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from starlette.types import Message, Receive, Scope

from hub.mcp.lines import exact_json

SUPPORTED_VERSIONS = (*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS)
_VERSION_HEADER = MCP_PROTOCOL_VERSION_HEADER.lower().encode()


def unsupported_version(scope: Scope) -> bytes | None:
    """The body of the 400 answer to a request whose `MCP-Protocol-Version` header names a version no path serves
    (the SDK takes any such request down the 2026-07-28 path, which answered that `params._meta` lacked the version);
    None when the header is absent or served. The code and `data` are the SDK's for the 2026 era's refusal."""
    version = next((v.decode("latin-1") for k, v in scope["headers"] if k == _VERSION_HEADER), None)
    if version is None or version in SUPPORTED_VERSIONS:
        return None
    shown = version[:100]
    message = f"Unsupported protocol version {shown!r} (supported: {', '.join(SUPPORTED_VERSIONS)})."
    data = {"supported": list(MODERN_PROTOCOL_VERSIONS), "requested": shown}
    error = {"code": types.UNSUPPORTED_PROTOCOL_VERSION, "message": message, "data": data}
    return orjson.dumps({"jsonrpc": "2.0", "id": None, "error": error})


def requestor_of(scope: Scope) -> AuthorizationContext | None:
    """Whom the SDK binds a session to: the `AuthenticatedUser` in the scope (`hub.mcp.guards.session_owner`)."""
    user = scope.get("user")
    return authorization_context(user) if isinstance(user, AuthenticatedUser) else None


def peek(body: bytes) -> dict[str, Any] | None:
    """`body`'s JSON object, None if it is none; read by orjson, or as the SDK reads it where orjson would not
    keep a number exact (`hub.mcp.lines.inexact`)."""
    try:
        message = exact_json(body)
    except ValueError:  # orjson.JSONDecodeError is one
        return None
    return message if isinstance(message, dict) else None  # pyright: ignore[reportUnknownVariableType]


def request_of(body: dict[str, Any]) -> types.JSONRPCRequest | None:
    """`body` as the JSON-RPC request it is, None if it is none (a notification, `"id": null`, a bad shape).

    A body of exactly the types the request model takes is built as that model (the union adapter tries every
    message type first); anything else, a float id or a non-object `params` for one, is left to the adapter."""
    request_id, method, params = body.get("id"), body.get("method"), body.get("params")
    plain_id = type(request_id) is int or type(request_id) is str  # not a bool, a float or null
    plain = type(method) is str and (params is None or type(params) is dict) and "error" not in body
    if body.get("jsonrpc") == "2.0" and plain_id and plain:  # with an "error", the adapter makes it a JSONRPCError
        return types.JSONRPCRequest(jsonrpc="2.0", id=request_id, method=method, params=params)  # pyright: ignore[reportArgumentType]
    try:
        message = types.jsonrpc_message_adapter.validate_python(body, by_name=False)
    except ValueError:
        return None
    return message if isinstance(message, types.JSONRPCRequest) else None


async def read_body(receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    """The request's body if it came whole within `limit` bytes (else None), and a `receive` that gives what was
    read again first (the SDK's path, taken after all, reads the body itself and answers an oversized one 413)."""
    chunks: list[bytes] = []
    size, more, trailing = 0, True, None
    while more and size <= limit:
        message = await receive()
        if message["type"] != "http.request":
            trailing = message  # the client went away mid-body
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        more = message.get("more_body", False)
    body = b"".join(chunks)
    read: list[Message] = [{"type": "http.request", "body": body, "more_body": more}] if chunks else []
    read += [trailing] if trailing is not None else []

    async def replay() -> Message:
        return read.pop(0) if read else await receive()

    return (body if not more and trailing is None and size <= limit else None), replay


def declared(length: bytes) -> int:
    """A Content-Length as the SDK's body limit reads it (`int()`; what is no number declares nothing)."""
    try:
        return int(length)
    except ValueError:
        return 0
