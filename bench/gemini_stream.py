"""CPU the gateway spends per translated chunk of a 20-chunk Gemini stream.

Two measurements, both in this process with `time.process_time()`:

* translate: each Gemini SSE payload through `StreamTranslator.feed` (orjson parse, translation), each OpenAI chunk
  serialised with orjson as the hub does — the pure translation cost;
* provider: `GeminiProvider.stream()` over loopback against a canned `streamGenerateContent?alt=sse` upstream in a
  child process (aiohttp client, request building, SSE parsing, translation), 16 streams at a time;
  `OpenAIProvider.stream()` on an equivalent 20-chunk OpenAI stream is shown for comparison. The hub's own relay
  is not included (bench/gateway.py measures that).

    python bench/gemini_stream.py [--streams 2000]

Target: <= 40 us of CPU per chunk. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from typing import Any

import orjson

from providers._http import HttpPool
from providers.base import ChatRequest, Deployment
from providers.gemini import GeminiProvider
from providers.gemini.response import ResponseReader, StreamTranslator
from providers.gemini.schema import ToolNames
from providers.openai import OpenAIProvider

PIECES = 20
WORD = "token "
MODEL = "gemini-3-flash-preview"


def gemini_payloads() -> list[bytes]:
    """20 text chunks with cumulative usage, then the closing empty-text chunk with the finish reason."""
    out = []
    for n in range(1, PIECES + 1):
        out.append({"candidates": [{"content": {"role": "model", "parts": [{"text": WORD}]}, "index": 0}],
                    "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": n, "totalTokenCount": 10 + n},
                    "modelVersion": MODEL, "responseId": "benchResponse"})  # fmt: skip
    out.append({"candidates": [{"content": {"role": "model", "parts": [{"text": "", "thoughtSignature": "c2ln"}]},
                                "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": PIECES, "totalTokenCount": 30},
                "modelVersion": MODEL, "responseId": "benchResponse"})  # fmt: skip
    return [orjson.dumps(p) for p in out]


def openai_stream() -> bytes:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "gpt-bench"}
    deltas = [({"role": "assistant", "content": ""}, None), *[({"content": WORD}, None)] * PIECES, ({}, "stop")]
    chunks = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": f}]} for d, f in deltas]
    chunks.append({**base, "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": PIECES,
                                                    "total_tokens": 10 + PIECES}})  # fmt: skip
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def bench_translate(streams: int) -> tuple[float, int]:
    payloads = gemini_payloads()
    chunks = 0
    started = time.process_time()
    for _ in range(streams):
        translator = StreamTranslator(ResponseReader(MODEL, ToolNames()), MODEL)
        for data in payloads:
            for chunk in translator.feed(data):
                orjson.dumps(chunk)
                chunks += 1
        for chunk in translator.finish():
            orjson.dumps(chunk)
            chunks += 1
    return time.process_time() - started, chunks


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


def bench_provider(kind: str, url: str, streams: int) -> tuple[float, int]:
    async def main() -> tuple[float, int]:
        pool = HttpPool()
        if kind == "gemini":
            provider: Any = GeminiProvider(pool)
            deployment = Deployment(provider="gemini", model=MODEL, api_base=url, api_key="k")
        else:
            provider = OpenAIProvider(pool)
            deployment = Deployment(provider="openai", model="gpt-bench", api_base=f"{url}/v1", api_key="k")
        try:
            await _run_provider(provider, deployment, 50, 16)  # warm the connection pool
            started = time.process_time()
            chunks = await _run_provider(provider, deployment, streams, 16)
            return time.process_time() - started, chunks
        finally:
            await pool.aclose()

    return asyncio.run(main())


def serve(port: int) -> None:
    """The canned upstream (child process): Gemini (CRLF-framed, no [DONE]) and OpenAI streams."""
    import uvicorn

    gemini = b"".join(b"data: " + p + b"\r\n\r\n" for p in gemini_payloads())
    openai = openai_stream()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        body = openai if scope["path"] == "/v1/chat/completions" else gemini
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        _wait_for(port)
        rows = [("translate only (gemini)", *bench_translate(args.streams * 5))]
        url = f"http://127.0.0.1:{port}"
        rows.append(("provider.stream (gemini)", *bench_provider("gemini", url, args.streams)))
        rows.append(("provider.stream (openai, reference)", *bench_provider("openai", url, args.streams)))
    finally:
        child.terminate()
        child.wait(10)
    print(f"{PIECES}-chunk streams; CPU of this process (time.process_time)\n")
    print("| path | streams | chunks | CPU per chunk | CPU per stream |")
    print("|---|---|---|---|---|")
    for name, cpu, chunks in rows:
        streams = chunks // (PIECES + 3)
        print(f"| {name} | {streams} | {chunks} | {cpu / chunks * 1e6:.1f} us | {cpu / max(streams, 1) * 1e3:.3f} ms |")


if __name__ == "__main__":
    main()
