"""The production store: PostgreSQL through an asyncpg pool."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import asyncpg

from hub.storage import StoreConflict, StoredUsage, StoreError, _sql as sql, rollup
from hub.storage._base import SqlStore

_FAILURES = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
_SPEND_TYPES = {"prompt_tokens": "bigint", "completion_tokens": "bigint", "cached_tokens": "bigint",
                "reasoning_tokens": "bigint", "cost": "float8", "latency_ms": "float8", "upstream_ms": "float8",
                "created_at": "float8", "status_code": "int", "stream": "int", "tool_calls": "int", "retries": "int",
                "fallbacks": "int", "cache_hit": "int"}  # fmt: skip
"""The spend-log columns that are not TEXT, for the column arrays `write_usage` unnests."""
_UNNEST = ", ".join(f"${n}::{_SPEND_TYPES.get(c, 'text')}[]" for n, c in enumerate(sql.SPEND_COLUMNS, start=1))
_WRITE_FOLDED = rollup.pg_write_folded(f"INSERT INTO toolhub_spend_logs ({', '.join(sql.SPEND_COLUMNS)}, rolled) "
                                       f"SELECT *, 1 FROM unnest({_UNNEST}) ON CONFLICT (id) DO NOTHING")  # fmt: skip


class PostgresStore(SqlStore):
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

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                yield cast(asyncpg.Connection, conn)  # the pool hands out a proxy with Connection's interface
        except asyncpg.UniqueViolationError as exc:
            raise StoreConflict(str(exc)) from exc
        except _FAILURES as exc:
            raise StoreError(f"PostgreSQL: {exc}") from exc

    async def _fetch(self, text: str, args: Sequence[Any]) -> list[asyncpg.Record]:
        try:
            return await self.pool.fetch(text, *args)
        except _FAILURES as exc:
            raise StoreError(f"PostgreSQL: {exc}") from exc

    async def _execute(self, text: str, args: Sequence[Any]) -> None:
        async with self._transaction() as conn:
            await conn.execute(text, *args)

    async def _execute_many(self, text: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self._transaction() as conn:
            await conn.executemany(text, rows)

    async def write_usage(self, rows: Sequence[StoredUsage]) -> None:
        """Logs are written folded into the console's rollup (hub/storage/rollup.py), in one statement: inserted
        `rolled = 1` (an id stored before is skipped, so a replay counts nothing twice), and the rows the INSERT's
        RETURNING names added to their buckets. One column array a parameter: one prepared statement whatever the
        batch's size. Rows go in id order: two processes writing overlapping batches (a spill file replayed by both)
        then take their row locks in one order instead of deadlocking."""
        unique = sorted({row.id: row for row in rows}.values(), key=lambda row: row.id)
        columns = [list(column) for column in zip(*(sql.usage_params(row) for row in unique), strict=True)]
        if columns:
            async with self._transaction() as conn:
                await conn.execute(_WRITE_FOLDED, *columns)

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

    async def delete_keys(self, token_hashes: Sequence[str]) -> list[str]:
        if not token_hashes:
            return []
        async with self._transaction() as conn:
            rows = await conn.fetch("DELETE FROM toolhub_keys WHERE token_hash = ANY($1::text[]) RETURNING token_hash",
                                    list(token_hashes))  # fmt: skip
        found = {r["token_hash"] for r in rows}
        return [h for h in token_hashes if h in found]
