"""/v1/embeddings with the response cache on: hits cost nothing and skip the upstream, with the openai SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.fakes import openai_upstream
from tests.fakes.openai_upstream import FakeOpenAI
from tests.keys.conftest import sdk
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-embeddings-cache"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    database = tmp_path_factory.mktemp("embeddings_cache") / "hub.db"
    with serve_app(fake.app) as upstream:
        params = {"api_base": f"{upstream}/v1", "api_key": openai_upstream.API_KEY, "input_cost_per_token": 0.5}
        models = [{"model_name": "small", "litellm_params": {"model": "openai/text-embedding-3-small", **params}}]
        raw = {"model_list": models, "litellm_settings": {"cache": True},
               "general_settings": {"master_key": MASTER_KEY, "database_url": f"sqlite:///{database}"}}  # fmt: skip
        with serve_app(build_app(parse_config(raw, {}))) as url:
            yield fake, url


@pytest.fixture
def client(gateway: tuple[FakeOpenAI, str]) -> Iterator[openai.OpenAI]:
    with sdk(gateway[1], MASTER_KEY) as c:
        yield c


def embed(client: openai.OpenAI, **extra: Any) -> Any:
    return client.embeddings.with_raw_response.create(model="small", **{"input": ["cached", "twice"], **extra})


def test_the_same_input_is_served_from_the_cache_whatever_its_encoding(
    client: openai.OpenAI, gateway: tuple[FakeOpenAI, str]
) -> None:
    fake, url = gateway
    first = embed(client, dimensions=3)
    before = len(fake.requests)
    again = embed(client, dimensions=3, encoding_format="float")
    assert len(fake.requests) == before  # not asked again
    assert (first.headers["x-toolhub-cache-hit"], again.headers["x-toolhub-cache-hit"]) == ("false", "true")
    assert first.headers["x-litellm-cache-key"] == again.headers["x-litellm-cache-key"]
    assert [d.embedding for d in again.parse().data] == [d.embedding for d in first.parse().data]
    assert again.parse().usage.prompt_tokens == 4 and float(again.headers["x-toolhub-cost"]) == 0
    rows: list[dict[str, Any]] = []
    with httpx2.Client(base_url=url, headers={"Authorization": f"Bearer {MASTER_KEY}"}) as admin:
        for _ in range(50):  # the usage writer stores in the background
            rows = admin.get("/spend/logs", params={"model": "small"}).json()["data"]
            if len(rows) >= 2:
                break
            time.sleep(0.05)
    hits = {r["request_id"]: r["cache_hit"] for r in rows}
    assert hits[again.headers["x-request-id"]] is True and hits[first.headers["x-request-id"]] is False


def test_other_dimensions_or_no_cache_go_upstream(client: openai.OpenAI, gateway: tuple[FakeOpenAI, str]) -> None:
    fake = gateway[0]
    embed(client, dimensions=5)
    before = len(fake.requests)
    assert embed(client, dimensions=6).headers["x-toolhub-cache-hit"] == "false"
    skipped = embed(client, dimensions=5, extra_body={"cache": {"no-cache": True}})
    assert skipped.headers["x-toolhub-cache-hit"] == "false" and len(fake.requests) == before + 2
    assert "cache" not in fake.requests[-1]  # the controls never reach the upstream
