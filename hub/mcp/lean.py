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

Everything else takes the SDK's event-stream path unchanged, but for a body that is JSON and no message MCP takes,
which is refused -32600 (`hub.mcp.guards.refusal`) where the SDK's adapter would answer -32602 with a pydantic dump,
or take a request with a float or null id for a notification (202, never answered).

A POST on an open session skips the SDK's outer layers (`LeanSessionManager.handle_request`): the manager's checks
are made on the raw headers and the body is read once; a plain request then goes from the Host/Origin checks to
`Kernel.answer`, whose answer is written with orjson and sent as two ASGI messages. Measured A/B in one process
(bench/mcp_cpu.py's setup), this saves ~20 us of CPU a call, the kernel's deferred disconnect watcher ~20 more; what
is left of the server side (~0.25-0.3 ms) is mostly Starlette, the app's middleware and the SDK's runner.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from functools import partial
from http import HTTPStatus
from typing import Any
from uuid import uuid4

import anyio
import mcp_types as types
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.connection import Connection
from mcp.server.runner import ServerRunner, aclose_shielded
from mcp.server.streamable_http import (
    MCP_SESSION_ID_HEADER,
    REQUEST_STREAM_BUFFER_SIZE,
    EventMessage,
    SSEEvent,
    StreamableHTTPServerTransport,
    check_accept_headers,
)
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager, _send_and_report_status
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from mcp.shared.transport_context import TransportContext
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from hub.mcp.admission import Refused, SessionLedger, opens_session, owner_of, request_id_of
from hub.mcp.guards import NOT_JSON, Refusal, read_json, refusal, valid_id
from hub.mcp.kernel import Answer, Kernel, encode
from hub.mcp.lean_body import declared, peek, read_body, request_of, requestor_of, unsupported_version
from hub.mcp.session_end import Ending, send_ended, send_json
from hub.mcp.streams import Forgetful

logger = logging.getLogger("toolhub.mcp")

LISTS = frozenset(("tools/list", "resources/list", "resources/templates/list", "prompts/list", "ping"))
_ASKING = ("sampling", "elicitation", "roots")
TASK_POLLS = frozenset(("tasks/get", "tasks/list", "tasks/cancel"))
PLAIN = "toolhub.mcp.plain"
"""Where `LeanSessionManager` leaves a plain request's parsed body for its transport, in the ASGI scope."""
MCP_SESSION_ID = MCP_SESSION_ID_HEADER.encode()
MCP_PROTOCOL_VERSION = MCP_PROTOCOL_VERSION_HEADER.lower().encode()
CONTENT_LENGTH = b"content-length"


class LeanTransport(StreamableHTTPServerTransport):
    """The SDK's stateful transport, answering plain requests with one JSON body (module docstring)."""

    interactive = True
    """Whether the client may be sent requests or logs; learnt from its `initialize` and `logging/setLevel`."""
    quiet: Callable[[str], bool] = staticmethod(lambda name: False)
    """Whether a call of this tool can send nothing but its answer (set by `LeanSessionManager`)."""

    kernel: Kernel | None = None
    """The session's request kernel while its server runs (set by `LeanSessionManager`)."""
    manager: LeanSessionManager | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._answered: set[str] = set()  # the requests (the SDK's keys) whose answer went onto their event stream

    def idle_since(self) -> float | None:
        """`hub.mcp.admission.Seat`, read off the SDK's idle deadline (infinite while a request or GET stream is on)."""
        scope, manager = self.idle_scope, self.manager
        if scope is None or manager is None or manager.session_idle_timeout is None or scope.deadline == math.inf:
            return None
        return scope.deadline - manager.session_idle_timeout

    def end(self) -> None:
        """`hub.mcp.admission.Seat`: ended by the hub to make room for another session."""
        if self.manager is not None:
            self.manager.end_session(self)

    async def _handle_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The SDK's, but a plain request the manager read (`PLAIN`) goes from the Host/Origin checks to its answer."""
        message = scope.pop(PLAIN, None)
        if message is None or self._terminated:
            await super()._handle_request(scope, receive, send)
            return
        request = Request(scope, receive)
        refused = await self._security.validate_request(request, is_post=True)
        if refused is not None:
            await refused(scope, receive, send)
            return
        await self._answer_json(message, scope, request, receive, send)

    async def _handle_post_request(self, scope: Scope, request: Request, receive: Receive, send: Send) -> None:
        parsed = read_json(await request.body())  # Starlette keeps the body: the SDK's path reads it again
        refused = None if parsed is NOT_JSON else refusal(parsed)
        if refused is not None:
            await self._refuse(refused, scope, request, receive, send)
            return
        message = parsed if isinstance(parsed, dict) else None
        if message is not None:
            self._learn(message)
        if message is not None and self.plain(message):
            await self._answer_json(message, scope, request, receive, send)
            return
        if message is not None and "method" in message and self._event_store is None:
            receive = self._abandoning(receive, message.get("id"))
        if message is None or "method" not in message:
            await super()._handle_post_request(scope, request, receive, send)
            return
        request_id = message["id"] if valid_id(message.get("id")) else None  # None: a notification
        key = str(request_id)  # the SDK's key of its streams
        if request_id is not None and key in self._request_streams:  # the SDK would take the first one's stream
            used = Refusal(types.INVALID_REQUEST, f"Invalid Request: id {request_id!r} is already in use", request_id)
            await self._refuse(used, scope, request, receive, send)
            return
        ending = Ending(send, request_id, lambda: self._terminated, lambda: key in self._answered)
        try:
            await super()._handle_post_request(scope, request, receive, ending)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            if not self._terminated:
                raise  # else its session ended under it: answered below (session_end.py)
        finally:
            self._answered.discard(key)
        await ending.finish(self.mcp_session_id)

    def _create_event_data(self, event_message: EventMessage) -> SSEEvent:  # notes each answer sent (`Ending`)
        if isinstance(event_message.message, types.JSONRPCResponse | types.JSONRPCError):
            self._answered.add(str(event_message.message.id))
        return super()._create_event_data(event_message)

    async def _refuse(self, refused: Refusal, scope: Scope, request: Request, receive: Receive, send: Send) -> None:
        """Answer `refused` where the SDK validates the message: after its Accept (406) and Content-Type checks."""
        if not await self._validate_accept_header(request, scope, send):
            return
        if not self._check_content_type(request):
            await super()._handle_post_request(scope, request, receive, send)  # its refusal
            return
        logger.debug("refused an invalid JSON-RPC message: %s", refused.message)
        await send_json(send, refused.body(), self.mcp_session_id, HTTPStatus.BAD_REQUEST)

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

    def _learn(self, message: dict[str, Any]) -> None:
        """Whether the client may be sent requests, from its `initialize` and `logging/setLevel` (never plain)."""
        method, params = message.get("method"), message.get("params")
        if method == "initialize":
            capabilities = params.get("capabilities") if isinstance(params, dict) else None
            capabilities = capabilities if isinstance(capabilities, dict) else {}
            self.interactive = any(capabilities.get(name) is not None for name in _ASKING)
        elif method == "logging/setLevel":
            self.interactive = True

    def plain(self, message: dict[str, Any]) -> bool:
        """Whether the JSON path answers `message` (module docstring)."""
        method, params = message.get("method"), message.get("params")
        params = params if isinstance(params, dict) else {}
        if "id" not in message or self.mcp_session_id is None or not isinstance(method, str):
            return False  # a method that is no string (a list is unhashable) is refused
        if refusal(message) is not None:  # a float id, for one: refused on the SDK's path (`_handle_post_request`)
            return False
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
        has_json, has_sse = check_accept_headers(request)
        accepted = has_json and (has_sse or self.is_json_response_enabled)  # else the SDK's 406, as it answers
        message = request_of(body)
        if self._read_stream_writer is None or not accepted or not self._check_content_type(request) or message is None:
            await super()._handle_post_request(scope, request, receive, send)  # its own errors and answers
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
        if answer is None:  # the session ended meanwhile (a DELETE, its idle timeout)
            await send_ended(send, message.id, self.mcp_session_id)
            return
        await send_json(send, encode(answer), self.mcp_session_id)

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


def _streams() -> tuple[MemoryObjectSendStream[EventMessage], MemoryObjectReceiveStream[EventMessage]]:
    return anyio.create_memory_object_stream[EventMessage](REQUEST_STREAM_BUFFER_SIZE)


class LeanSessionManager(StreamableHTTPSessionManager):
    """The SDK's session manager with `LeanTransport` sessions; `quiet(tool)` as in `LeanTransport.quiet`."""

    def __init__(self, app: Any, *, quiet: Callable[[str], bool], session_prefix: str = "",
                 ledger: SessionLedger | None = None, **options: Any) -> None:  # fmt: skip
        super().__init__(app, max_sessions=None, **options)
        self._quiet = quiet
        self.ledger = ledger if ledger is not None else SessionLedger()  # an empty one is falsy
        """Counts the sessions per key and in all (shared by every endpoint of the process, `hub.mcp.admission`)."""
        self._body_limit = self.asgi_app
        """The SDK's body-limit layer (the outermost of `asgi_app`), whose limit the short way applies too."""
        self.session_prefix = session_prefix
        """Starts every session id: the replica's id when sessions are forwarded between replicas (hub/mcp/forward)."""

    def holds(self, session_id: str) -> bool:
        """Whether this manager has the session open (an unknown id may belong to another replica)."""
        return session_id in self._server_instances

    async def handle_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The SDK's, with a short way for a POST on an open session: the manager's checks (era, owner) done on the
        raw headers, the body read once, a plain request handed to its transport ready parsed (`PLAIN`); the SDK's
        body limit, `Request`s and header parsing are skipped. Anything else goes the SDK's way unchanged."""
        if scope["type"] == "http" and (unsupported := unsupported_version(scope)) is not None:
            await send_json(send, unsupported, None, HTTPStatus.BAD_REQUEST)  # as the spec asks: 400
            return
        transport = self._open_session(scope)
        if transport is None:
            await self.asgi_app(scope, receive, send)
            return
        body, receive = await read_body(receive, self._body_limit.max_body_size)
        if body is None:  # too large, or the client left: the SDK answers
            await self.asgi_app(scope, receive, send)
            return
        message = peek(body)
        if message is not None and transport.plain(message):
            scope[PLAIN] = message
        await transport.handle_request(scope, receive, send)
        if transport.is_terminated:  # as the SDK's manager: its idle timeout ran out meanwhile
            await self._discard_session(transport.mcp_session_id or "", transport)

    def _open_session(self, scope: Scope) -> LeanTransport | None:
        """The transport of a POST that the SDK's manager would hand to it as it is (the session is open, owned by
        the caller, in a handshake era); None for anything else."""
        if scope["type"] != "http" or scope["method"] != "POST" or self._task_group is None:
            return None
        session_id = version = length = None
        for name, value in scope["headers"]:
            if name == MCP_SESSION_ID and session_id is None:
                session_id = value.decode("latin-1")
            elif name == MCP_PROTOCOL_VERSION and version is None:
                version = value.decode("latin-1")
            elif name == CONTENT_LENGTH and length is None:
                length = value
        if session_id is None or (version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS):
            return None
        if length is not None and declared(length) > self._body_limit.max_body_size:  # the SDK's 413, body unread
            return None
        transport = self._server_instances.get(session_id)
        if not isinstance(transport, LeanTransport) or requestor_of(scope) != self._session_owners.get(session_id):
            return None
        return transport

    async def _handle_stateful_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The SDK's, but a request that would open a session is admitted by the ledger: refused in its words."""
        if not opens_session(scope):
            await super()._handle_stateful_request(scope, receive, send)
            return
        async with self._session_creation_lock:
            admitted = self._admit(scope)
        if isinstance(admitted, Refused):
            admitted.log()
            await send_json(send, admitted.body(await request_id_of(scope, receive)), None, admitted.status)
            return
        await self._serve_opening_request(admitted, scope, receive, send)

    def _admit(self, scope: Scope) -> LeanTransport | Refused:
        requestor, transport = requestor_of(scope), self._new_transport()
        if (refused := self.ledger.take(owner_of(requestor), transport)) is not None:
            return refused
        assert transport.mcp_session_id is not None
        if requestor is not None:
            self._session_owners[transport.mcp_session_id] = requestor
        self._server_instances[transport.mcp_session_id] = transport
        logger.debug("Created new transport with session ID: %s", transport.mcp_session_id)  # an id: DEBUG only
        return transport

    def end_session(self, transport: LeanTransport) -> None:
        """Forget the session now (its id answers 404) and terminate its transport soon (`LeanTransport.end`)."""
        session_id = transport.mcp_session_id or ""
        self._server_instances.pop(session_id, None)
        self._session_owners.pop(session_id, None)
        if self._task_group is not None:
            self._task_group.start_soon(self._discard_session, session_id, transport)

    async def _discard_session(self, session_id: str, transport: StreamableHTTPServerTransport) -> None:
        if isinstance(transport, LeanTransport):
            self.ledger.leave(transport)
        await super()._discard_session(session_id, transport)

    def _new_transport(self) -> LeanTransport:
        transport = LeanTransport(
            mcp_session_id=f"{self.session_prefix}{uuid4().hex}",
            is_json_response_enabled=self.json_response,
            event_store=self.event_store,
            security_settings=self.security_settings,
            retry_interval=self.retry_interval,
            idle_timeout=self.session_idle_timeout,
        )
        transport.quiet = self._quiet
        transport.manager = self
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
        dispatcher = JSONRPCDispatcher[TransportContext](Forgetful(read_stream), write_stream,
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
