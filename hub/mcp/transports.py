"""Client transports to upstream MCP servers: stdio (own process group, bounded reader), SSE, and streamable HTTP.

Messages from an upstream are bounded by its `max_message_bytes` on stdio and on streamable HTTP event streams; the
legacy SSE client and plain JSON answers over HTTP are read by the SDK without a bound.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TextIO

import httpx2
from mcp import StdioServerParameters
from mcp.client._transport import TransportStreams
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from hub.mcp.config import McpServerSpec
from hub.mcp.stdio_client import bounded_stdio_client


@contextlib.asynccontextmanager
async def open_transport(spec: McpServerSpec, errlog: TextIO, server: str) -> AsyncIterator[TransportStreams]:
    """The read/write streams to one upstream; on exit a stdio child and its process group are stopped."""
    read_timeout = max(300.0, spec.call_timeout)  # idle notification streams stay open between calls
    if spec.kind == "stdio":
        assert spec.command is not None
        params = StdioServerParameters(command=spec.command, args=spec.args, env=spec.env or None, cwd=spec.cwd)
        async with bounded_stdio_client(
            params, errlog, server=server, max_message_bytes=spec.max_message_bytes
        ) as streams:
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
            streamable_http_client(spec.url, http_client=http, max_sse_event_size=spec.max_message_bytes) as streams,
        ):
            yield streams
