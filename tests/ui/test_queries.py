"""The console's read-only queries on both stores: keyset pages, the status filter, the capped count, chart buckets."""

from __future__ import annotations

import time

import pytest

from hub.accounts.usage import ToolCallRecord, UsageRecord
from hub.storage import Store, StoredToolCall, StoredUsage
from hub.ui import queries
from tests.storage import conftest as storage_fixtures

backend = storage_fixtures.backend  # each test runs on SQLite and on PostgreSQL
store = storage_fixtures.store

pytestmark = pytest.mark.anyio
NOW = time.time()


async def _fill(store: Store, count: int) -> None:
    """`count` requests one second apart, the newest a minute ago; every 10th failed, every 20th by key "k2"."""
    rows = [StoredUsage(f"id{i:04d}", UsageRecord(
        request_id=f"req{i}", key_id="k2" if i % 20 == 0 else "k1", model_alias="m", upstream_model="u",
        provider="openai", status_code=500 if i % 10 == 0 else 200, stream=False, latency_ms=10.0 + i, cost=0.5,
        created_at=NOW - 60 - (count - i))) for i in range(count)]  # fmt: skip
    await store.write_usage(rows)


async def test_keyset_pages_walk_every_row_once_both_ways(store: Store) -> None:
    await _fill(store, 120)
    seen: list[str] = []
    page, more = await queries.spend_logs(store, queries.LogFilter(), 50)
    while True:
        seen += [r["request_id"] for r in page]
        if not more:
            break
        last = queries.Cursor(page[-1]["created_at"], page[-1]["id"])
        page, more = await queries.spend_logs(store, queries.LogFilter(), 50, before=last)
    assert seen == [f"req{i}" for i in reversed(range(120))]
    first = queries.Cursor(page[0]["created_at"], page[0]["id"])
    newer, more_newer = await queries.spend_logs(store, queries.LogFilter(), 50, after=first)
    assert [r["request_id"] for r in newer] == [f"req{i}" for i in reversed(range(20, 70))] and more_newer


async def test_status_key_and_time_filters(store: Store) -> None:
    await _fill(store, 120)
    failures, _ = await queries.spend_logs(store, queries.LogFilter(status="failure"), 100)
    assert {r["status_code"] for r in failures} == {500} and len(failures) == 12
    assert await queries.count_logs(store, queries.LogFilter(status="success", key_hash="k1")) == 114 - 6
    recent = queries.LogFilter(start=NOW - 60 - 10)
    assert await queries.count_logs(store, recent) == 10
    assert await queries.count_logs(store, queries.LogFilter()) == 120


async def test_chart_buckets_and_top_lists_count_requests_errors_and_spend(store: Store) -> None:
    await _fill(store, 120)
    start = int(NOW) // 60 * 60 - 3600  # the last hour in minutes: read from the logs
    buckets = await queries.series(store, None, start, 60)
    assert sum(int(b["requests"]) for b in buckets) == 120 and sum(int(b["errors"]) for b in buckets) == 12
    assert sum(float(b["spend"]) for b in buckets) == 60.0
    day = int(NOW) // 3600 * 3600 - 86400  # the last day in hours: the rollup plus logs not folded yet (none folded)
    hours = await queries.series(store, None, day, 3600)
    assert sum(int(b["requests"]) for b in hours) == 120
    top = await queries.top(store, "key_hash", None, day, 3600)
    assert [(t["name"], int(t["requests"])) for t in top] == [("k1", 114), ("k2", 6)]
    mine = await queries.series(store, "k2", day, 3600)
    assert sum(int(b["requests"]) for b in mine) == 6


async def test_tool_calls_are_found_by_request_id(store: Store) -> None:
    calls = [StoredToolCall(f"c{i}", ToolCallRecord(server="db", tool=f"t{i}", duration_ms=1.0,
                                                    request_id=f"req{i % 2}", created_at=NOW + i))
             for i in range(4)]  # fmt: skip
    await store.write_tool_calls(calls)
    found = await queries.tool_calls_of(store, ["req1"])
    assert [c["tool"] for c in found] == ["t1", "t3"]
    assert await queries.tool_calls_of(store, []) == []


async def test_the_count_stops_at_the_cap(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    await _fill(store, 30)
    monkeypatch.setattr(queries, "COUNT_CAP", 10)
    assert await queries.count_logs(store, queries.LogFilter()) == 11
