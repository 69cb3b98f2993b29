"""`toolhub serve --fd N`: the inherited listening socket stays the hub's own, never its stdio MCP servers'."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.support.servers import inherited_socket, stop, wait_until_serving

# A stdio "server" that only records which files it holds open, then waits to be stopped.
PROBE = """
import os, sys, time
fds = {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in map(int, os.listdir("/proc/self/fd"))
       if os.path.exists(f"/proc/self/fd/{fd}")}
open(sys.argv[1], "w").write("\\n".join(fds.values()))
time.sleep(60)
"""


def test_a_stdio_mcp_server_does_not_inherit_the_listening_socket(tmp_path: Path) -> None:
    held = tmp_path / "held.txt"
    config = tmp_path / "c.yaml"
    probe = {"command": sys.executable, "args": ["-c", PROBE, str(held)]}
    config.write_text(yaml.safe_dump({"model_list": [], "mcp_servers": {"probe": probe}}))
    with inherited_socket() as (sock, port):
        listening = f"socket:[{os.fstat(sock.fileno()).st_ino}]"
        argv = [sys.executable, "-m", "hub", "serve", "--config", str(config), "--fd", str(sock.fileno())]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(sock.fileno(),))
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/health/liveness", proc)
        deadline = time.monotonic() + 60
        while not held.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert held.exists(), "the stdio server was never started"
        assert listening not in held.read_text().splitlines()
    finally:
        stop(proc)
