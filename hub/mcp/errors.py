"""Why the hub could not route a tool call (raised by `McpHub.call_tool`; tool failures are results, not errors).

McpHubError
 ├── UnknownTool           no tool by that name in the catalog (REST 404, MCP invalid params)
 │    └── ToolNotPermitted the caller's key may not use this server or tool: answered as an unknown tool
 ├── InvalidArguments      the arguments are nested too deep or too large to send (REST 400, MCP invalid params)
 └── UpstreamUnavailable   the tool's server is down, or its connection closed mid-call (REST 503)
"""

from __future__ import annotations

from typing import Any

import pydantic_core

from hub.limits import JsonTooComplex, check_json, json_too_deep
from hub.mcp.lines import exact_dumps


class McpHubError(Exception):
    """A tool call the hub cannot route."""

    def __init__(self, message: str, *, tool: str | None = None, server: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.tool = tool
        self.server = server


class UnknownTool(McpHubError):
    pass


class ToolNotPermitted(UnknownTool):
    """Raised with an unknown tool's message and answered as one everywhere, so that a key limited to some servers
    or tools cannot find out which others exist by trying names."""


class UpstreamUnavailable(McpHubError):
    pass


class InvalidArguments(McpHubError):
    pass


def check_arguments(arguments: dict[str, Any] | None, max_bytes: int, tool: str) -> None:
    """Refuse arguments no upstream should get: too deep to encode safely, or longer than the server's message limit.

    Raises:
        InvalidArguments
    """
    raw = _encoded(arguments)
    if raw is not None and len(raw) <= max_bytes and not json_too_deep(arguments, raw=raw):  # ~1 us when small
        return
    what = f"The arguments of {tool!r}"
    try:
        check_json(arguments, what=what)
    except JsonTooComplex as exc:
        raise InvalidArguments(exc.message, tool=tool) from None
    if raw is not None and len(raw) > max_bytes:
        raise InvalidArguments(f"{what} take {len(raw)} bytes as JSON, over the limit of {max_bytes}.", tool=tool)


def _encoded(arguments: dict[str, Any] | None) -> bytes | None:
    """The arguments as JSON, by orjson or, for what it refuses (an integer over 64 bits), by pydantic as the SDK
    writes them; None when neither can (nested too deep: `check_json` says so)."""
    try:
        return exact_dumps(arguments)
    except (ValueError, pydantic_core.PydanticSerializationError):
        return None
