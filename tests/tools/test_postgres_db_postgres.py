"""The postgres_db tools against a real PostgreSQL, driven through the in-process MCP client."""

from __future__ import annotations

from typing import Any

import anyio
import asyncpg
import mcp_types as types
import pytest
from mcp import Client

from tests.tools._postgres_db_client import INJECTION, call, error_text
from tools.postgres_db.postgres import AsyncpgDatabase
from tools.postgres_db.server import build_server

pytestmark = pytest.mark.anyio


def make_server(
    url: str,
    schema: str,
    *,
    allow_writes: bool = False,
    allow_unsafe_role: bool = False,
    timeout: float = 5.0,
    max_rows: int = 500,
) -> Any:
    """Build a server over the test schema."""
    db = AsyncpgDatabase(
        url, schema=schema, allow_writes=allow_writes, allow_unsafe_role=allow_unsafe_role, statement_timeout=timeout
    )
    return build_server(db, max_rows=max_rows)


async def table_exists(url: str, schema: str, table: str) -> bool:
    """Check the catalog directly, bypassing the server under test."""
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f'"{schema}"."{table}"')
    finally:
        await conn.close()


async def test_list_tables_lists_tables_with_estimates(reader_url: str, pg_schema: str) -> None:
    result = await call(make_server(reader_url, pg_schema), "list_tables")
    assert result.structured_content == {
        "schema": pg_schema,
        "tables": [
            {"name": "customers", "type": "table", "row_estimate": 3, "comment": None},
            {"name": "orders", "type": "table", "row_estimate": 5, "comment": "Customer orders"},
            {"name": "y", "type": "table", "row_estimate": 1, "comment": None},
        ],
    }


async def test_list_tables_reports_a_missing_schema(reader_url: str, pg_schema: str) -> None:
    result = await call(make_server(reader_url, pg_schema), "list_tables", schema="no_such_schema")
    assert error_text(result) == "Schema 'no_such_schema' not found."


async def test_describe_table_reports_columns(reader_url: str, pg_schema: str) -> None:
    result = await call(make_server(reader_url, "public"), "describe_table", table="orders", schema=pg_schema)
    column = {"default": None, "primary_key": False, "identity": None, "comment": None}
    assert result.structured_content == {
        "schema": pg_schema,
        "table": "orders",
        "type": "table",
        "comment": "Customer orders",
        "columns": [
            {**column, "name": "id", "type": "bigint", "nullable": False, "primary_key": True, "identity": "always"},
            {**column, "name": "customer_id", "type": "integer", "nullable": False},
            {**column, "name": "amount", "type": "numeric(10,2)", "nullable": False},
            {**column, "name": "status", "type": "text", "nullable": False, "default": "'new'::text"},
            {**column, "name": "placed_on", "type": "date", "nullable": True},
            {**column, "name": "ref", "type": "uuid", "nullable": True},
        ],
    }


async def test_describe_table_accepts_a_schema_qualified_name(reader_url: str, pg_schema: str) -> None:
    result = await call(make_server(reader_url, "public"), "describe_table", table=f"{pg_schema}.customers")
    assert result.structured_content is not None
    assert (result.structured_content["schema"], result.structured_content["table"]) == (pg_schema, "customers")
    assert [c["name"] for c in result.structured_content["columns"]] == ["id", "email", "name", "created_at"]


async def test_get_table_constraints_reports_every_kind(reader_url: str, pg_schema: str) -> None:
    result = await call(make_server(reader_url, pg_schema), "get_table_constraints", table="orders")
    assert result.structured_content == {
        "schema": pg_schema,
        "table": "orders",
        "primary_key": {"name": "orders_pkey", "columns": ["id"], "definition": "PRIMARY KEY (id)"},
        "foreign_keys": [
            {
                "name": "orders_customer_id_fkey",
                "columns": ["customer_id"],
                "references": {"schema": pg_schema, "table": "customers", "columns": ["id"]},
                "on_update": "NO ACTION",
                "on_delete": "CASCADE",
                "definition": "FOREIGN KEY (customer_id) REFERENCES customers(id) ON DELETE CASCADE",
            }
        ],
        "unique": [
            {
                "name": "orders_customer_ref_key",
                "columns": ["customer_id", "ref"],
                "definition": "UNIQUE (customer_id, ref)",
            }
        ],
        "check": [{"name": "amount_positive", "definition": "CHECK ((amount > (0)::numeric))"}],
        "exclusion": [],
    }


