"""Real loopback servers for tests: an ASGI app on uvicorn in a thread, or `toolhub serve` as a process."""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx2
import uvicorn
from starlette.types import ASGIApp, Message, Receive

ROOT = Path(__file__).resolve().parents[2]
LISTEN_FD = Path(__file__).with_name("listen_fd.cjs")
_ANNOUNCED = re.compile(rb"running on https?://[^\s:]+:(\d+)")


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    """A port that was free a moment ago. Racy: another process may take it before the caller binds it.

    Use instead: a socket handed over bound (`serve_app`, `toolhub_process`, `inherited_socket`, `node_listen_fd`),
    `refused_port()` / `refusing_port()` for a port nobody answers on, or `announced_port()` for a child that binds
    port 0 itself."""
    with contextlib.closing(free_socket()) as sock:
        return sock.getsockname()[1]


def _refusing() -> socket.socket:
    # No SO_REUSEADDR: no other socket can then bind this port, even one that sets it, until this one closes.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@functools.cache
def _refusing_socket() -> socket.socket:
    sock = _refusing()
    atexit.register(sock.close)
    return sock


def refusing_port() -> int:
    """A loopback port that refuses connections for the whole test run: one socket, bound and never listening."""
    return _refusing_socket().getsockname()[1]


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port where connections are refused for as long as the block runs: bound, never listening."""
    with contextlib.closing(_refusing()) as sock:
        yield sock.getsockname()[1]


@contextlib.contextmanager
def inherited_socket(port: int = 0) -> Iterator[tuple[socket.socket, int]]:
    """A bound, listening loopback socket to hand to a child process (`pass_fds`); yields (socket, port).

    The child serves on it (`toolhub serve --fd N`, a Node server with `node_listen_fd`), so no other process can take
    the port between choosing and binding it; connections made before the child accepts wait in the backlog. `port`
    rebinds a known port (a restarted upstream): if another process took it meanwhile, this raises instead of letting
    the test talk to a stranger."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with contextlib.closing(sock):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
        sock.set_inheritable(True)
        yield sock, sock.getsockname()[1]


@contextlib.contextmanager
def serve_app(app: ASGIApp, *, graceful_timeout: int | None = 5) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 at an ephemeral port in a thread; yield its base URL ("http://127.0.0.1:PORT")."""
    sock = free_socket()
    sock.listen(128)  # at once: while only bound, another socket with SO_REUSEADDR could bind the port too
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
        wait_until_serving(f"http://127.0.0.1:{port}/health/liveness", proc)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        stop(proc)


def node_listen_fd(sock: socket.socket) -> tuple[list[str], dict[str, str]]:
    """`node` arguments and environment that make a Node server listen on the inherited `sock` (`listen_fd.cjs`)."""
    return ["--require", str(LISTEN_FD)], {"TOOLHUB_LISTEN_FD": str(sock.fileno())}


def announced_port(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """The port a child that bound port 0 itself announces on stderr (uvicorn's "Uvicorn running on http://h:PORT").

    For third-party servers that take neither a socket nor a preload; the OS picked the port for the child, so there
    is no window for another process. The rest of stderr is drained in the background so the child never blocks."""
    assert proc.stderr is not None
    lines: queue.Queue[bytes] = queue.Queue()
    reader = threading.Thread(target=_drain, args=(proc.stderr, lines), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    seen: list[bytes] = []
    while time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            seen.append(lines.get(timeout=0.1))
            if match := _ANNOUNCED.search(seen[-1]):
                return int(match[1])
        if not reader.is_alive() and lines.empty():  # stderr closed (the child exited) and every line was read
            break
    raise RuntimeError(f"no port announced on stderr (exit {proc.poll()}):\n{b''.join(seen).decode(errors='replace')}")


def _drain(stream: IO[bytes], lines: queue.Queue[bytes]) -> None:
    with contextlib.suppress(ValueError, OSError):  # the pipe closed under us when the test stopped the process
        for line in stream:
            lines.put(line)


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
    """Wait until `url` gets an HTTP answer (any status) from `proc`, which serves on a socket bound by the caller.

    Such a socket accepts connections before `proc` is ready, so a TCP connect proves nothing: poll over HTTP."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"process exited with {proc.returncode} before serving:\n{err}")
        with contextlib.suppress(httpx2.HTTPError):
            httpx2.get(url, timeout=0.5)
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


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` giving `body` (already read by a wrapper) first, then the connection's own messages (a stream
    waits on them for the client's disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
