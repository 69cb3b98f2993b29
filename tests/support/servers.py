"""Real loopback servers for tests: an ASGI app on uvicorn in a thread, or `toolhub serve` as a process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import uvicorn
from starlette.types import ASGIApp

ROOT = Path(__file__).resolve().parents[2]


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    """A port that was free a moment ago. Racy: another process may take it before the caller binds it.

    Prefer `free_socket()` handed over bound (`serve_app`, `toolhub_process`, `inherited_socket`) or `refused_port()`;
    this remains only for third-party peers that cannot take a socket (`spawn_listener` checks who listens)."""
    with contextlib.closing(free_socket()) as sock:
        return sock.getsockname()[1]


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port where connections are refused for as long as the block runs: bound, never listening."""
    with contextlib.closing(free_socket()) as sock:
        yield sock.getsockname()[1]


@contextlib.contextmanager
def inherited_socket() -> Iterator[tuple[socket.socket, int]]:
    """A bound, listening loopback socket to hand to a child process (`pass_fds`); yields (socket, port).

    The child serves on it (`toolhub serve --fd N`), so no other process can take the port between choosing and
    binding it, and connections made before the child accepts wait in the backlog instead of being refused."""
    with contextlib.closing(free_socket()) as sock:
        sock.listen(128)
        sock.set_inheritable(True)
        yield sock, sock.getsockname()[1]


@contextlib.contextmanager
def serve_app(app: ASGIApp, *, graceful_timeout: int | None = 5) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 at an ephemeral port in a thread; yield its base URL ("http://127.0.0.1:PORT")."""
    sock = free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", timeout_graceful_shutdown=graceful_timeout, loop="asyncio", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


@contextlib.contextmanager
def toolhub_process(
    config_path: Path, *, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run `python -m hub serve` as a real process on an ephemeral port; yield (base URL, process).

    Relative paths in its config resolve against the current directory. It serves on a socket bound here and
    inherited (`--fd`), so the port cannot be taken by anyone else in between."""
    with inherited_socket() as (sock, port):
        fd = str(sock.fileno())
        proc = subprocess.Popen(
            [sys.executable, "-m", "hub", "serve", "--config", str(config_path), "--fd", fd, "--log-level", "warning",
             *args],
            cwd=os.getcwd(),  # the test run's scratch directory (tests/conftest.py): the hub's toolhub.db goes there
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(sock.fileno(),),
        )  # fmt: skip
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", proc)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """Terminate `proc` (kill it after `timeout` s) and close its pipes."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def wait_until_serving(url: str, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """Wait until the hub at `url` answers `/health/liveness` (the socket accepts from the start: poll HTTP)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"process exited with {proc.returncode} before serving:\n{err}")
        with contextlib.suppress(httpx2.HTTPError):
            if httpx2.get(f"{url}/health/liveness", timeout=0.5).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not serve within {timeout} s")


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"process exited with {proc.returncode} before listening:\n{err}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {timeout} s")
