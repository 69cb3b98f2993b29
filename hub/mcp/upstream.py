"""One supervised, long-lived session to an upstream MCP server (stdio, SSE or streamable HTTP).

`Upstream.run()` connects within `connect_timeout`, lists every page of tools, resources, templates and prompts,
then serves calls until the connection ends; a failed or crashed upstream is retried with exponential backoff. While
it is down its listing is empty and `status` says why.

Logs, sampling and elicitation from the upstream reach a downstream only as `hub.mcp.routing` decides.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Literal, TextIO, TypeVar

import anyio
import mcp_types as types
from mcp import ClientSession
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, ValidationError

from hub import __version__
from hub.mcp import direct_call
from hub.mcp.catalog import Listing
from hub.mcp.config import McpServerConfig
from hub.mcp.errors import UpstreamUnavailable, check_arguments
from hub.mcp.health import Status, describe, error_result, no_progress, set_when, timed_out
from hub.mcp.link import Link
from hub.mcp.routing import Caller, Router, TaggingWriteStream
from hub.mcp.sanitize import SanitizingReadStream
from hub.mcp.stdio_client import MESSAGE_TOO_LARGE, TOO_LARGE_MARK, Pipes
from hub.mcp.tasks import call_as_task, requires_task, runs_tasks, status_binding
from hub.mcp.transports import open_transport

logger = logging.getLogger("toolhub.mcp")

_R = TypeVar("_R", bound=BaseModel)
_T = TypeVar("_T")
Kind = Literal["tools", "resources", "prompts"]
ALL_KINDS: frozenset[Kind] = frozenset(("tools", "resources", "prompts"))
DEBOUNCE_SECONDS = 0.1
HEALTH_INTERVAL = 15.0
BACKOFF = (0.5, 30.0)
STABLE_SECONDS = 30.0
"""An upstream must stay ready this long before a failure restarts the backoff from its first delay."""
MAX_PAGES = 1000
OPTIONAL_LIST_TIMEOUT = 5.0
"""Seconds (at most a quarter of `connect_timeout`) for listing resources, templates or prompts: they are extras."""
SEND_GRACE = 2.0
"""Seconds on top of a request's read timeout for writing it: an upstream that takes longer is wedged (it stopped
reading its input), so the request fails and the upstream is restarted."""
_CLIENT_INFO = types.Implementation(name="toolhub", version=__version__)


ToolCall = Callable[[ClientSession], Awaitable[types.CallToolResult]]
OnChange = Callable[[str, frozenset[Kind]], None]
OnResourceUpdated = Callable[[str, str], None]


class Upstream:
    """A supervised upstream session; `run()` forever in a task group, use the call methods while `healthy`."""

    def __init__(
        self,
        config: McpServerConfig,
        on_change: OnChange,
        on_resource_updated: OnResourceUpdated,
        *,
        errlog: TextIO | None = None,
    ) -> None:
        self.name = config.name
        self.config = config
        self.spec = config.spec
        self.prefix = config.spec.alias or config.name
        self.status = Status()
        self.listing = self._empty()
        self.capabilities = types.ServerCapabilities()
        self.first_attempt = anyio.Event()
        """Set once the first connection attempt has ended, in success or failure."""
        self._on_change = on_change
        self._on_resource_updated = on_resource_updated
        self._errlog = errlog or sys.stderr
        self._session: ClientSession | None = None
        self._router = Router(self.name)
        self._dirty: set[Kind] = set()
        self._dirty_event = anyio.Event()
        self._link = Link()
        """The current connection (a stdio upstream's pipes, for calls that go straight: hub/mcp/direct_call.py)."""
        self._ready_at = -math.inf
        self._failure = ""
        self.log_level: types.LoggingLevel | None = None
        """The level downstream sessions want (`hub.mcp.levels`); set again after every reconnect."""
        self._sent_level: types.LoggingLevel | None = None
        self.subscribed = False
        """Whether a client subscribed to one of its resources (`session: auto` then opens per-client sessions)."""
        self._task_tools: frozenset[str] = frozenset()
        """Tools that require task augmentation (`hub.mcp.tasks`): the hub runs them as tasks."""

    @property
    def per_client(self) -> bool:
        """Whether clients with an MCP session get sessions of their own (`hub.mcp.sessions`)."""
        mode = self.spec.session
        return mode == "per_client" or (mode == "auto" and (self._router.asked or self.subscribed))

    @property
    def healthy(self) -> bool:
        return self._session is not None and self.status.state == "ready"

    # -- supervision -------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, serve, and reconnect with exponential backoff, until cancelled."""
        if self.config.missing_env:
            self._set("disabled", f"environment variable(s) not set: {', '.join(self.config.missing_env)}")
            logger.warning("MCP server %s is disabled: %s", self.name, self.status.detail)
            self.first_attempt.set()
            return
        delay = BACKOFF[0]
        while True:
            self.status.attempts += 1
            try:
                await self._connect_and_serve()
                detail = "connection closed by the server"
            except Exception as exc:  # the supervisor's top-level handler: every failure means "retry later"
                detail = describe(exc, self.spec.url)
            was_ready = self.status.state == "ready"
            if was_ready and time.monotonic() - self._ready_at >= STABLE_SECONDS:  # it worked: retry soon
                delay = BACKOFF[0]
            self._session = None
            self.listing = self._empty()
            self._failure = detail
            self._set("down", f"{detail} (retrying in {delay:g} s)")
            logger.warning("MCP server %s is down: %s", self.name, self.status.detail)
            self.first_attempt.set()
            if was_ready:
                self._on_change(self.name, self._kinds())
            await anyio.sleep(delay)
            delay = min(delay * 2, BACKOFF[1])

    async def _connect_and_serve(self) -> None:
        if self.status.state == "down":  # a retry: it stays down, with its last error, until it is ready again
            self.status.detail = f"{self._failure} (retrying now)"
        else:
            self._set("connecting")
        self._link = link = Link()
        with anyio.CancelScope(deadline=anyio.current_time() + self.spec.connect_timeout) as scope:
            async with open_transport(self.spec, self._errlog, self.name, link) as (read, write):
                link.pipes = write if isinstance(write, Pipes) else None
                link.read = stream = SanitizingReadStream(read, self.name, waits=link.pipes is None)  # stdio's own
                async with ClientSession(
                    stream,
                    TaggingWriteStream(write, link.failed, stream.waiting),
                    sampling_callback=self._router.on_sampling,
                    elicitation_callback=self._router.on_elicitation,
                    list_roots_callback=self._router.on_list_roots,
                    logging_callback=self._router.on_log,
                    message_handler=self._on_message,
                    client_info=_CLIENT_INFO,
                    notification_bindings=[status_binding(self)],
                ) as session:
                    init = await session.initialize()
                    stream.version = session.protocol_version or init.protocol_version
                    self.capabilities = init.capabilities
                    self.status.protocol_version = stream.version
                    self.status.server_info = f"{init.server_info.name} {init.server_info.version}".strip()
                    await self._relist(session, ALL_KINDS)
                    await self._apply_level(session)
                    scope.deadline = math.inf
                    await self._serve(session, stream, link)
        if scope.cancelled_caught:
            raise TimeoutError(f"no answer within connect_timeout ({self.spec.connect_timeout:g} s)")

    async def _serve(self, session: ClientSession, stream: SanitizingReadStream, link: Link) -> None:
        self._session = session
        self._ready_at = time.monotonic()
        self._set("ready", f"{len(self.listing.tools)} tools")
        logger.info("MCP server %s is ready: %s", self.name, self.status.detail)
        self.first_attempt.set()
        self._on_change(self.name, self._kinds())
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._refresher, session)
            if self.spec.kind != "stdio":
                tg.start_soon(self._health, session, link)
            tg.start_soon(set_when, stream.closed, link.broken)
            await link.broken.wait()
            tg.cancel_scope.cancel()

    async def _health(self, session: ClientSession, link: Link) -> None:
        """Network upstreams can vanish without closing a stream: ping them, reconnect after two failures."""
        failures = 0
        while True:
            await anyio.sleep(HEALTH_INTERVAL)
            try:
                await session.send_request(
                    types.PingRequest(),
                    types.EmptyResult,
                    request_read_timeout_seconds=min(10.0, self.spec.connect_timeout),
                )
                failures = 0
            except MCPError as exc:
                failures = 0 if exc.error.code == types.METHOD_NOT_FOUND else failures + 1
                if failures >= 2:
                    link.broken.set()

    async def _apply_level(self, session: ClientSession) -> None:
        self._sent_level = None
        if self.log_level is not None and self.capabilities.logging is not None:
            request = types.SetLevelRequest(params=types.SetLevelRequestParams(level=self.log_level))
            with self._router.calling(None), anyio.fail_after(self.spec.call_timeout):
                await session.send_request(request, types.EmptyResult)
            self._sent_level = self.log_level

    async def set_log_level(self, level: types.LoggingLevel, caller: Caller | None = None) -> None:
        """Set the upstream's log level, if it logs and the level changed; kept for reconnects.

        Raises:
            UpstreamUnavailable, MCPError: as `request`.
        """
        self.log_level = level
        if self.healthy and self.capabilities.logging is not None and level != self._sent_level:
            request = types.SetLevelRequest(params=types.SetLevelRequestParams(level=level))
            await self.request(request, types.EmptyResult, read_timeout=self.spec.call_timeout, caller=caller)
            self._sent_level = level

    def _kinds(self) -> frozenset[Kind]:
        """The lists this upstream offers (a tools-only server's restart changes only the tool list)."""
        caps = self.capabilities
        return frozenset(kind for kind in ALL_KINDS if getattr(caps, kind) is not None)

    # -- listing -----------------------------------------------------------------------------------------------

    def _empty(self) -> Listing:
        spec = self.spec
        return Listing(self.name, self.prefix, allowed_tools=spec.allowed_tools, disallowed_tools=spec.disallowed_tools)

    async def _relist(self, session: ClientSession, kinds: Collection[Kind]) -> None:
        caps, listing = self.capabilities, self.listing
        tools, resources, templates, prompts = listing.tools, listing.resources, listing.templates, listing.prompts
        if "tools" in kinds and caps.tools is not None:
            tools = await self._pages(lambda p: session.list_tools(params=p), "tools")
        if "resources" in kinds and caps.resources is not None:
            resources = await self._optional(lambda p: session.list_resources(params=p), "resources")
            templates = await self._optional(lambda p: session.list_resource_templates(params=p), "resource_templates")
        if "prompts" in kinds and caps.prompts is not None:
            prompts = await self._optional(lambda p: session.list_prompts(params=p), "prompts")
        self._task_tools = frozenset(tool.name for tool in tools if requires_task(tool))
        self.listing = Listing(
            self.name,
            self.prefix,
            tools,
            resources,
            templates,
            prompts,
            self.spec.allowed_tools,
            self.spec.disallowed_tools,
            runs_tasks(caps),
        )

    async def _optional(self, fetch: Callable[[types.PaginatedRequestParams], Any], attr: str) -> list[Any]:
        """Resources and prompts are extras: an upstream that fails or hangs listing them still serves its tools."""
        try:
            with anyio.fail_after(min(OPTIONAL_LIST_TIMEOUT, self.spec.connect_timeout / 4)):
                return await self._pages(fetch, attr)
        except (MCPError, TimeoutError) as exc:
            logger.warning("MCP server %s: listing %s failed: %s", self.name, attr, describe(exc, self.spec.url))
            return []

    async def _pages(self, fetch: Callable[[types.PaginatedRequestParams], Any], attr: str) -> list[Any]:
        items: list[Any] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            with self._router.calling(None), anyio.fail_after(self.spec.call_timeout):
                page = await fetch(types.PaginatedRequestParams(cursor=cursor))
            items += getattr(page, attr)
            cursor = page.next_cursor
            if cursor is None or cursor in seen:
                break
            seen.add(cursor)
        return items

    async def _refresher(self, session: ClientSession) -> None:
        """Re-list after `list_changed` notifications, debounced; a failed re-list keeps the previous lists."""
        while True:
            await self._dirty_event.wait()
            await anyio.sleep(DEBOUNCE_SECONDS)
            kinds, self._dirty, self._dirty_event = frozenset(self._dirty), set(), anyio.Event()
            try:
                await self._relist(session, kinds)
            except (MCPError, TimeoutError, ValidationError) as exc:
                logger.warning(
                    "MCP server %s: re-listing %s failed: %s", self.name, sorted(kinds), describe(exc, self.spec.url)
                )
                continue
            self.status.detail = f"{len(self.listing.tools)} tools"
            self._on_change(self.name, kinds)

    def _mark(self, kind: Kind) -> None:
        self._dirty.add(kind)
        self._dirty_event.set()

    async def _on_message(self, message: Exception | types.ServerNotification) -> None:
        match message:
            case types.ToolListChangedNotification():
                self._mark("tools")
            case types.ResourceListChangedNotification():
                self._mark("resources")
            case types.PromptListChangedNotification():
                self._mark("prompts")
            case types.ResourceUpdatedNotification():
                self._on_resource_updated(self.name, message.params.uri)
            case Exception():
                logger.warning("MCP server %s: transport error: %s", self.name, describe(message, self.spec.url))
            case _:
                pass

    # -- calls -------------------------------------------------------------------------------------------------

    def session(self) -> ClientSession:
        """The live session.

        Raises:
            UpstreamUnavailable: the server is not connected.
        """
        if self._session is None or self.status.state != "ready":
            reason = self.status.detail or self.status.state
            raise UpstreamUnavailable(f"MCP server {self.name!r} is unavailable: {reason}", server=self.name)
        return self._session

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None, *, read_timeout: float, caller: Caller | None = None
    ) -> types.CallToolResult:
        """Call a tool by its original name; a timeout or an invalid result comes back as an `is_error` result.

        Raises:
            InvalidArguments: the arguments are nested deeper than `MAX_JSON_DEPTH` or longer than `max_message_bytes`.
            UpstreamUnavailable: the server is down or its connection closed during the call.
            MCPError: the upstream answered with a JSON-RPC error (e.g. unknown tool, invalid arguments).
        """
        check_arguments(arguments, self.spec.max_message_bytes, name)
        if name in self._task_tools:
            return await self.send(lambda s: call_as_task(s, name, arguments, read_timeout), read_timeout, caller)
        call, bounded = self._tool_call(name, arguments, read_timeout, caller)
        try:
            return await self.send(call, read_timeout, caller, bounded=bounded)
        except MCPError as exc:
            if timed_out(exc):  # not an upstream's -32001 answer
                return error_result(f"Tool {name!r} of MCP server {self.name!r} timed out after {read_timeout:g} s.")
            if exc.error.code in (MESSAGE_TOO_LARGE, types.PARSE_ERROR):  # its answer could not be read
                return error_result(f"Tool {name!r} of MCP server {self.name!r} failed: {exc.error.message}")
            raise
        except ValidationError as exc:
            logger.warning("MCP server %s: tool %s returned an invalid result: %s", self.name, name, exc)
            return error_result(f"Tool {name!r} of MCP server {self.name!r} returned an invalid result.")

    def _tool_call(self, name: str, arguments: dict[str, Any] | None, read_timeout: float,
                   caller: Caller | None) -> tuple[ToolCall, bool]:  # fmt: skip
        """`tools/call` on the session, or straight on a stdio upstream's pipes when it can (hub/mcp/direct_call.py),
        and whether `send` must bound it (a straight call bounds its own write and read)."""
        pipes, version = self._link.pipes, self.status.protocol_version
        if pipes is not None and direct_call.applies(version, arguments, caller is not None and caller.wants_progress):
            wedged = read_timeout + SEND_GRACE
            return lambda _: direct_call.call_tool(pipes, name, arguments, read_timeout, version or "", self.name,
                                                   wedged_after=wedged), False  # fmt: skip
        request = types.CallToolRequest(params=types.CallToolRequestParams(name=name, arguments=arguments))
        # A progress token is sent whenever a client waits: a stdio server can name it in its requests to the client.
        progress = None if caller is None else caller.progress if caller.wants_progress else no_progress
        return lambda s: s.send_request(request, types.CallToolResult, request_read_timeout_seconds=read_timeout,
                                        progress_callback=progress), True  # fmt: skip

    async def request(self, request: Any, result_type: type[_R], *, read_timeout: float | None = None,
                      caller: Caller | None = None) -> _R:  # fmt: skip
        """Forward one request on the shared session, routing server requests back to `caller` meanwhile.

        Raises:
            UpstreamUnavailable: the server is down or its connection closed during the request.
            MCPError: the upstream answered with an error (or the request timed out: `REQUEST_TIMEOUT`).
        """
        send = lambda s: s.send_request(request, result_type, request_read_timeout_seconds=read_timeout)  # noqa: E731
        return await self.send(send, read_timeout, caller)

    async def send(self, send: Callable[[ClientSession], Awaitable[_T]], read_timeout: float | None,
                   caller: Caller | None, *, bounded: bool = True) -> _T:  # fmt: skip
        """`send(session)` on the live session within `read_timeout` (past it the server is restarted), routing its
        requests to the client `caller` meanwhile (`request` and task-augmented calls go through here). Unless
        `bounded` is False (a call that bounds itself, raising `TimeoutError` for a wedged upstream)."""
        session, link = self.session(), self._link  # this connection's: a later one is not restarted for its errors
        # The SDK's read timeout starts once the request is written; the outer one also bounds the write.
        limit = None if read_timeout is None else read_timeout + SEND_GRACE
        with self._router.calling(caller):
            try:
                with anyio.fail_after(limit) if bounded else contextlib.nullcontext():
                    return await send(session)
            except TimeoutError:
                link.broken.set()
                logger.warning("MCP server %s took no request within %g s: restarting it", self.name, limit)
                raise MCPError(code=types.REQUEST_TIMEOUT, message=f"No answer within {read_timeout:g} s.") from None
            except MCPError as exc:
                if TOO_LARGE_MARK in exc.error.message:  # an HTTP transport reports it as a lost stream or parse error
                    raise MCPError(code=MESSAGE_TOO_LARGE, message=exc.error.message) from None
                if link.lost(exc):  # not an error answer of the server, whatever its code
                    link.broken.set()  # reconnect now rather than at the next health check
                    message = f"MCP server {self.name!r} closed the connection: {exc.error.message}"
                    raise UpstreamUnavailable(message, server=self.name) from exc
                raise

    def _set(self, state: Literal["starting", "connecting", "ready", "down", "disabled"], detail: str = "") -> None:
        self.status.state = state
        self.status.detail = detail
        self.status.since = time.time()
