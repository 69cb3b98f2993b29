"""The config keys of the inbound APIs: the Responses passthrough opt-in, stored-response retention, and whether the
response cache takes embeddings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.fakes.openai_upstream import API_KEY
from tests.fakes.responses_upstream import FakeResponses
from tests.support.servers import serve_app

PARAMS = {"model": "openai/text", "api_base": "http://127.0.0.1:9/v1", "api_key": "k"}


def test_the_responses_passthrough_is_opted_in_per_deployment_with_litellms_key_or_toolhubs() -> None:
    models = [
        {"model_name": "litellm", "litellm_params": PARAMS,
         "model_info": {"supported_endpoints": ["/v1/chat/completions", "/v1/responses"]}},
        {"model_name": "toolhub", "litellm_params": {**PARAMS, "use_responses_api": True}},
        {"model_name": "chat", "litellm_params": PARAMS,
         "model_info": {"supported_endpoints": ["/v1/chat/completions"]}},
    ]  # fmt: skip
    config = parse_config({"model_list": models}, {}, serving=False)
    assert [config.models[a][0].responses_api for a in ("litellm", "toolhub", "chat")] == [True, True, False]
    assert config.ignored == ()
    assert "use_responses_api" not in config.models["toolhub"][0].deployment.params


def test_stored_responses_are_kept_for_the_configured_period() -> None:
    assert parse_config({}, {}, serving=False).responses_retention is None
    config = parse_config({"general_settings": {"responses_retention_period": "30d"}}, {}, serving=False)
    assert config.responses_retention == 30 * 86400


@pytest.mark.parametrize(("types", "cached"), [(None, True), (["completion", "embedding"], True),
                                               (["completion", "acompletion"], False)])  # fmt: skip
def test_embeddings_are_cached_unless_supported_call_types_leave_them_out(types: Any, cached: bool) -> None:
    settings = {"cache": True, "cache_params": {"supported_call_types": types}}
    cache = parse_config({"litellm_settings": settings}, {}, serving=False).cache
    assert cache is not None and cache.embeddings is cached


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[tuple[FakeResponses, str]]:
    fake = FakeResponses()
    with serve_app(fake.app) as upstream:
        params = {"model": "openai/text", "api_base": f"{upstream}/v1", "api_key": API_KEY}
        models = [{"model_name": "native", "litellm_params": params,
                   "model_info": {"supported_endpoints": ["/v1/responses"]}}]  # fmt: skip
        with serve_app(build_app(parse_config({"model_list": models}, {}))) as url:
            yield fake, url


def test_a_deployment_opted_in_by_config_answers_with_the_upstreams_response(
    gateway_url: tuple[FakeResponses, str],
) -> None:
    fake, url = gateway_url
    with openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client:
        response = client.responses.create(model="native", input="hello", store=False)
    assert response.id.startswith("resp_fake") and fake.requests[-1]["model"] == "text"
