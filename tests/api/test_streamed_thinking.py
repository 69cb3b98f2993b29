"""Signed thinking in streams: an upstream that streams `delta.thinking_blocks` (as LiteLLM does for Claude) gives
/v1/responses streams the reasoning item's `encrypted_content` and /v1/messages streams the `redacted_thinking` block
and the signatures, as the non-streamed answers have them (the official SDKs rebuild the same objects)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from hub.api.responses import include
from hub.api.responses.events import StreamTranslator
from hub.config import parse_config
from hub.server import build_app
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-streamed-thinking"
REDACTED = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}
SIGNED = {"type": "thinking", "thinking": "Six times seven.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"}
DELTAS: list[dict[str, Any]] = [
    {"role": "assistant", "content": "", "thinking_blocks": [REDACTED]},
    {"reasoning_content": "Six times ", "thinking_blocks": [{"type": "thinking", "thinking": "Six times "}]},
    {"reasoning_content": "seven.", "thinking_blocks": [{"type": "thinking", "thinking": "seven.", "signature": None}]},
    {"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": SIGNED["signature"]}]},
    {"content": "42"},
]
"""LiteLLM's fragments: the redacted block whole, the thinking text in pieces, then the signature that ends it."""
USAGE = {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "thinker",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


async def _upstream(request: Request) -> Response:
    """A chat upstream that thinks (signed), then answers "42"."""
    if not (await request.json()).get("stream"):
        message = {"role": "assistant", "content": "42", "reasoning_content": SIGNED["thinking"],
                   "thinking_blocks": [REDACTED, SIGNED]}  # fmt: skip
        return JSONResponse({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "thinker",
                             "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                             "usage": USAGE})  # fmt: skip

    async def events() -> AsyncIterator[bytes]:
        for delta in DELTAS:
            yield _chunk(delta)
        yield _chunk({}, "stop")
        usage = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "thinker",
                 "choices": [], "usage": USAGE}  # fmt: skip
        yield b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    with serve_app(Starlette(routes=[Route("/v1/chat/completions", _upstream, methods=["POST"])])) as upstream:
        params = {"model": "openai/thinker", "api_base": f"{upstream}/v1", "api_key": "sk-upstream"}
        config = {"model_list": [{"model_name": "thinker", "litellm_params": params}],
                  "general_settings": {"master_key": MASTER_KEY}}  # fmt: skip
        with serve_app(build_app(parse_config(config, {}))) as url:
            yield url


def test_a_streamed_response_carries_the_signed_thinking_as_the_non_streamed_one(gateway_url: str) -> None:
    ask: Any = {"model": "thinker", "input": "6*7?", "include": ["reasoning.encrypted_content"], "store": False}
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=20) as client:
        plain = client.responses.create(**ask)
        with client.responses.stream(**ask) as stream:
            done = [e.item for e in stream if e.type == "response.output_item.done"]
            final = stream.get_final_response()
    expected = include.encrypted([REDACTED, SIGNED])
    for response in (plain, final):
        reasoning = response.output[0]
        assert reasoning.type == "reasoning" and reasoning.encrypted_content == expected
        assert [s.text for s in reasoning.summary] == ["Six times seven."] and response.output_text == "42"
    assert done[0].type == "reasoning" and done[0].encrypted_content == expected
    assert include.decrypted(expected) == [REDACTED, SIGNED]


def test_a_streamed_message_has_the_redacted_block_and_the_signature_of_the_non_streamed_one(
    gateway_url: str,
) -> None:
    ask: Any = {"model": "thinker", "max_tokens": 50, "messages": [{"role": "user", "content": "6*7?"}]}
    with anthropic.Anthropic(base_url=gateway_url, api_key=MASTER_KEY, max_retries=0, timeout=20) as client:
        plain = client.messages.create(**ask)
        with client.messages.stream(**ask) as stream:
            final = stream.get_final_message()
    blocks = [block.model_dump() for block in plain.content]
    assert blocks == [REDACTED, SIGNED, {"type": "text", "text": "42", "citations": None}]
    assert [block.model_dump() for block in final.content] == blocks


def test_a_reasoning_item_of_redacted_thinking_only_has_no_summary_events() -> None:
    response: Any = {"id": "resp_" + "0" * 32, "output": [], "status": "in_progress"}
    translator = StreamTranslator(response, included=frozenset({include.ENCRYPTED}))
    out = translator.start() + translator.chunk({"choices": [{"delta": {"thinking_blocks": [REDACTED]}}]})
    out += translator.chunk({"choices": [{"delta": {"content": "42"}, "finish_reason": "stop"}]}) + translator.done()
    events = [json.loads(line[6:]) for line in out.decode().splitlines() if line.startswith("data: ")]
    kinds = [e["type"] for e in events]
    assert not [k for k in kinds if "reasoning_summary" in k]
    done = next(e["item"] for e in events if e["type"] == "response.output_item.done")
    assert done == {"id": done["id"], "type": "reasoning", "summary": [],
                    "encrypted_content": include.encrypted([REDACTED])}  # fmt: skip
    assert events[-1]["response"]["output"][0] == done
