"""The usage journal: what a killed process had answered is stored once by the next start, never twice."""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import textwrap
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from hub.accounts.usage import ToolCallRecord, UsageRecord
from hub.scale import journal as journal_module
from hub.scale.journal import Journal, encode
from hub.storage import SpendQuery, Store, StoredUsage
from hub.storage.sqlite import SqliteStore
from hub.storage.writer import UsageWriter, journal_dir
from tests.support.servers import ROOT

pytestmark = pytest.mark.anyio


def record(n: int, request_id: str | None = None) -> UsageRecord:
    return UsageRecord(request_id=request_id or f"req-{n}", key_id="k", model_alias="m", upstream_model="m",
                       provider="openai", status_code=200, stream=False, latency_ms=1.0, prompt_tokens=n,
                       cost=0.001, created_at=1_767_225_600.0 + n)  # fmt: skip


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = SqliteStore(str(tmp_path / "toolhub.db"))
    await store.connect()
    await store.migrate()
    yield store
    await store.aclose()


async def request_ids(store: Store) -> list[str]:
    rows, _ = await store.spend_logs(SpendQuery(limit=100_000))
    return sorted(r["request_id"] for r in rows)


_KILLED_CHILD = """
import anyio, os, signal, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from hub.storage.sqlite import SqliteStore
from hub.storage.writer import UsageWriter
from tests.scale.test_journal import record
from hub.accounts.usage import ToolCallRecord

async def main():
    store = SqliteStore({db!r})
    await store.connect()
    writer = UsageWriter(store, Path({spill!r}))
    for n in range(5):
        writer.record(record(n))
    assert await writer.flush()
    for n in range(5, 12):
        writer.record(record(n))
    writer.record_tool_call(ToolCallRecord(server="s", tool="t", duration_ms=1.0, request_id="req-11"))
    os.kill(os.getpid(), signal.SIGKILL)

anyio.run(main)
"""


async def test_records_of_a_killed_process_are_stored_once_by_the_next_start(store: Store, tmp_path: Path) -> None:
    spill = tmp_path / "usage.spill.jsonl"
    script = textwrap.dedent(_KILLED_CHILD).format(root=str(ROOT), db=str(tmp_path / "toolhub.db"), spill=str(spill))
    child = await anyio.run_process([sys.executable, "-c", script], cwd=ROOT, check=False)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    assert await request_ids(store) == sorted(f"req-{n}" for n in range(5))  # the last 7 only in the journal
    restarted = UsageWriter(store, spill)
    assert await restarted.flush()
    assert await request_ids(store) == sorted(f"req-{n}" for n in range(12))
    assert [c["request_id"] for c in await store.tool_calls(limit=10)] == ["req-11"]
    assert restarted.recovered == 8
    assert sorted(p.name for p in journal_dir(spill).iterdir()) == []  # the dead process's segments and lock


async def test_stored_segments_are_deleted_and_a_clean_shutdown_leaves_no_journal(store: Store, tmp_path: Path) -> None:
    spill = tmp_path / "usage.spill.jsonl"
    writer = UsageWriter(store, spill)
    for n in range(3):
        writer.record(record(n))
    journal = journal_dir(spill)
    assert len(list(journal.glob("*.jsonl"))) == 1
    assert await writer.flush()
    assert list(journal.glob("*.jsonl")) == []
    writer.record(record(3))
    await writer.aclose()
    assert list(journal.iterdir()) == []
    assert await request_ids(store) == ["req-0", "req-1", "req-2", "req-3"]


async def test_a_replayed_journal_whose_rows_were_already_stored_adds_nothing(store: Store, tmp_path: Path) -> None:
    spill = tmp_path / "usage.spill.jsonl"
    first = UsageWriter(store, spill)
    for n in range(4):
        first.record(record(n))
    journal = journal_dir(spill)
    kept = {p: p.read_bytes() for p in journal.iterdir()}
    assert await first.flush()  # stored; now pretend the process died before deleting its segment
    await first.aclose()
    for path, data in kept.items():
        path.write_bytes(data)
    second = UsageWriter(store, spill)
    assert await second.flush()
    assert second.recovered == 4
    assert await request_ids(store) == ["req-0", "req-1", "req-2", "req-3"]


async def test_the_journal_of_a_live_process_is_left_to_it(store: Store, tmp_path: Path) -> None:
    spill = tmp_path / "usage.spill.jsonl"
    alive, other = UsageWriter(store, spill), UsageWriter(store, spill)
    alive.record(record(1))
    assert await other.flush()
    assert await request_ids(store) == []  # alive holds its lock: its records are its own to write
    assert await alive.flush()
    assert await request_ids(store) == ["req-1"]
    await alive.aclose()
    await other.aclose()


async def test_two_requests_reusing_a_client_request_id_are_both_accounted(store: Store, tmp_path: Path) -> None:
    """Idempotence is by row id, fixed per request: a client reusing x-request-id cannot erase its own usage."""
    writer = UsageWriter(store, tmp_path / "usage.spill.jsonl")
    writer.record(record(1, "same-id"))
    writer.record(record(2, "same-id"))
    assert await writer.flush()
    assert await request_ids(store) == ["same-id", "same-id"]
    await writer.aclose()


