"""Usage-storage benchmark: the server's CPU per request over a longer run, slice by slice, to see it grow (or not).

Starts the fast fake upstream and `toolhub serve` with a local response cache and a fresh SQLite database, then
drives cache hits (the cheapest request, so the storage work weighs most) with bench/loadgen.py at 64 connections in
back-to-back slices. Per slice: requests per second, and CPU per request of the main thread (the event loop) and of
the other threads (the two aiosqlite connections, which store the spend logs and fold them into the console's
rollup every 5 s), from /proc's per-thread schedstat (nanoseconds); and at the slice's end the SQLite WAL's size and,
from /metrics, the usage records queued and spilled so far: a writer slower than the requests shows there first
(before ce1b9db a batch was a dozen calls to aiosqlite's thread, each waiting a turn of the busy event loop, and at
~7,000 hits a second, with `--client raw`, 20,000 records spilled to disk every ~3 s).
A slice's CPU runs from its start to the next one's, so storage work that lags a slice is counted in the next.

With `--before REV` the same run is made on that git revision too (bench/cache.py's `exported`), runs alternating
between the two trees; each cell is min/median over `--runs` runs.

    python -m bench.storage                                  # 12 slices of 5 s
    python -m bench.storage --slices 6 --slice 10 --runs 2 --before HEAD~1
    python -m bench.storage --slices 4 --slice 4 --client raw --before 18cd233   # the writer at ~7,000 hits/s

All traffic goes to 127.0.0.1; every load loop is bounded by time and request count.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.cache import DB, config, exported
from bench.gateway import BENCH, KEY, ROOT, bound_socket, fake_upstream, process


@dataclass(frozen=True, slots=True)
class Slice:
    requests: int
    rps: float
    main_us: float
    other_us: float
    wal_mib: float
    queued: float
    spilled: float


def thread_ns(pid: int) -> tuple[int, int]:
    """(main thread, other threads) CPU nanoseconds of process `pid` (its threads that ended are not counted)."""
    main = other = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            spent = int((task / "schedstat").read_text().split()[0])
            if task.name == str(pid):
                main += spent
            else:
                other += spent
    return main, other


def writer_gauges(base: str) -> tuple[float, float]:
    """(usage records queued, spilled since start) from the server's /metrics: a writer that falls behind the
    requests shows as a growing queue, then as records spilled to its local file."""
    request = urllib.request.Request(f"{base}/metrics", headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    values = dict(line.split(" ", 1) for line in text.splitlines() if line.startswith("toolhub_usage_"))
    return float(values["toolhub_usage_queue_records"]), float(values["toolhub_usage_spilled_records"])


def load(url: str, duration: float, client: str) -> int:
    """Cache hits at 64 connections for `duration` seconds; returns how many were answered."""
    args = [sys.executable, str(BENCH / "loadgen.py"), url, "--conns", "64", "--duration", str(duration),
            "--key", KEY, "--client", client]  # fmt: skip
    out = json.loads(subprocess.run(args, capture_output=True, check=True, timeout=duration + 120).stdout)
    if out["errors"]:
        raise RuntimeError(f"{out['errors']} errors at {url}")
    return int(out["requests"])


def measure(root: Path, config_path: Path, slices: int, seconds: float, client: str) -> list[Slice]:
    """One `Slice` per load slice, from `toolhub serve` of the tree at `root` on a fresh database."""
    with bound_socket() as (sock, port), tempfile.TemporaryDirectory() as tmp:
        start = f"import runpy, sys; sys.path.insert(0, {str(root)!r}); runpy.run_module('hub', run_name='__main__')"
        cmd = [sys.executable, "-c", start, "serve", "--config", str(config_path), "--fd", str(sock.fileno()),
               "--log-level", "warning"]  # fmt: skip
        with process(cmd, port, {DB: f"{tmp}/usage.db"}, sock) as proc:
            url, wal = f"http://127.0.0.1:{port}/v1/chat/completions", Path(f"{tmp}/usage.db-wal")
            return [_slice(proc.pid, url, seconds, wal, client) for _ in range(slices)]


def _slice(pid: int, url: str, seconds: float, wal: Path, client: str) -> Slice:
    (main, other), started = thread_ns(pid), time.monotonic()
    count = load(url, seconds, client)
    (main_after, other_after), elapsed = thread_ns(pid), time.monotonic() - started
    per = 1000 * max(count, 1)
    size = wal.stat().st_size / 2**20 if wal.exists() else 0.0
    queued, spilled = writer_gauges(url.removesuffix("/v1/chat/completions"))
    return Slice(count, count / elapsed, (main_after - main) / per, (other_after - other) / per, size, queued, spilled)


def table(name: str, runs: list[list[Slice]]) -> list[str]:
    """Markdown rows, one per slice: min/median over runs of each measure."""
    out: list[str] = []
    total = 0
    for i in range(len(runs[0])):
        cells = [run[i] for run in runs]
        total += int(statistics.median(c.requests for c in cells))
        values = [
            [getattr(c, f) for c in cells] for f in ("rps", "main_us", "other_us", "wal_mib", "queued", "spilled")
        ]
        shown = " | ".join(f"{min(v):,.1f} / {statistics.median(v):,.1f}" for v in values)
        out.append(f"| {name} | {i + 1} | {total:,} | {shown} |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", type=int, default=12, help="load slices per run")
    parser.add_argument("--slice", type=float, default=5.0, help="seconds per slice (bounded)")
    parser.add_argument("--runs", type=int, default=1, help="runs per tree (cells are min / median)")
    parser.add_argument("--before", default=None, help="a git revision (or a folder with a tree) to measure too")
    parser.add_argument("--client", choices=("raw", "aiohttp"), default="aiohttp", help="bench/loadgen.py's client")
    args = parser.parse_args()
    lines = [
        "| tree | slice | requests so far | req/s @64 | main thread µs/req | other threads µs/req | WAL MiB "
        "| usage queued | usage spilled |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    with (
        tempfile.TemporaryDirectory() as tmp,
        exported(args.before) as before_root,
        fake_upstream() as upstream,
    ):
        path = Path(tmp) / "local.yaml"
        config(upstream, path, "{type: local}")
        trees = [("before", before_root)] if before_root is not None else []
        trees.append(("after" if trees else "this", ROOT))
        results: dict[str, list[list[Slice]]] = {name: [] for name, _ in trees}
        for _ in range(args.runs):
            for name, root in trees:
                results[name].append(measure(root, path, args.slices, args.slice, args.client))
        for name, _ in trees:
            lines += table(name, results[name])
    print("\n".join(lines))
    compared = f"; {args.client} client" + (f"; before = {args.before}, after = this tree" if args.before else "")
    print(f"\nmachine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; Python {sys.version.split()[0]}; "
          f"{args.runs} run(s) per tree of {args.slices} x {args.slice:g} s{compared}")  # fmt: skip


if __name__ == "__main__":
    main()
