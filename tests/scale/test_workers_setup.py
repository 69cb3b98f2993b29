"""What a worker process is given before it runs any Toolhub code."""

from __future__ import annotations

import functools
import os
import subprocess
import sys

from hub.scale.supervisor import _worker_setup  # pyright: ignore[reportPrivateUsage]

_SHOW_SIGHUP = "import signal; print(signal.getsignal(signal.SIGHUP) == signal.SIG_IGN)"


def run_worker(supervisor: int) -> subprocess.CompletedProcess[str]:
    setup = functools.partial(_worker_setup, supervisor)
    return subprocess.run([sys.executable, "-c", _SHOW_SIGHUP], preexec_fn=setup, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


def test_a_worker_starts_with_sighup_ignored_until_it_installs_its_reload_handler() -> None:
    """A reload (SIGHUP to every worker) reaching a worker still importing the app does not kill it."""
    worker = run_worker(os.getpid())
    assert (worker.returncode, worker.stdout.strip()) == (0, "True"), worker.stderr


def test_a_worker_whose_supervisor_died_before_it_was_set_up_exits() -> None:
    """PR_SET_PDEATHSIG set after the supervisor died never fires: the worker must not run on as an orphan."""
    worker = run_worker(os.getpid() + 1_000_000)  # not this worker's parent, as after the supervisor died
    assert worker.returncode == 1
    assert worker.stdout == ""
