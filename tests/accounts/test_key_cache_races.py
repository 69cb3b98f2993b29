"""A key change heard while the same key is being read is not undone by caching what that read found."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import anyio
import pytest

from hub.accounts.keys import KeyAuthenticator, hash_key
from hub.accounts.spend import BudgetLedger
from hub.errors import PermissionDenied
from hub.storage import KeyRow

pytestmark = pytest.mark.anyio
TOKEN = "sk-race-key"


class SlowStore:
    """Holds one key; `get_key` answers with the row as it was when the read began, after `release` is set."""

    def __init__(self) -> None:
        self.row = KeyRow(token_hash=hash_key(TOKEN), key_name="sk-...race", created_at=time.time(),
                          updated_at=time.time())  # fmt: skip
        self.release = anyio.Event()
        self.reading = anyio.Event()
        self.reads = 0

    async def get_key(self, digest: str) -> KeyRow | None:
        self.reads += 1
        row = self.row
        self.reading.set()
        await self.release.wait()
        return row

    async def spend_since(self, token_hash: str, since: float) -> float:
        return 0.0

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


@pytest.mark.parametrize("how", ["invalidate", "expire_all"])
async def test_a_key_blocked_during_a_read_of_it_is_refused_next(how: str) -> None:
    store = SlowStore()
    keys = KeyAuthenticator(store, BudgetLedger(store), ttl=60)  # pyright: ignore[reportArgumentType]
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(keys.authenticate, TOKEN)  # reads the row from before the change
            await store.reading.wait()
            store.row = dataclasses.replace(store.row, blocked=True)  # committed, then announced (key_events)
            if how == "invalidate":
                keys.invalidate(hash_key(TOKEN))
            else:
                keys.expire_all()
            store.release.set()
        with pytest.raises(PermissionDenied):
            await keys.authenticate(TOKEN)
    assert store.reads == 2
