"""CPU the Responses API adds on top of the chat pipeline: per non-streamed request and per translated stream event.

    .venv/bin/python -m bench.responses [--runs 5] [--n 20000]

A non-streamed request costs `check` + `to_chat` (Responses request -> Chat Completions body), `check_chat_request`,
`shell` + `from_completion` (chat.completion -> response object) plus one JSON parse and dump of the answer, as the
endpoint does (without a store: `store: false`). A stream costs what `TranslatedStream` does to each chat SSE event
(`_translate`: parse, `StreamTranslator.chunk`, Responses events out) plus `start()` and the end; the per-event figure
divides by the chunks fed (20 text chunks, a finish chunk, a usage chunk, [DONE]). Target: <= 40 us per event.
Prints median and min-max.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable

import orjson
from starlette.responses import Response

from hub.api.responses import objects
from hub.api.responses.endpoint import TranslatedStream
from hub.api.responses.events import StreamTranslator
from hub.api.responses.request import check, to_chat
from hub.gateway.requests import check_chat_request
from hub.storage import StoredResponse
from hub.storage.sqlite import SqliteStore

TOOL = {"type": "function", "name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}  # fmt: skip
REQUEST = {
    "model": "m", "max_output_tokens": 512, "instructions": "You are terse.", "tools": [TOOL], "store": False,
    "input": [
        {"role": "user", "content": "weather in Paris?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
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
STREAM = [b"data: " + orjson.dumps(c) for c in CHUNKS] + [b"data: [DONE]"]


async def _nothing(response: objects.JSON) -> None:
    return None


def one_request() -> None:
    body = check(orjson.loads(orjson.dumps(REQUEST)))
    check_chat_request(to_chat(body))
    orjson.dumps(objects.from_completion(objects.shell(body), orjson.loads(ANSWER)))


def one_stream() -> None:
    relay = TranslatedStream(Response(), StreamTranslator(objects.shell(REQUEST)), _nothing)
    out = [relay.translator.start()]
    out += [relay._translate(raw) for raw in STREAM]  # pyright: ignore[reportPrivateUsage]
    out.append(relay.translator.done())


async def _store_us(n: int) -> tuple[float, float]:
    """CPU and wall time of `save_response` on a SQLite file (what `store: true`, the default, adds per response)."""
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(f"{folder}/bench.db")
        await store.connect()
        await store.migrate()
        response = objects.from_completion(objects.shell(REQUEST), orjson.loads(ANSWER))
        messages = to_chat(check(dict(REQUEST)))["messages"]
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(n):
            await store.save_response(
                StoredResponse(f"resp_{i}", None, time.time(), response, REQUEST["input"], messages)
            )
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        await store.aclose()
    return cpu / n * 1e6, wall / n * 1e6


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
    for label, values in (("non-streamed request", requests), ("stream event", events)):
        print(f"{label:22} {statistics.median(values):7.2f} us  (min {min(values):.2f}, max {max(values):.2f})")
    cpu, wall = asyncio.run(_store_us(min(args.n // 10, 2000)))
    print(f"{'store (SQLite)':22} {cpu:7.2f} us CPU, {wall:.2f} us wall per saved response")


if __name__ == "__main__":
    main()
