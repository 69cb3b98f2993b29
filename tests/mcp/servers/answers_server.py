"""A raw JSON-RPC stdio server whose tools answer in ways a strict reader finds hard; handshake era, no SDK.

Tools:
- `refuse`: a JSON-RPC error answer with the `code` and `message` of its arguments (e.g. -32000, a generic server
  error, which the SDK also uses for a closed connection);
- `pid`: this process id, as text;
- `slow`: answers "done" after `sec` seconds (the server keeps reading meanwhile);
- `surrogate`: text holding a lone UTF-16 surrogate escape (`"a\\ud83d"`, what Node writes for a cut emoji);
- `badutf8`: text holding bytes that are not UTF-8;
- `deep`: `structuredContent` nested `depth` levels deep;
- `garbage`: a line that is no JSON, but names the request's id at its start;
- `garbage_anonymous`: a line that is no JSON at all, then the answer;
- `nullid`: an error answer whose id is null (`code` -32700 and `message` "Parse error" unless its arguments say
  otherwise), as a server sends when it cannot read a request (QA's evil__iderror).
Run: python answers_server.py
"""

import json
import os
import sys
import threading

LOCK = threading.Lock()
TOOLS = ["refuse", "pid", "slow", "surrogate", "badutf8", "deep", "garbage", "garbage_anonymous", "nullid"]


def out(data: bytes) -> None:
    with LOCK:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def answer(rid: object, result: dict) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "result": result}).encode() + b"\n"


def text(rid: object, value: str) -> bytes:
    return answer(rid, {"content": [{"type": "text", "text": value}]})


def call(rid: object, name: str, args: dict) -> None:
    head = b'{"jsonrpc":"2.0","id":' + json.dumps(rid).encode()
    if name == "refuse":
        error = {"code": args.get("code", -32000), "message": args.get("message", "refused")}
        out(json.dumps({"jsonrpc": "2.0", "id": rid, "error": error}).encode() + b"\n")
    elif name == "pid":
        out(text(rid, str(os.getpid())))
    elif name == "slow":
        threading.Timer(float(args.get("sec", 1)), lambda: out(text(rid, "done"))).start()
    elif name == "surrogate":
        out(head + b',"result":{"content":[{"type":"text","text":"a\\ud83d"}]}}\n')
    elif name == "badutf8":
        out(head + b',"result":{"content":[{"type":"text","text":"a\xff\xfeb"}]}}\n')
    elif name == "deep":
        depth = int(args.get("depth", 3000))
        nested = b"[" * depth + b"]" * depth
        out(head + b',"result":{"content":[{"type":"text","text":"d"}],"structuredContent":{"x":' + nested + b"}}}\n")
    elif name == "garbage":
        out(head + b',"result":{"content":[{"type":"text","text":"cut\n')
    elif name == "garbage_anonymous":
        out(b"this is not JSON\n" + text(rid, "after garbage"))
    elif name == "nullid":
        error = {"code": args.get("code", -32700), "message": args.get("message", "Parse error")}
        out(json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode() + b"\n")


def main() -> None:
    for line in sys.stdin:
        message = json.loads(line)
        rid, method = message.get("id"), message.get("method")
        if rid is None:
            continue
        if method == "initialize":
            result = {"protocolVersion": message["params"]["protocolVersion"], "capabilities": {"tools": {}},
                      "serverInfo": {"name": "answers", "version": "1"}}  # fmt: skip
            out(answer(rid, result))
        elif method == "tools/list":
            out(answer(rid, {"tools": [{"name": name, "inputSchema": {"type": "object"}} for name in TOOLS]}))
        elif method == "tools/call":
            call(rid, message["params"]["name"], message["params"].get("arguments") or {})
        else:
            error = {"code": -32601, "message": f"no method {method}"}
            out(json.dumps({"jsonrpc": "2.0", "id": rid, "error": error}).encode() + b"\n")


if __name__ == "__main__":
    main()
