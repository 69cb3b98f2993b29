"""What the SQLite backend lets a statement do: an authorizer callback and a length limit set on each connection.

The authorizer sees every table, column, function and pragma a statement touches before it runs. It denies functions
that corrupt memory or reach files (`fts3_tokenizer`, `load_extension`, ...) and raw page reads (`sqlite_dbpage`) in
every mode; Toolhub's own tables and the sampled index keys of `sqlite_stat4` (theirs too) unless allowed; and in
read-only mode every write, ATTACH/DETACH, transaction control and pragma assignments.
`SQLITE_LIMIT_LENGTH` bounds any string or blob a statement builds (`zeroblob(900000000)` fails at once).
"""

from __future__ import annotations

import sqlite3

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
_READ_ONLY = "this server is read-only; it must be started with --allow-writes to change data"

_TOOLHUB_TABLES = "Toolhub's own tables (toolhub_*) are not readable through this tool (see --allow-toolhub-tables)"
_SAMPLED_TABLES = frozenset({"sqlite_stat3", "sqlite_stat4"})
"""ANALYZE's samples of every index's keys (builds with STAT4), so of Toolhub's own tables' too."""
_SAMPLED = "{} holds sampled index keys of every table, Toolhub's own included (see --allow-toolhub-tables)"
_RAW_PAGES = "sqlite_dbpage returns raw database pages, every table's included"


class Authorizer:
    """The authorizer of one connection; `denial` says why it last refused, since SQLite only says "not authorized"."""

    def __init__(self, *, allow_writes: bool, allow_toolhub_tables: bool) -> None:
        self.allow_writes = allow_writes
        self.allow_toolhub_tables = allow_toolhub_tables
        self.denial: str | None = None

    def __call__(self, action: int, arg1: str | None, arg2: str | None, _db: str | None, _src: str | None) -> int:
        why = self._why_not(action, arg1, arg2)
        if why is None:
            return sqlite3.SQLITE_OK
        self.denial = why
        return sqlite3.SQLITE_DENY

    def _why_not(self, action: int, arg1: str | None, arg2: str | None) -> str | None:
        """Return why the action is denied, or None when it is allowed."""
        name = (arg2 or "").lower()
        if action == sqlite3.SQLITE_FUNCTION and name in DENIED_SQLITE_FUNCTIONS:
            return f"function {name}() is not allowed: {DENIED_SQLITE_FUNCTIONS[name]}"
        table = (arg1 or "").lower()
        if action == sqlite3.SQLITE_READ and (why := self._unreadable(table)):
            return why
        if self.allow_writes:
            return None
        # SQLite itself asks for UPDATE on sqlite_master while it declares a pragma's virtual table
        if action in _WRITES and not (action == sqlite3.SQLITE_UPDATE and table in _SCHEMA_TABLES):
            return _READ_ONLY
        if action == sqlite3.SQLITE_PRAGMA and arg2 is not None and table not in READ_PRAGMAS:
            return _READ_ONLY
        return None

    def _unreadable(self, table: str) -> str | None:
        """Return why the table may not be read, or None."""
        if table == "sqlite_dbpage":
            return _RAW_PAGES
        if self.allow_toolhub_tables:
            return None
        if table.startswith("toolhub_"):
            return _TOOLHUB_TABLES
        return _SAMPLED.format(table) if table in _SAMPLED_TABLES else None


def configure(conn: sqlite3.Connection, authorizer: Authorizer, *, max_length: int) -> None:
    """Apply the length limit, then (read-only) query_only, then the authorizer, on a fresh connection."""
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max_length)
    if not authorizer.allow_writes:
        conn.execute("PRAGMA query_only = ON")
    conn.set_authorizer(authorizer)
