"""Downstream connections of one served MCP server, for change notifications in both protocol eras (mcp.md §6).

Handshake-era connections are registered when their `notifications/initialized` arrives and dropped when they
close; 2026-era clients get the same events through `subscriptions/listen` on the subscription bus. Every client is
sent its notifications concurrently and for at most `SEND_TIMEOUT` seconds: a client that stopped reading (its
transport's buffers full) loses that notification instead of stalling them for everyone.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import anyio
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ToolsListChanged,
)

logger = logging.getLogger("toolhub.mcp")

SEND_TIMEOUT = 5.0
"""Seconds one client may take to accept one notification."""
Send = Callable[[], Awaitable[None]]


class Downstreams:
    """Live connections of one MCP server: broadcasts list changes, delivers resource updates to subscribers."""

    def __init__(self) -> None:
        self.bus = InMemorySubscriptionBus()
        self.listen = ListenHandler(self.bus)
        self._connections: dict[int, Connection] = {}
        self._subscribers: dict[str, dict[int, Connection]] = {}

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
        sends: list[Send] = [lambda c=c: c.send_resource_updated(uri) for c in self._subscribers.get(uri, {}).values()]
        await _send_all([*sends, lambda: self.bus.publish(ResourceUpdated(uri))])

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
