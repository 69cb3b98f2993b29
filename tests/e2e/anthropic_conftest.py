"""Fixtures for the Anthropic e2e tests: the fake Messages server and a gateway routing `anthropic/...` to it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from hub.config import parse_config
from hub.server import build_app
from tests.fakes.anthropic_upstream import API_KEY, ERRORS, FakeAnthropic
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-anthropic-test"
BETA = "interleaved-thinking-2025-05-14"
FAKE_MODELS = ["claude-sonnet-4-5", "claude-tools", "claude-noargs", "claude-think", "claude-json", "claude-slow",
               "claude-midstream-error", "claude-broken", "claude-stop-max_tokens", "claude-stop-refusal",
               "claude-stop-stop_sequence",
               *(f"error-{status}" for status in ERRORS)]  # fmt: skip


def _entry(alias: str, model: str, url: str, **params: Any) -> dict[str, Any]:
    return {"model_name": alias, "litellm_params": {"model": f"anthropic/{model}", "api_base": url,
                                                    "api_key": "os.environ/FAKE_ANTHROPIC_KEY", **params}}  # fmt: skip


def anthropic_config(url: str) -> dict[str, Any]:
    models = [_entry(name, name, url) for name in FAKE_MODELS]
    models += [
        _entry("claude-think-strict", "claude-think", url, drop_params=False),
        _entry("claude-sonnet-4-5-strict", "claude-sonnet-4-5", url, drop_params=False),
        _entry("claude-beta", "claude-sonnet-4-5", url, extra_headers={"anthropic-beta": BETA}),
        _entry("claude-small", "claude-sonnet-4-5", url, max_tokens=333),
        _entry("claude-v1-base", "claude-sonnet-4-5", f"{url}/v1"),
        {"model_name": "claude-wrong-key", "litellm_params": {"model": "anthropic/claude-sonnet-4-5", "api_base": url,
                                                              "api_key": "sk-ant-wrong"}},
    ]  # fmt: skip
    return {"model_list": models, "general_settings": {"master_key": MASTER_KEY}}


@pytest.fixture(scope="module")
def fake_anthropic() -> Iterator[tuple[FakeAnthropic, str]]:
    fake = FakeAnthropic()
    with serve_app(fake.app) as url:
        yield fake, url


@pytest.fixture(scope="module")
def fake(fake_anthropic: tuple[FakeAnthropic, str]) -> FakeAnthropic:
    return fake_anthropic[0]


@pytest.fixture(scope="module")
def anthropic_gateway(fake_anthropic: tuple[FakeAnthropic, str]) -> Iterator[str]:
    config = parse_config(anthropic_config(fake_anthropic[1]), {"FAKE_ANTHROPIC_KEY": API_KEY})
    with serve_app(build_app(config)) as url:
        yield url


@pytest.fixture
def claude(anthropic_gateway: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{anthropic_gateway}/v1", api_key=MASTER_KEY, max_retries=0, timeout=20) as c:
        yield c


def raw_chunks(gateway_url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Stream through the gateway without the SDK; every chunk is validated as an OpenAI `ChatCompletionChunk`."""
    with httpx2.stream("POST", f"{gateway_url}/v1/chat/completions", json={**body, "stream": True},
                       headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=20) as response:  # fmt: skip
        assert response.status_code == 200, response.read()
        events = [line for line in response.iter_lines() if line]
    assert events[-1] == "data: [DONE]", events[-3:]
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    assert len({(c["id"], c["created"]) for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    return chunks
