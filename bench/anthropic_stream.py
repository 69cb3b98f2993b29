"""CPU the gateway spends per translated chunk of a 20-chunk Anthropic stream.

Two measurements, both in this process with `time.process_time()`:

* translate: parse each Anthropic SSE event (orjson), `StreamTranslator.feed`, serialise each OpenAI chunk (orjson,
  as the hub does) — the pure translation cost;
* provider: `AnthropicProvider.stream()` over loopback against a canned upstream in a child process (_wire client,
  SSE parsing, translation), 16 streams at a time; `OpenAIProvider.stream()` on an equivalent 20-chunk OpenAI stream
  is shown for comparison. The hub's own server-side relay is not included (bench/gateway.py measures that).

    python bench/anthropic_stream.py [--streams 2000]

Target: <= 40 us of CPU per chunk. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stream_cpu import (
    PIECES,
    WORD,
    Row,
    bench_provider,
    main,
    openai_stream,
    openai_target,
    serve,
    ttfb_rows,
)
from providers._http import HttpPool
from providers.anthropic import AnthropicProvider
from providers.anthropic.names import ToolNames
from providers.anthropic.stream import StreamTranslator
from providers.base import Deployment


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


def anthropic_target(pool: HttpPool, url: str) -> tuple[Any, Deployment]:
    """The Anthropic provider and deployment under test."""
    return AnthropicProvider(pool), Deployment(provider="anthropic", model="claude-bench", api_base=url, api_key="k")


def serve_upstream(port: int) -> None:
    """The canned upstream (child process): Anthropic and OpenAI streams, always the same bytes."""
    bodies = {"/v1/messages": b"".join(_sse(e, d) for e, d in anthropic_events()),
              "/v1/chat/completions": openai_stream()}  # fmt: skip
    serve(port, bodies.__getitem__)


def measure(url: str, streams: int) -> list[Row]:
    """The three table rows: translation only, the Anthropic provider, the OpenAI provider for reference."""
    return [
        ("translate only (anthropic)", *bench_translate(streams * 5)),
        ("provider.stream (anthropic)", *bench_provider(anthropic_target, url, streams)),
        ("provider.stream (openai, reference)", *bench_provider(openai_target, url, streams)),
    ]


def ttfb(url: str) -> list[tuple[str, float]]:
    return ttfb_rows("anthropic", anthropic_target, url, "/v1/messages")


if __name__ == "__main__":
    main(__doc__ or "", __file__, serve_upstream, measure, ttfb)
