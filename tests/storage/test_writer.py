"""The usage writer on both backends: batches, a database that goes down and comes back, spill and replay."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from hub.accounts.usage import ToolCallRecord, UsageRecord
from hub.config import parse_config
from hub.scale.journal import read_items
from hub.storage import SpendQuery, Store, StoredToolCall, StoredUsage, StoreError
from hub.storage.writer import UsageWriter, journal_dir

pytestmark = pytest.mark.anyio


class FlakyStore:
    """Wraps a real store; while `down`, every write fails as a lost connection would."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.down = False
        self.failed_writes = 0

    async def write_usage(self, rows: Sequence[StoredUsage]) -> None:
        self._check()
        await self.inner.write_usage(rows)

    async def write_tool_calls(self, rows: Sequence[StoredToolCall]) -> None:
        self._check()
        await self.inner.write_tool_calls(rows)

    def _check(self) -> None:
        if self.down:
            self.failed_writes += 1
            raise StoreError("connection refused (simulated)")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def record(n: int) -> UsageRecord:
    return UsageRecord(request_id=f"req-{n}", key_id="k", model_alias="m", upstream_model="m", provider="openai",
                       status_code=200, stream=False, latency_ms=1.0, prompt_tokens=n, cost=0.001,
                       created_at=1_767_225_600.0 + n)  # fmt: skip


async def stored_request_ids(store: Store) -> list[str]:
    rows, _ = await store.spend_logs(SpendQuery(limit=100_000))
    return sorted(r["request_id"] for r in rows)


def expected(n: int) -> list[str]:
    return sorted(f"req-{i}" for i in range(n))


async def test_records_are_written_in_batches_with_tool_calls(store: Store, tmp_path: Path) -> None:
    writer = UsageWriter(store, tmp_path / "spill.jsonl", batch_size=7)
    for i in range(20):
        writer.record(record(i))
    writer.record_tool_call(ToolCallRecord(server="time", tool="now", duration_ms=2.0, created_at=1.0))
    assert await writer.flush()
    assert await stored_request_ids(store) == expected(20)
    assert len(await store.tool_calls(limit=10)) == 1
    assert (writer.written, writer.pending, writer.spilled) == (21, 0, 0)


async def test_a_database_down_then_back_during_traffic_loses_and_duplicates_nothing(
    store: Store, tmp_path: Path
) -> None:
    flaky = FlakyStore(store)
    spill = tmp_path / "spill.jsonl"
    writer = UsageWriter(flaky, spill, batch_size=10, spill_after_failures=2)  # pyright: ignore[reportArgumentType]
    for i in range(15):
        writer.record(record(i))
    assert await writer.flush()
    flaky.down = True
    for i in range(15, 40):
        writer.record(record(i))
    assert not await writer.flush()  # first failure: kept in memory for retry
    assert writer.pending == 25 and not spill.exists()
    for i in range(40, 50):
        writer.record(record(i))
    assert not await writer.flush()  # second failure: spilled to the local file
    assert writer.pending == 0 and writer.spilled == 35 and spill.exists()
    for i in range(50, 60):
        writer.record(record(i))
    flaky.down = False
    assert await writer.flush()  # the new records, then the spill file replayed
    assert not spill.exists()
    assert await stored_request_ids(store) == expected(60)


async def test_shutdown_with_the_database_down_spills_and_the_next_start_replays(store: Store, tmp_path: Path) -> None:
    flaky = FlakyStore(store)
    spill = tmp_path / "spill.jsonl"
    writer = UsageWriter(flaky, spill)  # pyright: ignore[reportArgumentType]
    flaky.down = True
    for i in range(30):
        writer.record(record(i))
    writer.record_tool_call(ToolCallRecord(server="s", tool="t", duration_ms=1.0, error="x", created_at=2.0))
    await writer.aclose()
    assert spill.exists() and await stored_request_ids(store) == []
    restarted = UsageWriter(store, spill)
    assert await restarted.flush()
    assert await stored_request_ids(store) == expected(30)
    assert [c["error"] for c in await store.tool_calls(limit=5)] == ["x"]


