"""/v1/embeddings with fallbacks, with the openai SDK: a fallback's answer is not cached under the alias that failed,
and `default_fallbacks` naming chat models keep the failed call's own error."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import openai
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.api.test_embeddings_router import deployment
from tests.fakes.openai_upstream import FakeOpenAI
from tests.keys.conftest import sdk
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-embeddings-fallbacks"


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    with serve_app(fake.app) as upstream:
        entry = functools.partial(deployment, upstream)
        models = [entry("down", "error-500"), entry("small", "text-embedding-3-small"), entry("busy", "error-503"),
                  {"model_name": "claude", "litellm_params": {"model": "anthropic/claude-sonnet-4-5",
                                                              "api_base": upstream, "api_key": "k"}}]  # fmt: skip
        raw = {"model_list": models, "general_settings": {"master_key": MASTER_KEY},
               "litellm_settings": {"cache": True},
               "router_settings": {"num_retries": 0, "fallbacks": [{"down": ["small"]}],
                                   "default_fallbacks": ["claude"]}}  # fmt: skip
        with serve_app(build_app(parse_config(raw, {}))) as url:
            yield fake, url


@pytest.fixture
def client(gateway: tuple[FakeOpenAI, str]) -> Iterator[openai.OpenAI]:
    with sdk(gateway[1], MASTER_KEY) as c:
        yield c


def test_a_fallbacks_answer_is_not_cached_for_the_alias_that_failed(
    client: openai.OpenAI, gateway: tuple[FakeOpenAI, str]
) -> None:
    fake = gateway[0]
    before = len(fake.requests)
    first = client.embeddings.with_raw_response.create(model="down", input="fallen", encoding_format="float")
    again = client.embeddings.with_raw_response.create(model="down", input="fallen", encoding_format="float")
    assert [r["model"] for r in fake.requests[before:]] == ["error-500", "text-embedding-3-small"] * 2
    assert (first.headers["x-toolhub-cache-hit"], again.headers["x-toolhub-cache-hit"]) == ("false", "false")
    assert again.parse().data[0].embedding == first.parse().data[0].embedding


def test_the_alias_own_answer_is_still_cached(client: openai.OpenAI, gateway: tuple[FakeOpenAI, str]) -> None:
    fake = gateway[0]
    client.embeddings.create(model="small", input="own", encoding_format="float")
    before = len(fake.requests)
    again = client.embeddings.with_raw_response.create(model="small", input="own", encoding_format="float")
    assert again.headers["x-toolhub-cache-hit"] == "true" and len(fake.requests) == before


def test_default_fallbacks_without_embeddings_keep_the_upstream_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.embeddings.create(model="busy", input="hi", encoding_format="float")
    assert caught.value.status_code == 502  # the upstream's 503 as the gateway reports it, not a 400 about 'claude'
    assert "claude" not in caught.value.message
