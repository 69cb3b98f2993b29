"""`bench/budget.py --micro`: CPU per request of `Accounting.admit` + `settle`, in this process."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from hub.accounts.accounting import Accounting
from hub.accounts.budget import MemoryBudgets
from hub.accounts.keys import KeyAuthenticator, hash_key
from hub.accounts.ratelimit import MemoryLimiter, redis_client
from hub.accounts.shared_budget import RedisBudgets
from hub.accounts.spend import BudgetLedger
from hub.accounts.usage import UsageRecord
from hub.config import ModelRoute
from hub.metrics import Metrics
from hub.storage import KeyRow
from hub.storage.sqlite import SqliteStore
from hub.storage.writer import UsageWriter
from providers.base import Deployment

DEPLOYMENT = Deployment(provider="openai", model="bench", api_base="")
FREE = ModelRoute("bench", DEPLOYMENT)
PRICED = ModelRoute("bench", DEPLOYMENT, input_cost_per_token=0.25e-6, output_cost_per_token=2e-6)
BODY = {"model": "bench", "messages": [{"role": "user", "content": "Say hello in one word."}], "max_tokens": 64}
TASKS = 64


async def _time(accounting: Accounting, principal: Any, route: ModelRoute, requests: int) -> float:
    """CPU microseconds per admit + settle, `TASKS` requests at a time."""
    record = UsageRecord("r", principal.key_id, "bench", "bench", "openai", 200, False, 1.0, prompt_tokens=12,
                         completion_tokens=7)  # fmt: skip

    async def worker(n: int) -> None:
        for _ in range(n):
            ticket = await accounting.admit(principal, route, BODY)
            await anyio.lowlevel.checkpoint()  # the upstream call: other requests run meanwhile
            ticket.settle(record)

    started = time.process_time()
    async with anyio.create_task_group() as tg:
        for _ in range(TASKS):
            tg.start_soon(worker, requests // TASKS)
    return (time.process_time() - started) / requests * 1e6


async def _rows(requests: int, redis_url: str | None, tmp: Path) -> list[tuple[str, float]]:
    store = SqliteStore(str(tmp / "bench.db"))
    await store.connect()
    await store.migrate()
    principals: dict[bool, Any] = {}
    keys = KeyAuthenticator(store, BudgetLedger(store), ttl=3600)
    for budget in (False, True):
        token = f"sk-bench-{budget}"
        await store.insert_key(KeyRow(token_hash=hash_key(token), key_name=token, created_at=time.time(),
                                      updated_at=time.time(), max_budget=1e9 if budget else None))  # fmt: skip
        principals[budget] = await keys.authenticate(token)
    writer = UsageWriter(store, tmp / "spill.jsonl")
    memory = Accounting(keys, writer, Metrics(), MemoryLimiter(), MemoryBudgets())
    rows = [
        ("key without budget", await _time(memory, principals[False], PRICED, requests)),
        ("budget key, unpriced model", await _time(memory, principals[True], FREE, requests)),
        ("budget key, priced model, holds in memory", await _time(memory, principals[True], PRICED, requests)),
    ]
    if redis_url:
        client = redis_client(redis_url)
        budgets = RedisBudgets(client, prefix=f"toolhub-bench:{time.time_ns()}:")
        shared = Accounting(keys, writer, Metrics(), MemoryLimiter(), budgets)
        async with anyio.create_task_group() as tg:
            tg.start_soon(budgets.run)
            rows.append(("budget key, priced model, holds in Redis", await _time(shared, principals[True], PRICED,
                                                                                   requests)))  # fmt: skip
            tg.cancel_scope.cancel()
        await client.aclose()
    await store.aclose()
    return rows


def micro(requests: int, redis_url: str | None) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        rows = anyio.run(_rows, requests, redis_url, Path(tmp))
    lines = [f"| admit + settle ({TASKS} concurrent, {requests:,} requests) | CPU per request |", "|---|---|"]
    lines += [f"| {name} | {us:.1f} µs |" for name, us in rows]
    return "\n".join(lines)
