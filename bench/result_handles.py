"""Result handles: what storing a large tool result and reading it back costs, on SQLite and PostgreSQL.

    python bench/result_handles.py [--mb 5] [--reads 200] [--postgres postgresql://postgres@127.0.0.1:5432/test]

One result of `--mb` MB (lines of ~86 characters) is stored with `ResultStore.put`, then read back: `--reads` parts of
20,000 characters at spread offsets (`hub__read_result(handle, offset)`), grep for a rare word (a whole-result scan),
and the whole text (`resources/read`). Wall times in this process; PostgreSQL runs in a fresh schema, dropped after.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.catalog.results import ResultStore  # noqa: E402
from hub.storage import Store  # noqa: E402
from hub.storage.postgres import PostgresStore  # noqa: E402
from hub.storage.sqlite import SqliteStore  # noqa: E402


def _text(mb: float) -> str:
    count = int(mb * 1_000_000 / 86)
    return "\n".join(f"row {i:07d} café {'x' * 64} {'RARE' if i % 5000 == 3 else ''}" for i in range(count))


async def _times(fn: Callable[[], Awaitable[Any]], count: int) -> list[float]:
    samples: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _p(samples: list[float]) -> str:
    ordered = sorted(samples)
    return f"{statistics.median(ordered):8.2f} / {ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]:8.2f}"


async def _measure(name: str, store: Store, text: str, reads: int) -> None:
    results = ResultStore(store)
    started = time.perf_counter()
    stored = await results.put("bench", text)
    put_ms = (time.perf_counter() - started) * 1000
    step = max(1, (len(text) - 20_000) // reads)
    offsets = iter(range(0, len(text), step))
    parts = await _times(lambda: results.read("bench", stored.handle, next(offsets, 0), 20_000), reads)
    grep = await _times(lambda: results.read("bench", stored.handle, 0, 20_000, "rare"), 5)
    whole = await _times(lambda: results.read_all("bench", stored.handle), 5)
    print(f"| {name:<10} | {put_ms:10.1f} | {_p(parts)} | {_p(grep)} | {_p(whole)} |")


async def _sqlite(text: str, reads: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(str(Path(folder) / "bench.db"))
        await store.connect()
        await store.migrate()
        try:
            await _measure("sqlite", store, text, reads)
        finally:
            await store.aclose()


async def _postgres(url: str, text: str, reads: int) -> None:
    schema = f"toolhub_bench_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(url)
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    store = PostgresStore(url, schema=schema)
    try:
        await store.connect()
        await store.migrate()
        await _measure("postgres", store, text, reads)
    finally:
        await store.aclose()
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=5.0)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--postgres", default=None)
    args = parser.parse_args()
    text = _text(args.mb)
    print(f"{len(text):,} characters, {text.count(chr(10)) + 1:,} lines; times in ms, p50 / p99")
    print("| backend    | put (ms)   | read 20k chars      | grep (whole scan)   | whole (resources/read) |")
    print("|---|---|---|---|---|")
    await _sqlite(text, args.reads)
    if args.postgres:
        await _postgres(args.postgres, text, args.reads)


if __name__ == "__main__":
    anyio.run(main)
