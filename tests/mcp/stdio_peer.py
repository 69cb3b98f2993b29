"""`toolhub stdio` as a real child process, driven with raw JSON-RPC lines; upstream configs that fork or hang.

Survivors are found by a marker in their argv. Zombies are not survivors: the PID 1 of some machines (and containers
without `--init`) never reaps orphans, so a killed grandchild of the hub stays a zombie there whatever the hub does.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.mcp.conftest import SERVERS
from tests.support.servers import ROOT

HUNG = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)"
"""An upstream that never answers, ignores SIGTERM and never reads its stdin (so it never sees EOF either)."""


def new_marker() -> str:
    return f"{secrets.randbelow(10**9):09d}"


def forking_server(marker: str, server: str = "tool_server.py", **options: Any) -> dict[str, Any]:
    """A server behind `sh -c "sleep 3602.<marker> & exec server"`: the sleep is left behind by the shell."""
    script = f"sleep 3602.{marker} & exec {sys.executable} {SERVERS / server} {server}-{marker}"
    return {"command": "sh", "args": ["-c", script], **options}


def hung_server(marker: str, **options: Any) -> dict[str, Any]:
    return {"command": sys.executable, "args": ["-c", HUNG, f"hung-{marker}"], **options}


def gated_server(marker: str, gate: Path) -> dict[str, Any]:
    """tool_server.py, started only once the file `gate` exists (an upstream that comes up when the test says so)."""
    script = f"while [ ! -e {gate} ]; do sleep 0.02; done; exec {sys.executable} {SERVERS / 'tool_server.py'} {marker}"
    return {"command": "sh", "args": ["-c", script], "connect_timeout": 60}


def write_config(tmp_path: Path, servers: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"general_settings": {"master_key": "sk-unused-in-stdio"}, "mcp_servers": servers}))
    return path


def survivors(marker: str) -> list[str]:
    """Command lines of live, non-zombie processes (other than this one) whose argv contains `marker`."""
    found: list[str] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
            if marker.encode() in cmdline and state != "Z":
                found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


def wait_for(predicate: Any, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class StdioPeer:
    """A client of `python -m hub stdio` speaking newline-delimited JSON-RPC over its pipes."""

    def __init__(self, config: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hub", "stdio", "--config", str(config), *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._buffer = b""
        self.next_id = 1
        self.seen: list[dict[str, Any]] = []
        """Messages received while waiting for an answer (notifications, server requests)."""

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any] | None = None) -> int:
        request_id, self.next_id = self.next_id, self.next_id + 1
        self.send({"id": request_id, "method": method, "params": params or {}})
        return request_id

    def receive(self, timeout: float) -> dict[str, Any]:
        """The next message; AssertionError if none arrives within `timeout` seconds (a hang guard)."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise AssertionError(f"no message from toolhub stdio within {timeout} s")
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError("toolhub stdio closed its stdout")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def answer(self, request_id: int, timeout: float = 30) -> dict[str, Any]:
        """The response to `request_id`; notifications before it are kept in `seen`."""
        while True:
            message = self.receive(timeout)
            if message.get("id") == request_id and "method" not in message:
                return message
            self.seen.append(message)

    def handshake(self, timeout: float = 30) -> dict[str, Any]:
        params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        result = self.answer(self.request("initialize", params), timeout)
        self.send({"method": "notifications/initialized"})
        return result

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")

    def stop(self) -> None:
        """Whatever the test did, leave nothing running: close the hub's stdin (it then stops its upstreams), kill it
        if it is still up after a while, close its pipes."""
        with contextlib.suppress(OSError):
            self.close_stdin()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


@contextlib.contextmanager
def stdio_peer(config: Path, *args: str) -> Iterator[StdioPeer]:
    peer = StdioPeer(config, *args)
    try:
        yield peer
    finally:
        peer.stop()
