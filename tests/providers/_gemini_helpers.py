"""What the Gemini translation tests share: a reader with predictable call ids, canned chunks, a checked stream run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from openai.types.chat import ChatCompletionChunk

from providers.gemini.response import ResponseReader, StreamTranslator
from providers.gemini.schema import ToolNames

JSON = dict[str, Any]
G3 = "gemini-3-flash-preview"


def ids() -> Iterator[str]:
    """Tool call ids `call_1`, `call_2`, ..."""
    n = 0
    while True:
        n += 1
        yield f"call_{n}"


def reader(model: str = G3, names: ToolNames | None = None) -> ResponseReader:
    """A ResponseReader whose new tool call ids come from `ids()`."""
    counter = ids()
    return ResponseReader(model, names or ToolNames(), new_id=lambda: next(counter))


def gemini_chunk(parts: list[JSON], finish: str | None = None, usage_metadata: JSON | None = None) -> bytes:
    """One streamed Gemini payload with the given parts, finish reason and usage."""
    candidate: JSON = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return orjson.dumps({"candidates": [candidate], "usageMetadata": usage_metadata or {"promptTokenCount": 5}})


def run_stream(
    chunks: list[bytes], model: str = G3, names: ToolNames | None = None
) -> tuple[list[JSON], ResponseReader]:
    """Translate the chunks, check every output chunk against the OpenAI SDK type, return them and the reader."""
    r = reader(model, names)
    translator = StreamTranslator(r, model, chunk_id="chatcmpl-x")
    out = [c for data in chunks for c in translator.feed(data)]
    out += translator.finish()
    for chunk in out:
        ChatCompletionChunk.model_validate(chunk)
    return out, r
