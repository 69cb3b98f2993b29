"""Response-cache benchmark: server CPU per request and throughput for a cache hit (local and Redis) vs a miss.

Starts the fast fake upstream and `toolhub serve` with `litellm_settings.cache` (local, then Redis), and drives each
with bench/loadgen.py at 64 connections, by default with its raw client: aiohttp's costs the load generator about as
much CPU per request as a hit costs the server, and on a 2-core machine the two share the cores (`--client aiohttp`
measures with it). A miss is the same request with `cache: {no-cache, no-store}` (it still computes the key, so the
row is the miss path of a cache-enabled gateway); every other request is a hit. A last row per cache, the floor, is
`GET /health/liveliness` (raw client): no key, body, lookup or accounting, only the HTTP server, the middleware and
the kernel, which every request pays. Its "CPU: miss / this" bounds what any hit can reach against a miss.

With `--before REV` the same rows are measured on that git revision too (exported with `git archive` to a temporary
folder; or give a folder holding a tree), runs alternating between the two trees so that a busy machine weighs on
both alike; each cell is the median of `--runs` runs. Every server run logs its usage to a fresh SQLite database
in the temporary folder (as bench/keys_overhead.py does): the working directory's `toolhub.db`, which other runs
keep growing, made a spend-log row cost more from one run to the next. A last row fills a local cache with distinct
answers and reports the bytes held against the bound.

    python -m bench.cache                          # local + Redis at redis://127.0.0.1:6379/0
    python -m bench.cache --redis-url ''           # local only
    python -m bench.cache --before ba3c6d5 --runs 3

Where a hit's ~0.10 ms of server CPU goes (2026-12, load ~2; the same for local and Redis, whose near copy answers
in process: per-request call counts are identical and alternating runs differ by less than their noise):
~0.017 ms kernel (socket read and write, loopback delivery, epoll; perf), ~0.016 ms uvicorn's protocol and the
request's task (in process with a fake transport), ~0.030 ms the app's path (edge middleware, auth, body, checks,
router, key, guard, lookup, answer) and ~0.017 ms its accounting: the spend-log row (journal write, queue, metrics)
and, in the writer's thread, its SQLite insert (~0.010 ms a row with the spend logs' indexes); the rest is loop
overhead and a shared machine. Most of it is what every request pays, a miss too.

All traffic goes to 127.0.0.1; every load loop is bounded by time and request count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from bench.gateway import BENCH, KEY, ROOT, bound_socket, cpu_seconds, fake_upstream, process, tree

MISS: dict[str, object] = {"cache": {"no-cache": True, "no-store": True}}
MODES = (("miss (non-stream)", False, MISS), ("hit (non-stream)", False, {}), ("hit (stream replay)", True, {}))
FLOOR = "floor: GET /health/liveliness"
"""The cheapest answer the server gives (no key, no body, no lookup, no accounting): what every request pays for
the HTTP server, the app's middleware and the kernel. No hit, which does all that and more, can be cheaper, so
miss/floor bounds what a hit can reach against a miss."""
DB = "TOOLHUB_BENCH_DB"
"""The variable naming each server run's fresh usage database (the config says `os.environ/TOOLHUB_BENCH_DB`)."""
Cell = tuple[float, float]
"""(requests per second, server CPU ms per request)"""


def config(upstream: str, path: Path, cache_params: str) -> None:
    """The config of `toolhub serve` for one cache; its usage goes to a fresh SQLite database at each `measure`."""
    path.write_text(
        "model_list:\n  - model_name: bench\n    litellm_params:\n      model: openai/bench\n"
        f"      api_base: {upstream}/v1\n      api_key: sk-upstream\n"
        f"litellm_settings:\n  cache: true\n  cache_params: {cache_params}\n"
        f"general_settings:\n  master_key: {KEY}\n  database_url: os.environ/{DB}\n"
    )


def run(
    url: str, pids: list[int], duration: float, stream: bool, extra: dict[str, object], client: str, get: bool = False
) -> Cell:
    """(requests per second, server CPU ms per request) at 64 connections (`get`: a bodiless GET, raw client)."""
    args = [sys.executable, str(BENCH / "loadgen.py"), url, "--conns", "64", "--duration", str(duration),
            "--key", KEY, "--extra", json.dumps(extra), "--client", "raw" if get else client,
            *(["--stream"] if stream else []), *(["--get"] if get else [])]  # fmt: skip
    before = cpu_seconds(pids)
    out = json.loads(subprocess.run(args, capture_output=True, check=True, timeout=duration + 120).stdout)
    cpu = cpu_seconds(pids) - before
    count = int(out["requests"])
    if out["errors"]:
        raise RuntimeError(f"{out['errors']} errors at {url}")
    return count / float(out["seconds"]), cpu * 1000 / max(count, 1)


