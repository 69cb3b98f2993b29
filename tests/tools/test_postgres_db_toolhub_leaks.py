"""Toolhub's own tables stay out of the model's reach by every path: statistics views, TOAST, raw pages, the role.

The deployment guarded against is the tool pointed at a database that also holds the hub's `toolhub_*` tables, with a
role that may SELECT them (what `GRANT SELECT ON ALL TABLES IN SCHEMA` gives when they share a schema).
"""

from __future__ import annotations

import logging
import sqlite3
import urllib.parse
from typing import Any

import asyncpg
import pytest

from tests.tools._postgres_db_client import call, error_text
from tests.tools.conftest import MakeRole
from tools.postgres_db._pg_role import UnsafeRole
from tools.postgres_db._sqlite_policy import Authorizer
from tools.postgres_db.postgres import AsyncpgDatabase
from tools.postgres_db.server import build_server

SECRET = "sk-hash-secret"
READ_ALL = 'GRANT USAGE ON SCHEMA "{schema}" TO {{role}}; GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO {{role}};'


@pytest.fixture
async def hub_tables(postgres_url: str, pg_schema: str) -> str:
    """Put an analyzed `toolhub_keys` (short secrets, and one long value stored in TOAST) into the test schema."""
    conn = await asyncpg.connect(postgres_url)
    try:
        table = f'"{pg_schema}".toolhub_keys'
        await conn.execute(f"CREATE TABLE {table} (token_hash text, note text)")
        await conn.execute(f"INSERT INTO {table} SELECT '{SECRET}-' || (i % 5), NULL FROM generate_series(1, 200) i")
        await conn.execute(f"ALTER TABLE {table} ALTER COLUMN note SET STORAGE EXTERNAL")  # toasted, uncompressed
        await conn.execute(f"INSERT INTO {table} VALUES ('{SECRET}-long', repeat('{SECRET}-note ', 400))")
        await conn.execute(
            f'CREATE STATISTICS "{pg_schema}".toolhub_keys_stats ON token_hash, note FROM {table}; ANALYZE {table}'
        )
        return str(
            await conn.fetchval(f"SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = '{table}'::regclass")
        )
    finally:
        await conn.close()


@pytest.fixture(params=["reader", "superuser"])
async def target(
    request: pytest.FixtureRequest, postgres_url: str, pg_schema: str, make_role: MakeRole, hub_tables: str
) -> tuple[str, dict[str, Any]]:
    """A reader that may SELECT every table of the schema, toolhub_keys included, and a superuser (filter alone)."""
    if request.param == "superuser":
        return postgres_url, {"allow_unsafe_role": True}
    return await make_role(READ_ALL.format(schema=pg_schema)), {}


def make_server(url: str, schema: str, **options: Any) -> Any:
    return build_server(AsyncpgDatabase(url, schema=schema, statement_timeout=5, **options))


STATISTICS_READS = [
    ("SELECT attname, most_common_vals::text FROM pg_catalog.pg_stats WHERE tablename ~ '^toolhub_'", "pg_stats"),
    ("SELECT histogram_bounds::text FROM pg_stats WHERE tablename = 'toolhub_keys'", "pg_stats"),
    ("SELECT * FROM y WHERE EXISTS (SELECT 1 FROM PG_CATALOG.PG_STATS WHERE most_common_vals IS NOT NULL)", "pg_stats"),
    ("WITH s AS (SELECT most_common_vals::text AS v FROM pg_stats) SELECT v FROM s", "pg_stats"),
    ("SELECT most_common_vals::text FROM pg_catalog.pg_stats_ext WHERE tablename = 'toolhub_keys'", "pg_stats_ext"),
    ("SELECT most_common_vals::text FROM pg_stats_ext_exprs", "pg_stats_ext_exprs"),
]  # fmt: skip


@pytest.mark.anyio
@pytest.mark.parametrize(("sql", "view"), STATISTICS_READS)
async def test_statistics_views_are_refused_since_they_show_sampled_values_of_toolhub_tables(
    target: tuple[str, dict[str, Any]], pg_schema: str, sql: str, view: str
) -> None:
    url, options = target
    result = await call(make_server(url, pg_schema, **options), "execute_query", sql=sql)
    text = error_text(result)
    assert text.startswith(f"Reading {view} is not allowed: it shows sampled column values"), text
    assert "get_table_stats" in text and SECRET not in text


@pytest.mark.anyio
async def test_get_table_stats_still_gives_other_tables_sampled_values(
    target: tuple[str, dict[str, Any]], pg_schema: str
) -> None:
    url, options = target
    server = make_server(url, pg_schema, **options)
    stats = await call(server, "get_table_stats", table="orders")
    assert not stats.is_error, stats.content
    assert stats.structured_content is not None
    assert {row["column"]: row["most_common_vals"] for row in stats.structured_content["column_stats"]}["status"]
    assert error_text(await call(server, "get_table_stats", table="toolhub_keys")).startswith("Toolhub's own tables")


