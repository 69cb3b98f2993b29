"""/v1/embeddings end to end: the openai SDK against the gateway over the OpenAI and Gemini fakes, spend in SQLite."""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.fakes import gemini_upstream, openai_upstream
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-embeddings-test"
EMBEDDING = {"mode": "embedding"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeOpenAI, FakeGemini, str]]:
    fake_openai, fake_gemini = FakeOpenAI(), FakeGemini()
    database = Path(tmp_path_factory.mktemp("embeddings")) / "hub.db"
    with serve_app(fake_openai.app) as o, serve_app(fake_gemini.app) as g:
        models: list[dict[str, Any]] = [
            {"model_name": "small", "model_info": EMBEDDING, "litellm_params": {
                "model": "openai/text-embedding-3-small", "api_base": f"{o}/v1", "api_key": openai_upstream.API_KEY,
                "input_cost_per_token": 0.25}},
            {"model_name": "local", "model_info": EMBEDDING, "litellm_params": {
                "model": "openai_compatible/nomic", "api_base": f"{o}/v1", "api_key": openai_upstream.API_KEY}},
            {"model_name": "gem", "model_info": EMBEDDING, "litellm_params": {
                "model": "gemini/gemini-embedding-001", "api_base": g, "api_key": gemini_upstream.API_KEY}},
            {"model_name": "broken", "litellm_params": {
                "model": "openai/error-429", "api_base": f"{o}/v1", "api_key": openai_upstream.API_KEY}},
            {"model_name": "claude", "litellm_params": {
                "model": "anthropic/claude-sonnet-4-5", "api_base": o, "api_key": "k"}},
        ]  # fmt: skip
        general = {"master_key": MASTER_KEY, "database_url": f"sqlite:///{database}"}
        config = parse_config({"model_list": models, "general_settings": general}, {})
        with serve_app(build_app(config)) as url:
            yield fake_openai, fake_gemini, url


@pytest.fixture
def client(gateway: tuple[FakeOpenAI, FakeGemini, str]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway[2]}/v1", api_key=MASTER_KEY, max_retries=0, timeout=20) as c:
        yield c


def test_the_sdk_gets_openai_vectors_in_its_default_base64_and_the_upstream_was_asked_for_floats(
    client: openai.OpenAI, gateway: tuple[FakeOpenAI, FakeGemini, str]
) -> None:
    answer = client.embeddings.create(model="small", input=["hello", "hi"], dimensions=3, user="u-1")
    assert [d.embedding for d in answer.data] == [[5.0, 0.0, 0.5], [2.0, 1.0, 0.5]]
    assert (answer.model, answer.usage.prompt_tokens, answer.usage.total_tokens) == ("small", 4, 4)
    assert gateway[0].requests[-1] == {"model": "text-embedding-3-small", "input": ["hello", "hi"], "dimensions": 3,
                                       "user": "u-1", "encoding_format": "float"}  # fmt: skip


def test_a_gemini_model_embeds_through_batch_embed_contents_with_an_estimated_usage(
    client: openai.OpenAI, gateway: tuple[FakeOpenAI, FakeGemini, str]
) -> None:
    answer = client.embeddings.create(model="gem", input="a sentence of 24 letters", dimensions=2,
                                      encoding_format="float")  # fmt: skip
    assert [d.embedding for d in answer.data] == [[24.0, 0.0]]
    assert answer.usage.prompt_tokens == 6  # 24 characters / 4
    content = {"parts": [{"text": "a sentence of 24 letters"}]}
    one = {"model": "models/gemini-embedding-001", "outputDimensionality": 2, "content": content}
    assert gateway[1].requests[-1] == {"requests": [one]}


def test_open_webuis_request_shape_gets_float_lists_and_base64_decodes_to_the_same_floats(
    gateway: tuple[FakeOpenAI, FakeGemini, str],
) -> None:
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    plain = httpx2.post(f"{gateway[2]}/v1/embeddings", json={"model": "gem", "input": ["doc one", "doc 2"]},
                        headers=headers).json()  # fmt: skip
    assert [d["embedding"] for d in plain["data"]] == [[7.0, 0.0, 0.5, 0.5], [5.0, 1.0, 0.5, 0.5]]
    packed = httpx2.post(f"{gateway[2]}/embeddings", headers=headers,
                         json={"model": "local", "input": [[1, 2, 3]], "encoding_format": "base64"}).json()  # fmt: skip
    raw = base64.b64decode(packed["data"][0]["embedding"])
    assert struct.unpack("<4f", raw) == (3.0, 0.0, 0.5, 0.5)


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "small", "input": ""}, 400, "input"),
        ({"model": "small", "input": []}, 400, "input"),
        ({"model": "small"}, 400, "input"),
        ({"model": "small", "input": ["ok", 3]}, 400, "input"),
        ({"model": "small", "input": "x", "dimensions": 0}, 400, "dimensions"),
        ({"model": "small", "input": "x", "encoding_format": "int8"}, 400, "encoding_format"),
        ({"model": "gem", "input": [[1, 2]]}, 400, "input"),
        ({"model": "claude", "input": "x"}, 400, "model"),
        ({"model": "nope", "input": "x"}, 404, "model"),
        ({"model": "broken", "input": "x"}, 429, None),
    ],
)
def test_bad_inputs_and_upstream_failures_are_openai_errors(
    gateway: tuple[FakeOpenAI, FakeGemini, str], body: dict[str, Any], status: int, param: str | None
) -> None:
    response = httpx2.post(f"{gateway[2]}/v1/embeddings", json=body, headers={"Authorization": f"Bearer {MASTER_KEY}"})
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param


def test_embedding_requests_are_priced_and_logged_and_embedding_aliases_are_listed(
    client: openai.OpenAI, gateway: tuple[FakeOpenAI, FakeGemini, str]
) -> None:
    response = client.embeddings.with_raw_response.create(model="small", input=["abc"])
    assert response.headers["x-toolhub-cost"] == "0.5"  # 2 tokens at 0.25
    assert {"small", "local", "gem"} <= {m.id for m in client.models.list()}
    rows: list[dict[str, Any]] = []
    with httpx2.Client(base_url=gateway[2], headers={"Authorization": f"Bearer {MASTER_KEY}"}) as admin:
        for _ in range(50):  # the usage writer stores in the background
            rows = admin.get("/spend/logs", params={"model": "small"}).json()["data"]
            if any(r["spend"] == 0.5 for r in rows):
                break
            time.sleep(0.05)
    assert any((r["spend"], r["prompt_tokens"], r["status"]) == (0.5, 2, "success") for r in rows)


@pytest.mark.parametrize("model", ["small", "gem"])
def test_an_answer_carries_the_gateways_overhead_and_the_routers_headers_as_chat_does(
    client: openai.OpenAI, model: str
) -> None:
    raw = client.embeddings.with_raw_response.create(model=model, input="hello")
    headers = raw.headers
    assert float(headers["x-toolhub-overhead-duration-ms"]) >= 0 and float(headers["x-toolhub-cost"]) >= 0
    assert (headers["x-litellm-model-group"], headers["x-litellm-attempted-retries"]) == (model, "0")
    assert headers["x-litellm-model-id"] and headers["x-litellm-model-api-base"].startswith("http://127.0.0.1:")
