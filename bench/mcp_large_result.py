"""CPU the hub spends reading one large tool result from a stdio upstream: the SDK's reader vs Toolhub's.

    python bench/mcp_large_result.py [--mb 10 50] [--runs 3]

For each size, one `tools/call` of `tests/mcp/servers/big_server.py` (a text result of that many MB on one line) over
  sdk         the MCP SDK's `stdio_client` (joins each 64 KiB chunk to the pending text: quadratic in the line);
  toolhub     `hub.mcp.stdio_client` with `max_message_bytes` above the size (the result is read and parsed);
  discarded   `hub.mcp.stdio_client` at its 8 MiB default (the result is skipped to its newline, the call fails).
Prints this process's CPU seconds per call (user + system, min over runs) and the wall time; 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.mcp.config import DEFAULT_MAX_MESSAGE_BYTES  # noqa: E402
from hub.mcp.stdio_client import bounded_stdio_client  # noqa: E402

SERVER = StdioServerParameters(command=sys.executable, args=[str(ROOT / "tests" / "mcp" / "servers" / "big_server.py")])
Opener = Callable[[], contextlib.AbstractAsyncContextManager[Any]]


def openers(size: int) -> dict[str, Opener]:
    big = max(size * 2, DEFAULT_MAX_MESSAGE_BYTES)
    return {
        "sdk": lambda: stdio_client(SERVER, errlog=sys.stderr),
        "toolhub": lambda: bounded_stdio_client(SERVER, sys.stderr, server="big", max_message_bytes=big),
        "discarded": lambda: bounded_stdio_client(
            SERVER, sys.stderr, server="big", max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES
        ),
    }


@contextlib.asynccontextmanager
async def session(open_streams: Opener) -> AsyncIterator[ClientSession]:
    async with open_streams() as (read, write), ClientSession(read, write) as client:
        await client.initialize()
        yield client


async def one_call(open_streams: Opener, size: int) -> tuple[float, float, str]:
    async with session(open_streams) as client:
        await client.call_tool("echo", {"text": "warm"})
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            result = await client.call_tool("big", {"size": size}, read_timeout_seconds=600)
            outcome = "error" if result.is_error else "read"
        except MCPError as exc:
            outcome = f"error {exc.error.code}"
        return time.process_time() - cpu, time.perf_counter() - wall, outcome


async def main(sizes: list[float], runs: int) -> None:
    print(f"{'size':>7}  {'reader':<10} {'cpu s':>7} {'wall s':>7}  outcome")
    for mb in sizes:
        size = int(mb * 1024 * 1024)
        for name, opener in openers(size).items():
            samples = [await one_call(opener, size) for _ in range(runs)]
            cpu = min(s[0] for s in samples)
            wall = min(s[1] for s in samples)
            print(f"{mb:>5g}MB  {name:<10} {cpu:>7.2f} {wall:>7.2f}  {samples[0][2]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, nargs="+", default=[10, 50])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    anyio.run(main, args.mb, args.runs)
