"""Gemini embeddings in batches of at most 100 (QA inbound finding 4): OpenAI clients send up to 2048 inputs at once,
Gemini's `batchEmbedContents` refuses more than 100 requests. The provider runs against the Gemini fake, which
enforces that cap with the real API's error text."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx2
import pytest

from providers._http import HttpPool
from providers.base import JSON, Deployment, ProviderError
from providers.gemini.embeddings import CONCURRENT_BATCHES, MAX_BATCH_REQUESTS, batch_bodies, embed_in_batches
from providers.gemini.provider import GeminiProvider
from tests.fakes import gemini_upstream
from tests.fakes.gemini_upstream import FakeGemini
from tests.support.servers import serve_app

MODEL = "gemini-embedding-001"


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeGemini, str]]:
    upstream = FakeGemini()
    with serve_app(upstream.app) as url:
        yield upstream, url


async def embed(url: str, texts: list[str], **body: object) -> JSON:
    deployment = Deployment(provider="gemini", model=MODEL, api_base=url, api_key=gemini_upstream.API_KEY)
    pool = HttpPool()
    try:
        with anyio.fail_after(20):
            return await GeminiProvider(pool).embed(deployment, {"input": texts, **body})
    finally:
        await pool.aclose()


def test_the_fake_refuses_a_batch_of_101_with_geminis_words(fake: tuple[FakeGemini, str]) -> None:
    one = {"model": f"models/{MODEL}", "content": {"parts": [{"text": "x"}]}}
    response = httpx2.post(f"{fake[1]}/v1beta/models/{MODEL}:batchEmbedContents", json={"requests": [one] * 101},
                           headers={"x-goog-api-key": gemini_upstream.API_KEY})  # fmt: skip
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": 400, "status": "INVALID_ARGUMENT",
        "message": "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n"}  # fmt: skip


@pytest.mark.anyio
async def test_250_inputs_are_sent_as_batches_of_100_100_50_and_come_back_in_input_order(
    fake: tuple[FakeGemini, str],
) -> None:
    texts = [f"{'w' * (i % 9)}text {i}" for i in range(250)]
    before = len(fake[0].requests)
    answer = await embed(fake[1], texts, dimensions=2)
    sent = fake[0].requests[before:]
    assert sorted(len(b["requests"]) for b in sent) == [50, 100, 100]
    assert sorted(r["content"]["parts"][0]["text"] for b in sent for r in b["requests"]) == sorted(texts)
    assert all(r["outputDimensionality"] == 2 for b in sent for r in b["requests"])
    assert [d["index"] for d in answer["data"]] == list(range(250))
    # the fake's vector is [len(text), position in its batch]
    assert [d["embedding"] for d in answer["data"]] == [[float(len(t)), float(i % 100)] for i, t in enumerate(texts)]
    assert (answer["object"], answer["model"]) == ("list", MODEL)


@pytest.mark.anyio
async def test_exactly_100_inputs_are_one_batch(fake: tuple[FakeGemini, str]) -> None:
    before = len(fake[0].requests)
    answer = await embed(fake[1], [f"t{i}" for i in range(100)])
    assert [len(b["requests"]) for b in fake[0].requests[before:]] == [100]
    assert len(answer["data"]) == 100


@pytest.mark.anyio
async def test_one_failing_batch_fails_the_request_with_that_batchs_error(fake: tuple[FakeGemini, str]) -> None:
    texts = [f"t{i}" for i in range(230)]
    texts[150] = ""  # the fake refuses an empty text, as Gemini does: batch 2 (inputs 100..199) fails
    with pytest.raises(ProviderError) as raised:
        await embed(fake[1], texts)
    assert (raised.value.status_code, raised.value.upstream_status, raised.value.code) == (400, 400, "invalid_argument")
    assert raised.value.message == "gemini error (400): requests[50].content: text must be non-empty"


def test_bodies_hold_at_most_max_batch_requests_each_in_order() -> None:
    bodies = batch_bodies(MODEL, [str(i) for i in range(2048)])
    assert MAX_BATCH_REQUESTS == 100
    assert [len(b["requests"]) for b in bodies] == [100] * 20 + [48]
    assert [r["content"]["parts"][0]["text"] for b in bodies for r in b["requests"]] == [str(i) for i in range(2048)]


@pytest.mark.anyio
async def test_batches_run_a_few_at_a_time_and_later_ones_may_finish_first() -> None:
    bodies = batch_bodies(MODEL, [str(i) for i in range(1000)])
    running, most = 0, 0

    async def send(body: JSON) -> object:
        nonlocal running, most
        running += 1
        most = max(most, running)
        first = int(body["requests"][0]["content"]["parts"][0]["text"])
        for _ in range(20 - first // 100):  # later batches answer sooner
            await anyio.lowlevel.checkpoint()
        running -= 1
        return {"embeddings": [{"values": [float(r["content"]["parts"][0]["text"])]} for r in body["requests"]]}

    with anyio.fail_after(5):
        answer = await embed_in_batches(send, MODEL, bodies)
    assert most == CONCURRENT_BATCHES
    assert [d["embedding"] for d in answer["data"]] == [[float(i)] for i in range(1000)]


@pytest.mark.anyio
async def test_a_failure_cancels_the_batches_still_waiting_and_is_raised_alone() -> None:
    never = anyio.Event()
    bodies = batch_bodies(MODEL, [str(i) for i in range(500)])
    boom = ProviderError("gemini error (429): quota", status_code=429, provider="gemini")

    async def send(body: JSON) -> object:
        if body["requests"][0]["content"]["parts"][0]["text"] == "200":
            raise boom
        await never.wait()  # without the cancellation the call would never end
        return {}

    with anyio.fail_after(5), pytest.raises(ProviderError) as raised:
        await embed_in_batches(send, MODEL, bodies)
    assert raised.value is boom


@pytest.mark.anyio
async def test_an_answer_with_too_few_embeddings_is_a_bad_upstream_answer() -> None:
    async def send(body: JSON) -> object:
        return {"embeddings": [{"values": [1.0]}]}

    with pytest.raises(ProviderError) as raised:
        await embed_in_batches(send, MODEL, batch_bodies(MODEL, ["a", "b"]))
    assert (raised.value.status_code, raised.value.code) == (502, "upstream_bad_response")
