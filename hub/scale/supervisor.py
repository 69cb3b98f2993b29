"""`toolhub serve --workers N`: N worker processes on one listening socket, and the supervisor that keeps them.

The supervisor binds the socket (or takes `--fd`: hub/scale/sockets.py) and starts each worker as `toolhub serve
--fd <socket>`: a new interpreter, not a fork, so no event loop, thread or connection of the parent is shared. Every
worker accepts from the same socket; the kernel hands each connection to one of them. The supervisor itself imports
no part of the app.

- A worker that dies (crash, OOM kill, `kill -9`) is started again, after a back-off that grows while workers keep
  dying young; one that exits with uvicorn's startup failure (exit 3: a bad config, a database that refuses) before
  ever serving stops the whole server, since every replacement would fail the same way.
- SIGTERM / SIGINT go to every worker, which finish their in-flight requests within `shutdown_grace_seconds`; a
  worker still there after that (plus a margin) is killed. SIGHUP goes to every worker (config reload); a worker
  still starting gets it once its reload handler is in place (it starts with SIGHUP blocked), so none is lost.
- Workers get `PR_SET_PDEATHSIG`: if the supervisor is killed outright they get SIGTERM, so none is left orphaned.
- `/metrics` in every worker reads all workers' series through prometheus_client's multiprocess mode: each
  worker writes its values to files in `PROMETHEUS_MULTIPROC_DIR` (a fresh directory per run unless set), and a
  dead worker's live gauges are dropped (`mark_process_dead`).
- MCP sessions live in the worker that opened them, so each worker also listens on a port of its own
  (`worker_listener`: at the address of `replica_url`, or 127.0.0.1) that it advertises under its own replica id,
  in Redis or, without it, in a directory the supervisor makes for the run (`--worker-registry`, one file per
  worker: hub/mcp/forward/local.py). The supervisor deletes a dead worker's file and the directory at stop.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import ipaddress
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

logger = logging.getLogger("toolhub.workers")

STARTUP_FAILURE = 3
"""uvicorn's exit code when the app's lifespan failed to start."""
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)
_YOUNG = 10.0
"""A worker that dies sooner than this after its start counts towards the back-off."""
_PR_SET_PDEATHSIG = 1


@dataclass(slots=True)
class _Slot:
    """One worker position: its process, when it started, how many in a row died young."""

    index: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    young_deaths: int = 0
    restart_at: float = 0.0


class Supervisor:
    """Runs `count` workers of `worker_argv + ["--fd", N]` on `sock` until told to stop."""

    def __init__(self, sock: socket.socket, worker_argv: Sequence[str], count: int, *, grace: float,
                 metrics_dir: str | None = None, registry_dir: str | None = None) -> None:  # fmt: skip
        self.sock = sock
        self.worker_argv = list(worker_argv)
        self.slots = [_Slot(i) for i in range(count)]
        self.grace = grace
        self.metrics_dir = metrics_dir
        self.registry_dir = registry_dir
        self.restarts = 0

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (0) or a worker that cannot start (3)."""
        self.sock.set_inheritable(True)
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            for slot in self.slots:
                self._start(slot)
            return self._loop()
        finally:
            self._stop_all()
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

    def _loop(self) -> int:
        while True:
            info = signal.sigtimedwait(_SIGNALS, 0.5)
            if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
                logger.info("stopping %d workers (%s)", len(self.slots), signal.Signals(info.si_signo).name)
                return 0
            if info is not None and info.si_signo == signal.SIGHUP:
                sent = self._signal_all(signal.SIGHUP)
                logger.info("SIGHUP: config reload sent to %d worker(s)", sent)
            if self._reap() == STARTUP_FAILURE:
                return STARTUP_FAILURE
            self._restart_due()

    def _start(self, slot: _Slot) -> None:
        env = {**os.environ}
        if self.metrics_dir:
            env["PROMETHEUS_MULTIPROC_DIR"] = self.metrics_dir
        argv = [*self.worker_argv, "--fd", str(self.sock.fileno())]
        # preexec_fn is safe here: the supervisor runs no threads
        setup = functools.partial(_worker_setup, os.getpid())
        slot.proc = subprocess.Popen(argv, env=env, pass_fds=(self.sock.fileno(),), preexec_fn=setup)
        slot.started = time.monotonic()
        logger.info("worker %d started (pid %d)", slot.index, slot.proc.pid)

    def _reap(self) -> int | None:
        """Collect exited workers; schedule their restart. STARTUP_FAILURE when one could never start."""
        for slot in self.slots:
            proc = slot.proc
            if proc is None or proc.poll() is None:
                continue
            slot.proc = None
            self._dead(proc.pid)
            lived = time.monotonic() - slot.started
            if proc.returncode == STARTUP_FAILURE and self.restarts == 0:
                logger.error("worker %d could not start (exit %d): stopping", slot.index, proc.returncode)
                return STARTUP_FAILURE
            slot.young_deaths = slot.young_deaths + 1 if lived < _YOUNG else 0
            delay = 0.0 if not slot.young_deaths else min(10.0, 0.25 * 2**slot.young_deaths)
            slot.restart_at = time.monotonic() + delay
            logger.warning("worker %d (pid %d) exited with %s after %.1f s; restarting in %.1f s", slot.index,
                           proc.pid, _status(proc.returncode), lived, delay)  # fmt: skip
        return None

    def _restart_due(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.proc is None and now >= slot.restart_at:
                self.restarts += 1
                self._start(slot)

    def _dead(self, pid: int) -> None:
        if self.registry_dir:
            _forget_worker(Path(self.registry_dir), pid)
        if self.metrics_dir:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, self.metrics_dir)

    def _signal_all(self, signum: int) -> int:
        """Send `signum` to every running worker; returns to how many."""
        sent = 0
        for slot in self.slots:
            if slot.proc is not None and slot.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    slot.proc.send_signal(signum)
                    sent += 1
        return sent

    def _stop_all(self) -> None:
        """SIGTERM to every worker; SIGKILL to those still running after the grace period (and a margin)."""
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + self.grace + 5
        for slot in self.slots:
            if slot.proc is None:
                continue
            try:
                slot.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("worker %d (pid %d) did not stop in time: killed", slot.index, slot.proc.pid)
                slot.proc.kill()
                slot.proc.wait()
            self._dead(slot.proc.pid)
            slot.proc = None


