"""The response cache over real sockets, the official `openai` SDK as the client (local store)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletion

from hub.config import parse_config
from hub.server import build_app
from tests.e2e.conftest import MASTER_KEY, gateway_config
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.support.servers import serve_app


def cached_config(upstream: str, **params: Any) -> dict[str, Any]:
    raw = gateway_config(upstream)
    raw["litellm_settings"] = {"cache": True, "cache_params": {"type": "local", **params}}
    return raw


@pytest.fixture(scope="module")
def cached_url(fake_openai: tuple[FakeOpenAI, str]) -> Iterator[str]:
    config = parse_config(cached_config(fake_openai[1]), {"FAKE_OPENAI_KEY": API_KEY})
    with serve_app(build_app(config)) as url:
        yield url


@pytest.fixture
def client(cached_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{cached_url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=20) as c:
        yield c


@pytest.fixture
def fake(fake_openai: tuple[FakeOpenAI, str]) -> FakeOpenAI:
    return fake_openai[0]


def unique() -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"say {uuid.uuid4().hex[:8]}"}]


def upstream_calls(fake: FakeOpenAI, messages: list[dict[str, Any]]) -> int:
    return sum(1 for body in fake.requests if body["messages"] == messages)


def create(client: openai.OpenAI, **body: Any) -> Any:
    return client.chat.completions.with_raw_response.create(**body)


def test_a_repeated_request_is_served_from_the_cache_once_the_first_answered(
    client: openai.OpenAI, fake: FakeOpenAI
) -> None:
    messages = unique()
    first = create(client, model="text", messages=messages)
    second = create(client, model="text", messages=messages, temperature=1, user="someone-else")
    assert first.headers["x-toolhub-cache-hit"] == "false"
    assert second.headers["x-toolhub-cache-hit"] == "true"
    assert second.headers["x-litellm-cache-key"] == first.headers["x-litellm-cache-key"]
    assert second.headers["x-toolhub-cost"] == "0"
    assert second.parse().model_dump() == first.parse().model_dump()
    assert upstream_calls(fake, messages) == 1
    assert "cache" not in fake.requests[-1]


def test_a_cached_plain_answer_replays_as_a_stream_the_sdk_accumulates_identically(
    client: openai.OpenAI, fake: FakeOpenAI
) -> None:
    messages = unique()
    plain = client.chat.completions.create(model="text", messages=messages)  # pyright: ignore[reportArgumentType]
    with client.chat.completions.stream(model="text", messages=messages) as stream:  # pyright: ignore[reportArgumentType]
        final = stream.get_final_completion()
    assert final.choices[0].message.content == plain.choices[0].message.content
    assert final.choices[0].finish_reason == "stop" and final.id == plain.id
    assert final.usage is None  # no include_usage: no usage chunk
    options: Any = {"stream": True, "stream_options": {"include_usage": True}}
    chunks = list(client.chat.completions.create(model="text", messages=messages, **options))  # pyright: ignore[reportCallIssue, reportArgumentType]
    assert chunks[-1].choices == [] and chunks[-1].usage == plain.usage
    assert upstream_calls(fake, messages) == 1


def test_cached_tool_calls_replay_as_a_stream_with_the_same_calls(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    messages = unique()
    plain = client.chat.completions.create(model="tools", messages=messages)  # pyright: ignore[reportArgumentType]
    with client.chat.completions.stream(model="tools", messages=messages) as stream:  # pyright: ignore[reportArgumentType]
        final = stream.get_final_completion()
    calls = [(c.id, c.function.name, c.function.arguments) for c in final.choices[0].message.tool_calls or []]
    original = plain.choices[0].message.tool_calls or []
    assert calls == [(c.id, c.function.name, c.function.arguments) for c in original]  # pyright: ignore[reportAttributeAccessIssue]
    assert len(calls) == 2 and final.choices[0].finish_reason == "tool_calls"
    assert upstream_calls(fake, messages) == 1


def test_a_completed_stream_is_cached_as_a_whole_answer(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    messages = unique()
    with client.chat.completions.stream(model="text-20", messages=messages) as stream:  # pyright: ignore[reportArgumentType]
        streamed = stream.get_final_completion()
    hit = create(client, model="text-20", messages=messages)
    assert hit.headers["x-toolhub-cache-hit"] == "true"
    answer = hit.parse()
    assert answer.choices[0].message.content == streamed.choices[0].message.content
    assert answer.usage is not None and answer.usage.total_tokens > 0  # the upstream's usage, kept from the stream
    assert upstream_calls(fake, messages) == 1


def test_controls_skip_the_lookup_skip_the_store_and_separate_namespaces(
    client: openai.OpenAI, fake: FakeOpenAI
) -> None:
    messages = unique()
    create(client, model="text", messages=messages, extra_body={"cache": {"no-store": True}})
    assert create(client, model="text", messages=messages).headers["x-toolhub-cache-hit"] == "false"
    no_cache = create(client, model="text", messages=messages, extra_body={"cache": {"no-cache": True}})
    assert no_cache.headers["x-toolhub-cache-hit"] == "false"
    other = create(client, model="text", messages=messages, extra_body={"cache": {"namespace": "team-b"}})
    assert other.headers["x-toolhub-cache-hit"] == "false"
    assert other.headers["x-litellm-cache-key"].startswith("team-b:")
    assert upstream_calls(fake, messages) == 4
    assert all("cache" not in body for body in fake.requests if body["messages"] == messages)
    assert create(client, model="text", messages=messages).headers["x-toolhub-cache-hit"] == "true"


def test_ttl_and_s_maxage_bound_the_age_of_a_hit(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    messages = unique()
    create(client, model="text", messages=messages, extra_body={"cache": {"ttl": 5}})
    young = create(client, model="text", messages=messages, extra_body={"cache": {"s-maxage": 60}})
    assert young.headers["x-toolhub-cache-hit"] == "true"
    time.sleep(0.1)
    too_old = create(client, model="text", messages=messages, extra_body={"cache": {"s-maxage": 0.05}})
    assert too_old.headers["x-toolhub-cache-hit"] == "false"  # (and it stores a fresh entry with the default ttl)
    assert upstream_calls(fake, messages) == 2


def test_a_short_ttl_expires(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    messages = unique()
    create(client, model="text", messages=messages, extra_body={"cache": {"ttl": 0.2}})
    time.sleep(0.3)
    assert create(client, model="text", messages=messages).headers["x-toolhub-cache-hit"] == "false"
    assert upstream_calls(fake, messages) == 2


def test_errors_and_cut_streams_are_never_stored(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    messages = unique()
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="error-500", messages=messages)  # pyright: ignore[reportArgumentType]
        with pytest.raises(openai.APIError):
            list(client.chat.completions.create(model="midstream-error", messages=messages, stream=True))  # pyright: ignore[reportArgumentType, reportCallIssue]
    assert upstream_calls(fake, messages) == 4


def test_a_malformed_cache_control_is_a_400_in_openai_shape(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="text", messages=unique(), extra_body={"cache": {"ttl": "soon"}})  # pyright: ignore[reportArgumentType]
    assert caught.value.code == "invalid_cache_control" and caught.value.param == "cache"


def test_identical_requests_in_flight_together_make_one_upstream_call(cached_url: str, fake: FakeOpenAI) -> None:
    messages = unique()

    async def many() -> list[ChatCompletion]:
        async with openai.AsyncOpenAI(base_url=f"{cached_url}/v1", api_key=MASTER_KEY, max_retries=0) as c:
            calls = [c.chat.completions.create(model="slow-1", messages=messages) for _ in range(5)]  # pyright: ignore[reportArgumentType, reportUnknownVariableType]
            return await asyncio.gather(*calls)  # pyright: ignore[reportUnknownArgumentType]

    answers = asyncio.run(many())
    assert len({a.choices[0].message.content for a in answers}) == 1
    assert upstream_calls(fake, messages) == 1


def test_without_cache_settings_nothing_is_cached_and_no_cache_headers_are_sent(
    gateway_url: str, fake: FakeOpenAI
) -> None:
    messages = unique()
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    for _ in range(2):
        response = httpx2.post(
            f"{gateway_url}/v1/chat/completions", json={"model": "text", "messages": messages}, headers=headers
        )
        assert response.status_code == 200 and "x-toolhub-cache-hit" not in response.headers
    assert upstream_calls(fake, messages) == 2


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/responses"])
def test_other_inbound_apis_replay_a_cached_stream_identically(cached_url: str, fake: FakeOpenAI, path: str) -> None:
    messages = unique()
    if path == "/v1/messages":
        body: dict[str, Any] = {"model": "text", "max_tokens": 50, "messages": messages, "stream": True}
    else:
        body = {"model": "text", "input": messages[0]["content"], "stream": True}
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    texts: list[str] = []
    for _ in range(2):
        with httpx2.stream("POST", f"{cached_url}{path}", json=body, headers=headers, timeout=20) as response:
            assert response.status_code == 200
            data = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
        texts.append("".join(_delta_text(d) for d in data))
    assert texts[0] and texts[1] == texts[0]
    assert sum(1 for b in fake.requests if b["messages"][-1] == messages[0]) == 1


def _delta_text(data: str) -> str:
    if data == "[DONE]":
        return ""
    event = json.loads(data)
    delta = event.get("delta")
    if isinstance(delta, dict):
        return delta.get("text") or ""  # Anthropic content_block_delta
    return delta if isinstance(delta, str) and event.get("type") == "response.output_text.delta" else ""


@pytest.mark.parametrize("namespace", ["qa\U0001f389", "qa\nX-Evil: 1"])
def test_a_namespace_that_cannot_be_a_header_value_is_a_400_before_the_upstream_is_called(
    client: openai.OpenAI, fake: FakeOpenAI, namespace: str
) -> None:
    messages = unique()
    with pytest.raises(openai.BadRequestError) as caught:
        create(client, model="text", messages=messages, extra_body={"cache": {"namespace": namespace}})
    assert (caught.value.code, upstream_calls(fake, messages)) == ("invalid_cache_control", 0)


def test_a_text_part_without_text_is_left_to_the_request_checks_not_a_crash_of_the_key(client: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": [{"type": "text"}]}]
    with contextlib.suppress(openai.BadRequestError):  # the gateway's checks or the upstream may refuse it: no 500
        create(client, model="text", messages=messages)
