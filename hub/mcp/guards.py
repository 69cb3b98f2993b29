"""What the hub adds around the SDK's HTTP transports: sessions bound to a key, JSON-RPC error bodies, quiet logs.

- Each streamable HTTP and SSE session belongs to the key that opened it: the SDK compares the `AuthenticatedUser` in
  the ASGI scope with the session's creator and answers any other key as if the session did not exist (404).
- The SDK's transports answer some failures in plain text (`Invalid Content-Type header`, `session_id is required`,
  `Could not find session`, a bare 405 or 406); `JsonRpcErrors` rewrites each into a JSON-RPC error with the same
  status. (`Invalid HTTP request received.` comes from uvicorn's HTTP parser before any application code runs, so it
  stays plain text.)
- A body that is JSON but no JSON-RPC message MCP takes (`jsonrpc` other than "2.0", a method that is no string, an
  id that is neither a string nor an integer, a batch, ...) is answered -32600 Invalid Request (`refusal`; params
  that are no object: -32602), not the SDK's -32602 with a pydantic dump, nor taken for a notification (a request
  with a float or null id got 202 and was never answered). `/mcp` refuses in `hub.mcp.lean`; the SDK's SSE endpoint
  is judged here (`JsonRpcErrors`), where malformed JSON stays -32700.
- Session ids are bearer-like secrets for the key that owns them: the SDK (and the hub) may log them at INFO and
  WARNING, so `RedactSessionIds` blanks them out of those records (DEBUG keeps them, for debugging one's own
  deployment). The SDK's ERROR traceback for each invalid message on `/sse` becomes one DEBUG line
  (`QuietRefusals`): any client could flood the log with it.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeGuard

import anyio
import mcp_types as types
import orjson
import pydantic_core
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.sse import SseServerTransport
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.accounts.auth import Principal
from hub.mcp.lines import exact_json
from hub.mcp.session_end import SDK_HTTP_LOGGER, QuietEndedSessions

REDACTED_LOGGERS = ("mcp.server.streamable_http_manager", "mcp.server.streamable_http", "mcp.server.sse",
                    "mcp.client.streamable_http", "uvicorn.access", "toolhub.mcp")  # fmt: skip
"""The SDK's transports (the client's too: an upstream's session id, "Received session ID: ..." at INFO), uvicorn's
access log (`toolhub serve --access-log`: `/sse/messages/?session_id=...`) and the hub's own MCP logger (a filter
sees only the records of the logger it is on, not of its children)."""
SDK_SSE_LOGGER = "mcp.server.sse"
SDK_SSE_REFUSAL = "Failed to parse message"
"""What the SDK's SSE endpoint logs, with a traceback at ERROR, for a body it cannot validate."""
logger = logging.getLogger("toolhub.mcp")
_SESSION_ID = re.compile(
    r"\b[0-9a-fA-F]{32}\b|\b[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\b"
    r"|(?<=session ID: )\S+"
)  # an upstream's id may have any form: the SDK's words name it


def session_owner(principal: Principal) -> AuthenticatedUser:
    """The identity the SDK binds a session to: the virtual key's id, or the master key (or an open gateway)."""
    if principal.key_id is not None:
        return _user(f"key:{principal.key_id}")
    return _user("master" if principal.is_master else "open")


@functools.lru_cache(maxsize=4096)
def _user(owner: str) -> AuthenticatedUser:
    """One (read-only) user per owner: building the pydantic token costs ~3 us per request otherwise."""
    return AuthenticatedUser(AccessToken(token="", client_id=owner, scopes=[]))


@dataclass(frozen=True)
class Refusal:
    """The JSON-RPC error that answers a body which is JSON but no message MCP takes."""

    code: int
    message: str
    id: int | str | None = None
    """The message's id when it has a valid one (null otherwise, as JSON-RPC 2.0 asks)."""

    def body(self) -> bytes:
        return orjson.dumps({"jsonrpc": "2.0", "id": self.id, "error": {"code": self.code, "message": self.message}})


def refusal(value: Any) -> Refusal | None:
    """Why the parsed JSON `value` is no message the SDK should take, None if it is one (module docstring)."""
    if isinstance(value, list):  # 2025-06-18 removed batching; the SDK never took a batch, 2025-03-26 sessions neither
        return _invalid("batches are not supported")
    if not isinstance(value, dict):
        return _invalid("a message is a JSON object")
    if value.get("jsonrpc") != "2.0":
        return _invalid('"jsonrpc" must be "2.0"')
    if "method" not in value:  # the client's answer to a request of the server's: the SDK's adapter judges it
        return None if _answer(value) else _invalid("neither a request, a notification nor a response")
    if not isinstance(value["method"], str):
        return _invalid('"method" must be a string')
    request_id = value.get("id")
    if "id" in value and not valid_id(request_id):
        return _invalid('"id" must be a string or an integer')
    params = value.get("params")
    if params is not None and not isinstance(params, dict):
        return Refusal(types.INVALID_PARAMS, 'Invalid params: "params" must be an object', request_id)
    return None


NOT_JSON = object()
"""What `read_json` gives for a body that is not JSON (the SDK answers it -32700)."""


def read_json(body: bytes) -> Any:
    """`body` read exactly (`hub.mcp.lines.exact_json`), else as the SDK reads it (pydantic_core takes `NaN` too);
    `NOT_JSON` if it is no JSON."""
    try:
        return exact_json(body)
    except ValueError:  # orjson.JSONDecodeError is one
        pass
    try:
        return pydantic_core.from_json(body)
    except ValueError:
        return NOT_JSON


