"""The start-up check of the PostgreSQL role: a superuser or a role that can write is refused unless allowed."""

from __future__ import annotations

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

_USER_SCHEMAS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' "
    "AND n.nspname NOT LIKE 'pg\\_temp\\_%'"
)

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
             ORDER BY 1 LIMIT 5) AS tables
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


async def check_role(conn: asyncpg.Connection, *, allow_writes: bool, schema: str) -> None:
    """Refuse a role that can do more than read.

    With `allow_writes` the role may write to tables, but superusers and server-level powers are still refused.

    Raises:
        UnsafeRole: naming every reason, the SQL that creates a read-only role and the flag that skips the check.
    """
    row = await conn.fetchrow(ROLE_CHECK, list(RISKY_ROLES))
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
        raise UnsafeRole(_advice(row["role"], reasons, database, schema))


def _write_reasons(row: asyncpg.Record) -> list[str]:
    """Name what the role can write: the database, schemas, tables (at most five of each are listed)."""
    reasons = ["can create schemas in (or owns) this database"] if row["db_write"] else []
    if row["schemas"]:
        reasons.append(f"can create objects in (or owns) schema {', '.join(row['schemas'])}")
    if row["tables"]:
        reasons.append(f"can write to {', '.join(row['tables'])}")
    return reasons


def _advice(role: str, reasons: list[str], database: str, schema: str) -> str:
    """Explain the refusal and print the SQL for a read-only role."""
    reader, db, nsp = "postgres_db_reader", quote_ident(database), quote_ident(schema)
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
            f"    ALTER DEFAULT PRIVILEGES IN SCHEMA {nsp} GRANT SELECT ON TABLES TO {reader};",
            "    REVOKE CREATE ON SCHEMA public FROM PUBLIC;  -- PostgreSQL 14 and older grant it to everyone",
            "",
            "Or start with --allow-unsafe-role (POSTGRES_DB_ALLOW_UNSAFE_ROLE=1) to skip this check.",
        ]
    )
