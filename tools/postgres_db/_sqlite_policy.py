"""What the SQLite backend lets a statement do: an authorizer callback and a length limit set on each connection.

The authorizer sees every table, column, function and pragma a statement touches before it runs. It denies functions
that corrupt memory or reach files (`fts3_tokenizer`, `load_extension`, ...) in every mode, Toolhub's own tables
unless allowed, and in read-only mode every write, ATTACH/DETACH, transaction control and pragma assignments.
`SQLITE_LIMIT_LENGTH` bounds any string or blob a statement builds (`zeroblob(900000000)` fails at once).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from tools.postgres_db._limits import MIB

SQLITE_MAX_LENGTH = 16 * MIB
"""The longest string or blob (and row) a statement may build or read; SQLite's own default is 1 GB."""

DENIED_SQLITE_FUNCTIONS: dict[str, str] = {
    "fts3_tokenizer": "it reads and writes raw pointers (a crafted call crashes the process)",
    "load_extension": "it loads native code into the process",
    "readfile": "it reads files",
    "writefile": "it writes files",
    "edit": "it starts an editor",
}
"""Functions no statement may call, in any mode."""

READ_PRAGMAS = frozenset(
    {
        "table_info",
        "table_xinfo",
        "table_list",
        "index_list",
        "index_info",
        "index_xinfo",
        "foreign_key_list",
        "foreign_key_check",
        "database_list",
        "collation_list",
        "function_list",
        "module_list",
        "pragma_list",
        "compile_options",
        "integrity_check",
        "quick_check",
    }
)
"""Pragmas whose argument only selects what to read; any other pragma with an argument (an assignment) is denied."""

_WRITES = frozenset(
    {
        sqlite3.SQLITE_INSERT,
        sqlite3.SQLITE_UPDATE,
        sqlite3.SQLITE_DELETE,
        sqlite3.SQLITE_ALTER_TABLE,
        sqlite3.SQLITE_REINDEX,
        sqlite3.SQLITE_ANALYZE,
        sqlite3.SQLITE_ATTACH,
        sqlite3.SQLITE_DETACH,
        sqlite3.SQLITE_TRANSACTION,
        sqlite3.SQLITE_SAVEPOINT,
        sqlite3.SQLITE_CREATE_VTABLE,
        sqlite3.SQLITE_DROP_VTABLE,
        *range(sqlite3.SQLITE_CREATE_INDEX, sqlite3.SQLITE_CREATE_VIEW + 1),
        *range(sqlite3.SQLITE_DROP_INDEX, sqlite3.SQLITE_DROP_VIEW + 1),
    }
)
_SCHEMA_TABLES = {"sqlite_master", "sqlite_temp_master"}

Authorizer = Callable[[int, str | None, str | None, str | None, str | None], int]


def make_authorizer(*, allow_writes: bool, allow_toolhub_tables: bool) -> Authorizer:
    """Build the authorizer for one connection."""

    def authorize(action: int, arg1: str | None, arg2: str | None, _db: str | None, _source: str | None) -> int:
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in DENIED_SQLITE_FUNCTIONS:
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_READ and not allow_toolhub_tables and (arg1 or "").lower().startswith("toolhub_"):
            return sqlite3.SQLITE_DENY
        if allow_writes:
            return sqlite3.SQLITE_OK
        if action in _WRITES:
            # SQLite itself asks for UPDATE on sqlite_master while it declares a pragma's virtual table
            internal = action == sqlite3.SQLITE_UPDATE and arg1 in _SCHEMA_TABLES
            return sqlite3.SQLITE_OK if internal else sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_PRAGMA and arg2 is not None and (arg1 or "").lower() not in READ_PRAGMAS:
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    return authorize


def denial_reason(sql: str) -> str | None:
    """Guess which rule denied `sql` (the authorizer only says "not authorized"), for a clearer message."""
    lowered = sql.lower()
    for name, why in DENIED_SQLITE_FUNCTIONS.items():
        if name in lowered:
            return f"function {name}() is not allowed: {why}"
    if "toolhub_" in lowered:
        return "Toolhub's own tables (toolhub_*) are not readable through this tool (see --allow-toolhub-tables)"
    return None


def configure(conn: sqlite3.Connection, *, allow_writes: bool, allow_toolhub_tables: bool, max_length: int) -> None:
    """Apply the length limit, then (read-only) query_only, then the authorizer, on a fresh connection."""
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max_length)
    if not allow_writes:
        conn.execute("PRAGMA query_only = ON")
    conn.set_authorizer(make_authorizer(allow_writes=allow_writes, allow_toolhub_tables=allow_toolhub_tables))
