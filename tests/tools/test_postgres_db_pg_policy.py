"""The PostgreSQL statement filter, statement by statement, against a real server as a superuser and as a reader.

The superuser server is started with allow_unsafe_role (it would refuse to start otherwise), so these tests show the
filter alone stops every statement; the reader runs as the low-privilege role the tool is meant to use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.tools._postgres_db_client import call, error_text
from tests.tools.conftest import MakeRole
from tools.postgres_db._pg_policy import DENIED_FUNCTIONS, DENIED_RELATIONS
from tools.postgres_db.postgres import AsyncpgDatabase
from tools.postgres_db.server import build_server

pytestmark = pytest.mark.anyio

PREFIX_EXAMPLES = {
    "lo_*": "lo_import",
    "pg_ls_*": "pg_ls_dir",
    "pg_file_*": "pg_file_write",
    "dblink*": "dblink_exec",
    "pg_backup_*": "pg_backup_start",
    "pg_wal_replay_*": "pg_wal_replay_pause",
    "pg_create_*": "pg_create_logical_replication_slot",
    "pg_copy_*": "pg_copy_logical_replication_slot",
    "pg_replication_origin_*": "pg_replication_origin_create",
    "pg_logical_*": "pg_logical_emit_message",
    "pg_stat_reset*": "pg_stat_reset_shared",
    "binary_upgrade_*": "binary_upgrade_set_next_pg_type_oid",
    "pg_advisory_*": "pg_advisory_lock",
    "pg_try_advisory_*": "pg_try_advisory_lock",
    "query_to_xml*": "query_to_xml",
    "cursor_to_xml*": "cursor_to_xml",
    "table_to_xml*": "table_to_xml",
    "schema_to_xml*": "schema_to_xml",
    "database_to_xml*": "database_to_xml",
    "pg_background_*": "pg_background_launch",
}
"""A real function for every prefix entry of the deny-list."""

REFUSED_STATEMENTS = [
    # the attacks, as they were sent
    ("COPY (SELECT 1) TO PROGRAM 'touch {tmp}/pwned'", "COPY is not a read statement."),
    ("SELECT pg_read_file('/etc/hostname')", "Function pg_read_file() is not allowed"),
    ("SELECT dblink_exec('dbname=test', 'INSERT INTO y VALUES (7)')", "Function dblink_exec() is not allowed"),
    ("SELECT lo_import('/etc/hostname')", "Function lo_import() is not allowed"),
    ("SELECT pg_terminate_backend(pg_backend_pid())", "Function pg_terminate_backend() is not allowed"),
    ("SELECT pg_reload_conf()", "Function pg_reload_conf() is not allowed"),
    ("CLUSTER y", "CLUSTER is not a read statement."),
    ("REINDEX TABLE y", "REINDEX is not a read statement."),
    ("CHECKPOINT", "CHECKPOINT is not a read statement."),
    ("LOCK TABLE y IN ACCESS EXCLUSIVE MODE", "LOCK is not a read statement."),
    ("SELECT usename, passwd FROM pg_shadow", "Reading pg_shadow is not allowed"),
    ("SELECT lo_from_bytea(0, decode(repeat('41', 5000000), 'hex'))", "Function lo_from_bytea() is not allowed"),
    ("SELECT lo_create(0)", "Function lo_create() is not allowed"),
    ("SELECT pg_notify('channel', 'x')", "Function pg_notify() is not allowed"),
    ("SELECT txid_current()", "Function txid_current() is not allowed"),
    ("SELECT pg_advisory_lock(1)", "Function pg_advisory_lock() is not allowed"),
    ("SELECT token_hash FROM toolhub_keys", "Toolhub's own tables (toolhub_*) are not readable"),
    # denied functions wherever they hide
    ("SELECT * FROM (SELECT pg_read_file('/etc/hostname')) AS s", "Function pg_read_file() is not allowed"),
    ("WITH a AS (SELECT lo_import('/etc/hostname')) SELECT * FROM a", "Function lo_import() is not allowed"),
    ("SELECT length(pg_read_file('/etc/hostname'))", "Function pg_read_file() is not allowed"),
    ("SELECT CAST(pg_read_file('/etc/hostname') AS int)", "Function pg_read_file() is not allowed"),
    ("SELECT * FROM pg_ls_dir('.')", "Function pg_ls_dir() is not allowed"),
    ("SELECT ('/etc/hostname'::text).pg_read_file", "Function pg_read_file() is not allowed"),
    ("SELECT pg_catalog.pg_read_file('/etc/hostname')", "Function pg_read_file() is not allowed"),
    ('SELECT "pg_catalog"."lo_import"(\'/etc/hostname\')', "Function lo_import() is not allowed"),
    ("SELECT 1 WHERE EXISTS (SELECT pg_notify('c', 'x'))", "Function pg_notify() is not allowed"),
    ("SELECT count(*) FILTER (WHERE pg_advisory_lock(1) IS NULL) FROM y", "Function pg_advisory_lock() is not"),
    ("SELECT id FROM y ORDER BY pg_cancel_backend(1)", "Function pg_cancel_backend() is not allowed"),
    ("VALUES (txid_current())", "Function txid_current() is not allowed"),
    ("EXPLAIN SELECT lo_create(0)", "Function lo_create() is not allowed"),
    ("SELECT query_to_xml('SELECT * FROM pg_authid', true, true, '')", "Function query_to_xml() is not allowed"),
    ("SELECT set_config('statement_timeout', '0', false)", "Function set_config() is not allowed"),
    ("SELECT nextval('customers_id_seq')", "Function nextval() is not allowed"),
    # statements that are not reads
    ("INSERT INTO y VALUES (2)", "INSERT is not a read statement."),
    ("UPDATE y SET id = 2", "UPDATE is not a read statement."),
    ("DELETE FROM y", "DELETE is not a read statement."),
    ("MERGE INTO y USING (VALUES (1)) AS v(id) ON y.id = v.id WHEN MATCHED THEN DELETE", "MERGE is not a read"),
    ("TRUNCATE y", "TRUNCATE is not a read statement."),
    ("CREATE TABLE z (a int)", "CREATE TABLE is not a read statement."),
    ("DROP TABLE y", "DROP is not a read statement."),
    ("COPY y TO '/tmp/postgres_db_y.csv'", "COPY is not a read statement."),
    ("COPY y FROM PROGRAM 'id'", "COPY is not a read statement."),
    ("VACUUM y", "VACUUM/ANALYZE is not a read statement."),
    ("ANALYZE y", "VACUUM/ANALYZE is not a read statement."),
    ("SET work_mem = '1GB'", "SET is not a read statement."),
    ("SET ROLE postgres", "SET is not a read statement."),
    ("RESET ALL", "SET is not a read statement."),
    ("DO $$ BEGIN PERFORM 1; END $$", "DO is not a read statement."),
    ("CALL p()", "CALL is not a read statement."),
    ("LISTEN c", "LISTEN is not a read statement."),
    ("NOTIFY c", "NOTIFY is not a read statement."),
    ("PREPARE p AS SELECT 1", "PREPARE is not a read statement."),
    ("EXECUTE p", "EXECUTE is not a read statement."),
    ("DECLARE c CURSOR FOR SELECT 1", "DECLARE is not a read statement."),
    ("BEGIN", "A transaction command is not a read statement."),
    ("ALTER SYSTEM SET work_mem = '1GB'", "ALTER SYSTEM is not a read statement."),
    ("GRANT SELECT ON y TO PUBLIC", "GRANT is not a read statement."),
    ("CREATE TABLE z AS SELECT 1", "CREATE TABLE AS is not a read statement."),
    ("CREATE VIEW v AS SELECT 1", "CREATE VIEW is not a read statement."),
    ("CREATE INDEX ON y (id)", "CREATE INDEX is not a read statement."),
    ("ALTER TABLE y ADD COLUMN b int", "ALTER TABLE is not a read statement."),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", "CREATE FUNCTION is not a read statement."),
    ("REFRESH MATERIALIZED VIEW v", "REFRESH MATERIALIZED VIEW is not a read statement."),
    ("EXPLAIN DELETE FROM y", "DELETE is not a read statement."),
    ("EXPLAIN ANALYZE SELECT 1", "EXPLAIN ANALYZE executes the statement"),
    ("EXPLAIN (ANALYZE false) SELECT 1", "EXPLAIN ANALYZE executes the statement"),
    ("SELECT * INTO z FROM y", "SELECT ... INTO creates a table"),
    ("SELECT * FROM y FOR UPDATE", "FOR UPDATE/SHARE takes row locks"),
    ("SELECT * FROM (SELECT * FROM y FOR SHARE) AS s", "FOR UPDATE/SHARE takes row locks"),
    ("WITH d AS (DELETE FROM y RETURNING *) SELECT * FROM d", "WITH d AS (DELETE) modifies data"),
    ("SELECT 1; SELECT 2", "execute_query runs exactly one statement per call; got 2."),
    ("-- nothing", "execute_query runs exactly one statement per call; got 0."),
    # secret catalogs, Toolhub's tables in any position
    *[(f"SELECT * FROM pg_catalog.{name}", f"Reading {name} is not allowed") for name in sorted(DENIED_RELATIONS)],
    ("SELECT * FROM y WHERE id IN (SELECT 1 FROM toolhub_keys)", "Toolhub's own tables (toolhub_*) are not"),
]

ALLOWED_READS = [
    "SELECT count(*) FROM orders",
    "WITH paid AS (SELECT * FROM orders WHERE status = 'paid') SELECT sum(amount) FROM paid",
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) SELECT i FROM n",
    "VALUES (1, 'a'), (2, 'b')",
    "TABLE y",
    "EXPLAIN SELECT * FROM orders WHERE id = 1",
    "EXPLAIN (FORMAT JSON, VERBOSE) SELECT * FROM orders",
    "SHOW statement_timeout",
    "SELECT c.name, count(o.id) FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY 1 ORDER BY 1",
    "SELECT id, rank() OVER (ORDER BY amount DESC) FROM orders",
    "SELECT * FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE name = 'Ada')",
    "SELECT relname FROM pg_class WHERE relname = 'orders'",
    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1",
    "SELECT 'orders'::regclass::text",
    "SELECT current_setting('statement_timeout'), current_user = session_user",
    "SELECT generate_series(1, 3)",
    "SELECT pg_sleep(0)",
    "SELECT jsonb_build_object('a', 1), now() > '2020-01-01', lower(email) FROM customers LIMIT 1",
    "SELECT 1;",
    "SELECT 1 -- a trailing comment",
    "SELECT o.lo_total, o.nextval FROM (SELECT 1 AS lo_total, 2 AS nextval) AS o",
]


def make_server(url: str, schema: str, **options: Any) -> Any:
    """A server over the test schema; the superuser one must skip the role check to start at all."""
    return build_server(AsyncpgDatabase(url, schema=schema, statement_timeout=5, **options))


async def create_toolhub_keys(url: str, schema: str) -> None:
    """Put a table named like Toolhub's own into the test schema."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE TABLE "{schema}".toolhub_keys (token_hash text)')
        await conn.execute(f"INSERT INTO \"{schema}\".toolhub_keys VALUES ('secret')")
    finally:
        await conn.close()


