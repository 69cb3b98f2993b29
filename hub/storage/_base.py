"""What the SQL stores share: every `Store` method whose logic is the same on SQLite and PostgreSQL.

A backend supplies the driver calls: `_fetch` (a query outside any transaction) and `_execute` / `_execute_many` (one
statement, or one statement over many parameter rows, in a transaction of its own, failures mapped to StoreError /
StoreConflict). Statements use `$n` parameters; the SQLite backend rewrites them. Modules outside hub/storage that
keep their own tables run their SQL through the public `fetch` / `execute` / `execute_many` of the `Store` protocol.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import orjson

from hub.storage import KeyRow, SpendQuery, StoredResponse, StoredToolCall, StoredUsage, _sql as sql


class SqlStore:
    """Base of `SqliteStore` and `PostgresStore`: the queries, over three driver-specific primitives."""

    async def _fetch(self, text: str, args: Sequence[Any]) -> Sequence[Any]:
        """The rows of one query; each row reads by column name (`row["n"]`, `dict(row)`)."""
        raise NotImplementedError

    async def _execute(self, text: str, args: Sequence[Any]) -> None:
        """Run one statement in its own transaction."""
        raise NotImplementedError

    async def _execute_many(self, text: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per parameter row, all in one transaction."""
        raise NotImplementedError

    async def fetch(self, text: str, args: Sequence[Any]) -> Sequence[Any]:
        return await self._fetch(text, args)

    async def execute(self, text: str, args: Sequence[Any]) -> None:
        await self._execute(text, args)

    async def execute_many(self, text: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._execute_many(text, rows)

    async def ping(self) -> None:
        await self._fetch("SELECT 1 AS one", [])

    async def insert_key(self, row: KeyRow) -> None:
        await self._execute(sql.INSERT_KEY, sql.key_params(row))

    async def get_key(self, token_hash: str) -> KeyRow | None:
        rows = await self._fetch(sql.SELECT_KEY, [token_hash])
        return sql.key_from_db(rows[0]) if rows else None

    async def find_key_by_alias(self, alias: str) -> KeyRow | None:
        rows = await self._fetch(sql.SELECT_KEY_BY_ALIAS, [alias])
        return sql.key_from_db(rows[0]) if rows else None

    async def list_keys(self, *, alias: str | None, limit: int, offset: int) -> tuple[list[KeyRow], int]:
        rows_sql, count_sql, args, count_args = sql.list_keys_sql(alias, limit, offset)
        rows = await self._fetch(rows_sql, args)
        total = await self._fetch(count_sql, count_args)
        return [sql.key_from_db(r) for r in rows], int(total[0]["n"])

    async def update_key(self, token_hash: str, changes: Mapping[str, Any]) -> KeyRow | None:
        text, params = sql.update_key_sql(changes)
        await self._execute(text, [token_hash, *params])
        return await self.get_key(token_hash)

    async def write_usage(self, rows: Sequence[StoredUsage]) -> None:
        await self._execute_many(sql.INSERT_USAGE, [sql.usage_params(r) for r in rows])

    async def write_tool_calls(self, rows: Sequence[StoredToolCall]) -> None:
        await self._execute_many(sql.INSERT_TOOL_CALL, [sql.tool_call_params(r) for r in rows])

    async def spend_since(self, token_hash: str, since: float) -> float:
        rows = await self._fetch(sql.SPEND_SINCE, [token_hash, since])
        return float(rows[0]["total"])

    async def spend_logs(self, query: SpendQuery) -> tuple[list[dict[str, Any]], int]:
        rows_sql, count_sql, args, count_args = sql.spend_logs_sql(query)
        rows = await self._fetch(rows_sql, args)
        total = await self._fetch(count_sql, count_args)
        return [dict(r) for r in rows], int(total[0]["n"])

    async def daily_spend(
        self, group_by: Literal["key", "model"], *, start: float | None, end: float | None, key_hash: str | None
    ) -> list[dict[str, Any]]:
        text, args = sql.daily_spend_sql(group_by, start, end, key_hash)
        return [dict(r) for r in await self._fetch(text, args)]

    async def tool_calls(self, *, limit: int) -> list[dict[str, Any]]:
        return [dict(r) for r in await self._fetch(sql.TOOL_CALLS, [limit])]

    # --- Stored responses (hub/api/responses; migration 0003_responses.sql) ---

    async def save_response(self, row: StoredResponse) -> None:
        documents = [orjson.dumps(value).decode() for value in (row.response, row.input_items, row.messages)]
        await self._execute(_INSERT_RESPONSE, [row.id, row.key_hash, row.created_at, *documents])

    async def get_response(self, response_id: str) -> StoredResponse | None:
        rows = await self._fetch(_SELECT_RESPONSE, [response_id])
        if not rows:
            return None
        row = rows[0]
        return StoredResponse(row["id"], row["key_hash"], float(row["created_at"]), orjson.loads(row["response"]),
                              orjson.loads(row["input_items"]), orjson.loads(row["messages"]))  # fmt: skip

    async def delete_response(self, response_id: str) -> None:
        await self._execute("DELETE FROM toolhub_responses WHERE id = $1", [response_id])

    async def delete_responses_before(self, created_before: float) -> None:
        await self._execute("DELETE FROM toolhub_responses WHERE created_at < $1", [created_before])


_INSERT_RESPONSE = (
    "INSERT INTO toolhub_responses (id, key_hash, created_at, response, input_items, messages) "
    "VALUES ($1, $2, $3, $4, $5, $6)"
)
_SELECT_RESPONSE = (
    "SELECT id, key_hash, created_at, response, input_items, messages FROM toolhub_responses WHERE id = $1"
)
