"""An MCPServer over stdio whose tools return values, so each has an output schema and sends `structuredContent`.

Tools: `text {"n": N}` returns a string of N characters (`structuredContent` `{"result": "xxx..."}`).
Run: python structured_server.py
"""

from mcp.server import MCPServer

server = MCPServer("structured")


@server.tool()
def text(n: int = 10) -> str:
    """A string of n characters."""
    return "x" * n


if __name__ == "__main__":
    server.run("stdio")
