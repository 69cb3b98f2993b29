"""/v1/messages goes through the chat path's accounting: spend logs with cached tokens, limits as Anthropic 429s."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-messages-accounting"
HI: list[Any] = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = Path(tmp_path_factory.mktemp("messages-accounting")) / "hub.db"
    fake = FakeOpenAI()
    with serve_app(fake.app) as upstream:
        params = {"model": "openai/text", "api_base": f"{upstream}/v1", "api_key": API_KEY}
        models = [{"model_name": "priced", "litellm_params": {**params, "input_cost_per_token": 1.0}},
                  {"model_name": "limited", "litellm_params": {**params, "rpm": 1}}]  # fmt: skip
        general = {"master_key": MASTER_KEY, "database_url": f"sqlite:///{database}"}
        with serve_app(build_app(parse_config({"model_list": models, "general_settings": general}, {}))) as gateway:
            yield gateway


def test_a_messages_request_is_priced_and_logged_with_its_cached_tokens(url: str) -> None:
    with anthropic.Anthropic(base_url=url, api_key=MASTER_KEY, max_retries=0) as client:
        raw = client.messages.with_raw_response.create(model="priced", max_tokens=5, messages=HI)
    assert raw.headers["x-toolhub-cost"] == "12"  # 12 prompt tokens at $1, output free
    assert raw.parse().usage.cache_read_input_tokens == 2
    rows: list[dict[str, Any]] = []
    with httpx2.Client(base_url=url, headers={"Authorization": f"Bearer {MASTER_KEY}"}) as admin:
        for _ in range(50):  # the usage writer stores in the background
            rows = admin.get("/spend/logs", params={"model": "priced"}).json()["data"]
            if rows:
                break
            time.sleep(0.05)
    assert [(r["spend"], r["prompt_tokens"], r["cached_tokens"], r["status"]) for r in rows] == [(12, 12, 2, "success")]


def test_a_rate_limited_alias_answers_an_anthropic_429_with_retry_after(url: str) -> None:
    with anthropic.Anthropic(base_url=url, api_key=MASTER_KEY, max_retries=0) as client:
        client.messages.create(model="limited", max_tokens=5, messages=HI)
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(model="limited", max_tokens=5, messages=HI)
    body: Any = caught.value.body
    assert (body["type"], body["error"]["type"], bool(body["error"]["message"])) == ("error", "rate_limit_error", True)
    assert int(caught.value.response.headers["retry-after"]) >= 1
