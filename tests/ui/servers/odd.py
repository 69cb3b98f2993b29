"""A raw stdio MCP server (JSON-RPC lines, no SDK), as a server in another language might be: its tools carry input
schemas the SDK accepts but no form builder should trust (an `enum` that is no list, a property that is `true`, a
description that is no string), and one description is 3,000 characters without a space."""

from __future__ import annotations

import json
import sys
from typing import Any

LONG = "a very long description " + "x" * 3000
TOOLS: list[dict[str, Any]] = [
    {"name": "pick", "description": "enum is not an array",
     "inputSchema": {"type": "object", "properties": {"a": {"enum": 5}, "b": {"enum": True, "type": "string"},
                                                      "c": True, "d": {"type": ["integer", "null"]},
                                                      "e": {"type": "string", "description": {"not": "text"},
                                                            "default": {"x": 1}},
                                                      "f": {"enum": [1, None, "z"]}}}},
    {"name": "big", "description": LONG, "inputSchema": {"type": "object", "properties": {"n": {"type": "integer"}}}},
]  # fmt: skip


def answer(message: dict[str, Any]) -> dict[str, Any]:
    method = message.get("method")
    if method == "initialize":
        version = message["params"].get("protocolVersion", "2025-06-18")
        return {
            "protocolVersion": version,
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "odd", "version": "1"},
        }
    if method == "tools/list":
        return {"tools": TOOLS}
    if method == "tools/call":
        return {"content": [{"type": "text", "text": json.dumps(message["params"].get("arguments"))}]}
    return {}


def main() -> None:
    for line in sys.stdin:
        message = json.loads(line)
        if "id" in message:
            sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": answer(message)}) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
