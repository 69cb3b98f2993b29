"""Worst-case estimates and holds in one process: concurrent requests fit the budget, a lone one may pass it once."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.accounts.accounting import Accounting
from hub.accounts.auth import Principal
from hub.accounts.budget import (
    CHARS_PER_TOKEN,
    DEFAULT_OUTPUT_LIMIT,
    IMAGE_TOKENS,
    MemoryBudgets,
    output_tokens,
    prompt_tokens,
    worst_case,
)
from hub.accounts.keys import KeyAuthenticator, hash_key
from hub.accounts.pricing import Price
from hub.accounts.ratelimit import MemoryLimiter
from hub.accounts.spend import Account, BudgetLedger
from hub.accounts.usage import UsageRecord
from hub.config import ModelRoute
from hub.errors import RateLimited
from hub.metrics import Metrics
from hub.storage import KeyRow
from hub.storage.sqlite import SqliteStore
from hub.storage.writer import UsageWriter
from providers.base import Deployment

pytestmark = pytest.mark.anyio
PRICE = Price(input=1.0, output=2.0)


def account(budget: float | None = 100.0, spent: float = 0.0) -> Account:
    return Account("key 'k'", budget, None, 0.0, 0.0, spent)


def refusal(call: Any) -> str:
    with pytest.raises(RateLimited) as refused:
        call()
    return str(refused.value.code)


def test_prompt_tokens_count_text_messages_tools_and_images_not_their_bytes() -> None:
    text = "x" * 300
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 100_000}}
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": text}, image]}],
            "tools": [{"type": "function", "function": {"name": "f"}}]}  # fmt: skip
    chars = len(text) + len("image_url") + len("function") + len("f")  # roles are in the per-message tokens
    assert prompt_tokens(body) == IMAGE_TOKENS + 4 + 3 + math.ceil(chars / CHARS_PER_TOKEN)


def test_output_tokens_take_max_tokens_times_n_or_the_model_limit() -> None:
    messages = [{"role": "user", "content": "hi"}]
    assert output_tokens({"messages": messages, "max_tokens": 50, "n": 3}, "x") == 150
    assert output_tokens({"messages": messages, "max_completion_tokens": 20, "max_tokens": 50}, "x") == 20
    assert output_tokens({"messages": messages}, "gpt-5-mini-2025-08-07") == 128_000
    assert output_tokens({"messages": messages, "max_tokens": "lots"}, "unknown") == DEFAULT_OUTPUT_LIMIT
    assert output_tokens({"input": ["embed me"]}, "x") == 0


def test_worst_case_prices_prompt_and_output_and_is_zero_for_free_models() -> None:
    body = {"messages": [{"role": "user", "content": "abcdef"}], "max_tokens": 10}
    assert worst_case(PRICE, "m", body) == (math.ceil(len("abcdef") / 3) + 7) * 1.0 + 10 * 2.0
    assert worst_case(PRICE, "m", None) == DEFAULT_OUTPUT_LIMIT * 2.0
    assert worst_case(Price(0.0, 0.0), "m", body) == 0.0


def test_holds_admit_only_what_fits_while_others_are_in_flight() -> None:
    a = account(100.0)
    a.reserve(40.0)
    a.reserve(40.0)
    assert refusal(lambda: a.reserve(40.0)) == "budget_reserved"
    a.release(40.0)
    a.charge(30.0)  # spent 30 + reserved 40 + 30 fits
    a.reserve(30.0)
    assert (a.reserved, a.holds) == (70.0, 2)


def test_a_request_that_cannot_fit_runs_only_alone_and_a_spent_budget_refuses_all() -> None:
    a = account(100.0, spent=90.0)
    a.reserve(50.0)  # nothing in flight: it may run, and pass the budget by at most its own cost
    assert refusal(lambda: a.reserve(1.0)) == "budget_reserved"
    a.release(50.0)
    a.charge(20.0)
    assert refusal(lambda: a.reserve(0.0)) == "budget_exceeded"
    assert (a.reserved, a.holds) == (0.0, 0)


def test_a_key_without_budget_is_never_refused_by_holds() -> None:
    a = account(None)
    for _ in range(1000):
        a.reserve(1e9)
    assert a.holds == 1000


async def test_memory_budgets_settle_once() -> None:
    budgets, a = MemoryBudgets(), account(100.0)
    hold = await budgets.reserve("k", a, 60.0)
    budgets.settle(hold, 25.0)
    budgets.settle(hold, 25.0)
    assert (a.spent, a.reserved, a.holds) == (25.0, 0.0, 0)


@pytest.fixture
async def admitting(tmp_path: Path) -> AsyncIterator[tuple[Accounting, Principal]]:
    """Accounting over a SQLite store with one key of max_budget 100, authenticated (so its entry is cached)."""
    store = SqliteStore(str(tmp_path / "toolhub.db"))
    await store.connect()
    try:
        await store.migrate()
        token = "sk-holds"
        row = KeyRow(token_hash=hash_key(token), key_name="sk-...olds", created_at=0.0, updated_at=0.0,
                     max_budget=100.0)  # fmt: skip
        await store.insert_key(row)
        keys = KeyAuthenticator(store, BudgetLedger(store))
        principal = await keys.authenticate(token)
        writer = UsageWriter(store, tmp_path / "spill.jsonl")
        yield Accounting(keys, writer, Metrics(), MemoryLimiter()), principal
    finally:
        await store.aclose()


ROUTE = ModelRoute(
    "m", Deployment(provider="openai", model="m", api_base=""), input_cost_per_token=1.0, output_cost_per_token=2.0
)


def finished(prompt: int, completion: int) -> UsageRecord:
    return UsageRecord("r", None, "m", "m", "openai", 200, False, 1.0, prompt_tokens=prompt,
                       completion_tokens=completion)  # fmt: skip


async def test_admit_holds_the_request_body_worst_case_and_settles_to_the_real_cost(
    admitting: tuple[Accounting, Principal],
) -> None:
    accounting, principal = admitting
    body = {"messages": [{"role": "user", "content": "x" * 24}], "max_tokens": 10}  # (8 + 4 + 3) + 2 * 10 = 35
    first = await accounting.admit(principal, ROUTE, body)
    second = await accounting.admit(principal, ROUTE, body)
    with pytest.raises(RateLimited) as refused:
        await accounting.admit(principal, ROUTE, body)  # 35 * 3 > 100
    assert refused.value.code == "budget_reserved" and refused.value.headers == {"retry-after": "1"}
    entry = accounting.keys.entry(principal.key_id or "")
    assert entry is not None and (entry.account.reserved, entry.account.holds) == (70.0, 2)
    first.settle(finished(12, 5))  # 12 + 10 = 22
    second.settle(finished(12, 5))
    assert (entry.account.spent, entry.account.reserved, entry.account.holds) == (44.0, 0.0, 0)


async def test_a_ticket_dropped_without_settling_frees_its_hold(admitting: tuple[Accounting, Principal]) -> None:
    accounting, principal = admitting
    await accounting.admit(principal, ROUTE, {"messages": [], "max_tokens": 30})
    entry = accounting.keys.entry(principal.key_id or "")
    assert entry is not None and (entry.account.spent, entry.account.holds) == (0.0, 0)


async def test_a_rate_limit_refusal_frees_the_budget_hold(admitting: tuple[Accounting, Principal]) -> None:
    accounting, principal = admitting
    limited = ModelRoute("m", ROUTE.deployment, input_cost_per_token=1.0, output_cost_per_token=2.0, rpm=1)
    ticket = await accounting.admit(principal, limited, {"messages": [], "max_tokens": 1})
    with pytest.raises(RateLimited) as refused:
        await accounting.admit(principal, limited, {"messages": [], "max_tokens": 1})
    assert refused.value.code == "rpm_limit_exceeded"
    entry = accounting.keys.entry(principal.key_id or "")
    assert entry is not None and entry.account.holds == 1
    del ticket
