"""Why the hub could not route a tool call (raised by `McpHub.call_tool`; tool failures are results, not errors).

McpHubError
 ├── UnknownTool           no tool by that name in the catalog (REST 404)
 ├── ToolNotPermitted      the caller's key may not use this server or tool (REST 403)
 ├── InvalidArguments      the arguments are nested too deep or too large to send (REST 400, MCP invalid params)
 └── UpstreamUnavailable   the tool's server is down, or its connection closed mid-call (REST 503)
"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson

from hub.limits import JsonTooComplex, check_json, json_too_deep


class McpHubError(Exception):
    """A tool call the hub cannot route."""

    def __init__(self, message: str, *, tool: str | None = None, server: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.tool = tool
        self.server = server


class UnknownTool(McpHubError):
    pass


class ToolNotPermitted(McpHubError):
    pass


class UpstreamUnavailable(McpHubError):
    pass


class InvalidArguments(McpHubError):
    pass


def check_arguments(arguments: dict[str, Any] | None, max_bytes: int, tool: str) -> None:
    """Refuse arguments no upstream should get: too deep to encode safely, or longer than the server's message limit.

    Raises:
        InvalidArguments
    """
    with contextlib.suppress(orjson.JSONEncodeError):  # deeper than orjson writes: check_json says so below
        raw = orjson.dumps(arguments)
        if len(raw) <= max_bytes and not json_too_deep(arguments, raw=raw):  # ~1 us for the usual small arguments
            return
    try:
        check_json(arguments, what=f"The arguments of {tool!r}", max_bytes=max_bytes)
    except JsonTooComplex as exc:
        raise InvalidArguments(exc.message, tool=tool) from None
