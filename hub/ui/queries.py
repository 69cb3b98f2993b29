"""Read-only queries the admin API lacks: spend logs filtered by status, time buckets for the Overview charts, and a
page of keys' spend in one query.

They run on the store's own SQL (`Store.fetch`, the same on SQLite and PostgreSQL), over the columns and indexes of
`hub/storage/migrations`, and never write. Every query is limited to one key when the session is a virtual key's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from hub.storage import Store, is_postgres
from hub.storage._sql import SPEND_COLUMNS
from hub.storage.rollup import ALL, DAY, HOUR, bucket_sql

ROLLUP_SPANS = (HOUR, DAY)

Status = Literal["success", "failure"]


@dataclass(frozen=True, slots=True)
class LogFilter:
    key_hash: str | None = None
    model: str | None = None
    status: Status | None = None
    start: float | None = None
    end: float | None = None


def _where(f: LogFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    for clause, value in (("key_hash = ", f.key_hash), ("model_alias = ", f.model), ("created_at >= ", f.start),
                          ("created_at < ", f.end)):  # fmt: skip
        if value is not None:
            args.append(value)
            clauses.append(f"{clause}${len(args)}")
    if f.status is not None:
        clauses.append("status_code = 200" if f.status == "success" else "status_code <> 200")
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", args


async def _rows(store: Store, text: str, args: list[Any]) -> list[dict[str, Any]]:
    return [dict(row) for row in await store.fetch(text, args)]


COUNT_CAP = 1000
"""Matches are counted up to here: an exact count of a million rows would cost a full scan on every page."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in the newest-first order (`created_at` DESC, `id` DESC): the first or last row of a page."""

    created_at: float
    id: str

    def __str__(self) -> str:
        return f"{self.created_at!r}~{self.id}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        created, _, ident = (text or "").partition("~")
        try:
            return cls(float(created), ident) if ident else None
        except ValueError:
            return None


