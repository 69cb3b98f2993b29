"""The SQL both backends share: queries written once with `$n` parameters, row mapping, the migration runner."""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import fields
from importlib import resources
from typing import Any, Literal

import orjson

from hub.storage import KeyRow, SpendQuery, StoredToolCall, StoredUsage

KEY_COLUMNS = tuple(f.name for f in fields(KeyRow))
_JSON_COLUMNS = frozenset({"models", "mcp_servers", "mcp_tools", "metadata"})
SPEND_COLUMNS = ("id", "request_id", "key_hash", "model_alias", "upstream_model", "provider", "prompt_tokens",
                 "completion_tokens", "cached_tokens", "reasoning_tokens", "cost", "latency_ms", "upstream_ms",
                 "status_code", "stream", "error", "tool_calls", "created_at", "day", "answered_group", "api_base",
                 "retries", "fallbacks", "cache_hit")  # fmt: skip
TOOL_COLUMNS = ("id", "request_id", "key_hash", "server", "tool", "duration_ms", "error", "created_at")

MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS toolhub_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"""


def insert(table: str, columns: Sequence[str], conflict: str = "") -> str:
    params = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({params}){conflict}"


INSERT_KEY = insert("toolhub_keys", KEY_COLUMNS)
INSERT_USAGE = insert("toolhub_spend_logs", SPEND_COLUMNS, " ON CONFLICT (id) DO NOTHING")
INSERT_TOOL_CALL = insert("toolhub_tool_calls", TOOL_COLUMNS, " ON CONFLICT (id) DO NOTHING")
SELECT_KEY = f"SELECT {', '.join(KEY_COLUMNS)} FROM toolhub_keys WHERE token_hash = $1"
SELECT_KEY_BY_ALIAS = f"SELECT {', '.join(KEY_COLUMNS)} FROM toolhub_keys WHERE key_alias = $1"
SPEND_SINCE = (  # the logs, plus the daily aggregates of logs past retention (a whole day counts if it overlaps)
    "SELECT COALESCE((SELECT SUM(cost) FROM toolhub_spend_logs WHERE key_hash = $1 AND created_at >= $2), 0) + "
    "COALESCE((SELECT SUM(spend) FROM toolhub_spend_daily "
    "WHERE key_hash = $1 AND day_start > CAST($2 AS DOUBLE PRECISION) - 86400), 0) "
    "AS total"
)
RECORD_MIGRATION = "INSERT INTO toolhub_migrations (version, name, applied_at) VALUES ($1, $2, $3)"


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, SQL) of every file in `migrations/`, in order; files are named `NNNN_name.sql`."""
    found: list[tuple[int, str, str]] = []
    for entry in resources.files("hub.storage").joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append((int(number), rest.removesuffix(".sql"), entry.read_text(encoding="utf-8")))
    return sorted(found)


