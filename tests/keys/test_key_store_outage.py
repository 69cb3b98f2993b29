"""Key lookups while the key store is down."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from hub.accounts.keys import KeyAuthenticator
from hub.accounts.spend import BudgetLedger
from hub.errors import HubError, ServiceUnavailable
from hub.storage import StoreError

pytestmark = pytest.mark.anyio


class DownStore:
    """Every key lookup fails, after a moment (so that concurrent lookups overlap)."""

    def __init__(self) -> None:
        self.lookups = 0

    async def get_key(self, digest: str) -> Any:
        self.lookups += 1
        await anyio.sleep(0.05)
        raise StoreError("connection refused (simulated)")

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


async def test_concurrent_requests_all_get_503_not_invalid_key() -> None:
    store = DownStore()
    keys = KeyAuthenticator(store, BudgetLedger(store))  # pyright: ignore[reportArgumentType]
    errors: list[HubError] = []

    async def attempt() -> None:
        try:
            await keys.authenticate("sk-some-virtual-key")
        except HubError as exc:
            errors.append(exc)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(attempt)
    assert [type(e) for e in errors] == [ServiceUnavailable] * 3
    assert all(e.code == "key_store_unavailable" for e in errors)
