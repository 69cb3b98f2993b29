"""`McpHub`: the supervised upstreams, the catalogs built from them, and the Python API the tool loop calls."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import anyio
import mcp_types as types
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.connection import Connection
from mcp.shared.exceptions import MCPError

from hub.accounts.auth import Principal
from hub.accounts.usage import ToolCallRecord
from hub.cache.tools import ToolResultCache, cacheable
from hub.config import ConfigError
from hub.mcp.catalog import DEFAULT_SEPARATOR, Catalog, ToolInfo, visible
from hub.mcp.config import McpServerConfig
from hub.mcp.errors import InvalidArguments, ToolNotPermitted, UnknownTool, UpstreamUnavailable
from hub.mcp.health import error_result
from hub.mcp.levels import LogLevels
from hub.mcp.notify import ONLY_TO
from hub.mcp.routing import Caller
from hub.mcp.sessions import ClientSessions
from hub.mcp.upstream import ALL_KINDS, Kind, Upstream
from hub.ops import tracing

if TYPE_CHECKING:
    from hub.catalog.service import CatalogService

logger = logging.getLogger("toolhub.mcp")

Listener = Callable[[str, frozenset[Kind]], Awaitable[None]]
"""Called after an upstream's lists changed: (server, kinds)."""
UpdateListener = Callable[[str, str], Awaitable[None]]
"""Called when an upstream reports `notifications/resources/updated`: (server, uri)."""


