"""Answers an OpenAI-compatible upstream should never send (negative or unreadable usage, malformed choices, vectors
that are not float32) are a 502 `upstream_bad_response` in OpenAI's shape: one spend row with that status, nothing
credited to the key, and its budget hold released (its next request is not refused)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from hub.config import parse_config
from hub.server import build_app
from providers._wire import connection
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-bad-upstream"
USAGE = {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}
GOOD: dict[str, Any] = {
    "id": "c", "object": "chat.completion", "created": 0, "model": "m", "usage": USAGE,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}],
}  # fmt: skip
GOOD_VECTORS: dict[str, Any] = {"data": [{"object": "embedding", "index": 0, "embedding": [0.5, 1.0]}], "usage": USAGE}
MESSAGES = [{"role": "user", "content": "Say hello"}]


def chunk(delta: Any, **fields: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": None}
    return {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [choice], **fields}


GOOD_CHUNKS = [chunk({"content": "Hel"}), chunk({"content": "lo"}), {**chunk({}), "choices": [], "usage": USAGE}]


class Upstream:
    """An OpenAI-compatible server answering whatever the test set last (good answers by default)."""

    def __init__(self) -> None:
        self.answer: Any = GOOD
        self.chunks: list[Any] = GOOD_CHUNKS
        self.vectors: Any = GOOD_VECTORS
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"]),
                                     Route("/v1/embeddings", self.embeddings, methods=["POST"])])  # fmt: skip

    def reset(self) -> None:
        self.answer, self.chunks, self.vectors = GOOD, GOOD_CHUNKS, GOOD_VECTORS

    async def chat(self, request: Request) -> Response:
        if not (await request.json()).get("stream"):
            return JSONResponse(self.answer)
        return StreamingResponse(self.events(), media_type="text/event-stream")

    async def events(self) -> AsyncIterator[bytes]:
        for item in self.chunks:
            yield b"data: " + json.dumps(item).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"

    async def embeddings(self, request: Request) -> Response:
        return JSONResponse(self.vectors)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Upstream, str]]:
    upstream = Upstream()
    database = Path(tmp_path_factory.mktemp("bad-upstream")) / "hub.db"
    with serve_app(upstream.app) as base:
        prices = {"api_base": f"{base}/v1", "api_key": "k", "input_cost_per_token": 1e-4,
                  "output_cost_per_token": 1e-4}  # fmt: skip
        models = [
            {"model_name": "chat", "litellm_params": {"model": "openai_compatible/m", **prices}},
            {"model_name": "embed", "model_info": {"mode": "embedding"},
             "litellm_params": {"model": "openai_compatible/e", **prices}},
        ]  # fmt: skip
        general = {"master_key": MASTER_KEY, "database_url": f"sqlite:///{database}"}
        with serve_app(build_app(parse_config({"model_list": models, "general_settings": general}, {}))) as url:
            yield upstream, url


@pytest.fixture
def upstream(served: tuple[Upstream, str]) -> Iterator[Upstream]:
    yield served[0]
    served[0].reset()


@pytest.fixture
def admin(served: tuple[Upstream, str]) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=served[1], headers={"authorization": f"Bearer {MASTER_KEY}"}, timeout=20) as c:
        yield c


@pytest.fixture
def key(admin: httpx2.Client) -> str:
    """A key whose budget holds one request at a time: the worst case (16,384 output tokens) is over it, so a hold
    that is never released refuses every later request (429 budget_reserved)."""
    return admin.post("/key/generate", json={"max_budget": 0.05}).json()["key"]


def chat(admin: httpx2.Client, key: str, **body: Any) -> httpx2.Response:
    headers = {"authorization": f"Bearer {key}"}
    return admin.post("/v1/chat/completions", json={"model": "chat", "messages": MESSAGES, **body}, headers=headers)


def logs(admin: httpx2.Client, key: str) -> list[dict[str, Any]]:
    return admin.get("/spend/logs", params={"api_key": key}).json()["data"]


def assert_released_and_not_credited(admin: httpx2.Client, upstream: Upstream, key: str) -> None:
    upstream.reset()
    assert chat(admin, key).status_code == 200  # the hold of the bad request was released
    assert admin.get("/key/info", params={"key": key}).json()["info"]["spend"] >= 19 * 1e-4


def assert_bad_response(response: httpx2.Response, *named: str) -> None:
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "upstream_bad_response"
    assert all(name in error["message"] for name in named), error["message"]


def bad_usage(**usage: Any) -> dict[str, Any]:
    return {**GOOD, "usage": {**USAGE, **usage}}


@pytest.mark.parametrize(
    ("answer", "named"),
    [
        (bad_usage(prompt_tokens=-1_000_000), "prompt_tokens"),
        (bad_usage(completion_tokens=12.5), "completion_tokens"),
        (bad_usage(prompt_tokens=12.0), "prompt_tokens"),
        (bad_usage(prompt_tokens="12"), "prompt_tokens"),
        (bad_usage(prompt_tokens=True), "prompt_tokens"),
        (bad_usage(prompt_tokens=2**63), "prompt_tokens"),
        (bad_usage(prompt_tokens_details="x"), "prompt_tokens_details"),
        (bad_usage(completion_tokens_details={"reasoning_tokens": -3}), "reasoning_tokens"),
        ({**GOOD, "usage": [1]}, "usage"),
        ({**GOOD, "choices": [5]}, "choice"),
        ({**GOOD, "choices": [{"index": 0, "message": {"role": "assistant", "tool_calls": [5]}}]}, "tool_calls"),
        ({**GOOD, "choices": [{"index": 0, "message": "hi"}]}, "message"),
    ],
)
def test_a_bad_answer_is_a_502_with_one_failure_row_and_no_credit(
    admin: httpx2.Client, upstream: Upstream, key: str, answer: Any, named: str
) -> None:
    upstream.answer = answer
    assert_bad_response(chat(admin, key), named)
    assert [(row["status_code"], row["spend"]) for row in logs(admin, key)] == [(502, 0.0)]
    assert_released_and_not_credited(admin, upstream, key)


def events(response: httpx2.Response) -> list[str]:
    return [line.removeprefix("data: ") for line in response.text.split("\n\n") if line.startswith("data: ")]


@pytest.mark.parametrize(
    ("chunks", "named"),
    [
        ([chunk({"content": "Hel"}), {**chunk({}), "choices": [], "usage": {"prompt_tokens": "abc"}}], "prompt_tokens"),
        ([chunk({"content": "Hel"}), {**chunk({}), "usage": {**USAGE, "completion_tokens": -7}}], "completion_tokens"),
        ([chunk({"content": "Hel"}), chunk("oops")], "delta"),
        ([chunk({"content": "Hel"}), {**chunk({}), "choices": [None]}], "choice"),
        ([chunk({"content": "Hel"}), chunk({"content": 5})], "content"),
    ],
)
def test_a_stream_gone_bad_ends_with_an_error_event_one_502_row_and_its_hold_released(
    admin: httpx2.Client, upstream: Upstream, key: str, chunks: list[Any], named: str
) -> None:
    upstream.chunks = chunks
    response = chat(admin, key, stream=True)
    assert response.status_code == 200
    sent = events(response)
    assert json.loads(sent[0])["choices"][0]["delta"]["content"] == "Hel"
    error = json.loads(sent[-1])["error"]
    assert error["code"] == "upstream_bad_response" and named in error["message"], sent
    assert "[DONE]" not in sent
    assert [row["status_code"] for row in logs(admin, key)] == [502]
    assert_released_and_not_credited(admin, upstream, key)


@pytest.mark.parametrize(
    ("first", "named"),
    [
        ({**chunk({}), "choices": 5}, "choices"),
        (chunk(5), "delta"),
        (chunk({"tool_calls": [5]}), "tool_calls"),
        (chunk({"tool_calls": [{"index": 0, "function": "f"}]}), "tool_calls"),
    ],
)
def test_a_stream_whose_first_chunk_is_malformed_is_a_502_answer(
    admin: httpx2.Client, upstream: Upstream, key: str, first: Any, named: str
) -> None:
    upstream.chunks = [first, *GOOD_CHUNKS]
    assert_bad_response(chat(admin, key, stream=True), named)
    assert [(row["status_code"], row["spend"]) for row in logs(admin, key)] == [(502, 0.0)]
    assert_released_and_not_credited(admin, upstream, key)


def embedding(vector: Any) -> dict[str, Any]:
    return {"data": [{"object": "embedding", "index": 0, "embedding": vector}], "usage": USAGE}


@pytest.mark.parametrize("encoding", ["base64", "float"])
@pytest.mark.parametrize(
    ("vectors", "named"),
    [
        (embedding([1e39]), "float32"),
        (embedding([0.5, "x"]), "float32"),
        (embedding([[0.5]]), "float32"),
        (embedding(None), "embedding"),
        (embedding([]), "embedding"),
        ({"data": [5], "usage": USAGE}, "data"),
        ({"data": [{"embedding": [0.5], "index": "0"}], "usage": USAGE}, "index"),
        ({**GOOD_VECTORS, "usage": {"prompt_tokens": -12}}, "prompt_tokens"),
    ],
)
def test_bad_vectors_are_a_502_with_one_failure_row_and_no_charge(
    admin: httpx2.Client, upstream: Upstream, key: str, vectors: Any, named: str, encoding: str
) -> None:
    upstream.vectors = vectors
    body = {"model": "embed", "input": ["hello"], "encoding_format": encoding}
    response = admin.post("/v1/embeddings", json=body, headers={"authorization": f"Bearer {key}"})
    assert_bad_response(response, named)
    assert [(row["status_code"], row["spend"]) for row in logs(admin, key)] == [(502, 0.0)]
    assert_released_and_not_credited(admin, upstream, key)


def test_a_stream_whose_delta_content_is_a_list_of_parts_is_relayed_as_sent(
    admin: httpx2.Client, upstream: Upstream, key: str
) -> None:
    """Mistral's Magistral models stream their thinking as a list of parts in `delta.content`: valid, passed on."""
    thinking = [{"type": "thinking", "thinking": [{"type": "text", "text": "Let me see."}]}]
    upstream.chunks = [chunk({"content": thinking}), chunk({"content": "Hello"}), GOOD_CHUNKS[-1]]
    with admin.stream("POST", "/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                      json={"model": "chat", "messages": MESSAGES, "stream": True}) as response:  # fmt: skip
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    assert response.status_code == 200 and events[-1] == "[DONE]"
    assert [json.loads(e)["choices"][0]["delta"]["content"] for e in events[:2]] == [thinking, "Hello"]


def test_an_answer_larger_than_the_gateway_holds_is_a_502_and_its_hold_is_released(
    admin: httpx2.Client, upstream: Upstream, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection, "MAX_WHOLE", 4096)  # 256 MiB in earnest: the test's server runs in this process
    upstream.answer = {**GOOD, "padding": "x" * 10_000}
    assert_bad_response(chat(admin, key), "will not hold", "larger than")
    monkeypatch.undo()
    assert_released_and_not_credited(admin, upstream, key)
