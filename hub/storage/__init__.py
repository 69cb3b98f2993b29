"""Where keys, spend logs and tool calls live: one `Store` protocol, SQLite (embedded default) and PostgreSQL.

`open_store(url)` picks the backend from the URL: `postgresql://...` / `postgres://...` (or SQLAlchemy's
`postgresql+asyncpg://...`, ...) -> asyncpg, `sqlite:///path` or a plain path -> aiosqlite, None -> `toolhub.db` in
the working directory; any other scheme is refused (`database_url_problem`). `migrate()` applies the numbered files
in `migrations/` once each and records them in `toolhub_migrations`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeGuard

from hub.accounts.usage import ToolCallRecord, UsageRecord

if TYPE_CHECKING:
    from hub.storage.postgres import PostgresStore

DEFAULT_SQLITE_PATH = "toolhub.db"


class StoreError(Exception):
    """The database refused or could not be reached; the message says what failed."""


class StoreConflict(StoreError):
    """A unique value (a key alias, a key) already exists."""


@dataclass(slots=True)
class KeyRow:
    """A virtual key as stored: never the key itself, only its SHA-256 (`token_hash`)."""

    token_hash: str
    key_name: str
    """The key abbreviated for display, e.g. `sk-...a1b2`."""
    created_at: float
    updated_at: float
    key_alias: str | None = None
    models: list[str] | None = None
    mcp_servers: list[str] | None = None
    mcp_tools: list[str] | None = None
    max_budget: float | None = None
    budget_duration: str | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    expires: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict[str, Any])
    blocked: bool = False


@dataclass(frozen=True, slots=True)
class SpendQuery:
    """Filters for `/spend/logs`; times are Unix seconds, `end` exclusive."""

    key_hash: str | None = None
    model: str | None = None
    start: float | None = None
    end: float | None = None
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True, slots=True)
class StoredUsage:
    """A usage record with the id that makes writing it twice harmless (retries, spill-file replays)."""

    id: str
    record: UsageRecord


@dataclass(frozen=True, slots=True)
class StoredToolCall:
    id: str
    call: ToolCallRecord


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A Responses API answer kept for `previous_response_id` (hub/api/responses); `key_hash` None: master key."""

    id: str
    key_hash: str | None
    created_at: float
    response: dict[str, Any]
    input_items: list[Any]
    messages: list[Any]
    """The whole conversation up to and including this answer, as Chat Completions messages."""


