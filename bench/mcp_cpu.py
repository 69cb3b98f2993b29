"""Hub CPU per `tools/call` on `/mcp`, server side only: the app is called in-process through ASGI (no sockets, no
HTTP client, no uvicorn), so the process time of a call is what the hub spends (plus its stdio upstream client).

    python bench/mcp_cpu.py [--calls 2000] [--profile 30]

Rows (CPU ms per call; median of 5 rounds, each round `--calls / 5` calls in a bounded loop):
  direct      the official SDK client (`stdio_client`, `ClientSession.send_request`) on the same upstream;
  hub-api     `McpHub.call_tool` in-process (the upstream round trip and the hub's own work). It can cost less than
              `direct`: a plain call goes straight on the pipes, not through the SDK session (hub/mcp/direct_call.py);
  /mcp json   a plain client's `tools/call` on `/mcp`: answered with one JSON body (hub/mcp/lean.py); minus
              `hub-api`, the hub's server side of the call;
  /mcp sse    the same call in a session that declared sampling: the SDK's event-stream path;
  /mcp json, streams   the JSON answer through the session's streams and dispatcher task instead of the kernel.
The upstream is bench/echo_mcp.py over stdio (its CPU is another process's). `--profile N` prints the N most
costly functions (cProfile, cumulative) of the `/mcp json` row. cProfile's overhead per function call inflates
code made of many small calls several times over: check a change by measuring it, not by its share of a profile.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import orjson
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.accounts.auth import MASTER  # noqa: E402
from hub.config import parse_config  # noqa: E402
from hub.mcp.hub import McpHub  # noqa: E402
from hub.server import build_app  # noqa: E402

KEY = "sk-bench"
VERSION = "2025-11-25"
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


@contextlib.asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    """Run the app's lifespan in a task; yield once it started, shut it down on exit."""
    inbox: list[dict[str, Any]] = [{"type": "lifespan.startup"}]
    started, stop, done = anyio.Event(), anyio.Event(), anyio.Event()

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop()
        await stop.wait()
        return {"type": "lifespan.shutdown"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()
        elif message["type"].startswith("lifespan.shutdown"):
            done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(app, {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)  # pyright: ignore[reportArgumentType]
        await started.wait()
        try:
            yield
        finally:
            stop.set()
            await done.wait()


async def post(app: App, body: dict[str, Any], session: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """One POST /mcp through the whole app; (status, headers, body)."""
    headers = [(b"host", b"127.0.0.1:4000"), (b"authorization", f"Bearer {KEY}".encode()),
               (b"accept", b"application/json, text/event-stream"), (b"content-type", b"application/json"),
               (b"mcp-protocol-version", VERSION.encode())]  # fmt: skip
    if session:
        headers.append((b"mcp-session-id", session.encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/mcp", "raw_path": b"/mcp", "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 4000), "state": {}}  # fmt: skip
    chunks = [{"type": "http.request", "body": orjson.dumps(body), "more_body": False}]
    ended = anyio.Event()
    status, out, parts = 0, {}, []

    async def receive() -> dict[str, Any]:
        if chunks:
            return chunks.pop()
        await ended.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            out.update((k.decode(), v.decode()) for k, v in message.get("headers", ()))
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                ended.set()

    await app(scope, receive, send)
    return status, out, b"".join(parts)


async def open_session(app: App, capabilities: dict[str, Any]) -> str:
    params = {"protocolVersion": VERSION, "capabilities": capabilities, "clientInfo": {"name": "b", "version": "1"}}
    _, headers, _ = await post(app, {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params})
    session = headers["mcp-session-id"]
    await post(app, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
    return session


def caller(app: App, session: str) -> Callable[[int], Awaitable[bytes]]:
    async def call(n: int) -> bytes:
        request = {"jsonrpc": "2.0", "id": n, "method": "tools/call",
                   "params": {"name": "up__echo", "arguments": {"text": "hi"}}}  # fmt: skip
        status, _, body = await post(app, request, session)
        assert status == 200 and b'"hi"' in body, (status, body)
        return body

    return call


async def cpu_per_call(call: Callable[[int], Awaitable[Any]], calls: int) -> float:
    """Median over 5 rounds of CPU ms per call (after a warm-up)."""
    for n in range(50):
        await call(n)
    rounds: list[float] = []
    for _ in range(5):
        start = time.process_time()
        for n in range(calls // 5):
            await call(n)
        rounds.append((time.process_time() - start) * 1000 / (calls // 5))
    return statistics.median(rounds)


def config() -> dict[str, Any]:
    upstream = {"command": sys.executable, "args": [str(ROOT / "bench" / "echo_mcp.py")]}
    return {"general_settings": {"master_key": KEY}, "mcp_servers": {"up": upstream}}


async def direct_cpu(calls: int) -> float:
    """CPU per call of the official SDK client alone on the same upstream."""
    upstream = config()["mcp_servers"]["up"]
    params = StdioServerParameters(command=upstream["command"], args=upstream["args"])
    request = types.CallToolRequest(params=types.CallToolRequestParams(name="echo", arguments={"text": "hi"}))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        return await cpu_per_call(lambda n: session.send_request(request, types.CallToolResult), calls)


async def report(calls: int, profile: int, sort: str = "cumulative") -> None:
    rows: list[tuple[str, float]] = [("direct", await direct_cpu(calls))]
    hub = McpHub(parse_config(config(), {}).mcp_servers)
    async with hub.running():
        await hub.wait_ready()
        rows.append(("hub-api", await cpu_per_call(lambda n: hub.call_tool("up__echo", {"text": "hi"}, MASTER), calls)))
    app: App = build_app(parse_config(config(), {}))  # pyright: ignore[reportAssignmentType]
    profiler = cProfile.Profile()
    async with lifespan(app):
        extras = app.state.hub.extras  # pyright: ignore[reportFunctionMemberAccess, reportUnknownMemberType]
        await extras["mcp"].wait_ready()
        session = await open_session(app, {})
        plain = caller(app, session)
        rows.append(("/mcp json", await cpu_per_call(plain, calls)))
        rows.append(("/mcp sse", await cpu_per_call(caller(app, await open_session(app, {"sampling": {}})), calls)))
        transport = extras["mcp_http"].aggregated.manager._server_instances[session]
        kernel, transport.kernel = transport.kernel, None  # the JSON answer through the SDK's streams, as before
        rows.append(("/mcp json, streams", await cpu_per_call(plain, calls)))
        transport.kernel = kernel
        if profile:
            profiler.enable()
            for n in range(500):
                await plain(n)
            profiler.disable()
    print(f"hub CPU per tools/call, in-process ASGI, {calls} calls per row")
    print(f"{'path':<19} {'CPU ms':>8} {'vs direct':>10} {'vs hub-api':>11}")
    for name, ms in rows:
        print(f"{name:<19} {ms:>8.3f} {ms - rows[0][1]:>+10.3f} {ms - rows[1][1]:>+11.3f}")
    if profile:
        pstats.Stats(profiler).sort_stats(sort).print_stats(profile)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--sort", default="cumulative", help="pstats order of --profile: cumulative, tottime")
    ns = parser.parse_args()
    anyio.run(report, ns.calls, ns.profile, ns.sort)
