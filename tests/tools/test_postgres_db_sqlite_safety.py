"""The SQLite backend's authorizer, length limit, byte limits and queue timeout (always runs)."""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.tools._postgres_db_client import call, error_text
from tools.postgres_db._limits import Limits
from tools.postgres_db._sqlite_policy import DENIED_SQLITE_FUNCTIONS
from tools.postgres_db.server import build_server
from tools.postgres_db.sqlite import SqliteDatabase

pytestmark = pytest.mark.anyio

REPO_ROOT = Path(__file__).resolve().parents[2]
READ_ONLY = "(this server is read-only; it must be started with --allow-writes to change data)"
ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def make_server(path: Path, limits: Limits | None = None, *, timeout: float = 5, **options: Any) -> Any:
    """A server over the sample file."""
    db = SqliteDatabase(path, statement_timeout=timeout, limits=limits or Limits(), **options)
    return build_server(db, max_rows=5000)


@pytest.fixture
def fts_file(sqlite_file: Path) -> Path:
    """The sample file with a full-text table and a table named like Toolhub's own."""
    with sqlite3.connect(sqlite_file) as conn:
        conn.executescript(
            "CREATE VIRTUAL TABLE docs USING fts4(body); INSERT INTO docs VALUES ('hello world');"
            "CREATE TABLE toolhub_keys (token_hash TEXT); INSERT INTO toolhub_keys VALUES ('secret');"
        )
    conn.close()
    return sqlite_file


async def test_fts3_tokenizer_is_refused_and_the_process_survives(fts_file: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "tools.postgres_db", "--dsn", str(fts_file)], cwd=str(REPO_ROOT)
    )
    with anyio.fail_after(30):
        async with Client(params, mode="legacy") as client:
            poison = "SELECT fts3_tokenizer('simple', x'4141414141414141')"
            leak = "SELECT fts3_tokenizer('simple')"
            for sql in (poison, leak):
                result = await client.call_tool("execute_query", {"sql": sql})
                assert error_text(result) == (
                    "OperationalError: not authorized to use function: fts3_tokenizer (function fts3_tokenizer() is "
                    "not allowed: it reads and writes raw pointers (a crafted call crashes the process))"
                )
            found = await client.call_tool("execute_query", {"sql": "SELECT body FROM docs WHERE docs MATCH 'hello'"})
    assert found.structured_content == {
        "columns": ["body"],
        "rows": [["hello world"]],
        "row_count": 1,
        "truncated": False,
    }


def test_the_deny_list_also_names_the_shell_only_file_functions() -> None:
    assert {"readfile", "writefile", "edit"} <= set(DENIED_SQLITE_FUNCTIONS)  # absent from Python's sqlite3 today


@pytest.mark.parametrize("name", ["fts3_tokenizer", "load_extension"])
@pytest.mark.parametrize("allow_writes", [False, True])
async def test_every_denied_function_is_refused_in_every_mode(sqlite_file: Path, name: str, allow_writes: bool) -> None:
    server = make_server(sqlite_file, allow_writes=allow_writes)
    result = await call(server, "execute_query", sql=f"SELECT {name}('x')")
    assert error_text(result).startswith(
        f"OperationalError: not authorized to use function: {name} (function {name}() is not allowed: "
    )


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO y VALUES (2)",
        "DELETE FROM y",
        "CREATE TABLE z (a)",
        "CREATE TEMP TABLE z (a)",
        "CREATE INDEX y_id ON y (id)",
        "DROP VIEW paid_orders",
        "ALTER TABLE y ADD COLUMN b",
        "ATTACH DATABASE ':memory:' AS other",
        "DETACH DATABASE main",
        "BEGIN",
        "SAVEPOINT s",
        "REINDEX",
        "ANALYZE",
        "PRAGMA query_only = OFF",
        "PRAGMA writable_schema = ON",
        "PRAGMA cache_size = -2000000",
        "PRAGMA journal_mode = DELETE",
        "PRAGMA mmap_size = 1000000000",
    ],
)
async def test_writes_attach_transactions_and_pragma_assignments_are_refused(sqlite_file: Path, sql: str) -> None:
    result = await call(make_server(sqlite_file), "execute_query", sql=sql)
    assert error_text(result).endswith(READ_ONLY)


