"""Shared harness of the stream-CPU benches (anthropic_stream.py, gemini_stream.py): canned upstream, timing, table."""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from providers._http import HttpPool
from providers.base import ChatRequest, Deployment
from providers.openai import OpenAIProvider

PIECES = 20
WORD = "token "

Row = tuple[str, float, int]
Target = Callable[[HttpPool, str], tuple[Any, Deployment]]


def openai_stream() -> bytes:
    """The reference upstream body: an OpenAI stream of PIECES text chunks, a finish chunk and a usage chunk."""
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "gpt-bench"}
    deltas = [({"role": "assistant", "content": ""}, None), *[({"content": WORD}, None)] * PIECES, ({}, "stop")]
    chunks = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": f}]} for d, f in deltas]
    chunks.append({**base, "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": PIECES,
                                                    "total_tokens": 10 + PIECES}})  # fmt: skip
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def openai_target(pool: HttpPool, url: str) -> tuple[Any, Deployment]:
    """The OpenAI provider and deployment used as the reference row."""
    deployment = Deployment(provider="openai", model="gpt-bench", api_base=f"{url}/v1", api_key="k")
    return OpenAIProvider(pool), deployment


async def _run_provider(provider: Any, deployment: Deployment, streams: int, concurrency: int) -> int:
    body = {"model": deployment.model, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    queue = iter(range(streams))
    counted = 0

    async def worker() -> None:
        nonlocal counted
        for _ in queue:
            async for chunk in provider.stream(ChatRequest(dict(body), deployment)):
                orjson.dumps(chunk)
                counted += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return counted


def bench_provider(target: Target, url: str, streams: int) -> tuple[float, int]:
    """CPU seconds and chunks of `streams` provider streams, 16 at a time, after a warm-up of 50."""

    async def main() -> tuple[float, int]:
        pool = HttpPool()
        provider, deployment = target(pool, url)
        try:
            await _run_provider(provider, deployment, 50, 16)  # warm the connection pool
            started = time.process_time()
            chunks = await _run_provider(provider, deployment, streams, 16)
            return time.process_time() - started, chunks
        finally:
            await pool.aclose()

    return asyncio.run(main())


async def _first_chunk_seconds(provider: Any, deployment: Deployment) -> float:
    body = {"model": deployment.model, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    started = time.perf_counter()
    stream = provider.stream(ChatRequest(dict(body), deployment))
    await anext(stream)
    elapsed = time.perf_counter() - started
    async for _ in stream:
        pass
    return elapsed


def bench_ttfb(target: Target, url: str, count: int = 300) -> float:
    """p50 seconds from asking the provider for a stream to its first translated chunk, one stream at a time."""

    async def main() -> float:
        pool = HttpPool()
        provider, deployment = target(pool, url)
        try:
            for _ in range(20):
                await _first_chunk_seconds(provider, deployment)
            times = sorted([await _first_chunk_seconds(provider, deployment) for _ in range(count)])
            return times[len(times) // 2]
        finally:
            await pool.aclose()

    return asyncio.run(main())


def bench_direct_ttfb(url: str, count: int = 300) -> float:
    """p50 seconds to the first body bytes of the same canned stream, read with a bare aiohttp client."""
    import aiohttp

    async def one(session: aiohttp.ClientSession) -> float:
        started = time.perf_counter()
        async with session.post(url, data=b"{}") as response:
            await response.content.readany()
            elapsed = time.perf_counter() - started
            await response.read()
        return elapsed

    async def main() -> float:
        async with aiohttp.ClientSession() as session:
            for _ in range(20):
                await one(session)
            times = sorted([await one(session) for _ in range(count)])
            return times[len(times) // 2]

    return asyncio.run(main())


def ttfb_rows(name: str, target: Target, url: str, upstream_path: str) -> list[tuple[str, float]]:
    """Time to the first chunk: the canned stream read directly, through `name`'s provider, through OpenAI's."""
    return [
        ("upstream bytes, read directly (aiohttp)", bench_direct_ttfb(url + upstream_path)),
        (f"provider.stream ({name}, translated)", bench_ttfb(target, url)),
        ("provider.stream (openai, reference)", bench_ttfb(openai_target, url)),
    ]


def serve(port: int, body_for: Callable[[str], bytes]) -> None:
    """Run the canned upstream: every HTTP request gets `body_for(path)` as an event stream."""
    import uvicorn

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        body = body_for(scope["path"])
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _print_table(rows: list[Row]) -> None:
    print(f"{PIECES}-chunk streams; CPU of this process (time.process_time)\n")
    print("| path | streams | chunks | CPU per chunk | CPU per stream |")
    print("|---|---|---|---|---|")
    for name, cpu, chunks in rows:
        streams = chunks // (PIECES + 3)
        print(f"| {name} | {streams} | {chunks} | {cpu / chunks * 1e6:.1f} us | {cpu / max(streams, 1) * 1e3:.3f} ms |")


def main(
    doc: str,
    script: str,
    serve_child: Callable[[int], None],
    measure: Callable[[str, int], list[Row]],
    ttfb: Callable[[str], list[tuple[str, float]]] | None = None,
) -> None:
    """Parse args; as `--serve PORT` run `serve_child`, else start it as a child and print `measure(url, streams)`."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_child(args.serve)
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    child = subprocess.Popen([sys.executable, script, "--serve", str(port)])
    try:
        _wait_for(port)
        rows = measure(f"http://127.0.0.1:{port}", args.streams)
        latencies = ttfb(f"http://127.0.0.1:{port}") if ttfb else []
    finally:
        child.terminate()
        child.wait(10)
    _print_table(rows)
    if latencies:
        print("\n| time to first chunk, one stream at a time | p50 |\n|---|---|")
        for name, seconds in latencies:
            print(f"| {name} | {seconds * 1e3:.3f} ms |")
