"""The embedded store: one SQLite file through aiosqlite (a worker thread), in WAL mode."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import aiosqlite

from hub.storage import KeyRow, SpendQuery, StoreConflict, StoredToolCall, StoredUsage, StoreError, _sql as sql

_PARAM = re.compile(r"\$(\d+)")


def _q(text: str) -> str:
    """`$n` -> `?n`: SQLite's numbered parameters."""
    return _PARAM.sub(r"?\1", text)


class SqliteStore:
    """`Store` on a SQLite file; created with its directory on first start."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self._conn: aiosqlite.Connection | None = None

    async def connect(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = await aiosqlite.connect(self.path, isolation_level=None, timeout=10)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        self._conn = conn

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StoreError("the SQLite store is not connected")
        return self._conn

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def ping(self) -> None:
        await self._fetch("SELECT 1 AS one", [])

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        conn = self.conn
        try:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            raise StoreConflict(str(exc)) from exc
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite: {exc}") from exc

    async def _fetch(self, text: str, args: Sequence[Any]) -> list[sqlite3.Row]:
        try:
            async with self.conn.execute(_q(text), list(args)) as cursor:
                return list(await cursor.fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite: {exc}") from exc

    async def migrate(self) -> list[int]:
        applied: list[int] = []
        async with self._transaction() as conn:
            await conn.execute(sql.MIGRATIONS_TABLE)
            async with conn.execute("SELECT version FROM toolhub_migrations") as cursor:
                done = {row[0] for row in await cursor.fetchall()}
            for version, name, script in sql.migrations():
                if version in done:
                    continue
                for statement in sql.statements(script):
                    await conn.execute(statement)
                await conn.execute(_q(sql.RECORD_MIGRATION), [version, name, time.time()])
                applied.append(version)
        return applied

    async def insert_key(self, row: KeyRow) -> None:
        async with self._transaction() as conn:
            await conn.execute(_q(sql.INSERT_KEY), sql.key_params(row))

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
            await conn.execute(_q(text), [token_hash, *params])
        return await self.get_key(token_hash)

    async def delete_keys(self, token_hashes: Sequence[str]) -> list[str]:
        if not token_hashes:
            return []
        found: list[str] = []
        async with self._transaction() as conn:
            for token_hash in token_hashes:
                async with conn.execute(_q(sql.SELECT_KEY), [token_hash]) as cursor:
                    if await cursor.fetchone() is not None:
                        found.append(token_hash)
            await conn.execute(_q(sql.delete_keys_sql(len(token_hashes))), list(token_hashes))
        return found

    async def write_usage(self, rows: Sequence[StoredUsage]) -> None:
        async with self._transaction() as conn:
            await conn.executemany(_q(sql.INSERT_USAGE), [sql.usage_params(r) for r in rows])

    async def write_tool_calls(self, rows: Sequence[StoredToolCall]) -> None:
        async with self._transaction() as conn:
            await conn.executemany(_q(sql.INSERT_TOOL_CALL), [sql.tool_call_params(r) for r in rows])

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
