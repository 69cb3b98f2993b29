"""Sampling, elicitation and roots for 2026-07-28 clients, bridged to legacy upstreams (SEP-2322 multi round trip).

A 2026-era client cannot be sent requests: a server that needs input answers `tools/call` with an
`InputRequiredResult` (the questions plus an opaque `requestState`), and the client retries the call with its
answers. A legacy upstream instead sends a `sampling/createMessage` (or elicitation, or roots) request in the middle
of the call and waits. The hub joins the two: a modern client's call runs upstream in the hub's own task group
(`Bridge`); when the upstream asks, the downstream request returns an `InputRequiredResult` naming the question,
and the client's retry (found by its `requestState`, a random token bound to the caller's key) delivers the answer
to the waiting upstream request and waits again, for the result or the next question.

A client that does not come back within the upstream's `call_timeout` has its questions refused and the upstream
call cancelled, so nothing waits forever.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

import anyio
import mcp_types as types
from anyio.abc import TaskGroup
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from hub.mcp.routing import Caller

logger = logging.getLogger("toolhub.mcp")

Result = types.CallToolResult | types.GetPromptResult | types.ReadResourceResult
Work = Callable[[Caller], Awaitable[Any]]
"""The upstream request of a client request, given where its server-to-client messages go."""


def is_modern(protocol_version: str | None) -> bool:
    """Whether a request came in the 2026-07-28 era (no server-to-client requests; input goes by round trips)."""
    return protocol_version in MODERN_PROTOCOL_VERSIONS


class Bridge:
    """One modern client's call, running upstream across the client's retries; also the upstream call's `Caller`."""

    def __init__(self, owner: Hashable, timeout: float, supports: Callable[[str], bool] | None = None,
                 wants_progress: bool = False) -> None:  # fmt: skip
        self.token = secrets.token_urlsafe(24)
        self.owner = owner
        self.timeout = timeout
        self.session = self  # one downstream "session": the calls of this round trip
        self.wants_progress = wants_progress
        self._supports = supports or (lambda field: True)
        self.listener: Caller | None = None
        """The client request waiting now: progress and logs of the upstream call go to it."""
        self.scope = anyio.CancelScope()
        self._asked: dict[str, types.InputRequest] = {}
        self._answers: dict[str, Any] = {}
        self._answered: dict[str, anyio.Event] = {}
        self._changed = anyio.Event()
        self._result: Any = None
        self._error: BaseException | None = None
        self.done = anyio.Event()
        self.collected = anyio.Event()
        self._count = 0

    async def run(self, work: Work) -> None:
        try:
            with self.scope:
                self._result = await work(self)
        except Exception as exc:  # handed to the client's request, which raises it there
            self._error = exc
        finally:
            if self._result is None and self._error is None:  # cancelled: the hub is stopping
                self._error = MCPError(code=types.INTERNAL_ERROR, message="The hub stopped during the call.")
            self.done.set()
            self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    # -- the downstream side -----------------------------------------------------------------------------------

    def answer(self, responses: dict[str, Any] | None) -> None:
        """Hand the client's answers to the upstream requests waiting for them (unknown keys are ignored)."""
        for key, response in (responses or {}).items():
            event = self._answered.get(key)
            if event is not None and not event.is_set():
                self._answers[key] = response
                self._asked.pop(key, None)
                event.set()

    async def next(self) -> Any:
        """The call's result, or an `InputRequiredResult` with the questions the upstream is waiting on."""
        while not self.done.is_set() and not self._asked:
            await self._changed.wait()
        if self.done.is_set():
            if self._error is not None:
                raise self._error
            return self._result
        return types.InputRequiredResult(input_requests=dict(self._asked), request_state=self.token)

    # -- the upstream side (routing.Caller) --------------------------------------------------------------------

    async def _ask(self, request: types.InputRequest, result_type: Any, field: str) -> Any:
        if not self._supports(field):
            return types.ErrorData(code=types.INVALID_REQUEST, message=f"The client does not support {field}.")
        self._count += 1
        key = f"q{self._count}"
        self._asked[key] = request
        event = self._answered[key] = anyio.Event()
        self._wake()
        with anyio.move_on_after(self.timeout):
            await event.wait()
        self._answered.pop(key, None)
        self._asked.pop(key, None)
        if key not in self._answers:
            return types.ErrorData(code=types.REQUEST_TIMEOUT, message="The client did not answer in time.")
        response = self._answers.pop(key)
        if isinstance(response, types.ErrorData):
            return response
        dumped = response.model_dump(by_alias=True) if hasattr(response, "model_dump") else response
        return result_type.model_validate(dumped)

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        if self.listener is not None and self.listener.wants_progress:
            await self.listener.progress(progress, total, message)

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        if self.listener is not None:
            await self.listener.log(params)

    async def sample(self, params: types.CreateMessageRequestParams) -> Any:
        result_type = types.CreateMessageResultWithTools if params.tools else types.CreateMessageResult
        return await self._ask(types.CreateMessageRequest(params=params), result_type, "sampling")

    async def elicit(self, params: types.ElicitRequestParams) -> Any:
        return await self._ask(types.ElicitRequest(params=params), types.ElicitResult, "elicitation")

    async def list_roots(self) -> Any:
        return await self._ask(types.ListRootsRequest(), types.ListRootsResult, "roots")


class Bridges:
    """The round trips in progress of one served MCP server."""

    def __init__(self, spawn: Callable[[], TaskGroup | None]) -> None:
        self._spawn = spawn
        self._open: dict[str, Bridge] = {}

    def available(self) -> bool:
        return self._spawn() is not None

    def start(self, owner: Hashable, timeout: float, work: Work, *, supports: Callable[[str], bool] | None = None,
              wants_progress: bool = False) -> Bridge:  # fmt: skip
        """Run `work` (the upstream call, given the bridge as its caller) in the hub's task group."""
        group = self._spawn()
        assert group is not None, "Bridges.start() needs the hub running"
        bridge = Bridge(owner, timeout, supports, wants_progress)
        self._open[bridge.token] = bridge
        group.start_soon(self._run, bridge, work)
        return bridge

    async def _run(self, bridge: Bridge, work: Work) -> None:
        await bridge.run(work)
        with anyio.move_on_after(bridge.timeout):  # the client may still come back for the result
            await bridge.collected.wait()
        self._open.pop(bridge.token, None)

    def resume(self, token: str, owner: Hashable, responses: dict[str, Any] | None) -> Bridge:
        """The round trip a retry continues, with the client's answers delivered.

        Raises:
            MCPError: INVALID_PARAMS for an unknown or expired `requestState`, or one of another key.
        """
        bridge = self._open.get(token)
        if bridge is None or bridge.owner != owner:
            raise MCPError(code=types.INVALID_PARAMS, message="Unknown or expired requestState.")
        bridge.answer(responses)
        return bridge

    async def wait(self, bridge: Bridge, listener: Caller | None) -> Any:
        """The next answer for the client; a client that cancels its request cancels the upstream call."""
        bridge.listener = listener
        try:
            result = await bridge.next()
        except anyio.get_cancelled_exc_class():
            bridge.scope.cancel()
            raise
        except Exception:
            bridge.collected.set()
            raise
        finally:
            bridge.listener = None
        if not isinstance(result, types.InputRequiredResult):
            bridge.collected.set()
        return result
