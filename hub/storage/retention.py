"""Spend-log retention: move logs older than a cut-off into daily aggregates, one bounded batch at a time.

Kept apart from the `Store` protocol on purpose (migration 0004_retention.sql): each batch is one short
transaction, so the usage writer and the readers never wait long. On PostgreSQL a batch is one statement (a
DELETE ... RETURNING feeding an upsert, rows locked by another runner skipped); on SQLite an upsert and a DELETE of
the same rows in one write transaction. A row is thus either in the logs or in the aggregates, never both or
neither, however batches and processes interleave.

Only logs already folded into the console's spend rollup (`rolled = 1`, hub/storage/rollup.py) move: a log moved
before its fold would be in neither the rollup nor the logs, and the Overview would undercount (the retention pass
folds first, `hub.ops.retention.purge`).
"""

from __future__ import annotations

from hub.storage import Store, StoreError, is_postgres

_ROLLED_COLUMNS = ("day, day_start, key_hash, model_alias, requests, spend, prompt_tokens, completion_tokens, "
                   "cached_tokens")  # fmt: skip
_SUMS = "COUNT(*), SUM(cost), SUM(prompt_tokens), SUM(completion_tokens), SUM(cached_tokens)"
_MERGE = (
    "ON CONFLICT (day, key_hash, model_alias) DO UPDATE SET "
    "requests = toolhub_spend_daily.requests + excluded.requests, spend = toolhub_spend_daily.spend + excluded.spend, "
    "prompt_tokens = toolhub_spend_daily.prompt_tokens + excluded.prompt_tokens, "
    "completion_tokens = toolhub_spend_daily.completion_tokens + excluded.completion_tokens, "
    "cached_tokens = toolhub_spend_daily.cached_tokens + excluded.cached_tokens"
)
_GROUP = "GROUP BY day, COALESCE(key_hash, ''), model_alias"

POSTGRES_BATCH = (
    "WITH batch AS (SELECT id FROM toolhub_spend_logs WHERE created_at < $1 AND rolled = 1 ORDER BY created_at "
    "LIMIT $2 FOR UPDATE SKIP LOCKED), "
    "moved AS (DELETE FROM toolhub_spend_logs AS l USING batch WHERE l.id = batch.id RETURNING l.*), "
    f"rolled AS (INSERT INTO toolhub_spend_daily ({_ROLLED_COLUMNS}) "
    f"SELECT day, MIN(floor(created_at / 86400) * 86400), COALESCE(key_hash, ''), model_alias, {_SUMS} "
    f"FROM moved {_GROUP} {_MERGE}) "
    "SELECT COUNT(*) AS n FROM moved"
)
_SQLITE_OLDEST = "SELECT id FROM toolhub_spend_logs WHERE created_at < ?1 AND rolled = 1 ORDER BY created_at LIMIT ?2"
SQLITE_ROLL_UP = (
    f"INSERT INTO toolhub_spend_daily ({_ROLLED_COLUMNS}) "
    f"SELECT day, MIN(CAST(created_at / 86400 AS INTEGER) * 86400), COALESCE(key_hash, ''), model_alias, {_SUMS} "
    f"FROM toolhub_spend_logs WHERE id IN ({_SQLITE_OLDEST}) {_GROUP} {_MERGE}"
)
SQLITE_DELETE = f"DELETE FROM toolhub_spend_logs WHERE id IN ({_SQLITE_OLDEST})"
TOOL_CALLS_BATCH = (
    "DELETE FROM toolhub_tool_calls WHERE id IN "
    "(SELECT id FROM toolhub_tool_calls WHERE created_at < $1 ORDER BY created_at LIMIT $2)"
)


async def move_spend_logs(store: Store, before: float, limit: int) -> int:
    """Move at most `limit` of the oldest spend logs created before `before`, and already folded into the console's
    rollup, into the daily aggregates.

    Returns how many were moved (fewer than `limit`: nothing older is left).

    Raises:
        StoreError: the database failed; nothing of the batch was moved.
    """
    from hub.storage.sqlite import SqliteStore

    if is_postgres(store):
        rows = await store.fetch(POSTGRES_BATCH, [before, limit])
        return int(rows[0]["n"])
    if isinstance(store, SqliteStore):
        async with store._transaction() as conn:  # pyright: ignore[reportPrivateUsage]
            await conn.execute(SQLITE_ROLL_UP, [before, limit])
            async with conn.execute(SQLITE_DELETE, [before, limit]) as cursor:
                return cursor.rowcount
    raise StoreError(f"spend-log retention does not support {type(store).__name__}")


async def delete_tool_calls(store: Store, before: float, limit: int) -> int:
    """Delete at most `limit` of the oldest tool-call records created before `before`; returns how many."""
    from hub.storage.sqlite import SqliteStore

    if is_postgres(store):
        async with store._transaction() as conn:  # pyright: ignore[reportPrivateUsage]
            status = await conn.execute(TOOL_CALLS_BATCH, before, limit)
        return int(status.rsplit(" ", 1)[-1])  # "DELETE n"
    if isinstance(store, SqliteStore):
        async with store._transaction() as conn:  # pyright: ignore[reportPrivateUsage]
            async with conn.execute(TOOL_CALLS_BATCH.replace("$", "?"), [before, limit]) as cursor:
                return cursor.rowcount
    raise StoreError(f"tool-call retention does not support {type(store).__name__}")
