"""SQLite's writes: a batch is one call to the writer's thread, in multi-row statements of few sizes (each size is
another prepared statement in SQLite's cache, which holds memory for its parameters: one per size from 1 to 500 rows
grew a process by 136 MiB)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from hub.storage import SpendQuery, StoredUsage, StoreError, rollup, sqlite
from hub.storage.sqlite import SqliteStore
from tests.storage.test_writer import expected, record, stored_request_ids


def test_rows_go_in_runs_of_a_few_sizes_within_the_parameter_limit() -> None:
    sizes: set[int] = set()
    for count in range(1200):
        runs = [len(run) for run in sqlite._runs([[0] * 26] * count)]  # pyright: ignore[reportPrivateUsage]
        assert sum(runs) == count
        assert all(size * 26 <= sqlite._MAX_PARAMS for size in runs)  # pyright: ignore[reportPrivateUsage]
        assert len(runs) <= count // sqlite._MOST_ROWS + 7  # pyright: ignore[reportPrivateUsage]
        sizes.update(runs)
    assert sizes == {1, 2, 4, 8, 16, 32, 64}


@pytest.mark.anyio
async def test_a_sqlite_older_than_3_35_is_refused_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "SQLITE_VERSION", (3, 31, 1))  # Ubuntu 20.04's: no RETURNING
    with pytest.raises(StoreError, match=r"SQLite 3\.31\.1 is too old: Toolhub needs 3\.35"):
        await SqliteStore(str(tmp_path / "old.db")).connect()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(str(tmp_path / "usage.db"))
    await store.connect()
    await store.migrate()
    try:
        yield store
    finally:
        await store.aclose()


async def _stored(store: SqliteStore) -> int:
    return (await store.spend_logs(SpendQuery(limit=1)))[1]


@pytest.mark.anyio
async def test_a_batch_of_usage_is_one_call_to_the_writer_thread(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each call is resumed by the event loop, which under load turns every ~10 ms: a batch written statement by
    statement (12 calls for 500 rows) fell behind ~7,000 requests a second and spilled to disk."""
    calls: list[object] = []
    execute = store.conn._execute  # pyright: ignore[reportPrivateUsage]

    async def counting(fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(fn)
        return await execute(fn, *args, **kwargs)

    monkeypatch.setattr(store.conn, "_execute", counting)
    await store.write_usage([StoredUsage(f"u{n}", record(n)) for n in range(500)])
    await store.write_usage([StoredUsage(f"u{n}", record(n)) for n in range(250, 750)])  # half stored already
    assert len(calls) == 2
    monkeypatch.undo()
    assert await _stored(store) == 750
    assert await stored_request_ids(store) == expected(750)


@pytest.mark.anyio
async def test_a_batch_that_fails_midway_stores_nothing_and_the_next_one_is_written(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rollup, "UPSERT", "INSERT INTO toolhub_no_such_table VALUES ($1)")  # after the logs' insert
    with pytest.raises(StoreError, match="no such table"):
        await store.write_usage([StoredUsage(f"u{n}", record(n)) for n in range(10)])
    monkeypatch.undo()
    assert await _stored(store) == 0
    await store.write_usage([StoredUsage(f"u{n}", record(n)) for n in range(10)])
    assert await _stored(store) == 10


@pytest.mark.anyio
async def test_a_write_cancelled_while_it_runs_ends_its_transaction(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    write = sqlite._write_usage  # pyright: ignore[reportPrivateUsage]

    def slow(conn: sqlite3.Connection, *, rows: list[StoredUsage]) -> None:
        started.set()
        time.sleep(0.2)
        write(conn, rows=rows)

    started = threading.Event()
    monkeypatch.setattr(sqlite, "_write_usage", slow)
    with anyio.move_on_after(5) as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.write_usage, [StoredUsage(f"u{n}", record(n)) for n in range(100)])
            await anyio.to_thread.run_sync(started.wait)
            tg.cancel_scope.cancel()
    assert not scope.cancelled_caught
    monkeypatch.undo()
    await store.write_usage([StoredUsage(f"v{n}", record(100 + n)) for n in range(5)])  # no transaction left open
    assert await _stored(store) == 105


@pytest.mark.anyio
async def test_the_stored_id_lookup_comes_in_a_few_statement_sizes(store: SqliteStore) -> None:
    """Each size of `IN (?, ...)` is another statement in SQLite's cache (as each size of the inserts is)."""
    seen: list[str] = []
    await store.conn._execute(store.conn._conn.set_trace_callback, seen.append)  # pyright: ignore[reportPrivateUsage]
    for size in range(1, 130):
        await store.write_usage([StoredUsage(f"s{size}-{n}", record(n)) for n in range(size)])
    await store.conn._execute(store.conn._conn.set_trace_callback, None)  # pyright: ignore[reportPrivateUsage]
    lookup = "SELECT id FROM toolhub_spend_logs"
    lookups = {text.count(",") + 1 for text in seen if text.startswith(lookup)}  # traced with the values in
    assert lookups <= {1, 2, 4, 8, 16, 32, 64}
    assert await _stored(store) == sum(range(1, 130))
