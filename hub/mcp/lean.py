"""A leaner `/mcp` hop: a request that cannot cause server-to-client messages is answered with one JSON body.

The SDK's stateful streamable HTTP transport answers every request POST with an event stream (a task, memory
streams and several writes per answer). The spec lets a server answer with `application/json` instead, which the
transport does only for whole sessions (losing progress, logs and server requests). `LeanTransport` decides per
request, and takes the JSON path only when the answer is all the client can get:

- in a session whose client declared no sampling, elicitation or roots capability and never sent
  `logging/setLevel` (so it expects no requests and asked for no logs):
- the lists the hub answers from its catalog (`tools/list`, `resources/list`, `resources/templates/list`,
  `prompts/list`) and `ping`;
- `tools/call` without a `progressToken`, of a tool whose upstream declares no `logging` capability (`quiet`).

`tasks/get`, `tasks/list` and `tasks/cancel` (`hub.mcp.task_relay`) take the JSON path in every session: the client
polls, and the tasks spec asks servers not to answer a poll with an event stream.

Everything else takes the SDK's event-stream path unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from http import HTTPStatus
from typing import Any
from uuid import uuid4

import anyio
import mcp_types as types
import orjson
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.auth.middleware.bearer_auth import AuthorizationContext
from mcp.server.connection import Connection
from mcp.server.runner import ServerRunner, aclose_shielded
from mcp.server.streamable_http import (
    REQUEST_CANCELLED,
    REQUEST_STREAM_BUFFER_SIZE,
    EventMessage,
    StreamableHTTPServerTransport,
    check_accept_headers,
)
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager, _send_and_report_status
from mcp.shared.dispatcher import coerce_request_id
from mcp.shared.jsonrpc_dispatcher import (
    JSONRPCDispatcher,
    _InFlight,
    _JSONRPCDispatchContext,
    handler_exception_to_error_data,
)
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from mcp.shared.transport_context import TransportContext
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

logger = logging.getLogger("toolhub.mcp")

LISTS = frozenset(("tools/list", "resources/list", "resources/templates/list", "prompts/list", "ping"))
_ASKING = ("sampling", "elicitation", "roots")
TASK_POLLS = frozenset(("tasks/get", "tasks/list", "tasks/cancel"))


class LeanTransport(StreamableHTTPServerTransport):
    """The SDK's stateful transport, answering plain requests with one JSON body (module docstring)."""

    interactive = True
    """Whether the client may be sent requests or logs; learnt from its `initialize` and `logging/setLevel`."""
    quiet: Callable[[str], bool] = staticmethod(lambda name: False)
    """Whether a call of this tool can send nothing but its answer (set by `LeanSessionManager`)."""

    kernel: Kernel | None = None
    """The session's request kernel while its server runs (set by `LeanSessionManager`)."""

    async def _handle_post_request(self, scope: Scope, request: Request, receive: Receive, send: Send) -> None:
        message = _peek(await request.body())  # Starlette keeps the body: the SDK's path reads it again
        if message is not None and self._plain(message):
            await self._answer_json(message, scope, request, receive, send)
            return
        if message is not None and "method" in message and self._event_store is None:
            receive = self._abandoning(receive, message.get("id"))
        await super()._handle_post_request(scope, request, receive, send)

    def _abandoning(self, receive: Receive, request_id: Any) -> Receive:
        """`receive`, cancelling the request when its event stream's client disconnects. The SDK keeps handling it
        (the spec's "disconnection SHOULD NOT be interpreted as cancelling" assumes a resumable stream), but without
        an event store its answer can reach nobody: the SDK drops it ("Request stream not found")."""

        async def watched() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect" and (kernel := self.kernel) is not None:
                kernel.abandon(request_id)
            return message

        return watched

    def _plain(self, message: dict[str, Any]) -> bool:
        method, params = message.get("method"), message.get("params")
        params = params if isinstance(params, dict) else {}
        if method == "initialize":
            capabilities = params.get("capabilities")
            capabilities = capabilities if isinstance(capabilities, dict) else {}
            self.interactive = any(capabilities.get(name) is not None for name in _ASKING)
        elif method == "logging/setLevel":
            self.interactive = True
        if "id" not in message or self.mcp_session_id is None or not isinstance(method, str):
            return False  # a method that is no string (a list is unhashable) is the SDK's to refuse
        if method in TASK_POLLS:
            return True
        if self.interactive:
            return False
        if method in LISTS:
            return True
        meta = params.get("_meta")
        if method != "tools/call" or (isinstance(meta, dict) and meta.get("progressToken") is not None):
            return False
        name = params.get("name")
        return isinstance(name, str) and self.quiet(name)

    async def _answer_json(self, body: dict[str, Any], scope: Scope, request: Request, receive: Receive,
                           send: Send) -> None:  # fmt: skip
        has_json, _ = check_accept_headers(request)
        if self._read_stream_writer is None or not has_json or not self._check_content_type(request):
            await super()._handle_post_request(scope, request, receive, send)  # its own errors
            return
        try:
            message = types.jsonrpc_message_adapter.validate_python(body, by_name=False)
        except ValueError:
            await super()._handle_post_request(scope, request, receive, send)
            return
        if not isinstance(message, types.JSONRPCRequest):  # e.g. `"id": null` validates as a notification
            await super()._handle_post_request(scope, request, receive, send)
            return
        if not await self._validate_request_headers(request, send):
            return
        metadata = ServerMessageMetadata(
            request_context=request,
            can_send_request=False,
            on_request_unanswered=partial(self._terminate_unanswered_request, message.id),
        )
        kernel = self.kernel
        if kernel is not None:
            answer = await kernel.answer(message, metadata, receive)
        else:
            answer = await self._through_streams(message, metadata)
        if answer is None:
            response = self._create_error_response(
                "Session terminated before the request completed", HTTPStatus.INTERNAL_SERVER_ERROR,
                types.INTERNAL_ERROR,
            )  # fmt: skip
        else:
            response = self._create_json_response(answer)
        await response(scope, receive, send)

    async def _through_streams(self, message: types.JSONRPCRequest, metadata: ServerMessageMetadata) -> Answer | None:
        """The request through the session's streams and dispatcher task (before the kernel is known)."""
        writer = self._read_stream_writer
        assert writer is not None
        request_id = str(message.id)
        send_stream, receive_stream = self._request_streams[request_id] = _streams()
        try:
            await writer.send(SessionMessage(message, metadata=metadata))
            async for event in receive_stream:  # the answer; anything related to the request has no wire here
                if isinstance(event.message, types.JSONRPCResponse | types.JSONRPCError):
                    return event.message
            return None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
            return None  # the session ended meanwhile: "Session terminated", as the SDK's JSON mode answers
        finally:
            send_stream.close()
            await self._clean_up_memory_streams(request_id)