async def test_get_table_stats_counts_rows_and_reads_pg_stats(reader_url: str, pg_schema: str) -> None:
    result = await call(make_server(reader_url, pg_schema), "get_table_stats", table="orders")
    stats = result.structured_content
    assert stats is not None
    assert (stats["row_count"], stats["row_estimate"], stats["type"]) == (5, 5, "table")
    assert stats["total_bytes"] >= stats["table_bytes"] > 0
    assert stats["note"] is None
    by_column = {c["column"]: c for c in stats["column_stats"]}
    assert set(by_column) == {"id", "customer_id", "amount", "status", "placed_on", "ref"}
    assert by_column["placed_on"]["null_frac"] == pytest.approx(0.2)
    assert set(by_column["status"]["most_common_vals"].strip("{}").split(",")) == {"new", "paid"}


async def test_execute_query_converts_values_to_json(reader_url: str, pg_schema: str) -> None:
    sql = "SELECT id, amount, placed_on, ref, interval '1 day 2 hours' AS gap FROM orders WHERE id = 1"
    result = await call(make_server(reader_url, pg_schema), "execute_query", sql=sql)
    assert result.structured_content == {
        "columns": ["id", "amount", "placed_on", "ref", "gap"],
        "rows": [[1, 10.5, "2024-01-02", "00000000-0000-0000-0000-000000000001", "1 day, 2:00:00"]],
        "row_count": 1,
        "truncated": False,
    }
    assert isinstance(result.content[0], types.TextContent)
    assert '"rows": [[1, 10.5, "2024-01-02"' in result.content[0].text


async def test_execute_query_binds_params_converting_strings(reader_url: str, pg_schema: str) -> None:
    sql = "SELECT id FROM orders WHERE customer_id = $1 AND placed_on >= $2 AND status = $3 ORDER BY id"
    result = await call(make_server(reader_url, pg_schema), "execute_query", sql=sql, params=["1", "2024-01-03", "new"])
    assert result.structured_content == {"columns": ["id"], "rows": [[2]], "row_count": 1, "truncated": False}


async def test_execute_query_reports_bad_params(reader_url: str, pg_schema: str) -> None:
    server = make_server(reader_url, pg_schema)
    result = await call(server, "execute_query", sql="SELECT id FROM orders WHERE id = $1", params=["one"])
    assert error_text(result).startswith("Parameter $1 ('one') is not a valid int8")
    result = await call(server, "execute_query", sql="SELECT $1::int", params=[])
    assert "1 placeholder(s)" in error_text(result)


async def test_execute_query_cuts_rows_at_the_limit_with_a_note(reader_url: str, pg_schema: str) -> None:
    server = make_server(reader_url, pg_schema, max_rows=3)
    result = await call(server, "execute_query", sql="SELECT id FROM orders ORDER BY id", max_rows=2)
    assert result.structured_content is not None
    assert result.structured_content["rows"] == [[1], [2]]
    assert result.structured_content["truncated"] is True
    assert result.structured_content["note"].startswith("Returned the first 2 rows; more rows exist.")
    capped = await call(server, "execute_query", sql="SELECT id FROM orders ORDER BY id", max_rows=100)
    assert capped.structured_content is not None
    assert (capped.structured_content["row_count"], capped.structured_content["truncated"]) == (3, True)


@pytest.mark.parametrize(
    ("sql", "command"),
    [
        ("INSERT INTO y VALUES (2)", "INSERT"),
        ("UPDATE y SET id = 3", "UPDATE"),
        ("DELETE FROM y", "DELETE"),
        ("DROP TABLE y", "DROP"),
    ],
)
async def test_writes_are_refused_by_default(reader_url: str, pg_schema: str, sql: str, command: str) -> None:
    result = await call(make_server(reader_url, pg_schema), "execute_query", sql=sql)
    assert error_text(result).startswith(f"{command} is not a read statement. This server is read-only")
    rows = await call(make_server(reader_url, pg_schema), "execute_query", sql="SELECT id FROM y")
    assert rows.structured_content is not None
    assert rows.structured_content["rows"] == [[1]]


