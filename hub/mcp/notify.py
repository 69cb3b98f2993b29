"""Downstream connections of one served MCP server, for change notifications in both protocol eras (mcp.md §6).

Handshake-era connections are registered when their `notifications/initialized` arrives and dropped when they
close; 2026-era clients get the same events through `subscriptions/listen` on the subscription bus. Every client is
sent its notifications concurrently and for at most `SEND_TIMEOUT` seconds: a client that stopped reading (its
transport's buffers full) loses that notification instead of stalling them for everyone.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import anyio
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.subscriptions import (
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    ToolsListChanged,
)
from mcp_types import SubscriptionsListenRequestParams, SubscriptionsListenResult

logger = logging.getLogger("toolhub.mcp")

SEND_TIMEOUT = 5.0
"""Seconds one client may take to accept one notification."""
Send = Callable[[], Awaitable[None]]
MayRead = Callable[[str], bool]
"""Whether a listener's key may see updates of a resource URI (as this endpoint exposes it)."""

ONLY_TO: contextvars.ContextVar[Connection | None] = contextvars.ContextVar("toolhub_mcp_only_to", default=None)
"""Set while an update from a client's own upstream session is delivered (`McpHub`): it goes to that client only."""
_LISTENER: contextvars.ContextVar[MayRead | None] = contextvars.ContextVar("toolhub_mcp_listener", default=None)


class ScopedBus:
    """An in-process subscription bus (as the SDK's) whose `resources/updated` events reach only the listen streams
    whose key may use the resource's server; list changes reach all."""

    def __init__(self) -> None:
        self._listeners: dict[object, tuple[MayRead | None, Callable[[ServerEvent], None]]] = {}

    async def publish(self, event: ServerEvent) -> None:
        for may_read, listener in list(self._listeners.values()):
            if isinstance(event, ResourceUpdated) and may_read is not None and not may_read(event.uri):
                continue
            try:
                listener(event)
            except Exception:  # fan-out boundary, as the SDK's bus: one listener must not starve the others
                logger.exception("MCP: a subscription listener failed")
        await anyio.lowlevel.checkpoint()

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        """Register `listener`, scoped to the key of the `listen` call that registers it (`Downstreams.listen_as`)."""
        token = object()
        self._listeners[token] = (_LISTENER.get(), listener)

        def unsubscribe() -> None:
            self._listeners.pop(token, None)

        return unsubscribe


class Downstreams:
    """Live connections of one MCP server: broadcasts list changes, delivers resource updates to subscribers."""

    def __init__(self) -> None:
        self.bus = ScopedBus()
        self.listen = ListenHandler(self.bus)
        """Every listen stream gets every event: `listen_as` scopes resource updates to the caller's key."""
        self._connections: dict[int, Connection] = {}
        self._subscribers: dict[str, dict[int, Connection]] = {}

    async def listen_as(self, ctx: ServerRequestContext[Any, Any], params: SubscriptionsListenRequestParams,
                        may_read: MayRead) -> SubscriptionsListenResult:  # fmt: skip
        """`subscriptions/listen` for a caller who gets the updates of the resource URIs `may_read` allows."""
        _LISTENER.set(may_read)  # this handler's own task context: the stream subscribes to the bus in it
        return await self.listen(ctx, params)

    def __len__(self) -> int:
        return len(self._connections)

    async def middleware(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        """`Server.middleware` entry: registers each handshake-era connection once it is initialized."""
        result = await call_next(ctx)
        if ctx.method == "notifications/initialized":
            self._register(connection_of(ctx))
        return result

    def _register(self, connection: Connection) -> None:
        key = id(connection)
        if key in self._connections:
            return
        self._connections[key] = connection
        connection.exit_stack.callback(self._forget, key)

    def _forget(self, key: int) -> None:
        self._connections.pop(key, None)
        for subscribers in self._subscribers.values():
            subscribers.pop(key, None)

    def subscribe(self, ctx: ServerRequestContext[Any, Any], uri: str) -> None:
        connection = connection_of(ctx)
        self._register(connection)
        self._subscribers.setdefault(uri, {})[id(connection)] = connection

    def unsubscribe(self, ctx: ServerRequestContext[Any, Any], uri: str) -> None:
        self._subscribers.get(uri, {}).pop(id(connection_of(ctx)), None)

    async def changed(self, kinds: Collection[str]) -> None:
        """Tell every connected client which lists changed."""
        sends: list[Send] = []
        for connection in list(self._connections.values()):
            if "tools" in kinds:
                sends.append(connection.send_tool_list_changed)
            if "resources" in kinds:
                sends.append(connection.send_resource_list_changed)
            if "prompts" in kinds:
                sends.append(connection.send_prompt_list_changed)
        for kind, event in (("tools", ToolsListChanged()), ("resources", ResourcesListChanged()),
                            ("prompts", PromptsListChanged())):  # fmt: skip
            if kind in kinds:
                sends.append(lambda event=event: self.bus.publish(event))
        await _send_all(sends)

    async def resource_updated(self, uri: str) -> None:
        """Tell `uri`'s subscribers; an update of a client's own upstream session (`ONLY_TO`) goes to that client."""
        only = ONLY_TO.get()
        subscribers = [c for c in self._subscribers.get(uri, {}).values() if only is None or c is only]
        sends: list[Send] = [lambda c=c: c.send_resource_updated(uri) for c in subscribers]
        if only is None:  # 2026-era listeners have no own upstream sessions
            sends.append(lambda: self.bus.publish(ResourceUpdated(uri)))
        await _send_all(sends)

    def close(self) -> None:
        """End open `subscriptions/listen` streams so shutdown does not wait on them."""
        self.listen.close()


async def _send_all(sends: list[Send]) -> None:
    async with anyio.create_task_group() as tg:
        for send in sends:
            tg.start_soon(_bounded, send)


async def _bounded(send: Send) -> None:
    with anyio.move_on_after(SEND_TIMEOUT) as scope:
        try:
            await send()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return  # the client is gone; its connection is forgotten when it closes
    if scope.cancelled_caught:
        logger.warning("MCP: a client took no notification within %g s; dropped it", SEND_TIMEOUT)


def connection_of(ctx: ServerRequestContext[Any, Any]) -> Connection:
    # `ServerSession` keeps its connection private in mcp 2.3 and offers no registry of connections (mcp.md §6.1).
    return ctx.session._connection  # pyright: ignore[reportPrivateUsage]
