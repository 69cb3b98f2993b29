"""An answer for each request in flight when its `/mcp` session ends (a DELETE, its idle timeout).

The SDK's transport closes the session's streams under its requests: on the JSON path a request got a 500 with id
null; on the event-stream path a request whose message could no longer be handed over had its response cut off
mid-way (the client saw the connection drop, the log two ERROR tracebacks), and one whose handler was cut off got
a stream that ended without an answer. Each now gets its JSON-RPC error, with its own id, in a whole HTTP answer:
a 404 JSON body (what a request that comes after the DELETE gets), or, on an event stream already begun, one last
event (`Ending`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import anyio
import mcp_types as types
from sse_starlette import ServerSentEvent
from starlette.types import Message, Send

SESSION_ENDED = "Session terminated before the request completed"
SDK_HTTP_LOGGER = "mcp.server.streamable_http"
SDK_ERRORS = ("SSE response error", "Error handling POST request")
"""What the SDK logs, with a traceback at ERROR, when a message cannot be handed to its ended session."""


def ended_error(request_id: types.RequestId | None) -> types.JSONRPCError:
    error = types.ErrorData(code=types.INVALID_REQUEST, message=SESSION_ENDED)
    return types.JSONRPCError(jsonrpc="2.0", id=request_id, error=error)


def _body(request_id: types.RequestId | None) -> bytes:
    return ended_error(request_id).model_dump_json(by_alias=True, exclude_unset=True).encode()


async def send_json(send: Send, body: bytes, session_id: str | None, status: int = 200) -> None:
    """What the SDK's `_create_json_response(answer)` sends, headers in its order, without a Starlette `Response`."""
    headers = [(b"content-type", b"application/json")]
    if session_id:
        headers.append((b"mcp-session-id", session_id.encode("latin-1")))
    headers.append((b"content-length", str(len(body)).encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_ended(send: Send, request_id: types.RequestId, session_id: str | None) -> None:
    """The 404 JSON answer of a request whose session ended before it was answered."""
    await send_json(send, _body(request_id), session_id, HTTPStatus.NOT_FOUND)


class Ending:
    """The ASGI `send` of one message's answer on the SDK's path, which completes it if its session ends first:
    before an event stream's end it adds the request's error event when no answer went out (`answered`), a second
    response the SDK tries after a whole one (its 500 for a message it could not hand over) goes nowhere, and
    `finish` ends a response the SDK left unfinished, or answers 404 when it sent nothing. `request_id` is None for
    a notification."""

    def __init__(self, send: Send, request_id: types.RequestId | None, ended: Callable[[], bool],
                 answered: Callable[[], bool]) -> None:  # fmt: skip
        self._send = send
        self._id = request_id
        self._ended = ended
        self._answered = answered
        self._started = False
        self._stream = False
        self._done = False

    async def __call__(self, message: Message) -> None:
        if self._done and self._ended():
            return
        if message["type"] == "http.response.start":
            self._started = True
            self._stream = any(k.lower() == b"content-type" and v.startswith(b"text/event-stream")
                               for k, v in message.get("headers", []))  # fmt: skip
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            if self._stream and self._id is not None and self._ended() and not self._answered():
                await self._send({"type": "http.response.body", "body": self._event(self._id), "more_body": True})
            self._done = True
        await self._send(message)

    @staticmethod
    def _event(request_id: types.RequestId) -> bytes:
        return ServerSentEvent(data=_body(request_id).decode(), event="message").encode()

    async def finish(self, session_id: str | None) -> None:
        """After the SDK's handling: complete a response its ended session left unfinished."""
        if self._done or not self._ended():
            return
        if not self._started:
            await send_json(self._send, _body(self._id), session_id, HTTPStatus.NOT_FOUND)
            return
        await self({"type": "http.response.body", "body": b"", "more_body": False})


class QuietEndedSessions(logging.Filter):
    """The SDK's ERROR traceback for a message its ended session could no longer take becomes one DEBUG line (the
    message itself is answered, `Ending`): any client could flood the log by ending its sessions."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != SDK_HTTP_LOGGER or record.msg not in SDK_ERRORS or not _closed(record.exc_info):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        record.exc_info, record.exc_text = None, None
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def _closed(exc_info: Any) -> bool:
    """Whether the logged exception is (a group of nothing but) a closed or broken stream."""
    exc = exc_info[1] if isinstance(exc_info, tuple) else None
    if isinstance(exc, BaseExceptionGroup):
        return all(_closed((None, e)) for e in exc.exceptions)  # pyright: ignore[reportUnknownVariableType, reportUnknownMemberType]
    return isinstance(exc, anyio.ClosedResourceError | anyio.BrokenResourceError)
