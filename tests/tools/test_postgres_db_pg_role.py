"""The start-up role check: the PostgreSQL backend opens only for a role that can just read, unless told otherwise."""

from __future__ import annotations

import pytest

from tests.tools.conftest import MakeRole
from tools.postgres_db._pg_role import UnsafeRole
from tools.postgres_db.postgres import AsyncpgDatabase

pytestmark = pytest.mark.anyio

READ = 'GRANT USAGE ON SCHEMA "{schema}" TO {{role}}; GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO {{role}};'


async def start(url: str, schema: str, **options: bool) -> None:
    """Open and close the backend the way the server does at start."""
    async with AsyncpgDatabase(url, schema=schema, **options).connected():
        pass


async def refusal(url: str, schema: str, **options: bool) -> str:
    """The first line of the error a refused start gives."""
    with pytest.raises(UnsafeRole) as exc_info:
        await start(url, schema, **options)
    return str(exc_info.value).splitlines()[0]


async def test_a_superuser_is_refused_with_the_sql_for_a_read_only_role(postgres_url: str, pg_schema: str) -> None:
    with pytest.raises(UnsafeRole) as exc_info:
        await start(postgres_url, pg_schema)
    lines = str(exc_info.value).splitlines()
    assert lines[0] == "Refusing to run as PostgreSQL role 'postgres': it is a superuser."
    assert lines[3:6] == [
        "    CREATE ROLE postgres_db_reader LOGIN PASSWORD 'change-me' NOSUPERUSER NOCREATEDB NOCREATEROLE;",
        '    GRANT CONNECT ON DATABASE "test" TO postgres_db_reader;',
        f'    GRANT USAGE ON SCHEMA "{pg_schema}" TO postgres_db_reader;',
    ]
    assert lines[-1] == "Or start with --allow-unsafe-role (POSTGRES_DB_ALLOW_UNSAFE_ROLE=1) to skip this check."


async def test_a_superuser_is_refused_even_with_allow_writes(postgres_url: str, pg_schema: str) -> None:
    assert await refusal(postgres_url, pg_schema, allow_writes=True) == (
        "Refusing to run as PostgreSQL role 'postgres': it is a superuser."
    )


async def test_allow_unsafe_role_skips_the_check(postgres_url: str, pg_schema: str) -> None:
    await start(postgres_url, pg_schema, allow_unsafe_role=True)


async def test_a_role_that_can_only_read_starts(make_role: MakeRole, pg_schema: str) -> None:
    await start(await make_role(READ.format(schema=pg_schema)), pg_schema)


@pytest.mark.parametrize(
    ("grants", "reason"),
    [
        ('GRANT INSERT ON "{schema}".y TO {{role}}', "can write to {schema}.y"),
        ('GRANT UPDATE ON "{schema}".orders TO {{role}}', "can write to {schema}.orders"),
        ('GRANT TRUNCATE ON ALL TABLES IN SCHEMA "{schema}" TO {{role}}', "can write to {schema}.customers"),
        ('GRANT USAGE, UPDATE ON "{schema}".customers_id_seq TO {{role}}', "can write to {schema}.customers_id_seq"),
        ('GRANT CREATE ON SCHEMA "{schema}" TO {{role}}', "can create objects in (or owns) schema {schema}"),
        ("GRANT CREATE ON DATABASE test TO {{role}}", "can create schemas in (or owns) this database"),
        ("ALTER ROLE {{role}} CREATEDB", "has CREATEDB"),
        ("ALTER ROLE {{role}} CREATEROLE", "has CREATEROLE"),
        ("ALTER ROLE {{role}} REPLICATION", "has REPLICATION"),
        ("ALTER ROLE {{role}} BYPASSRLS", "has BYPASSRLS"),
        ("GRANT pg_read_server_files TO {{role}}", "is a member of pg_read_server_files"),
        ("GRANT pg_write_server_files TO {{role}}", "is a member of pg_write_server_files"),
        ("GRANT pg_execute_server_program TO {{role}}", "is a member of pg_execute_server_program"),
        ("GRANT pg_signal_backend TO {{role}}", "is a member of pg_signal_backend"),
        ("GRANT pg_write_all_data TO {{role}}", "is a member of pg_write_all_data"),
    ],
)
async def test_a_role_that_can_do_more_than_read_is_refused(
    make_role: MakeRole, pg_schema: str, grants: str, reason: str
) -> None:
    url = await make_role(READ.format(schema=pg_schema) + grants.format(schema=pg_schema))
    message = await refusal(url, pg_schema)
    assert message.startswith("Refusing to run as PostgreSQL role "), message
    assert f": it {reason.format(schema=pg_schema)}" in message, message


async def test_allow_writes_accepts_table_writes_but_not_server_powers(make_role: MakeRole, pg_schema: str) -> None:
    writer = await make_role(READ.format(schema=pg_schema) + f'GRANT INSERT ON "{pg_schema}".y TO {{role}}')
    await start(writer, pg_schema, allow_writes=True)
    program = await make_role(READ.format(schema=pg_schema) + "GRANT pg_execute_server_program TO {role}")
    assert (await refusal(program, pg_schema, allow_writes=True)).endswith(
        ": it is a member of pg_execute_server_program."
    )
