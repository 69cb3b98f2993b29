"""The production store: PostgreSQL through an asyncpg pool."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Literal

import asyncpg

from hub.storage import KeyRow, SpendQuery, StoreConflict, StoredToolCall, StoredUsage, StoreError, _sql as sql

_FAILURES = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


class PostgresStore:
    """`Store` on PostgreSQL; `schema` sets the search_path of every connection (tests use a fresh one each)."""

    def __init__(self, url: str, *, schema: str | None = None, max_size: int = 5) -> None:
        self.url = url
        self.schema = schema
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None

    async def connect(self) -> None:
        settings = {"search_path": self.schema} if self.schema else None
        try:
            self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self._max_size, timeout=5,
                                                   command_timeout=10, server_settings=settings)  # fmt: skip
        except _FAILURES as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError("the PostgreSQL store is not connected")
        return self._pool

    async def aclose(self) -> None:
        if self._pool is not None:
            with contextlib.suppress(*_FAILURES):
                await self._pool.close()
            self._pool = None

    async def ping(self) -> None:
        await self._fetch("SELECT 1 AS one", [])

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                yield conn
        except asyncpg.UniqueViolationError as exc:
            raise StoreConflict(str(exc)) from exc
        except _FAILURES as exc:
            raise StoreError(f"PostgreSQL: {exc}") from exc

    async def _fetch(self, text: str, args: Sequence[Any]) -> list[asyncpg.Record]:
        try:
            return await self.pool.fetch(text, *args)
        except _FAILURES as exc:
            raise StoreError(f"PostgreSQL: {exc}") from exc

    async def migrate(self) -> list[int]:
        applied: list[int] = []
        async with self._transaction() as conn:
            # Several Toolhub processes may start at once against one database.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.toolhub_migrations'))")
            await conn.execute(sql.MIGRATIONS_TABLE)
            done = {row["version"] for row in await conn.fetch("SELECT version FROM toolhub_migrations")}
            for version, name, script in sql.migrations():
                if version in done:
                    continue
                for statement in sql.statements(script):
                    await conn.execute(statement)
                await conn.execute(sql.RECORD_MIGRATION, version, name, time.time())
                applied.append(version)
        return applied

    async def insert_key(self, row: KeyRow) -> None:
        async with self._transaction() as conn:
            await conn.execute(sql.INSERT_KEY, *sql.key_params(row))

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
        async with self._transaction() as conn:
            await conn.execute(text, token_hash, *params)
        return await self.get_key(token_hash)

    async def delete_keys(self, token_hashes: Sequence[str]) -> list[str]:
        if not token_hashes:
            return []
        async with self._transaction() as conn:
            rows = await conn.fetch("DELETE FROM toolhub_keys WHERE token_hash = ANY($1::text[]) RETURNING token_hash",
                                    list(token_hashes))  # fmt: skip
        found = {r["token_hash"] for r in rows}
        return [h for h in token_hashes if h in found]

    async def write_usage(self, rows: Sequence[StoredUsage]) -> None:
        async with self._transaction() as conn:
            await conn.executemany(sql.INSERT_USAGE, [sql.usage_params(r) for r in rows])

    async def write_tool_calls(self, rows: Sequence[StoredToolCall]) -> None:
        async with self._transaction() as conn:
            await conn.executemany(sql.INSERT_TOOL_CALL, [sql.tool_call_params(r) for r in rows])

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
