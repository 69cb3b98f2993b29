"""What the postgres_db backend tests share: an in-process MCP call and the text of an error result."""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
from mcp import Client

INJECTION = 'x"; DROP TABLE y; --'
"""An identifier that would drop table `y` if it were ever spliced into SQL unquoted."""


async def call(server: Any, tool: str, **arguments: Any) -> types.CallToolResult:
    """Call one tool through a fresh in-process client."""
    with anyio.fail_after(10):
        async with Client(server) as client:
            return await client.call_tool(tool, arguments)


def error_text(result: types.CallToolResult) -> str:
    """Return the text of an is_error result, failing if the call succeeded."""
    assert result.is_error, result.structured_content
    assert isinstance(result.content[0], types.TextContent)
    return result.content[0].text
