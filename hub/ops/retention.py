"""The spend-log retention task: `general_settings.maximum_spend_logs_retention_period` (LiteLLM's key, e.g. `30d`).

Every `maximum_spend_logs_retention_interval` (default 1h; the first pass shortly after start) spend logs older than
the period move into daily aggregates and older tool-call records are deleted, in bounded batches with a pause
between them (hub/storage/retention.py), so the usage writer and readers get the database in between. A failing
pass is logged and retried at the next interval; requests never wait for it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio

from hub.accounts.spend import CATCH_UP_LAG
from hub.storage import Store, StoreError, rollup
from hub.storage.retention import delete_tool_calls, move_spend_logs

logger = logging.getLogger("toolhub.retention")
BATCH = 5_000
SQLITE_BATCH = 1_000
"""SQLite has one writer: a smaller batch keeps each write transaction near 50 ms (5,000 rows took ~240 ms)."""
PAUSE = 0.05
"""Seconds between batches: the usage writer's transactions get in between."""
FIRST_PASS_DELAY = 10.0
MIN_AGE = 86400 + CATCH_UP_LAG
"""Logs younger than this are never moved, whatever the period: a budget's catch-up (hub/accounts/spend.py) has
summed logs older than CATCH_UP_LAG into its base, and reads daily aggregates of the last day again; a log moved
into them sooner would count twice."""

Batch = Callable[[Store, float, int], Awaitable[int]]


async def purge(store: Store, before: float, *, batch: int | None = None, pause: float = PAUSE) -> tuple[int, int]:
    """Move spend logs and delete tool calls older than `before`; returns (logs moved, tool calls deleted). Logs not
    folded into the console's rollup yet are folded first: only folded logs move (hub/storage/retention.py).

    Raises:
        StoreError: the database failed; batches done so far stay done.
    """
    from hub.storage.sqlite import SqliteStore

    batch = batch or (SQLITE_BATCH if isinstance(store, SqliteStore) else BATCH)
    await rollup.fold_all(store, pause=pause)
    return await _drain(move_spend_logs, store, before, batch, pause), await _drain(
        delete_tool_calls, store, before, batch, pause
    )


async def _drain(step: Batch, store: Store, before: float, batch: int, pause: float) -> int:
    total = 0
    while True:
        done = await step(store, before, batch)
        total += done
        if done < batch:
            return total
        await anyio.sleep(pause)


@contextlib.asynccontextmanager
async def running(
    store: Store, period: float, interval: float, *, first_delay: float | None = None
) -> AsyncIterator[None]:
    """Run retention passes in the background while the app serves; stopped (mid-batch if need be) on exit."""
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(_loop, store, period, interval, FIRST_PASS_DELAY if first_delay is None else first_delay)
        try:
            yield
        finally:
            tasks.cancel_scope.cancel()


async def _loop(store: Store, period: float, interval: float, first_delay: float) -> None:
    await anyio.sleep(first_delay)
    while True:
        await run_pass(store, period)
        await anyio.sleep(interval)


async def run_pass(store: Store, period: float) -> None:
    """One retention pass; failures are logged, never raised (the next pass retries)."""
    started = time.perf_counter()
    try:
        moved, deleted = await purge(store, time.time() - max(period, MIN_AGE))
    except StoreError as exc:
        logger.warning("spend-log retention failed, retrying in the next pass: %s", exc)
        return
    if moved or deleted:
        logger.info("spend-log retention: %d spend logs moved into daily aggregates, %d tool calls deleted, %.1f s",
                    moved, deleted, time.perf_counter() - started)  # fmt: skip
