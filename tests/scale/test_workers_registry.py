"""The workers' directory of `serve --workers N` (hub/scale/supervisor.py): a removed one neither stops the server nor
stays missing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

from hub.scale.supervisor import _forget_worker  # pyright: ignore[reportPrivateUsage]
from tests.scale.support import STARTUP_TIMEOUT
from tests.scale.test_workers import children, wait_for
from tests.support.servers import stop

_SUPERVISOR = """
import logging, socket, sys
from hub.scale.supervisor import Supervisor
logging.basicConfig(level=logging.INFO)
sock = socket.create_server(("127.0.0.1", 0))
worker = [sys.executable, "-c", "import time; time.sleep(120)"]
sys.exit(Supervisor(sock, worker, 1, grace=5, registry_dir=sys.argv[1]).run())
"""


def test_a_dead_workers_file_is_deleted_and_the_others_kept(tmp_path: Path) -> None:
    (tmp_path / "a").write_text(json.dumps({"url": "http://127.0.0.1:1", "pid": 11}))
    (tmp_path / "b").write_text(json.dumps({"url": "http://127.0.0.1:2", "pid": 12}))
    (tmp_path / "torn").write_text("{")
    _forget_worker(tmp_path, 11)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["b", "torn"]


def test_a_removed_directory_is_made_again_private_instead_of_raising(tmp_path: Path) -> None:
    directory = tmp_path / "toolhub-workers-x"
    _forget_worker(directory, 11)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert list(directory.iterdir()) == []


def test_a_worker_dying_after_the_directory_was_removed_is_restarted(tmp_path: Path) -> None:
    """Before: FileNotFoundError in the supervisor, which then stopped, and every worker with it."""
    directory = tmp_path / "workers"
    directory.mkdir(mode=0o700)
    log = tmp_path / "supervisor.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", _SUPERVISOR, str(directory)], stderr=out)
    try:
        wait_for(lambda: len(children(proc.pid)) == 1, "the worker starts", STARTUP_TIMEOUT)
        (first,) = children(proc.pid)
        shutil.rmtree(directory)
        os.kill(first, signal.SIGKILL)

        def replaced() -> bool:
            return bool(children(proc.pid) - {first}) or proc.poll() is not None

        wait_for(replaced, "a new worker, or the supervisor's end", STARTUP_TIMEOUT)
        assert proc.poll() is None, log.read_text()
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()
    finally:
        stop(proc)
