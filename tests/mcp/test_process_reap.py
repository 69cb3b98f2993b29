"""A stop reaps the server it started: it returns only once the event loop has seen the leader exit, so the asyncio
subprocess's `Popen` has its returncode, and collecting it later does not warn "subprocess N is still running".

A process whose main thread has exited reads as a zombie in `/proc/<pid>/stat` while its other threads still run, and
it cannot be reaped until they end. Node's exit passes through that state for a moment (its worker threads outlive the
main one); the server here stays in it until it is signalled, which makes the moment deterministic. CI once collected
such a `Popen` (server-everything's) in a later test, after the hub's event loop had ended without seeing the exit.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from hub.mcp import process as processes

pytestmark = pytest.mark.anyio

MAIN_THREAD_EXITS = (
    "import ctypes, threading, time\n"
    "threading.Thread(target=time.sleep, args=(3600,)).start()\n"
    "print('up', flush=True)\n"
    "ctypes.CDLL(None).pthread_exit(None)\n"
)
"""A server whose main thread exits at once while another thread sleeps on; SIGTERM ends it (default action)."""


def _popen(process: object) -> subprocess.Popen[bytes]:
    popen = process._process._transport._proc  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
    assert isinstance(popen, subprocess.Popen)
    return popen


async def test_a_leader_that_reads_as_a_zombie_while_its_threads_run_is_stopped_and_reaped(tmp_path: Path) -> None:
    process = await processes.spawn(sys.executable, ["-c", MAIN_THREAD_EXITS], dict(os.environ), sys.stderr, tmp_path)
    assert process.stdout is not None
    assert (await process.stdout.receive()).startswith(b"up")
    popen = _popen(process)
    await processes.stop(process)
    assert process.returncode == -signal.SIGTERM  # not "gone" because /proc said zombie: it was signalled
    assert popen.returncode == -signal.SIGTERM
    del process
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        del popen
        gc.collect()
