"""Cached MCP tool results live in the configured cache: with `cache_params.type: redis`, two gateways on one Redis
share them (each gateway runs its own upstream process, so a result made by the other one is visible)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from hub.accounts.ratelimit import redis_client
from hub.config import parse_config
from hub.server import build_app
from tests.e2e.conftest import MASTER_KEY
from tests.support.hub import wait_for_tools
from tests.support.servers import serve_app

REDIS_URL = os.environ.get("TOOLHUB_TEST_REDIS_URL")
pytestmark = pytest.mark.skipif(REDIS_URL is None, reason="needs TOOLHUB_TEST_REDIS_URL")
SERVER = str(Path(__file__).parents[1] / "cache" / "servers" / "counter_server.py")
AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}


def config(cache_params: dict[str, Any]) -> Any:
    raw = {
        "model_list": [],
        "general_settings": {"master_key": MASTER_KEY},
        "litellm_settings": {"cache": True, "cache_params": cache_params},
        "mcp_servers": {"c": {"command": sys.executable, "args": [SERVER], "cache_ttl": 60}},
    }
    return parse_config(raw, {})


@pytest.fixture(scope="module")
def namespace() -> Iterator[str]:
    name = f"test-tools-{uuid.uuid4().hex[:8]}"
    yield name

    async def clean() -> None:
        client = redis_client(REDIS_URL or "")
        keys = [key async for key in client.scan_iter(match=f"{name}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()

    asyncio.run(clean())


@pytest.fixture(scope="module")
def two(namespace: str) -> Iterator[tuple[str, str]]:
    cached = config({"type": "redis", "redis_url": REDIS_URL, "namespace": namespace})
    with serve_app(build_app(cached)) as first, serve_app(build_app(cached)) as second:
        for url in (first, second):
            wait_for_tools(url, {"c"}, MASTER_KEY)
        yield first, second


def call(url: str, tool: str, **arguments: Any) -> dict[str, Any]:
    body = {"name": f"c__{tool}", "arguments": arguments}
    response = httpx2.post(f"{url}/mcp/tools/call", headers=AUTH, json=body, timeout=20)
    assert response.status_code == 200, response.text
    return json.loads(response.json()["content"][0]["text"])


def test_a_read_only_result_made_by_one_gateway_is_served_by_the_other(two: tuple[str, str], namespace: str) -> None:
    first, second = two
    x = int(uuid.uuid4().int % 10**6)
    made = call(first, "read", x=x)
    assert call(second, "read", x=x) == made  # the same process id: the other gateway's upstream answered it
    assert call(second, "read", x=x + 1)["pid"] != made["pid"]  # a different call goes to the second's own upstream

    async def stored() -> list[Any]:
        client = redis_client(REDIS_URL or "")
        keys = [key async for key in client.scan_iter(match=f"{namespace}:tool:*")]
        ttls = [await client.pttl(key) for key in keys]
        await client.aclose()
        return ttls

    ttls = asyncio.run(stored())
    assert len(ttls) == 2 and all(0 < ttl <= 60_000 for ttl in ttls)  # kept in Redis for the server's cache_ttl


def test_tools_the_cache_must_not_keep_are_not_shared(two: tuple[str, str]) -> None:
    first, second = two
    for tool in ("read_open", "read_unsaid", "write", "read_fail"):
        assert call(first, tool)["pid"] != call(second, tool)["pid"]


def test_with_a_local_cache_results_stay_in_each_gateway() -> None:
    local = config({"type": "local"})
    with serve_app(build_app(local)) as first, serve_app(build_app(local)) as second:
        for url in (first, second):
            wait_for_tools(url, {"c"}, MASTER_KEY)
        made = call(first, "read", x=1)
        assert call(first, "read", x=1) == made
        assert call(second, "read", x=1)["pid"] != made["pid"]
