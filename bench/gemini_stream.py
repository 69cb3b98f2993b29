"""CPU the gateway spends per translated chunk of a 20-chunk Gemini stream.

Two measurements, both in this process with `time.process_time()`:

* translate: each Gemini SSE payload through `StreamTranslator.feed` (orjson parse, translation), each OpenAI chunk
  serialised with orjson as the hub does — the pure translation cost;
* provider: `GeminiProvider.stream()` over loopback against a canned `streamGenerateContent?alt=sse` upstream in a
  child process (providers/_wire client, request building, SSE parsing, translation), 16 streams at a time;
  `OpenAIProvider.stream()` on an equivalent 20-chunk OpenAI stream is shown for comparison. The hub's own relay
  is not included (bench/gateway.py measures that).

    python bench/gemini_stream.py [--streams 2000]

Target: <= 40 us of CPU per chunk. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

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
from providers.base import Deployment
from providers.gemini import GeminiProvider
from providers.gemini.response import ResponseReader, StreamTranslator
from providers.gemini.schema import ToolNames

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


def gemini_target(pool: HttpPool, url: str) -> tuple[Any, Deployment]:
    """The Gemini provider and deployment under test."""
    return GeminiProvider(pool), Deployment(provider="gemini", model=MODEL, api_base=url, api_key="k")


def serve_upstream(port: int) -> None:
    """The canned upstream (child process): Gemini (CRLF-framed, no [DONE]) and OpenAI streams."""
    gemini = b"".join(b"data: " + p + b"\r\n\r\n" for p in gemini_payloads())
    openai = openai_stream()
    serve(port, lambda path: openai if path == "/v1/chat/completions" else gemini)


def measure(url: str, streams: int) -> list[Row]:
    """The three table rows: translation only, the Gemini provider, the OpenAI provider for reference."""
    return [
        ("translate only (gemini)", *bench_translate(streams * 5)),
        ("provider.stream (gemini)", *bench_provider(gemini_target, url, streams)),
        ("provider.stream (openai, reference)", *bench_provider(openai_target, url, streams)),
    ]


def ttfb(url: str) -> list[tuple[str, float]]:
    return ttfb_rows("gemini", gemini_target, url, "/v1beta/models/x:streamGenerateContent?alt=sse")


if __name__ == "__main__":
    main(__doc__ or "", __file__, serve_upstream, measure, ttfb)
