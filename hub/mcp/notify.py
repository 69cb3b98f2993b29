"""Downstream connections of one served MCP server, for change notifications in both protocol eras (mcp.md §6).

Handshake-era connections are registered when their `notifications/initialized` arrives and dropped when they
close; 2026-era clients get the same events through `subscriptions/listen` on the subscription bus.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

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
        for connection in list(self._connections.values()):
            if "tools" in kinds:
                await connection.send_tool_list_changed()
            if "resources" in kinds:
                await connection.send_resource_list_changed()
            if "prompts" in kinds:
                await connection.send_prompt_list_changed()
        for kind, event in (("tools", ToolsListChanged()), ("resources", ResourcesListChanged()),
                            ("prompts", PromptsListChanged())):  # fmt: skip
            if kind in kinds:
                await self.bus.publish(event)

    async def resource_updated(self, uri: str) -> None:
        for connection in list(self._subscribers.get(uri, {}).values()):
            await connection.send_resource_updated(uri)
        await self.bus.publish(ResourceUpdated(uri))

    def close(self) -> None:
        """End open `subscriptions/listen` streams so shutdown does not wait on them."""
        self.listen.close()


def connection_of(ctx: ServerRequestContext[Any, Any]) -> Connection:
    # `ServerSession` keeps its connection private in mcp 2.3 and offers no registry of connections (mcp.md §6.1).
    return ctx.session._connection  # pyright: ignore[reportPrivateUsage]
