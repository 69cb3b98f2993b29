"""Byte limits and the concurrency bound of the PostgreSQL backend, against a real server as a read-only role."""

from __future__ import annotations

import logging
import threading
from typing import Any

import anyio
import asyncpg
import mcp_types as types
import pytest
from mcp import Client

from tests.tools._postgres_db_client import call, error_text
from tools.postgres_db._limits import Limits
from tools.postgres_db.postgres import AsyncpgDatabase
from tools.postgres_db.server import build_server

pytestmark = pytest.mark.anyio

SEVEN_MB = "SELECT string_agg(i::text, ',') AS big FROM generate_series(1, 1000000) AS i"
SEVEN_MB_BYTES = 6888895


def make_server(url: str, schema: str, limits: Limits | None = None, *, max_rows: int = 500) -> Any:
    """A server over the test schema with the given limits."""
    db = AsyncpgDatabase(url, schema=schema, statement_timeout=10, limits=limits or Limits())
    return build_server(db, max_rows=max_rows)


def reply_bytes(result: types.CallToolResult) -> int:
    """Size of the text the model reads."""
    assert isinstance(result.content[0], types.TextContent)
    return len(result.content[0].text.encode())


async def test_a_long_value_is_cut_inside_postgres_with_a_marker(
    reader_url: str, pg_schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tools.postgres_db")
    result = await call(make_server(reader_url, pg_schema), "execute_query", sql=SEVEN_MB)
    content = result.structured_content
    assert content is not None
    value = content["rows"][0][0]
    assert value.startswith("1,2,3,4,5,")
    assert value.endswith(f"…[cut by postgres_db: {SEVEN_MB_BYTES} bytes in all, first 65536 shown]")
    assert content["note"] == (
        "1 value(s) longer than 65536 bytes were cut (marked '…[cut by postgres_db: …]'); "
        "use left(), substr() or length() to read them in parts."
    )
    assert reply_bytes(result) < 70_000
    # the value-cutting wrapper was used: nothing was cut after transfer (records of this thread: hubs served by
    # session fixtures log into the same capture from theirs)
    assert [r for r in caplog.records if r.thread == threading.get_ident()] == []


@pytest.mark.parametrize(
    ("sql", "total"),
    [
        ("SELECT jsonb_agg(i) FROM generate_series(1, 100000) AS i", 688_895),
        ("SELECT decode(repeat('41', 100000), 'hex')", 200_002),
        ("SELECT array_agg(i) FROM generate_series(1, 100000) AS i", 588_896),
        ("SELECT repeat('é', 40000)", 80_000),
    ],
)
async def test_values_of_every_type_are_cut(reader_url: str, pg_schema: str, sql: str, total: int) -> None:
    result = await call(make_server(reader_url, pg_schema), "execute_query", sql=sql)
    assert result.structured_content is not None
    assert result.structured_content["rows"][0][0].endswith(
        f"[cut by postgres_db: {total} bytes in all, first 65536 shown]"
    )


async def test_short_values_keep_their_types_and_duplicate_names_work(reader_url: str, pg_schema: str) -> None:
    sql = "SELECT 1 AS a, 2.5 AS a, true, NULL::text, '{1,2}'::int[], '{\"k\": 1}'::jsonb, 'x' || $1 AS s"
    result = await call(make_server(reader_url, pg_schema), "execute_query", sql=sql, params=["y"])
    assert result.structured_content == {
        "columns": ["a", "a", "?column?", "text", "int4", "jsonb", "s"],
        "rows": [[1, 2.5, True, None, [1, 2], {"k": 1}, "xy"]],
        "row_count": 1,
        "truncated": False,
    }


async def test_rows_stop_at_the_result_byte_limit(reader_url: str, pg_schema: str) -> None:
    server = make_server(reader_url, pg_schema, Limits(max_result_bytes=100_000), max_rows=5000)
    result = await call(server, "execute_query", sql="SELECT repeat('x', 1000) FROM generate_series(1, 5000)")
    content = result.structured_content
    assert content is not None
    assert (content["row_count"], content["truncated"]) == (99, True)
    assert content["note"] == (
        "Returned the first 99 rows: the result reached this server's limit of 100000 bytes. "
        "Select fewer or shorter columns, aggregate, or page with LIMIT/OFFSET."
    )
    assert reply_bytes(result) < 100_000 + 1_000


async def sleeping(url: str, count: int) -> None:
    """Wait until `count` sessions are inside pg_sleep (polling the server: there is no event to wait on)."""
    query = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE query LIKE '%pg_sleep(3)%' AND state = 'active' AND pid <> pg_backend_pid()"
    )
    conn = await asyncpg.connect(url)
    try:
        for _ in range(200):
            if await conn.fetchval(query) >= count:
                return
            await anyio.sleep(0.05)
        raise AssertionError(f"{count} sessions never started sleeping")
    finally:
        await conn.close()


async def test_slow_queries_do_not_hold_up_other_callers(postgres_url: str, reader_url: str, pg_schema: str) -> None:
    server = make_server(reader_url, pg_schema, Limits(max_concurrent_queries=2, queue_timeout=0.5))
    slow: list[types.CallToolResult] = []
    with anyio.fail_after(20):
        async with Client(server) as client, anyio.create_task_group() as tg:

            async def slow_call() -> None:
                slow.append(await client.call_tool("execute_query", {"sql": "SELECT pg_sleep(3)"}))

            tg.start_soon(slow_call)
            tg.start_soon(slow_call)
            await sleeping(postgres_url, 2)
            listed = await client.call_tool("list_tables", {})
            assert not listed.is_error
            assert slow == []  # answered while both sleeps still ran: the catalog tool did not wait for them
            busy = await client.call_tool("execute_query", {"sql": "SELECT 1"})
            assert slow == []  # busy after the queue timeout (0.5 s), not after a sleep ended (3 s)
            assert error_text(busy) == (
                "Busy: 2 queries are already running and none finished within 0.5 s. "
                "Try again shortly, or make the query cheaper."
            )
    assert [result.is_error for result in slow] == [False, False]
    again = await call(server, "execute_query", sql="SELECT 1")
    assert again.structured_content is not None
    assert again.structured_content["rows"] == [[1]]