async def test_a_write_hidden_in_a_function_still_meets_the_read_only_transaction(
    postgres_url: str, pg_schema: str
) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(
            f'CREATE FUNCTION "{pg_schema}".bump() RETURNS int LANGUAGE sql AS $$ INSERT INTO "{pg_schema}".y '
            "VALUES (9) RETURNING 1 $$"
        )
    finally:
        await conn.close()
    server = make_server(postgres_url, pg_schema, allow_unsafe_role=True)
    result = await call(server, "execute_query", sql="SELECT bump()")
    assert "cannot execute INSERT in a read-only transaction" in error_text(result)


async def test_writes_are_allowed_with_allow_writes(postgres_url: str, pg_schema: str) -> None:
    server = make_server(postgres_url, pg_schema, allow_writes=True, allow_unsafe_role=True)
    inserted = await call(server, "execute_query", sql="INSERT INTO y VALUES ($1), ($2)", params=["2", 3])
    assert inserted.structured_content == {
        "columns": [],
        "rows": [],
        "row_count": 0,
        "truncated": False,
        "status": "INSERT 0 2",
    }
    updated = await call(server, "execute_query", sql="UPDATE y SET id = id * 10 RETURNING id")
    assert updated.structured_content is not None
    assert sorted(updated.structured_content["rows"]) == [[10], [20], [30]]
    dropped = await call(server, "execute_query", sql="DROP TABLE y")
    assert dropped.structured_content is not None
    assert dropped.structured_content["status"] == "DROP TABLE"
    assert not await table_exists(postgres_url, pg_schema, "y")


async def test_statement_timeout_cancels_slow_queries(reader_url: str, pg_schema: str) -> None:
    server = make_server(reader_url, pg_schema, timeout=1)
    with anyio.fail_after(4):
        result = await call(server, "execute_query", sql="SELECT pg_sleep(5)")
    assert error_text(result) == (
        "QueryCanceledError: canceling statement due to statement timeout\n(this server's statement timeout is 1 s)"
    )


async def test_bad_sql_returns_the_parser_or_database_message(reader_url: str, pg_schema: str) -> None:
    server = make_server(reader_url, pg_schema)
    syntax = await call(server, "execute_query", sql="SELEC * FROM orders")
    assert error_text(syntax) == 'Syntax error: syntax error at or near "SELEC", at index 0'
    missing = await call(server, "execute_query", sql="SELECT * FROM nope")
    assert error_text(missing) == 'UndefinedTableError: relation "nope" does not exist'


@pytest.mark.parametrize("allow_writes", [False, True])
async def test_several_statements_in_one_call_are_refused(
    postgres_url: str, pg_schema: str, allow_writes: bool
) -> None:
    server = make_server(postgres_url, pg_schema, allow_writes=allow_writes, allow_unsafe_role=True)
    result = await call(server, "execute_query", sql="SELECT 1; DROP TABLE y")
    assert error_text(result) == "execute_query runs exactly one statement per call; got 2."
    assert await table_exists(postgres_url, pg_schema, "y")


@pytest.mark.parametrize("tool", ["describe_table", "get_table_constraints", "get_table_stats"])
async def test_identifier_injection_is_inert(postgres_url: str, pg_schema: str, tool: str) -> None:
    server = make_server(postgres_url, pg_schema, allow_writes=True, allow_unsafe_role=True)
    by_table = await call(server, tool, table=INJECTION)
    assert error_text(by_table) == (
        f"Table {INJECTION!r} not found in schema {pg_schema!r}; call list_tables to see the available tables."
    )
    by_schema = await call(server, tool, table="y", schema=INJECTION)
    assert "not found" in error_text(by_schema)
    listing = await call(server, "list_tables", schema=INJECTION)
    assert error_text(listing) == f"Schema {INJECTION!r} not found."
    assert await table_exists(postgres_url, pg_schema, "y")


async def test_an_unreachable_database_gives_tool_errors_not_a_crash() -> None:
    server = build_server(AsyncpgDatabase("postgresql://postgres@127.0.0.1:1/test"))
    with anyio.fail_after(10):
        async with Client(server) as client:
            first = await client.call_tool("list_tables", {})
            second = await client.call_tool("execute_query", {"sql": "SELECT 1"})
    assert error_text(first).startswith("ConnectionRefusedError: ")
    assert error_text(second).startswith("ConnectionRefusedError: ")
