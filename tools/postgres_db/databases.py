"""The `Database` protocol the tool server talks to, its errors and the helpers both backends share.

Errors:

    DatabaseError              any failure a tool reports back to the model as an is_error result
     +-- InvalidArgument       a tool argument the database layer cannot use (bad parameter value, bad name)
     +-- NotFound              the schema or table does not exist
     +-- QueryError            the database refused or cancelled the statement; carries its own message
     +-- Refused               (_pg_policy) the statement is not allowed here; nothing reached the database
     +-- UnsafeRole            (_pg_role) the PostgreSQL role can do more than read; the server does not start
     +-- Busy                  (_limits) every query slot stayed taken for the whole queue timeout
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import math
import uuid
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tools.postgres_db._limits import Limits

JSONValue = Any
"""A value `json.dumps` accepts without a `default=` hook."""


class DatabaseError(Exception):
    """A failure reported to the caller as a tool error."""


class InvalidArgument(DatabaseError):
    """An argument the database layer cannot use."""


class NotFound(DatabaseError):
    """The requested schema or table does not exist."""


class QueryError(DatabaseError):
    """The database rejected, failed or cancelled a statement."""


@dataclass(frozen=True)
class QueryResult:
    """Rows (already JSON-safe) returned by `Database.execute`, cut at the row or byte limit.

    `cut_values` counts values shortened to the per-value limit; `byte_limit` is set when the result limit cut rows.
    """

    columns: list[str]
    rows: list[list[JSONValue]]
    truncated: bool
    status: str | None = None
    cut_values: int = 0
    byte_limit: int | None = None


class Database(Protocol):
    """What the tool server needs from a database backend; every method raises `DatabaseError` subclasses."""

    dialect: str
    default_schema: str
    allow_writes: bool
    allow_toolhub_tables: bool
    limits: Limits

    def connected(self) -> AbstractAsyncContextManager[None]:
        """Open the connection or pool for the duration of the block (re-entrant)."""
        ...

    async def list_tables(self, schema: str | None) -> dict[str, JSONValue]:
        """List tables and views in a schema."""
        ...

    async def describe_table(self, table: str, schema: str | None) -> dict[str, JSONValue]:
        """Describe the columns of a table."""
        ...

    async def execute(self, sql: str, params: Sequence[JSONValue], max_rows: int) -> QueryResult:
        """Run one statement (read-only unless writes are allowed) with a timeout and a row limit."""
        ...

    async def table_constraints(self, table: str, schema: str | None) -> dict[str, JSONValue]:
        """Return the primary key, foreign keys, unique and check constraints of a table."""
        ...

    async def table_stats(self, table: str, schema: str | None, exact_count: bool) -> dict[str, JSONValue]:
        """Return row counts, sizes and per-column statistics of a table."""
        ...


def quote_ident(name: str) -> str:
    """Quote an identifier for PostgreSQL or SQLite by doubling embedded double quotes.

    Raises:
        InvalidArgument: the name is empty or contains a NUL character.
    """
    if not name or "\x00" in name:
        raise InvalidArgument(f"Invalid identifier: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def not_found(table: str, schema: str) -> NotFound:
    """Build the error for a table that does not exist."""
    return NotFound(f"Table {table!r} not found in schema {schema!r}; call list_tables to see the available tables.")


def to_json_value(value: object) -> JSONValue:
    """Convert a driver value into something `json.dumps` accepts, keeping numbers numeric where exact."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return _decimal_to_json(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, uuid.UUID | ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]  # pyright: ignore[reportUnknownVariableType]
    return str(value)


def _decimal_to_json(value: Decimal) -> JSONValue:
    """Return an int or float when it represents the decimal exactly, else its string form."""
    if not value.is_finite():
        return str(value)
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    return as_float if Decimal(repr(as_float)) == value else str(value)


def dumps(payload: Mapping[str, JSONValue]) -> str:
    """Serialise a tool payload as readable JSON text."""
    return json.dumps(payload, ensure_ascii=False)
