"""The spend rollup on both stores: the Overview's hours and days read from it agree with the logs before, during and
after folds, late logs included; a page of keys' spend in one query equals `spend_since` key by key; and on
PostgreSQL the console's queries use their indexes (EXPLAIN)."""

from __future__ import annotations

import random
import time
from types import SimpleNamespace
from typing import Any, cast

import anyio
import pytest

from hub.accounts.usage import UsageRecord
from hub.state import HubState
from hub.storage import Store, StoredUsage, _sql as sql, rollup
from hub.storage.key_spend import last_moved_days_sql, spend_since_many, spend_since_many_sql
from hub.storage.postgres import PostgresStore
from hub.storage.retention import move_spend_logs
from hub.ui import queries, ui_extension
from tests.storage import conftest as storage_fixtures

backend = storage_fixtures.backend
store = storage_fixtures.store

pytestmark = pytest.mark.anyio
NOW = time.time()
HOUR, DAY = 3600, 86400
KEYS = ["ka", "kb", "kc", None]  # None: the master key
MODELS = ["m1", "m2", "m3"]


def _logs(count: int, seed: int, *, span: float = 29 * DAY) -> list[StoredUsage]:
    rng = random.Random(seed)
    return [StoredUsage(f"s{seed}-{i}", UsageRecord(
        request_id=f"r{seed}-{i}", key_id=rng.choice(KEYS), model_alias=rng.choice(MODELS), upstream_model="u",
        provider="openai", status_code=rng.choice((200, 200, 200, 500)), stream=False,
        latency_ms=float(rng.randint(1, 900)), cost=rng.randint(1, 100) / 1000, created_at=NOW - rng.uniform(0, span)))
        for i in range(count)]  # fmt: skip


async def _write_unfolded(store: Store, logs: list[StoredUsage]) -> None:
    """Logs as an older Toolhub wrote them, left for the background fold (`write_usage` folds them as it writes)."""
    await store.execute_many(sql.INSERT_USAGE, [sql.usage_params(log) for log in logs])


