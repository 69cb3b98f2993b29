"""A client that goes away during a plain `/mcp` `tools/call` cancels the upstream call (`hub.mcp.lean.Kernel`).

uvicorn does not cancel the app when the client disconnects: unless something watches `receive`, the upstream tool
keeps running and the request stays in flight until `call_timeout`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from tests.mcp.conftest import eventually, hub_app, running
from tests.mcp.test_lean import headers, open_session
from tests.mcp.test_lean_kernel import transport_of

UPSTREAM = """
import json, sys
seen = open(sys.argv[1], "a")
for line in sys.stdin:
    message = json.loads(line)
    rid, method = message.get("id"), message.get("method")
    if method == "notifications/cancelled":
        seen.write(json.dumps(message["params"]) + "\\n")
        seen.flush()
    if rid is None or method == "tools/call":  # a call is never answered: it runs until cancelled
        continue
    if method == "initialize":
        result = {"protocolVersion": message["params"]["protocolVersion"], "capabilities": {"tools": {}},
                  "serverInfo": {"name": "waits", "version": "1"}}
    elif method == "tools/list":
        result = {"tools": [{"name": "wait", "inputSchema": {"type": "object"}}]}
    else:
        result = None
    answer = {"result": result} if result is not None else {"error": {"code": -32601, "message": method}}
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": rid, **answer}) + "\\n")
    sys.stdout.flush()
"""


def raw_post(base: str, session: str, body: dict[str, Any]) -> socket.socket:
    """POST `body` to `/mcp` on a plain socket, not reading the answer (the caller closes the socket)."""
    url = urlsplit(base)
    content = orjson.dumps(body)
    lines = ["POST /mcp HTTP/1.1", f"Host: {url.netloc}", f"Content-Length: {len(content)}"]
    lines += [f"{name}: {value}" for name, value in headers(session).items()]
    sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=10)
    sock.sendall("\r\n".join(lines).encode() + b"\r\n\r\n" + content)
    return sock


@pytest.mark.parametrize(
    "capabilities",
    [{}, {"sampling": {}}],
    ids=["plain call (one JSON body)", "interactive session (an event stream; the hub keeps no events to resume)"],
)
def test_a_client_that_disconnects_during_a_call_cancels_the_upstream_call(
    tmp_path: Path, capabilities: dict[str, Any]
) -> None:
    script, seen = tmp_path / "waits.py", tmp_path / "cancelled.jsonl"
    script.write_text(UPSTREAM)
    seen.touch()
    # call_timeout far beyond the test's waits: only the disconnect can end the call (its timeout also cancels).
    server = {"command": sys.executable, "args": [str(script), str(seen)], "call_timeout": 3600}
    app = hub_app({"waits": server})
    with running(app) as base:
        session = open_session(f"{base}/mcp", capabilities)
        kernel = transport_of(app, session).kernel
        assert kernel is not None
        in_flight: dict[Any, Any] = kernel.dispatcher._in_flight
        body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "waits__wait", "arguments": {}}}
        with contextlib.closing(raw_post(base, session, body)) as sock:
            eventually(lambda: 7 in in_flight, what="the call in flight")
            sock.shutdown(socket.SHUT_RDWR)
        eventually(lambda: bool(seen.read_text()), what="the upstream to get notifications/cancelled")
        eventually(lambda: 7 not in in_flight, what="the call to leave the in-flight table")
    cancelled = [json.loads(line) for line in seen.read_text().splitlines()]
    assert len(cancelled) == 1 and "requestId" in cancelled[0]
