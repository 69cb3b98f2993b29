"""Which downstream an upstream's server-to-client messages (logs, sampling, elicitation) belong to.

A shared session carries no link between the upstream's sampling or elicitation
request (or log message) and the call that caused it, so the hub never guesses. It routes such a message to a
downstream `Caller` only when every request in flight on this upstream belongs to one owner (one key): exactly one
call, or several calls of the same key (then the most recent). A request without a caller (tool loop, REST, the
hub's own re-listing) has no one to ask, so while one is in flight nothing is routed. Otherwise sampling and
elicitation are refused with an MCP error and log messages stay in the hub's own log (debug level).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Hashable, Iterator
from typing import Any, Protocol

import mcp_types as types
from mcp.client.session import ClientRequestContext

logger = logging.getLogger("toolhub.mcp")


class Caller(Protocol):
    """The downstream request a tool call is made for: where progress, logs and server requests go."""

    @property
    def owner(self) -> Hashable:
        """Who is calling (the key): server requests are routed only when every call in flight has one owner."""
        ...

    @property
    def wants_progress(self) -> bool: ...
    async def progress(self, progress: float, total: float | None, message: str | None) -> None: ...
    async def log(self, params: types.LoggingMessageNotificationParams) -> None: ...
    async def sample(
        self, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData: ...
    async def elicit(self, params: types.ElicitRequestParams) -> types.ElicitResult | types.ErrorData: ...


class Router:
    """The requests in flight on one upstream session, and where its server-to-client messages go."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.calls: list[Caller | None] = []
        """Requests in flight on the session; None for those without a downstream caller."""

    @contextlib.contextmanager
    def calling(self, caller: Caller | None) -> Iterator[None]:
        self.calls.append(caller)
        try:
            yield
        finally:
            self.calls.remove(caller)

    def caller(self) -> Caller | None:
        """The downstream a server-to-client message can only belong to, or None (see the module docstring)."""
        calls = self.calls
        if not calls or any(call is None for call in calls):
            return None
        owners = {call.owner for call in calls if call is not None}
        return calls[-1] if len(owners) == 1 else None

    def refusal(self, what: str) -> types.ErrorData:
        if self.calls:
            message = f"The hub cannot tell which client call this {what} request belongs to; it is refused."
        else:
            message = "No client call is waiting on this server."
        logger.info("MCP server %s: refused a %s request: %s", self.server, what, message)
        return types.ErrorData(code=types.INVALID_REQUEST, message=message)

    async def on_sampling(self, context: ClientRequestContext, params: types.CreateMessageRequestParams) -> Any:
        caller = self.caller()
        if caller is None:
            return self.refusal("sampling")
        return await caller.sample(params)

    async def on_elicitation(self, context: ClientRequestContext, params: types.ElicitRequestParams) -> Any:
        caller = self.caller()
        if caller is None:
            return self.refusal("elicitation")
        return await caller.elicit(params)

    async def on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        caller = self.caller()
        if caller is not None:
            await caller.log(params)
        else:
            logger.debug("MCP server %s [%s]: %s", self.server, params.level, params.data)
