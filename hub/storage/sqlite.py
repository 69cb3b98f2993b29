"""The embedded store: one SQLite file through aiosqlite, in WAL mode.

Two connections (each a worker thread): one writer, whose transactions are serialised by a lock (SQLite has one
transaction per connection: two requests writing at once used to fail with "cannot start a transaction within a
transaction"), and one reader, which in WAL mode sees only committed data and never waits for the writer.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
import anyio

from hub.storage import StoreConflict, StoredUsage, StoreError, _sql as sql, rollup
from hub.storage._base import SqlStore

_PARAM = re.compile(r"\$(\d+)")
_VALUES = re.compile(r"VALUES \((\$\d+(?:, \$\d+)*)\)")


def _max_params() -> int:
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        return conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)


_MAX_PARAMS = _max_params()
"""Parameters per statement: this SQLite's limit (32,766 by default since 3.32, 250,000 in Debian's builds; 999
before)."""
SQLITE_VERSION = sqlite3.sqlite_version_info
_MOST_ROWS = 64
"""Rows per multi-row statement. A statement is split into runs of 64, 32, ..., 1 rows (`_runs`): few steps of
aiosqlite's thread (each wakes both threads), and few distinct statements in SQLite's cache of 128, each holding
memory for its parameters: one statement per size from 1 to 500 rows grew a process by 136 MiB, the 9 sizes up to
256 rows 1.7; up to 64 rows, a worker's RSS after 1,000 requests is 0.9 MB lower again (bench/rss.py: 82.8 -> 81.9),
for a few more steps a second (a batch of 500 rows: 10 instead of 6)."""
CACHE_KIB = 256
"""Page cache per connection. SQLite's default, 2,000 KiB, filled as the spend logs grew: a worker's RSS rose by
about 3 MB (two connections) over its first few thousand requests (bench/rss.py). The writer appends and the reader
looks up keys, so their hot pages are few; the rest is in the OS page cache, one `pread` away."""


_INSERT_ROLLED = sql.insert("toolhub_spend_logs", (*sql.SPEND_COLUMNS, "rolled"), " ON CONFLICT (id) DO NOTHING")
_STORED_IDS = "SELECT id FROM toolhub_spend_logs WHERE id IN ({})"


def _runs(rows: Sequence[Sequence[Any]]) -> Iterator[Sequence[Sequence[Any]]]:
    """`rows` in runs whose lengths are powers of two, each within `_MAX_PARAMS` and `_MOST_ROWS`."""
    most = min(_MOST_ROWS, max(1, _MAX_PARAMS // len(rows[0]))) if rows else 1
    start = 0
    while start < len(rows):
        size = 1 << (min(most, len(rows) - start).bit_length() - 1)
        yield rows[start : start + size]
        start += size


def _try_open(path: str) -> None:
    if path != ":memory:":
        sqlite3.connect(path, timeout=10).close()


def _flat(rows: Sequence[Sequence[Any]]) -> list[Any]:
    return [value for row in rows for value in row]


def _marks(count: int) -> str:
    """`?, ?, ...`: `count` parameters."""
    return ", ".join("?" * count)


@contextlib.contextmanager
def _store_errors() -> Iterator[None]:
    """SQLite's errors as the store's: a constraint broken is a `StoreConflict`, anything else a `StoreError`."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise StoreConflict(str(exc)) from exc
    except sqlite3.Error as exc:
        raise StoreError(f"SQLite: {exc}") from exc


