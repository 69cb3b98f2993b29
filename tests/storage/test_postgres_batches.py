"""PostgreSQL writers of overlapping batches (several processes replaying the same spill file) never deadlock."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import anyio
import pytest

from hub.storage import StoredUsage
from hub.storage.postgres import PostgresStore
from tests.storage.conftest import create_schema, drop_schema, postgres_url_or_skip
from tests.storage.test_writer import expected, record, stored_request_ids

pytestmark = pytest.mark.anyio
LOGS, BATCH, BATCHES, WRITERS = 600, 150, 8, 3


@pytest.fixture
async def stores() -> AsyncIterator[list[PostgresStore]]:
    """`WRITERS` stores (a process each) on one fresh, migrated schema."""
    url = postgres_url_or_skip()
    schema = await create_schema(url)
    stores = [PostgresStore(url, schema=schema) for _ in range(WRITERS)]
    try:
        for store in stores:
            await store.connect()
        await stores[0].migrate()
        yield stores
    finally:
        for store in stores:
            await store.aclose()
        await drop_schema(url, schema)


async def test_overlapping_batches_in_different_orders_are_all_stored_without_a_deadlock(
    stores: list[PostgresStore],
) -> None:
    logs = [StoredUsage(f"id-{n}", record(n)) for n in range(LOGS)]

    async def write(store: PostgresStore, seed: int) -> None:
        pick = random.Random(seed)  # each writer its own order: row locks taken in different orders before
        for _ in range(BATCHES):
            await store.write_usage(pick.sample(logs, BATCH))
        await store.write_usage(logs)

    async with anyio.create_task_group() as tg:
        for seed, store in enumerate(stores):
            tg.start_soon(write, store, seed)
    assert await stored_request_ids(stores[0]) == expected(LOGS)
