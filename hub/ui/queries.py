"""Read-only queries the admin API lacks: spend logs filtered by status, and time buckets for the Overview charts.

They run on the store's own query primitive (`SqlStore._fetch`, shared by SQLite and PostgreSQL), over the columns
and indexes of `hub/storage/migrations`, and never write. Every query is limited to one key when the session is a
virtual key's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from hub.storage import Store
from hub.storage._sql import SPEND_COLUMNS

Status = Literal["success", "failure"]


@dataclass(frozen=True, slots=True)
class LogFilter:
    key_hash: str | None = None
    model: str | None = None
    status: Status | None = None
    start: float | None = None
    end: float | None = None


def _where(f: LogFilter, *, scan: bool = False) -> tuple[str, list[Any]]:
    """The WHERE clause; `scan` keeps SQLite off the time index (unary `+`), as reading most of the table through
    it costs a lookup per row (a no-op on PostgreSQL, whose planner weighs this itself)."""
    clauses: list[str] = []
    args: list[Any] = []
    since = "+created_at >= " if scan else "created_at >= "
    for clause, value in (("key_hash = ", f.key_hash), ("model_alias = ", f.model), (since, f.start),
                          ("created_at < ", f.end)):  # fmt: skip
        if value is not None:
            args.append(value)
            clauses.append(f"{clause}${len(args)}")
    if f.status is not None:
        clauses.append("status_code = 200" if f.status == "success" else "status_code <> 200")
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", args


async def _fetch(store: Store, text: str, args: list[Any]) -> list[dict[str, Any]]:
    fetch = store._fetch  # pyright: ignore[reportAttributeAccessIssue]: both SQL stores have it (hub/storage/_base.py)
    return [dict(row) for row in await fetch(text, args)]


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
    rows = await _fetch(store, text, [*args, limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return (rows[::-1] if after else rows), more


async def count_logs(store: Store, f: LogFilter) -> int:
    """How many rows match, counted up to COUNT_CAP + 1."""
    where, args = _where(f)
    text = f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM toolhub_spend_logs {where} LIMIT {COUNT_CAP + 1}) AS capped"
    return int((await _fetch(store, text, args))[0]["n"])


async def tool_calls_of(store: Store, request_ids: list[str]) -> list[dict[str, Any]]:
    """The tool calls made while serving these requests."""
    if not request_ids:
        return []
    marks = ", ".join(f"${i}" for i in range(1, len(request_ids) + 1))
    text = ("SELECT request_id, server, tool, duration_ms, error, created_at FROM toolhub_tool_calls "
            f"WHERE request_id IN ({marks}) ORDER BY created_at")  # fmt: skip
    return await _fetch(store, text, request_ids)


async def series(store: Store, key_hash: str | None, start: float, step: int) -> list[dict[str, Any]]:
    """Requests, errors, spend and mean latency per `step` seconds since `start`."""
    where, args = _where(LogFilter(key_hash=key_hash, start=start), scan=_wide(start))
    n = len(args)
    text = (f"SELECT (CAST(created_at AS BIGINT) - ${n + 1}) / ${n + 2} AS bucket, COUNT(*) AS requests, "
            "SUM(CASE WHEN status_code <> 200 THEN 1 ELSE 0 END) AS errors, SUM(cost) AS spend, "
            f"AVG(latency_ms) AS latency_ms FROM toolhub_spend_logs {where} "
            "GROUP BY bucket ORDER BY bucket")  # fmt: skip
    return await _fetch(store, text, [*args, int(start), step])


async def top(store: Store, column: Literal["model_alias", "key_hash"], key_hash: str | None, start: float,
              limit: int = 5) -> list[dict[str, Any]]:  # fmt: skip
    """The `limit` models or keys with the most requests since `start`."""
    where, args = _where(LogFilter(key_hash=key_hash, start=start), scan=_wide(start))
    text = (f"SELECT {column} AS name, COUNT(*) AS requests, SUM(cost) AS spend FROM toolhub_spend_logs {where} "
            f"GROUP BY {column} ORDER BY requests DESC LIMIT {int(limit)}")  # fmt: skip
    return await _fetch(store, text, args)


def _wide(start: float) -> bool:
    """Whether a range reaches back far enough that a table scan beats the time index (more than two days)."""
    return time.time() - start > 2 * 86400
