"""Console login attempts counted in the database (hub/storage/login_attempts.py, through
`hub.ui.session.LoginAttempts`) on SQLite and PostgreSQL: the in-process throttle's rules, one count for every store
on the database, pruning, and counting in the process while the database fails."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from hub.storage import Store, is_postgres, open_store
from hub.storage.sqlite import SqliteStore
from hub.ui.session import LoginAttempts

pytestmark = pytest.mark.anyio
ADDRESS = "10.0.0.1"


@contextlib.asynccontextmanager
async def other_process(store: Store) -> AsyncIterator[Store]:
    """A second store on the same database, as another worker or replica has."""
    twin = open_store(store.url, schema=store.schema if is_postgres(store) else None)
    await twin.connect()
    try:
        yield twin
    finally:
        await twin.aclose()


async def test_the_database_count_follows_the_in_process_rules(store: Store) -> None:
    attempts = LoginAttempts(store, limit=3, window=60)
    counted = [await attempts.attempt(ADDRESS, t) for t in (0, 1, 2)]
    assert [a.wait for a in counted] == [0, 0, 0] and all(a.id for a in counted)
    assert (await attempts.attempt(ADDRESS, 3)).wait == 57  # refused, and not counted
    assert (await attempts.attempt("10.0.0.2", 3)).wait == 0
    await attempts.succeeded(counted[2])
    assert (await attempts.attempt(ADDRESS, 4)).wait == 0 and (await attempts.attempt(ADDRESS, 5)).wait == 55
    assert (await attempts.attempt(ADDRESS, 60.5)).wait == 0  # the first attempt left the window


async def test_attempts_on_one_store_count_on_another_and_a_success_takes_back_only_itself(store: Store) -> None:
    async with other_process(store) as twin:
        first, second = LoginAttempts(store, limit=3, window=60), LoginAttempts(twin, limit=3, window=60)
        assert [(await first.attempt(ADDRESS, t)).wait for t in (0, 1)] == [0, 0]
        success = await second.attempt(ADDRESS, 2)
        assert success.wait == 0 and (await second.attempt(ADDRESS, 3)).wait == 57
        await second.succeeded(success)
        assert (await first.attempt(ADDRESS, 4)).wait == 0
        assert (await second.attempt(ADDRESS, 5)).wait == 55  # the attempts at 0, 1 and 4 still count


async def test_concurrent_attempts_on_two_stores_count_no_more_than_the_limit(store: Store) -> None:
    waits: list[float] = []
    async with other_process(store) as twin:
        sides = (LoginAttempts(store, limit=5, window=60), LoginAttempts(twin, limit=5, window=60))

        async def attempt(i: int) -> None:
            waits.append((await sides[i % 2].attempt(ADDRESS, 100.0)).wait)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for i in range(30):
                    tg.start_soon(attempt, i)
    assert sorted(waits) == [0.0] * 5 + [60.0] * 25


async def test_a_refused_address_is_refused_in_process_until_its_wait_ends_without_asking_the_database(
    store: Store,
) -> None:
    attempts = LoginAttempts(store, limit=2, window=60)
    assert [(await attempts.attempt(ADDRESS, t)).wait for t in (0, 1, 2)] == [0, 0, 58]
    await store.execute("DELETE FROM toolhub_login_attempts", [])  # were the database asked, it would let guesses in
    assert [(await attempts.attempt(ADDRESS, t)).wait for t in (3, 59)] == [57, 1]
    assert (await attempts.attempt(ADDRESS, 60)).wait == 0  # the wait is over: the database counts again


async def test_each_attempt_deletes_the_attempts_of_every_address_older_than_the_window(store: Store) -> None:
    attempts = LoginAttempts(store, limit=3, window=60)
    for address, t in (("10.0.0.1", 0), ("10.0.0.2", 30), ("10.0.0.1", 59), ("10.0.0.3", 61)):
        assert (await attempts.attempt(address, t)).wait == 0
    rows = await store.fetch("SELECT address, at FROM toolhub_login_attempts ORDER BY at", [])
    assert [(r["address"], float(r["at"])) for r in rows] == [("10.0.0.2", 30), ("10.0.0.1", 59), ("10.0.0.3", 61)]


async def test_while_the_database_fails_attempts_count_in_the_process_and_that_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    attempts = LoginAttempts(SqliteStore(str(tmp_path / "hub.db")), limit=2, window=60)  # never connected: it fails
    with caplog.at_level(logging.WARNING, logger="toolhub.ui"):
        tried = [await attempts.attempt(ADDRESS, t) for t in (0, 1, 2)]
        await attempts.succeeded(tried[1])
        assert (await attempts.attempt(ADDRESS, 3)).wait == 0
    assert [(a.wait, a.id) for a in tried] == [(0, None), (0, None), (58, None)]
    assert [r.getMessage() for r in caplog.records] == [
        "login attempts are counted per process until the database answers again: the SQLite store is not connected"
    ]
