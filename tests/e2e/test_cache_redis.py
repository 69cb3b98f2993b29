"""The Redis response cache: shared by two gateways, its TTL holding in both; a dead Redis is only a miss."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml

from hub.config import parse_config
from hub.server import build_app
from tests.e2e.conftest import MASTER_KEY, gateway_config
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.support.servers import refusing_port, serve_app, toolhub_process

REDIS_URL = os.environ.get("TOOLHUB_TEST_REDIS_URL")
pytestmark = pytest.mark.skipif(REDIS_URL is None, reason="needs TOOLHUB_TEST_REDIS_URL")
MASTER = {"Authorization": f"Bearer {MASTER_KEY}"}


def redis_config(upstream: str, redis_url: str | None) -> Any:
    raw = gateway_config(upstream)
    params = {"type": "redis", "redis_url": redis_url, "namespace": f"test-{uuid.uuid4().hex[:8]}"}
    raw["litellm_settings"] = {"cache": True, "cache_params": params}
    return parse_config(raw, {"FAKE_OPENAI_KEY": API_KEY})


@pytest.fixture(scope="module")
def two(fake_openai: tuple[FakeOpenAI, str]) -> Iterator[tuple[str, str]]:
    config = redis_config(fake_openai[1], REDIS_URL)
    with serve_app(build_app(config)) as first, serve_app(build_app(config)) as second:
        yield first, second


def ask(url: str, messages: list[dict[str, str]], **cache: Any) -> httpx2.Response:
    body: dict[str, Any] = {"model": "text", "messages": messages, **({"cache": cache} if cache else {})}
    return httpx2.post(f"{url}/v1/chat/completions", headers=MASTER, json=body)


def unique() -> list[dict[str, str]]:
    return [{"role": "user", "content": f"say {uuid.uuid4().hex[:8]}"}]


def test_an_answer_cached_by_one_gateway_is_a_hit_on_the_other(two: tuple[str, str]) -> None:
    first, second = two
    messages = unique()
    miss = ask(first, messages)
    hit = ask(second, messages)
    assert (miss.headers["x-toolhub-cache-hit"], hit.headers["x-toolhub-cache-hit"]) == ("false", "true")
    assert hit.json() == miss.json()


def test_the_ttl_holds_in_every_gateway(two: tuple[str, str]) -> None:
    first, second = two
    messages = unique()
    ask(first, messages, ttl=2)  # long enough for the two hits below on a loaded machine (0.3 s was not)
    assert ask(first, messages).headers["x-toolhub-cache-hit"] == "true"
    assert ask(second, messages).headers["x-toolhub-cache-hit"] == "true"
    time.sleep(2.1)
    assert ask(second, messages, **{"no-store": True}).headers["x-toolhub-cache-hit"] == "false"
    assert ask(first, messages).headers["x-toolhub-cache-hit"] == "false"


def test_an_unreachable_redis_serves_every_request_as_a_miss(fake_openai: tuple[FakeOpenAI, str]) -> None:
    config = redis_config(fake_openai[1], f"redis://127.0.0.1:{refusing_port()}/0")
    with serve_app(build_app(config)) as url:
        messages = unique()
        for _ in range(2):
            response = ask(url, messages)
            assert response.status_code == 200 and response.headers["x-toolhub-cache-hit"] == "false"


def test_two_toolhub_processes_share_one_redis_cache(fake_openai: tuple[FakeOpenAI, str], tmp_path: Path) -> None:
    fake, upstream = fake_openai
    params = {"model": "openai/text", "api_base": f"{upstream}/v1", "api_key": API_KEY}
    cache = {"type": "redis", "redis_url": REDIS_URL, "namespace": f"test-{uuid.uuid4().hex[:8]}"}
    raw = {
        "model_list": [{"model_name": "text", "litellm_params": params}],
        "general_settings": {"master_key": MASTER_KEY},
        "litellm_settings": {"cache": True, "cache_params": cache},
    }
    path = tmp_path / "toolhub.yaml"
    path.write_text(yaml.safe_dump(raw))
    messages = unique()
    with toolhub_process(path) as (first, _), toolhub_process(path) as (second, _):
        miss, hit = ask(first, messages), ask(second, messages)
    assert (miss.headers["x-toolhub-cache-hit"], hit.headers["x-toolhub-cache-hit"]) == ("false", "true")
    assert hit.json() == miss.json()
    assert sum(1 for body in fake.requests if body["messages"] == messages) == 1
