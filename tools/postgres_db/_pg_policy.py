"""Which SQL the PostgreSQL backend sends: every statement goes through PostgreSQL's own parser (pglast, libpg_query).

Read-only mode lets through exactly one SELECT (no INTO, no FOR UPDATE/SHARE), WITH of read-only CTEs, VALUES,
EXPLAIN without ANALYZE of one of those, or SHOW. In every mode the walk over the whole tree refuses the functions in
`DENIED_FUNCTIONS`, whether called directly, schema-qualified, nested anywhere or in attribute notation
(`(expr).pg_read_file`), the catalogs in `DENIED_RELATIONS` and TOAST tables, and, unless allowed, Toolhub's own
`toolhub_*` tables and the statistics views that show sampled values of them (`STATISTICS_VIEWS`).
The READ ONLY transaction and a read-only role stay underneath as defense in depth.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from pglast import ast, parse_sql
from pglast.parser import ParseError

from tools.postgres_db.databases import DatabaseError

_FILES = "it reads or writes files on the database server"
_LARGE_OBJECTS = "large objects are stored server-side, so one call can fill the disk"
_REMOTE = "it connects to other servers"
_ADMIN = "it acts on other sessions or on the server itself"
_SQL_STRING = "it runs SQL given as a string, out of this filter's sight"
_STATE = "it changes server or session state"
_RAW_PAGES = "it reads raw pages or WAL of any table, past this filter's table rules"

DENIED_FUNCTIONS: dict[str, str] = {
    # A name ending in "*" denies every function with that prefix.
    "lo_*": _LARGE_OBJECTS,
    "loread": _LARGE_OBJECTS,
    "lowrite": _LARGE_OBJECTS,
    "pg_read_file": _FILES,
    "pg_read_binary_file": _FILES,
    "pg_stat_file": _FILES,
    "pg_ls_*": _FILES,
    "pg_file_*": _FILES,
    "pg_logdir_ls": _FILES,
    "pg_current_logfile": _FILES,
    "pg_show_all_file_settings": _FILES,
    "pg_hba_file_rules": _FILES,
    "pg_ident_file_mappings": _FILES,
    "dblink*": _REMOTE,
    "pg_terminate_backend": _ADMIN,
    "pg_cancel_backend": _ADMIN,
    "pg_reload_conf": _ADMIN,
    "pg_rotate_logfile": _ADMIN,
    "pg_promote": _ADMIN,
    "pg_log_backend_memory_contexts": _ADMIN,
    "pg_switch_wal": _ADMIN,
    "pg_backup_*": _ADMIN,
    "pg_start_backup": _ADMIN,
    "pg_stop_backup": _ADMIN,
    "pg_wal_replay_*": _ADMIN,
    "pg_create_*": _ADMIN,
    "pg_copy_*": _ADMIN,
    "pg_drop_replication_slot": _ADMIN,
    "pg_replication_slot_advance": _ADMIN,
    "pg_replication_origin_*": _ADMIN,
    "pg_logical_*": _ADMIN,
    "pg_stat_reset*": _ADMIN,
    "pg_stat_statements_reset": _ADMIN,
    "pg_import_system_collations": _ADMIN,
    "pg_truncate_visibility_map": _ADMIN,
    "binary_upgrade_*": _ADMIN,
    "pg_notify": _STATE,
    "pg_advisory_*": _STATE,
    "pg_try_advisory_*": _STATE,
    "set_config": _STATE,
    "txid_current": _STATE,
    "pg_current_xact_id": _STATE,
    "nextval": _STATE,
    "setval": _STATE,
    "query_to_xml*": _SQL_STRING,
    "cursor_to_xml*": _SQL_STRING,
    "table_to_xml*": _SQL_STRING,
    "schema_to_xml*": _SQL_STRING,
    "database_to_xml*": _SQL_STRING,
    "ts_stat": _SQL_STRING,
    "ts_rewrite": _SQL_STRING,
    "pg_background_*": "it runs SQL in a background worker, outside this read-only transaction",
    "get_raw_page": _RAW_PAGES,  # pageinspect: its other readers take this function's output
    "bt_page_items": _RAW_PAGES,  # pageinspect: also takes an index name
    "pg_get_wal_block_info": _RAW_PAGES,  # pg_walinspect: full-page images and block data
}
"""Functions no statement may call, with the reason given to the model; one table, tested entry by entry."""

DENIED_RELATIONS = frozenset(
    {
        "pg_authid",
        "pg_shadow",
        "pg_user_mapping",
        "pg_user_mappings",
        "pg_hba_file_rules",
        "pg_ident_file_mappings",
        "pg_file_settings",
        "pg_largeobject",
        "pg_statistic",
        "pg_statistic_ext_data",
        "pg_subscription",
        "user_mapping_options",  # information_schema: user mapping options, passwords included
        "user_mappings",
    }
)
"""Catalogs refused by name in any schema: they hold passwords, server files or raw data of other tables."""

TOAST_TABLE_PREFIX = "pg_toast_"
"""TOAST tables (`pg_toast.pg_toast_<oid>`) hold the raw long values of other tables; refused in any schema."""

TOOLHUB_TABLE_PREFIX = "toolhub_"

STATISTICS_VIEWS = frozenset({"pg_stats", "pg_stats_ext", "pg_stats_ext_exprs"})
"""Views over pg_statistic that show sampled column values (most common values, histogram bounds) of every table
the role can read, so of Toolhub's own tables too when the role can read those: refused, like the tables, unless
--allow-toolhub-tables. Refused whole rather than filtered: a filter would have to rewrite the model's SQL, and
get_table_stats already gives any other table's column statistics."""

