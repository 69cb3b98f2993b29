"""Gateway benchmark: the upstream called directly vs through Toolhub (vs through LiteLLM's proxy, optionally).

Starts the fast fake upstream (bench/fake_upstream.py) and `toolhub serve` (one process), then for each target runs
bench/loadgen.py in its own process: throughput at 64 connections and latency at 8 connections, non-streaming and
streaming (20-chunk streams; time to first byte too). The server's CPU time per request comes from /proc while the
64-connection run lasts; peak RSS is the process's VmHWM. Prints a Markdown table.

    python bench/gateway.py                         # direct + Toolhub
    python bench/gateway.py --litellm /tmp/litellm  # + LiteLLM from a venv made with: pip install 'litellm[proxy]'
    python bench/gateway.py --duration 10 --config-extra keys   # (see --help)

All traffic goes to 127.0.0.1; every load loop is bounded by time and request count.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
KEY = "sk-bench-master"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A port that was free a moment ago (racy: prefer `bound_socket`, for servers that can take one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def bound_socket() -> Iterator[tuple[socket.socket, int]]:
    """A listening loopback socket for a child to serve on (`--fd N`, with `process(..., sock=)`); yields (it, port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        sock.set_inheritable(True)
        yield sock, sock.getsockname()[1]


def wait_http(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait for any HTTP answer: a handed-over socket accepts connections before the child serves them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"GET /health/liveness HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            if conn.recv(1):
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing answers on {port}")


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


@contextlib.contextmanager
def process(
    args: list[str],
    port: int,
    env: dict[str, str] | None = None,
    sock: socket.socket | None = None,
    *,
    cwd: Path = ROOT,
    timeout: float = 60,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `args` in `cwd` until the block ends, once it serves (within `timeout` s); with `sock` (from
    `bound_socket`), the child inherits it."""
    fds = () if sock is None else (sock.fileno(),)
    proc = subprocess.Popen(
        args, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        pass_fds=fds,
    )  # fmt: skip
    try:
        if sock is None:
            wait_port(port, proc, timeout)
        else:
            wait_http(port, proc, timeout)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def fake_upstream() -> Iterator[str]:
    """The fast fake upstream (fake_upstream.py) on a loopback socket of its own, while it runs: its base URL."""
    with (
        bound_socket() as (sock, port),
        process([sys.executable, str(BENCH / "fake_upstream.py"), "--fd", str(sock.fileno())], port, sock=sock),
    ):
        yield f"http://127.0.0.1:{port}"


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def peak_rss_mb(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
    return total


def tree(pid: int) -> list[int]:
    """The process and its children (LiteLLM and uvicorn workers fork)."""
    pids = [pid]
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            pids += tree(int(child))
    return pids


def load(url: str, conns: int, duration: float, stream: bool, key: str, client: str = "aiohttp") -> dict[str, Any]:
    args = [
        sys.executable,
        str(BENCH / "loadgen.py"),
        url,
        "--conns",
        str(conns),
        "--duration",
        str(duration),
        "--key",
        key,
        "--client",
        client,
    ]
    out = subprocess.run(
        [*args, "--stream"] if stream else args, capture_output=True, check=True, timeout=duration + 120
    )
    return json.loads(out.stdout)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


@dataclass
class Row:
    target: str
    mode: str
    rps: float
    p50: float
    p99: float
    ttfb50: float
    cpu_ms: float | None
    errors: int
    rss: float | None


def measure(target: str, url: str, pids: list[int], duration: float, key: str) -> list[Row]:
    rows: list[Row] = []
    for stream in (False, True):
        before = cpu_seconds(pids) if pids else 0.0
        heavy = load(url, 64, duration, stream, key)
        cpu = (cpu_seconds(pids) - before) if pids else None
        light = load(url, 8, duration / 2, stream, key)
        count = int(heavy["requests"])
        rows.append(
            Row(
                target=target,
                mode="stream (20 chunks)" if stream else "non-stream",
                rps=count / float(heavy["seconds"]),
                p50=pct(light["latency"], 0.5),
                p99=pct(light["latency"], 0.99),
                ttfb50=pct(light["ttfb"], 0.5),
                cpu_ms=(cpu * 1000 / count) if cpu is not None and count else None,
                errors=int(heavy["errors"]) + int(light["errors"]),
                rss=peak_rss_mb(pids) if pids else None,
            )
        )
    return rows


def toolhub_config(upstream: str, path: Path) -> None:
    path.write_text(
        "model_list:\n"
        "  - model_name: bench\n"
        "    litellm_params:\n"
        "      model: openai/bench\n"
        f"      api_base: {upstream}/v1\n"
        "      api_key: sk-upstream\n"
        "general_settings:\n"
        f"  master_key: {KEY}\n"
    )


def print_table(rows: list[Row]) -> None:
    print(
        "| target | mode | req/s @64 | p50 ms @8 | p99 ms @8 | TTFB p50 ms @8 | server CPU ms/req "
        "| peak RSS MB | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cpu = f"{r.cpu_ms:.3f}" if r.cpu_ms is not None else "—"
        rss = f"{r.rss:.0f}" if r.rss is not None else "—"
        print(
            f"| {r.target} | {r.mode} | {r.rps:,.0f} | {r.p50:.2f} | {r.p99:.2f} | {r.ttfb50:.2f} | {cpu} "
            f"| {rss} | {r.errors} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per 64-connection run (bounded)")
    parser.add_argument("--litellm", help="a venv with 'litellm[proxy]' installed, to measure its proxy too")
    parser.add_argument("--skip-direct", action="store_true")
    args = parser.parse_args()
    rows: list[Row] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        fake_upstream() as upstream,
    ):
        if not args.skip_direct:
            rows += measure("upstream direct", f"{upstream}/v1/chat/completions", [], args.duration, KEY)
        config = Path(tmp) / "toolhub.yaml"
        toolhub_config(upstream, config)
        with bound_socket() as (sock, port):
            cmd = [sys.executable, "-m", "hub", "serve", "--config", str(config), "--fd", str(sock.fileno()),
                   "--log-level", "warning"]  # fmt: skip
            with process(cmd, port, sock=sock) as proc:
                url = f"http://127.0.0.1:{port}/v1/chat/completions"
                rows += measure("Toolhub", url, tree(proc.pid), args.duration, KEY)
        if args.litellm:
            rows += measure_litellm(Path(args.litellm), upstream, Path(tmp), args.duration)
    print_table(rows)
    by = {(r.target, r.mode): r for r in rows}
    for mode in ("non-stream", "stream (20 chunks)"):
        hub, lite = by.get(("Toolhub", mode)), by.get(("LiteLLM", mode))
        if hub and lite and lite.rps:
            print(f"\nToolhub / LiteLLM throughput, {mode}: {hub.rps / lite.rps:.1f}x")
    print(f"\nmachine: {os.cpu_count()} cores; Python {sys.version.split()[0]}; one run per row")


def measure_litellm(venv: Path, upstream: str, tmp: Path, duration: float) -> list[Row]:
    config = tmp / "litellm.yaml"
    config.write_text(
        "model_list:\n  - model_name: bench\n    litellm_params:\n      model: openai/bench\n"
        f"      api_base: {upstream}/v1\n      api_key: sk-upstream\n"
        f"general_settings:\n  master_key: {KEY}\n"
    )
    port = free_port()
    cmd = [str(venv / "bin" / "litellm"), "--config", str(config), "--port", str(port), "--num_workers", "1"]
    with process(cmd, port, env={"LITELLM_LOG": "ERROR"}) as proc:
        time.sleep(3)  # LiteLLM finishes its start-up after it starts listening
        return measure("LiteLLM", f"http://127.0.0.1:{port}/v1/chat/completions", tree(proc.pid), duration, KEY)


if __name__ == "__main__":
    main()
