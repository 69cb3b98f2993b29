"""PostgreSQL usage writes: each log is written once, already folded into the console's rollup (no second UPDATE of
the row), and writers of overlapping batches (several processes replaying the same spill file) never deadlock."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import AsyncIterator

import anyio
import pytest

from hub.storage import StoredUsage, rollup
from hub.storage.postgres import PostgresStore
from tests.storage.conftest import create_schema, drop_schema, postgres_url_or_skip
from tests.storage.test_writer import expected, record, stored_request_ids

pytestmark = pytest.mark.anyio
LOGS, BATCH, BATCHES, WRITERS = 600, 150, 8, 3
COUNT_WRITES = """
CREATE TABLE log_writes (op TEXT NOT NULL);
CREATE FUNCTION count_log_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO log_writes VALUES (TG_OP); RETURN NULL; END $$;
CREATE TRIGGER counted AFTER INSERT OR UPDATE ON toolhub_spend_logs FOR EACH ROW EXECUTE FUNCTION count_log_write();
"""


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


def _varied(n: int) -> StoredUsage:
    """Logs over two days, two keys (one the master key's None), two models, some failed."""
    r = dataclasses.replace(record(n), key_id=("ka", None)[n % 2], model_alias=f"m{n % 3 % 2}", cost=n / 1000,
                            status_code=(200, 500)[n % 5 == 0], created_at=1_767_225_600.0 + 290 * n)  # fmt: skip
    return StoredUsage(f"id-{n}", r)


async def test_each_log_is_written_once_already_folded_and_a_replay_writes_nothing(
    stores: list[PostgresStore],
) -> None:
    """Logs were inserted unfolded and then marked `rolled = 1` by a second statement: each row written twice (a
    dead tuple and new index entries per log)."""
    store, logs = stores[0], [_varied(n) for n in range(LOGS)]
    await store.execute(COUNT_WRITES, [])
    await store.write_usage([*logs, *logs[:7]])  # duplicates in one batch too
    await store.write_usage(logs[::3])  # a spill file replayed after the batch landed
    writes = await store.fetch("SELECT op, COUNT(*) AS n FROM log_writes GROUP BY op", [])
    assert {r["op"]: int(r["n"]) for r in writes} == {"INSERT": LOGS}
    assert int((await store.fetch("SELECT COUNT(*) AS n FROM toolhub_spend_logs WHERE rolled = 0", []))[0]["n"]) == 0
    text = f"SELECT {rollup._COLUMNS} FROM toolhub_spend_rollup ORDER BY span, key_hash, model_alias, bucket_start"  # pyright: ignore[reportPrivateUsage]
    folded = [list(row) for row in await store.fetch(text, [])]
    expected_rows = rollup.buckets(log.record for log in logs)
    assert [row[:6] for row in folded] == [row[:6] for row in expected_rows]
    assert [row[6:] for row in folded] == [pytest.approx(row[6:]) for row in expected_rows]
