"""Both storage backends behind one fixture: a SQLite file, and a fresh PostgreSQL schema per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from hub.storage import Store
from hub.storage.postgres import PostgresStore
from hub.storage.sqlite import SqliteStore
from tests.support.peers import missing_peer

POSTGRES_URL_ENV = "TOOLHUB_TEST_POSTGRES_URL"


def postgres_url_or_skip() -> str:
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        missing_peer(f"set {POSTGRES_URL_ENV}=postgresql://postgres@127.0.0.1:5432/test to run the PostgreSQL tests")
    return url


async def create_schema(url: str) -> str:
    schema = f"toolhub_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    return schema


async def drop_schema(url: str, schema: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def store(backend: str, tmp_path: Path) -> AsyncIterator[Store]:
    """A connected, migrated store of each backend."""
    if backend == "sqlite":
        store: Store = SqliteStore(str(tmp_path / "toolhub.db"))
        await store.connect()
        await store.migrate()
        yield store
        await store.aclose()
        return
    url = postgres_url_or_skip()
    schema = await create_schema(url)
    store = PostgresStore(url, schema=schema)
    try:
        await store.connect()
        await store.migrate()
        yield store
    finally:
        await store.aclose()
        await drop_schema(url, schema)
