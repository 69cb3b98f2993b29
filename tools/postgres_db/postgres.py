"""PostgreSQL backend: an asyncpg pool, catalog queries with bound parameters, read-only transactions by default."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
from asyncpg.prepared_stmt import PreparedStatement

from tools.postgres_db import _pg_catalog as catalog
from tools.postgres_db._limits import Busy, Limits, RowCollector, busy_message
from tools.postgres_db._pg_bounded import bounded_select, unwrap_row
from tools.postgres_db._pg_params import coerce_params
from tools.postgres_db._pg_policy import Statement, check_statement
from tools.postgres_db._pg_role import check_role
from tools.postgres_db._shared_open import SharedOpen
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

CONNECT_TIMEOUT = 10.0
"""Seconds allowed to open a connection."""

EXACT_COUNT_MAX_BYTES = 64 * 1024 * 1024
"""Tables smaller than this on disk get an exact `count(*)` even when the caller did not ask for one."""

DEFAULT_LIMITS = Limits()

logger = logging.getLogger(__name__)

_FETCH_BATCH = 50

_READ_ONLY_VIOLATION = "25006"
_QUERY_CANCELED = "57014"


class AsyncpgDatabase(SharedOpen):
    """A PostgreSQL database reached through a small asyncpg pool opened by `connected()`.

    The pool opens only for a role that can just read (see `_pg_role`), and every statement passes `_pg_policy`.
    """

    dialect = "postgresql"

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "public",
        allow_writes: bool = False,
        statement_timeout: float = 30.0,
        limits: Limits = DEFAULT_LIMITS,
        allow_unsafe_role: bool = False,
        allow_toolhub_tables: bool = False,
    ) -> None:
        self.dsn = dsn
        self.default_schema = schema
        self.allow_writes = allow_writes
        self.statement_timeout = statement_timeout
        self.limits = limits
        self.allow_unsafe_role = allow_unsafe_role
        self.allow_toolhub_tables = allow_toolhub_tables
        self.max_pool_size = limits.max_concurrent_queries + 1  # one connection stays free for the catalog tools
        self._pool: asyncpg.Pool | None = None
        super().__init__()

    async def _open_first(self) -> None:
        """Open the pool; if the database is down, log it and let `_open_pool` retry on the next call."""
        try:
            self._pool = await self._create_pool()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            logger.warning("PostgreSQL is not reachable yet (%s); retrying on the next tool call", exc)

    async def _close_last(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def list_tables(self, schema: str | None) -> dict[str, JSONValue]:
        """List tables, views and materialized views in a schema."""
        schema = schema or self.default_schema
        async with self._transaction() as conn:
            if await conn.fetchval(catalog.SCHEMA_EXISTS, schema) is None:
                raise NotFound(f"Schema {schema!r} not found.")
            rows = await conn.fetch(catalog.LIST_TABLES, schema)
        return {"schema": schema, "tables": [_record(row) for row in rows]}

    async def describe_table(self, table: str, schema: str | None) -> dict[str, JSONValue]:
        """Describe a table's columns (name, type, nullable, default, primary key, comment)."""
        async with self._transaction() as conn:
            oid, schema, table = await self._resolve(conn, table, schema)
            kind = await conn.fetchval(catalog.RELATION_KIND, oid)
            columns = await conn.fetch(catalog.COLUMNS, oid)
            comment = await conn.fetchval("SELECT obj_description($1::oid, 'pg_class')", oid)
        return {
            "schema": schema,
            "table": table,
            "type": kind,
            "comment": comment,
            "columns": [_record(row) for row in columns],
        }

    async def table_constraints(self, table: str, schema: str | None) -> dict[str, JSONValue]:
        """Return the primary key, foreign keys, unique and check constraints of a table."""
        async with self._transaction() as conn:
            oid, schema, table = await self._resolve(conn, table, schema)
            rows = [_record(row) for row in await conn.fetch(catalog.CONSTRAINTS, oid)]
        by_kind: dict[str, list[dict[str, JSONValue]]] = {"p": [], "f": [], "u": [], "c": [], "x": []}
        for row in rows:
            by_kind.setdefault(row.pop("kind"), []).append(row)
        for fk in by_kind["f"]:
            fk["references"] = {k: fk.pop(f"ref_{k}") for k in ("schema", "table", "columns")}
        for row in by_kind["u"] + by_kind["c"] + by_kind["p"] + by_kind["x"]:
            for key in ("ref_schema", "ref_table", "ref_columns", "on_update", "on_delete"):
                row.pop(key)
        for row in by_kind["c"]:
            row.pop("columns")
        return {
            "schema": schema,
            "table": table,
            "primary_key": by_kind["p"][0] if by_kind["p"] else None,
            "foreign_keys": by_kind["f"],
            "unique": by_kind["u"],
            "check": by_kind["c"],
            "exclusion": by_kind["x"],
        }

    async def table_stats(self, table: str, schema: str | None, exact_count: bool) -> dict[str, JSONValue]:
        """Return estimated and (when cheap or requested) exact row counts, sizes and pg_stats per column."""
        async with self._transaction() as conn:
            oid, schema, table = await self._resolve(conn, table, schema)
            sizes = _record(await conn.fetchrow(catalog.SIZES, oid))
            exact: int | None = None
            small = sizes["type"] in ("table", "materialized view") and sizes["table_bytes"] < EXACT_COUNT_MAX_BYTES
            if exact_count or small:
                exact = await conn.fetchval(f"SELECT count(*) FROM {quote_ident(schema)}.{quote_ident(table)}")
            columns = [_record(row) for row in await conn.fetch(catalog.COLUMN_STATS, schema, table)]
        return {
            "schema": schema,
            "table": table,
            "row_count": exact,
            **sizes,
            "column_stats": columns,
            "note": None if columns else "No pg_stats rows yet; run ANALYZE on the table to collect column statistics.",
        }

    async def execute(self, sql: str, params: Sequence[JSONValue], max_rows: int) -> QueryResult:
        """Check the statement, run it in a transaction (READ ONLY unless writes are allowed) and collect rows.

        Rows stop at `max_rows` or the result byte limit; long values are cut inside PostgreSQL when possible.
        """
        statement = check_statement(sql, allow_writes=self.allow_writes, allow_toolhub_tables=self.allow_toolhub_tables)
        async with self._transaction(readonly=not self.allow_writes) as conn:
            stmt = await conn.prepare(statement.sql)
            args = coerce_params(params, [t.name for t in stmt.get_parameters()])
            attributes = stmt.get_attributes()
            if not attributes:
                await stmt.fetch(*args)
                return QueryResult([], [], truncated=False, status=stmt.get_statusmsg())
            wrapped = await self._prepare_bounded(conn, statement, len(attributes))
            collector = RowCollector(self.limits, max_rows)
            cursor = await (wrapped or stmt).cursor(*args)
            while not collector.full and (records := await cursor.fetch(_FETCH_BATCH)):
                for record in records:
                    values, cut = self._row(record, wrapped is not None)
                    if not collector.add(values, already_cut=cut):
                        break
        return collector.result([a.name for a in attributes])

    async def _prepare_bounded(
        self, conn: asyncpg.Connection, statement: Statement, columns: int
    ) -> PreparedStatement | None:
        """Prepare the value-cutting wrapper of a query, or return None when it does not apply or fails."""
        sql = bounded_select(statement.sql, columns, self.limits.max_value_bytes) if statement.is_query else None
        if sql is None:
            return None
        try:
            async with conn.transaction():  # a savepoint: a failed prepare must not abort the transaction
                return await conn.prepare(sql)
        except asyncpg.PostgresError as exc:
            logger.info("Not cutting values server-side (%s); cutting them after transfer", exc)
            return None

    def _row(self, record: asyncpg.Record, wrapped: bool) -> tuple[list[JSONValue], list[int]]:
        """Convert one record; a wrapped record carries values already cut by PostgreSQL."""
        if wrapped:
            return unwrap_row(list(record.values()), self.limits.max_value_bytes, _pg_value)
        return [_pg_value(value) for value in record.values()], []

    @asynccontextmanager
    async def _transaction(self, *, readonly: bool = True) -> AsyncIterator[asyncpg.Connection]:
        """Yield a pooled connection inside a transaction with statement_timeout and search_path set locally."""
        try:
            pool = await self._open_pool()
            try:
                # The pool hands out a proxy with Connection's interface.
                conn = cast(asyncpg.Connection, await pool.acquire(timeout=self.limits.queue_timeout))
            except TimeoutError as exc:
                raise Busy(busy_message(self.limits)) from exc
            try:
                async with conn.transaction(readonly=readonly):
                    timeout = f"{int(self.statement_timeout * 1000)}ms"
                    await conn.execute(catalog.SET_LOCALS, timeout, self._search_path())
                    yield conn
            finally:
                await pool.release(conn)
        except asyncpg.PostgresError as exc:
            raise QueryError(self._message(exc)) from exc
        except (asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise QueryError(f"{type(exc).__name__}: {exc}") from exc

    async def _open_pool(self) -> asyncpg.Pool:
        """Return the pool, opening it now when the lifespan could not."""
        async with self._open_lock:
            if self._users == 0:
                raise DatabaseError("The database is not open (use the server inside its lifespan).")
            if self._pool is None:
                self._pool = await self._create_pool()
            return self._pool

    async def _create_pool(self) -> asyncpg.Pool:
        """Create the connection pool (json/jsonb decoded into Python objects) and check the role it logs in as.

        Raises:
            UnsafeRole: the role can do more than read, and --allow-unsafe-role was not given.
        """
        pool = await asyncpg.create_pool(
            self.dsn, min_size=1, max_size=self.max_pool_size, init=_init_connection, timeout=CONNECT_TIMEOUT
        )
        if self.allow_unsafe_role:
            return pool
        try:
            async with pool.acquire() as proxy:
                conn = cast(asyncpg.Connection, proxy)
                await check_role(
                    conn,
                    allow_writes=self.allow_writes,
                    schema=self.default_schema,
                    allow_toolhub_tables=self.allow_toolhub_tables,
                )
        except BaseException:
            await pool.close()
            raise
        return pool

    def _search_path(self) -> str:
        """Return the search_path that makes unqualified names resolve in the default schema first."""
        if self.default_schema == "public":
            return "public"
        return f"{quote_ident(self.default_schema)}, public"

    async def _resolve(self, conn: asyncpg.Connection, table: str, schema: str | None) -> tuple[int, str, str]:
        """Find a relation's oid by exact (schema, name), also accepting "schema.table" when no schema is given."""
        candidates = [(schema or self.default_schema, table)]
        if schema is None and "." in table:
            schema_part, _, table_part = table.partition(".")
            candidates.append((schema_part, table_part))
        for schema_name, table_name in candidates:
            oid = await conn.fetchval(catalog.FIND_RELATION, schema_name, table_name)
            if oid is not None:
                return oid, schema_name, table_name
        raise not_found(table, candidates[0][0])

    def _message(self, exc: asyncpg.PostgresError) -> str:
        """Render a server error as the database's own message plus detail, hint and a note on our limits."""
        parts = [f"{type(exc).__name__}: {exc}"]
        # asyncpg sets the server's fields on the exception at run time; its stubs do not declare them.
        detail, hint, sqlstate = (getattr(exc, name, None) for name in ("detail", "hint", "sqlstate"))
        parts += [f"{label}: {text}" for label, text in (("DETAIL", detail), ("HINT", hint)) if text]
        if sqlstate == _QUERY_CANCELED:
            parts.append(f"(this server's statement timeout is {self.statement_timeout:g} s)")
        elif sqlstate == _READ_ONLY_VIOLATION:
            parts.append("(this server is read-only; it must be started with --allow-writes to change data)")
        elif "multiple commands" in str(exc):
            parts.append("(execute_query runs exactly one statement per call)")
        return "\n".join(parts)


async def _init_connection(conn: asyncpg.Connection) -> None:
    """Decode json/jsonb into Python values; text parameters are passed through unchanged."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, schema="pg_catalog", encoder=_encode_json, decoder=json.loads)


def _encode_json(value: Any) -> str:
    """Pass JSON text through and serialise any other value."""
    return value if isinstance(value, str) else json.dumps(value)


def _record(record: asyncpg.Record | None) -> dict[str, JSONValue]:
    """Convert a catalog record into a JSON-safe dict."""
    return {} if record is None else {key: _pg_value(value) for key, value in record.items()}


def _pg_value(value: object) -> JSONValue:
    """Convert asyncpg-specific values (ranges, bit strings, composite records) before the shared conversion."""
    if isinstance(value, asyncpg.Range):
        if value.isempty:
            return "empty"
        low, high = to_json_value(value.lower), to_json_value(value.upper)
        return f"{'[' if value.lower_inc else '('}{'' if low is None else low},{'' if high is None else high}" + (
            "]" if value.upper_inc else ")"
        )
    if isinstance(value, asyncpg.BitString):
        return value.as_string()
    if isinstance(value, asyncpg.Record):
        return [_pg_value(v) for v in value.values()]
    if isinstance(value, list | tuple):
        return [_pg_value(v) for v in value]  # pyright: ignore[reportUnknownVariableType]
    return to_json_value(value)