Answer = types.JSONRPCResponse | types.JSONRPCError


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
        # One bare task, as `hub.gateway.chat.until_disconnect` watches (an anyio task group costs more CPU); the
        # request runs on in this task under its own scope, which the watcher cancels.
        watcher = None if receive is None else asyncio.get_running_loop().create_task(_abandon(receive, dctx, scope))
        answer: Answer | None = None
        try:
            with scope:
                answer = await self._run(request, dctx)
        finally:
            if watcher is not None:
                watcher.cancel()
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


async def _abandon(receive: Receive, dctx: _JSONRPCDispatchContext[TransportContext], scope: anyio.CancelScope) -> None:
    """Cancel the request when its client disconnects, as if it had sent `notifications/cancelled`."""
    while (await receive())["type"] != "http.disconnect":
        pass
    dctx.cancel_requested.set()
    scope.cancel()


def _peek(body: bytes) -> dict[str, Any] | None:
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return message if isinstance(message, dict) else None  # pyright: ignore[reportUnknownVariableType]


def _streams() -> tuple[MemoryObjectSendStream[EventMessage], MemoryObjectReceiveStream[EventMessage]]:
    return anyio.create_memory_object_stream[EventMessage](REQUEST_STREAM_BUFFER_SIZE)


class LeanSessionManager(StreamableHTTPSessionManager):
    """The SDK's session manager with `LeanTransport` sessions; `quiet(tool)` as in `LeanTransport.quiet`."""

    def __init__(self, app: Any, *, quiet: Callable[[str], bool], session_prefix: str = "", **options: Any) -> None:
        super().__init__(app, **options)
        self._quiet = quiet
        self.session_prefix = session_prefix
        """Starts every session id: the replica's id when sessions are forwarded between replicas (hub/mcp/forward)."""

    def holds(self, session_id: str) -> bool:
        """Whether this manager has the session open (an unknown id may belong to another replica)."""
        return session_id in self._server_instances

    def _admit_session(self, requestor: AuthorizationContext | None) -> StreamableHTTPServerTransport | None:
        if self.max_sessions is not None and len(self._server_instances) >= self.max_sessions:
            return None
        transport = LeanTransport(
            mcp_session_id=f"{self.session_prefix}{uuid4().hex}",
            is_json_response_enabled=self.json_response,
            event_store=self.event_store,
            security_settings=self.security_settings,
            retry_interval=self.retry_interval,
            idle_timeout=self.session_idle_timeout,
        )
        transport.quiet = self._quiet
        assert transport.mcp_session_id is not None
        if requestor is not None:
            self._session_owners[transport.mcp_session_id] = requestor
        self._server_instances[transport.mcp_session_id] = transport
        logger.info("Created new transport with session ID: %s", transport.mcp_session_id)
        return transport

    async def _serve_opening_request(self, http_transport: StreamableHTTPServerTransport, scope: Scope,
                                     receive: Receive, send: Send) -> None:  # fmt: skip
        """The SDK's method (mcp 2.3), serving the session with `_serve` so its transport knows the kernel."""
        session_id = http_transport.mcp_session_id
        assert session_id is not None and isinstance(http_transport, LeanTransport)

        async def run_server(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
            async with http_transport.connect() as (read_stream, write_stream):
                task_status.started()
                try:
                    idle_scope = http_transport.idle_scope or anyio.CancelScope()
                    with idle_scope:
                        await self._serve(http_transport, read_stream, write_stream, session_id)
                    if idle_scope.cancelled_caught:
                        logger.info("Session %s idle timeout", session_id)
                except Exception:
                    logger.exception("Session %s crashed", session_id)
                finally:
                    await self._discard_session(session_id, http_transport)

        established = False
        try:
            assert self._task_group is not None
            await self._task_group.start(run_server)
            status = await _send_and_report_status(http_transport.handle_request, scope, receive, send)
            established = status is not None and status < 400
        finally:
            if not established:
                await self._discard_session(session_id, http_transport)

    async def _serve(self, transport: LeanTransport, read_stream: Any, write_stream: Any, session_id: str) -> None:
        """`mcp.server.runner.serve_loop`, keeping the session's dispatcher and runner as `transport.kernel`."""
        dispatcher = JSONRPCDispatcher[TransportContext](read_stream, write_stream,
                                                         inline_methods=frozenset({"initialize"}))  # fmt: skip
        connection = Connection.for_loop(dispatcher, session_id=session_id)
        runner = ServerRunner(self.app, connection, self._lifespan_state)
        kernel = transport.kernel = Kernel(dispatcher, runner)
        try:
            await dispatcher.run(runner.on_request, runner.on_notify)
        finally:
            transport.kernel = None
            kernel.stop()
            await aclose_shielded(connection)
