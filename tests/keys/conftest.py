"""A fake OpenAI upstream and gateways with a store (SQLite file or a fresh PostgreSQL schema) on loopback."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import openai
import pytest
import yaml
from starlette.routing import Route

from hub.accounts import keys_api, spend_api
from hub.accounts.accounting import accounting_extension
from hub.app import create_app
from hub.config import parse_config
from hub.metrics import metrics_endpoint
from hub.server import build_app
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.storage.conftest import create_schema, drop_schema, postgres_url_or_skip
from tests.support.servers import serve_app, toolhub_process

MASTER_KEY = "sk-toolhub-test-master"
COST = 13.0
"""Every "text" request: 12 prompt tokens at $0.5 and 7 completion tokens at $1 (exact in binary floating point)."""


@pytest.fixture(scope="session")
def upstream() -> Iterator[str]:
    with serve_app(FakeOpenAI().app) as url:
        yield f"{url}/v1"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database per test: a SQLite file, or a PostgreSQL schema (via search_path in the URL)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'toolhub.db'}"
        return
    url = postgres_url_or_skip()
    schema = anyio.run(create_schema, url)
    try:
        yield f"{url}?search_path={schema}"
    finally:
        anyio.run(drop_schema, url, schema)


def config_dict(upstream: str, database_url: str, **general: Any) -> dict[str, Any]:
    def model(name: str, upstream_model: str, **params: Any) -> dict[str, Any]:
        return {"model_name": name, "litellm_params": {"model": f"openai/{upstream_model}", "api_base": upstream,
                                                       "api_key": API_KEY, **params}}  # fmt: skip

    prices = {"input_cost_per_token": 0.5, "output_cost_per_token": 1.0}
    return {
        "model_list": [
            model("text", "text", **prices),
            model("json", "json"),
            model("limited", "text", rpm=3),
            model("slow", "slow-1", **prices),
        ],  # fmt: skip
        "general_settings": {"master_key": MASTER_KEY, "database_url": database_url, **general},
    }


@contextlib.contextmanager
def gateway(upstream: str, database_url: str, *, key_ttl: float | None = None, **general: Any) -> Iterator[str]:
    """The full app (`build_app`), or with `key_ttl` the accounting layer alone with that key cache time."""
    config = parse_config(config_dict(upstream, database_url, **general), {})
    if key_ttl is None:
        app = build_app(config)
    else:
        routes = [*keys_api.ROUTES, *spend_api.ROUTES, Route("/metrics", metrics_endpoint, methods=["GET"])]
        app = create_app(config, extensions=[accounting_extension(key_ttl=key_ttl)], routes=routes)
    with serve_app(app) as url:
        yield url


@contextlib.contextmanager
def gateway_processes(upstream: str, database_url: str, count: int, **general: Any) -> Iterator[list[str]]:
    """`count` real `toolhub serve` processes on one database (and whatever else `general` shares); their URLs."""
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        config = Path(tmp) / "config.yaml"
        config.write_text(yaml.safe_dump(config_dict(upstream, database_url, **general)))
        yield [stack.enter_context(toolhub_process(config))[0] for _ in range(count)]


@pytest.fixture
def gateway_url(upstream: str, database_url: str) -> Iterator[str]:
    with gateway(upstream, database_url) as url:
        yield url


@pytest.fixture
def admin(gateway_url: str) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=gateway_url, headers={"authorization": f"Bearer {MASTER_KEY}"}, timeout=20) as c:
        yield c


def sdk(gateway_url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0, timeout=20)