async def test_a_torn_last_line_is_skipped_and_the_rest_replayed(store: Store, tmp_path: Path) -> None:
    spill = tmp_path / "usage.spill.jsonl"
    journal = journal_dir(spill)
    second = UsageWriter(store, spill)
    dead = f"{second.journal.scope}-deadbeef"  # pyright: ignore[reportOptionalMemberAccess]
    first = UsageWriter(store, spill, journal=False)
    first.record(record(7))
    first.record_tool_call(ToolCallRecord(server="s", tool="t", duration_ms=1.0))
    lines = b"".join(encode(item) for item in first._new)  # pyright: ignore[reportPrivateUsage]
    journal.mkdir()
    (journal / f"{dead}.lock").touch()
    (journal / f"{dead}.000000.jsonl").write_bytes(lines + b'["usage", "torn')
    assert await second.flush()
    assert await request_ids(store) == ["req-7"]
    assert len(await store.tool_calls(limit=5)) == 1
    assert sorted(os.listdir(journal)) == []


async def test_the_journal_of_another_database_in_the_same_directory_is_left_alone(
    store: Store, tmp_path: Path
) -> None:
    spill = tmp_path / "usage.spill.jsonl"
    journal = journal_dir(spill)
    other = UsageWriter(store, spill, journal=False)
    other.record(record(3))
    journal.mkdir()
    (journal / "0123456789ab-deadbeef.lock").touch()  # another scope: a gateway on another database
    (journal / "0123456789ab-deadbeef.000000.jsonl").write_bytes(encode(other._new[0]))  # pyright: ignore[reportPrivateUsage]
    writer = UsageWriter(store, spill)
    assert await writer.flush()
    assert await request_ids(store) == []
    assert sorted(os.listdir(journal)) == ["0123456789ab-deadbeef.000000.jsonl", "0123456789ab-deadbeef.lock"]


def test_a_spill_file_written_before_the_array_format_is_still_read(tmp_path: Path) -> None:
    from hub.scale.journal import read_items

    old = tmp_path / "old.spill.jsonl"
    old.write_bytes(b'{"kind": "usage", "id": "b-1", "request_id": "r", "key_id": null, "model_alias": "m", '
                    b'"upstream_model": "m", "provider": "openai", "status_code": 200, "stream": false, '
                    b'"latency_ms": 1.0, "cost": 0.5}\n')  # fmt: skip
    [item] = read_items(old)
    assert (item.id, item.record.request_id, item.record.cost) == ("b-1", "r", 0.5)  # pyright: ignore[reportAttributeAccessIssue]


def _usage(n: int) -> StoredUsage:
    return StoredUsage(f"id-{n}", record(n))


def test_a_scan_while_a_process_opens_its_journal_never_takes_its_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's scan runs at the worst moment (just before this one locks): the lock survives, and once this
    process dies its segment is found and replayed."""
    live, scanner = Journal(tmp_path, "aaaa", "scope"), Journal(tmp_path, "bbbb", "scope")
    real_flock, found, test_thread = fcntl.flock, [], threading.get_ident()

    def flock_after_a_scan(fd: int, operation: int) -> None:
        if threading.get_ident() != test_thread:  # fcntl.flock is the process's: session fixtures' hubs lock too
            real_flock(fd, operation)
            return
        monkeypatch.setattr(journal_module.fcntl, "flock", real_flock)  # once
        found.append([boot for boot, _ in scanner.orphans()])
        real_flock(fd, operation)

    monkeypatch.setattr(journal_module.fcntl, "flock", flock_after_a_scan)
    live.append(_usage(1))
    assert found == [[]]
    assert (tmp_path / f"{live.boot}.lock").exists()
    assert list(scanner.orphans()) == []  # alive: locked
    os.close(live._fd or -1)  # pyright: ignore[reportPrivateUsage]  # the process dies: the kernel drops its lock
    os.close(live._lock_fd or -1)  # pyright: ignore[reportPrivateUsage]
    orphans = [(boot, [p.name for p in segments]) for boot, segments in Journal(tmp_path, "cccc", "scope").orphans()]
    assert orphans == [(live.boot, [f"{live.boot}.000000.jsonl"])]


def test_a_lock_file_name_already_there_gets_a_new_boot_id(tmp_path: Path) -> None:
    (tmp_path / "scope-aaaa.lock").touch()  # a leftover, or another process's file not locked yet
    journal = Journal(tmp_path, "aaaa", "scope")
    journal.append(_usage(1))
    assert journal.boot != "scope-aaaa" and journal.boot.startswith("scope-")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["scope-aaaa.lock", f"{journal.boot}.lock", f"{journal.boot}.000000.jsonl"]
    )
    journal.close()
    assert [p.name for p in tmp_path.iterdir()] == ["scope-aaaa.lock"]
