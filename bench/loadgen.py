"""A bounded HTTP load generator for the benchmarks: N connections for D seconds (or M requests), JSON out.

Each connection sends the same POST in a loop and reads the whole answer; it records latency, time to first body
byte, and failures. Run as a separate process so that its CPU is not counted against the server measured.

Two clients: `aiohttp` (the default) and `--client raw`, a keep-alive connection per worker that writes one prepared
request and parses the answer with httptools (uvicorn's C parser). The raw client costs a fraction of aiohttp's CPU
per request (measured at 64 connections on a cache hit: ~0.09-0.12 ms for aiohttp, the same as the server it loads),
which matters where the server is that cheap: on a 2-core machine the two processes share the cores, and a load
generator as costly as the server caps its requests per second (bench/cache.py uses it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.parse
from dataclasses import dataclass, field

import aiohttp
import httptools


@dataclass
class _Tally:
    latency: list[float] = field(default_factory=list[float])
    ttfb: list[float] = field(default_factory=list[float])
    errors: int = 0


async def worker(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    deadline: float,
    limit: list[int],
    out: _Tally,
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
            out.latency.append(done - started)
            out.ttfb.append((first or done) - started)
        else:
            out.errors += 1


async def run(
    url: str, conns: int, duration: float, max_requests: int, stream: bool, key: str, extra: dict[str, object]
) -> dict[str, object]:
    body = json.dumps(
        {"model": "bench", "stream": stream, "messages": [{"role": "user", "content": "Say hello."}], **extra}
    ).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    out = _Tally()
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
    return {"requests": len(out.latency), "errors": out.errors, "seconds": elapsed, "latency": out.latency,
            "ttfb": out.ttfb}  # fmt: skip


class _RawConnection(asyncio.Protocol):
    """One keep-alive connection: `start` sends `request` again as soon as each answer is complete, until a deadline
    or a shared request budget runs out."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.started = self.first = self.deadline = 0.0
        self.limit = [0]
        self.out = _Tally()
        self.done: asyncio.Future[None] | None = None

    def start(self, deadline: float, limit: list[int], out: _Tally) -> asyncio.Future[None]:
        self.deadline, self.limit, self.out = deadline, limit, out
        self.done = asyncio.get_running_loop().create_future()
        self.next()
        return self.done

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def next(self) -> None:
        if time.perf_counter() >= self.deadline or self.limit[0] <= 0 or self.transport is None:
            self.finish()
            return
        self.limit[0] -= 1
        self.started, self.first = time.perf_counter(), 0.0
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.out.errors += 1
            self.transport = None
            self.finish()

    def on_body(self, body: bytes) -> None:
        if not self.first:
            self.first = time.perf_counter()

    def on_message_complete(self) -> None:
        done = time.perf_counter()
        if self.parser.get_status_code() == 200:
            self.out.latency.append(done - self.started)
            self.out.ttfb.append((self.first or done) - self.started)
        else:
            self.out.errors += 1
        if not self.parser.should_keep_alive():
            self.transport = None  # the server closes it: this worker stops
        asyncio.get_running_loop().call_soon(self.next)  # not from inside the parser's callback

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None and self.done is not None and not self.done.done():
            self.out.errors += 1  # closed while an answer was due
        self.transport = None
        self.finish()

    def finish(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(None)


async def run_raw(
    url: str,
    conns: int,
    duration: float,
    max_requests: int,
    stream: bool,
    key: str,
    extra: dict[str, object],
    get: bool = False,
) -> dict[str, object]:
    """`run` with `--client raw`: one connection per worker, opened once (a worker whose connection fails stops).
    `get`: a bodiless GET of `url` instead of the chat POST."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    body = json.dumps(
        {"model": "bench", "stream": stream, "messages": [{"role": "user", "content": "Say hello."}], **extra}
    ).encode()
    head = (f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
    if get:
        head, body = f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n", b""
    loop = asyncio.get_running_loop()
    opened = await asyncio.gather(*(loop.create_connection(lambda: _RawConnection(head.encode() + body), host, port)
                                    for _ in range(conns)))  # fmt: skip
    workers = [protocol for _, protocol in opened]
    await _raw_round(workers, time.perf_counter() + 60, [conns], _Tally())  # warm-up: one request per connection
    out = _Tally()
    started = time.perf_counter()
    await _raw_round(workers, started + duration, [max_requests], out)
    elapsed = time.perf_counter() - started
    for transport, _ in opened:
        transport.close()
    return {"requests": len(out.latency), "errors": out.errors, "seconds": elapsed, "latency": out.latency,
            "ttfb": out.ttfb}  # fmt: skip


async def _raw_round(workers: list[_RawConnection], deadline: float, limit: list[int], out: _Tally) -> None:
    """Every worker sends until `deadline` or `limit` (shared); bounded: an answer that never comes ends the run."""
    pending = [worker.start(deadline, limit, out) for worker in workers]
    await asyncio.wait_for(asyncio.gather(*pending), timeout=max(0.0, deadline - time.perf_counter()) + 30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--conns", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--key", default="sk-bench")
    parser.add_argument("--extra", default="{}", help="JSON object merged into the request body")
    parser.add_argument("--client", choices=("aiohttp", "raw"), default="aiohttp", help="see the module docstring")
    parser.add_argument("--get", action="store_true", help="a bodiless GET of the URL (raw client only)")
    args = parser.parse_args()
    if args.get and args.client != "raw":
        parser.error("--get needs --client raw")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    options = (args.url, args.conns, args.duration, args.max_requests, args.stream, args.key, json.loads(args.extra))
    result = asyncio.run(run_raw(*options, get=args.get) if args.client == "raw" else run(*options))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