@pytest.fixture(params=["superuser", "reader"])
async def target(
    request: pytest.FixtureRequest, postgres_url: str, pg_schema: str, make_role: MakeRole
) -> tuple[str, dict[str, Any]]:
    """The DSN and options of each role under test; the reader may SELECT every table, toolhub_keys included."""
    await create_toolhub_keys(postgres_url, pg_schema)
    if request.param == "superuser":
        return postgres_url, {"allow_unsafe_role": True}
    grants = f'GRANT USAGE ON SCHEMA "{pg_schema}" TO {{role}}; GRANT SELECT ON ALL TABLES IN SCHEMA "{pg_schema}" '
    grants += "TO {role}"
    return await make_role(grants), {}


@pytest.mark.parametrize("pattern", list(DENIED_FUNCTIONS))
async def test_every_denied_function_is_refused(
    target: tuple[str, dict[str, Any]], pg_schema: str, pattern: str
) -> None:
    name = PREFIX_EXAMPLES.get(pattern, pattern)
    url, options = target
    result = await call(make_server(url, pg_schema, **options), "execute_query", sql=f"SELECT {name}()")
    assert error_text(result) == f"Function {name}() is not allowed: {DENIED_FUNCTIONS[pattern]}."


def test_every_prefix_entry_has_a_real_example() -> None:
    assert set(PREFIX_EXAMPLES) == {pattern for pattern in DENIED_FUNCTIONS if pattern.endswith("*")}


