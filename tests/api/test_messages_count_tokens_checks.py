"""/v1/messages/count_tokens refuses what /v1/messages refuses, with the same Anthropic-shaped 400, and counts nothing
then (no estimate, no upstream count). The anthropic SDK sends what it can; raw httpx2 sends the bodies it won't."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.fakes.anthropic_count import FakeAnthropicCounting
from tests.fakes.anthropic_upstream import API_KEY as ANTHROPIC_KEY
from tests.fakes.openai_upstream import API_KEY as OPENAI_KEY, FakeOpenAI
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-count-checks"
HELLO: Any = [{"role": "user", "content": "hello"}]
SCHEMA: Any = {"type": "object", "properties": {}}
ALIASES = ["claude", "gpt"]
"""An Anthropic alias (counted by its upstream) and another (estimated by the gateway)."""


@pytest.fixture(scope="module")
def fake() -> FakeAnthropicCounting:
    return FakeAnthropicCounting()


@pytest.fixture(scope="module")
def url(fake: FakeAnthropicCounting) -> Iterator[str]:
    with serve_app(fake.app) as claude, serve_app(FakeOpenAI().app) as gpt:
        models = [{"model_name": "claude", "litellm_params": {"model": "anthropic/claude-sonnet-4-5",
                                                              "api_base": claude, "api_key": ANTHROPIC_KEY}},
                  {"model_name": "gpt", "litellm_params": {"model": "openai/text", "api_base": f"{gpt}/v1",
                                                           "api_key": OPENAI_KEY}}]  # fmt: skip
        config = {"model_list": models, "general_settings": {"master_key": MASTER_KEY}}
        with serve_app(build_app(parse_config(config, {}))) as gateway:
            yield gateway


@pytest.fixture
def client(url: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=url, api_key=MASTER_KEY, max_retries=0, timeout=20) as c:
        yield c


def refused_by_messages(url: str, body: dict[str, Any]) -> Any:
    """What /v1/messages answers `body` (with a max_tokens unless it has one): the 400 count_tokens must match."""
    response = httpx2.post(f"{url}/v1/messages", json={"max_tokens": 16, **body}, headers={"x-api-key": MASTER_KEY})
    assert response.status_code == 400
    return response.json()


@pytest.mark.parametrize("model", ALIASES)
@pytest.mark.parametrize(
    "extra",
    [
        {"tools": [{"name": "get weather", "input_schema": SCHEMA}]},  # the chat check's tool-name rule
        {"tools": [{"name": "t" * 65, "input_schema": SCHEMA}]},
        {"thinking": {"type": "enabled", "budget_tokens": 10**30}},  # an integer too large to read
    ],
)
def test_a_body_messages_refuses_is_refused_alike_by_the_sdks_count_tokens(
    client: anthropic.Anthropic, fake: FakeAnthropicCounting, url: str, model: str, extra: dict[str, Any]
) -> None:
    counts = len(fake.counts)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.count_tokens(model=model, messages=HELLO, **extra)
    assert caught.value.status_code == 400
    assert caught.value.body == refused_by_messages(url, {"model": model, "messages": HELLO, **extra})
    assert len(fake.counts) == counts  # the upstream was not asked either


@pytest.mark.parametrize("model", ALIASES)
@pytest.mark.parametrize(
    "extra",
    [
        {"messages": "hello"},
        {"messages": {"role": "user", "content": "hello"}},
        {"max_tokens": "16"},
        {"messages": [{"role": "user", "content": [{"type": "hologram", "data": "x"}]}]},
        {"top_k": 1e30},
        {"stop_sequences": ["a", "b", "c", "d", "e"]},
        {"tools": [{"name": "", "input_schema": SCHEMA}]},
    ],
)
def test_a_malformed_body_gets_the_same_anthropic_400_on_both_endpoints(
    fake: FakeAnthropicCounting, url: str, model: str, extra: dict[str, Any]
) -> None:
    body = {"model": model, "messages": HELLO, **extra}
    counts = len(fake.counts)
    response = httpx2.post(f"{url}/v1/messages/count_tokens", json=body, headers={"x-api-key": MASTER_KEY})
    assert response.status_code == 400
    assert response.json()["type"] == "error" and response.json()["error"]["type"] == "invalid_request_error"
    assert response.json() == refused_by_messages(url, body)
    assert len(fake.counts) == counts


@pytest.mark.parametrize("model", ALIASES)
def test_a_well_formed_body_is_still_counted(client: anthropic.Anthropic, model: str) -> None:
    tools: Any = [{"name": "get_weather", "input_schema": SCHEMA}]
    assert client.messages.count_tokens(model=model, messages=HELLO, tools=tools).input_tokens > 0
