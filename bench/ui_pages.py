"""How fast each /ui page answers with a million spend-log rows, on SQLite and PostgreSQL.

Fills a fresh store with `--rows` spend logs spread over the last 30 days (200 keys, 20 models, 3% failures, some
tool calls), folds them into the spend rollup (hub/storage/rollup.py) and prints how long that took, starts the full
server (build_app) on 127.0.0.1 in a thread, logs in as the master key and fetches every
page `--repeat` times. Prints median, p95 and max milliseconds per page. The console is not on the /v1 path, so the
gateway benches (bench/gateway.py) are the check that it costs /v1 nothing.

    python bench/ui_pages.py [--rows 1000000] [--repeat 15] [--backend sqlite|postgres|both]

PostgreSQL needs TOOLHUB_TEST_POSTGRES_URL (a fresh schema is made and dropped).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub.config import parse_config
from hub.server import build_app
from hub.storage import KeyRow, open_store, rollup
from hub.storage._sql import SPEND_COLUMNS
from tests.support.servers import serve_app

MASTER = "sk-bench-ui-master"
MODELS = [f"model-{i}" for i in range(20)]
KEYS = [uuid.uuid4().hex + uuid.uuid4().hex for _ in range(200)]
PAGES = ["/health/liveness", "/ui", "/ui?range=month", "/ui/overview/top?range=day", "/ui/overview/top?range=month",
         "/ui/overview/series?range=hour", "/ui/overview/series?range=day", "/ui/overview/series?range=month",
         "/ui/logs", "/ui/logs?before={middle}", "/ui/logs?status=failure", "/ui/logs?model=model-3",
         "/ui/logs?key={key}", "/ui/logs?model=model-3&status=failure",
         "/ui/logs?key={key}&status=failure", "/ui/keys", "/ui/models", "/ui/mcp",
         "/ui/playground"]  # fmt: skip


def spend_rows(count: int) -> Iterator[tuple[Any, ...]]:
    """Rows in SPEND_COLUMNS order, newest last, spread evenly over 30 days."""
    rng = random.Random(7)
    now = time.time()
    for i in range(count):
        created = now - 30 * 86400 * (1 - i / count)
        status = 200 if rng.random() > 0.03 else rng.choice((429, 500, 502))
        yield (f"r{i}", f"req-{i}", rng.choice(KEYS), rng.choice(MODELS), "up", "openai", 100, 20, 0, 0, 0.0001,
               rng.uniform(50, 900), 40.0, status, 0, None if status == 200 else "upstream error",
               1 if i % 50 == 0 else 0, created, time.strftime("%Y-%m-%d", time.gmtime(created)), None, None, 0, 0,
               0)  # fmt: skip


async def prepare(url: str, rows: int) -> None:
    store = open_store(url)
    await store.connect()
    await store.migrate()
    now = time.time()
    for n, digest in enumerate(KEYS):
        await store.insert_key(KeyRow(token_hash=digest, key_name=f"sk-...{n:04d}", created_at=now, updated_at=now,
                                      key_alias=f"key-{n}"))  # fmt: skip
    await store.aclose()
    started = time.perf_counter()
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            marks = ", ".join("?" for _ in SPEND_COLUMNS)
            db.executemany(
                f"INSERT INTO toolhub_spend_logs ({', '.join(SPEND_COLUMNS)}) VALUES ({marks})", spend_rows(rows)
            )
    else:
        conn = await asyncpg.connect(url)
        await conn.copy_records_to_table("toolhub_spend_logs", records=spend_rows(rows), columns=SPEND_COLUMNS)
        await conn.close()
    print(f"  loaded {rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)
    await fold_loaded(url)


async def fold_loaded(url: str) -> None:
    """Fold the loaded rows into the spend rollup, as the running app's fold task does every few seconds as logs
    arrive; then VACUUM ANALYZE on PostgreSQL, as autovacuum does after so many inserts (it sets the visibility map
    that index-only scans need)."""
    store = open_store(url)
    await store.connect()
    started = time.perf_counter()
    folded = await rollup.fold_all(store, pause=0)
    print(f"  folded {folded:,} rows into the rollup in {time.perf_counter() - started:.1f} s", flush=True)
    await store.aclose()
    if not url.startswith("sqlite"):
        conn = await asyncpg.connect(url)
        await conn.execute("VACUUM ANALYZE")
        await conn.close()


def measure(url: str, repeat: int) -> dict[str, list[float]]:
    dead = {"api_key": "x", "api_base": "http://127.0.0.1:9/v1"}  # never called: the bench reads pages only
    config = {"model_list": [{"model_name": m, "litellm_params": {"model": f"openai/{m}", **dead}} for m in MODELS],
              "general_settings": {"master_key": MASTER, "database_url": url}}  # fmt: skip
    timings: dict[str, list[float]] = {}
    firsts: dict[str, float] = {}
    with serve_app(build_app(parse_config(config, {}))) as base:
        # One connection per request: a kept-alive loopback connection adds a ~45 ms delayed-ACK stall here
        # (measured on /health/liveness), which would hide what the pages cost.
        host = base.removeprefix("http://")
        cookie = login(host, base)
        for page in PAGES:
            path = page.format(key=KEYS[0], middle=f"{time.time() - 15 * 86400}~z")
            started = time.perf_counter()
            get(host, path, cookie)  # the first request: cold caches (the 30-day Overview aggregates are kept 60 s)
            firsts[page] = (time.perf_counter() - started) * 1000
            for _ in range(repeat):
                started = time.perf_counter()
                status, body = get(host, path, cookie)
                timings.setdefault(page, []).append((time.perf_counter() - started) * 1000)
                assert status == 200, (path, status, body[:300])
    return {page: [firsts[page], *values] for page, values in timings.items()}


def login(host: str, base: str) -> str:
    conn = http.client.HTTPConnection(host, timeout=120)
    form = urllib.parse.urlencode({"key": MASTER})
    conn.request("POST", "/ui/login", form, {"origin": base, "content-type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    response.read()
    conn.close()
    return (response.getheader("set-cookie") or "").split(";")[0]


def get(host: str, path: str, cookie: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, timeout=120)
    conn.request("GET", path, headers={"cookie": cookie, "connection": "close"})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body


def report(backend: str, timings: dict[str, list[float]]) -> None:
    print(f"\n{backend}: ms per page (first request, then median / p95 / max of the rest)")
    for page, (first, *values) in timings.items():
        values.sort()
        p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
        print(f"  {page:42} {first:8.1f} {statistics.median(values):8.1f} {p95:8.1f} {values[-1]:8.1f}")


@contextmanager
def database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'bench.db'}"
        return
    base = os.environ["TOOLHUB_TEST_POSTGRES_URL"]
    schema = f"toolhub_bench_{uuid.uuid4().hex[:10]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(base)
        await conn.execute(sql)
        await conn.close()

    anyio.run(run, f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base}?search_path={schema}"
    finally:
        anyio.run(run, f'DROP SCHEMA "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    args = parser.parse_args()
    for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        with tempfile.TemporaryDirectory() as tmp, database(backend, Path(tmp)) as url:
            print(f"{backend}: preparing", flush=True)
            anyio.run(prepare, url, args.rows)
            report(backend, measure(url, args.repeat))


if __name__ == "__main__":
    main()
