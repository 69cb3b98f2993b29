"""The trace context of an MCP request as an HTTP header, for HTTP upstreams that read `traceparent` there.

The MCP SDK writes the caller's context into each JSON-RPC request's `_meta` (SEP-414) when a span is current
(`spans.tool_call` makes the tool call's span current). Its HTTP transport posts from a task of the session, which
does not see the request's context, so the header is copied from the body: a substring test when there is none.
"""

from __future__ import annotations

import re

import httpx2

_META = re.compile(rb'"traceparent"\s*:\s*"(00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2})"')


def copy_meta_traceparent(request: httpx2.Request) -> None:
    """Hook for the HTTP transport: a POSTed JSON-RPC body's `_meta.traceparent` becomes its `traceparent` header."""
    if request.method != "POST" or "traceparent" in request.headers:
        return
    try:
        body = request.content
    except httpx2.RequestNotRead:  # a streamed body: nothing to look into
        return
    if b'"traceparent"' not in body:
        return
    found = _META.search(body)
    if found is not None:
        request.headers["traceparent"] = found.group(1).decode()
