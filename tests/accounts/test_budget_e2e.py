"""One gateway, 200 concurrent requests of one budgeted key against an upstream taking a second: the key ends within
one request of its budget (before holds every request was admitted: 200 x $13 against a $30 budget)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import openai
import pytest

from tests.keys.conftest import COST, MASTER_KEY, gateway

BUDGET = 30.0
MESSAGES = [{"role": "user", "content": "How far is the moon from the earth, in kilometres?"}]


@pytest.fixture
def one_gateway(upstream: str, tmp_path: Path) -> Iterator[str]:
    with gateway(upstream, f"sqlite:///{tmp_path / 'toolhub.db'}") as url:
        yield url


async def burst(url: str, key: str, total: int) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    http = openai.DefaultAsyncHttpxClient(limits=httpx2.Limits(max_connections=total))
    base = f"{url}/v1"
    async with openai.AsyncOpenAI(base_url=base, api_key=key, max_retries=0, timeout=30, http_client=http) as client:

        async def one() -> None:
            try:
                await client.chat.completions.create(model="slow", messages=MESSAGES, max_tokens=7)  # pyright: ignore[reportArgumentType]
                outcomes["ok"] += 1
            except openai.RateLimitError as exc:
                outcomes[str(exc.code)] += 1

        async with anyio.create_task_group() as tg:
            for _ in range(total):
                tg.start_soon(one)
    return outcomes


def test_200_concurrent_requests_end_within_one_request_of_the_budget(one_gateway: str) -> None:
    with httpx2.Client(base_url=one_gateway, headers={"authorization": f"Bearer {MASTER_KEY}"}, timeout=20) as admin:
        key = admin.post("/key/generate", json={"max_budget": BUDGET}).json()["key"]
        outcomes = anyio.run(burst, one_gateway, key, 200)
        logs = admin.get("/spend/logs", params={"api_key": key, "page_size": 1000}).json()["data"]
        info = admin.get("/key/info", params={"key": key}).json()["info"]
    assert sum(outcomes.values()) == 200 and set(outcomes) <= {"ok", "budget_reserved", "budget_exceeded"}
    spent = sum(row["spend"] for row in logs if row["status"] == "success")
    assert spent == info["spend"] == outcomes["ok"] * COST <= BUDGET + COST
    assert outcomes["ok"] >= 1
