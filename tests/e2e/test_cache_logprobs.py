"""Logprobs and the response cache, with the official `openai` SDK over loopback: an answer that had logprobs keeps
them on a hit, non-streamed and replayed as a stream, whichever mode first fetched it."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from hub.config import parse_config
from hub.server import build_app
from tests.e2e.conftest import MASTER_KEY
from tests.support.servers import serve_app

WORDS = ["Hello", ",", " cached", " world"]
USAGE = {"prompt_tokens": 9, "completion_tokens": len(WORDS), "total_tokens": 9 + len(WORDS)}


def token(text: str, top: int) -> dict[str, Any]:
    alternatives = [{"token": f"{text}~{i}", "logprob": -1.0 - i, "bytes": None} for i in range(top)]
    return {"token": text, "logprob": -0.25, "bytes": list(text.encode()), "top_logprobs": alternatives}


class LogprobsUpstream:
    """An OpenAI-compatible upstream that answers `WORDS`, with each token's logprob when `logprobs` is asked."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])

    async def chat(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        self.requests.append(body)
        tokens = [token(w, body.get("top_logprobs") or 0) for w in WORDS] if body.get("logprobs") else None
        head = {"id": f"chatcmpl-{uuid.uuid4().hex[:8]}", "created": int(time.time()), "model": body["model"]}
        if body.get("stream"):
            return StreamingResponse(self._chunks(head, tokens), media_type="text/event-stream")
        logprobs = None if tokens is None else {"content": tokens, "refusal": None}
        message = {"role": "assistant", "content": "".join(WORDS), "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": logprobs, "finish_reason": "stop"}
        return JSONResponse({**head, "object": "chat.completion", "choices": [choice], "usage": USAGE})

    @staticmethod
    async def _chunks(head: dict[str, Any], tokens: list[dict[str, Any]] | None) -> AsyncIterator[bytes]:
        head = {**head, "object": "chat.completion.chunk"}
        first = {"content": [], "refusal": None} if tokens is not None else None
        deltas: list[tuple[dict[str, Any], Any, str | None]] = [({"role": "assistant", "content": ""}, first, None)]
        for i, word in enumerate(WORDS):
            deltas.append(({"content": word}, tokens and {"content": [tokens[i]], "refusal": None}, None))
        deltas.append(({}, None, "stop"))
        for delta, logprobs, finish in deltas:
            choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
            yield b"data: " + orjson.dumps({**head, "choices": [choice]}) + b"\n\n"
        yield b"data: " + orjson.dumps({**head, "choices": [], "usage": USAGE}) + b"\n\n"
        yield b"data: [DONE]\n\n"


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[LogprobsUpstream, str]]:
    fake = LogprobsUpstream()
    with serve_app(fake.app) as url:
        yield fake, url


@pytest.fixture(scope="module")
def client(upstream: tuple[LogprobsUpstream, str]) -> Iterator[openai.OpenAI]:
    params = {"model": "openai/lp", "api_base": f"{upstream[1]}/v1", "api_key": "sk-fake"}
    raw = {
        "model_list": [{"model_name": "lp", "litellm_params": params}],
        "general_settings": {"master_key": MASTER_KEY},
        "litellm_settings": {"cache": True, "cache_params": {"type": "local"}},
    }
    with (
        serve_app(build_app(parse_config(raw, {}))) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=20) as c,
    ):
        yield c


def unique() -> Any:
    return [{"role": "user", "content": f"say {uuid.uuid4().hex[:8]}"}]


def calls(fake: LogprobsUpstream, messages: Any) -> int:
    return sum(1 for body in fake.requests if body["messages"] == messages)


def logprobs_of(completion: Any) -> list[dict[str, Any]]:
    return [t.model_dump() for t in completion.choices[0].logprobs.content]


def test_a_plain_answers_logprobs_are_kept_on_a_hit_and_replayed_in_a_stream(
    client: openai.OpenAI, upstream: tuple[LogprobsUpstream, str]
) -> None:
    messages = unique()
    plain = client.chat.completions.create(model="lp", messages=messages, logprobs=True, top_logprobs=2)
    assert len(logprobs_of(plain)) == len(WORDS)
    hit = client.chat.completions.with_raw_response.create(model="lp", messages=messages, logprobs=True, top_logprobs=2)
    assert hit.headers["x-toolhub-cache-hit"] == "true"
    assert logprobs_of(hit.parse()) == logprobs_of(plain)
    with client.chat.completions.stream(model="lp", messages=messages, logprobs=True, top_logprobs=2) as stream:
        replayed = stream.get_final_completion()
    assert logprobs_of(replayed) == logprobs_of(plain)
    assert replayed.choices[0].message.content == "".join(WORDS)
    assert calls(upstream[0], messages) == 1


def test_a_streamed_answers_logprobs_are_gathered_and_served_on_a_hit(
    client: openai.OpenAI, upstream: tuple[LogprobsUpstream, str]
) -> None:
    messages = unique()
    with client.chat.completions.stream(model="lp", messages=messages, logprobs=True, top_logprobs=1) as stream:
        streamed = stream.get_final_completion()
    assert len(logprobs_of(streamed)) == len(WORDS)
    hit = client.chat.completions.with_raw_response.create(model="lp", messages=messages, logprobs=True, top_logprobs=1)
    assert hit.headers["x-toolhub-cache-hit"] == "true"
    assert logprobs_of(hit.parse()) == logprobs_of(streamed)
    chunks = list(
        client.chat.completions.create(model="lp", messages=messages, logprobs=True, top_logprobs=1, stream=True)
    )
    carried = [
        t.token for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content or ()
    ]
    assert carried == WORDS
    assert calls(upstream[0], messages) == 1


def test_an_answer_without_logprobs_is_not_served_to_a_request_that_asks_for_them(
    client: openai.OpenAI, upstream: tuple[LogprobsUpstream, str]
) -> None:
    messages = unique()
    without = client.chat.completions.create(model="lp", messages=messages)
    assert without.choices[0].logprobs is None
    asking = client.chat.completions.with_raw_response.create(model="lp", messages=messages, logprobs=True)
    assert asking.headers["x-toolhub-cache-hit"] == "false" and len(logprobs_of(asking.parse())) == len(WORDS)
    again = client.chat.completions.with_raw_response.create(model="lp", messages=messages, stream=True)
    assert again.headers["x-toolhub-cache-hit"] == "true"
    assert all(not c.choices or c.choices[0].logprobs is None for c in again.parse())
    assert calls(upstream[0], messages) == 2
