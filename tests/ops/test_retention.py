"""Spend-log retention on both backends: old logs move into daily aggregates in batches, so `/spend/daily` and
budgets keep their history while `/spend/logs` forgets; the queries use indexes (EXPLAIN on PostgreSQL)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from hub.accounts.usage import ToolCallRecord, UsageRecord
from hub.config import ConfigError, parse_config
from hub.ops import retention
from hub.ops.retention import purge
from hub.server import build_app
from hub.storage import SpendQuery, Store, StoredToolCall, StoredUsage, _sql as sql
from hub.storage.postgres import PostgresStore
from hub.storage.retention import move_spend_logs
from hub.storage.sqlite import SqliteStore
from hub.ui import queries
from tests.support.servers import serve_app

DAY = 86400.0
NOW = time.time()


def usage(key: str | None, model: str, age_days: float, cost: float, tokens: int = 10) -> StoredUsage:
    record = UsageRecord(request_id=uuid.uuid4().hex, key_id=key, model_alias=model, upstream_model=model,
                         provider="openai", status_code=200, stream=False, latency_ms=5.0, prompt_tokens=tokens,
                         completion_tokens=tokens // 2, cached_tokens=1, cost=cost,
                         created_at=NOW - age_days * DAY)  # fmt: skip
    return StoredUsage(uuid.uuid4().hex, record)


def history() -> list[StoredUsage]:
    """40 and 35 days old (two keys, the master key, two models, one day with rows at both ends), and recent."""
    rows = [usage("key-a", "gpt", 40, 0.5) for _ in range(7)]
    rows += [usage("key-b", "claude", 40, 0.25, tokens=4) for _ in range(3)]
    rows += [usage(None, "gpt", 35, 1.0) for _ in range(4)]
    rows += [usage("key-a", "gpt", 1, 2.0) for _ in range(5)]
    return rows


async def everything(store: Store) -> dict[str, Any]:
    """What /spend/daily (both groupings, all time) and budgets (all time, and the last 38 days) read."""
    return {
        "by_key": await store.daily_spend("key", start=None, end=None, key_hash=None),
        "by_model": await store.daily_spend("model", start=None, end=None, key_hash=None),
        "key_a": await store.daily_spend("model", start=NOW - 45 * DAY, end=NOW, key_hash="key-a"),
        "spent_a": await store.spend_since("key-a", 0),
        "spent_b_recent": await store.spend_since("key-b", NOW - 38 * DAY),
    }


@pytest.mark.anyio
async def test_old_logs_move_into_daily_aggregates_and_daily_spend_and_budgets_keep_their_history(
    store: Store,
) -> None:
    await store.write_usage(history())
    before = await everything(store)
    moved, _ = await purge(store, NOW - 30 * DAY, batch=3, pause=0)
    assert moved == 14
    assert await everything(store) == before
    assert before["spent_a"] == pytest.approx(7 * 0.5 + 5 * 2.0) and before["spent_b_recent"] == 0
    logs, total = await store.spend_logs(SpendQuery(limit=100))
    assert total == 5 and {row["created_at"] for row in logs} == {NOW - DAY}


@pytest.mark.anyio
async def test_a_second_pass_over_a_day_already_rolled_up_adds_to_it(store: Store) -> None:
    await store.write_usage([usage("key-a", "gpt", 40, 0.5) for _ in range(2)])
    await purge(store, NOW - 30 * DAY, batch=10, pause=0)
    await store.write_usage([usage("key-a", "gpt", 40, 0.5)])  # a late row (a replayed spill file)
    assert await purge(store, NOW - 30 * DAY, batch=10, pause=0) == (1, 0)
    [day] = await store.daily_spend("key", start=None, end=None, key_hash=None)
    assert (day["grp"], day["requests"], day["spend"], day["prompt_tokens"]) == ("key-a", 3, 1.5, 30)


@pytest.mark.anyio
async def test_logs_move_only_once_folded_so_the_overview_keeps_counting_them(store: Store) -> None:
    unfolded = [usage("key-a", "gpt", 2, 0.5) for _ in range(6)]  # as an older writer left them (write_usage folds)
    await store.execute_many(sql.INSERT_USAGE, [sql.usage_params(row) for row in unfolded])
    start = int(NOW - 5 * DAY) // int(DAY) * int(DAY)

    async def overview() -> tuple[int, float]:
        rows = await queries.series(store, None, start, int(DAY))
        return sum(r["requests"] for r in rows), sum(r["spend"] for r in rows)

    before = await overview()
    assert before == (6, pytest.approx(3.0))
    assert await move_spend_logs(store, NOW - DAY, 100) == 0  # not folded into the rollup yet: stays
    assert await purge(store, NOW - DAY, batch=4, pause=0) == (6, 0)  # folds first, then moves
    assert await overview() == before
    [day] = await store.daily_spend("key", start=None, end=None, key_hash=None)
    assert (day["grp"], day["requests"]) == ("key-a", 6)


@pytest.mark.anyio
async def test_old_tool_calls_are_deleted_in_batches(store: Store) -> None:
    calls = [StoredToolCall(uuid.uuid4().hex, ToolCallRecord(request_id="r", key_id=None, server="s", tool="t",
                                                              duration_ms=1.0, error=None, created_at=NOW - age * DAY))
             for age in (40, 40, 40, 1)]  # fmt: skip
    await store.write_tool_calls(calls)
    assert await purge(store, NOW - 30 * DAY, batch=2, pause=0) == (0, 3)
    assert len(await store.tool_calls(limit=10)) == 1


@pytest.mark.anyio
async def test_many_rows_move_in_bounded_batches(store: Store) -> None:
    await store.write_usage([usage(f"key-{i % 50}", "gpt", 31 + i % 7, 0.001) for i in range(20_000)])
    started = time.perf_counter()
    assert await purge(store, NOW - 30 * DAY, batch=2_000, pause=0) == (20_000, 0)
    assert time.perf_counter() - started < 30
    rows = await store.daily_spend("key", start=None, end=None, key_hash=None)
    assert sum(r["requests"] for r in rows) == 20_000 and len(rows) == 350


@pytest.mark.anyio
async def test_postgres_queries_use_their_indexes(postgres_store: PostgresStore) -> None:
    from hub.storage import _sql as sql
    from hub.storage.retention import POSTGRES_BATCH, TOOL_CALLS_BATCH

    queries = {
        "toolhub_spend_time": (POSTGRES_BATCH, [NOW, 100]),
        "toolhub_tool_calls_time": (TOOL_CALLS_BATCH, [NOW, 100]),
        "toolhub_spend_daily_key": (sql.SPEND_SINCE, ["key-a", NOW]),
        "toolhub_spend_model_time": sql.spend_logs_sql(SpendQuery(model="gpt", limit=10))[::2],
    }
    async with postgres_store.pool.acquire() as conn:
        await conn.execute("SET enable_seqscan = off")  # tables this small would be read whole anyway
        try:
            for index, (text, args) in queries.items():
                plan = "\n".join(row[0] for row in await conn.fetch(f"EXPLAIN {text}", *args))
                assert index in plan, plan
        finally:
            await conn.execute("RESET enable_seqscan")


def test_the_app_runs_retention_and_spend_daily_still_shows_the_old_days(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "hub.db"

    async def seed() -> None:
        sqlite = SqliteStore(str(db))
        await sqlite.connect()
        await sqlite.migrate()
        await sqlite.write_usage(history())
        await sqlite.aclose()

    anyio.run(seed)
    monkeypatch.setattr(retention, "FIRST_PASS_DELAY", 0.0)
    general = {"master_key": "sk-m", "database_url": f"sqlite:///{db}", "maximum_spend_logs_retention_period": "30d"}
    admin = {"Authorization": "Bearer sk-m"}
    with serve_app(build_app(parse_config({"general_settings": general}, {}))) as url:
        deadline = time.monotonic() + 10
        while httpx2.get(f"{url}/spend/logs", headers=admin).json()["total"] != 5:
            assert time.monotonic() < deadline, "retention did not run"
            time.sleep(0.05)
        start = time.strftime("%Y-%m-%d", time.gmtime(NOW - 45 * DAY))
        daily = httpx2.get(f"{url}/spend/daily", headers=admin, params={"start_date": start, "group_by": "model"})
    assert [(d["model"], d["requests"]) for d in daily.json()["data"]] == [
        ("claude", 3), ("gpt", 7), ("gpt", 4), ("gpt", 5)]  # fmt: skip


def test_a_bad_retention_period_fails_start_with_its_key() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"general_settings": {"maximum_spend_logs_retention_period": "30 days"}}, {})
    assert caught.value.path == "general_settings.maximum_spend_logs_retention_period"
