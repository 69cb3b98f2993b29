"""The config's fallbacks never answer a virtual key with a model it may not use, on any inbound API (over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from hub.config import parse_config
from hub.server import build_app
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.keys.conftest import MASTER_KEY, sdk
from tests.support.servers import serve_app

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def model(name: str, upstream_model: str, base: str, price: float) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": f"openai/{upstream_model}", "api_base": base,
            "api_key": API_KEY, "input_cost_per_token": price, "output_cost_per_token": 2 * price}}  # fmt: skip


@pytest.fixture
def fake() -> Iterator[tuple[FakeOpenAI, str]]:
    upstream = FakeOpenAI()
    with serve_app(upstream.app) as url:
        yield upstream, f"{url}/v1"


@pytest.fixture
def gateway_url(fake: tuple[FakeOpenAI, str], tmp_path: Path) -> Iterator[str]:
    """`failing` (every call a 500) falls back to `premium`, then `cheap`; `cheap` falls back to `premium`."""
    base = fake[1]
    raw = {
        "model_list": [model("failing", "error-500", base, 0.5), model("cheap", "text", base, 0.5),
                       model("premium", "premium-text", base, 5.0)],
        "router_settings": {"fallbacks": [{"failing": ["premium", "cheap"]}, {"cheap": ["premium"]}]},
        "general_settings": {"master_key": MASTER_KEY, "database_url": f"sqlite:///{tmp_path / 'toolhub.db'}"},
    }  # fmt: skip
    with serve_app(build_app(parse_config(raw, {}))) as url:
        yield url


def key_for(gateway_url: str, models: list[str]) -> str:
    answer = httpx2.post(f"{gateway_url}/key/generate", json={"models": models},
                         headers={"authorization": f"Bearer {MASTER_KEY}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.json()["key"]


def test_chat_falls_back_only_to_models_the_key_may_use(fake: tuple[FakeOpenAI, str], gateway_url: str) -> None:
    key = key_for(gateway_url, ["failing", "cheap"])
    with sdk(gateway_url, key) as client:
        raw = client.chat.completions.with_raw_response.create(model="failing", messages=USER)
        assert raw.parse().choices[0].message.content == "You said: hi"
        assert (raw.headers["x-litellm-model-group"], raw.headers["x-litellm-attempted-fallbacks"]) == ("cheap", "1")
        assert float(raw.headers["x-toolhub-cost"]) == 13.0  # cheap's prices: 12 prompt + 7 completion tokens
        with pytest.raises(openai.InternalServerError) as mocked:  # premium is skipped: the mock error stands
            client.chat.completions.create(model="cheap", messages=USER, extra_body={"mock_testing_fallbacks": True})
        assert mocked.value.code == "mock_testing_fallbacks"
        with pytest.raises(openai.PermissionDeniedError):
            client.chat.completions.create(model="premium", messages=USER)
    only = key_for(gateway_url, ["failing"])
    with sdk(gateway_url, only) as client, pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(model="failing", messages=USER)
    assert failed.value.status_code == 502  # the upstream's 500 stands: neither fallback is the key's
    assert "premium-text" not in [r.get("model") for r in fake[0].requests]


@pytest.mark.parametrize(
    ("path", "body"),
    [("/v1/messages", {"max_tokens": 50, "messages": USER}), ("/v1/responses", {"input": "hi"}),
     ("/v1/embeddings", {"input": ["hi"]})],
)  # fmt: skip
def test_every_inbound_api_falls_back_only_to_models_the_key_may_use(
    fake: tuple[FakeOpenAI, str], gateway_url: str, path: str, body: dict[str, Any]
) -> None:
    key = key_for(gateway_url, ["failing", "cheap"])
    answer = httpx2.post(f"{gateway_url}{path}", json={"model": "failing", **body},
                         headers={"authorization": f"Bearer {key}"}, timeout=20)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert [r.get("model") for r in fake[0].requests] == ["error-500", "text"]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses", "/v1/messages"])
def test_a_requests_own_fallbacks_are_honoured_on_every_inbound_api(
    fake: tuple[FakeOpenAI, str], gateway_url: str, path: str
) -> None:
    body = {"messages": USER, "max_tokens": 50} if path != "/v1/responses" else {"input": "hi"}
    extra = {"fallbacks": ["premium"], "mock_testing_fallbacks": True, "num_retries": 0}
    answer = httpx2.post(f"{gateway_url}{path}", json={"model": "cheap", **body, **extra},
                         headers={"authorization": f"Bearer {MASTER_KEY}"}, timeout=20)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-litellm-model-group"] == "premium"
    bad = httpx2.post(f"{gateway_url}{path}", json={"model": "cheap", **body, "fallbacks": "premium"},
                      headers={"authorization": f"Bearer {MASTER_KEY}"}, timeout=20)  # fmt: skip
    assert bad.status_code == 400, bad.text
