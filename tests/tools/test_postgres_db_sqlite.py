"""The postgres_db tools on the SQLite backend (always runs), driven through the in-process MCP client."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from tests.tools._postgres_db_client import INJECTION, call, error_text
from tools.postgres_db.server import build_server
from tools.postgres_db.sqlite import SqliteDatabase, check_clauses

pytestmark = pytest.mark.anyio

ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def make_server(path: Path, *, allow_writes: bool = False, timeout: float = 5.0, max_rows: int = 500) -> Any:
    """Build a server over the sample SQLite file."""
    return build_server(SqliteDatabase(path, allow_writes=allow_writes, statement_timeout=timeout), max_rows=max_rows)


def table_names(path: Path) -> list[str]:
    """Read the table list directly, bypassing the server under test."""
    with sqlite3.connect(path) as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")]
    conn.close()
    return names


async def test_tools_are_listed_with_plain_object_schemas(sqlite_file: Path) -> None:
    with anyio.fail_after(10):
        async with Client(make_server(sqlite_file)) as client:
            tools = (await client.list_tools()).tools
    assert [tool.name for tool in tools] == [
        "list_tables",
        "describe_table",
        "execute_query",
        "get_table_constraints",
        "get_table_stats",
    ]
    for tool in tools:
        assert tool.input_schema["type"] == "object"
        text = str(tool.input_schema)
        for banned in ("$ref", "anyOf", "oneOf", "allOf", "const", "additionalProperties", "'null'"):
            assert banned not in text, (tool.name, banned)
        assert all(isinstance(prop["type"], str) for prop in tool.input_schema["properties"].values())
    assert tools[2].input_schema["required"] == ["sql"]


async def test_list_tables_lists_tables_and_views(sqlite_file: Path) -> None:
    result = await call(make_server(sqlite_file), "list_tables")
    assert result.structured_content == {
        "schema": "main",
        "tables": [
            {"name": "customers", "type": "table", "columns": 4},
            {"name": "orders", "type": "table", "columns": 5},
            {"name": "paid_orders", "type": "view", "columns": 5},
            {"name": "y", "type": "table", "columns": 1},
        ],
    }


async def test_describe_table_reports_columns(sqlite_file: Path) -> None:
    result = await call(make_server(sqlite_file), "describe_table", table="ORDERS")
    column = {"nullable": False, "default": None, "primary_key": False}
    assert result.structured_content == {
        "schema": "main",
        "table": "orders",
        "type": "table",
        "columns": [
            {**column, "name": "id", "type": "INTEGER", "primary_key": True},
            {**column, "name": "customer_id", "type": "INTEGER"},
            {**column, "name": "amount", "type": "REAL"},
            {**column, "name": "status", "type": "TEXT", "default": "'new'"},
            {**column, "name": "placed_on", "type": "TEXT", "nullable": True},
        ],
    }


async def test_get_table_constraints_reports_every_kind(sqlite_file: Path) -> None:
    result = await call(make_server(sqlite_file), "get_table_constraints", table="orders")
    assert result.structured_content == {
        "schema": "main",
        "table": "orders",
        "primary_key": {"name": None, "columns": ["id"]},
        "foreign_keys": [
            {
                "name": None,
                "columns": ["customer_id"],
                "references": {"schema": "main", "table": "customers", "columns": ["id"]},
                "on_update": "NO ACTION",
                "on_delete": "CASCADE",
            }
        ],
        "unique": [{"name": "sqlite_autoindex_orders_1", "columns": ["customer_id", "placed_on"]}],
        "check": [
            {"name": "amount_positive", "definition": "CHECK (amount > 0)"},
            {"name": None, "definition": "CHECK (status IN ('new', 'paid', 'refunded'))"},
        ],
    }


def test_check_clauses_handles_quotes_and_nesting() -> None:
    sql = 'CREATE TABLE t (a TEXT CHECK (a <> \')\'), "b" INT, CONSTRAINT "odd ""name""" CHECK ((b % 2) = 1))'
    assert check_clauses(sql) == [
        {"name": None, "definition": "CHECK (a <> ')')"},
        {"name": 'odd "name"', "definition": "CHECK ((b % 2) = 1)"},
    ]


async def test_get_table_stats_counts_rows(sqlite_file: Path) -> None:
    result = await call(make_server(sqlite_file), "get_table_stats", table="orders")
    assert result.structured_content == {
        "schema": "main",
        "table": "orders",
        "type": "table",
        "row_count": 5,
        "table_bytes": 4096,
        "index_bytes": 4096,
        "columns": [
            {"name": "id", "type": "INTEGER"},
            {"name": "customer_id", "type": "INTEGER"},
            {"name": "amount", "type": "REAL"},
            {"name": "status", "type": "TEXT"},
            {"name": "placed_on", "type": "TEXT"},
        ],
        "note": "SQLite keeps no per-column statistics; row_count is exact.",
    }


