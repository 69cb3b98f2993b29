"""`toolhub stdio` and `toolhub tools`: the hub for desktop clients that launch a command, and a catalog printout.

Stdio mode is local: the client that launched the process is trusted as the master key. Upstreams get up to
`STDIO_START_WAIT` seconds to come up before the first request is read, so a desktop client's first `tools/list` is
complete; slower ones join later with a `list_changed` notification. Logs go to stderr; stdout is the MCP wire.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from mcp.server.stdio import stdio_server

from hub.accounts.auth import MASTER
from hub.config import Config
from hub.mcp.catalog import ToolInfo
from hub.mcp.hub import McpHub
from hub.mcp.notify import Downstreams
from hub.mcp.server import build_server

STDIO_START_WAIT = 5.0
"""Seconds `toolhub stdio` gives upstreams before reading the client's first request."""


async def serve_stdio(config: Config, *, separator: str | None = None) -> None:
    """Serve the aggregated catalog on stdin/stdout until the client closes stdin."""
    hub = McpHub(config.mcp_servers, separator=separator or config.mcp_tool_separator)
    downstreams = Downstreams()
    server = build_server(hub, downstreams, default_principal=MASTER)

    async def changed(server_name: str, kinds: frozenset[str]) -> None:
        await downstreams.changed(kinds)

    async def updated(server_name: str, uri: str) -> None:
        await downstreams.resource_updated(uri)

    hub.on_change(changed)
    hub.on_resource_updated(updated)
    async with hub.running():
        await hub.wait_ready(STDIO_START_WAIT)
        try:
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())
        finally:
            downstreams.close()


async def print_catalog(config: Config, out: TextIO = sys.stdout, *, limit: float | None = None) -> int:
    """Connect every upstream, print the catalog and each server's health; 1 if a server is not ready."""
    hub = McpHub(config.mcp_servers, separator=config.mcp_tool_separator)
    async with hub.running():
        await hub.wait_ready(limit)
        tools = hub.tools(MASTER)
        status = hub.status()
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