READ_STATEMENTS = "SELECT, WITH (read-only), VALUES, TABLE, EXPLAIN (without ANALYZE) and SHOW"

_WRITE_MODE_DENIED = (
    ast.CopyStmt,
    ast.AlterSystemStmt,
    ast.LoadStmt,
    ast.DoStmt,
    ast.CreateExtensionStmt,
    ast.CreateRoleStmt,
    ast.AlterRoleStmt,
    ast.GrantRoleStmt,
    ast.VariableSetStmt,
)
"""Statements refused even with --allow-writes: they reach the server's files, programs, roles or settings."""


class Refused(DatabaseError):
    """The statement is outside what this server runs; nothing was sent to the database."""


@dataclass(frozen=True)
class Statement:
    """A statement that passed the policy: its text without a trailing semicolon, and whether it is a plain query."""

    sql: str
    is_query: bool


def check_statement(sql: str, *, allow_writes: bool = False, allow_toolhub_tables: bool = False) -> Statement:
    """Parse `sql` with PostgreSQL's parser and refuse anything but one permitted statement.

    Raises:
        Refused: a syntax error, several statements, a statement kind, function or relation that is not allowed.
    """
    try:
        raw_statements = parse_sql(sql)
    except ParseError as exc:
        raise Refused(f"Syntax error: {exc}") from exc
    except RecursionError as exc:
        raise Refused("The statement is nested too deeply.") from exc
    if len(raw_statements) != 1:
        raise Refused(f"execute_query runs exactly one statement per call; got {len(raw_statements)}.")
    raw = raw_statements[0]
    stmt = raw.stmt
    if stmt is None:
        raise Refused("execute_query needs a statement; got none.")
    if allow_writes:
        if isinstance(stmt, _WRITE_MODE_DENIED):
            raise Refused(f"{_kind(stmt)} is refused even with --allow-writes.")
    else:
        _check_read_statement(stmt)
    for node in _walk(stmt):
        _check_node(node, allow_writes=allow_writes, allow_toolhub_tables=allow_toolhub_tables)
    start = raw.stmt_location or 0
    end = None if not raw.stmt_len else start + raw.stmt_len
    text = sql[start:end]
    return Statement(sql=text, is_query=isinstance(stmt, ast.SelectStmt))


def denied_function(name: str) -> str | None:
    """Return why the function `name` (any schema) is denied, or None."""
    name = name.lower()
    if name in DENIED_FUNCTIONS:
        return DENIED_FUNCTIONS[name]
    return next(
        (why for pattern, why in DENIED_FUNCTIONS.items() if pattern.endswith("*") and name.startswith(pattern[:-1])),
        None,
    )


