"""The official SDKs as clients of a test module's `gateway_url` fixture, with that module's `MASTER_KEY`."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest


@pytest.fixture
def client(gateway_url: str, request: pytest.FixtureRequest) -> Iterator[openai.OpenAI]:
    key = request.module.MASTER_KEY
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0, timeout=30) as c:
        yield c


@pytest.fixture
def claude(gateway_url: str, request: pytest.FixtureRequest) -> Iterator[anthropic.Anthropic]:
    key = request.module.MASTER_KEY
    with anthropic.Anthropic(base_url=gateway_url, api_key=key, max_retries=0, timeout=30) as c:
        yield c