def _expected_series(logs: list[StoredUsage], key: str | None, start: int, step: int) -> dict[int, tuple[int, int]]:
    out: dict[int, tuple[int, int]] = {}
    for log in logs:
        r = log.record
        if r.created_at >= start and (key is None or r.key_id == key):
            requests, errors = out.get(int(r.created_at - start) // step, (0, 0))
            out[int(r.created_at - start) // step] = (requests + 1, errors + (r.status_code != 200))
    return out


async def _series(store: Store, key: str | None, start: int, step: int) -> dict[int, tuple[int, int]]:
    rows = await queries.series(store, key, start, step)
    return {int(r["bucket"]): (int(r["requests"]), int(r["errors"])) for r in rows}


def _top(logs: list[StoredUsage], attr: str, key: str | None, start: int) -> dict[Any, int]:
    counts: dict[Any, int] = {}
    for log in logs:
        r = log.record
        if r.created_at >= start and (key is None or r.key_id == key):
            counts[getattr(r, attr)] = counts.get(getattr(r, attr), 0) + 1
    return counts


async def _check_everything(store: Store, logs: list[StoredUsage]) -> None:
    for step, span in ((HOUR, DAY), (DAY, 30 * DAY)):
        start = int(NOW - span) // step * step + step
        for key in (None, "kb"):
            assert await _series(store, key, start, step) == _expected_series(logs, key, start, step), (step, key)
            models = await queries.top(store, "model_alias", key, start, step, limit=10)
            assert {r["name"]: int(r["requests"]) for r in models} == _top(logs, "model_alias", key, start)
            keys = await queries.top(store, "key_hash", key, start, step, limit=10)
            assert {r["name"]: int(r["requests"]) for r in keys} == _top(logs, "key_id", key, start)


async def test_hours_and_days_agree_with_the_logs_before_between_and_after_folds(store: Store) -> None:
    logs = _logs(900, 1)
    await _write_unfolded(store, logs)
    await _check_everything(store, logs)  # nothing folded: every answer comes from the logs
    assert await rollup.fold(store, 300) == 300
    await _check_everything(store, logs)  # a third folded
    assert await rollup.fold_all(store, pause=0) == 600
    await _check_everything(store, logs)
    late = _logs(50, 2)  # written late (a spill file replayed after an outage): old times, folded all the same
    await _write_unfolded(store, late)
    await _check_everything(store, logs + late)
    assert await rollup.fold_all(store, pause=0) == 50
    assert await rollup.fold_all(store, pause=0) == 0  # a log is folded once
    await _check_everything(store, logs + late)


async def test_a_fold_sums_spend_and_latency_per_bucket(store: Store) -> None:
    logs = _logs(200, 3, span=2 * DAY)
    await _write_unfolded(store, logs)
    await rollup.fold_all(store, pause=0)
    start = int(NOW - 2 * DAY) // DAY * DAY
    rows = await queries.series(store, None, start, DAY)
    assert sum(float(r["spend"]) for r in rows) == pytest.approx(sum(log.record.cost for log in logs))
    latency = sum(float(r["latency_ms"]) * int(r["requests"]) for r in rows)
    assert latency == pytest.approx(sum(log.record.latency_ms for log in logs))


async def test_trim_drops_only_buckets_older_than_the_console_shows_but_each_keys_days(store: Store) -> None:
    old = _logs(30, 4, span=1)
    for log in old:
        log.record.created_at -= 45 * DAY
    await _write_unfolded(store, old + _logs(30, 5, span=DAY))
    await rollup.fold_all(store, pause=0)
    await rollup.trim(store, NOW)
    text = ("SELECT span, key_hash = '*' AS all_keys, model_alias = '*' AS all_models, MIN(bucket_start) AS oldest "
            "FROM toolhub_spend_rollup GROUP BY span, key_hash = '*', model_alias = '*'")  # fmt: skip
    rows = await store.fetch(text, [])
    oldest = {(int(r["span"]), bool(r["all_keys"]), bool(r["all_models"])): int(r["oldest"]) for r in rows}
    assert all(when >= NOW - 3 * DAY - HOUR for (span, _, _), when in oldest.items() if span == HOUR)
    assert oldest[(DAY, False, False)] >= NOW - 40 * DAY - DAY  # each key's models: trimmed
    assert oldest[(DAY, False, True)] < NOW - 44 * DAY and oldest[(DAY, True, True)] < NOW - 44 * DAY  # kept


async def test_a_page_of_key_spends_equals_spend_since_key_by_key(store: Store) -> None:
    logs = _logs(400, 6)
    await _write_unfolded(store, logs)
    since = {"ka": NOW - 40 * DAY, "kb": NOW - 5 * DAY - 7, "kc": NOW - 1, "nobody": 0.0, "ka2": 0.0}
    expected = {key: await store.spend_since(key, when) for key, when in since.items()}
    assert await spend_since_many(store, since) == pytest.approx(expected)  # nothing folded
    await rollup.fold(store, 150)
    assert await spend_since_many(store, since) == pytest.approx(expected)  # some folded
    await rollup.fold_all(store, pause=0)
    assert await spend_since_many(store, since) == pytest.approx(expected)
    assert await spend_since_many(store, {}) == {}


async def test_key_spends_stay_equal_to_spend_since_when_retention_moves_logs(store: Store) -> None:
    """Retention moves logs into daily aggregates that the rollup may hold too: before B (the day after the last day
    moved) the aggregates count, from B the rollup, so no log counts twice or never."""
    logs = _logs(600, 7)
    await _write_unfolded(store, logs[:300])
    await move_spend_logs(store, NOW - 20 * DAY - 3600, 10_000)  # moved before any fold: in the aggregates only
    await rollup.fold_all(store, pause=0)
    await _write_unfolded(store, logs[300:])
    await rollup.fold(store, 100)
    await move_spend_logs(store, NOW - 10 * DAY - 7200, 10_000)  # folded ones too: in the rollup and the aggregates
    for when in (0.0, NOW - 25 * DAY, NOW - 20 * DAY, NOW - 15 * DAY + 5, NOW - 10 * DAY, NOW - 3 * DAY, NOW - 60):
        since: dict[str, float] = dict.fromkeys(("ka", "kb", "kc"), when)
        expected = {key: await store.spend_since(key, when) for key in since}
        assert await spend_since_many(store, since) == pytest.approx(expected), when


@pytest.mark.parametrize("backend", ["postgres"])  # SQLite's plans are measured by bench/ui_pages.py
async def test_postgres_console_queries_use_their_indexes(store: Store) -> None:
    assert isinstance(store, PostgresStore)
    where, args = queries._where(queries.LogFilter(model="m1", status="failure"))  # pyright: ignore[reportPrivateUsage]
    failures = f"SELECT id FROM toolhub_spend_logs {where} ORDER BY created_at DESC LIMIT 50"
    by_key, key_args = queries._where(queries.LogFilter(key_hash="ka", status="failure"))  # pyright: ignore[reportPrivateUsage]
    key_failures = f"SELECT id FROM toolhub_spend_logs {by_key} ORDER BY created_at DESC LIMIT 50"
    series = ("SELECT * FROM toolhub_spend_rollup WHERE span = 3600 AND key_hash = '*' AND model_alias = '*' "
              "AND bucket_start >= $1")  # fmt: skip
    top_keys = "SELECT * FROM toolhub_spend_rollup WHERE span = 86400 AND model_alias = '*' AND bucket_start >= $1"
    plans = {  # query -> the indexes that serve it
        (spend_since_many_sql(1), ("ka", NOW, int(NOW))): ("toolhub_spend_key_time_cost",),
        (f"{spend_since_many_sql(1)} WHERE w.column3 > 0", ("ka", NOW, int(NOW))): ("toolhub_spend_unrolled",),
        (last_moved_days_sql(1), ("ka",)): ("toolhub_spend_daily_key",),
        (failures, tuple(args)): ("toolhub_spend_failures_model",),
        (key_failures, tuple(key_args)): ("toolhub_spend_failures_key",),
        (rollup._PG_BATCH, (5000,)): ("toolhub_spend_unrolled",),  # pyright: ignore[reportPrivateUsage]
        (series, (int(NOW),)): ("toolhub_spend_rollup_pkey", "toolhub_spend_rollup_by_model"),
        (top_keys, (int(NOW),)): ("toolhub_spend_rollup_by_model",),
    }
    async with store.pool.acquire() as conn:
        await conn.execute("SET enable_seqscan = off")  # tables this small would be read whole anyway
        for (text, params), indexes in plans.items():
            plan = "\n".join(row[0] for row in await conn.fetch(f"EXPLAIN {text}", *params))
            assert any(index in plan for index in indexes) and "Seq Scan" not in plan, plan
            assert "Sort Key: toolhub_spend_logs" not in plan, plan  # a fold batch once sorted every unfolded log


async def test_the_console_extension_folds_new_logs_in_the_background(store: Store) -> None:
    logs = _logs(120, 8)
    await _write_unfolded(store, logs)
    state = cast(HubState, SimpleNamespace(extras={"store": store}))
    count = "SELECT COUNT(*) AS n FROM toolhub_spend_logs WHERE rolled = 0"
    async with ui_extension(interval=0.01)(state):
        left = -1
        for _ in range(1000):  # the fold runs every 10 ms: polled, bounded
            left = int((await store.fetch(count, []))[0]["n"])
            if not left:
                break
            await anyio.sleep(0.01)
        assert left == 0
    start = int(NOW - 30 * DAY) // DAY * DAY + DAY
    assert await _series(store, None, start, DAY) == _expected_series(logs, None, start, DAY)
    async with ui_extension()(cast(HubState, SimpleNamespace(extras={}))):  # no database: nothing to fold
        pass


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_console_queries_use_their_indexes(store: Store) -> None:
    """SQLite keeps no statistics here: without them it took the time index for the logs not folded yet and read
    30 days of logs (3 s a page with a million)."""
    unrolled, args = queries._unrolled(store, None, 1, step=DAY)  # pyright: ignore[reportPrivateUsage]
    own, own_args = queries._unrolled(store, "ka", 1, step=DAY)  # pyright: ignore[reportPrivateUsage]
    by_model, model_args = queries._where(queries.LogFilter(model="m1", status="failure"))  # pyright: ignore[reportPrivateUsage]
    by_key, key_args = queries._where(queries.LogFilter(key_hash="ka", status="failure"))  # pyright: ignore[reportPrivateUsage]
    plans = {  # query -> the index each of its scans must use
        (unrolled, (0, *args)): ["toolhub_spend_unrolled"],
        (own, (0, *own_args)): ["toolhub_spend_unrolled"],
        (spend_since_many_sql(1), ("ka", NOW, int(NOW))): ["toolhub_spend_key_time_cost", "toolhub_spend_daily_key",
                                                           "toolhub_spend_rollup", "toolhub_spend_unrolled"],
        (f"SELECT id FROM toolhub_spend_logs {by_model} ORDER BY created_at DESC", tuple(model_args)): [
            "toolhub_spend_failures_model"],
        (f"SELECT id FROM toolhub_spend_logs {by_key} ORDER BY created_at DESC", tuple(key_args)): [
            "toolhub_spend_failures_key"],
    }  # fmt: skip
    for (text, params), indexes in plans.items():
        rows = await store.fetch(f"EXPLAIN QUERY PLAN {text}", list(params))
        details = [row["detail"] for row in rows if row["detail"] not in ("SCAN w", "SCAN CONSTANT ROW")]
        scans = [detail for detail in details if detail.startswith(("SCAN", "SEARCH"))]
        assert len(scans) == len(indexes) and all(i in s for i, s in zip(indexes, scans, strict=True)), scans


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_postgres_fold_batch_never_sorts_the_unfolded_logs(store: Store) -> None:
    """Before `rolled` has statistics (just after the migration) a batch ordered by key once sorted every unfolded
    log, each time: over 10 s a batch with a million, so the fold never got through."""
    assert isinstance(store, PostgresStore)
    await _write_unfolded(store, _logs(3000, 9))
    async with store.pool.acquire() as conn:
        plan = "\n".join(row[0] for row in await conn.fetch(f"EXPLAIN {rollup._PG_BATCH}", 5000))  # pyright: ignore[reportPrivateUsage]
    assert "toolhub_spend_unrolled" in plan and "Sort Key: toolhub_spend_logs" not in plan, plan


async def test_logs_are_written_folded_and_a_replay_counts_nothing_twice(store: Store) -> None:
    logs, old = _logs(700, 9), _logs(40, 10)
    await _write_unfolded(store, old[:20])  # stored unfolded by an older writer, then replayed with the rest
    await store.write_usage(logs + old + logs[:5])  # duplicates in one batch too
    unfolded = "SELECT COUNT(*) AS n FROM toolhub_spend_logs WHERE rolled = 0"
    assert int((await store.fetch(unfolded, []))[0]["n"]) <= 20  # only older logs wait for the background fold
    await _check_everything(store, logs + old)
    await store.write_usage(logs[100:300])  # a spill file replayed after the batch landed
    await _check_everything(store, logs + old)
    await rollup.fold_all(store, pause=0)
    await _check_everything(store, logs + old)
    rows = await queries.series(store, None, int(NOW - 30 * DAY) // DAY * DAY, DAY)
    assert sum(float(r["spend"]) for r in rows) == pytest.approx(sum(log.record.cost for log in logs + old))


async def test_buckets_match_what_the_fold_adds(store: Store) -> None:
    logs = _logs(300, 11)
    await _write_unfolded(store, logs)
    await rollup.fold_all(store, pause=0)
    text = f"SELECT {rollup._COLUMNS} FROM toolhub_spend_rollup ORDER BY span, key_hash, model_alias, bucket_start"  # pyright: ignore[reportPrivateUsage]
    folded = [list(row) for row in await store.fetch(text, [])]
    expected = rollup.buckets(log.record for log in logs)
    assert [row[:6] for row in folded] == [row[:6] for row in expected]
    assert [row[6:] for row in folded] == [pytest.approx(row[6:]) for row in expected]