class McpHub:
    """Every configured upstream, supervised; `state.extras["mcp"]`."""

    def __init__(self, servers: Mapping[str, McpServerConfig], *, separator: str = DEFAULT_SEPARATOR,
                 errlog: TextIO | None = None,
                 on_tool_call: Callable[[ToolCallRecord], None] | None = None) -> None:  # fmt: skip
        self.separator = separator
        self._on_tool_call = on_tool_call
        self._errlog = errlog
        self.upstreams = {name: self._upstream(config) for name, config in sorted(servers.items())}
        self._scopes: dict[str, anyio.CancelScope] = {}
        _check_prefixes(self.upstreams.values())
        self.catalog = Catalog()
        self._server_catalogs: dict[str, Catalog] = {name: Catalog() for name in self.upstreams}
        self._last_server: dict[str, str] = {}
        self._tool_cache = ToolResultCache()
        """Results of read-only tools of servers with `cache_ttl` (hub/cache/tools.py)."""
        self.task_group: TaskGroup | None = None
        """Where work that outlives one client request runs (`hub.mcp.modern`), while the hub runs."""
        self.log_levels = LogLevels()
        """`logging/setLevel` of each downstream session, across every served endpoint."""
        self.sessions = ClientSessions(lambda: self.task_group, self._resource_updated, errlog, self.log_levels)
        """Per-client upstream sessions of servers with `session: per_client` (or `auto`)."""
        self.catalog_service: CatalogService | None = None
        """Tool search and result handles (`hub.catalog`), set by its lifespan extension."""
        self._listeners: list[Listener] = []
        self._update_listeners: list[UpdateListener] = []
        self._events: tuple[MemoryObjectSendStream[tuple[str, Any]], MemoryObjectReceiveStream[tuple[str, Any]]] = (
            anyio.create_memory_object_stream[tuple[str, Any]](1024)
        )

    # -- lifecycle ---------------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[McpHub]:
        """Connect every upstream in the background; on exit, close them all (stdio children included)."""
        send, receive = self._events
        async with anyio.create_task_group() as tg:
            self.task_group = tg
            tg.start_soon(self._pump, receive)
            for upstream in self.upstreams.values():
                self._start(upstream)
            try:
                yield self
            finally:
                self.task_group = None
                tg.cancel_scope.cancel()
        send.close()
        receive.close()

    async def wait_ready(self, limit: float | None = None) -> bool:
        """Wait until every upstream's first connection attempt has ended; False if `limit` seconds ran out first."""
        if limit is None:
            limit = max((u.spec.connect_timeout for u in self.upstreams.values()), default=0.0) + 1.0
        with anyio.move_on_after(limit):
            for upstream in self.upstreams.values():
                await upstream.first_attempt.wait()
            return True
        return False

    async def wait_started(self, servers: Collection[str]) -> None:
        """Wait until each named upstream's first connection attempt has ended, each at most its `connect_timeout`."""
        for name in servers:
            upstream = self.upstreams.get(name)
            if upstream is not None and not upstream.first_attempt.is_set():
                with anyio.move_on_after(upstream.spec.connect_timeout + 1.0):
                    await upstream.first_attempt.wait()

    def _upstream(self, config: McpServerConfig) -> Upstream:
        return Upstream(config, self._changed, self._resource_updated, errlog=self._errlog)

    def _start(self, upstream: Upstream) -> None:
        assert self.task_group is not None, "the hub is not running"
        scope = self._scopes[upstream.name] = anyio.CancelScope()

        async def supervise() -> None:
            with scope:
                await upstream.run()

        self.task_group.start_soon(supervise, name=f"mcp-upstream-{upstream.name}")

    def add(self, config: McpServerConfig) -> Upstream:
        """Start serving one more upstream (config reload); its tools join the catalog once it is ready.

        Raises:
            ConfigError: a server by that name exists, or its prefix is taken.
        """
        if config.name in self.upstreams:
            raise ConfigError(f"mcp_servers.{config.name}", "a server by this name is already running")
        upstream = self._upstream(config)
        _check_prefixes([*self.upstreams.values(), upstream])
        self.upstreams[config.name] = upstream
        self._server_catalogs[config.name] = Catalog()
        self._start(upstream)
        return upstream

    def remove(self, name: str) -> None:
        """Stop serving an upstream (config reload): its session closes (a stdio child is stopped), its tools leave
        the catalog, and clients are told. Calls in flight on it fail as if the server went down."""
        upstream = self.upstreams.pop(name, None)
        if upstream is None:
            return
        self._scopes.pop(name).cancel()
        self.sessions.close_server(name)
        self._server_catalogs.pop(name, None)
        self.catalog = Catalog.build([u.listing for u in self.upstreams.values() if u.healthy], self.separator)
        self._send(("changed", (name, ALL_KINDS)))

    def on_change(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def on_resource_updated(self, listener: UpdateListener) -> None:
        self._update_listeners.append(listener)

    def _changed(self, server: str, kinds: frozenset[Kind]) -> None:
        upstream = self.upstreams.get(server)
        if upstream is None:  # removed meanwhile
            return
        healthy = [u.listing for u in self.upstreams.values() if u.healthy]
        self.catalog = Catalog.build(healthy, self.separator)
        self._server_catalogs[server] = Catalog.build([upstream.listing], self.separator, prefixed=False)
        for info in self.catalog.tools:
            self._last_server[info.name] = info.server
        self._send(("changed", (server, kinds)))

    def _resource_updated(self, server: str, uri: str, only: Connection | None = None) -> None:
        """`server` sent `resources/updated`; from a client's own session (`only`), for that client alone."""
        self._send(("updated", (server, uri, only)))

    def _send(self, event: tuple[str, Any]) -> None:
        try:
            self._events[0].send_nowait(event)
        except (anyio.WouldBlock, anyio.ClosedResourceError):
            logger.warning("MCP hub: dropped a %s notification (%s)", event[0], event[1])

    async def _pump(self, receive: MemoryObjectReceiveStream[tuple[str, Any]]) -> None:
        async for kind, payload in receive:
            if kind == "changed":
                await _notify(self._listeners, payload)
            else:
                token = ONLY_TO.set(payload[2])  # read by `Downstreams.resource_updated`
                try:
                    await _notify(self._update_listeners, payload[:2])
                finally:
                    ONLY_TO.reset(token)

    # -- views -------------------------------------------------------------------------------------------------

    def catalog_of(self, server: str | None) -> Catalog:
        """The aggregated catalog (None) or one server's catalog with its original names."""
        if server is None:
            return self.catalog
        upstream = self.upstreams.get(server)
        return self._server_catalogs[server] if upstream is not None and upstream.healthy else Catalog()

    def quiet_tool(self, name: str, server: str | None = None) -> bool:
        """Whether a call of this exposed tool can bring the client nothing but its answer: its upstream declares
        no logging and has no per-client sessions (`hub.mcp.lean` then answers with one JSON body)."""
        info = self.catalog_of(server).tools_by_name.get(name)
        upstream = self.upstreams.get(info.server) if info is not None else None
        return upstream is not None and upstream.capabilities.logging is None and not upstream.per_client

    def status(self) -> dict[str, dict[str, Any]]:
        return {name: {"transport": u.spec.kind, **u.status.as_dict()} for name, u in self.upstreams.items()}

    # -- the Python API of the tool loop -----------------------------------------------------------------------

    def tools(self, principal: Principal, servers: Collection[str] | None = None) -> list[ToolInfo]:
        """Tools of healthy upstreams this caller may use, in catalog order."""
        return [
            info
            for info in self.catalog.tools
            if (servers is None or info.server in servers) and visible(principal, info.server, info.original_name)
        ]

    def server_names(self) -> list[str]:
        """Every configured upstream, healthy or not."""
        return list(self.upstreams)

    def prefixes(self) -> dict[str, str]:
        """Each configured upstream's tool-name prefix (its alias or name, then the separator), healthy or not."""
        return {name: upstream.prefix + self.separator for name, upstream in self.upstreams.items()}

    def server_call_timeout(self, name: str) -> float:
        """`call_timeout` of a server, by server name or by one of its exposed tool names."""
        upstream = self.upstreams.get(name) or self.upstreams.get(self._last_server.get(name, ""))
        if upstream is None:
            raise UnknownTool(f"No MCP server or tool named {name!r}.", tool=name)
        return upstream.spec.call_timeout

    def resolve(self, name: str, principal: Principal, server: str | None = None) -> ToolInfo:
        """The tool behind an exposed name.

        Raises:
            UnknownTool, ToolNotPermitted (an `UnknownTool` with the same message), UpstreamUnavailable
        """
        unknown = f"Unknown tool: {name!r}."
        info = self.catalog_of(server).tools_by_name.get(name)
        if info is None:
            owner = server or self._last_server.get(name)
            if owner is not None and owner in self.upstreams and not self.upstreams[owner].healthy:
                # Checked first: a down server's status is not for everyone, nor is which tool names it had.
                original = name if server is not None else name.removeprefix(self.prefixes()[owner])
                if not visible(principal, owner, original):
                    raise ToolNotPermitted(unknown, tool=name, server=owner)
                self.upstreams[owner].session()  # raises UpstreamUnavailable with the reason
            raise UnknownTool(unknown, tool=name)
        if not visible(principal, info.server, info.original_name):
            raise ToolNotPermitted(unknown, tool=name, server=info.server)
        return info

    async def call_tool(self, name: str, arguments: dict[str, Any], principal: Principal, *,
                        timeout: float | None = None, caller: Caller | None = None,
                        server: str | None = None, request_id: str = "") -> types.CallToolResult:  # fmt: skip
        """Call a tool by its exposed name; tool failures, JSON-RPC errors and timeouts are `is_error` results.

        Raises:
            UnknownTool: no such tool (or not in this server's view).
            ToolNotPermitted: the principal may not use it (an `UnknownTool`, with its message).
            InvalidArguments: the arguments are nested too deep or too large (see `hub.limits`).
            UpstreamUnavailable: its server is down, or the connection closed during the call.
        """
        info = self.resolve(name, principal, server)
        started = time.perf_counter()
        error: str | None = "cancelled"
        try:
            try:
                result = await self.call_upstream(info, arguments, principal, timeout=timeout, caller=caller)
            except MCPError as exc:
                result = error_result(f"MCP error {exc.error.code}: {exc.error.message}")
            error = _error_text(result) if result.is_error else None
            return result
        except (UpstreamUnavailable, InvalidArguments) as exc:
            error = exc.message
            raise
        finally:
            self._record(info, principal, started, error, request_id)

    async def call_upstream(
        self,
        info: ToolInfo,
        arguments: dict[str, Any] | None,
        principal: Principal,
        *,
        timeout: float | None = None,
        caller: Caller | None = None,
    ) -> types.CallToolResult:
        """Call a resolved tool on its upstream, through the tool-result cache (read-only tools of servers with
        `cache_ttl`, per key): the one place both the MCP server and the Python API call upstream tools.

        Raises:
            InvalidArguments, UpstreamUnavailable, MCPError: as `Upstream.call_tool`.
        """
        upstream = self.upstreams[info.server]
        key = self.result_key(info, arguments, principal)
        if key is not None and (cached := await self._tool_cache.get(key)) is not None:
            return cached
        read_timeout = timeout if timeout is not None else upstream.spec.call_timeout
        async with self.sessions.using(upstream, caller) as target:
            call = target.call_tool(info.original_name, arguments, read_timeout=read_timeout, caller=caller)
            result = await tracing.tool_call(info.server, info.original_name, arguments, call)
        ttl = upstream.spec.cache_ttl
        if key is not None and ttl is not None:
            await self._tool_cache.put(key, result, ttl)
        return result

    def result_key(self, info: ToolInfo, arguments: dict[str, Any] | None, principal: Principal) -> str | None:
        """The result-cache key of a read-only tool of a server with `cache_ttl`, per key; None: not cached."""
        if self.upstreams[info.server].spec.cache_ttl is None or not cacheable(info.tool):
            return None
        scope = principal.key_id or principal.alias or ""
        try:
            return self._tool_cache.key(scope, info.server, info.original_name, arguments or {})
        except TypeError:
            return None

    def _record(self, info: ToolInfo, principal: Principal, started: float, error: str | None, request_id: str) -> None:
        if self._on_tool_call is not None:
            duration_ms = (time.perf_counter() - started) * 1000
            key = principal.key_id or principal.alias  # the master key (an open gateway) has no id: "master" ("open")
            record = ToolCallRecord(server=info.server, tool=info.original_name, duration_ms=duration_ms, error=error,
                                    key_id=key, request_id=request_id, created_at=time.time())  # fmt: skip
            self._on_tool_call(record)


async def _notify(listeners: Sequence[Callable[..., Awaitable[None]]], payload: tuple[Any, ...]) -> None:
    for listener in listeners:
        try:
            await listener(*payload)
        except Exception:  # a listener's failure must not stop notifications for everyone else
            logger.exception("MCP hub: notification listener failed")


def _check_prefixes(upstreams: Collection[Upstream]) -> None:
    """Two servers with one prefix would shadow each other's tools.

    Raises:
        ConfigError: naming the second server's `alias`.
    """
    seen: dict[str, str] = {}
    for upstream in upstreams:
        other = seen.setdefault(upstream.prefix, upstream.name)
        if other != upstream.name:
            raise ConfigError(
                f"mcp_servers.{upstream.name}.alias", f"prefix {upstream.prefix!r} is already used by {other!r}"
            )


def _error_text(result: types.CallToolResult) -> str:
    texts = [c.text for c in result.content if isinstance(c, types.TextContent)]
    return (" ".join(texts) or "tool error")[:500]


__all__ = ["McpHub", "ToolInfo", "ToolNotPermitted", "UnknownTool", "UpstreamUnavailable"]