@pytest.mark.parametrize(("sql", "message"), REFUSED_STATEMENTS)
async def test_statements_that_are_not_plain_reads_are_refused(
    target: tuple[str, dict[str, Any]], pg_schema: str, tmp_path: Path, sql: str, message: str
) -> None:
    url, options = target
    result = await call(make_server(url, pg_schema, **options), "execute_query", sql=sql.format(tmp=tmp_path))
    assert error_text(result).startswith(message)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("sql", ALLOWED_READS)
async def test_plain_reads_keep_working(target: tuple[str, dict[str, Any]], pg_schema: str, sql: str) -> None:
    url, options = target
    result = await call(make_server(url, pg_schema, **options), "execute_query", sql=sql)
    assert not result.is_error, result.content


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("COPY (SELECT 1) TO PROGRAM 'touch {tmp}/pwned'", "COPY is refused even with --allow-writes."),
        ("COPY y FROM '/etc/hostname'", "COPY is refused even with --allow-writes."),
        ("ALTER SYSTEM SET work_mem = '1GB'", "ALTER SYSTEM is refused even with --allow-writes."),
        ("LOAD 'auto_explain'", "LOAD is refused even with --allow-writes."),
        ("DO $$ BEGIN PERFORM 1; END $$", "DO is refused even with --allow-writes."),
        ("CREATE EXTENSION dblink", "CREATE EXTENSION is refused even with --allow-writes."),
        ("CREATE ROLE intruder SUPERUSER", "CREATE ROLE is refused even with --allow-writes."),
        ("ALTER ROLE CURRENT_USER NOSUPERUSER", "ALTER ROLE is refused even with --allow-writes."),
        ("GRANT pg_execute_server_program TO CURRENT_USER", "GRANT (a role) is refused even with --allow-writes."),
        ("SET ROLE postgres", "SET is refused even with --allow-writes."),
        ("INSERT INTO y SELECT lo_import('/etc/hostname')", "Function lo_import() is not allowed"),
        ("INSERT INTO y SELECT length(passwd) FROM pg_shadow", "Reading pg_shadow is not allowed"),
        ("DELETE FROM toolhub_keys", "Toolhub's own tables (toolhub_*) are not readable"),
        ("SELECT 1; DROP TABLE y", "execute_query runs exactly one statement per call; got 2."),
    ],
)
async def test_allow_writes_still_refuses_the_server_and_the_deny_list(
    postgres_url: str, pg_schema: str, tmp_path: Path, sql: str, message: str
) -> None:
    await create_toolhub_keys(postgres_url, pg_schema)
    server = make_server(postgres_url, pg_schema, allow_unsafe_role=True, allow_writes=True)
    result = await call(server, "execute_query", sql=sql.format(tmp=tmp_path))
    assert error_text(result).startswith(message)
    assert not (tmp_path / "pwned").exists()


