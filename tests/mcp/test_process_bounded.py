"""A stop stays within its budget when a look at /proc is slow (hub/mcp/process.py), and does not scan /proc while the
leader is unreaped (it counts as alive anyway)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from hub.mcp import process as processes
from tests.mcp.test_process_reap import MAIN_THREAD_EXITS

pytestmark = pytest.mark.anyio

SCAN_HELD = 30.0
"""How long the stuck scan below holds its thread unless the test releases it; far beyond `STOP_BUDGET`."""


async def test_a_stop_abandons_a_proc_scan_that_outlasts_its_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the first look at the group had no bound and the scan's thread was waited for: a stop lasted as long
    as the scan (3.5 s against a 1.5 s budget with a busy thread pool)."""
    release, scans_ended = threading.Event(), threading.Event()
    real_scan = processes._living_members  # pyright: ignore[reportPrivateUsage]

    def stuck_scan(pgid: int) -> list[int]:
        if pgid == process.pid:  # only this test's group: hubs served by session fixtures stop processes too
            release.wait(SCAN_HELD)
            scans_ended.set()
        return real_scan(pgid)

    # the leader exits when its stdin closes; the sleep stays in the group, so the group needs a scan
    process = await processes.spawn("sh", ["-c", "sleep 60 & exec cat"], dict(os.environ), sys.stderr, tmp_path)
    monkeypatch.setattr(processes, "_living_members", stuck_scan)
    try:
        await processes.stop(process)
        assert not scans_ended.is_set()  # returned while the scan still held its thread
        assert process.returncode == 0
    finally:
        release.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


async def test_no_proc_scan_while_the_leader_is_unreaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A leader whose main thread exited reads as a zombie until signalled; before, every 10 ms poll of the stop
    rescanned /proc meanwhile."""
    process = await processes.spawn(sys.executable, ["-c", MAIN_THREAD_EXITS], dict(os.environ), sys.stderr, tmp_path)
    unreaped_scans: list[int] = []
    real_scan = processes._living_members  # pyright: ignore[reportPrivateUsage]

    def counted_scan(pgid: int) -> list[int]:
        if pgid == process.pid and process.returncode is None:  # this test's group only
            unreaped_scans.append(pgid)
        return real_scan(pgid)

    monkeypatch.setattr(processes, "_living_members", counted_scan)
    assert process.stdout is not None
    assert (await process.stdout.receive()).startswith(b"up")
    await processes.stop(process)
    assert process.returncode == -signal.SIGTERM
    assert unreaped_scans == []
