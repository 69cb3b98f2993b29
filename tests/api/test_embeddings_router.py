"""/v1/embeddings through the router (hub/router `RoutedCall.embed`): retries on another deployment, fallbacks, and a
model that serves no embeddings, with the openai SDK."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.fakes import openai_upstream
from tests.fakes.openai_upstream import FakeOpenAI
from tests.keys.conftest import sdk
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-embeddings-router"


def deployment(upstream: str, alias: str, model: str, **extra: Any) -> dict[str, Any]:
    """A `model_list` entry for `alias`: `model` on the fake OpenAI upstream at `upstream`."""
    params = {"model": f"openai/{model}", "api_base": f"{upstream}/v1", "api_key": openai_upstream.API_KEY}
    return {"model_name": alias, "litellm_params": {**params, **extra}}


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    with serve_app(fake.app) as upstream:
        entry = functools.partial(deployment, upstream)
        models = [entry("pair", "error-503", order=1), entry("pair", "text-embedding-3-small", order=2),
                  entry("down", "error-500"), entry("small", "text-embedding-3-small"),
                  {"model_name": "claude", "litellm_params": {"model": "anthropic/claude-sonnet-4-5",
                                                              "api_base": upstream, "api_key": "k"}}]  # fmt: skip
        raw = {"model_list": models, "general_settings": {"master_key": MASTER_KEY},
               "router_settings": {"num_retries": 1, "fallbacks": [{"down": ["small"]}]}}  # fmt: skip
        with serve_app(build_app(parse_config(raw, {}))) as url:
            yield fake, url


@pytest.fixture
def client(gateway: tuple[FakeOpenAI, str]) -> Iterator[openai.OpenAI]:
    with sdk(gateway[1], MASTER_KEY) as c:
        yield c


def test_a_failing_deployment_is_retried_on_the_groups_other_one(
    client: openai.OpenAI, gateway: tuple[FakeOpenAI, str]
) -> None:
    fake = gateway[0]
    before = len(fake.requests)
    answer = client.embeddings.create(model="pair", input="hello", encoding_format="float")
    assert [r["model"] for r in fake.requests[before:]] == ["error-503", "text-embedding-3-small"]
    assert answer.data[0].embedding[0] == 5.0


def test_a_failing_group_falls_back_to_the_configured_one(
    client: openai.OpenAI, gateway: tuple[FakeOpenAI, str]
) -> None:
    fake = gateway[0]
    before = len(fake.requests)
    answer = client.embeddings.create(model="down", input="hi", encoding_format="float")
    assert [r["model"] for r in fake.requests[before:]][-1] == "text-embedding-3-small"
    assert answer.model == "down" and answer.data[0].embedding[0] == 2.0


def test_a_model_without_embeddings_gets_a_400_naming_it(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="claude", input="hi")
    assert caught.value.code == "model_not_supported" and "claude" in caught.value.message
