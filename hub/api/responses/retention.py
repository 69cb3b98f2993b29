"""Retention of stored responses: `general_settings.responses_retention_period` (e.g. `30d`; unset: kept until
deleted, as OpenAI keeps them 30 days).

A background pass every `RETENTION_INTERVAL` (the first shortly after start) deletes the responses created before
the period (`Store.delete_responses_before`); a continuation naming one then gets the same 404 as an unknown id.
A failing pass is logged and retried at the next interval; requests never wait for it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator

import anyio

from hub.state import HubState
from hub.storage import Store, StoreError

logger = logging.getLogger("toolhub.retention")
RETENTION_INTERVAL = 3600.0
FIRST_PASS_DELAY = 10.0


async def purge(store: Store, period: float, now: float | None = None) -> bool:
    """Delete the responses older than `period` seconds; False (logged) when the database failed."""
    try:
        await store.delete_responses_before((time.time() if now is None else now) - period)
    except StoreError as exc:
        logger.warning("stored-response retention failed, retrying in the next pass: %s", exc)
        return False
    return True


@contextlib.asynccontextmanager
async def running(
    store: Store, period: float, interval: float = RETENTION_INTERVAL, first_delay: float = FIRST_PASS_DELAY
) -> AsyncIterator[None]:
    """Retention passes in the background while the app serves; stopped on exit."""

    async def loop() -> None:
        await anyio.sleep(first_delay)
        while True:
            await purge(store, period)
            await anyio.sleep(interval)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(loop)
        try:
            yield
        finally:
            tasks.cancel_scope.cancel()


def responses_retention(state: HubState) -> contextlib.AbstractAsyncContextManager[None]:
    """The app extension (hub/server.py) running retention when a period is set and the gateway has a database."""
    period: float | None = getattr(state.config, "responses_retention", None)
    store = state.extras.get("store")
    if period is None or store is None:
        return contextlib.nullcontext()
    return running(store, period)
