"""SQLite backend: one aiosqlite connection (read-only URI unless writes are allowed), interrupted at the timeout."""

from __future__ import annotations

import json
import math
import re
import sqlite3
import time
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiosqlite
import anyio

from tools.postgres_db._limits import Busy, Limits, RowCollector, busy_message
from tools.postgres_db._shared_open import SharedOpen
from tools.postgres_db._sqlite_policy import SQLITE_MAX_LENGTH, Authorizer, configure
from tools.postgres_db.databases import (
    DatabaseError,
    JSONValue,
    NotFound,
    QueryError,
    QueryResult,
    not_found,
    quote_ident,
    to_json_value,
)

_PROGRESS_STEPS = 1000
_FETCH_BATCH = 4  # rows held at once before cutting: each value may be up to SQLITE_MAX_LENGTH
DEFAULT_LIMITS = Limits()
_CHECK = re.compile(r'(?:\bCONSTRAINT\s+("(?:[^"]|"")+"|`[^`]+`|\[[^\]]+\]|\w+)\s+)?\bCHECK\s*\(', re.IGNORECASE)


class SqliteDatabase(SharedOpen):
    """A SQLite file reached through one aiosqlite connection; calls are serialised with a lock."""

    dialect = "sqlite"
    default_schema = "main"

    def __init__(
        self,
        path: str | Path,
        *,
        allow_writes: bool = False,
        statement_timeout: float = 30.0,
        limits: Limits = DEFAULT_LIMITS,
        allow_toolhub_tables: bool = False,
        seed: str | None = None,
    ) -> None:
        self.path = str(path)
        self.seed = seed
        """SQL run on every new connection before it is made read-only (fills an in-memory demo database)."""
        self.allow_writes = allow_writes
        self.statement_timeout = statement_timeout
        self.limits = limits
        self.allow_toolhub_tables = allow_toolhub_tables
        self._uri = _uri(self.path, allow_writes)
        self._conn: aiosqlite.Connection | None = None
        self._lock = anyio.Lock()
        self._authorizer = Authorizer(allow_writes=allow_writes, allow_toolhub_tables=allow_toolhub_tables)
        self._deadline = math.inf
        super().__init__()

    async def list_tables(self, schema: str | None) -> dict[str, JSONValue]:
        """List tables and views in an attached database (default "main")."""
        async with self._session() as conn:
            schema = await self._schema(conn, schema)
            rows = await _fetch(
                conn,
                "SELECT name, type, ncol AS columns FROM pragma_table_list WHERE schema = ? AND type <> 'shadow' "
                "AND name NOT LIKE 'sqlite!_%' ESCAPE '!' ORDER BY name",
                schema,
            )
        return {"schema": schema, "tables": rows}

    async def describe_table(self, table: str, schema: str | None) -> dict[str, JSONValue]:
        """Describe a table's columns (name, type, nullable, default, primary key)."""
        async with self._session() as conn:
            schema, table, kind = await self._resolve(conn, table, schema)
            columns = await _fetch(
                conn,
                # an INTEGER PRIMARY KEY is the rowid and can never be NULL, even without NOT NULL
                "SELECT name, type, NOT (\"notnull\" OR (pk > 0 AND upper(type) = 'INTEGER')) AS nullable, "
                'dflt_value AS "default", pk > 0 AS primary_key FROM pragma_table_xinfo(?, ?) ORDER BY cid',
                table,
                schema,
            )
        for column in columns:
            column["nullable"], column["primary_key"] = bool(column["nullable"]), bool(column["primary_key"])
        return {"schema": schema, "table": table, "type": kind, "columns": columns}

    async def table_constraints(self, table: str, schema: str | None) -> dict[str, JSONValue]:
        """Return the primary key, foreign keys, unique and check constraints (checks parsed from the DDL)."""
        async with self._session() as conn:
            schema, table, _ = await self._resolve(conn, table, schema)
            pk = await _fetch(conn, "SELECT name FROM pragma_table_info(?, ?) WHERE pk > 0 ORDER BY pk", table, schema)
            fks = await _fetch(
                conn,
                'SELECT id, "table", "from", "to", on_update, on_delete FROM pragma_foreign_key_list(?, ?) '
                "ORDER BY id, seq",
                table,
                schema,
            )
            unique = await self._unique_constraints(conn, table, schema)
            sql = await _value(conn, f"SELECT sql FROM {quote_ident(schema)}.sqlite_schema WHERE name = ?", table)
        return {
            "schema": schema,
            "table": table,
            "primary_key": {"name": None, "columns": [row["name"] for row in pk]} if pk else None,
            "foreign_keys": _group_foreign_keys(fks, schema),
            "unique": unique,
            "check": check_clauses(sql or ""),
        }

    async def table_stats(self, table: str, schema: str | None, exact_count: bool) -> dict[str, JSONValue]:
        """Return the exact row count, on-disk size (when dbstat exists) and the column list."""
        async with self._session() as conn:
            schema, table, kind = await self._resolve(conn, table, schema)
            count = await _value(conn, f"SELECT count(*) FROM {quote_ident(schema)}.{quote_ident(table)}")
            table_bytes = await _optional_value(conn, "SELECT sum(pgsize) FROM dbstat(?) WHERE name = ?", schema, table)
            index_bytes = await _optional_value(
                conn,
                "SELECT coalesce(sum(d.pgsize), 0) FROM dbstat(?1) AS d JOIN pragma_index_list(?2, ?1) AS i "
                "ON i.name = d.name",
                schema,
                table,
            )
            columns = await _fetch(conn, "SELECT name, type FROM pragma_table_info(?, ?) ORDER BY cid", table, schema)
        return {
            "schema": schema,
            "table": table,
            "type": kind,
            "row_count": count,
            "table_bytes": table_bytes,
            "index_bytes": index_bytes,
            "columns": columns,
            "note": "SQLite keeps no per-column statistics; row_count is exact.",
        }

    async def execute(self, sql: str, params: Sequence[JSONValue], max_rows: int) -> QueryResult:
        """Run one statement (read-only unless writes are allowed); collect rows up to `max_rows` and the byte limit."""
        async with self._session() as conn, conn.execute(sql, [_param(value) for value in params]) as cursor:
            if cursor.description is None:
                affected = cursor.rowcount
                status = f"{affected} row(s) affected" if affected >= 0 else "OK"
                return QueryResult([], [], truncated=False, status=status)
            columns = [str(column[0]) for column in cursor.description]
            collector = RowCollector(self.limits, max_rows)
            while not collector.full and (records := await cursor.fetchmany(_FETCH_BATCH)):
                for record in records:
                    if not collector.add([to_json_value(value) for value in record]):
                        break
        return collector.result(columns)

    async def _open_first(self) -> None:
        self._conn = await self._open()

    async def _close_last(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    async def _open(self) -> aiosqlite.Connection:
        """Connect (in aiosqlite's thread) with the length limit, query_only and authorizer set, then the timeout."""
        try:
            conn = await aiosqlite.Connection(self._connect, iter_chunk_size=64)
        except sqlite3.Error as exc:
            raise DatabaseError(f"Cannot open SQLite database {self.path!r}: {exc}") from exc
        await conn.set_progress_handler(self._past_deadline, _PROGRESS_STEPS)
        return conn

    def _connect(self) -> sqlite3.Connection:
        """Open and configure the sqlite3 connection; runs in aiosqlite's worker thread."""
        conn = sqlite3.connect(self._uri, uri=True, isolation_level=None)
        try:
            if self.seed is not None:
                conn.executescript(self.seed)
            configure(conn, self._authorizer, max_length=max(SQLITE_MAX_LENGTH, self.limits.max_value_bytes))
        except BaseException:
            conn.close()
            raise
        return conn

    def _past_deadline(self) -> int:
        """Progress handler: a non-zero return makes SQLite abort the running statement ("interrupted")."""
        return 1 if time.monotonic() > self._deadline else 0

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[aiosqlite.Connection]:
        """Yield the connection under the lock (queueing at most the queue timeout) with the deadline armed.

        Raises:
            Busy: another statement held the connection for the whole queue timeout.
            QueryError: SQLite refused or failed the statement.
        """
        if self._conn is None:
            raise DatabaseError("The database connection is not open.")
        with anyio.move_on_after(self.limits.queue_timeout) as scope:
            await self._lock.acquire()
        if scope.cancelled_caught:
            raise Busy(busy_message(replace(self.limits, max_concurrent_queries=1)))
        self._deadline = time.monotonic() + self.statement_timeout
        self._authorizer.denial = None
        try:
            yield self._conn
        except sqlite3.Error as exc:
            raise QueryError(self._message(exc)) from exc
        finally:
            self._deadline = math.inf
            self._lock.release()

    def _message(self, exc: sqlite3.Error) -> str:
        """Render a SQLite error with a note when it comes from this server's limits."""
        message = f"{type(exc).__name__}: {exc}"
        if str(exc) == "interrupted":
            return f"{message} (statement timeout of {self.statement_timeout:g} s exceeded)"
        if "too big" in str(exc):
            return f"{message} (this server limits strings and blobs to {SQLITE_MAX_LENGTH} bytes)"
        if self._authorizer.denial is not None:
            return f"{message} ({self._authorizer.denial})"
        if not self.allow_writes and ("readonly" in str(exc) or "not authorized" in str(exc)):
            return f"{message} (this server is read-only; it must be started with --allow-writes to change data)"
        return message

    async def _schema(self, conn: aiosqlite.Connection, schema: str | None) -> str:
        """Return the attached database name to use, or raise NotFound."""
        schema = schema or self.default_schema
        if await _value(conn, "SELECT name FROM pragma_database_list WHERE name = ?", schema) is None:
            raise NotFound(f"Schema (attached database) {schema!r} not found.")
        return schema

    async def _resolve(self, conn: aiosqlite.Connection, table: str, schema: str | None) -> tuple[str, str, str]:
        """Find a table or view by name (SQLite names are case-insensitive) and return its canonical spelling."""
        schema = await self._schema(conn, schema)
        rows = await _fetch(
            conn, "SELECT name, type FROM pragma_table_list WHERE schema = ? AND name = ? COLLATE NOCASE", schema, table
        )
        if not rows:
            raise not_found(table, schema)
        return schema, str(rows[0]["name"]), str(rows[0]["type"])

    async def _unique_constraints(self, conn: aiosqlite.Connection, table: str, schema: str) -> list[JSONValue]:
        """List UNIQUE constraints (indexes with origin "u") with their columns."""
        indexes = await _fetch(
            conn, "SELECT name FROM pragma_index_list(?, ?) WHERE origin = 'u' ORDER BY name", table, schema
        )
        result: list[JSONValue] = []
        for index in indexes:
            columns = await _fetch(
                conn, "SELECT name FROM pragma_index_info(?, ?) ORDER BY seqno", index["name"], schema
            )
            result.append({"name": index["name"], "columns": [column["name"] for column in columns]})
        return result


def check_clauses(sql: str) -> list[dict[str, JSONValue]]:
    """Extract `[CONSTRAINT name] CHECK (...)` clauses from a CREATE TABLE statement."""
    clauses: list[dict[str, JSONValue]] = []
    for match in _CHECK.finditer(sql):
        end = _closing_paren(sql, match.end() - 1)
        if end is not None:
            name = match.group(1)
            clauses.append(
                {"name": _unquote(name) if name else None, "definition": f"CHECK {sql[match.end() - 1 : end + 1]}"}
            )
    return clauses


def _closing_paren(text: str, start: int) -> int | None:
    """Return the index of the parenthesis closing the one at `start`, skipping quoted text."""
    depth, quote = 0, ""
    for index in range(start, len(text)):
        char = text[index]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"`":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
    return None


def _unquote(name: str) -> str:
    """Strip SQLite identifier quotes ("x", `x`, [x])."""
    if name[:1] in '"`[':
        return name[1:-1].replace('""', '"') if name[0] == '"' else name[1:-1]
    return name


def _group_foreign_keys(rows: list[dict[str, JSONValue]], schema: str) -> list[JSONValue]:
    """Fold pragma_foreign_key_list rows (one per column) into one entry per constraint."""
    grouped: dict[int, dict[str, Any]] = {}
    for row in rows:
        fk = grouped.setdefault(
            int(row["id"]),
            {
                "name": None,
                "columns": [],
                "references": {"schema": schema, "table": row["table"], "columns": []},
                "on_update": row["on_update"],
                "on_delete": row["on_delete"],
            },
        )
        fk["columns"].append(row["from"])
        fk["references"]["columns"].append(row["to"])
    return list(grouped.values())


def _uri(path: str, allow_writes: bool) -> str:
    """Build the `file:` URI: mode=ro when read-only, mode=rwc (create if missing) when writes are allowed."""
    if path == ":memory:":
        return "file::memory:"
    mode = "rwc" if allow_writes else "ro"
    return f"file:{urllib.parse.quote(str(Path(path).absolute()))}?mode={mode}"


def _param(value: JSONValue) -> Any:
    """Bind JSON values: booleans as 0/1, arrays and objects as JSON text."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


async def _fetch(conn: aiosqlite.Connection, sql: str, *params: Any) -> list[dict[str, JSONValue]]:
    """Run a catalog query and return rows as dicts."""
    async with conn.execute(sql, params) as cursor:
        names = [str(column[0]) for column in cursor.description]
        return [dict(zip(names, (to_json_value(v) for v in row), strict=True)) for row in await cursor.fetchall()]


async def _value(conn: aiosqlite.Connection, sql: str, *params: Any) -> Any:
    """Run a query and return the first column of the first row, or None."""
    async with conn.execute(sql, params) as cursor:
        row = await cursor.fetchone()
    return None if row is None else row[0]


async def _optional_value(conn: aiosqlite.Connection, sql: str, *params: Any) -> Any:
    """Like `_value`, but None when the query needs an optional feature (such as dbstat) that is missing."""
    try:
        return await _value(conn, sql, *params)
    except sqlite3.OperationalError:
        return None
