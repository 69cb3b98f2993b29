"""A raw JSON-RPC stdio server that misbehaves in one way, chosen by its first argument; one tool, `echo`.

- `stuck`: the first `tools/call` stops the process from reading stdin (it sleeps for an hour).
- `hang_resources`: advertises resources but never answers `resources/list`.
- `flap`: exits 0.2 s after answering `tools/list`, every time it is started.
- `mirror`: `echo` answers with its arguments as they came (Python's json keeps integers of any size exact), as text
  and as `structuredContent`.
Run: python raw_server.py MODE
"""

import json
import os
import sys
import threading
import time


def out(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main(mode: str) -> None:
    for line in sys.stdin:
        message = json.loads(line)
        rid, method = message.get("id"), message.get("method")
        if rid is None:
            continue
        if method == "initialize":
            capabilities = {"tools": {}, "resources": {}} if mode == "hang_resources" else {"tools": {}}
            info = {"name": f"raw-{mode}", "version": "1"}
            version = message["params"]["protocolVersion"]
            out({"jsonrpc": "2.0", "id": rid, "result": {"protocolVersion": version, "capabilities": capabilities,
                                                         "serverInfo": info}})  # fmt: skip
        elif method == "tools/list":
            out(
                {
                    "jsonrpc": "2.0",
                    "id": rid,
                    "result": {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]},
                }
            )
            if mode == "flap":
                threading.Timer(0.2, lambda: os._exit(1)).start()
        elif method == "resources/list" and mode == "hang_resources":
            continue
        elif method == "tools/call":
            if mode == "stuck":
                time.sleep(3600)
            if mode == "mirror":
                arguments = message["params"].get("arguments")
                content = [{"type": "text", "text": json.dumps(arguments)}]
                out({"jsonrpc": "2.0", "id": rid, "result": {"content": content, "structuredContent": arguments}})
                continue
            out({"jsonrpc": "2.0", "id": rid, "result": {"content": [{"type": "text", "text": "ok"}]}})
        else:
            out({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": f"no method {method}"}})


if __name__ == "__main__":
    main(sys.argv[1])
