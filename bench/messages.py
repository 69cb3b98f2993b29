"""CPU the Messages API adds on top of the chat pipeline (per non-streamed request, per translated stream event), and
the gateway's own CPU per embeddings request (checking the body, the answer as base64).

    .venv/bin/python -m bench.messages [--runs 5] [--n 20000]

A non-streamed request costs `to_chat` (Anthropic request -> Chat Completions body), `check_chat_request` and
`to_message` (chat.completion -> Anthropic message) plus one JSON parse and dump of the answer, as the endpoint does.
A stream costs `EventTranslator.feed` over the chat SSE bytes; the per-event figure divides by the chunks fed
(20 text chunks, a finish chunk, a usage chunk, [DONE]). Target: <= 40 us per event. The embeddings row checks a
body of 8 inputs and encodes 8 vectors of 1536 floats as base64 (the openai SDK's default) plus the JSON dump.
Prints median and min-max.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import orjson

from hub.api.embeddings import _encoded, check_embeddings_request  # pyright: ignore[reportPrivateUsage]
from hub.api.messages.request import to_chat
from hub.api.messages.response import to_message
from hub.api.messages.stream import EventTranslator
from hub.gateway.requests import check_chat_request

TOOL = {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {
    "city": {"type": "string"}}}}  # fmt: skip
REQUEST = {
    "model": "m", "max_tokens": 512, "system": "You are terse.", "tools": [TOOL],
    "messages": [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Checking."},
                                          {"type": "tool_use", "id": "call_1", "name": "get_weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"}]},
    ],
}  # fmt: skip
ANSWER = orjson.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Sunny, 21 C."}}],
    "usage": {"prompt_tokens": 40, "completion_tokens": 6, "total_tokens": 46},
})  # fmt: skip
BASE = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
CHUNKS = [{**BASE, "choices": [{"index": 0, "delta": {"content": "token "}, "finish_reason": None}]}] * 20
CHUNKS += [{**BASE, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
           {**BASE, "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 20}}]  # fmt: skip
STREAM = [b"data: " + orjson.dumps(c) + b"\n\n" for c in CHUNKS] + [b"data: [DONE]\n\n"]


VECTORS = [{"object": "embedding", "index": i, "embedding": [0.001 * k for k in range(1536)]} for i in range(8)]


def one_embedding() -> None:
    body = check_embeddings_request({"model": "m", "input": [f"document {i}" for i in range(8)], "dimensions": 1536})
    orjson.dumps({"object": "list", "data": [_encoded(v, "base64") for v in VECTORS], "model": body["model"]})


def one_request() -> None:
    body = check_chat_request(to_chat(orjson.loads(orjson.dumps(REQUEST)), anthropic=False))
    orjson.dumps(to_message(orjson.loads(ANSWER), body["model"]))


def one_stream() -> None:
    translator = EventTranslator("m")
    for data in STREAM:
        translator.feed(data)
    translator.end()


def per_call_us(work: Callable[[], None], n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        work()
    return (time.process_time() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    requests = [per_call_us(one_request, args.n) for _ in range(args.runs)]
    events = [per_call_us(one_stream, args.n // 4) / len(STREAM) for _ in range(args.runs)]
    embeds = [per_call_us(one_embedding, args.n // 20) for _ in range(args.runs)]
    for label, values in (("non-streamed request", requests), ("stream event", events), ("embeddings 8x1536", embeds)):
        print(f"{label:22} {statistics.median(values):7.2f} us  (min {min(values):.2f}, max {max(values):.2f})")


if __name__ == "__main__":
    main()
