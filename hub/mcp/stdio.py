"""`toolhub stdio` and `toolhub tools`: the hub for desktop clients that launch a command, and a catalog printout.

Stdio mode is local: the client that launched the process is trusted as the master key. `initialize` is answered at
once, whatever state the upstreams are in (clients time out `initialize` after 5 s, and one hung upstream must not
fail them); upstreams that come up later are announced with `list_changed`. Requests that read the catalog (lists,
calls) wait, up to `LIST_WAIT` seconds after start, for upstreams still on their first connection attempt, so that a
client that never re-lists still sees the servers that start fast.

Every exit path stops every upstream process group within `hub.mcp.process.STOP_BUDGET` seconds: stdin closed,
SIGTERM, SIGINT or SIGHUP (also while the client keeps stdin open: the wire is read without a thread). Logs go to
stderr; stdout is the MCP wire.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any, TextIO

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from hub.accounts.auth import MASTER
from hub.catalog.service import check_namespaces, standalone_catalog
from hub.config import Config
from hub.mcp import process as processes
from hub.mcp.catalog import ToolInfo
from hub.mcp.hub import McpHub
from hub.mcp.notify import Downstreams
from hub.mcp.server import build_server
from hub.mcp.stdio_wire import stdio_wire

logger = logging.getLogger("toolhub.mcp")

LIST_WAIT = 3.0
"""Seconds after start during which a request that reads the catalog waits for upstreams still on their first
connection attempt."""
CATALOG_REQUESTS = frozenset(("tools/list", "resources/list", "resources/templates/list", "prompts/list",
                              "tools/call", "resources/read", "prompts/get"))  # fmt: skip
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


async def serve_stdio(config: Config, *, separator: str | None = None) -> int:
    """Serve the aggregated catalog on stdin/stdout until the client closes stdin or a signal arrives.

    Returns:
        The exit status: 0 once stdin closed, 128 + the signal's number after a signal.

    Raises:
        ConfigError: a server named like the search meta-tools (`hub`), before any upstream starts.
    """
    check_namespaces(config)
    hub = McpHub(config.mcp_servers, separator=separator or config.mcp_tool_separator)
    async with until_signal() as stopped, standalone_catalog(config) as catalog:
        hub.catalog_service = catalog  # search mode by config and clientInfo (Cursor: 40), stored large results
        await _serve(hub)
    return stopped.status


async def _serve(hub: McpHub) -> None:
    downstreams = Downstreams()
    server = build_server(hub, downstreams, default_principal=MASTER)
    server.middleware.append(first_lists_wait(hub, anyio.current_time() + LIST_WAIT))

    async def changed(server_name: str, kinds: frozenset[str]) -> None:
        await downstreams.changed(kinds)

    async def updated(server_name: str, uri: str) -> None:
        await downstreams.resource_updated(uri)

    hub.on_change(changed)
    hub.on_resource_updated(updated)
    async with hub.running():
        try:
            async with stdio_wire() as (read, write):
                await server.run(read, write, server.create_initialization_options())
        finally:
            downstreams.close()


class Stopped:
    """The signal that ended serving, if one did."""

    signum: int | None = None

    @property
    def status(self) -> int:
        return 0 if self.signum is None else 128 + self.signum


@contextlib.asynccontextmanager
async def until_signal() -> AsyncIterator[Stopped]:
    """Cancel the body at the first of `SIGNALS`. They stay handled until the body has stopped every upstream (a
    second signal must not kill the process half way); then any process group left is killed."""
    stopped = Stopped()
    try:
        with anyio.open_signal_receiver(*SIGNALS) as signals:
            async with anyio.create_task_group() as tg:
                with anyio.CancelScope() as body:
                    tg.start_soon(_watch, signals, stopped, body)
                    yield stopped
                tg.cancel_scope.cancel()
    finally:  # a body that failed may not have stopped its upstreams
        if left := processes.kill_all():
            logger.warning("killed %d MCP server process group(s) that outlived the hub", left)


async def _watch(signals: AsyncIterator[int], stopped: Stopped, body: anyio.CancelScope) -> None:
    async for signum in signals:
        if stopped.signum is None:
            stopped.signum = signum
            logger.info("%s: stopping the MCP servers", signal.Signals(signum).name)
            body.cancel()


def first_lists_wait(hub: McpHub, deadline: float) -> Any:
    """Server middleware: until `deadline`, a request that reads the catalog first waits for upstreams still on their
    first connection attempt."""

    async def middleware(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method in CATALOG_REQUESTS and (left := deadline - anyio.current_time()) > 0:
            await hub.wait_ready(left)
        return await call_next(ctx)

    return middleware


async def print_catalog(config: Config, out: TextIO = sys.stdout, *, limit: float | None = None) -> int:
    """Connect every upstream, print the catalog and each server's health; 1 if a server is not ready, 128 + its
    number after a signal (every upstream stopped, nothing printed)."""
    hub = McpHub(config.mcp_servers, separator=config.mcp_tool_separator)
    tools: list[ToolInfo] = []
    status: dict[str, dict[str, Any]] = {}
    async with until_signal() as stopped, hub.running():
        await hub.wait_ready(limit)
        tools = hub.tools(MASTER)
        status = hub.status()
    if stopped.signum is not None:
        return stopped.status
    out.write(format_table(tools))
    out.write("\nservers:\n")
    for name, state in status.items():
        detail = f" - {state['detail']}" if state["detail"] else ""
        out.write(f"  {name} ({state['transport']}): {state['state']}{detail}\n")
    return 0 if all(s["state"] == "ready" for s in status.values()) else 1


def format_table(tools: Sequence[ToolInfo], width: int = 60) -> str:
    """Tools as a fixed-width text table: name, server, original name, first line of the description."""
    rows = [("NAME", "SERVER", "ORIGINAL", "DESCRIPTION")]
    for tool in tools:
        summary = (tool.description or "").strip().splitlines()[0] if tool.description else ""
        rows.append((tool.name, tool.server, tool.original_name, summary[:width]))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join([*(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)), row[3]]).rstrip()
             for row in rows]  # fmt: skip
    return "\n".join(lines) + f"\n({len(tools)} tools)\n"
