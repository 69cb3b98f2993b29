"""Two gateways on one database report a key's spend alike in `/key/info` and `/key/list`: the stored spend, not
what each served itself (QA scale #3)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx2
import pytest
from openai.types.chat import ChatCompletionMessageParam

from hub.accounts.keys import KeyAuthenticator
from hub.accounts.keys_api import key_spends
from hub.accounts.spend import BudgetLedger
from hub.storage import KeyRow
from hub.storage.sqlite import SqliteStore
from tests.keys.conftest import COST, MASTER_KEY, gateway, sdk
from tests.keys.test_budget_catch_up import log
from tests.keys.test_limits_e2e import generate, spend_total

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}


def shown(url: str, key: str) -> tuple[float, float]:
    """The key's spend in `/key/info` and in `/key/list?return_full_object=true`."""
    with httpx2.Client(base_url=url, headers=ADMIN, timeout=20) as admin:
        info = admin.get("/key/info", params={"key": key}).json()["info"]
        listed = admin.get("/key/list", params={"return_full_object": "true", "size": 1000}).json()["keys"]
    return info["spend"], next(k["spend"] for k in listed if k["token"] == info["token"])


@pytest.mark.parametrize("budget", [{}, {"max_budget": 1e6}], ids=["no-budget", "budget"])
def test_every_gateway_shows_the_stored_spend(upstream: str, database_url: str, budget: dict[str, float]) -> None:
    with gateway(upstream, database_url) as one, gateway(upstream, database_url) as two:
        with httpx2.Client(base_url=one, headers=ADMIN, timeout=20) as admin_one:
            key = generate(admin_one, **budget)
            with sdk(one, key) as client:
                for _ in range(3):
                    client.chat.completions.create(model="text", messages=USER)
            assert spend_total(admin_one, key) == (3, 3 * COST)  # /spend/logs flushes the writer first
            with sdk(two, key) as client:
                for _ in range(2):
                    client.chat.completions.create(model="text", messages=USER)
            with httpx2.Client(base_url=two, headers=ADMIN, timeout=20) as admin_two:
                assert spend_total(admin_two, key) == (5, 5 * COST)
            assert shown(one, key) == shown(two, key) == (5 * COST, 5 * COST)


@pytest.mark.anyio
async def test_an_unstored_charge_shows_and_an_account_of_an_earlier_period_does_not(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "toolhub.db"))
    await store.connect()
    await store.migrate()
    now = time.time()
    row = KeyRow(token_hash="k" * 64, key_name="sk-...kkkk", created_at=now - 2 * 86400 + 60, updated_at=now,
                 max_budget=1e6, budget_duration="1d")  # fmt: skip
    await log(store, 1, 7.0, now - 86400)  # in yesterday's period
    await log(store, 2, 2.0, now)
    stale = KeyAuthenticator(store, BudgetLedger(store))
    account = await stale.ledger.account(row)
    account.period_start, account.spent = account.period_start - 86400, 7.0  # last served yesterday
    assert await key_spends(stale, [row], now) == {row.token_hash: 2.0}
    serving = KeyAuthenticator(store, BudgetLedger(store))
    (await serving.ledger.account(row)).charge(1.0)  # a request of this process, not stored yet
    assert await key_spends(serving, [row], now) == {row.token_hash: 3.0}
    await store.aclose()
