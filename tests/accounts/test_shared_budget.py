"""Budget holds in a real Redis, shared by several `RedisBudgets` (as by several processes)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from hub.accounts.ratelimit import redis_client
from hub.accounts.shared_budget import RedisBudgets
from hub.accounts.spend import Account
from hub.errors import RateLimited
from tests.support.peers import missing_peer

pytestmark = pytest.mark.anyio
KEY = "k" * 64


@pytest.fixture
async def redis() -> AsyncIterator[tuple[Any, str]]:
    """A client and a key prefix of this test's own, deleted afterwards."""
    url = os.environ.get("TOOLHUB_TEST_REDIS_URL")
    if not url:
        missing_peer("set TOOLHUB_TEST_REDIS_URL=redis://127.0.0.1:6379/0 to run the Redis tests")
    client = redis_client(url)
    prefix = f"toolhub-test:{uuid.uuid4().hex}:"
    try:
        yield client, prefix
    finally:
        async for key in client.scan_iter(match=f"{prefix}*"):
            await client.delete(key)
        await client.aclose()


def account(budget: float = 100.0) -> Account:
    return Account("key 'k'", budget, None, 0.0, 0.0, 0.0)


async def outcome(budgets: RedisBudgets, a: Account, amount: float) -> str:
    try:
        await budgets.reserve(KEY, a, amount)
    except RateLimited as exc:
        return str(exc.code)
    return "held"


async def test_processes_hold_atomically_and_never_more_than_the_budget(redis: tuple[Any, str]) -> None:
    client, prefix = redis
    one, two = RedisBudgets(client, prefix=prefix), RedisBudgets(client, prefix=prefix)
    accounts = (account(), account())
    results: list[str] = []

    async def ask(i: int) -> None:
        results.append(await outcome((one, two)[i % 2], accounts[i % 2], 7.0))

    async with anyio.create_task_group() as tg:
        for i in range(40):
            tg.start_soon(ask, i)
    assert sorted(results) == ["budget_reserved"] * 26 + ["held"] * 14  # 14 * 7 = 98 <= 100 < 15 * 7
    assert float(await client.hget(f"{prefix}{KEY}:0", "reserved")) == pytest.approx(98.0)


async def test_settled_costs_are_shared_and_free_the_holds(redis: tuple[Any, str]) -> None:
    client, prefix = redis
    one, two = RedisBudgets(client, prefix=prefix), RedisBudgets(client, prefix=prefix)
    a, b = account(), account()
    holds = [await one.reserve(KEY, a, 30.0) for _ in range(3)]
    assert await outcome(two, b, 30.0) == "budget_reserved"
    for hold in holds:
        one.settle(hold, 20.0)
    await one.flush()
    assert a.spent == 60.0
    assert await outcome(two, b, 30.0) == "held"  # 60 spent + 30 fits
    assert b.spent == 60.0  # the other process learnt the spend from Redis
    assert await outcome(two, b, 30.0) == "budget_reserved"


async def test_a_spent_budget_refuses_in_every_process(redis: tuple[Any, str]) -> None:
    client, prefix = redis
    one, two = RedisBudgets(client, prefix=prefix), RedisBudgets(client, prefix=prefix)
    a, b = account(), account()
    one.settle(await one.reserve(KEY, a, 500.0), 120.0)  # alone, it may pass the budget once
    await one.flush()
    assert await outcome(two, b, 1.0) == "budget_exceeded"
    assert b.spent == 120.0
    assert await outcome(two, b, 1.0) == "budget_exceeded"  # now refused without asking Redis


async def test_the_holds_of_a_dead_process_expire_and_live_ones_are_renewed(redis: tuple[Any, str]) -> None:
    client, prefix = redis
    dead, live, other = (RedisBudgets(client, prefix=prefix, hold_ttl=-1.0), RedisBudgets(client, prefix=prefix),
                         RedisBudgets(client, prefix=prefix))  # fmt: skip
    await dead.reserve(KEY, account(), 90.0)  # expired as soon as it was made: its process never renews it
    await live.reserve(KEY, account(), 40.0)
    live.hold_ttl = -1.0
    await live.renew()  # renewed into the past: this hold is now expired too
    assert await outcome(other, account(), 95.0) == "held"  # with either hold alive it would not fit
    assert await client.zcard(f"{prefix}{KEY}:0:holds") == 1  # the expired holds were dropped
    assert float(await client.hget(f"{prefix}{KEY}:0", "reserved")) == pytest.approx(95.0)


async def test_redis_down_falls_back_to_this_process(caplog: pytest.LogCaptureFixture) -> None:
    client = redis_client("redis://127.0.0.1:1/0")
    try:
        budgets, a = RedisBudgets(client), account()
        held = [await budgets.reserve(KEY, a, 40.0) for _ in range(2)]
        with pytest.raises(RateLimited):
            await budgets.reserve(KEY, a, 40.0)
        assert (a.reserved, a.holds) == (80.0, 2)
        for hold in held:
            budgets.settle(hold, 10.0)
        assert (a.spent, a.reserved, a.holds) == (20.0, 0.0, 0)
        assert "holding in this process's memory" in caplog.text
    finally:
        await client.aclose()


async def test_spent_in_redis_is_the_sum_of_costs_when_requests_overlap_settlements(redis: tuple[Any, str]) -> None:
    """A reserve sent while a settlement waits must not raise Redis to a spend the settlement then adds again."""
    client, prefix = redis
    processes = (RedisBudgets(client, prefix=prefix), RedisBudgets(client, prefix=prefix))
    accounts = (account(1_000.0), account(1_000.0))
    costs = [0.25 * (1 + i % 4) for i in range(60)]

    async def client_of(first: int) -> None:  # 3 requests one after another, as a client with one connection
        for i in range(first, len(costs), 20):
            budgets = processes[i % 2]
            hold = await budgets.reserve(KEY, accounts[i % 2], 2.0)
            await anyio.lowlevel.checkpoint()
            budgets.settle(hold, costs[i])
            if i % 7 == 6:
                await budgets.flush()

    async with anyio.create_task_group() as tg:
        for first in range(20):
            tg.start_soon(client_of, first)
    for budgets in processes:
        await budgets.flush()
    assert float(await client.hget(f"{prefix}{KEY}:0", "spent")) == pytest.approx(sum(costs))
    await outcome(processes[0], accounts[0], 1.0)  # the next reserve learns the total
    assert accounts[0].spent == pytest.approx(sum(costs))


async def test_a_reserve_before_the_settlement_is_sent_counts_the_cost_once(redis: tuple[Any, str]) -> None:
    client, prefix = redis
    budgets, a = RedisBudgets(client, prefix=prefix), account(10.0)
    budgets.settle(await budgets.reserve(KEY, a, 1.0), 1.0)  # charged here, not yet in Redis
    second = await budgets.reserve(KEY, a, 1.0)
    await budgets.flush()
    budgets.settle(second, 0.0)
    await budgets.flush()
    assert float(await client.hget(f"{prefix}{KEY}:0", "spent")) == 1.0
    await outcome(budgets, a, 1.0)
    assert a.spent == 1.0
