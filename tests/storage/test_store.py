"""The same suite on SQLite and PostgreSQL: migrations, keys, spend logs, tool calls."""

from __future__ import annotations

import time

import pytest

from hub.accounts.usage import ToolCallRecord, UsageRecord
from hub.storage import KeyRow, SpendQuery, Store, StoreConflict, StoredToolCall, StoredUsage, sqlite_path
from tests.storage.test_writer import expected, record, stored_request_ids

pytestmark = pytest.mark.anyio
DAY = 86400.0
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def key(n: int, **kw: object) -> KeyRow:
    row = KeyRow(token_hash=f"{n:064x}", key_name=f"sk-...{n:04d}", created_at=T0 + n, updated_at=T0 + n)
    for name, value in kw.items():
        setattr(row, name, value)
    return row


def usage(key_hash: str | None, model: str, cost: float, at: float, **kw: object) -> UsageRecord:
    record = UsageRecord(request_id=f"req-{at}", key_id=key_hash, model_alias=model, upstream_model=f"up-{model}",
                         provider="openai", status_code=200, stream=False, latency_ms=12.5, prompt_tokens=10,
                         completion_tokens=5, cached_tokens=2, cost=cost, upstream_ms=10.0, created_at=at)  # fmt: skip
    for name, value in kw.items():
        setattr(record, name, value)
    return record


async def test_migrations_are_applied_once_and_recorded(store: Store) -> None:
    assert await store.migrate() == []
    await store.ping()


async def test_a_key_round_trips_with_its_json_fields(store: Store) -> None:
    row = key(1, key_alias="team-a", models=["gpt-5-mini"], mcp_servers=["time"], mcp_tools=["time/get_time"],
              max_budget=2.5, budget_duration="30d", rpm_limit=5, tpm_limit=100, expires=T0 + DAY,
              metadata={"team": "a", "n": [1, 2]}, blocked=True)  # fmt: skip
    await store.insert_key(row)
    assert await store.get_key(row.token_hash) == row
    assert await store.find_key_by_alias("team-a") == row
    assert await store.get_key("0" * 64) is None


async def test_a_second_key_with_the_same_alias_is_a_conflict(store: Store) -> None:
    await store.insert_key(key(1, key_alias="dup"))
    with pytest.raises(StoreConflict):
        await store.insert_key(key(2, key_alias="dup"))
    await store.insert_key(key(3))
    await store.insert_key(key(4))  # several keys without an alias are fine


async def test_keys_list_in_pages_and_by_alias(store: Store) -> None:
    for n in range(5):
        await store.insert_key(key(n, key_alias=f"k{n}"))
    rows, total = await store.list_keys(alias=None, limit=2, offset=2)
    assert total == 5
    assert [r.key_alias for r in rows] == ["k2", "k3"]
    rows, total = await store.list_keys(alias="k4", limit=10, offset=0)
    assert (total, [r.key_alias for r in rows]) == (1, ["k4"])


async def test_update_sets_and_clears_fields_and_delete_reports_what_existed(store: Store) -> None:
    await store.insert_key(key(1, rpm_limit=5, models=["a"]))
    updated = await store.update_key(key(1).token_hash, {"rpm_limit": None, "models": ["a", "b"], "blocked": True})
    assert updated is not None
    assert (updated.rpm_limit, updated.models, updated.blocked) == (None, ["a", "b"], True)
    assert updated.updated_at > updated.created_at
    assert await store.update_key("f" * 64, {"blocked": True}) is None
    assert await store.delete_keys([key(1).token_hash, "f" * 64]) == [key(1).token_hash]
    assert await store.get_key(key(1).token_hash) is None


async def test_usage_rows_written_twice_are_stored_once(store: Store) -> None:
    rows = [StoredUsage(f"id-{i}", usage("k", "m", 0.5, T0 + i)) for i in range(3)]
    await store.write_usage(rows)
    await store.write_usage(rows[1:] + [StoredUsage("id-3", usage("k", "m", 0.25, T0 + 3))])
    logs, total = await store.spend_logs(SpendQuery())
    assert total == 4
    assert sum(r["cost"] for r in logs) == pytest.approx(1.75)