def _transact(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], None]) -> None:
    """`work(conn)` between BEGIN IMMEDIATE and COMMIT, rolled back if it fails (in the connection's thread)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        work(conn)
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):  # a failed COMMIT may have ended the transaction already
            conn.execute("ROLLBACK")
        raise


def _insert(conn: sqlite3.Connection, *, text: str, rows: Sequence[Sequence[Any]]) -> None:
    for chunk in _runs(rows):
        statement = _multi_row(text, len(chunk))
        if statement is None:
            conn.executemany(_q(text), chunk)
        else:
            conn.execute(statement, _flat(chunk))


def _write_usage(conn: sqlite3.Connection, *, rows: list[StoredUsage]) -> None:
    """Insert the rows whose ids are not stored yet and add them to the rollup. The stored ids are looked up first
    (one step when there are none) rather than the inserted ones named by `RETURNING`: each row returned is a step,
    and each step takes the GIL back from a busy event loop."""
    ids = [row.id for row in rows]
    stored: set[str] = set()
    for run in _runs([[row_id] for row_id in ids]):  # few statement sizes in SQLite's cache, as for the inserts
        part = [row_id for (row_id,) in run]
        stored.update(found[0] for found in conn.execute(_STORED_IDS.format(_marks(len(part))), part))
    new = [row for row in rows if row.id not in stored]
    _insert(conn, text=_INSERT_ROLLED, rows=[[*sql.usage_params(r), 1] for r in new])
    _insert(conn, text=rollup.UPSERT, rows=rollup.buckets(r.record for r in new))


def _q(text: str) -> str:
    """`$n` -> `?n`: SQLite's numbered parameters."""
    return _PARAM.sub(r"?\1", text)


@functools.lru_cache(maxsize=64)
def _multi_row(text: str, count: int) -> str | None:
    """`INSERT ... VALUES ($1, ..., $k) ...` for `count` rows at once, with `?` parameters; None for other SQL."""
    match = _VALUES.search(text)
    if match is None:
        return None
    group = f"({_marks(len(match.group(1).split(', ')))})"
    return f"{text[: match.start()]}VALUES {', '.join([group] * count)}{text[match.end() :]}"


