"""A raw JSON-RPC stdio server that answers with messages as large as asked; tools `big`, `junk` and `echo`.

- `big {"size": N, "id_last": bool}`: a text result of N bytes; with `id_last` the id is written last, as the
  TypeScript SDK writes its responses (`{"result": ..., "jsonrpc": "2.0", "id": 7}`).
- `junk {"size": N}`: N bytes without a newline, then the answer, so both end up on one line.
- `echo {"text": ...}`: answers `echo: <text>`.
Run: python big_server.py
"""

import json
import sys

TOOLS = [{"name": name, "inputSchema": {"type": "object"}} for name in ("big", "junk", "echo")]


def out(data: str) -> None:
    sys.stdout.write(data)
    sys.stdout.flush()


def text(rid: object, value: str, id_last: bool = False) -> str:
    result = {"content": [{"type": "text", "text": value}]}
    message = (
        {"result": result, "jsonrpc": "2.0", "id": rid} if id_last else {"jsonrpc": "2.0", "id": rid, "result": result}
    )
    return json.dumps(message) + "\n"


def call(rid: object, name: str, args: dict) -> str:
    if name == "big":
        return text(rid, "x" * int(args["size"]), bool(args.get("id_last")))
    if name == "junk":
        return "j" * int(args["size"]) + text(rid, "after junk")
    return text(rid, f"echo: {args.get('text', '')}")


def main() -> None:
    for line in sys.stdin:
        message = json.loads(line)
        rid, method, params = message.get("id"), message.get("method"), message.get("params") or {}
        if rid is None:
            continue
        if method == "initialize":
            result = {"protocolVersion": params["protocolVersion"], "capabilities": {"tools": {}},
                      "serverInfo": {"name": "big", "version": "1"}}  # fmt: skip
            out(json.dumps({"jsonrpc": "2.0", "id": rid, "result": result}) + "\n")
        elif method == "tools/list":
            out(json.dumps({"jsonrpc": "2.0", "id": rid, "result": {"tools": TOOLS}}) + "\n")
        elif method == "tools/call":
            out(call(rid, params["name"], params.get("arguments") or {}))
        else:
            out(json.dumps({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": method}}) + "\n")


if __name__ == "__main__":
    main()
