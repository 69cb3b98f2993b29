"""CPU the gateway spends per translated chunk of a 20-chunk Anthropic stream.

Two measurements, both in this process with `time.process_time()`:

* translate: parse each Anthropic SSE event (orjson), `StreamTranslator.feed`, serialise each OpenAI chunk (orjson,
  as the hub does) — the pure translation cost;
* provider: `AnthropicProvider.stream()` over loopback against a canned upstream in a child process (aiohttp client,
  SSE parsing, translation), 16 streams at a time; `OpenAIProvider.stream()` on an equivalent 20-chunk OpenAI stream
  is shown for comparison. The hub's own server-side relay is not included (bench/gateway.py measures that).

    python bench/anthropic_stream.py [--streams 2000]

Target: <= 40 us of CPU per chunk. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from typing import Any

import orjson

from providers._http import HttpPool
from providers.anthropic import AnthropicProvider
from providers.anthropic.names import ToolNames
from providers.anthropic.stream import StreamTranslator
from providers.base import ChatRequest, Deployment
from providers.openai import OpenAIProvider

PIECES = 20
WORD = "token "


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def anthropic_events() -> list[tuple[str, dict[str, Any]]]:
    usage = {"input_tokens": 10, "cache_read_input_tokens": 0, "output_tokens": 1}
    events = [("message_start", {"type": "message_start", "message": {"id": "msg_bench", "type": "message",
               "role": "assistant", "model": "claude-bench", "content": [], "stop_reason": None, "usage": usage}}),
              ("content_block_start", {"type": "content_block_start", "index": 0,
                                       "content_block": {"type": "text", "text": ""}}),
              ("ping", {"type": "ping"})]  # fmt: skip
    events += [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                        "delta": {"type": "text_delta", "text": WORD}})] * PIECES  # fmt: skip
    events += [("content_block_stop", {"type": "content_block_stop", "index": 0}),
               ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                  "usage": {"output_tokens": PIECES}}),
               ("message_stop", {"type": "message_stop"})]  # fmt: skip
    return events


def openai_stream() -> bytes:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "gpt-bench"}
    deltas = [({"role": "assistant", "content": ""}, None), *[({"content": WORD}, None)] * PIECES, ({}, "stop")]
    chunks = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": f}]} for d, f in deltas]
    chunks.append({**base, "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": PIECES,
                                                    "total_tokens": 10 + PIECES}})  # fmt: skip
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def bench_translate(streams: int) -> tuple[float, int]:
    raw = [(e, orjson.dumps(d)) for e, d in anthropic_events()]
    chunks = 0
    started = time.process_time()
    for _ in range(streams):
        translator = StreamTranslator(ToolNames(), model="claude-bench", created=1)
        for event, data in raw:
            for chunk in translator.feed(event, orjson.loads(data)):
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
        if kind == "anthropic":
            provider: Any = AnthropicProvider(pool)
            deployment = Deployment(provider="anthropic", model="claude-bench", api_base=url, api_key="k")
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
    """The canned upstream (child process): Anthropic and OpenAI streams, always the same bytes."""
    import uvicorn

    bodies = {"/v1/messages": b"".join(_sse(e, d) for e, d in anthropic_events()),
              "/v1/chat/completions": openai_stream()}  # fmt: skip

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})  # fmt: skip
        await send({"type": "http.response.body", "body": bodies[scope["path"]]})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


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
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        rows = [("translate only (anthropic)", *bench_translate(args.streams * 5))]
        url = f"http://127.0.0.1:{port}"
        rows.append(("provider.stream (anthropic)", *bench_provider("anthropic", url, args.streams)))
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
