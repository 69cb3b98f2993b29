"""The spend rollup (migration 0007_console.sql): spend logs folded into hourly and daily buckets for the console.

Logs are written folded: `write_usage` stores them `rolled = 1` and adds the rows it inserted (an id stored before
is skipped) to their buckets, in the insert's own transaction. SQLite looks up which ids are stored already and sums
the others in Python from the records in memory (`buckets`): ~10 us of a SQLite server's CPU per log less than a fold
(bench/storage.py).
PostgreSQL does it in one statement (`pg_write_folded`); it used to insert the logs unfolded and then mark them,
which wrote every row twice (a dead tuple and new entries in every index per log).
The background fold remains for logs written unfolded (by an older Toolhub, or a replayed id already stored unfolded):
A fold takes a bounded batch of logs not folded yet (`rolled = 0`, found through a partial index), adds them to
their buckets and marks them, in one transaction: a log is counted in the rollup exactly once, whatever order
processes and late writes (a spill file replayed after an outage) come in. Readers add the logs not folded yet to
the rollup (`hub/ui/queries.py`), so their answers are exact between folds. Each log lands in seven buckets: per
hour, all keys and all models, each key, each model; per day, the same plus each key and model together.

Retention (hub/storage/retention.py) moves logs older than at least a day; the fold runs every few seconds
(`running`), so what retention moves was folded long before, and the rollup keeps the Overview's 30 days whole even
under a shorter retention. Buckets older than the console shows are trimmed (`KEEP`), but for each key's days.
One gap in "exactly once": a spill file replayed after retention moved the days it holds writes those logs again
(their ids are no longer there to conflict with), so they count twice in the rollup; spill files are replayed within
seconds of the database coming back, long before retention's day.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import anyio

from hub.accounts.usage import UsageRecord
from hub.storage import Store, StoreError, is_postgres

logger = logging.getLogger("toolhub.rollup")

HOUR, DAY = 3600, 86400
KEEP = {HOUR: 3 * DAY, DAY: 40 * DAY}
"""How long buckets are kept: the console shows a day in hours and 30 days in days. Daily rows per key (and for all
keys) are kept for good: few, and the Keys page sums them."""
ALL = "*"
BATCH = 5_000
SQLITE_BATCH = 500
"""SQLite has one writer: a batch of 500 keeps each write transaction short (2,000 took ~270 ms under load)."""
INTERVAL = 5.0

# (span, every key, every model): the bucket rows each log adds to
_GRAINS = (
    "(VALUES (3600, 1, 0), (3600, 0, 1), (3600, 1, 1), (86400, 0, 0), (86400, 1, 0), (86400, 0, 1), (86400, 1, 1))"
)
_COLUMNS = "span, key_hash, model_alias, bucket_start, requests, errors, spend, latency_ms"
_MERGE = (
    "ON CONFLICT (span, key_hash, model_alias, bucket_start) DO UPDATE SET "
    "requests = toolhub_spend_rollup.requests + excluded.requests, "
    "errors = toolhub_spend_rollup.errors + excluded.errors, "
    "spend = toolhub_spend_rollup.spend + excluded.spend, "
    "latency_ms = toolhub_spend_rollup.latency_ms + excluded.latency_ms"
)


def bucket_sql(column: str, span: str, *, postgres: bool) -> str:
    """The start of the `span`-second bucket holding Unix time `column` (floor: CAST rounds on PostgreSQL)."""
    if postgres:
        return f"CAST(floor({column} / {span}) AS BIGINT) * {span}"
    return f"CAST({column} / {span} AS INTEGER) * {span}"


def _fold_select(source: str, *, postgres: bool) -> str:
    bucket = bucket_sql("l.created_at", "g.column1", postgres=postgres)
    return (
        f"SELECT g.column1, CASE WHEN g.column2 = 1 THEN '{ALL}' ELSE COALESCE(l.key_hash, '') END AS k, "
        f"CASE WHEN g.column3 = 1 THEN '{ALL}' ELSE l.model_alias END AS m, {bucket} AS b, COUNT(*), "
        "SUM(CASE WHEN l.status_code <> 200 THEN 1 ELSE 0 END), SUM(l.cost), SUM(l.latency_ms) "
        f"FROM {source} AS l CROSS JOIN {_GRAINS} AS g WHERE g.column1 > 0 "
        "GROUP BY g.column1, k, m, b ORDER BY g.column1, k, m, b"  # one lock order for concurrent folds
    )


_PG_BATCH = (
    # no ORDER BY: before `rolled` has statistics the planner sorted every unfolded log for each batch (10 s+)
    "WITH batch AS (SELECT id FROM toolhub_spend_logs WHERE rolled = 0 LIMIT $1 "
    "FOR UPDATE SKIP LOCKED), "
    "marked AS (UPDATE toolhub_spend_logs AS s SET rolled = 1 FROM batch WHERE s.id = batch.id "
    "RETURNING s.created_at, s.key_hash, s.model_alias, s.status_code, s.cost, s.latency_ms), "
    f"folded AS (INSERT INTO toolhub_spend_rollup ({_COLUMNS}) {_fold_select('marked', postgres=True)} {_MERGE}) "
    "SELECT COUNT(*) AS n FROM marked"
)
_SQLITE_BATCH = (
    "SELECT id FROM toolhub_spend_logs INDEXED BY toolhub_spend_unrolled WHERE rolled = 0 "
    "ORDER BY key_hash, created_at LIMIT ?1"
)
"""Read twice in one write transaction (to fold, then to mark): the same rows both times, in the index's order."""
_SQLITE_FOLD = (
    f"INSERT INTO toolhub_spend_rollup ({_COLUMNS}) "
    + _fold_select(f"(SELECT * FROM toolhub_spend_logs WHERE id IN ({_SQLITE_BATCH}))", postgres=False)
    + f" {_MERGE}"
)
_SQLITE_MARK = f"UPDATE toolhub_spend_logs SET rolled = 1 WHERE id IN ({_SQLITE_BATCH})"
UPSERT = f"INSERT INTO toolhub_spend_rollup ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) {_MERGE}"
TRIM = (  # a day's rows per key stay: the Keys page reads whole days of spend from them (hub/storage/key_spend.py)
    "DELETE FROM toolhub_spend_rollup WHERE span = $1 AND bucket_start < $2 "
    "AND (span = 3600 OR (key_hash <> '*' AND model_alias <> '*'))"
)