def _worker_setup(supervisor: int) -> None:
    """In the worker, before exec: SIGHUP blocked and ignored until the worker installs its reload handler, which
    unblocks it (hub/ops/reload.py); SIGTERM when the supervisor dies, and a supervisor already gone before that was
    set (the signal would never come) ends the worker here.

    A reload relayed to a worker still starting must neither kill it (SIGHUP's default action) nor be lost: ignored
    alone, it was dropped, and that worker served the old config until its next reload. Blocked, it stays pending
    (Linux keeps a blocked signal even while it is ignored) across exec until the handler is in place.
    """
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, [signal.SIGHUP])
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor:
        os._exit(1)


def _forget_worker(directory: Path, pid: int) -> None:
    """Delete the files in which the dead worker `pid` advertised its own port (hub/mcp/forward/local.py): its
    sessions are gone, and a later worker may get the same port.

    The directory may be gone (a /tmp cleaner, an operator): an error here would stop the supervisor and every
    worker with it, so it is made again (empty, private) for the replacement worker to register in.
    """
    try:
        paths = list(directory.iterdir())
    except OSError:
        paths = []
        _ensure_private_dir(directory)
    for path in paths:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if json.loads(path.read_text()).get("pid") == pid:
                path.unlink()


def _ensure_private_dir(directory: Path) -> None:
    """Make `directory` (mode 0700) if it is missing; a failure is logged, never raised (see `_forget_worker`). An
    existing one is left as it is: a worker refuses a directory that is not private (hub/mcp/forward/local.py)."""
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        return
    except OSError as exc:
        logger.error("the workers' directory %s is gone and cannot be made again (%s): MCP sessions of the "
                     "workers started from now on are not forwarded between workers", directory, exc)  # fmt: skip
        return
    logger.warning("the workers' directory %s was removed: made again", directory)


def _status(code: int) -> str:
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"code {code}"


class UnspecifiedAddress(ValueError):
    """`replica_url`'s address is 0.0.0.0 or `::`: a worker can neither listen on it alone nor advertise it."""


def worker_listener(replica_url: str | None, backlog: int = 1024) -> tuple[socket.socket, str]:
    """A worker's own listening socket and its URL: on an ephemeral port at the address `replica_url` names (its
    host resolved once; the URL carries the address, so every replica reaches the interface it is bound to), or on
    127.0.0.1 without one. Plain HTTP, like the shared socket.

    Raises:
        OSError: the address is not one of this machine's (or does not resolve).
        UnspecifiedAddress: it is 0.0.0.0 or `::`, which names no machine: bound, it listens on every interface;
            advertised, every replica that dials it reaches itself.
    """
    host = (urlsplit(replica_url).hostname if replica_url else None) or "127.0.0.1"
    family, kind, proto, _, address = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
    if ipaddress.ip_address(address[0]).is_unspecified:
        raise UnspecifiedAddress(f"{host} is the unspecified address {address[0]}")
    sock = socket.socket(family, kind, proto)
    try:
        sock.bind((address[0], 0, *address[2:]))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    ip, port = sock.getsockname()[:2]
    return sock, f"http://[{ip}]:{port}" if family == socket.AF_INET6 else f"http://{ip}:{port}"


def run_workers(sock: socket.socket, worker_argv: Sequence[str], count: int, grace: float) -> int:
    """Run the supervisor with a metrics directory of its own (unless PROMETHEUS_MULTIPROC_DIR is set) and a
    directory where the workers advertise their own ports (`--worker-registry`), both removed at the end."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    metrics_dir = given or tempfile.mkdtemp(prefix="toolhub-metrics-")
    registry_dir = tempfile.mkdtemp(prefix="toolhub-workers-")
    argv = [*worker_argv, "--worker-registry", registry_dir]
    try:
        return Supervisor(sock, argv, count, grace=grace, metrics_dir=metrics_dir, registry_dir=registry_dir).run()
    finally:
        shutil.rmtree(registry_dir, ignore_errors=True)
        if not given:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def worker_command() -> list[str]:
    """How to start this interpreter's `toolhub` (a worker is `python -m hub serve ...`)."""
    return [sys.executable, "-m", "hub"]
