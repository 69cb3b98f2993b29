"""A raw JSON-RPC stdio server whose `nullid` tool answers with an error whose id is null, as a server does when it
cannot read a request (QA's evil__iderror); `slow` answers "done" after `sec` seconds. Handshake era, no SDK.
Run: python null_id_server.py
"""

import json
import sys
import threading

LOCK = threading.Lock()


def out(message: dict) -> None:
    with LOCK:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def call(rid: object, name: str, args: dict) -> None:
    if name == "nullid":
        error = {"code": args.get("code", -32700), "message": args.get("message", "Parse error")}
        out({"jsonrpc": "2.0", "id": None, "error": error})
    elif name == "slow":
        done = {"jsonrpc": "2.0", "id": rid, "result": {"content": [{"type": "text", "text": "done"}]}}
        threading.Timer(float(args.get("sec", 1)), lambda: out(done)).start()


def main() -> None:
    for line in sys.stdin:
        message = json.loads(line)
        rid, method = message.get("id"), message.get("method")
        if rid is None:
            continue
        if method == "initialize":
            result = {"protocolVersion": message["params"]["protocolVersion"], "capabilities": {"tools": {}},
                      "serverInfo": {"name": "nullid", "version": "1"}}  # fmt: skip
            out({"jsonrpc": "2.0", "id": rid, "result": result})
        elif method == "tools/list":
            tools = [{"name": name, "inputSchema": {"type": "object"}} for name in ("nullid", "slow")]
            out({"jsonrpc": "2.0", "id": rid, "result": {"tools": tools}})
        elif method == "tools/call":
            call(rid, message["params"]["name"], message["params"].get("arguments") or {})
        else:
            out({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": f"no method {method}"}})


if __name__ == "__main__":
    main()