async def test_execute_query_returns_rows_and_binds_params(sqlite_file: Path) -> None:
    sql = "SELECT id, amount, placed_on, x'0102' AS raw FROM orders WHERE customer_id = ? AND amount > ? ORDER BY id"
    result = await call(make_server(sqlite_file), "execute_query", sql=sql, params=["1", 10])
    assert result.structured_content == {
        "columns": ["id", "amount", "placed_on", "raw"],
        "rows": [[1, 10.5, "2024-01-02", "\\x0102"], [2, 20.0, "2024-01-03", "\\x0102"]],
        "row_count": 2,
        "truncated": False,
    }


async def test_execute_query_cuts_rows_at_the_limit_with_a_note(sqlite_file: Path) -> None:
    result = await call(make_server(sqlite_file, max_rows=4), "execute_query", sql="SELECT id FROM orders ORDER BY id")
    assert result.structured_content == {
        "columns": ["id"],
        "rows": [[1], [2], [3], [4]],
        "row_count": 4,
        "truncated": True,
        "note": "Returned the first 4 rows; more rows exist. "
        "Add a WHERE clause, aggregate, or use LIMIT/OFFSET to page.",
    }


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO y VALUES (2)",
        "UPDATE y SET id = 3",
        "DROP TABLE y",
        "PRAGMA query_only = OFF",
        "ATTACH DATABASE 'other.db' AS other",
    ],
)
async def test_writes_are_refused_by_default(sqlite_file: Path, sql: str) -> None:
    result = await call(make_server(sqlite_file), "execute_query", sql=sql)
    assert error_text(result).endswith(
        "(this server is read-only; it must be started with --allow-writes to change data)"
    )
    rows = await call(make_server(sqlite_file), "execute_query", sql="SELECT id FROM y")
    assert rows.structured_content is not None
    assert rows.structured_content["rows"] == [[1]]


async def test_writes_are_allowed_with_allow_writes(sqlite_file: Path) -> None:
    server = make_server(sqlite_file, allow_writes=True)
    inserted = await call(server, "execute_query", sql="INSERT INTO y VALUES (?), (?)", params=[2, "3"])
    assert inserted.structured_content == {
        "columns": [],
        "rows": [],
        "row_count": 0,
        "truncated": False,
        "status": "2 row(s) affected",
    }
    updated = await call(server, "execute_query", sql="UPDATE y SET id = id * 10 RETURNING id")
    assert updated.structured_content is not None
    assert sorted(updated.structured_content["rows"]) == [[10], [20], [30]]
    await call(server, "execute_query", sql="DROP TABLE y")
    assert "y" not in table_names(sqlite_file)


async def test_statement_timeout_interrupts_slow_queries(sqlite_file: Path) -> None:
    with anyio.fail_after(4):
        result = await call(make_server(sqlite_file, timeout=0.5), "execute_query", sql=ENDLESS)
    assert error_text(result) == "OperationalError: interrupted (statement timeout of 0.5 s exceeded)"


async def test_bad_sql_returns_the_database_message(sqlite_file: Path) -> None:
    server = make_server(sqlite_file)
    assert error_text(await call(server, "execute_query", sql="SELEC 1")) == (
        'OperationalError: near "SELEC": syntax error'
    )
    assert error_text(await call(server, "execute_query", sql="SELECT * FROM nope")) == (
        "OperationalError: no such table: nope"
    )
    assert "You can only execute one statement at a time" in error_text(
        await call(make_server(sqlite_file, allow_writes=True), "execute_query", sql="SELECT 1; DROP TABLE y")
    )
    assert "y" in table_names(sqlite_file)


@pytest.mark.parametrize("tool", ["describe_table", "get_table_constraints", "get_table_stats"])
async def test_identifier_injection_is_inert(sqlite_file: Path, tool: str) -> None:
    server = make_server(sqlite_file, allow_writes=True)
    assert error_text(await call(server, tool, table=INJECTION)) == (
        f"Table {INJECTION!r} not found in schema 'main'; call list_tables to see the available tables."
    )
    assert error_text(await call(server, tool, table="y", schema=INJECTION)) == (
        f"Schema (attached database) {INJECTION!r} not found."
    )
    assert "y" in table_names(sqlite_file)


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("drop_everything", {}, "Unknown tool 'drop_everything'"),
        ("describe_table", {}, "Argument 'table' is required and must be a non-empty string."),
        ("execute_query", {"sql": 1}, "Argument 'sql' is required and must be a non-empty string."),
        ("execute_query", {"sql": "SELECT 1", "params": "x"}, "Argument 'params' must be an array."),
        ("execute_query", {"sql": "SELECT 1", "max_rows": 0}, "Argument 'max_rows' must be a positive integer."),
        ("get_table_stats", {"table": "y", "exact_count": "yes"}, "Argument 'exact_count' must be true or false."),
    ],
)
async def test_bad_arguments_are_tool_errors(
    sqlite_file: Path, tool: str, arguments: dict[str, Any], message: str
) -> None:
    assert error_text(await call(make_server(sqlite_file), tool, **arguments)).startswith(message)