def measure(root: Path, config_path: Path, duration: float, client: str) -> list[Cell]:
    """One cell per mode, from `toolhub serve` of the tree at `root`."""
    with bound_socket() as (sock, port):
        start = f"import runpy, sys; sys.path.insert(0, {str(root)!r}); runpy.run_module('hub', run_name='__main__')"
        cmd = [sys.executable, "-c", start, "serve", "--config", str(config_path), "--fd", str(sock.fileno()),
               "--log-level", "warning"]  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp, process(cmd, port, {DB: f"{tmp}/usage.db"}, sock) as proc:
            url, pids = f"http://127.0.0.1:{port}/v1/chat/completions", tree(proc.pid)
            cells = [run(url, pids, duration, stream, extra, client) for _, stream, extra in MODES]
            floor = f"http://127.0.0.1:{port}/health/liveliness"
            return [*cells, run(floor, pids, duration, False, {}, client, get=True)]


@contextlib.contextmanager
def exported(rev: str | None) -> Iterator[Path | None]:
    """The tree of `rev` in a temporary folder, or `rev` itself when it is a folder (None: no comparison)."""
    if rev is None or Path(rev).is_dir():
        yield None if rev is None else Path(rev)
        return
    with tempfile.TemporaryDirectory(prefix="toolhub-before-") as tmp:
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        yield Path(tmp)


def rows(name: str, before: list[list[Cell]], after: list[list[Cell]]) -> list[str]:
    """Markdown rows: per mode the median req/s and CPU, and how many times a miss's they are (before -> after when
    there is a before)."""
    out: list[str] = []
    for i, mode in enumerate([*(m[0] for m in MODES), FLOOR]):
        cells = [_cell(runs, i) for runs in (before, after) if runs]
        out.append(f"| {name} | {mode} | " + " | ".join(" → ".join(c[k] for c in cells) for k in range(4)) + " |")
    return out


def _cell(runs: list[list[Cell]], i: int) -> tuple[str, str, str, str]:
    """(req/s, CPU ms, req/s against a miss's, a miss's CPU against this) of mode `i`, medians over `runs`."""
    (rps, cpu), (miss_rps, miss_cpu) = _median([cells[i] for cells in runs]), _median([cells[0] for cells in runs])
    if i == 0:
        return f"{rps:,.0f}", f"{cpu:.3f}", "—", "—"
    return f"{rps:,.0f}", f"{cpu:.3f}", f"{rps / miss_rps:.1f}x", f"{miss_cpu / cpu:.1f}x"


def _median(cells: list[Cell]) -> Cell:
    return statistics.median(c[0] for c in cells), statistics.median(c[1] for c in cells)


def bound_row(entries: int = 20_000, max_bytes: int = 4 * 1024 * 1024) -> str:
    """Fill a local cache with `entries` distinct ~1 KB answers (streamed replays rendered too) and report the bytes
    it holds against its bound."""
    from hub.cache.service import open_cache
    from hub.config import CacheSettings

    async def fill() -> tuple[int, int]:
        settings = CacheSettings(max_bytes=max_bytes)
        peak = 0
        async with open_cache(settings) as cache:
            for i in range(entries):
                key = f"toolhub:{i:064x}"
                answer = {"id": f"chatcmpl-{i}", "choices": [{"index": 0, "message": {"content": "x" * 900}}]}
                await cache.backend.set(key, json.dumps(answer).encode(), 600)
                cache.replays.events(key, json.dumps(answer).encode(), include_usage=False)
                peak = max(peak, cache.backend.bytes_used + cache.replays.bytes_used)
            return peak, len(cache.backend.local)

    peak, held = asyncio.run(fill())
    return f"| local | {entries:,} distinct answers, bound {max_bytes:,} B | peak {peak:,} B held | {held:,} entries |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run (bounded)")
    parser.add_argument("--runs", type=int, default=1, help="runs per tree (cells are medians)")
    parser.add_argument("--before", default=None, help="a git revision (or a folder with a tree) to measure too")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="'' to skip the Redis rows")
    parser.add_argument("--client", choices=("raw", "aiohttp"), default="raw", help="bench/loadgen.py's client")
    args = parser.parse_args()
    table = [
        "| cache | request | req/s @64 | server CPU ms/req | req/s: this / miss | CPU: miss / this |",
        "|---|---|---|---|---|---|",
    ]
    with (
        tempfile.TemporaryDirectory() as tmp,
        exported(args.before) as before_root,
        fake_upstream() as upstream,
    ):
        caches = [("local", "{type: local}")]
        if args.redis_url:
            namespace = f"bench-{uuid.uuid4().hex[:8]}"
            caches.append(("redis", f"{{type: redis, redis_url: '{args.redis_url}', namespace: {namespace}}}"))
        for name, params in caches:
            path = Path(tmp) / f"{name}.yaml"
            config(upstream, path, params)
            before: list[list[Cell]] = []
            after: list[list[Cell]] = []
            for _ in range(args.runs):
                if before_root is not None:
                    before.append(measure(before_root, path, args.duration, args.client))
                after.append(measure(ROOT, path, args.duration, args.client))
            table += rows(name, before, after)
    table.append(bound_row())
    print("\n".join(table))
    compared = f"; before = {args.before}, after = this tree" if args.before else ""
    print(f"\nmachine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; Python {sys.version.split()[0]}; "
          f"median of {args.runs} run(s) per cell; {args.client} client{compared}")  # fmt: skip


if __name__ == "__main__":
    main()