@pytest.mark.anyio
async def test_allow_toolhub_tables_also_allows_the_statistics_views(
    postgres_url: str, pg_schema: str, make_role: MakeRole, hub_tables: str
) -> None:
    url = await make_role(READ_ALL.format(schema=pg_schema))
    server = make_server(url, pg_schema, allow_toolhub_tables=True)
    sql = "SELECT attname FROM pg_stats WHERE tablename = 'toolhub_keys' AND most_common_vals IS NOT NULL"
    result = await call(server, "execute_query", sql=sql)
    assert result.structured_content is not None and result.structured_content["rows"] == [["token_hash"]]


@pytest.mark.anyio
async def test_toast_tables_and_raw_page_readers_are_refused(
    postgres_url: str, pg_schema: str, hub_tables: str
) -> None:
    server = make_server(postgres_url, pg_schema, allow_unsafe_role=True)
    _, toast = hub_tables.split(".")
    for sql in (f"SELECT convert_from(chunk_data, 'UTF8') FROM {hub_tables}", f"SELECT chunk_id FROM {toast}"):
        text = error_text(await call(server, "execute_query", sql=sql))
        assert text == f"Reading {toast} is not allowed: it holds passwords, server files or other tables' data."
    reason = "it reads raw pages or WAL of any table, past this filter's table rules"
    for sql, name in [
        ("SELECT get_raw_page('toolhub_keys', 0)", "get_raw_page"),
        ("SELECT * FROM bt_page_items('toolhub_keys_pkey', 1)", "bt_page_items"),
        ("SELECT block_data FROM pg_get_wal_block_info('0/0', '0/1')", "pg_get_wal_block_info"),
    ]:
        assert (
            error_text(await call(server, "execute_query", sql=sql)) == f"Function {name}() is not allowed: {reason}."
        )


@pytest.mark.anyio
async def test_the_printed_read_only_role_cannot_read_toolhub_tables_sharing_its_schema(
    postgres_url: str, pg_schema: str, make_role: MakeRole, hub_tables: str
) -> None:
    with pytest.raises(UnsafeRole) as exc_info:
        async with AsyncpgDatabase(postgres_url, schema=pg_schema).connected():
            pass
    advice = str(exc_info.value)
    revoke = f'    REVOKE ALL ON "{pg_schema}"."toolhub_keys" FROM postgres_db_reader;'
    assert revoke + "  -- Toolhub's own tables: the line above granted them" in advice.splitlines()
    assert "ALTER DEFAULT PRIVILEGES" not in advice  # it would grant the hub's next tables too
    # Run the printed SQL for a throw-away role, except what acts on the whole server (role creation, PUBLIC).
    url = await make_role("")
    role = urllib.parse.urlsplit(url).username
    statements = [
        line.strip().replace("postgres_db_reader", f'"{role}"')
        for line in advice.splitlines()
        if line.startswith("    ") and "CREATE ROLE" not in line and "FROM PUBLIC" not in line
    ]
    conn = await asyncpg.connect(postgres_url)
    try:
        for statement in statements:
            await conn.execute(statement)
        can_read = "SELECT has_table_privilege($1, $2, 'SELECT')"
        assert await conn.fetchval(can_read, role, f'"{pg_schema}".orders')
        assert not await conn.fetchval(can_read, role, f'"{pg_schema}".toolhub_keys')
    finally:
        await conn.close()
    result = await call(
        make_server(url, pg_schema, allow_toolhub_tables=True), "execute_query", sql="TABLE toolhub_keys"
    )
    assert "permission denied" in error_text(result)


@pytest.mark.anyio
async def test_a_role_that_can_read_toolhub_tables_starts_with_a_warning_naming_the_fix(
    pg_schema: str, make_role: MakeRole, hub_tables: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = await make_role(READ_ALL.format(schema=pg_schema))
    role = urllib.parse.urlsplit(url).username
    with caplog.at_level(logging.WARNING, logger="tools.postgres_db"):
        async with AsyncpgDatabase(url, schema=pg_schema).connected():
            pass
    assert [record.getMessage() for record in caplog.records] == [
        f"PostgreSQL role '{role}' can read Toolhub's own tables ({pg_schema}.toolhub_keys). This tool refuses them, "
        "but the role should not hold that privilege at all; as a superuser: "
        f'REVOKE ALL ON {pg_schema}.toolhub_keys FROM "{role}";'
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tools.postgres_db"):
        async with AsyncpgDatabase(url, schema=pg_schema, allow_toolhub_tables=True).connected():
            pass
    assert caplog.records == []


@pytest.mark.parametrize(
    ("table", "allow_toolhub_tables", "denied"),
    [
        ("sqlite_stat4", False, True),
        ("sqlite_stat3", False, True),
        ("sqlite_stat4", True, False),
        ("sqlite_stat1", False, False),  # row counts only
        ("sqlite_dbpage", True, True),
    ],
)
def test_sqlite_sampled_keys_and_raw_pages_are_not_readable(
    table: str, allow_toolhub_tables: bool, denied: bool
) -> None:
    authorizer = Authorizer(allow_writes=False, allow_toolhub_tables=allow_toolhub_tables)
    answer = authorizer(sqlite3.SQLITE_READ, table, "sample", "main", None)
    assert answer == (sqlite3.SQLITE_DENY if denied else sqlite3.SQLITE_OK)
    assert (authorizer.denial is not None and table in authorizer.denial) == denied
