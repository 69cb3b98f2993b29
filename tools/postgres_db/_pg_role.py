"""The start-up check of the PostgreSQL role: a superuser or a role that can write is refused unless allowed.

A role that can read Toolhub's own `toolhub_*` tables starts with a warning: the SQL filter refuses those tables, but
the role should not hold the privilege at all, and the SQL printed for a read-only role revokes it.
"""

from __future__ import annotations

import logging

import asyncpg

from tools.postgres_db.databases import DatabaseError, quote_ident

RISKY_ROLES = (
    "pg_execute_server_program",
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_write_all_data",
    "pg_signal_backend",
    "pg_checkpoint",
    "pg_create_subscription",
)
"""Built-in roles whose membership reaches the server's files, programs, other sessions or every table."""

logger = logging.getLogger(__name__)

_USER_SCHEMAS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' "
    "AND n.nspname NOT LIKE 'pg\\_temp\\_%'"
)

_TOOLHUB = "c.relname LIKE 'toolhub\\_%' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"

ROLE_CHECK = f"""
SELECT r.rolname AS role, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls,
       ARRAY(SELECT b.rolname::text FROM pg_roles b
             WHERE b.rolname = ANY ($1::text[]) AND pg_has_role(r.oid, b.oid, 'MEMBER') ORDER BY 1) AS risky_roles,
       has_database_privilege(current_database(), 'CREATE') OR pg_has_role(r.oid, d.datdba, 'MEMBER') AS db_write,
       ARRAY(SELECT n.nspname::text FROM pg_namespace n
             WHERE {_USER_SCHEMAS}
               AND (has_schema_privilege(n.oid, 'CREATE') OR pg_has_role(r.oid, n.nspowner, 'MEMBER'))
             ORDER BY 1 LIMIT 5) AS schemas,
       ARRAY(SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE {_USER_SCHEMAS} AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
               AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER')
             ORDER BY 1 LIMIT 5) AS tables,
       ARRAY(SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE {_USER_SCHEMAS} AND {_TOOLHUB} AND has_schema_privilege(n.oid, 'USAGE')
               AND has_any_column_privilege(c.oid, 'SELECT')
             ORDER BY 1) AS toolhub_readable,
       ARRAY(SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $2 AND {_TOOLHUB} ORDER BY 1) AS toolhub_in_schema
FROM pg_roles r JOIN pg_database d ON d.datname = current_database()
WHERE r.rolname = current_user
"""

_ATTRIBUTES = {
    "rolsuper": "is a superuser",
    "rolcreaterole": "has CREATEROLE",
    "rolcreatedb": "has CREATEDB",
    "rolreplication": "has REPLICATION",
    "rolbypassrls": "has BYPASSRLS",
}


class UnsafeRole(DatabaseError):
    """The configured role could change data or reach the server; the server refuses to start with it."""


async def check_role(
    conn: asyncpg.Connection, *, allow_writes: bool, schema: str, allow_toolhub_tables: bool = False
) -> None:
    """Refuse a role that can do more than read; warn when it can read Toolhub's own tables.

    With `allow_writes` the role may write to tables, but superusers and server-level powers are still refused.

    Raises:
        UnsafeRole: naming every reason, the SQL that creates a read-only role and the flag that skips the check.
    """
    row = await conn.fetchrow(ROLE_CHECK, list(RISKY_ROLES), schema)
    if row is None:
        return
    if row["rolsuper"]:
        reasons = ["is a superuser"]
    else:
        reasons = [text for column, text in _ATTRIBUTES.items() if row[column]]
        if row["risky_roles"]:
            reasons.append(f"is a member of {', '.join(row['risky_roles'])}")
        if not allow_writes:
            reasons += _write_reasons(row)
    if reasons:
        database = str(await conn.fetchval("SELECT current_database()"))
        raise UnsafeRole(_advice(row["role"], reasons, database, schema, list(row["toolhub_in_schema"])))
    if row["toolhub_readable"] and not allow_toolhub_tables:
        logger.warning(_toolhub_warning(row["role"], list(row["toolhub_readable"])))


def _write_reasons(row: asyncpg.Record) -> list[str]:
    """Name what the role can write: the database, schemas, tables (at most five of each are listed)."""
    reasons = ["can create schemas in (or owns) this database"] if row["db_write"] else []
    if row["schemas"]:
        reasons.append(f"can create objects in (or owns) schema {', '.join(row['schemas'])}")
    if row["tables"]:
        reasons.append(f"can write to {', '.join(row['tables'])}")
    return reasons


def _advice(role: str, reasons: list[str], database: str, schema: str, toolhub_tables: list[str]) -> str:
    """Explain the refusal and print the SQL for a read-only role, which never reaches Toolhub's own tables."""
    reader, db, nsp = "postgres_db_reader", quote_ident(database), quote_ident(schema)
    grant_new = f"    ALTER DEFAULT PRIVILEGES IN SCHEMA {nsp} GRANT SELECT ON TABLES TO {reader};"
    shared: list[str] = []
    if toolhub_tables:  # the grant on every table covers them; granting future tables would cover new ones
        tables = ", ".join(f"{nsp}.{quote_ident(table)}" for table in toolhub_tables)
        grant_new = f"    REVOKE ALL ON {tables} FROM {reader};  -- Toolhub's own tables: the line above granted them"
        shared = [
            "",
            f"Schema {nsp} holds Toolhub's own tables (toolhub_*), so tables created later are not granted by default "
            "(that would grant Toolhub's next ones too). Better: keep Toolhub's tables in a database of their own.",
        ]
    return "\n".join(
        [
            f"Refusing to run as PostgreSQL role {role!r}: it " + "; it ".join(reasons) + ".",
            "The model's SQL runs with this role's powers. Create a read-only role and use it in the DSN "
            "(as a superuser):",
            "",
            f"    CREATE ROLE {reader} LOGIN PASSWORD 'change-me' NOSUPERUSER NOCREATEDB NOCREATEROLE;",
            f"    GRANT CONNECT ON DATABASE {db} TO {reader};",
            f"    GRANT USAGE ON SCHEMA {nsp} TO {reader};",
            f"    GRANT SELECT ON ALL TABLES IN SCHEMA {nsp} TO {reader};",
            grant_new,
            "    REVOKE CREATE ON SCHEMA public FROM PUBLIC;  -- PostgreSQL 14 and older grant it to everyone",
            *shared,
            "",
            "Or start with --allow-unsafe-role (POSTGRES_DB_ALLOW_UNSAFE_ROLE=1) to skip this check.",
        ]
    )


def _toolhub_warning(role: str, readable: list[str]) -> str:
    """Say which of Toolhub's own tables the role can read, and the SQL that takes the privilege away."""
    tables = ", ".join(readable)
    return (
        f"PostgreSQL role {role!r} can read Toolhub's own tables ({tables}). This tool refuses them, but the role "
        f"should not hold that privilege at all; as a superuser: REVOKE ALL ON {tables} FROM {quote_ident(role)};"
    )