async def test_a_replay_that_fails_midway_is_retried_without_duplicates(store: Store, tmp_path: Path) -> None:
    spill = tmp_path / "spill.jsonl"
    first = UsageWriter(FlakyStore(store), spill)  # pyright: ignore[reportArgumentType]
    first.store.down = True  # pyright: ignore[reportAttributeAccessIssue]
    for i in range(10):
        first.record(record(i))
    await first.aclose()
    await store.write_usage([StoredUsage(item_id, rec) for item_id, rec in _spilled(spill)[:4]])  # half replayed
    second = UsageWriter(store, spill)
    assert await second.flush()
    assert await stored_request_ids(store) == expected(10)


async def test_the_background_task_flushes_when_a_batch_fills(store: Store, tmp_path: Path) -> None:
    writer = UsageWriter(store, tmp_path / "spill.jsonl", batch_size=5, interval=60)
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        for i in range(5):
            writer.record(record(i))
        with anyio.fail_after(5):
            while writer.written < 5:
                await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
    assert await stored_request_ids(store) == expected(5)


def _spilled(path: Path) -> list[tuple[str, UsageRecord]]:
    return [(item.id, item.record) for item in read_items(path) if isinstance(item, StoredUsage)]


class SlowStore(FlakyStore):
    """Writes take a while: long enough to be cancelled in the middle of one."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.writing = anyio.Event()

    async def write_usage(self, rows: Sequence[StoredUsage]) -> None:
        self.writing.set()
        await anyio.sleep(0.2)
        await self.inner.write_usage(rows)


async def test_a_batch_cancelled_mid_write_at_shutdown_is_written_by_aclose(store: Store, tmp_path: Path) -> None:
    slow = SlowStore(store)
    writer = UsageWriter(slow, tmp_path / "spill.jsonl")  # pyright: ignore[reportArgumentType]
    for n in range(10):
        writer.record(record(n))
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer.flush)
            await slow.writing.wait()
            tg.cancel_scope.cancel()  # the app's lifespan ends while the batch is being written
        await writer.aclose()
    assert await stored_request_ids(store) == expected(10)


async def test_what_the_router_did_is_stored_and_survives_a_spill_without_the_routes_secrets(
    store: Store, tmp_path: Path
) -> None:
    config = parse_config(
        {"model_list": [{"model_name": "m", "litellm_params": {"model": "openai/m", "api_key": "sk-secret-in-route"}}]},
        {},
    )
    routed = record(1)
    routed.priced_route = config.models["m"][0]
    routed.answered_group, routed.api_base, routed.retries, routed.fallbacks = "backup", "http://b/v1", 2, 1
    flaky = FlakyStore(store)
    spill = tmp_path / "spill.jsonl"
    writer = UsageWriter(flaky, spill)  # pyright: ignore[reportArgumentType]
    flaky.down = True
    writer.record(routed)
    await writer.aclose()
    assert spill.exists() and b"sk-secret-in-route" not in spill.read_bytes()
    assert await UsageWriter(store, spill).flush()
    rows, _ = await store.spend_logs(SpendQuery(limit=10))
    assert [(r["answered_group"], r["api_base"], r["retries"], r["fallbacks"]) for r in rows] == [
        ("backup", "http://b/v1", 2, 1)
    ]


async def test_a_journal_that_cannot_be_written_is_turned_off_and_no_record_is_lost(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spill = tmp_path / "usage.spill.jsonl"
    journal_dir(spill).write_text("a file where the journal directory should be")  # mkdir fails: an OSError
    writer = UsageWriter(store, spill)
    for n in range(3):
        writer.record(record(n))  # the request path never sees the disk's error
    assert writer.pending == 3
    assert await writer.flush()
    assert await stored_request_ids(store) == expected(3)
    assert sum("journaling is off" in m for m in caplog.messages) == 1  # once, not per record
    await writer.aclose()
