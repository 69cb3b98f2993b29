"""Stopping an upstream's process group leaves the event loop free, and still ends every member of the group.

While a group that ignores SIGTERM gets its grace, the stop polls the members it knows by pid; the full /proc scan
that finds them runs in a worker thread, once, and again only when every known member has died (a member may have
forked a new one). `toolhub stdio`'s last resort (`kill_all`) runs on every exit path.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import anyio
import pytest

from hub.mcp import process as processes, stdio
from tests.mcp.stdio_peer import HUNG, new_marker, survivors, wait_for

pytestmark = pytest.mark.anyio

FORKS_ON_SIGTERM = (
    "import os, signal, time\n"
    "def forked(*_):\n"
    "    if os.fork() == 0:\n"
    "        signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "        time.sleep(3600)\n"
    "    os._exit(0)\n"
    "signal.signal(signal.SIGTERM, forked)\n"
    "time.sleep(3600)\n"
)
"""A server that, on SIGTERM, leaves a child that ignores SIGTERM in its group and exits."""


class Scans:
    """Counts the full /proc scans (one `_living_members` each) for one process group, and the threads they ran on;
    other groups' scans (hubs served by session fixtures stop their upstreams in this process too) are not counted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.threads: list[threading.Thread] = []
        self.pgid = 0
        real = processes._living_members  # pyright: ignore[reportPrivateUsage]

        def counted(pgid: int) -> list[int]:
            if pgid == self.pgid:
                self.threads.append(threading.current_thread())
            return real(pgid)

        monkeypatch.setattr(processes, "_living_members", counted)


async def test_a_group_that_ignores_sigterm_is_stopped_without_scanning_proc_on_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = new_marker()
    scans = Scans(monkeypatch)
    process = await processes.spawn(sys.executable, ["-c", HUNG, f"hung-{marker}"], dict(os.environ), sys.stderr,
                                    tmp_path)  # fmt: skip
    scans.pgid = process.pid
    wait_for(lambda: len(survivors(marker)) == 1, what="the hung server")
    await processes.stop(process)
    assert process.returncode == -signal.SIGKILL
    wait_for(lambda: survivors(marker) == [], what="every upstream process killed")  # dying takes moments, hung never
    assert threading.main_thread() not in scans.threads
    # at most once or twice to learn the members (the first code scanned every 10 ms: ~60 times); none at all while
    # the leader itself is alive, since that already counts as the group alive
    assert len(scans.threads) <= 2


async def test_a_member_forked_during_the_grace_is_still_killed(tmp_path: Path) -> None:
    marker = new_marker()
    process = await processes.spawn(sys.executable, ["-c", FORKS_ON_SIGTERM, f"forks-{marker}"], dict(os.environ),
                                    sys.stderr, tmp_path)  # fmt: skip
    wait_for(lambda: len(survivors(marker)) == 1, what="the server")
    await processes.stop(process)
    assert process.returncode == 0  # it exited by itself on SIGTERM, leaving its child behind in the group
    wait_for(lambda: survivors(marker) == [], what="the forked child's end")  # killed: dies within moments, or never


async def test_toolhub_stdio_kills_what_is_left_even_when_serving_fails(tmp_path: Path) -> None:
    marker = new_marker()
    process = await processes.spawn(sys.executable, ["-c", HUNG, f"hung-{marker}"], dict(os.environ), sys.stderr,
                                    tmp_path)  # fmt: skip
    wait_for(lambda: len(survivors(marker)) == 1, what="the hung server")
    with pytest.raises(ExceptionGroup):  # the body runs in until_signal's task group
        async with stdio.until_signal():
            raise RuntimeError("the hub failed")
    with anyio.fail_after(30):
        while process.returncode is None:  # noqa: ASYNC110 - set by the event loop once the group is killed
            await anyio.sleep(0.02)
    assert process.returncode == -signal.SIGKILL
    assert process.pid not in processes.live_groups()
    await processes.stop(process)  # closes the pipes; the group is gone already