class Store(Protocol):
    """The storage interface every backend implements."""

    url: str

    async def connect(self) -> None: ...

    async def migrate(self) -> list[int]:
        """Apply pending migrations; return the versions applied now."""
        ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...

    async def insert_key(self, row: KeyRow) -> None:
        """Raises StoreConflict when the alias (or key) exists."""
        ...

    async def get_key(self, token_hash: str) -> KeyRow | None: ...

    async def find_key_by_alias(self, alias: str) -> KeyRow | None: ...

    async def list_keys(self, *, alias: str | None, limit: int, offset: int) -> tuple[list[KeyRow], int]: ...

    async def update_key(self, token_hash: str, changes: Mapping[str, Any]) -> KeyRow | None:
        """Set the given KeyRow fields; None when there is no such key. Raises StoreConflict on a taken alias."""
        ...

    async def delete_keys(self, token_hashes: Sequence[str]) -> list[str]:
        """Delete keys; return the hashes that existed."""
        ...

    async def write_usage(self, rows: Sequence[StoredUsage]) -> None:
        """Insert in one transaction; rows whose id exists are skipped."""
        ...

    async def write_tool_calls(self, rows: Sequence[StoredToolCall]) -> None: ...

    async def spend_since(self, token_hash: str, since: float) -> float:
        """Total cost logged for a key since `since`."""
        ...

    async def spend_logs(self, query: SpendQuery) -> tuple[list[dict[str, Any]], int]:
        """Matching rows, newest first, and the number of matches."""
        ...

    async def daily_spend(
        self, group_by: Literal["key", "model"], *, start: float | None, end: float | None, key_hash: str | None
    ) -> list[dict[str, Any]]: ...

    async def tool_calls(self, *, limit: int) -> list[dict[str, Any]]: ...

    # --- Stored responses (hub/api/responses) ---

    async def save_response(self, row: StoredResponse) -> None: ...

    async def get_response(self, response_id: str) -> StoredResponse | None: ...

    async def delete_response(self, response_id: str) -> None: ...

    async def delete_responses_before(self, created_before: float) -> None: ...

    # --- SQL of modules that keep their own tables (hub/catalog/results.py, hub/ui/queries.py, ...) ---
    # `$n` parameters, the same text on SQLite and PostgreSQL; failures raise StoreError / StoreConflict.

    async def fetch(self, text: str, args: Sequence[Any]) -> Sequence[Any]:
        """The rows of one query, outside any transaction; each row reads by column name (`row["n"]`, `dict(row)`)."""
        ...

    async def execute(self, text: str, args: Sequence[Any]) -> None:
        """Run one statement in its own transaction."""
        ...

    async def execute_many(self, text: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per parameter row, all in one transaction."""
        ...


def is_postgres(store: Store) -> TypeGuard[PostgresStore]:
    """Whether `store` is a PostgresStore, without importing asyncpg (~3 MB) into a process that runs on SQLite (one
    exists only once hub/storage/postgres.py was loaded)."""
    module = sys.modules.get("hub.storage.postgres")
    return module is not None and isinstance(store, module.PostgresStore)


POSTGRES_SCHEMES = frozenset({"postgresql", "postgres"})
SQLITE_SCHEMES = frozenset({"sqlite"})
_PG_DRIVERS = frozenset({"asyncpg", "psycopg", "psycopg2", "pg8000"})
_DRIVERS = {"postgresql": _PG_DRIVERS, "postgres": _PG_DRIVERS, "sqlite": frozenset({"aiosqlite", "pysqlite"})}
"""SQLAlchemy's driver parts (`postgresql+asyncpg://`, as LiteLLM users write it): the same database, which Toolhub
opens with asyncpg or aiosqlite whatever driver the URL names."""
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")
"""A URL's scheme; at least two characters, so that a Windows drive (`C:`) stays a path."""


def _scheme(url: str | None) -> str | None:
    """The scheme without a known driver part (`postgresql+asyncpg` -> `postgresql`), lower case; None: a path."""
    match = _SCHEME.match(url or "")
    if match is None:
        return None
    written = match.group(1).lower()
    scheme, _, driver = written.partition("+")
    return scheme if not driver or driver in _DRIVERS.get(scheme, ()) else written


def database_url_problem(url: str | None) -> str | None:
    """Why `url` names no database Toolhub can open (None: it names one). Without this check a typo of the scheme
    (`postgresq://`, `mysql://`) was opened as a SQLite file of that name in the working directory, so keys and spend
    quietly stayed on one replica. The URL itself is not repeated: it may hold a password."""
    scheme = _scheme(url)
    if scheme is None or scheme in POSTGRES_SCHEMES or scheme in SQLITE_SCHEMES:
        return None
    return (f"unsupported scheme {scheme!r}: use postgresql:// or postgres:// for PostgreSQL (also "
            "postgresql+asyncpg://, +psycopg://, +psycopg2://), sqlite:///relative.db, sqlite:////absolute.db or a "
            "file path for SQLite")  # fmt: skip


def check_database_url(url: str | None) -> None:
    """Refuse a `general_settings.database_url` Toolhub cannot open (`database_url_problem`), as a config error: each
    command checks before it opens a store, so no SQLite file named after the URL is made.

    Raises:
        ConfigError: the URL's scheme names no database Toolhub opens.
    """
    from hub.config import ConfigError  # here: hub.config imports nothing of hub.storage, nor should it at import

    if (problem := database_url_problem(url)) is not None:
        raise ConfigError("general_settings.database_url", problem)


def is_postgres_url(url: str | None) -> bool:
    return _scheme(url) in POSTGRES_SCHEMES


def postgres_dsn(url: str) -> str:
    """`url` as asyncpg reads it: SQLAlchemy's `postgresql+asyncpg://...` without the driver part."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.partition('+')[0]}{sep}{rest}"


def sqlite_path(url: str | None) -> str:
    """The file behind `sqlite:///relative.db`, `sqlite:////absolute.db` or a plain path; `toolhub.db` when unset."""
    if not url:
        return DEFAULT_SQLITE_PATH
    if _scheme(url) in SQLITE_SCHEMES:
        rest = url.partition(":")[2]
        return rest.removeprefix("//").removeprefix("/") or DEFAULT_SQLITE_PATH
    return url


def open_store(url: str | None, *, schema: str | None = None) -> Store:
    """A store for `url`, not connected yet: `await store.connect()`, then `await store.migrate()`.

    Raises:
        StoreError: the URL's scheme is neither PostgreSQL's nor SQLite's (`database_url_problem`).
    """
    problem = database_url_problem(url)
    if problem is not None:
        raise StoreError(f"database_url: {problem}")
    if is_postgres_url(url):
        from hub.storage.postgres import PostgresStore

        return PostgresStore(postgres_dsn(url or ""), schema=schema)
    from hub.storage.sqlite import SqliteStore

    return SqliteStore(sqlite_path(url))
