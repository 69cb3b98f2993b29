"""A request's cost reaches its key's spend however a key change races with it (in memory, without timing).

A request whose key changed (`/key/update`) while it was authenticated, or between authentication and its
admission, once found no cached entry for its key at admission: it was held, charged and rate-limited by nothing, so
`/key/info` showed the key one request short for good (tests/keys/test_admin_concurrency.py, 2 runs in 6).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from hub.accounts import spend
from hub.accounts.accounting import Accounting
from hub.accounts.auth import Principal
from hub.accounts.keys import KeyAuthenticator, hash_key
from hub.accounts.ratelimit import MemoryLimiter
from hub.accounts.spend import BudgetLedger
from hub.accounts.usage import UsageRecord
from hub.config import ModelRoute
from hub.metrics import Metrics
from hub.storage import KeyRow
from hub.storage.writer import UsageWriter
from providers.base import Deployment

pytestmark = pytest.mark.anyio
TOKEN = "sk-spend-race"
DIGEST = hash_key(TOKEN)
ROUTE = ModelRoute(
    "m", Deployment(provider="openai", model="m", api_base=""), input_cost_per_token=0.5, output_cost_per_token=1.0
)
COST = 12 * 0.5 + 7 * 1.0
BODY = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 7}


class GatedStore:
    """One key and its stored spend; while `gate` is an Event, each read waits for it (`reading`: one began)."""

    def __init__(self) -> None:
        now = time.time()
        self.row = KeyRow(token_hash=DIGEST, key_name="sk-...race", created_at=now, updated_at=now, max_budget=1e6,
                          rpm_limit=10_000)  # fmt: skip
        self.stored = 0.0
        self.gate: anyio.Event | None = None
        self.reading = anyio.Event()

    async def _wait(self) -> None:
        if self.gate is not None:
            self.reading.set()
            await self.gate.wait()

    async def get_key(self, digest: str) -> KeyRow | None:
        row = self.row
        await self._wait()
        return row

    async def spend_since(self, token_hash: str, since: float) -> float:
        stored = self.stored
        await self._wait()
        return stored

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


def accounting_over(store: GatedStore, tmp_path: Path) -> Accounting:
    keys = KeyAuthenticator(store, BudgetLedger(store), ttl=60)  # pyright: ignore[reportArgumentType]
    writer = UsageWriter(store, tmp_path / "spill.jsonl", journal=False)  # pyright: ignore[reportArgumentType]
    return Accounting(keys, writer, Metrics(), MemoryLimiter())


async def authenticate_across_a_change(keys: KeyAuthenticator, store: GatedStore) -> Principal:
    """Authenticate while `/key/update` commits and invalidates the key: that read answers but caches nothing."""
    keys.expire_all()  # the cached entry is due for a re-read (its ttl passed)
    store.gate = anyio.Event()
    principal: list[Principal] = []

    async def authenticate() -> None:
        principal.append(await keys.authenticate(TOKEN))

    async with anyio.create_task_group() as tg:
        tg.start_soon(authenticate)
        await store.reading.wait()
        keys.invalidate(DIGEST)
        store.gate.set()
    store.gate = None
    return principal[0]


@pytest.mark.parametrize("change", ["during_authentication", "before_admission"])
async def test_a_request_racing_a_key_update_is_charged_to_its_key(change: str, tmp_path: Path) -> None:
    store = GatedStore()
    accounting = accounting_over(store, tmp_path)
    keys = accounting.keys
    with anyio.fail_after(5):
        await keys.authenticate(TOKEN)  # the key is known (its account exists) before the race
        if change == "during_authentication":
            principal = await authenticate_across_a_change(keys, store)
        else:
            principal = await keys.authenticate(TOKEN)
            keys.invalidate(DIGEST)  # an update lands while the request reads its body
        ticket = await accounting.admit(principal, ROUTE, BODY)
    account = keys.ledger.get(DIGEST)
    assert account is not None and account.holds == 1  # held against the budget while it runs
    ticket.settle(UsageRecord("r", DIGEST, "m", "m", "openai", 200, False, 1.0, prompt_tokens=12,
                              completion_tokens=7))  # fmt: skip
    assert (account.spent, account.reserved, account.holds) == (COST, 0.0, 0)


async def test_a_charge_made_while_the_key_catches_up_with_the_store_is_kept() -> None:
    store = GatedStore()
    ledger = BudgetLedger(store)  # pyright: ignore[reportArgumentType]
    account = await ledger.account(store.row)
    store.gate = anyio.Event()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(ledger.account, store.row)  # a refresh reads the stored spend: its log is not stored yet
            await store.reading.wait()
            account.charge(COST)  # a request of the key finishes meanwhile
            store.gate.set()
    assert account.spent == COST


class Clock:
    """Stands for the `time` module in hub/accounts/spend.py: its `time()` is `now`, set by the test, on the test's
    thread; hubs served by session fixtures in this process (their own threads) keep the real time."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.strftime, self.gmtime = time.strftime, time.gmtime
        self.thread = threading.get_ident()

    def time(self) -> float:
        return self.now if threading.get_ident() == self.thread else time.time()


async def test_a_period_that_rolls_over_during_a_catch_up_keeps_none_of_the_old_periods_spend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: a charge during the store read began the new period, then `max(spent, stored)` wrote the old
    period's stored total into it (the key over-counted until its next period)."""
    store = GatedStore()
    store.row = dataclasses.replace(store.row, budget_duration="1h")
    clock = Clock(store.row.created_at + 3600 - 10)  # the key's first period ends in 10 s
    monkeypatch.setattr(spend, "time", clock)
    store.stored = 50.0  # spent in the first period
    ledger = BudgetLedger(store)  # pyright: ignore[reportArgumentType]
    account = await ledger.account(store.row)
    assert account.spent == 50.0
    store.gate = anyio.Event()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(ledger.account, store.row)  # a refresh reads the first period's stored spend
            await store.reading.wait()
            clock.now += 20  # the second period begins
            account.charge(COST)  # with a request of the key finishing in it
            store.gate.set()
    assert account.period_start == store.row.created_at + 3600
    assert account.spent == COST
