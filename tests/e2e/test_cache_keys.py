"""The response cache with virtual keys: permissions, budgets and rate limits still apply to a hit, which costs 0."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.e2e.conftest import MASTER_KEY
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.support.servers import serve_app

MASTER = {"Authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FakeOpenAI]]:
    tmp: Path = tmp_path_factory.mktemp("cache-keys")
    fake = FakeOpenAI()
    with serve_app(fake.app) as upstream:
        params = {"model": "openai/text", "api_base": f"{upstream}/v1", "api_key": API_KEY}
        priced = {**params, "input_cost_per_token": 1.0, "output_cost_per_token": 1.0}  # $19 a request
        config: dict[str, Any] = {
            "model_list": [
                {"model_name": "priced", "litellm_params": priced},
                {"model_name": "other", "litellm_params": params},
            ],
            "general_settings": {"master_key": MASTER_KEY, "database_url": f"sqlite:///{tmp / 'hub.db'}"},
            "litellm_settings": {"cache": True},
        }
        with serve_app(build_app(parse_config(config, {}))) as url:
            yield url, fake


def new_key(url: str, **body: Any) -> str:
    created = httpx2.post(f"{url}/key/generate", headers=MASTER, json=body)
    assert created.status_code == 200, created.text
    return created.json()["key"]


def ask(url: str, key: str, messages: list[dict[str, str]], model: str = "priced") -> httpx2.Response:
    body = {"model": model, "messages": messages}
    return httpx2.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=body)


def unique() -> list[dict[str, str]]:
    return [{"role": "user", "content": f"say {uuid.uuid4().hex[:8]}"}]


def test_a_key_that_may_not_use_the_model_gets_403_not_the_cached_answer(hub: tuple[str, FakeOpenAI]) -> None:
    url, _ = hub
    messages = unique()
    assert ask(url, MASTER_KEY, messages).status_code == 200
    assert ask(url, MASTER_KEY, messages).headers["x-toolhub-cache-hit"] == "true"
    refused = ask(url, new_key(url, models=["other"]), messages)
    assert refused.status_code == 403
    assert "x-toolhub-cache-hit" not in refused.headers and refused.json()["error"]["type"]


def test_a_hit_costs_nothing_and_is_logged_as_a_request_of_zero_cost(hub: tuple[str, FakeOpenAI]) -> None:
    url, fake = hub
    key = new_key(url, max_budget=100)
    messages = unique()
    miss, hit = ask(url, key, messages), ask(url, key, messages)
    assert (miss.headers["x-toolhub-cost"], hit.headers["x-toolhub-cost"]) == ("19", "0")
    assert hit.json() == miss.json()
    assert sum(1 for body in fake.requests if body["messages"] == messages) == 1
    info = httpx2.get(f"{url}/key/info", headers=MASTER, params={"key": key}).json()["info"]
    assert info["spend"] == pytest.approx(19)
    logs = httpx2.get(f"{url}/spend/logs", headers=MASTER, params={"api_key": key}).json()["data"]
    assert sorted((row["spend"], row["cache_hit"]) for row in logs) == [(0, True), (19, False)]


def test_a_key_over_its_budget_gets_429_even_for_a_cached_answer(hub: tuple[str, FakeOpenAI]) -> None:
    url, _ = hub
    key = new_key(url, max_budget=15)
    messages = unique()
    assert ask(url, key, messages).status_code == 200  # $19: the budget is now spent
    assert ask(url, MASTER_KEY, messages).headers["x-toolhub-cache-hit"] == "true"
    assert ask(url, key, messages).status_code == 429


def test_a_hit_counts_against_the_key_request_rate(hub: tuple[str, FakeOpenAI]) -> None:
    url, _ = hub
    key = new_key(url, rpm_limit=1)
    messages = unique()
    assert ask(url, MASTER_KEY, messages).status_code == 200
    assert ask(url, key, messages).headers["x-toolhub-cache-hit"] == "true"
    assert ask(url, key, messages).status_code == 429


def test_metrics_count_hits_misses_and_bytes(hub: tuple[str, FakeOpenAI]) -> None:
    url, _ = hub
    messages = unique()
    ask(url, MASTER_KEY, messages)
    ask(url, MASTER_KEY, messages)
    lines = httpx2.get(f"{url}/metrics", headers=MASTER).text.splitlines()
    values = {line.split()[0]: float(line.split()[1]) for line in lines if line.startswith("toolhub_cache_")}
    assert values["toolhub_cache_hits_total"] >= 1 and values["toolhub_cache_misses_total"] >= 1
    assert values["toolhub_cache_bytes"] > 0
