"""SQLite's multi-row statements come in few sizes: each size is another prepared statement in SQLite's cache, which
holds memory for its parameters (one per size from 1 to 500 rows grew a process by 136 MiB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.storage import StoreError, sqlite
from hub.storage.sqlite import SqliteStore


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
