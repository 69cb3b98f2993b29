"""A session's request kernel run inline in the HTTP request's task (`hub.mcp.lean`), and the answer's bytes."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import anyio
import mcp_types as types
import orjson
from mcp.server.runner import ServerRunner
from mcp.server.streamable_http import REQUEST_CANCELLED
from mcp.shared.dispatcher import coerce_request_id
from mcp.shared.jsonrpc_dispatcher import (
    JSONRPCDispatcher,
    _InFlight,
    _JSONRPCDispatchContext,
    handler_exception_to_error_data,
)
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from starlette.types import Receive

logger = logging.getLogger("toolhub.mcp")

Answer = types.JSONRPCResponse | types.JSONRPCError
WATCH_AFTER = 0.002
"""Seconds a plain request runs before its client's disconnect is watched for (`_Watcher`)."""


class Kernel:
    """A session's dispatcher and request kernel, so that a plain request is handled in its own HTTP task.

    The SDK's path hands each request to the session's dispatcher task through memory streams, spawns a task to
    handle it and routes the answer back through two more streams: about 0.2 ms of CPU per request, which is most
    of what `/mcp` adds to a call (bench/mcp_cpu.py). `answer` runs the same kernel (`ServerRunner.on_request`:
    validation, middleware, handler, serialisation) inline and keeps the dispatcher's rules: the request is in
    flight for `notifications/cancelled` (a cancelled request is answered `REQUEST_CANCELLED`, as the 2025 transport
    does), a handler's exception becomes the same JSON-RPC error, and nothing related to the request (progress,
    logs, requests to the client) has a wire, as on the JSON path before.

    A client that disconnects cancels the request as `notifications/cancelled` would: uvicorn does not cancel the
    app's task, so without a watcher on `receive` the upstream call ran on until `call_timeout`. Cancelling the
    handler makes the SDK client send the upstream its own `notifications/cancelled` ("caller cancelled").
    """

    def __init__(self, dispatcher: JSONRPCDispatcher[TransportContext], runner: ServerRunner[Any]) -> None:
        self.dispatcher = dispatcher
        self.runner = runner
        self._scopes: set[anyio.CancelScope] = set()

    async def answer(self, request: types.JSONRPCRequest, metadata: ServerMessageMetadata,
                     receive: Receive | None = None) -> Answer | None:  # fmt: skip
        """The answer to `request`; None if the session ended first. A disconnect seen on `receive` (the HTTP
        request's, its body read) cancels it."""
        dctx = _JSONRPCDispatchContext(transport=TransportContext(kind="jsonrpc", can_send_request=False),
                                       _dispatcher=self.dispatcher, _request_id=request.id,
                                       message_metadata=metadata)  # fmt: skip
        dctx.close()  # its notifications are dropped: this answer is the whole response
        scope = anyio.CancelScope()
        key = coerce_request_id(request.id)
        in_flight = self.dispatcher._in_flight  # pyright: ignore[reportPrivateUsage]
        in_flight[key] = entry = _InFlight(scope=scope, dctx=dctx)
        self._scopes.add(scope)
        watcher = None if receive is None else _Watcher(receive, dctx, scope)
        answer: Answer | None = None
        try:
            with scope:
                answer = await self._run(request, dctx)
        finally:
            if watcher is not None:
                watcher.stop()
            self._scopes.discard(scope)
            if in_flight.get(key) is entry:
                del in_flight[key]
        if dctx.cancel_requested.is_set():
            error = types.ErrorData(code=REQUEST_CANCELLED, message="Request cancelled")
            return types.JSONRPCError(jsonrpc="2.0", id=request.id, error=error)
        return answer

    async def _run(self, request: types.JSONRPCRequest, dctx: _JSONRPCDispatchContext[TransportContext]) -> Answer:
        try:
            result = await self.runner.on_request(dctx, request.method, request.params)
        except Exception as exc:  # as JSONRPCDispatcher._handle_request answers it
            error = handler_exception_to_error_data(exc)
            if error is None:
                logger.exception("handler for %r raised", request.method)
                error = types.ErrorData(code=0, message=str(exc))
            return types.JSONRPCError(jsonrpc="2.0", id=request.id, error=error)
        return types.JSONRPCResponse(jsonrpc="2.0", id=request.id, result=result)

    def abandon(self, request_id: Any) -> None:
        """Cancel a request in flight as `notifications/cancelled` does (its client is gone)."""
        if not isinstance(request_id, str | int) or isinstance(request_id, bool):
            return
        entry = self.dispatcher._in_flight.get(coerce_request_id(request_id))  # pyright: ignore[reportPrivateUsage]
        if entry is not None:
            entry.dctx.cancel_requested.set()
            entry.scope.cancel()

    def stop(self) -> None:
        """The session ended: cancel the requests still being handled (they answer "Session terminated")."""
        for scope in self._scopes:
            scope.cancel()


class _Watcher:
    """Watches `receive` for the client's disconnect once the request has run `WATCH_AFTER` seconds.

    One bare task, as `hub.gateway.chat.until_disconnect` watches (an anyio task group costs more CPU); the request
    runs on in its own task under its own scope, which the watcher cancels. Most calls are answered before the task
    would even start (a task costs ~15 us of CPU a call, the timer ~2): a client that left meanwhile is seen as soon
    as the watcher starts, since uvicorn keeps the disconnect for the next `receive`."""

    def __init__(self, receive: Receive, dctx: _JSONRPCDispatchContext[TransportContext],
                 scope: anyio.CancelScope) -> None:  # fmt: skip
        self.loop = asyncio.get_running_loop()
        self.task: asyncio.Task[None] | None = None
        self.timer = self.loop.call_later(WATCH_AFTER, self._start, receive, dctx, scope)

    def _start(self, receive: Receive, dctx: _JSONRPCDispatchContext[TransportContext],
               scope: anyio.CancelScope) -> None:  # fmt: skip
        self.task = self.loop.create_task(_abandon(receive, dctx, scope))

    def stop(self) -> None:
        self.timer.cancel()
        if self.task is not None:
            self.task.cancel()


async def _abandon(receive: Receive, dctx: _JSONRPCDispatchContext[TransportContext], scope: anyio.CancelScope) -> None:
    """Cancel the request when its client disconnects, as if it had sent `notifications/cancelled`."""
    while (await receive())["type"] != "http.disconnect":
        pass
    dctx.cancel_requested.set()
    scope.cancel()


def encode(answer: Answer) -> bytes:
    """The answer's JSON body, as `model_dump_json(by_alias=True, exclude_unset=True)` writes it.

    A result is the runner's wire dict already (`ServerRunner` dumps it in JSON mode), so orjson writes it without a
    second pass through pydantic; what orjson refuses (an integer over 64 bits) goes through pydantic as before."""
    if isinstance(answer, types.JSONRPCResponse):
        try:
            return orjson.dumps({"jsonrpc": "2.0", "id": answer.id, "result": answer.result})
        except orjson.JSONEncodeError:
            pass
    return answer.model_dump_json(by_alias=True, exclude_unset=True).encode()
