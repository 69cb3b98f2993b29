"""A raw JSON-RPC stdio MCP server listing the synthetic catalog's tools of the servers named in argv (10 each);
a call answers `<tool> called with <arguments>`.

Run: python -m tests.catalog.servers.catalog_server github slack ...
"""

import json
import sys

from tests.catalog.synthetic import catalog


def _tools(servers: list[str]) -> list[dict[str, object]]:
    chosen = [t for t in catalog() if t.server in servers]
    return [{"name": t.original_name, "description": t.description, "inputSchema": dict(t.input_schema)}
            for t in chosen]  # fmt: skip


def _answer(method: str, params: dict[str, object], tools: list[dict[str, object]]) -> dict[str, object]:
    if method == "initialize":
        return {"result": {"protocolVersion": params["protocolVersion"], "capabilities": {"tools": {}},
                           "serverInfo": {"name": "catalog", "version": "1"}}}  # fmt: skip
    if method == "tools/list":
        return {"result": {"tools": tools}}
    if method == "tools/call":
        text = f"{params['name']} called with {json.dumps(params.get('arguments') or {}, sort_keys=True)}"
        return {"result": {"content": [{"type": "text", "text": text}]}}
    if method == "ping":
        return {"result": {}}
    return {"error": {"code": -32601, "message": method}}


def main() -> None:
    tools = _tools(sys.argv[1:])
    for line in sys.stdin:
        message = json.loads(line)
        if message.get("id") is None:
            continue
        answer = _answer(message.get("method"), message.get("params") or {}, tools)
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": message["id"], **answer}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
