"""A budgeted key's catch-up with other processes' spend reads only recent logs, and still sums the whole period."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hub.accounts.spend import CATCH_UP_LAG, BudgetLedger
from hub.accounts.usage import UsageRecord
from hub.ops.retention import run_pass
from hub.storage import KeyRow, Store, StoredUsage
from hub.storage.sqlite import SqliteStore

pytestmark = pytest.mark.anyio


class Recording(SqliteStore):
    """A real SQLite store that remembers from when each spend sum was read."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.since: list[float] = []

    async def spend_since(self, token_hash: str, since: float) -> float:
        self.since.append(since)
        return await super().spend_since(token_hash, since)


async def log(store: Store, n: int, cost: float, at: float) -> None:
    record = UsageRecord(request_id=f"r{n}", key_id="k" * 64, model_alias="m", upstream_model="m", provider="p",
                         status_code=200, stream=False, latency_ms=1.0, cost=cost, created_at=at)  # fmt: skip
    await store.write_usage([StoredUsage(f"u{n}", record)])


async def test_refreshes_read_only_recent_logs_and_keep_the_older_sum(tmp_path: Path) -> None:
    store = Recording(str(tmp_path / "toolhub.db"))
    await store.connect()
    await store.migrate()
    now = time.time()
    row = KeyRow(token_hash="k" * 64, key_name="sk-...kkkk", created_at=now - 86400, updated_at=now, max_budget=1e6,
                 budget_duration="30d")  # fmt: skip
    await log(store, 1, 5.0, now - 3000)
    await log(store, 2, 3.0, now - 10)
    ledger = BudgetLedger(store)
    assert (await ledger.account(row)).spent == 8.0  # first read: the whole period, once
    store.since.clear()
    await log(store, 3, 2.0, time.time())  # another process's request
    assert (await ledger.account(row)).spent == 10.0
    await log(store, 4, 1.0, time.time())
    assert (await ledger.account(row)).spent == 11.0
    assert store.since and min(store.since) >= now - CATCH_UP_LAG - 60
    await store.aclose()


async def test_a_retention_pass_never_counts_a_keys_spend_twice(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "toolhub.db"))
    await store.connect()
    await store.migrate()
    now = time.time()
    row = KeyRow(token_hash="k" * 64, key_name="sk-...kkkk", created_at=now - 86400, updated_at=now, max_budget=1e6,
                 budget_duration="30d")  # fmt: skip
    await log(store, 1, 1.0, now - 2000)
    ledger = BudgetLedger(store)
    assert (await ledger.account(row)).spent == 1.0  # the log is older than CATCH_UP_LAG: summed into the base
    await run_pass(store, 1000)  # a retention period shorter than a day
    assert (await ledger.account(row)).spent == 1.0
    await store.aclose()