def pg_write_folded(insert: str) -> str:
    """`insert` (spend logs `rolled = 1`, ON CONFLICT (id) DO NOTHING) with the rows it inserted added to their
    buckets in the same statement; the ORDER BY sorts every row before the first bucket is locked."""
    written = f"{insert} RETURNING created_at, key_hash, model_alias, status_code, cost, latency_ms"
    fold = f"INSERT INTO toolhub_spend_rollup ({_COLUMNS}) {_fold_select('written', postgres=True)} {_MERGE}"
    return f"WITH written AS ({written}) {fold}"


def buckets(records: Iterable[UsageRecord]) -> list[list[Any]]:
    """The rollup rows (`UPSERT`'s parameters) that folding these logs adds, as the fold's SQL sums them; in the
    fold's order (one lock order)."""
    groups: dict[tuple[str, str, int, int], list[float]] = {}
    for r in records:
        sums = groups.setdefault((r.key_id or "", r.model_alias, int(r.created_at // HOUR), int(r.created_at // DAY)),
                                 [0, 0, 0.0, 0.0])  # fmt: skip
        sums[0] += 1
        sums[1] += r.status_code != 200
        sums[2] += r.cost
        sums[3] += r.latency_ms
    rows: dict[tuple[int, str, str, int], list[float]] = {}
    for (key, model, hour, day), sums in groups.items():
        for span, k, m, start in ((HOUR, ALL, model, hour), (HOUR, key, ALL, hour), (HOUR, ALL, ALL, hour),
                                  (DAY, key, model, day), (DAY, ALL, model, day), (DAY, key, ALL, day),
                                  (DAY, ALL, ALL, day)):  # fmt: skip
            total = rows.setdefault((span, k, m, start * span), [0, 0, 0.0, 0.0])
            for i, value in enumerate(sums):
                total[i] += value
    return [[*bucket, *rows[bucket]] for bucket in sorted(rows)]


async def fold(store: Store, limit: int) -> int:
    """Fold at most `limit` of the oldest logs not folded yet; returns how many (fewer than `limit`: none left).

    Raises:
        StoreError: the database failed; nothing of the batch was folded.
    """
    from hub.storage.sqlite import SqliteStore

    if is_postgres(store):
        rows = await store.fetch(_PG_BATCH, [limit])
        return int(rows[0]["n"])
    if isinstance(store, SqliteStore):
        async with store._transaction() as conn:  # pyright: ignore[reportPrivateUsage]
            await conn.execute(_SQLITE_FOLD, [limit])
            async with conn.execute(_SQLITE_MARK, [limit]) as cursor:
                return cursor.rowcount
    raise StoreError(f"the spend rollup does not support {type(store).__name__}")


def batch_size(store: Store) -> int:
    from hub.storage.sqlite import SqliteStore

    return SQLITE_BATCH if isinstance(store, SqliteStore) else BATCH


async def fold_all(store: Store, *, pause: float = 0.02) -> int:
    """Fold every log not folded yet, batch by batch (the writer gets the database in between); returns how many."""
    total, limit = 0, batch_size(store)
    while True:
        done = await fold(store, limit)
        total += done
        if done < limit:
            return total
        await anyio.sleep(pause)


async def trim(store: Store, now: float) -> None:
    """Delete buckets older than the console shows (`KEEP`)."""
    for span, keep in KEEP.items():
        await store.execute(TRIM, [span, int(now - keep)])


@contextlib.asynccontextmanager
async def running(store: Store, interval: float = INTERVAL) -> AsyncIterator[None]:
    """Fold new logs every `interval` seconds while the app serves (and trim old buckets hourly)."""
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(_loop, store, interval)
        try:
            yield
        finally:
            tasks.cancel_scope.cancel()


async def _loop(store: Store, interval: float) -> None:
    trimmed = 0.0
    while True:
        try:
            await fold_all(store)
            if time.time() - trimmed > 3600:
                await trim(store, time.time())
                trimmed = time.time()
        except StoreError as exc:  # the database is down: readers still add the logs not folded yet
            logger.warning("spend rollup: %s (retried in %g s)", exc, interval)
        await anyio.sleep(interval)
