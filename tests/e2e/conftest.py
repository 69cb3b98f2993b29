"""End-to-end fixtures: fake upstreams and the gateway on real loopback sockets, the official SDK as the client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-test-master"
OPENAI_MODELS = [
    "text",
    "text-20",
    "tools",
    "noargs",
    "noindex",
    "json",
    "slow-1",
    "error-400",
    "error-401",
    "error-404",
    "error-429",
    "error-500",
    "error-503",
    "midstream-error",
    "broken",
    "garbage",
    "cumulative",
]


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    with serve_app(fake.app) as url:
        yield fake, url


def gateway_config(upstream_url: str, **general: Any) -> dict[str, Any]:
    models: list[dict[str, Any]] = [
        {
            "model_name": name,
            "litellm_params": {
                "model": f"openai/{name}",
                "api_base": f"{upstream_url}/v1",
                "api_key": "os.environ/FAKE_OPENAI_KEY",
            },
        }
        for name in OPENAI_MODELS
    ]
    models += [
        {
            "model_name": "gpt-5-mini",
            "litellm_params": {"model": "openai/gpt-5-mini", "api_base": f"{upstream_url}/v1", "api_key": API_KEY},
        },
        {
            "model_name": "gpt-5-mini-strict",
            "litellm_params": {
                "model": "openai/gpt-5-mini",
                "drop_params": False,
                "api_base": f"{upstream_url}/v1",
                "api_key": API_KEY,
            },
        },
        {
            "model_name": "timeout",
            "litellm_params": {
                "model": "openai/slow-3",
                "api_base": f"{upstream_url}/v1",
                "api_key": API_KEY,
                "timeout": 0.5,
            },
        },
        {
            "model_name": "unreachable",
            "litellm_params": {"model": "openai/text", "api_base": "http://127.0.0.1:9/v1", "api_key": API_KEY},
        },
        {
            "model_name": "needs-key",
            "litellm_params": {"model": "openai/text", "api_key": "os.environ/TOOLHUB_UNSET_KEY"},
        },
    ]
    return {"model_list": models, "general_settings": {"master_key": MASTER_KEY, **general}}


@pytest.fixture(scope="session")
def gateway_url(fake_openai: tuple[FakeOpenAI, str]) -> Iterator[str]:
    config = parse_config(gateway_config(fake_openai[1], max_request_size_mb=1), {"FAKE_OPENAI_KEY": API_KEY})
    with serve_app(build_app(config)) as url:
        yield url


@pytest.fixture
def client(gateway_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=20) as c:
        yield c
