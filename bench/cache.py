"""Response-cache benchmark: server CPU per request and throughput for a cache hit (local and Redis) vs a miss.

Starts the fast fake upstream and `toolhub serve` with `litellm_settings.cache` (local, then Redis), and drives each
with bench/loadgen.py at 64 connections. A miss is the same request with `cache: {no-cache, no-store}` (it still
computes the key, so the row is the miss path of a cache-enabled gateway); every other request is a hit.

    python bench/cache.py                      # local + Redis at redis://127.0.0.1:6379/0
    python bench/cache.py --redis-url ''       # local only
    python bench/cache.py --duration 8

All traffic goes to 127.0.0.1; every load loop is bounded by time and request count.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from bench.gateway import BENCH, KEY, bound_socket, cpu_seconds, process, tree

MISS: dict[str, object] = {"cache": {"no-cache": True, "no-store": True}}


def config(upstream: str, path: Path, cache_params: str) -> None:
    path.write_text(
        "model_list:\n  - model_name: bench\n    litellm_params:\n      model: openai/bench\n"
        f"      api_base: {upstream}/v1\n      api_key: sk-upstream\n"
        f"litellm_settings:\n  cache: true\n  cache_params: {cache_params}\n"
        f"general_settings:\n  master_key: {KEY}\n"
    )


def run(url: str, pids: list[int], duration: float, stream: bool, extra: dict[str, object]) -> tuple[float, float]:
    """(requests per second, server CPU ms per request) at 64 connections."""
    args = [sys.executable, str(BENCH / "loadgen.py"), url, "--conns", "64", "--duration", str(duration),
            "--key", KEY, "--extra", json.dumps(extra), *(["--stream"] if stream else [])]  # fmt: skip
    before = cpu_seconds(pids)
    out = json.loads(subprocess.run(args, capture_output=True, check=True, timeout=duration + 120).stdout)
    cpu = cpu_seconds(pids) - before
    count = int(out["requests"])
    if out["errors"]:
        raise RuntimeError(f"{out['errors']} errors at {url}")
    return count / float(out["seconds"]), cpu * 1000 / max(count, 1)


def measure(name: str, upstream: str, tmp: Path, cache_params: str, duration: float) -> list[str]:
    path = tmp / f"{name}.yaml"
    config(upstream, path, cache_params)
    rows: list[str] = []
    with bound_socket() as (sock, port):
        cmd = [sys.executable, "-m", "hub", "serve", "--config", str(path), "--fd", str(sock.fileno()),
               "--log-level", "warning"]  # fmt: skip
        with process(cmd, port, sock=sock) as proc:
            url, pids = f"http://127.0.0.1:{port}/v1/chat/completions", tree(proc.pid)
            miss_rps, miss_cpu = run(url, pids, duration, False, MISS)
            rows.append(f"| {name} | miss (non-stream) | {miss_rps:,.0f} | {miss_cpu:.3f} | — |")
            for stream in (False, True):
                rps, cpu = run(url, pids, duration, stream, {})
                mode = "hit (stream replay)" if stream else "hit (non-stream)"
                rows.append(f"| {name} | {mode} | {rps:,.0f} | {cpu:.3f} | {rps / miss_rps:.1f}x |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run (bounded)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="'' to skip the Redis rows")
    args = parser.parse_args()
    rows = ["| cache | request | req/s @64 | server CPU ms/req | req/s vs miss |", "|---|---|---|---|---|"]
    with (
        tempfile.TemporaryDirectory() as tmp,
        bound_socket() as (up_sock, up_port),
        process(
            [sys.executable, str(BENCH / "fake_upstream.py"), "--fd", str(up_sock.fileno())], up_port, sock=up_sock
        ),
    ):
        upstream = f"http://127.0.0.1:{up_port}"
        rows += measure("local", upstream, Path(tmp), "{type: local}", args.duration)
        if args.redis_url:
            params = f"{{type: redis, redis_url: '{args.redis_url}', namespace: bench-{uuid.uuid4().hex[:8]}}}"
            rows += measure("redis", upstream, Path(tmp), params, args.duration)
    print("\n".join(rows))
    print(f"\nmachine: {os.cpu_count()} cores; Python {sys.version.split()[0]}; one run per row")


if __name__ == "__main__":
    main()
