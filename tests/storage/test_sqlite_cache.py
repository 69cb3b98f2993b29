"""The embedded store's page cache stays small (issue 17: a worker's RSS grew with SQLite's default 2,000 KiB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.storage.sqlite import CACHE_KIB, SqliteStore

pytestmark = pytest.mark.anyio


async def test_both_sqlite_connections_keep_a_small_page_cache(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "toolhub.db"))
    await store.connect()
    try:
        async with store.conn.execute("PRAGMA cache_size") as cursor:  # the writer
            assert tuple(await cursor.fetchone() or ()) == (-CACHE_KIB,)
        assert [tuple(row) for row in await store.fetch("PRAGMA cache_size", [])] == [(-CACHE_KIB,)]  # the reader
    finally:
        await store.aclose()
