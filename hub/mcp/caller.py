"""The downstream request behind an upstream call (a `hub.mcp.routing.Caller`): it receives the upstream's progress,
logs (at the session's level) and sampling, elicitation and roots requests."""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata

from hub.accounts.auth import Principal
from hub.mcp.levels import LogLevels
from hub.mcp.notify import connection_of

Ctx = ServerRequestContext[Any, Any]


class DownstreamCaller:
    """The downstream request behind an upstream call: receives its progress, logs and server requests."""

    def __init__(self, ctx: Ctx, principal: Principal, levels: LogLevels | None = None) -> None:
        self._session: ServerSession = ctx.session
        self.session = connection_of(ctx)
        self.principal = principal
        self._levels = levels
        self._request_id = ctx.request_id
        self.wants_progress = bool(ctx.meta and ctx.meta.get("progress_token") is not None)

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        await self._session.report_progress(progress, total, message)

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        if self._levels is not None and not self._levels.allows(self.session, params.level):
            return
        # The public method is deprecated (SEP-2577) and would warn on every forwarded line; call what it wraps.
        send = ServerSession.send_log_message.__wrapped__  # pyright: ignore[reportFunctionMemberAccess]
        await send(self._session, params.level, params.data, params.logger, related_request_id=self._request_id)

    async def sample(self, params: types.CreateMessageRequestParams) -> Any:
        result_type = types.CreateMessageResultWithTools if params.tools else types.CreateMessageResult
        wanted = types.ClientCapabilities(sampling=types.SamplingCapability())
        return await self._ask(types.CreateMessageRequest(params=params), result_type, "sampling", wanted)

    async def elicit(self, params: types.ElicitRequestParams) -> Any:
        wanted = types.ClientCapabilities(elicitation=types.ElicitationCapability())
        return await self._ask(types.ElicitRequest(params=params), types.ElicitResult, "elicitation", wanted)

    async def list_roots(self) -> Any:
        wanted = types.ClientCapabilities(roots=types.RootsCapability())
        return await self._ask(types.ListRootsRequest(), types.ListRootsResult, "roots", wanted)

    def supports(self, field: str) -> bool:
        """Whether the client declared `sampling`, `elicitation` or `roots`."""
        capability = {"sampling": types.SamplingCapability, "elicitation": types.ElicitationCapability,
                      "roots": types.RootsCapability}[field]()  # fmt: skip
        return self._session.check_client_capability(types.ClientCapabilities(**{field: capability}))

    async def _ask(self, request: Any, result_type: Any, field: str, wanted: types.ClientCapabilities) -> Any:
        if not self._session.can_send_request:  # stateless or 2026-era request: no way to ask the client
            return types.ErrorData(code=types.INVALID_REQUEST, message=f"The client cannot be asked for {field} now.")
        if not self._session.check_client_capability(wanted):
            return types.ErrorData(code=types.INVALID_REQUEST, message=f"The client does not support {field}.")
        metadata = ServerMessageMetadata(related_request_id=self._request_id)
        try:
            return await self._session.send_request(request, result_type, metadata=metadata)
        except MCPError as exc:
            return exc.error
