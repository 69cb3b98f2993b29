"""Both storage backends for the retention tests (the same helpers as tests/storage/conftest.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.storage import Store
from hub.storage.postgres import PostgresStore
from hub.storage.sqlite import SqliteStore
from tests.storage.conftest import create_schema, drop_schema, postgres_url_or_skip


@contextlib.asynccontextmanager
async def _postgres() -> AsyncIterator[PostgresStore]:
    url = postgres_url_or_skip()
    schema = await create_schema(url)
    postgres = PostgresStore(url, schema=schema)
    try:
        await postgres.connect()
        await postgres.migrate()
        yield postgres
    finally:
        await postgres.aclose()
        await drop_schema(url, schema)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A connected, migrated store of each backend (a fresh PostgreSQL schema each time)."""
    if request.param == "postgres":
        async with _postgres() as postgres:
            yield postgres
        return
    sqlite = SqliteStore(str(tmp_path / "toolhub.db"))
    await sqlite.connect()
    await sqlite.migrate()
    yield sqlite
    await sqlite.aclose()


@pytest.fixture
async def postgres_store() -> AsyncIterator[PostgresStore]:
    async with _postgres() as postgres:
        yield postgres