async def spend_logs(
    store: Store, f: LogFilter, limit: int, *, before: Cursor | None = None, after: Cursor | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """One page of matching rows, newest first, older than `before` or newer than `after` (keyset pagination:
    the same cost on every page); and whether there are more rows beyond the page in that direction."""
    where, args = _where(f)
    cursor = before or after
    if cursor is not None:
        args += [cursor.created_at, cursor.id]
        a, b = len(args) - 1, len(args)
        # a plain range on created_at first, so both planners walk the time index from the cursor
        keyset = (f"created_at <= ${a} AND (created_at < ${a} OR id < ${b})" if before
                  else f"created_at >= ${a} AND (created_at > ${a} OR id > ${b})")  # fmt: skip
        where = f"{where} AND {keyset}" if where else f"WHERE {keyset}"
    order = "created_at ASC, id ASC" if after else "created_at DESC, id DESC"
    text = (f"SELECT {', '.join(SPEND_COLUMNS)} FROM toolhub_spend_logs {where} "
            f"ORDER BY {order} LIMIT ${len(args) + 1}")  # fmt: skip
    rows = await _rows(store, text, [*args, limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return (rows[::-1] if after else rows), more


async def count_logs(store: Store, f: LogFilter) -> int:
    """How many rows match, counted up to COUNT_CAP + 1."""
    where, args = _where(f)
    text = f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM toolhub_spend_logs {where} LIMIT {COUNT_CAP + 1}) AS capped"
    return int((await _rows(store, text, args))[0]["n"])


async def tool_calls_of(store: Store, request_ids: list[str]) -> list[dict[str, Any]]:
    """The tool calls made while serving these requests."""
    if not request_ids:
        return []
    marks = ", ".join(f"${i}" for i in range(1, len(request_ids) + 1))
    text = ("SELECT request_id, server, tool, duration_ms, error, created_at FROM toolhub_tool_calls "
            f"WHERE request_id IN ({marks}) ORDER BY created_at")  # fmt: skip
    return await _rows(store, text, request_ids)


def _unrolled(store: Store, key_hash: str | None, n: int, *, step: int | None = None) -> tuple[str, list[Any]]:
    """The logs since `$1` not folded into the rollup yet (a few seconds' worth, through a partial index)."""
    where = "rolled = 0 AND created_at >= CAST($1 AS DOUBLE PRECISION)"
    args: list[Any] = []
    if key_hash is not None:
        args.append(key_hash)
        where += f" AND key_hash = ${n + 1}"
    postgres = is_postgres(store)
    bucket = "" if step is None else f"{bucket_sql('created_at', str(step), postgres=postgres)} AS b, "
    # SQLite has no statistics to see that the partial index is small: without this it reads 30 days of logs
    source = "toolhub_spend_logs" if postgres else "toolhub_spend_logs INDEXED BY toolhub_spend_unrolled"
    return (f"SELECT {bucket}COALESCE(key_hash, '') AS k, model_alias AS m, 1 AS requests, "
            "CASE WHEN status_code <> 200 THEN 1 ELSE 0 END AS errors, cost AS spend, latency_ms "
            f"FROM {source} WHERE {where}"), args  # fmt: skip


async def series(store: Store, key_hash: str | None, start: int, step: int) -> list[dict[str, Any]]:
    """Requests, errors, spend and mean latency per `step` seconds since `start` (a multiple of `step`).

    Hours and days come from the rollup (hub/storage/rollup.py) plus the logs not folded yet; shorter steps (the
    last hour) from the logs.
    """
    if step not in ROLLUP_SPANS:
        return await _raw_series(store, key_hash, start, step)
    unrolled, args = _unrolled(store, key_hash, 3, step=step)
    text = ("SELECT (b - $1) / $2 AS bucket, SUM(requests) AS requests, SUM(errors) AS errors, SUM(spend) AS spend, "
            "SUM(latency_ms) / SUM(requests) AS latency_ms FROM ("
            "SELECT bucket_start AS b, requests, errors, spend, latency_ms FROM toolhub_spend_rollup "
            "WHERE span = $2 AND key_hash = $3 AND model_alias = '*' AND bucket_start >= $1 "
            f"UNION ALL SELECT b, requests, errors, spend, latency_ms FROM ({unrolled}) AS u"
            ") AS t GROUP BY bucket ORDER BY bucket")  # fmt: skip
    return await _rows(store, text, [start, step, key_hash or ALL, *args])


async def _raw_series(store: Store, key_hash: str | None, start: int, step: int) -> list[dict[str, Any]]:
    where, args = _where(LogFilter(key_hash=key_hash, start=start))
    n = len(args)
    bucket = bucket_sql("created_at", f"${n + 2}", postgres=is_postgres(store))
    text = (f"SELECT ({bucket} - ${n + 1}) / ${n + 2} AS bucket, COUNT(*) AS requests, "
            "SUM(CASE WHEN status_code <> 200 THEN 1 ELSE 0 END) AS errors, SUM(cost) AS spend, "
            f"AVG(latency_ms) AS latency_ms FROM toolhub_spend_logs {where} "
            "GROUP BY bucket ORDER BY bucket")  # fmt: skip
    return await _rows(store, text, [*args, start, step])


async def top(store: Store, column: Literal["model_alias", "key_hash"], key_hash: str | None, start: int,
              step: int, limit: int = 5) -> list[dict[str, Any]]:  # fmt: skip
    """The `limit` models or keys with the most requests since `start` (a multiple of `step`, as in `series`).

    From the rollup where it has the rows: every step of an hour or a day, except one key's models by the hour.
    """
    by_model = column == "model_alias"
    if step not in ROLLUP_SPANS or (by_model and key_hash is not None and step != DAY):
        return await _raw_top(store, column, key_hash, start, limit)
    unrolled, args = _unrolled(store, key_hash, 3)
    if by_model:
        rolled = (
            "SELECT model_alias AS name, requests, spend FROM toolhub_spend_rollup "
            "WHERE span = $2 AND key_hash = $3 AND model_alias <> '*' AND bucket_start >= $1"
        )
    else:  # every key's row ('*' excluded), or one key's own
        rolled = (
            "SELECT key_hash AS name, requests, spend FROM toolhub_spend_rollup WHERE span = $2 "
            f"AND model_alias = '*' AND key_hash {'<>' if key_hash is None else '='} $3 AND bucket_start >= $1"
        )
    pick = "m" if by_model else "k"
    text = (f"SELECT name, SUM(requests) AS requests, SUM(spend) AS spend FROM ({rolled} UNION ALL "
            f"SELECT {pick} AS name, requests, spend FROM ({unrolled}) AS u) AS t "
            f"GROUP BY name ORDER BY requests DESC, name LIMIT {int(limit)}")  # fmt: skip
    rows = await _rows(store, text, [start, step, key_hash or ALL, *args])
    if not by_model:  # '' is the master key in the rollup, NULL in the logs
        rows = [{**row, "name": row["name"] or None} for row in rows]
    return rows


async def _raw_top(store: Store, column: Literal["model_alias", "key_hash"], key_hash: str | None, start: int,
                   limit: int) -> list[dict[str, Any]]:  # fmt: skip
    where, args = _where(LogFilter(key_hash=key_hash, start=start))
    text = (f"SELECT {column} AS name, COUNT(*) AS requests, SUM(cost) AS spend FROM toolhub_spend_logs {where} "
            f"GROUP BY {column} ORDER BY requests DESC, name LIMIT {int(limit)}")  # fmt: skip
    return await _rows(store, text, args)
