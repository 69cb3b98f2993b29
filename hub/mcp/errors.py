"""Why the hub could not route a tool call (raised by `McpHub.call_tool`; tool failures are results, not errors).

McpHubError
 ├── UnknownTool           no tool by that name in the catalog (REST 404)
 ├── ToolNotPermitted      the caller's key may not use this server or tool (REST 403)
 ├── InvalidArguments      the arguments are nested too deep or too large to send (REST 400, MCP invalid params)
 └── UpstreamUnavailable   the tool's server is down, or its connection closed mid-call (REST 503)
"""

from __future__ import annotations


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