def statements(script: str) -> list[str]:
    """Split a migration into statements (no semicolons inside our SQL literals)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def key_params(row: KeyRow) -> list[Any]:
    return [_to_db(name, getattr(row, name)) for name in KEY_COLUMNS]


def key_from_db(row: Mapping[str, Any]) -> KeyRow:
    values = {name: _from_db(name, row[name]) for name in KEY_COLUMNS}
    return KeyRow(**values)


def update_key_sql(changes: Mapping[str, Any]) -> tuple[str, list[Any]]:
    names = [n for n in changes if n in KEY_COLUMNS and n != "token_hash"]
    sets = ", ".join(f"{n} = ${i}" for i, n in enumerate([*names, "updated_at"], start=2))
    params = [_to_db(n, changes[n]) for n in names] + [time.time()]
    return f"UPDATE toolhub_keys SET {sets} WHERE token_hash = $1", params


def list_keys_sql(alias: str | None, limit: int, offset: int) -> tuple[str, str, list[Any], list[Any]]:
    where, args = ("WHERE key_alias = $1", [alias]) if alias is not None else ("", [])
    n = len(args)
    rows = (f"SELECT {', '.join(KEY_COLUMNS)} FROM toolhub_keys {where} ORDER BY created_at, token_hash "
            f"LIMIT ${n + 1} OFFSET ${n + 2}")  # fmt: skip
    return rows, f"SELECT COUNT(*) AS n FROM toolhub_keys {where}", [*args, limit, offset], args


def delete_keys_sql(count: int) -> str:
    marks = ", ".join(f"${i}" for i in range(1, count + 1))
    return f"DELETE FROM toolhub_keys WHERE token_hash IN ({marks})"


def usage_params(item: StoredUsage) -> list[Any]:
    r = item.record
    day = _utc_day(int(r.created_at // 86_400))
    return [item.id, r.request_id, r.key_id, r.model_alias, r.upstream_model, r.provider, r.prompt_tokens,
            r.completion_tokens, r.cached_tokens, r.reasoning_tokens, r.cost, r.latency_ms, r.upstream_ms,
            r.status_code, int(r.stream), r.error, len(r.tool_calls), r.created_at, day, r.answered_group or None,
            r.api_base or None, r.retries, r.fallbacks, int(r.cache_hit)]  # fmt: skip


@functools.lru_cache(maxsize=16)
def _utc_day(days: int) -> str:
    """`YYYY-MM-DD` of the UTC day `days` days after the epoch, as `strftime` of `gmtime` of a time in that day:
    ~0.8 us a spend-log row with the two calls each time, ~0.15 with the rows of a day sharing one."""
    return time.strftime("%Y-%m-%d", time.gmtime(days * 86_400))


def tool_call_params(item: StoredToolCall) -> list[Any]:
    c = item.call
    return [item.id, c.request_id, c.key_id, c.server, c.tool, c.duration_ms, c.error, c.created_at]


def _spend_where(
    key_hash: str | None, model: str | None, start: float | None, end: float | None
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    for clause, value in (("key_hash = ", key_hash), ("model_alias = ", model), ("created_at >= ", start),
                          ("created_at < ", end)):  # fmt: skip
        if value is not None:
            args.append(float(value) if clause.startswith("created_at") else value)
            clauses.append(f"{clause}${len(args)}")
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", args


def spend_logs_sql(query: SpendQuery) -> tuple[str, str, list[Any], list[Any]]:
    where, args = _spend_where(query.key_hash, query.model, query.start, query.end)
    n = len(args)
    rows = (f"SELECT {', '.join(SPEND_COLUMNS)} FROM toolhub_spend_logs {where} ORDER BY created_at DESC, id "
            f"LIMIT ${n + 1} OFFSET ${n + 2}")  # fmt: skip
    return rows, f"SELECT COUNT(*) AS n FROM toolhub_spend_logs {where}", [*args, query.limit, query.offset], args


def daily_spend_sql(group_by: Literal["key", "model"], start: float | None, end: float | None,
                    key_hash: str | None) -> tuple[str, list[Any]]:  # fmt: skip
    """Per day and key or model: the spend logs, plus the daily aggregates of logs past retention (migration 4)."""
    column = "key_hash" if group_by == "key" else "model_alias"
    rolled_column = "NULLIF(key_hash, '')" if group_by == "key" else "model_alias"
    where, args = _spend_where(key_hash, None, start, end)
    rolled_where, rolled_args = _rolled_where(key_hash, start, end, len(args))
    sums = ("SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens, "
            "SUM(cached_tokens) AS cached_tokens")  # fmt: skip
    sql = (f"SELECT day, grp, CAST(SUM(requests) AS BIGINT) AS requests, SUM(spend) AS spend, "
           "CAST(SUM(prompt_tokens) AS BIGINT) AS prompt_tokens, "
           "CAST(SUM(completion_tokens) AS BIGINT) AS completion_tokens, "
           "CAST(SUM(cached_tokens) AS BIGINT) AS cached_tokens FROM ("
           f"SELECT day, {column} AS grp, COUNT(*) AS requests, SUM(cost) AS spend, {sums} "
           f"FROM toolhub_spend_logs {where} GROUP BY day, {column} UNION ALL "
           f"SELECT day, {rolled_column} AS grp, requests, spend, prompt_tokens, completion_tokens, cached_tokens "
           f"FROM toolhub_spend_daily {rolled_where}) AS logged GROUP BY day, grp ORDER BY day, grp")  # fmt: skip
    return sql, [*args, *rolled_args]


def _rolled_where(key_hash: str | None, start: float | None, end: float | None, n: int) -> tuple[str, list[Any]]:
    """The daily aggregates' filter: days that overlap [start, end)."""
    clauses: list[str] = []
    args: list[Any] = []
    since = None if start is None else float(start) - 86400
    for clause, value in (("key_hash = ", key_hash), ("day_start > ", since), ("day_start < ", end)):
        if value is not None:
            args.append(value if clause.startswith("key") else float(value))
            clauses.append(f"{clause}${n + len(args)}")
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", args


TOOL_CALLS = f"SELECT {', '.join(TOOL_COLUMNS)} FROM toolhub_tool_calls ORDER BY created_at DESC, id LIMIT $1"


def _to_db(name: str, value: Any) -> Any:
    if name in _JSON_COLUMNS:
        return None if value is None else orjson.dumps(value).decode()
    if name == "blocked":
        return int(bool(value))
    return value


def _from_db(name: str, value: Any) -> Any:
    if name in _JSON_COLUMNS:
        return None if value is None else orjson.loads(value)
    if name == "blocked":
        return bool(value)
    return value