def denied_relation(name: str, allow_toolhub_tables: bool) -> str | None:
    """Return why reading the relation `name` (any schema) is refused, or None."""
    name = name.lower()
    if name in DENIED_RELATIONS or name.startswith(TOAST_TABLE_PREFIX):
        return f"Reading {name} is not allowed: it holds passwords, server files or other tables' data."
    if allow_toolhub_tables:
        return None
    if name.startswith(TOOLHUB_TABLE_PREFIX):
        return (
            f"Toolhub's own tables ({TOOLHUB_TABLE_PREFIX}*) are not readable through this tool "
            "(start it with --allow-toolhub-tables to change that)."
        )
    if name in STATISTICS_VIEWS:
        return (
            f"Reading {name} is not allowed: it shows sampled column values of every table this role can read, "
            f"Toolhub's own ({TOOLHUB_TABLE_PREFIX}*) included; use get_table_stats for a table's column statistics."
        )
    return None


def _check_read_statement(stmt: ast.Node | None) -> None:
    """Refuse any top-level statement that is not a plain read."""
    if isinstance(stmt, ast.ExplainStmt):
        if any(option.defname == "analyze" for option in stmt.options or ()):
            raise Refused("EXPLAIN ANALYZE executes the statement; use EXPLAIN without ANALYZE.")
        stmt = stmt.query
    if isinstance(stmt, ast.SelectStmt | ast.VariableShowStmt):
        return
    raise Refused(f"{_kind(stmt)} is not a read statement. This server is read-only and runs only {READ_STATEMENTS}.")


def _check_node(node: ast.Node, *, allow_writes: bool, allow_toolhub_tables: bool) -> None:
    """Refuse one node of the tree: a denied function or relation, or a write hidden inside a read."""
    for name in _called_names(node):
        if (why := denied_function(name)) is not None:
            raise Refused(f"Function {name}() is not allowed: {why}.")
    if isinstance(node, ast.RangeVar) and (why := denied_relation(node.relname or "", allow_toolhub_tables)):
        raise Refused(why)
    if allow_writes:
        return
    if isinstance(node, ast.SelectStmt) and node.intoClause is not None:
        raise Refused("SELECT ... INTO creates a table; this server is read-only.")
    if isinstance(node, ast.SelectStmt) and node.lockingClause:
        raise Refused("FOR UPDATE/SHARE takes row locks; this server is read-only.")
    if isinstance(node, ast.CommonTableExpr) and not isinstance(node.ctequery, ast.SelectStmt):
        raise Refused(f"WITH {node.ctename} AS ({_kind(node.ctequery)}) modifies data; this server is read-only.")


def _called_names(node: ast.Node) -> Iterator[str]:
    """Yield the names this node may call as functions: calls, and attribute notation `(expr).f`.

    A qualified column `t.f` calls f only with t's row type as its one argument, which no denied function takes,
    so column names such as `o.lo_total` are left alone.
    """
    if isinstance(node, ast.FuncCall) and node.funcname:
        yield node.funcname[-1].sval or ""
    elif isinstance(node, ast.A_Indirection):
        yield from (item.sval or "" for item in node.indirection or () if isinstance(item, ast.String))


def _walk(root: ast.Node) -> Iterator[ast.Node]:
    """Yield every node under `root` (iteratively: parse trees can be deeper than Python's recursion limit)."""
    stack: list[object] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Node):
            yield item
            slots: tuple[str, ...] = getattr(item, "__slots__")  # noqa: B009  (pglast's stubs do not declare it)
            stack.extend(getattr(item, slot) for slot in slots)
        elif isinstance(item, list | tuple):
            stack.extend(item)  # pyright: ignore[reportUnknownArgumentType]


def _kind(stmt: ast.Node | None) -> str:
    """Name a statement for an error message: CopyStmt -> COPY, AlterTableStmt -> ALTER TABLE, ..."""
    if stmt is None:
        return "An empty statement"
    name = type(stmt).__name__.removesuffix("Stmt")
    return _KIND_NAMES.get(name) or re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).upper()


_KIND_NAMES = {
    "CheckPoint": "CHECKPOINT",
    "Vacuum": "VACUUM/ANALYZE",
    "VariableSet": "SET",
    "DeclareCursor": "DECLARE",
    "Transaction": "A transaction command",
    "GrantRole": "GRANT (a role)",
    "Create": "CREATE TABLE",
    "Index": "CREATE INDEX",
    "View": "CREATE VIEW",
    "Rule": "CREATE RULE",
    "RefreshMatView": "REFRESH MATERIALIZED VIEW",
}
