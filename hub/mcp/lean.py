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

Everything else takes the SDK's event-stream path unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from http import HTTPStatus
from typing import Any
from uuid import uuid4

import anyio
import mcp_types as types
import orjson
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.auth.middleware.bearer_auth import AuthorizationContext
from mcp.server.streamable_http import (
    REQUEST_STREAM_BUFFER_SIZE,
    EventMessage,
    StreamableHTTPServerTransport,
    check_accept_headers,
)
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

logger = logging.getLogger("toolhub.mcp")

LISTS = frozenset(("tools/list", "resources/list", "resources/templates/list", "prompts/list", "ping"))
_ASKING = ("sampling", "elicitation", "roots")


class LeanTransport(StreamableHTTPServerTransport):
    """The SDK's stateful transport, answering plain requests with one JSON body (module docstring)."""

    interactive = True
    """Whether the client may be sent requests or logs; learnt from its `initialize` and `logging/setLevel`."""
    quiet: Callable[[str], bool] = staticmethod(lambda name: False)
    """Whether a call of this tool can send nothing but its answer (set by `LeanSessionManager`)."""

    async def _handle_post_request(self, scope: Scope, request: Request, receive: Receive, send: Send) -> None:
        message = _peek(await request.body())  # Starlette keeps the body: the SDK's path reads it again
        if message is not None and self._plain(message):
            await self._answer_json(scope, request, receive, send)
            return
        await super()._handle_post_request(scope, request, receive, send)

    def _plain(self, message: dict[str, Any]) -> bool:
        method, params = message.get("method"), message.get("params")
        params = params if isinstance(params, dict) else {}
        if method == "initialize":
            capabilities = params.get("capabilities")
            capabilities = capabilities if isinstance(capabilities, dict) else {}
            self.interactive = any(capabilities.get(name) is not None for name in _ASKING)
        elif method == "logging/setLevel":
            self.interactive = True
        if "id" not in message or self.mcp_session_id is None or self.interactive:
            return False
        if method in LISTS:
            return True
        meta = params.get("_meta")
        if method != "tools/call" or (isinstance(meta, dict) and meta.get("progressToken") is not None):
            return False
        name = params.get("name")
        return isinstance(name, str) and self.quiet(name)

    async def _answer_json(self, scope: Scope, request: Request, receive: Receive, send: Send) -> None:
        writer = self._read_stream_writer
        has_json, _ = check_accept_headers(request)
        if writer is None or not has_json or not self._check_content_type(request):
            await super()._handle_post_request(scope, request, receive, send)  # its own errors
            return
        try:
            message = types.jsonrpc_message_adapter.validate_json(await request.body(), by_name=False)
        except ValueError:
            await super()._handle_post_request(scope, request, receive, send)
            return
        if not isinstance(message, types.JSONRPCRequest) or not await self._validate_request_headers(request, send):
            return
        request_id = str(message.id)
        send_stream, receive_stream = self._request_streams[request_id] = _streams()
        metadata = ServerMessageMetadata(
            request_context=request,
            can_send_request=False,
            on_request_unanswered=partial(self._terminate_unanswered_request, message.id),
        )
        try:
            await writer.send(SessionMessage(message, metadata=metadata))
            answer = None
            async for event in receive_stream:  # the answer; anything related to the request has no wire here
                if isinstance(event.message, types.JSONRPCResponse | types.JSONRPCError):
                    answer = event.message
                    break
        finally:
            send_stream.close()
            await self._clean_up_memory_streams(request_id)
        if answer is None:
            response = self._create_error_response(
                "Session terminated before the request completed", HTTPStatus.INTERNAL_SERVER_ERROR,
                types.INTERNAL_ERROR,
            )  # fmt: skip
        else:
            response = self._create_json_response(answer)
        await response(scope, receive, send)


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
