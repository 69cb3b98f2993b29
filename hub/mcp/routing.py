"""Which downstream session an upstream's server-to-client messages (logs, sampling, elicitation, roots) belong to.

Every request the hub makes on an upstream session is a `Call`, set in a context variable for as long as it runs.
The MCP SDK carries context variables along with each message (its context streams), so a message that arrives on
the event stream of one upstream request (streamable HTTP answers a POST on its own stream, and sends the requests
related to it there) is handled in that request's context: it goes to that call's downstream caller, exactly.

Stdio and legacy SSE upstreams send their requests on one shared channel with no link to a call. Then a request
or log tagged with a task (`_meta` "io.modelcontextprotocol/related-task") goes only to the call waiting on that
task (`tasks/result`, whose caller names it as `upstream_task`), and is refused when there is none: a task's input
is never guessed. Otherwise a request goes to the call named by its `_meta.progressToken`, when that is one of the
hub's; else only when every call in flight on the session comes from one downstream session. A call without a
downstream (the tool loop, REST, the hub's own re-listing) has no one to ask, so while one is in flight nothing is
routed. Otherwise sampling, elicitation and roots are refused with a JSON-RPC error and log messages stay in the
hub's own log (debug level): never delivered to another session.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import mcp_types as types
from mcp.client._transport import WriteStream
from mcp.client.session import ClientRequestContext
from mcp.shared.message import SessionMessage

from hub.mcp.streams import ClosingStream
from hub.mcp.waiting import Waiting

logger = logging.getLogger("toolhub.mcp")


class Caller(Protocol):
    """The downstream request a tool call is made for: where progress, logs and server requests go."""

    @property
    def session(self) -> Hashable:
        """The downstream session (connection) the request came on."""
        ...

    @property
    def wants_progress(self) -> bool: ...
    async def progress(self, progress: float, total: float | None, message: str | None) -> None: ...
    async def log(self, params: types.LoggingMessageNotificationParams) -> None: ...
    async def sample(
        self, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData: ...
    async def elicit(self, params: types.ElicitRequestParams) -> types.ElicitResult | types.ErrorData: ...
    async def list_roots(self) -> types.ListRootsResult | types.ErrorData: ...


@dataclass(eq=False, slots=True)
class Call:
    """One request in flight on an upstream session."""

    router: Router
    caller: Caller | None
    progress_token: Any = None
    """The `progressToken` the hub sent with the request, once the SDK assigned it."""
    task: Any = None
    """The upstream task this call waits on, when the hub runs a task-required tool itself (hub/mcp/tasks.py)."""


RELATED = "io.modelcontextprotocol/related-task"

CURRENT: contextvars.ContextVar[Call | None] = contextvars.ContextVar("toolhub_mcp_upstream_call", default=None)
"""The upstream request the running code (or the message being handled) belongs to."""


class Router:
    """The requests in flight on one upstream session, and where its server-to-client messages go."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.calls: list[Call] = []
        self.asked = False
        """Whether the server ever sent a request to a client (`session: auto` then opens per-client sessions)."""

    @contextlib.contextmanager
    def calling(self, caller: Caller | None) -> Iterator[Call]:
        call = Call(self, caller)
        self.calls.append(call)
        token = CURRENT.set(call)
        try:
            yield call
        finally:
            CURRENT.reset(token)
            self.calls.remove(call)

    def call_for(self, meta: Any = None) -> Call | None:
        """The call a server-to-client message belongs to, or None when that cannot be known (module docstring)."""
        current = CURRENT.get()
        if current is not None and current.router is self:
            return current if current in self.calls else None
        task = _related_task(meta)
        if task is not None:
            return next((call for call in self.calls if task in (call.task, _waited_task(call.caller))), None)
        token = _progress_token(meta)
        if token is not None:
            return next((call for call in self.calls if call.progress_token == token), None)
        calls = self.calls
        if not calls or any(call.caller is None for call in calls):
            return None
        sessions = {call.caller.session for call in calls if call.caller is not None}
        return calls[-1] if len(sessions) == 1 else None

    def caller(self, meta: Any = None) -> Caller | None:
        call = self.call_for(meta)
        return call.caller if call is not None else None

    def refusal(self, what: str) -> types.ErrorData:
        if self.calls:
            message = f"The hub cannot tell which client call this {what} request belongs to; it is refused."
        else:
            message = "No client call is waiting on this server."
        logger.info("MCP server %s: refused a %s request: %s", self.server, what, message)
        return types.ErrorData(code=types.INVALID_REQUEST, message=message)

    async def on_sampling(self, context: ClientRequestContext, params: types.CreateMessageRequestParams) -> Any:
        self.asked = True
        caller = self.caller(context.meta)
        if caller is None:
            return self.refusal("sampling")
        return await caller.sample(params)

    async def on_elicitation(self, context: ClientRequestContext, params: types.ElicitRequestParams) -> Any:
        self.asked = True
        caller = self.caller(context.meta)
        if caller is None:
            return self.refusal("elicitation")
        return await caller.elicit(params)

    async def on_list_roots(self, context: ClientRequestContext) -> Any:
        self.asked = True
        caller = self.caller(context.meta)
        if caller is None:
            return self.refusal("roots")
        return await caller.list_roots()

    async def on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        caller = self.caller(params.meta)
        if caller is not None:
            await caller.log(params)
        else:
            logger.debug("MCP server %s [%s]: %s", self.server, params.level, params.data)


class TaggingWriteStream(ClosingStream):
    """Wraps a transport's write stream: notes the id (which the SDK also uses as the progress token) of the request
    each call sends, so a stdio request naming that token in its `_meta` finds its call; and tells `on_failure` when
    the transport took no more (the SDK then reports "Connection closed", `hub.mcp.link`); and `waiting` of the
    requests that wait for an answer (`hub.mcp.waiting`)."""

    def __init__(self, inner: WriteStream[SessionMessage], on_failure: Callable[[], None] = lambda: None,
                 waiting: Waiting | None = None) -> None:  # fmt: skip
        self._inner = inner
        self._on_failure = on_failure
        self._waiting = waiting

    async def send(self, item: SessionMessage, /) -> None:
        call = CURRENT.get()
        if call is not None and call.progress_token is None and isinstance(item.message, types.JSONRPCRequest):
            call.progress_token = item.message.id
        if self._waiting is not None:  # before the write: the answer may come before `send` returns
            self._waiting.sent(item.message)
        try:
            await self._inner.send(item)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._on_failure()
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()


def _waited_task(caller: Caller | None) -> Any:
    """The upstream task a downstream `tasks/result` waits on (hub/mcp/task_relay.py's TaskCaller), if any."""
    return getattr(caller, "upstream_task", None)


def _related_task(meta: Any) -> Any:
    """The upstream task id a message's `_meta` ties it to, if any."""
    related = meta.get(RELATED) if isinstance(meta, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return related.get("taskId") if isinstance(related, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]


def _progress_token(meta: Any) -> Any:
    if isinstance(meta, dict):
        return meta.get("progress_token", meta.get("progressToken"))  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return getattr(meta, "progress_token", None)
