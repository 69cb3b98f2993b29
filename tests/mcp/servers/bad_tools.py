"""A raw JSON-RPC stdio server with a huge, partly invalid tool list over several pages, as strict clients reject.

`python bad_tools.py N` serves N valid tools `t0000`..., in pages of 500, plus broken ones: a tool without an input
schema, one with `inputSchema: {}`, one whose schema is `{"type": "string"}`, one without a name, a duplicate, one
with a dotted name and one whose name is 100 characters long. Every tool echoes its name when called.
"""

import json
import sys

PAGE = 500


def tools(count: int) -> list[dict]:
    good = [{"name": f"t{i:04d}", "description": "x" * 200, "inputSchema": {"type": "object"}} for i in range(count)]
    broken = [
        {"name": "no_schema"},
        {"name": "empty_schema", "inputSchema": {}},
        {"name": "string_schema", "inputSchema": {"type": "string"}},
        {"description": "no name", "inputSchema": {"type": "object"}},
        {"name": "t0000", "inputSchema": {"type": "object"}},
        {"name": "dotted.name", "inputSchema": {"type": "object"}},
        {"name": "long_" + "n" * 95, "inputSchema": {"type": "object"}},
    ]
    return good + broken


def answer(message: dict, all_tools: list[dict]) -> dict | None:
    method, rid = message.get("method"), message.get("id")
    if rid is None:
        return None
    if method == "initialize":
        result = {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "bad-tools", "version": "1"},
        }
    elif method == "tools/list":
        start = int((message.get("params") or {}).get("cursor") or 0)
        result = {"tools": all_tools[start : start + PAGE]}
        if start + PAGE < len(all_tools):
            result["nextCursor"] = str(start + PAGE)
    elif method == "tools/call":
        name = message["params"]["name"]
        result = {"content": [{"type": "text", "text": f"called {name}"}]}
    elif method == "ping":
        result = {}
    else:
        return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": f"no method {method}"}}
    return {"jsonrpc": "2.0", "id": rid, "result": result}


if __name__ == "__main__":
    all_tools = tools(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
    for line in sys.stdin:
        reply = answer(json.loads(line), all_tools)
        if reply is not None:
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