async def test_toolhub_tables_are_readable_with_the_flag(postgres_url: str, pg_schema: str) -> None:
    await create_toolhub_keys(postgres_url, pg_schema)
    server = make_server(postgres_url, pg_schema, allow_unsafe_role=True, allow_toolhub_tables=True)
    result = await call(server, "execute_query", sql="SELECT count(*) FROM toolhub_keys")
    assert result.structured_content == {"columns": ["count"], "rows": [[1]], "row_count": 1, "truncated": False}
    stats = await call(
        make_server(postgres_url, pg_schema, allow_unsafe_role=True), "get_table_stats", table="toolhub_keys"
    )
    assert error_text(stats) == "Toolhub's own tables (toolhub_*) have no statistics through this tool."


async def test_the_attacks_leave_no_trace(postgres_url: str, pg_schema: str, tmp_path: Path) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        large_objects = await conn.fetchval("SELECT count(*) FROM pg_largeobject_metadata")
        server = make_server(postgres_url, pg_schema, allow_unsafe_role=True)
        for sql in (
            f"COPY (SELECT 1) TO PROGRAM 'touch {tmp_path}/pwned'",
            "SELECT lo_from_bytea(0, decode(repeat('41', 5000000), 'hex'))",
            "SELECT pg_advisory_lock(739174)",
        ):
            assert (await call(server, "execute_query", sql=sql)).is_error
        assert await conn.fetchval("SELECT count(*) FROM pg_largeobject_metadata") == large_objects
        held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 AND objid = 739174"
        assert await conn.fetchval(held) == 0  # other tests on this server may hold advisory locks of their own
        assert not (tmp_path / "pwned").exists()
    finally:
        await conn.close()
