"""What virtual keys, budgets, rate limits and usage logging cost per request, in gateway CPU.

Starts the fast fake upstream and one gateway process per row, drives non-streaming requests at 64 connections with
bench/loadgen.py, and reads the gateway's CPU time from /proc. Rows:

    bare            the gateway without the accounting layer (create_app without extensions), master key
    sqlite/master   the full server (build_app) on SQLite, master key: usage logged, no key checks
    ... no journal  the same without the usage journal (hub/scale/journal.py): what journaling costs
    sqlite/key      the same with a virtual key that has a budget and rpm/tpm limits (never reached)
    postgres/key    the same on PostgreSQL (needs TOOLHUB_TEST_POSTGRES_URL; a fresh schema is used)
    postgres+redis  the same with rate limits in Redis (needs TOOLHUB_TEST_REDIS_URL too)

    python bench/keys_overhead.py [--duration 8] [--runs 3]

Every run measures every row once, starting at a different row each run (so a noisy neighbour on the machine, or
a slow drift, hits all rows alike); the table gives the median and min-max over the runs, and "vs bare" is each
run's difference to that run's bare row. All traffic is on
127.0.0.1; every load loop is bounded by time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gateway import BENCH, cpu_seconds, free_port, load, process, tree

MASTER = "sk-bench-master"


def serve(args: argparse.Namespace) -> None:
    """Run one gateway (this script re-executes itself with --serve)."""
    import uvicorn

    from hub.app import create_app
    from hub.config import load_config
    from hub.scale.tuned import TunedServer
    from hub.server import build_app

    if args.serve == "nojournal":
        _without_journal()
    config = load_config(args.config)
    app = create_app(config) if args.serve == "bare" else build_app(config)
    TunedServer(uvicorn.Config(app, host="127.0.0.1", port=args.port, loop="uvloop", http="httptools",
                               log_level="warning", access_log=False)).run()  # fmt: skip


def _without_journal() -> None:
    """Every UsageWriter made from now on keeps no journal (the accounting layer makes one at startup)."""
    from hub.storage import writer

    original = writer.UsageWriter.__init__

    def init(self: writer.UsageWriter, *args: object, **kwargs: object) -> None:
        original(self, *args, **{**kwargs, "journal": False})  # type: ignore[arg-type]

    writer.UsageWriter.__init__ = init  # type: ignore[method-assign]


def write_config(path: Path, upstream: int, database_url: str | None, redis_url: str | None) -> None:
    import yaml

    general: dict[str, object] = {"master_key": MASTER}
    if database_url:
        general["database_url"] = database_url
    if redis_url:
        general["redis_url"] = redis_url
    model = {"model_name": "bench", "litellm_params": {"model": "openai/bench", "api_key": "sk-x",
                                                       "api_base": f"http://127.0.0.1:{upstream}/v1"}}  # fmt: skip
    path.write_text(yaml.safe_dump({"model_list": [model], "general_settings": general}))


def virtual_key(port: int) -> str:
    body = json.dumps({"key_alias": f"bench-{uuid.uuid4().hex[:8]}", "max_budget": 1e9, "rpm_limit": 10**9,
                       "tpm_limit": 10**12}).encode()  # fmt: skip
    headers = {"authorization": f"Bearer {MASTER}", "content-type": "application/json"}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/key/generate", data=body, method="POST", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["key"]


def row(name: str, mode: str, config: Path, duration: float, use_key: bool) -> tuple[str, float, float, int]:
    port = free_port()
    cmd = [sys.executable, str(Path(__file__)), "--serve", mode, "--config", str(config), "--port", str(port)]
    with process(cmd, port) as proc:
        key = virtual_key(port) if use_key else MASTER
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        load(url, 16, 2, False, key)  # warm up: caches, connections, JIT-free but allocator-warm
        pids = tree(proc.pid)
        before = cpu_seconds(pids)
        result = load(url, 64, duration, False, key)
        cpu = cpu_seconds(pids) - before
    count = int(result["requests"])  # type: ignore[arg-type]
    return name, count / float(result["seconds"]), cpu / max(count, 1) * 1000, int(result.get("errors", 0))  # type: ignore[arg-type]


Row = tuple[str, float, float, int]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve", choices=["bare", "full", "nojournal"])
    parser.add_argument("--config")
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return
    pg, redis = os.environ.get("TOOLHUB_TEST_POSTGRES_URL"), os.environ.get("TOOLHUB_TEST_REDIS_URL")
    upstream = free_port()
    runs: list[list[Row]] = []
    with tempfile.TemporaryDirectory() as tmp, process([sys.executable, str(BENCH / "fake_upstream.py"), "--port",
                                                        str(upstream)], upstream):  # fmt: skip
        for run in range(args.runs):
            runs.append(_run(Path(tmp) / str(run), upstream, pg, redis, args.duration, run))
            print(f"run {run + 1}/{args.runs}: " + ", ".join(f"{r[0]} {r[2]:.3f} ms" for r in runs[-1]),
                  file=sys.stderr, flush=True)  # fmt: skip
    print(table(runs))


def _run(tmp: Path, upstream: int, pg: str | None, redis: str | None, duration: float, turn: int) -> list[Row]:
    """One measurement of every row, each on a fresh database, starting at row `turn` (rows come back in order)."""
    tmp.mkdir(parents=True)
    sqlite = f"sqlite:///{tmp}/bench.db"
    plans: list[tuple[str, str, str | None, str | None, bool]] = [
        ("bare (no accounting)", "bare", sqlite, None, False),
        ("sqlite, master key", "full", sqlite, None, False),
        ("sqlite, master key, no journal", "nojournal", sqlite, None, False),
        ("sqlite, virtual key + limits", "full", sqlite, None, True),
    ]
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    if pg:
        plans.append(("postgres, virtual key + limits", "full", f"{pg}?search_path={schema}", None, True))
        if redis:
            plans.append(("postgres + redis limits, virtual key", "full", f"{pg}?search_path={schema}", redis, True))
        _schema(pg, schema, create=True)
    measured: dict[str, Row] = {}
    order = [*plans[turn % len(plans) :], *plans[: turn % len(plans)]]
    try:
        for name, mode, db, rds, use_key in order:
            config = tmp / f"{len(measured)}.yaml"
            write_config(config, upstream, db, rds)
            measured[name] = row(name, mode, config, duration, use_key)
    finally:
        if pg:
            _schema(pg, schema, create=False)
    return [measured[plan[0]] for plan in plans]


def table(runs: list[list[Row]]) -> str:
    """Markdown: per row, min-max over the runs of req/s, CPU per request and the difference to bare."""

    def span(values: list[float], fmt: str) -> str:
        low, mid, high = (fmt.format(v) for v in (min(values), statistics.median(values), max(values)))
        return low if low == high else f"{mid} ({low} – {high})"

    head = f"| gateway ({len(runs)} runs: median (min – max)) | req/s (64 conns) | CPU per request | vs bare | errors |"
    lines = [head, "|---|---|---|---|---|"]
    for i, (name, *_) in enumerate(runs[0]):
        rps = [run[i][1] for run in runs]
        cpu = [run[i][2] for run in runs]
        delta = [run[i][2] - run[0][2] for run in runs]
        errors = sum(run[i][3] for run in runs)
        lines.append(f"| {name} | {span(rps, '{:,.0f}')} | {span(cpu, '{:.3f}')} ms | {span(delta, '{:+.3f}')} ms "
                     f"| {errors} |")  # fmt: skip
    return "\n".join(lines)


def _schema(url: str, schema: str, *, create: bool) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f'CREATE SCHEMA "{schema}"' if create else f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(run())


if __name__ == "__main__":
    main()
