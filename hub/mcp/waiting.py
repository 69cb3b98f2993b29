"""The requests of one upstream connection that wait for an answer, and the error answers with a null id.

A server that cannot read a request, or cannot tell its id, answers an error whose id is null (JSON-RPC 2.0,
section 5). The SDK's session matches answers by id, so such an error reached no one and its caller waited out its
`call_timeout`. When exactly one request is waiting the error can only be its answer, and it fails that request at
once; with several waiting it could belong to any, and failing one could drop the answer on its way to it, so it is
logged and each request waits for its own. Stdio keeps its own waiting set (`Pipes`: calls written straight to the
pipes pass no session); SSE and streamable HTTP take theirs from the hub's wrappers of the session's streams
(`Waiting`). The streamable-HTTP client already gives an error in a POST's event stream, or at an HTTP error status,
its request's id; a JSON answer (status 200) and the legacy SSE stream pass the null on.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

import mcp_types as types
from mcp.shared.dispatcher import coerce_request_id

logger = logging.getLogger("toolhub.mcp")


def addressed(error: types.JSONRPCError, waiting: Collection[types.RequestId], server: str) -> types.JSONRPCError:
    """`error` (its id null) as the answer to the one request `waiting`, if exactly one is; else unchanged."""
    if len(waiting) != 1:
        logger.warning("MCP server %s answered an error with a null id while %d requests were waiting: it cannot "
                       "be matched to one (%s)", server, len(waiting), error.error.message)  # fmt: skip
        return error
    request_id = next(iter(waiting))
    logger.info("MCP server %s answered an error with a null id; request %s, the only one waiting, fails with it",
                server, request_id)  # fmt: skip
    return types.JSONRPCError(jsonrpc="2.0", id=request_id, error=error.error)


class Waiting:
    """The ids of a session's requests that wait for an answer, as its write and read streams saw them pass: a
    request adds its id; its answer, or a `notifications/cancelled` naming it (sent by the SDK when its caller gives
    up or times out), removes it."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.ids: set[types.RequestId] = set()

    def sent(self, message: types.JSONRPCMessage) -> None:
        if isinstance(message, types.JSONRPCRequest):
            self.ids.add(coerce_request_id(message.id))
        elif isinstance(message, types.JSONRPCNotification) and message.method == "notifications/cancelled":
            request_id = (message.params or {}).get("requestId")
            if isinstance(request_id, int | str):
                self.ids.discard(coerce_request_id(request_id))

    def received(self, message: types.JSONRPCMessage) -> types.JSONRPCMessage:
        """`message`, an error with a null id `addressed` to the one request waiting; an answer ends its wait."""
        if isinstance(message, types.JSONRPCError) and message.id is None:
            message = addressed(message, self.ids, self.server)
        if isinstance(message, types.JSONRPCResponse | types.JSONRPCError) and message.id is not None:
            self.ids.discard(coerce_request_id(message.id))
        return message
