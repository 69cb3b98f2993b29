"""Many keys' spend at once: two queries for a page of keys instead of one per key (`Store.spend_since` each).

A key's spend since T is the same sum as `SPEND_SINCE` (hub/storage/_sql.py), its logs plus the daily aggregates of
logs past retention, but whole days from the spend rollup (hub/storage/rollup.py) where it can: from B, the first day
boundary after T and after the last day retention moved for that key, the rollup's daily rows hold every folded log
(retention never moved one of those days, so none is in the aggregates too), and the logs not folded yet are added.
Before B the logs are read as before: at most a day's worth, plus whatever retention left. A page of 50 keys with
5,000 logs each read 250,000 index entries; now it reads about 30 rollup rows and a day of logs per key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hub.storage import Store

CHUNK = 300
"""Keys per statement: three parameters each stays under SQLite's historic 999."""
DAY = 86400


def last_moved_days_sql(count: int) -> str:
    marks = ", ".join(f"${i}" for i in range(1, count + 1))
    return (
        "SELECT key_hash, MAX(day_start) AS last_day FROM toolhub_spend_daily "
        f"WHERE key_hash IN ({marks}) GROUP BY key_hash"
    )


def spend_since_many_sql(count: int) -> str:
    values = ", ".join(
        f"(${3 * i + 1}, CAST(${3 * i + 2} AS DOUBLE PRECISION), CAST(${3 * i + 3} AS BIGINT))" for i in range(count)
    )
    return (
        "SELECT w.column1 AS key_hash, "
        "COALESCE((SELECT SUM(l.cost) FROM toolhub_spend_logs AS l "
        "WHERE l.key_hash = w.column1 AND l.created_at >= w.column2 AND l.created_at < w.column3), 0) + "
        "COALESCE((SELECT SUM(d.spend) FROM toolhub_spend_daily AS d "
        "WHERE d.key_hash = w.column1 AND d.day_start > w.column2 - 86400), 0) + "
        "COALESCE((SELECT SUM(r.spend) FROM toolhub_spend_rollup AS r WHERE r.span = 86400 "
        "AND r.key_hash = w.column1 AND r.model_alias = '*' AND r.bucket_start >= w.column3), 0) + "
        "COALESCE((SELECT SUM(u.cost) FROM toolhub_spend_logs AS u "
        "WHERE u.rolled = 0 AND u.key_hash = w.column1 AND u.created_at >= w.column3), 0) AS total "
        f"FROM (VALUES {values}) AS w"
    )


async def spend_since_many(store: Store, since: Mapping[str, float]) -> dict[str, float]:
    """{key hash: spend since its time}, in two queries per `CHUNK` keys."""
    pairs = list(since.items())
    spent: dict[str, float] = {}
    for start in range(0, len(pairs), CHUNK):
        spent.update(await _chunk(store, pairs[start : start + CHUNK]))
    return spent


async def _chunk(store: Store, pairs: list[tuple[str, float]]) -> dict[str, float]:
    fetch = store.fetch
    moved = {row["key_hash"]: float(row["last_day"]) for row in
             await fetch(last_moved_days_sql(len(pairs)), [token_hash for token_hash, _ in pairs])}  # fmt: skip
    args: list[Any] = []
    for token_hash, when in pairs:
        boundary = max(math.ceil(when / DAY) * DAY, int(moved.get(token_hash, -DAY)) + DAY)
        args += [token_hash, float(when), boundary]
    rows = await fetch(spend_since_many_sql(len(pairs)), args)
    return {row["key_hash"]: float(row["total"]) for row in rows}
