"""`tools/call` latency: direct to an upstream vs through the hub, for a stdio and a streamable-HTTP upstream.

    python bench/mcp_latency.py [--calls 400] [--warmup 40] [--upstream stdio|http] [--tree DIR]

Paths measured, each at concurrency 1 and 16 (p50 / p99 in ms, bounded loops, 127.0.0.1 only):
  direct      the official ClientSession straight to the upstream (the baseline);
  hub-api     `McpHub.call_tool` in-process (what the tool loop calls): the hub's own cost on top of `direct`
              (below it for stdio: a plain call goes straight on the pipes, not through the SDK session);
  hub-http    a client on the hub's `/mcp` (streamable HTTP) with the hub as a separate `toolhub serve` process:
              adds a whole HTTP hop, so compare it with `direct` over HTTP rather than expect <= 1 ms. A plain
              client's calls are answered with one JSON body (hub/mcp/lean.py);
  hub-sse     the same with a client that declares sampling, so every call is answered with an event stream
              (the SDK's path, and what every call cost before).
The upstream is this file's own echo server (`--serve-stdio` / `--serve-http PORT`), a low-level mcp 2.x server.
`--tree DIR` runs the hub process (hub-http, hub-sse) from another checkout, e.g. `git archive REV | tar -x -C DIR`,
for a before/after comparison on one machine (alternate the runs); `hub-api` always runs this checkout's hub.

"Added by the hub" has two meanings, both printed: `hub-api - direct` is what the hub adds in-process (its own layers
and its upstream client), `hub-http - direct` the whole hop (the client's HTTP on top, a second process, the
hub's HTTP server and /mcp). CPU columns split a call's CPU by process (ms per call, warm-up included): `bench` is
this process (the client; for hub-api also the hub), `hub` the separate `toolhub serve` process (read from /proc).
In `hub-http - direct` the client's own HTTP costs about 0.7 ms of CPU per call more than its stdio (the `bench`
column: ~1.0 against ~0.3 ms), before the hub does anything.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import yaml
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.accounts.auth import MASTER  # noqa: E402
from hub.config import parse_config  # noqa: E402
from hub.mcp.hub import McpHub  # noqa: E402
from tests.support.servers import inherited_socket, wait_for_port, wait_until_serving  # noqa: E402

KEY = "sk-bench"
Call = Callable[[], Awaitable[Any]]


# -- the upstream ---------------------------------------------------------------------------------------------------


def echo_server() -> Any:
    from mcp.server import Server

    tool = types.Tool(name="echo", input_schema={"type": "object", "properties": {"text": {"type": "string"}}})

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[tool])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        text = (params.arguments or {}).get("text", "")
        return types.CallToolResult(content=[types.TextContent(type="text", text=str(text))])

    return Server("bench-echo", on_list_tools=list_tools, on_call_tool=call_tool)


async def serve_stdio() -> None:
    from mcp.server.stdio import stdio_server

    server = echo_server()
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def serve_http(fd: int) -> None:
    """Serve streamable HTTP on the inherited, bound socket `fd` (bound by `main`, so no other process takes it)."""
    import socket

    import uvicorn

    app = echo_server().streamable_http_app()
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[socket.socket(fileno=fd)])


# -- measuring ------------------------------------------------------------------------------------------------------


Row = tuple[str, int, list[float], float, float | None]
"""path, concurrency, latency samples (ms), bench CPU ms per call, hub process CPU ms per call (hub-http, hub-sse)."""


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(path: str, call: Call, calls: int, warmup: int, concurrency: int, hub_pid: int | None) -> Row:
    """`measure`, with the CPU this process and the hub process spent per call (warm-up included)."""
    cpu, hub = time.process_time(), process_cpu(hub_pid) if hub_pid else 0.0
    samples = await measure(call, calls, warmup, concurrency)
    count = len(samples) + warmup
    hub_ms = (process_cpu(hub_pid) - hub) * 1000 / count if hub_pid else None
    return path, concurrency, samples, (time.process_time() - cpu) * 1000 / count, hub_ms


async def measure(call: Call, calls: int, warmup: int, concurrency: int) -> list[float]:
    for _ in range(warmup):
        await call()
    samples: list[float] = []

    async def worker(count: int) -> None:
        for _ in range(count):
            start = time.perf_counter()
            await call()
            samples.append((time.perf_counter() - start) * 1000)

    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker, calls // concurrency)
    return samples


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@contextlib.asynccontextmanager
async def direct_session(kind: str, http_url: str) -> AsyncIterator[ClientSession]:
    if kind == "stdio":
        params = StdioServerParameters(command=sys.executable, args=[__file__, "--serve-stdio"])
        transport: Any = stdio_client(params)
    else:
        transport = streamable_http_client(http_url)
    async with transport as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def _sample(context: Any, params: Any) -> Any:
    return types.ErrorData(code=types.INVALID_REQUEST, message="no sampling here")


@contextlib.asynccontextmanager
async def hub_session(url: str, asking: bool = False) -> AsyncIterator[ClientSession]:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as http:
        async with streamable_http_client(f"{url}/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write, sampling_callback=_sample if asking else None) as session:
                await session.initialize()
                await session.list_tools()
                yield session


def upstream_config(kind: str, http_url: str) -> dict[str, Any]:
    if kind == "stdio":
        return {"command": sys.executable, "args": [__file__, "--serve-stdio"]}
    return {"url": http_url, "transport": "http"}


@contextlib.contextmanager
def hub_process(kind: str, http_url: str, tree: Path = ROOT) -> Any:
    config = {"general_settings": {"master_key": KEY}, "mcp_servers": {"up": upstream_config(kind, http_url)}}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        with inherited_socket() as (sock, port):  # bound here and handed over: no other process can take the port
            proc = subprocess.Popen([sys.executable, "-m", "hub", "serve", "--config", str(path), "--fd",
                                     str(sock.fileno()), "--log-level", "warning"], cwd=tree, stderr=subprocess.DEVNULL,
                                    pass_fds=(sock.fileno(),))  # fmt: skip
        try:
            wait_for_port(port, proc)
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 20
            while httpx2.get(f"{url}/health/readiness").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.05)
            yield url, proc.pid
        finally:
            proc.terminate()
            proc.wait(30)


async def bench_upstream(kind: str, http_url: str, calls: int, warmup: int, tree: Path) -> list[Row]:
    rows: list[Row] = []
    args = {"text": "hi"}
    request = types.CallToolRequest(params=types.CallToolRequestParams(name="echo", arguments=args))
    async with direct_session(kind, http_url) as session:
        await session.list_tools()
        for c in (1, 16):  # the raw round trip, as the hub makes it (no client-side result validation)
            call = lambda: session.send_request(request, types.CallToolResult)  # noqa: E731
            rows.append(await measured("direct", call, calls, warmup, c, None))
    config = parse_config({"mcp_servers": {"up": upstream_config(kind, http_url)}}, {})
    hub = McpHub(config.mcp_servers)
    async with hub.running():
        await hub.wait_ready()
        for c in (1, 16):
            call = lambda: hub.call_tool("up__echo", args, MASTER)  # noqa: E731
            rows.append(await measured("hub-api", call, calls, warmup, c, None))
    with hub_process(kind, http_url, tree) as (url, pid):
        for path, asking in (("hub-http", False), ("hub-sse", True)):
            async with hub_session(url, asking) as session:
                for c in (1, 16):
                    call = lambda: session.call_tool("up__echo", args)  # noqa: E731  (a client as it would call)
                    rows.append(await measured(path, call, calls, warmup, c, pid))
    return rows


async def report(http_url: str, calls: int, warmup: int, kinds: tuple[str, ...], tree: Path) -> None:
    load = os.getloadavg()[0]
    print(f"tools/call latency, {calls} calls after {warmup} warm-up, {os.cpu_count()} CPUs, load average {load:.1f}"
          f"{'' if tree == ROOT else f', hub process from {tree}'}")  # fmt: skip
    print(f"{'upstream':<9} {'path':<9} {'conc':>4} {'p50 ms':>8} {'p99 ms':>8} {'+p50 vs direct':>15} "
          f"{'bench CPU':>10} {'hub CPU':>8}")  # fmt: skip
    for kind in kinds:
        rows = await bench_upstream(kind, http_url, calls, warmup, tree)
        base = {c: percentiles(s)[0] for path, c, s, _, _ in rows if path == "direct"}
        for path, c, samples, cpu, hub_cpu in rows:
            p50, p99 = percentiles(samples)
            hub = f"{hub_cpu:>8.3f}" if hub_cpu is not None else f"{'':>8}"
            print(f"{kind:<9} {path:<9} {c:>4} {p50:>8.2f} {p99:>8.2f} {p50 - base[c]:>+15.2f} {cpu:>10.3f} {hub}")


def main(calls: int, warmup: int, kinds: tuple[str, ...], tree: Path = ROOT) -> None:
    with inherited_socket() as (sock, port):
        upstream = subprocess.Popen([sys.executable, __file__, "--serve-http", str(sock.fileno())],
                                    stderr=subprocess.DEVNULL, pass_fds=(sock.fileno(),))  # fmt: skip
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/mcp", upstream)
        anyio.run(report, f"http://127.0.0.1:{port}/mcp", calls, warmup, kinds, tree)
    finally:
        upstream.terminate()
        upstream.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--upstream", choices=("stdio", "http"), help="measure one kind of upstream (default: both)")
    parser.add_argument("--tree", type=Path, default=ROOT, help="run the hub process from this checkout")
    parser.add_argument("--serve-stdio", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-http", type=int, metavar="FD", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.serve_stdio:
        anyio.run(serve_stdio)
    elif ns.serve_http:
        serve_http(ns.serve_http)
    else:
        main(ns.calls, ns.warmup, (ns.upstream,) if ns.upstream else ("stdio", "http"), ns.tree.resolve())