def valid_id(request_id: object) -> TypeGuard[int | str]:
    """Whether `request_id` is an MCP request id: a string or an integer (JSON-RPC's float ids and null are not)."""
    return type(request_id) is str or type(request_id) is int  # a bool is no integer here


def _invalid(reason: str) -> Refusal:
    return Refusal(types.INVALID_REQUEST, f"Invalid Request: {reason}")


def _answer(value: Any) -> bool:
    try:
        message = types.jsonrpc_message_adapter.validate_python(value, by_name=False)
    except ValueError:  # pydantic's ValidationError is one
        return False
    return isinstance(message, types.JSONRPCResponse | types.JSONRPCError)


class _Judge:
    """The body of a POST to the SDK's SSE endpoint, judged as it passes (the SDK reads it whole, within its limit,
    before its Host/Origin and session checks, which keep their order). A body that is JSON but `refusal`'s reaches
    the SDK with a NUL byte after it, so that the SDK refuses it ("Could not parse message"), which `verdict` then
    answers, instead of taking it for a notification."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._chunks: list[bytes] = []
        self.verdict = Refusal(types.PARSE_ERROR, "Could not parse message")

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] != "http.request":
            return message
        self._chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return message
        parsed = read_json(b"".join(self._chunks))
        found = None if parsed is NOT_JSON else refusal(parsed)
        if found is None:
            return message
        self.verdict = found
        return {**message, "body": message.get("body", b"") + b"\x00"}


class JsonRpcErrors:
    """ASGI wrapper: a 4xx/5xx answer that is not JSON becomes a JSON-RPC error body with the same status; a POST to
    the SDK's SSE endpoint has its body judged (`_Judge`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.judges = isinstance(getattr(app, "__self__", None), SseServerTransport)
        """Whether `app` is the SDK's SSE message endpoint (a method of its transport)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        judge = _Judge(receive) if self.judges and scope.get("method") == "POST" else None
        start: Message | None = None
        body = bytearray()

        started = False

        async def rewrite(message: Message) -> None:
            nonlocal start, started
            started = True
            if message["type"] == "http.response.start" and message["status"] >= 400 and not _is_json(message):
                start = message
            elif start is not None and message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    await _send_error(send, start, bytes(body), judge)
            else:
                await send(message)

        try:
            await self.app(scope, receive if judge is None else judge.receive, rewrite)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            if not self.judges:
                raise
            # The SSE session's stream closed under the POST (its GET stream is ending): the SDK answers 202 (or 400)
            # before it hands the message over, so it is dropped with the session, as a message after the close is.
            logger.debug("MCP SSE: a message for a closing session was dropped")
            if not started:
                await _send_error(send, {"status": 404}, b"Could not find session", None)


def _is_json(start: Message) -> bool:
    for name, value in start.get("headers", []):
        if name.lower() == b"content-type":
            return value.split(b";")[0].strip().lower() in (b"application/json", b"text/event-stream")
    return False


async def _send_error(send: Send, start: Message, text: bytes, judge: _Judge | None) -> None:
    status = int(start["status"])
    message = text.decode("utf-8", "replace").strip() or HTTPStatus(status).phrase
    if message == "Could not parse message":  # the SDK's SSE endpoint: the body is bad JSON, or judged bad
        body = (judge.verdict if judge is not None else Refusal(types.PARSE_ERROR, message)).body()
    else:
        body = Refusal(types.INVALID_REQUEST, message).body()
    kept = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-type", b"content-length")]
    headers = [*kept, (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RedactSessionIds(logging.Filter):
    """Blanks session ids out of records at INFO and above, in the message and in its arguments (uvicorn's access
    formatter reads the arguments, so they keep their number and order). An argument that is no string, such as the
    `uuid.UUID` the SDK's SSE transport logs, is redacted when its text holds a session id; numbers are kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.INFO:
            if isinstance(record.msg, str):
                record.msg = _redact(record.msg)
            if isinstance(record.args, tuple):
                record.args = tuple(_redact_arg(a) for a in record.args)
        return True


def _redact_arg(arg: object) -> object:
    if isinstance(arg, str):
        return _redact(arg)
    if arg is None or isinstance(arg, int | float):  # what `%d` and `%f` format: no session id
        return arg
    text = str(arg)
    return _redact(text) if _SESSION_ID.search(text) else arg


def _redact(text: str) -> str:
    return _SESSION_ID.sub("<session id>", text)


class QuietRefusals(logging.Filter):
    """The SDK's SSE endpoint logs each body it cannot validate at ERROR with a traceback: that record becomes one
    line at DEBUG (dropped unless its logger is enabled for DEBUG: handlers do not check their loggers' levels)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != SDK_SSE_LOGGER or record.msg != SDK_SSE_REFUSAL:
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        record.exc_info, record.exc_text = None, None
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def redact_session_ids() -> None:
    """Install `RedactSessionIds` on the loggers that may log session ids, `QuietRefusals` on the SDK's SSE one,
    `QuietEndedSessions` on its streamable HTTP one (once)."""
    for name in REDACTED_LOGGERS:
        _install(logging.getLogger(name), RedactSessionIds)
    _install(logging.getLogger(SDK_SSE_LOGGER), QuietRefusals)
    _install(logging.getLogger(SDK_HTTP_LOGGER), QuietEndedSessions)


def _install(log: logging.Logger, kind: type[logging.Filter]) -> None:
    if not any(isinstance(f, kind) for f in log.filters):
        log.addFilter(kind())
