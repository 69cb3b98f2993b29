"""A stdio MCP server for the console tests: `rows` answers the integer it was given, as text and structured content
(pydantic writes an integer of any size exactly)."""

from __future__ import annotations

from mcp.server import MCPServer

server = MCPServer("mirror")


@server.tool()
def rows(max_rows: int) -> dict[str, int]:
    """Answer `max_rows` as it arrived."""
    return {"max_rows": max_rows}


if __name__ == "__main__":
    server.run("stdio")
