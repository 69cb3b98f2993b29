"""The floor under any `/mcp` hop: what the official client pays to reach a stdio upstream through the thinnest
possible streamable-HTTP forwarder, against talking stdio to it directly.

    python bench/mcp_floor.py [--calls 600] [--warmup 40] [--runs 3]

Issue 15 asks the hub to add at most 1 ms p50 to a `tools/call` over a client talking stdio straight to the upstream.
This measures what no hub can go below on this machine: a forwarder (`--serve-floor`, a separate process, uvloop as
`toolhub serve` runs) that parses the HTTP request with httptools and its JSON-RPC body with orjson, writes it to the
upstream's stdin with a fresh id, and answers the upstream's line as one `application/json` body. It has no auth,
no catalog, no sessions beyond one fixed id, no checks: it is not a server anyone should run, only a lower bound.

Rows, each at concurrency 1 (p50 / p99 in ms; the median of `--runs` runs; bounded loops, 127.0.0.1 only):
  direct      the official `ClientSession` on stdio to bench/mcp_latency.py's echo upstream (`send_request`);
  floor       the same client and call over streamable HTTP to the forwarder, which forwards to the same upstream;
  hub         the same client and call on `toolhub serve`'s `/mcp` (this checkout), the same upstream behind it.
`added` is the row's p50 minus direct's; CPU columns are ms per call of the client (`client`) and of the process in
the middle (`middle`, from /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httptools
import mcp_types as types
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import mcp_latency as lat  # noqa: E402

from tests.support.servers import inherited_socket, wait_for_port  # noqa: E402

SESSION = b"floor"
UPSTREAM = [sys.executable, str(ROOT / "bench" / "mcp_latency.py"), "--serve-stdio"]


# -- the forwarder --------------------------------------------------------------------------------------------------


class Upstream:
    """The echo upstream on pipes: one line out per request, answers matched by a fresh id."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.ids = itertools.count(1)
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}

    @classmethod
    async def start(cls) -> Upstream:
        proc = await asyncio.create_subprocess_exec(*UPSTREAM, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                    stderr=subprocess.DEVNULL, limit=2**24)  # fmt: skip
        upstream = cls(proc)
        asyncio.get_running_loop().create_task(upstream.read())
        return upstream

    async def read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            message = orjson.loads(line)
            future = self.waiting.pop(message.get("id"), None)
            if future is not None and not future.done():
                future.set_result(message)

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        upstream_id = next(self.ids)
        future = self.waiting[upstream_id] = asyncio.get_running_loop().create_future()
        self.proc.stdin.write(orjson.dumps({**message, "id": upstream_id}) + b"\n")
        answer = await future
        return {**answer, "id": message["id"]}

    def notify(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(orjson.dumps(message) + b"\n")


class FloorProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, one request at a time per connection (the client's pool opens more for concurrency)."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.parser = httptools.HttpRequestParser(self)
        self.transport: Any = None
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's transports are no `asyncio.Transport` instances

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.body = []

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        if method != b"POST":  # the client's GET for a standalone stream, its DELETE at the end
            self.reply(405 if method == b"GET" else 200, b"")
            return
        message = orjson.loads(b"".join(self.body))
        if "id" not in message:
            self.upstream.notify(message)
            self.reply(202, b"")
        else:
            asyncio.get_running_loop().create_task(self.forward(message))

    async def forward(self, message: dict[str, Any]) -> None:
        self.reply(200, orjson.dumps(await self.upstream.request(message)))

    def reply(self, status: int, body: bytes) -> None:
        kind = b"content-type: application/json\r\n" if body else b""
        head = b"HTTP/1.1 %d X\r\n%smcp-session-id: %s\r\ncontent-length: %d\r\n\r\n" % (status, kind, SESSION,
                                                                                          len(body))  # fmt: skip
        self.transport.write(head + body)


async def serve_floor(fd: int) -> None:
    upstream = await Upstream.start()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FloorProtocol(upstream), sock=socket.socket(fileno=fd))
    async with server:
        await server.serve_forever()


# -- measuring ------------------------------------------------------------------------------------------------------


def floor_process() -> Any:
    """The forwarder in its own process, on a loopback socket bound here: (url, pid) while the block runs."""
    import contextlib

    @contextlib.contextmanager
    def running() -> Any:
        with inherited_socket() as (sock, port):
            proc = subprocess.Popen([sys.executable, __file__, "--serve-floor", str(sock.fileno())],
                                    pass_fds=(sock.fileno(),))  # fmt: skip
        try:
            wait_for_port(port, proc)
            yield f"http://127.0.0.1:{port}", proc.pid
        finally:
            proc.terminate()
            proc.wait(10)

    return running()


async def over_http(path: str, url: str, pid: int, calls: int, warmup: int) -> lat.Row:
    request = types.CallToolRequest(params=types.CallToolRequestParams(name="echo", arguments={"text": "hi"}))
    hub_request = types.CallToolRequest(params=types.CallToolRequestParams(name="up__echo", arguments={"text": "hi"}))
    async with lat.hub_session(url) as session:
        chosen = hub_request if path == "hub" else request
        call = lambda: session.send_request(chosen, types.CallToolResult)  # noqa: E731
        return await lat.measured(path, call, calls, warmup, 1, pid)


async def direct(calls: int, warmup: int) -> lat.Row:
    request = types.CallToolRequest(params=types.CallToolRequestParams(name="echo", arguments={"text": "hi"}))
    async with lat.direct_session("stdio", "") as session:
        call = lambda: session.send_request(request, types.CallToolResult)  # noqa: E731
        return await lat.measured("direct", call, calls, warmup, 1, None)


def one_run(calls: int, warmup: int) -> list[lat.Row]:
    rows = [anyio.run(direct, calls, warmup)]
    with floor_process() as (url, pid):
        rows.append(anyio.run(over_http, "floor", url, pid, calls, warmup))
    with lat.hub_process("stdio", "") as (url, pid):
        rows.append(anyio.run(over_http, "hub", url, pid, calls, warmup))
    return rows


def main(calls: int, warmup: int, runs: int) -> None:
    results = [one_run(calls, warmup) for _ in range(runs)]
    print(f"tools/call at concurrency 1, {calls} calls after {warmup} warm-up, median of {runs} run(s), "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"{'path':<8} {'p50 ms':>8} {'p99 ms':>8} {'added p50':>10} {'client CPU':>11} {'middle CPU':>11}  per run")
    base = [lat.percentiles(run[0][2])[0] for run in results]
    for i, path in enumerate(("direct", "floor", "hub")):
        p50s = [lat.percentiles(run[i][2])[0] for run in results]
        p99s = [lat.percentiles(run[i][2])[1] for run in results]
        added = [p - b for p, b in zip(p50s, base, strict=True)]
        client = statistics.median(run[i][3] for run in results)
        middle = [m for run in results if (m := run[i][4]) is not None]
        shown = f"{statistics.median(middle):>11.3f}" if middle else f"{'':>11}"
        print(f"{path:<8} {statistics.median(p50s):>8.2f} {statistics.median(p99s):>8.2f} "
              f"{statistics.median(added):>+10.2f} {client:>11.3f} {shown}  "
              f"{' '.join(f'{a:+.2f}' for a in added)}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve-floor", type=int, metavar="FD", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.serve_floor:
        import uvloop

        uvloop.run(serve_floor(ns.serve_floor))
    else:
        started = time.monotonic()
        main(ns.calls, ns.warmup, ns.runs)
        print(f"({time.monotonic() - started:.0f} s)")
