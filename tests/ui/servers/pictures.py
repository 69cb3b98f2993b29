"""A stdio MCP server for the console tests: a tool whose typed arguments (integer, boolean, enum) shape its form,
and whose answer is a PNG image."""

from __future__ import annotations

import struct
import zlib
from typing import Literal

from mcp.server import MCPServer
from mcp.server.mcpserver import Image

server = MCPServer("pictures")


def png(size: int, red: bool) -> bytes:
    """A `size`x`size` PNG of one colour."""
    pixel = b"\xff\x00\x00" if red else b"\x00\x00\xff"
    raw = b"".join(b"\x00" + pixel * size for _ in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@server.tool()
def square(size: int, red: bool = False, label: Literal["none", "small"] = "none") -> Image:
    """Draw a square of one colour."""
    return Image(data=png(size, red), format="png")


if __name__ == "__main__":
    server.run("stdio")
