"""A bounded HTTP load generator for the benchmarks: N connections for D seconds (or M requests), JSON out.

Each connection sends the same POST in a loop and reads the whole answer; it records latency, time to first body
byte, and failures. Run as a separate process so that its CPU is not counted against the server measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import aiohttp


async def worker(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    deadline: float,
    limit: list[int],
    out: dict[str, list[float] | int],
) -> None:
    while time.perf_counter() < deadline and limit[0] > 0:
        limit[0] -= 1
        started = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=headers) as response:
                first = None
                async for _ in response.content.iter_any():
                    if first is None:
                        first = time.perf_counter()
                ok = response.status == 200
        except aiohttp.ClientError:
            ok = False
            first = None
        done = time.perf_counter()
        if ok:
            out["latency"].append(done - started)  # type: ignore[union-attr]
            out["ttfb"].append((first or done) - started)  # type: ignore[union-attr]
        else:
            out["errors"] += 1  # type: ignore[operator]


async def run(
    url: str, conns: int, duration: float, max_requests: int, stream: bool, key: str, extra: dict[str, object]
) -> dict[str, object]:
    body = json.dumps(
        {"model": "bench", "stream": stream, "messages": [{"role": "user", "content": "Say hello."}], **extra}
    ).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    out: dict[str, list[float] | int] = {"latency": [], "ttfb": [], "errors": 0}
    connector = aiohttp.TCPConnector(limit=conns, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        # warm-up: open the connections
        await asyncio.gather(
            *(session.post(url, data=body, headers=headers) for _ in range(conns)), return_exceptions=True
        )
        started = time.perf_counter()
        limit = [max_requests]
        deadline = started + duration
        await asyncio.gather(*(worker(session, url, body, headers, deadline, limit, out) for _ in range(conns)))
        elapsed = time.perf_counter() - started
    return {
        "requests": len(out["latency"]),
        "errors": out["errors"],
        "seconds": elapsed,  # type: ignore[arg-type]
        "latency": out["latency"],
        "ttfb": out["ttfb"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--conns", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--key", default="sk-bench")
    parser.add_argument("--extra", default="{}", help="JSON object merged into the request body")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(
        run(args.url, args.conns, args.duration, args.max_requests, args.stream, args.key, json.loads(args.extra))
    )
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
