"""A `ResultStore` on each backend: a SQLite file, and a fresh PostgreSQL schema per test (dropped after)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.catalog.results import ResultStore
from hub.storage import Store
from hub.storage.postgres import PostgresStore
from hub.storage.sqlite import SqliteStore
from tests.storage.conftest import create_schema, drop_schema, postgres_url_or_skip


class Clock:
    """A clock the test moves by hand, for expiry."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "postgres"])
async def results(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> AsyncIterator[ResultStore]:
    """A connected, migrated store of each backend, with a 60 s result TTL on the hand clock."""
    if request.param == "sqlite":
        store: Store = SqliteStore(str(tmp_path / "toolhub.db"))
        await store.connect()
        await store.migrate()
        yield ResultStore(store, ttl=60, clock=clock)
        await store.aclose()
        return
    url = postgres_url_or_skip()
    schema = await create_schema(url)
    store = PostgresStore(url, schema=schema)
    try:
        await store.connect()
        await store.migrate()
        yield ResultStore(store, ttl=60, clock=clock)
    finally:
        await store.aclose()
        await drop_schema(url, schema)