@pytest.mark.parametrize(
    "sql",
    [
        "PRAGMA table_info(orders)",
        "PRAGMA index_list('orders')",
        "PRAGMA foreign_key_list(orders)",
        "PRAGMA cache_size",
        "SELECT * FROM pragma_table_info('orders')",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3) SELECT x FROM c",
        "SELECT upper(name), length(email) FROM customers ORDER BY 1",
        "SELECT * FROM paid_orders",
    ],
)
async def test_reads_and_read_pragmas_keep_working(sqlite_file: Path, sql: str) -> None:
    result = await call(make_server(sqlite_file), "execute_query", sql=sql)
    assert not result.is_error, result.content


async def test_toolhub_tables_are_refused_unless_allowed(fts_file: Path) -> None:
    refused = await call(make_server(fts_file), "execute_query", sql="SELECT token_hash FROM toolhub_keys")
    assert error_text(refused) == (
        "DatabaseError: access to toolhub_keys.token_hash is prohibited (Toolhub's own tables (toolhub_*) are not "
        "readable through this tool (see --allow-toolhub-tables))"
    )
    counted = await call(make_server(fts_file), "get_table_stats", table="main.toolhub_keys")
    assert error_text(counted) == "Toolhub's own tables (toolhub_*) have no statistics through this tool."
    allowed = await call(
        make_server(fts_file, allow_toolhub_tables=True), "execute_query", sql="SELECT token_hash FROM toolhub_keys"
    )
    assert allowed.structured_content is not None
    assert allowed.structured_content["rows"] == [["secret"]]


async def test_a_huge_blob_fails_fast_with_a_clear_error(sqlite_file: Path) -> None:
    started = time.monotonic()
    result = await call(make_server(sqlite_file), "execute_query", sql="SELECT zeroblob(900000000)")
    assert error_text(result) == (
        "DataError: string or blob too big (this server limits strings and blobs to 16777216 bytes)"
    )
    assert time.monotonic() - started < 2


async def test_a_long_value_is_cut_with_a_marker(sqlite_file: Path) -> None:
    result = await call(make_server(sqlite_file), "execute_query", sql="SELECT printf('%.*c', 10000000, 'x') AS v")
    assert result.structured_content is not None
    value = result.structured_content["rows"][0][0]
    assert value == "x" * 65536 + "…[cut by postgres_db: 10000000 bytes in all, first 65536 shown]"
    assert result.structured_content["note"].startswith("1 value(s) longer than 65536 bytes were cut")


async def test_rows_stop_at_the_result_byte_limit(sqlite_file: Path) -> None:
    sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000) SELECT zeroblob(500) FROM c"
    result = await call(make_server(sqlite_file, Limits(max_result_bytes=100_000)), "execute_query", sql=sql)
    content = result.structured_content
    assert content is not None
    assert (content["row_count"], content["truncated"]) == (99, True)
    assert content["note"].startswith("Returned the first 99 rows: the result reached this server's limit of 100000")


async def test_a_slow_query_makes_other_callers_busy_not_wait(sqlite_file: Path) -> None:
    server = make_server(sqlite_file, Limits(queue_timeout=0.3), timeout=3)
    slow: list[Any] = []
    with anyio.fail_after(10):
        async with Client(server) as client, anyio.create_task_group() as tg:

            async def slow_call() -> None:
                slow.append(await client.call_tool("execute_query", {"sql": ENDLESS}))

            tg.start_soon(slow_call)
            await anyio.wait_all_tasks_blocked()
            busy = await client.call_tool("list_tables", {})
            assert slow == []  # answered while the slow query held the connection (for 3 s)
            assert error_text(busy).startswith("Busy: 1 query is already running and none finished within 0.3 s.")
    assert error_text(slow[0]) == "OperationalError: interrupted (statement timeout of 3 s exceeded)"


async def test_the_demo_database_is_read_only_and_holds_the_shop() -> None:
    seed = (REPO_ROOT / "tools" / "postgres_db" / "demo.sql").read_text()
    server = build_server(SqliteDatabase(":memory:", seed=seed))
    listed = await call(server, "list_tables")
    assert listed.structured_content is not None
    assert [table["name"] for table in listed.structured_content["tables"]] == [
        "customers",
        "order_items",
        "orders",
        "products",
    ]
    total = await call(
        server,
        "execute_query",
        sql="SELECT sum(i.quantity * p.price) FROM order_items i JOIN products p ON p.id = i.product_id",
    )
    assert total.structured_content is not None
    assert total.structured_content["rows"] == [[8907.45]]
    assert error_text(await call(server, "execute_query", sql="DELETE FROM orders")).endswith(READ_ONLY)
