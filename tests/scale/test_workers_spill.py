"""Workers sharing one spill file replay it without losing what another worker spilled meanwhile."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from hub.scale.journal import append_lines
from hub.storage import SpendQuery, StoredUsage, writer as writer_module
from hub.storage.sqlite import SqliteStore
from hub.storage.writer import UsageWriter
from tests.scale.test_journal import record

WAIT = 20.0


def usage(first: int, count: int) -> list[StoredUsage]:
    return [StoredUsage(f"spilled-{n}", record(n)) for n in range(first, first + count)]


def flush_in_thread(db: Path, spill: Path, done: threading.Event) -> threading.Thread:
    """A worker of its own (its own event loop and database connection) that flushes once."""

    async def flush() -> None:
        store = SqliteStore(str(db))
        await store.connect()
        try:
            await UsageWriter(store, spill, journal=False).flush()
        finally:
            await store.aclose()
            done.set()

    thread = threading.Thread(target=anyio.run, args=(flush,), daemon=True)
    thread.start()
    return thread


def test_a_spill_taken_while_another_worker_replays_is_never_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker B takes the spill file just after worker A took the previous one, and A finishes before B reads."""
    db, spill = tmp_path / "toolhub.db", tmp_path / "usage.spill.jsonl"
    anyio.run(_migrate, db)
    append_lines(spill, list(usage(0, 5)))
    b_may_take, a_may_finish = threading.Event(), threading.Event()
    a_done, b_done = threading.Event(), threading.Event()
    real_rename, real_read = os.rename, writer_module.read_items
    renames, reads = [0], [0]

    # other hubs in this process (session fixtures serving an app in a thread) flush and claim their own spill files
    # every second: only calls on this test's files are counted and held
    def rename(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if Path(src).parent != tmp_path:
            return real_rename(src, dst, *args, **kwargs)
        renames[0] += 1
        if renames[0] == 1:  # B's, checked before A took the file: held until A read it and more was spilled
            assert b_may_take.wait(WAIT)
        real_rename(src, dst, *args, **kwargs)

    def read_items(path: Path) -> list[Any]:
        if path.parent != tmp_path:
            return real_read(path)
        reads[0] += 1
        if reads[0] == 1:  # A's: then another request spills, and B goes on
            items = real_read(path)
            append_lines(spill, list(usage(5, 5)))
            b_may_take.set()
            assert a_may_finish.wait(WAIT)
            return items
        a_may_finish.set()  # B's: A finishes (and deletes what it replayed) before B reads
        assert a_done.wait(WAIT)
        return real_read(path)

    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(writer_module, "read_items", read_items)
    threads = [flush_in_thread(db, spill, b_done)]
    _wait_for(lambda: renames[0] == 1)
    threads.append(flush_in_thread(db, spill, a_done))
    for thread in threads:
        thread.join(WAIT)
    monkeypatch.undo()
    assert a_done.is_set() and b_done.is_set()
    anyio.run(_flush_leftovers, db, spill)
    assert anyio.run(_stored, db) == sorted(f"req-{n}" for n in range(10))


def _wait_for(condition: Callable[[], bool]) -> None:
    for _ in range(2_000):
        if condition():
            return
        threading.Event().wait(0.01)
    raise AssertionError("timed out")


async def _migrate(db: Path) -> None:
    store = SqliteStore(str(db))
    await store.connect()
    await store.migrate()
    await store.aclose()


async def _flush_leftovers(db: Path, spill: Path) -> None:
    store = SqliteStore(str(db))
    await store.connect()
    await UsageWriter(store, spill, journal=False).flush()
    await store.aclose()


async def _stored(db: Path) -> list[str]:
    store = SqliteStore(str(db))
    await store.connect()
    rows, _ = await store.spend_logs(SpendQuery(limit=1_000))
    await store.aclose()
    return sorted(r["request_id"] for r in rows)
