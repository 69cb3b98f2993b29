"""Issue 12's QA findings over real sockets: unreadable Redis entries, `no-store` requests in flight, whole floats in
the key, and the role chunk of a replayed tool-call answer (the official `openai` SDK and httpx2 as clients)."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import openai
import orjson
import pytest
import redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.config import parse_config
from hub.server import build_app
from tests.e2e.conftest import MASTER_KEY, gateway_config
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.support.servers import serve_app

REDIS_URL = os.environ.get("TOOLHUB_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(REDIS_URL is None, reason="needs TOOLHUB_TEST_REDIS_URL")
MASTER = {"Authorization": f"Bearer {MASTER_KEY}"}
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]


class Arrivals:
    """The fake upstream's app, noting when a request whose body holds a given text has arrived (in flight)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.watched: dict[bytes, threading.Event] = {}

    def watch(self, text: str) -> threading.Event:
        return self.watched.setdefault(text.encode(), threading.Event())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def noting() -> Message:
            message = await receive()
            for text, event in list(self.watched.items()):
                if text in message.get("body", b""):
                    event.set()
            return message

        await self.app(scope, noting, send)


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[FakeOpenAI, Arrivals, str]]:
    fake = FakeOpenAI()
    arrivals = Arrivals(fake.app)
    with serve_app(arrivals) as url:
        yield fake, arrivals, url


def served(upstream: str, **params: Any) -> Iterator[str]:
    raw = gateway_config(upstream)
    raw["litellm_settings"] = {"cache": True, "cache_params": {"namespace": f"qa-{uuid.uuid4().hex[:8]}", **params}}
    with serve_app(build_app(parse_config(raw, {"FAKE_OPENAI_KEY": API_KEY}))) as url:
        yield url


@pytest.fixture(scope="module")
def local(upstream: tuple[FakeOpenAI, Arrivals, str]) -> Iterator[str]:
    yield from served(upstream[2], type="local")


@pytest.fixture(scope="module")
def shared(upstream: tuple[FakeOpenAI, Arrivals, str]) -> Iterator[str]:
    yield from served(upstream[2], type="redis", redis_url=REDIS_URL)


@pytest.fixture
def fake(upstream: tuple[FakeOpenAI, Arrivals, str]) -> FakeOpenAI:
    return upstream[0]


def unique() -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"say {uuid.uuid4().hex[:8]}"}]


def calls(fake: FakeOpenAI, messages: list[dict[str, Any]]) -> int:
    return sum(1 for body in fake.requests if body["messages"] == messages)


def ask(url: str, body: dict[str, Any]) -> httpx2.Response:
    return httpx2.post(f"{url}/v1/chat/completions", headers=MASTER, json={"model": "text", **body}, timeout=20)


def streamed(url: str, body: dict[str, Any]) -> tuple[httpx2.Response, str]:
    with httpx2.stream(
        "POST", f"{url}/v1/chat/completions", headers=MASTER, json={"model": "text", **body, "stream": True}
    ) as response:
        text = "".join(response.iter_text())
    return response, text


UNREADABLE = [
    b"garbage",
    b"",
    b"1700000000.5\n{not json}",
    b"\n\n",
    b'1700000000.5\n{"choices": 5}',
    b'1700000000.5\n{"choices": [5]}',
    b'1700000000.5\n{"choices": [{"message": "hi"}]}',
    b"1700000000.5\n[1]",
    b'nan\n{"choices": []}',
    b'1700000000.5\n{"choices": []}',
    b'1700000000.5\n{"choices": [{"index": 0}]}\n{"ids": 1}',
]


@needs_redis
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("value", UNREADABLE)
def test_a_value_in_redis_that_is_not_a_stored_answer_is_a_miss_and_the_answer_replaces_it(
    shared: str, fake: FakeOpenAI, value: bytes, stream: bool
) -> None:
    messages = unique()
    key = ask(shared, {"messages": messages, "cache": {"no-store": True}}).headers["x-litellm-cache-key"]
    with redis.Redis.from_url(REDIS_URL or "") as client:
        client.set(key, value, px=60_000)
    if stream:
        response, text = streamed(shared, {"messages": messages})
        assert response.status_code == 200 and text.rstrip().endswith("data: [DONE]")
    else:
        response = ask(shared, {"messages": messages})
        assert response.status_code == 200 and response.json()["object"] == "chat.completion"
    assert response.headers["x-toolhub-cache-hit"] == "false"
    again = ask(shared, {"messages": messages})
    assert again.headers["x-toolhub-cache-hit"] == "true" and again.json()["choices"][0]["message"]["content"]
    assert calls(fake, messages) == 2


