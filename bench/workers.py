"""`toolhub serve --workers N`: throughput with 1 and 2 workers, CPU per request, RSS per worker, and the latency a
load balancer (Debian's haproxy) adds in front of the gateway.

Starts the fast fake upstream and, per row, `toolhub serve --workers N` (the full server on SQLite, master key) on a
socket bound here; bench/loadgen.py drives non-streaming requests at 64 connections. CPU per request is the workers'
CPU time (from /proc) over the requests answered; RSS is each worker's resident set after the run. The latency rows
run 8 connections straight to a 1-worker gateway and through haproxy (round robin, one backend), in alternating
turns, and report p50.

    python bench/workers.py [--duration 8] [--runs 3]

On a 2-core machine the load generator and the fake upstream take CPU too, so two workers cannot reach twice one
worker's rate here; the table says what the machine gave. The load generator's raw client (~16 us of CPU a request) is
the default: aiohttp's (`--client aiohttp`, ~100 us) took about half a core at the rates a worker serves since the
provider path moved to providers/_wire, and two workers then got ~1.05x one. The 64 keep-alive connections are spread
over the workers by whichever accepts first, so one worker may hold more of them: runs vary.
All traffic is on 127.0.0.1; every load loop is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gateway import BENCH, KEY, bound_socket, cpu_seconds, load, pct, process, tree, wait_http


def write_config(path: Path, upstream: int, tmp: Path) -> Path:
    import yaml

    model = {"model_name": "bench", "litellm_params": {"model": "openai/bench", "api_key": "sk-x",
                                                       "api_base": f"http://127.0.0.1:{upstream}/v1"}}  # fmt: skip
    general = {"master_key": KEY, "database_url": f"sqlite:///{tmp}/bench.db"}
    path.write_text(yaml.safe_dump({"model_list": [model], "general_settings": general}))
    return path


@contextlib.contextmanager
def gateway(config: Path, workers: int) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    with bound_socket() as (sock, port):
        cmd = [sys.executable, "-m", "hub", "serve", "--config", str(config), "--fd", str(sock.fileno()),
               "--workers", str(workers), "--log-level", "warning"]  # fmt: skip
        with process(cmd, port, sock=sock) as proc:
            deadline = time.monotonic() + 120
            while len(tree(proc.pid)) < workers + (workers > 1) and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(3 if workers > 1 else 0)  # every worker past its startup, not only the first one
            yield port, proc


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def throughput(config: Path, workers: int, duration: float, client: str) -> tuple[float, float, list[float], int]:
    """(req/s, worker CPU ms per request, RSS MB of each worker, errors)."""
    with gateway(config, workers) as (port, proc):
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        load(url, 64, 2, False, KEY, client)  # warm-up
        pids = [p for p in tree(proc.pid) if p != proc.pid or workers == 1]
        before = cpu_seconds(pids)
        result = load(url, 64, duration, False, KEY, client)
        cpu = cpu_seconds(pids) - before
        rss = [rss_mb(p) for p in pids]
    count = int(result["requests"])  # type: ignore[arg-type]
    return count / float(result["seconds"]), cpu / max(count, 1) * 1000, rss, int(result["errors"])  # type: ignore[arg-type]


_HAPROXY = """global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
frontend toolhub
    bind fd@{fd}
    default_backend replicas
backend replicas
    balance roundrobin
    server r0 127.0.0.1:{backend}
"""


def added_latency(config: Path, tmp: Path, duration: float) -> tuple[float, float]:
    """p50 ms straight to a 1-worker gateway, and through haproxy."""
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    with gateway(config, 1) as (port, _proc), bound_socket() as (sock, lb_port):
        (tmp / "haproxy.cfg").write_text(_HAPROXY.format(fd=sock.fileno(), backend=port))
        lb = subprocess.Popen([binary, "-db", "-f", str(tmp / "haproxy.cfg")], pass_fds=(sock.fileno(),),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        direct: list[float] = []
        balanced: list[float] = []
        try:
            wait_http(lb_port, lb)
            for _ in range(4):  # alternated in short turns, so that the machine's drift hits both alike
                for target, out in ((port, direct), (lb_port, balanced)):
                    result = load(f"http://127.0.0.1:{target}/v1/chat/completions", 8, duration / 4, False, KEY)
                    out += result["latency"]  # type: ignore[arg-type]
        finally:
            lb.terminate()
            lb.wait(15)
    return pct(direct, 0.5), pct(balanced, 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--client", choices=("raw", "aiohttp"), default="raw", help="bench/loadgen.py's client")
    args = parser.parse_args()
    rows: dict[int, list[tuple[float, float, list[float], int]]] = {1: [], 2: []}
    latencies: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp_dir, bound_socket() as (up_sock, upstream):
        tmp = Path(tmp_dir)
        up_cmd = [sys.executable, str(BENCH / "fake_upstream.py"), "--fd", str(up_sock.fileno())]
        up = subprocess.Popen(up_cmd, pass_fds=(up_sock.fileno(),), stdout=subprocess.DEVNULL)
        try:
            config = write_config(tmp / "config.yaml", upstream, tmp)
            for run in range(args.runs):
                for workers in (1, 2) if run % 2 == 0 else (2, 1):  # alternate the order: drift hits both alike
                    rows[workers].append(throughput(config, workers, args.duration, args.client))
                latencies.append(added_latency(config, tmp, args.duration / 2))
                print(f"run {run + 1}/{args.runs}: " + ", ".join(f"{w} worker(s) {rows[w][-1][0]:,.0f} req/s"
                      for w in (1, 2)), file=sys.stderr, flush=True)  # fmt: skip
        finally:
            up.terminate()
            up.wait(15)
    print(table(rows, latencies))


def table(rows: dict[int, list[tuple[float, float, list[float], int]]], latencies: list[tuple[float, float]]) -> str:
    def med(values: list[float], fmt: str) -> str:
        return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))} – {fmt.format(max(values))})"

    lines = [f"| `--workers` ({len(rows[1])} runs: median (min – max)) | req/s (64 conns) | vs 1 worker | "
             "CPU per request | RSS per worker | errors |", "|---|---|---|---|---|---|"]  # fmt: skip
    one = statistics.median(r[0] for r in rows[1])
    for workers, measured in rows.items():
        rps = [r[0] for r in measured]
        rss = [mb for r in measured for mb in r[2]]
        lines.append(f"| {workers} | {med(rps, '{:,.0f}')} | {statistics.median(rps) / one:.2f}x | "
                     f"{med([r[1] for r in measured], '{:.3f}')} ms | {med(rss, '{:.0f}')} MB | "
                     f"{sum(r[3] for r in measured)} |")  # fmt: skip
    direct, balanced = [d for d, _ in latencies], [b for _, b in latencies]
    added = [b - d for d, b in latencies]
    lines += ["", "| 8 conns, 1 worker | p50 latency |", "|---|---|", f"| direct | {med(direct, '{:.2f}')} ms |",
              f"| through haproxy | {med(balanced, '{:.2f}')} ms |",
              f"| added by haproxy | {med(added, '{:+.2f}')} ms |"]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
