"""Replicas for the shared-state tests: real `toolhub serve` processes on one PostgreSQL schema and one Redis."""

from __future__ import annotations

import os
from collections.abc import Iterator

import anyio
import httpx2
import pytest

from tests.keys.conftest import MASTER_KEY, gateway_processes, upstream
from tests.storage.conftest import create_schema, drop_schema, postgres_url_or_skip
from tests.support.peers import missing_peer

__all__ = ["redis_url", "replicas", "shared_database", "upstream"]


@pytest.fixture(scope="module")
def redis_url() -> str:
    url = os.environ.get("TOOLHUB_TEST_REDIS_URL")
    if not url:
        missing_peer("set TOOLHUB_TEST_REDIS_URL=redis://127.0.0.1:6379/0 to run the Redis tests")
    return url


@pytest.fixture(scope="module")
def shared_database() -> Iterator[str]:
    """A fresh PostgreSQL schema for this module's replicas (its URL)."""
    url = postgres_url_or_skip()
    schema = anyio.run(create_schema, url)
    try:
        yield f"{url}?search_path={schema}"
    finally:
        anyio.run(drop_schema, url, schema)


@pytest.fixture(scope="module")
def replicas(upstream: str, shared_database: str, redis_url: str) -> Iterator[list[str]]:
    """Three gateway processes sharing that schema and Redis, trusting cached keys for a minute (so only Redis
    pub/sub can explain a change seen sooner)."""
    with gateway_processes(upstream, shared_database, 3, redis_url=redis_url, key_cache_seconds=60) as urls:
        yield urls


def admin(url: str) -> httpx2.Client:
    return httpx2.Client(base_url=url, headers={"authorization": f"Bearer {MASTER_KEY}"}, timeout=20)
