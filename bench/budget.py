"""What budget holds cost per request, in gateway CPU: a budgeted key on an unpriced and a priced model.

A priced model makes every request hold its worst case (`hub.accounts.budget`): in this process's memory, or in
Redis (one script call to hold, settlements batched off the request path) when `redis_url` is set. Rows, each
one gateway process driven at 64 connections by bench/loadgen.py, with the fast fake upstream:

    bare                      the gateway without the accounting layer, master key
    sqlite, unpriced          a key with max_budget on a model without prices (nothing to hold)
    sqlite, priced            the same key on a priced model: holds in memory
    postgres + redis, no budget   a key without max_budget (rate limits in Redis): the Redis baseline
    postgres + redis, priced  a budgeted key on a priced model: holds in Redis

    TOOLHUB_TEST_POSTGRES_URL=... TOOLHUB_TEST_REDIS_URL=... python bench/budget.py [--duration 8] [--runs 3]
    TOOLHUB_TEST_REDIS_URL=... python bench/budget.py --micro [--requests 20000]

`--micro` times `Accounting.admit` + `settle` alone in this process (64 concurrent tasks, no HTTP): the CPU the
accounting layer spends per request, without the noise of a whole gateway on a shared machine.

Budgets are never reached (max_budget 1e9). Rows rotate across runs as in bench/keys_overhead.py, whose gateway
runner this reuses. All traffic is on 127.0.0.1; every load loop is bounded by time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gateway import BENCH, cpu_seconds, free_port, load, process, tree
from bench.keys_overhead import MASTER, Row, _schema, table

Plan = tuple[str, str, str, str | None, bool, dict[str, float]]
PRICES = {"input_cost_per_token": 0.25e-6, "output_cost_per_token": 2.0e-6}


def write_config(path: Path, upstream: int, database_url: str, redis_url: str | None, prices: dict[str, float]) -> None:
    import yaml

    general: dict[str, object] = {"master_key": MASTER, "database_url": database_url}
    if redis_url:
        general["redis_url"] = redis_url
    params = {"model": "openai/bench", "api_key": "sk-x", "api_base": f"http://127.0.0.1:{upstream}/v1", **prices}
    path.write_text(yaml.safe_dump({"model_list": [{"model_name": "bench", "litellm_params": params}],
                                    "general_settings": general}))  # fmt: skip


def _key(port: int, budget: bool) -> str:
    fields: dict[str, object] = {"key_alias": f"bench-{uuid.uuid4().hex[:8]}", "rpm_limit": 10**9}
    if budget:
        fields["max_budget"] = 1e9
    headers = {"authorization": f"Bearer {MASTER}", "content-type": "application/json"}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/key/generate", data=json.dumps(fields).encode(),
                                     method="POST", headers=headers)  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["key"]


def _plans(tmp: Path, pg: str | None, redis: str | None, schema: str) -> list[Plan]:
    sqlite = f"sqlite:///{tmp}/bench.db"
    plans: list[Plan] = [
        ("bare (no accounting)", "bare", sqlite, None, False, {}),
        ("sqlite, budget key, unpriced model", "full", sqlite, None, True, {}),
        ("sqlite, budget key, priced model (holds in memory)", "full", sqlite, None, True, PRICES),
    ]
    if pg and redis:
        db = f"{pg}?search_path={schema}"
        plans.append(("postgres + redis, key without budget", "full", db, redis, False, PRICES))
        plans.append(("postgres + redis, budget key, priced model (holds in Redis)", "full", db, redis, True, PRICES))
    return plans


def _run(tmp: Path, upstream: int, pg: str | None, redis: str | None, duration: float, turn: int) -> list[Row]:
    tmp.mkdir(parents=True)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    plans = _plans(tmp, pg, redis, schema)
    if pg and redis:
        _schema(pg, schema, create=True)
    measured: dict[str, Row] = {}
    try:
        for name, mode, db, rds, budget, prices in [*plans[turn % len(plans) :], *plans[: turn % len(plans)]]:
            config = tmp / f"{len(measured)}.yaml"
            write_config(config, upstream, db, rds, prices)
            measured[name] = _measure(name, mode, config, duration, budget)
    finally:
        if pg and redis:
            _schema(pg, schema, create=False)
    return [measured[plan[0]] for plan in plans]


def _measure(name: str, mode: str, config: Path, duration: float, budget: bool) -> Row:
    """One gateway process (bench/keys_overhead.py's runner), its CPU per request under load."""
    port = free_port()
    cmd = [sys.executable, str(BENCH / "keys_overhead.py"), "--serve", mode, "--config", str(config), "--port",
           str(port)]  # fmt: skip
    with process(cmd, port) as proc:
        key = _key(port, budget) if mode == "full" else MASTER
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        load(url, 16, 2, False, key)  # warm up
        pids = tree(proc.pid)
        before = cpu_seconds(pids)
        result = load(url, 64, duration, False, key)
        cpu = cpu_seconds(pids) - before
    count = int(str(result["requests"]))
    return name, count / float(str(result["seconds"])), cpu / max(count, 1) * 1000, int(str(result.get("errors", 0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--micro", action="store_true", help="time admit + settle in process")
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    if args.micro:
        from bench._budget_micro import micro

        print(micro(args.requests, os.environ.get("TOOLHUB_TEST_REDIS_URL")))
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


if __name__ == "__main__":
    main()