@needs_redis
def test_an_unreadable_value_nobody_replaces_is_warned_about_once(
    shared: str, fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    messages = unique()
    key = ask(shared, {"messages": messages, "cache": {"no-store": True}}).headers["x-litellm-cache-key"]
    with redis.Redis.from_url(REDIS_URL or "") as client:
        client.set(key, b"garbage", px=60_000)
    with caplog.at_level(logging.WARNING, logger="toolhub.cache"):
        for _ in range(3):
            response = ask(shared, {"messages": messages, "cache": {"no-store": True}})
            assert response.status_code == 200 and response.headers["x-toolhub-cache-hit"] == "false"
    assert [r.getMessage() for r in caplog.records if key in r.getMessage()] == [
        f"cache: the value under {key} is not a stored answer (7 bytes), served as a miss"
    ]
    assert calls(fake, messages) == 4


@pytest.fixture
def in_flight(upstream: tuple[FakeOpenAI, Arrivals, str], local: str) -> Callable[..., list[str]]:
    """Send `first`, and once the upstream has it (in flight for a second: model slow-1) `then` all together; the
    hit headers of all, `first`'s first."""

    def send(first: dict[str, Any], then: list[dict[str, Any]]) -> list[str]:
        arrived = upstream[1].watch(first["messages"][0]["content"])
        with ThreadPoolExecutor(1 + len(then)) as pool:
            leading = pool.submit(ask, local, first)
            assert arrived.wait(5)
            responses = [leading.result(), *pool.map(lambda body: ask(local, body), then)]
        return [r.headers["x-toolhub-cache-hit"] for r in responses]

    return send


def test_requests_in_flight_with_a_no_store_one_are_not_handed_its_answer(
    local: str, fake: FakeOpenAI, in_flight: Callable[..., list[str]]
) -> None:
    no_store = {"model": "slow-1", "messages": unique(), "cache": {"no-store": True}}
    assert in_flight(no_store, [no_store] * 3) == ["false"] * 4
    assert calls(fake, no_store["messages"]) == 4
    plain = {"model": "slow-1", "messages": unique()}
    assert in_flight({**plain, "cache": {"no-store": True}}, [plain]) == ["false"] * 2
    assert calls(fake, plain["messages"]) == 2
    assert ask(local, plain).headers["x-toolhub-cache-hit"] == "true"  # the plain one stored its answer


def test_a_no_store_request_may_still_wait_for_a_plain_one_that_stores(
    fake: FakeOpenAI, in_flight: Callable[..., list[str]]
) -> None:
    plain = {"model": "slow-1", "messages": unique()}
    assert in_flight(plain, [{**plain, "cache": {"no-store": True}}]) == ["false", "true"]
    assert calls(fake, plain["messages"]) == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"temperature": 0}, {"temperature": 0.0}),
        ({"seed": 3}, {"seed": 3.0}),
        ({"max_tokens": 100}, {"max_tokens": 100.0}),
        ({"logit_bias": {"50256": -100}}, {"logit_bias": {"50256": -100.0}}),
        (
            {"tools": [{**TOOLS[0], "function": {"name": "f", "parameters": {"type": "object", "maximum": 5}}}]},
            {"tools": [{**TOOLS[0], "function": {"name": "f", "parameters": {"type": "object", "maximum": 5.0}}}]},
        ),
    ],
)
def test_numerically_equal_whole_numbers_share_an_entry(
    local: str, fake: FakeOpenAI, first: dict[str, Any], second: dict[str, Any]
) -> None:
    messages = unique()
    miss, hit = ask(local, {"messages": messages, **first}), ask(local, {"messages": messages, **second})
    assert (miss.headers["x-toolhub-cache-hit"], hit.headers["x-toolhub-cache-hit"]) == ("false", "true")
    assert hit.headers["x-litellm-cache-key"] == miss.headers["x-litellm-cache-key"]
    assert calls(fake, messages) == 1


def test_a_replayed_tool_call_answer_accumulates_to_content_none_as_the_original(local: str, fake: FakeOpenAI) -> None:
    messages: Any = unique()
    with openai.OpenAI(base_url=f"{local}/v1", api_key=MASTER_KEY, max_retries=0, timeout=20) as client:
        plain = client.chat.completions.create(model="tools", messages=messages)
        with client.chat.completions.stream(model="tools", messages=messages) as stream:
            replayed = stream.get_final_completion()
    assert plain.choices[0].message.content is None and replayed.choices[0].message.content is None
    shown = [(c.id, c.function.name, c.function.arguments) for c in replayed.choices[0].message.tool_calls or []]
    assert shown == [(c.id, c.function.name, c.function.arguments) for c in plain.choices[0].message.tool_calls or []]  # pyright: ignore[reportAttributeAccessIssue]
    assert calls(fake, messages) == 1


def test_a_replayed_text_answer_starts_with_empty_content_as_openai_streams_it(local: str, fake: FakeOpenAI) -> None:
    messages = unique()
    ask(local, {"messages": messages})
    response, text = streamed(local, {"messages": messages})
    first = orjson.loads(text.split("\n\n")[0].removeprefix("data: "))
    assert response.headers["x-toolhub-cache-hit"] == "true"
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
