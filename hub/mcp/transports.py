"""Client transports to upstream MCP servers: stdio (own process group), SSE, and streamable HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TextIO

import httpx2
from mcp import StdioServerParameters
from mcp.client._transport import TransportStreams
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from hub.mcp.config import McpServerSpec

MAX_SSE_EVENT = 64 * 1024 * 1024
"""Huge tool lists arrive as one SSE event; the SDK's 1 MiB default would cut them."""


@contextlib.asynccontextmanager
async def open_transport(spec: McpServerSpec, errlog: TextIO) -> AsyncIterator[TransportStreams]:
    """The read/write streams to one upstream; on exit a stdio child and its process group are stopped."""
    read_timeout = max(300.0, spec.call_timeout)  # idle notification streams stay open between calls
    if spec.kind == "stdio":
        assert spec.command is not None
        params = StdioServerParameters(command=spec.command, args=spec.args, env=spec.env or None, cwd=spec.cwd)
        async with stdio_client(params, errlog=errlog) as streams:
            yield streams
    elif spec.kind == "sse":
        assert spec.url is not None
        headers = spec.all_headers or None
        async with sse_client(spec.url, headers=headers, timeout=spec.connect_timeout,
                              sse_read_timeout=read_timeout) as streams:  # fmt: skip
            yield streams
    else:
        assert spec.url is not None
        timeout = httpx2.Timeout(spec.connect_timeout, read=read_timeout)
        async with (
            httpx2.AsyncClient(headers=spec.all_headers, timeout=timeout, follow_redirects=True) as http,
            streamable_http_client(spec.url, http_client=http, max_sse_event_size=MAX_SSE_EVENT) as streams,
        ):
            yield streams