class SqliteStore(SqlStore):
    """`Store` on a SQLite file; created with its directory on first start."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self._conn: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = anyio.Lock()

    async def connect(self) -> None:
        """Open the writer and reader connections.

        Raises:
            StoreError: this Python's SQLite is older than 3.35, the oldest Toolhub is tested with (its usage
                writes once needed `RETURNING`; older releases are not known to work).
        """
        if SQLITE_VERSION < (3, 35):
            raise StoreError(f"SQLite {'.'.join(map(str, SQLITE_VERSION))} is too old: Toolhub needs 3.35 or later "
                             "(use a Python built with a newer SQLite, or PostgreSQL)")  # fmt: skip
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = await self._open(wal=True)
        # ":memory:" is a new database per connection: there, reads share the writer's connection
        self._reader = self._conn if self.path == ":memory:" else await self._open()

    async def _open(self, *, wal: bool = False) -> aiosqlite.Connection:
        """A connection with the store's settings (`wal`: switch the file to WAL mode first).

        Raises:
            StoreError: the file cannot be opened (a directory, no permission) or is not a SQLite database.
        """
        try:
            # aiosqlite stops its thread when its connect fails but does not wait for it: the thread then reports
            # to a loop a failed start has closed, with a traceback. A file that cannot be opened fails here.
            await anyio.to_thread.run_sync(_try_open, self.path)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc
        conn = await aiosqlite.connect(self.path, isolation_level=None, timeout=10)
        try:
            conn.row_factory = aiosqlite.Row
            if wal:
                async with conn.execute("PRAGMA journal_mode=WAL"):  # a statement left open would lock the reader out
                    pass
            await conn.execute("PRAGMA synchronous=NORMAL")
            await conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        except sqlite3.Error as exc:  # e.g. "file is not a database"
            await conn.close()
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc
        return conn

    @property
    def conn(self) -> aiosqlite.Connection:
        """The writer connection."""
        if self._conn is None:
            raise StoreError("the SQLite store is not connected")
        return self._conn

    async def aclose(self) -> None:
        reader, writer, self._reader, self._conn = self._reader, self._conn, None, None
        if reader is not None and reader is not writer:
            await reader.close()
        if writer is not None:
            await writer.close()

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction at a time on the writer connection; rolled back (even when cancelled) on failure."""
        with _store_errors():
            async with self._write_lock:
                conn = self.conn
                await self._begin(conn)
                try:
                    yield conn
                except BaseException:
                    with anyio.CancelScope(shield=True):
                        await conn.execute("ROLLBACK")
                    raise
                with anyio.CancelScope(shield=True):
                    await conn.execute("COMMIT")

    @staticmethod
    async def _begin(conn: aiosqlite.Connection) -> None:
        # Shielded: a cancellation while BEGIN is queued would otherwise leave the transaction open on the connection.
        with anyio.CancelScope(shield=True):
            await conn.execute("BEGIN IMMEDIATE")

    async def _fetch(self, text: str, args: Sequence[Any]) -> list[sqlite3.Row]:
        if self._reader is None:
            raise StoreError("the SQLite store is not connected")
        with _store_errors():
            async with self._reader.execute(_q(text), list(args)) as cursor:
                return list(await cursor.fetchall())

    async def _execute(self, text: str, args: Sequence[Any]) -> None:
        async with self._transaction() as conn:
            await conn.execute(_q(text), list(args))

    async def _execute_many(self, text: str, rows: Sequence[Sequence[Any]]) -> None:
        """Inserts go as multi-row statements, one SQLite step per up to `_MOST_ROWS` rows: under load, storing
        usage row by row (`executemany`) cost the gateway about 0.07 ms of CPU per request, 50 rows at a time about
        0.04 ms (the same inserts cost 8 us a row in a quiet process)."""
        await self._in_one_call(functools.partial(_insert, text=text, rows=rows))

    async def _in_one_call(self, work: Callable[[sqlite3.Connection], None]) -> None:
        """`work` as one transaction, in one call to the writer connection's thread.

        Each call to aiosqlite's thread is resumed by the event loop, which under load turns once per ~10 ms (64
        connections' callbacks): a batch of 500 usage rows written statement by statement (BEGIN, lookup, 8
        inserts, rollup, COMMIT) took 100-150 ms at ~7,000 requests a second, the writer fell behind, and its queue
        outgrew its bound and spilled to disk. As one call it takes one turn. Once queued the call runs to its end
        (commit or rollback) whatever happens to the awaiting task, so a cancellation never leaves it open."""
        with _store_errors():
            async with self._write_lock:
                conn = self.conn
                # aiosqlite has no public way to run a function on its thread; `_execute` is what its own methods use
                with anyio.CancelScope(shield=True):
                    await conn._execute(_transact, conn._conn, work)  # pyright: ignore[reportPrivateUsage]

    async def write_usage(self, rows: Sequence[StoredUsage]) -> None:
        """Logs are written folded into the console's rollup (hub/storage/rollup.py), in one transaction: the rows
        inserted (an id stored before is skipped, so a replay counts nothing twice) are summed here and added to
        their buckets, and never wait in the fold's queue."""
        await self._in_one_call(functools.partial(_write_usage, rows=list({row.id: row for row in rows}.values())))

    async def migrate(self) -> list[int]:
        applied: list[int] = []
        async with self._transaction() as conn:
            await conn.execute(sql.MIGRATIONS_TABLE)
            async with conn.execute("SELECT version FROM toolhub_migrations") as cursor:
                done = {row[0] for row in await cursor.fetchall()}
            for version, name, script in sql.migrations():
                if version in done:
                    continue
                for statement in sql.statements(script):
                    await conn.execute(statement)
                await conn.execute(_q(sql.RECORD_MIGRATION), [version, name, time.time()])
                applied.append(version)
        return applied

    async def delete_keys(self, token_hashes: Sequence[str]) -> list[str]:
        if not token_hashes:
            return []
        found: list[str] = []
        async with self._transaction() as conn:
            for token_hash in token_hashes:
                async with conn.execute(_q(sql.SELECT_KEY), [token_hash]) as cursor:
                    if await cursor.fetchone() is not None:
                        found.append(token_hash)
            await conn.execute(_q(sql.delete_keys_sql(len(token_hashes))), list(token_hashes))
        return found