async def test_spend_since_sums_one_keys_cost_from_a_time(store: Store) -> None:
    rows = [("a", "k1", 1.0, T0), ("b", "k1", 2.0, T0 + 10), ("c", "k2", 4.0, T0 + 10)]
    await store.write_usage([StoredUsage(i, usage(k, "m", cost, at)) for i, k, cost, at in rows])
    assert await store.spend_since("k1", 0) == 3.0
    assert await store.spend_since("k1", T0 + 5) == 2.0
    assert await store.spend_since("nobody", 0) == 0.0


async def test_spend_logs_filter_by_key_model_and_time_newest_first(store: Store) -> None:
    records = [usage("k1", "a", 1, T0), usage("k1", "b", 1, T0 + 1), usage("k2", "a", 1, T0 + 2),
               usage("k1", "a", 1, T0 + DAY), usage(None, "a", 1, T0 + 3)]  # fmt: skip
    await store.write_usage([StoredUsage(f"r{i}", r) for i, r in enumerate(records)])
    logs, total = await store.spend_logs(SpendQuery(key_hash="k1", model="a"))
    assert total == 2
    assert [r["created_at"] for r in logs] == [T0 + DAY, T0]
    logs, total = await store.spend_logs(SpendQuery(start=T0 + 1, end=T0 + DAY, limit=2, offset=0))
    assert total == 3
    assert [r["id"] for r in logs] == ["r4", "r2"]
    assert logs[0]["key_hash"] is None and logs[0]["day"] == "2026-01-01"


async def test_daily_spend_groups_by_key_or_model(store: Store) -> None:
    records = [usage("k1", "a", 1.0, T0), usage("k1", "b", 2.0, T0 + 1), usage("k2", "a", 4.0, T0 + DAY)]
    await store.write_usage([StoredUsage(f"r{i}", r) for i, r in enumerate(records)])
    by_key = await store.daily_spend("key", start=None, end=None, key_hash=None)
    assert by_key == [
        {"day": "2026-01-01", "grp": "k1", "requests": 2, "spend": 3.0, "prompt_tokens": 20, "completion_tokens": 10,
         "cached_tokens": 4},
        {"day": "2026-01-02", "grp": "k2", "requests": 1, "spend": 4.0, "prompt_tokens": 10, "completion_tokens": 5,
         "cached_tokens": 2},
    ]  # fmt: skip
    by_model = await store.daily_spend("model", start=T0, end=T0 + DAY, key_hash="k1")
    assert [(r["grp"], r["spend"]) for r in by_model] == [("a", 1.0), ("b", 2.0)]


async def test_tool_calls_are_stored(store: Store) -> None:
    call = ToolCallRecord(server="time", tool="get_time", duration_ms=3.5, error="boom", key_id="k1",
                          request_id="r1", created_at=time.time())  # fmt: skip
    await store.write_tool_calls([StoredToolCall("t1", call), StoredToolCall("t1", call)])
    rows = await store.tool_calls(limit=10)
    assert [(r["server"], r["tool"], r["error"], r["key_hash"]) for r in rows] == [("time", "get_time", "boom", "k1")]


def test_sqlite_urls_name_files() -> None:
    assert sqlite_path(None) == "toolhub.db"
    assert sqlite_path("sqlite:///data/hub.db") == "data/hub.db"
    assert sqlite_path("sqlite:////var/lib/hub.db") == "/var/lib/hub.db"
    assert sqlite_path("/tmp/x.db") == "/tmp/x.db"


async def test_a_large_batch_is_stored_once_even_with_repeated_ids(store: Store) -> None:
    """120 rows go as several multi-row statements on SQLite; ids repeated inside and across them are stored once."""
    rows = [StoredUsage(f"u{n % 100}", record(n % 100)) for n in range(120)]
    await store.write_usage(rows)
    await store.write_usage(rows[:60])
    assert await stored_request_ids(store) == expected(100)
    calls = [
        StoredToolCall(f"t{n % 70}", ToolCallRecord(server="s", tool="t", duration_ms=1.0, created_at=1e9 + n))
        for n in range(140)
    ]
    await store.write_tool_calls(calls)
    assert len(await store.tool_calls(limit=1000)) == 70
