"""Three gateway processes sharing PostgreSQL and Redis: one budget across them, and key changes seen by every
replica within a second (their key cache would otherwise trust a key for a minute)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx2
import openai
import yaml

from tests.accounts.conftest import admin
from tests.keys.conftest import COST, config_dict
from tests.keys.test_keys_cli import toolhub_keys

MESSAGES = [{"role": "user", "content": "How far is the moon from the earth, in kilometres? " * 2}]
BUDGET = 30.0


def generate(url: str, **body: object) -> str:
    with admin(url) as client:
        response = client.post("/key/generate", json=body)
    assert response.status_code == 200, response.text
    return response.json()["key"]


def spend(urls: list[str], key: str) -> tuple[int, float]:
    """Logged successful requests and their spend, once every replica has written what it has queued."""
    for url in urls:
        with admin(url) as client:
            client.get("/spend/logs", params={"page_size": 1})  # each read flushes that replica's queue first
    with admin(urls[0]) as client:
        rows = client.get("/spend/logs", params={"api_key": key, "page_size": 1000}).json()["data"]
    ok = [row for row in rows if row["status"] == "success"]
    return len(ok), sum(row["spend"] for row in ok)


async def hammer(urls: list[str], key: str, model: str, total: int, concurrency: int) -> Counter[str]:
    """`total` requests at `concurrency`, round-robin over the replicas (no stickiness); the SDK retries a 429 twice,
    after its retry-after."""
    clients = [openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=2, timeout=30) for url in urls]
    outcomes: Counter[str] = Counter()
    limiter = anyio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with limiter:
            try:
                await clients[i % len(clients)].chat.completions.create(model=model, messages=MESSAGES,  # pyright: ignore[reportArgumentType]
                                                                        max_tokens=7)  # fmt: skip
                outcomes["ok"] += 1
            except openai.RateLimitError as exc:
                outcomes[str(exc.code)] += 1

    async with anyio.create_task_group() as tg:
        for i in range(total):
            tg.start_soon(one, i)
    for client in clients:
        await client.close()
    return outcomes


def test_a_budget_hammered_across_three_replicas_ends_within_one_request_of_it(replicas: list[str]) -> None:
    key = generate(replicas[0], max_budget=BUDGET)
    outcomes = anyio.run(hammer, replicas, key, "slow", 60, 20)
    assert set(outcomes) <= {"ok", "budget_reserved", "budget_exceeded"}
    admitted, spent = spend(replicas, key)
    assert admitted == outcomes["ok"]
    # before holds each replica admitted while its own count was under budget: 20 in flight at once, $260
    assert BUDGET <= spent == admitted * COST <= BUDGET + COST


def status(url: str, key: str) -> int:
    body = {"model": "text", "messages": MESSAGES, "max_tokens": 7}
    return httpx2.post(f"{url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}).status_code


def seen_everywhere(replicas: list[str], expected: int, ask: Callable[[str], int]) -> list[float]:
    """Seconds until each replica answers `expected` (asked in turn, each for at most a second)."""
    started, seen = time.monotonic(), []
    for url in replicas:
        deadline = time.monotonic() + 1.0
        while (answer := ask(url)) != expected and time.monotonic() < deadline:
            pass
        assert answer == expected, f"{url} still answers {answer}"
        seen.append(time.monotonic() - started)
    return seen


def test_a_key_blocked_on_one_replica_is_refused_by_all_within_a_second(replicas: list[str]) -> None:
    key = generate(replicas[0])
    assert [status(url, key) for url in replicas] == [200, 200, 200]  # cached everywhere
    with admin(replicas[1]) as client:
        assert client.post("/key/block", json={"key": key}).status_code == 200
    seen_everywhere(replicas, 403, lambda url: status(url, key))
    with admin(replicas[2]) as client:
        assert client.post("/key/unblock", json={"key": key}).status_code == 200
    seen_everywhere(replicas, 200, lambda url: status(url, key))


def test_a_key_deleted_on_one_replica_is_refused_by_all_within_a_second(replicas: list[str]) -> None:
    key = generate(replicas[0])
    assert [status(url, key) for url in replicas] == [200, 200, 200]
    with admin(replicas[2]) as client:
        assert client.post("/key/delete", json={"keys": [key]}).status_code == 200
    seen_everywhere(replicas, 401, lambda url: status(url, key))


def test_budget_and_model_changes_reach_every_replica_within_a_second(replicas: list[str]) -> None:
    key = generate(replicas[0], max_budget=1000.0)
    assert [status(url, key) for url in replicas] == [200, 200, 200]  # 3 * 13 spent
    with admin(replicas[1]) as client:
        assert client.post("/key/update", json={"key": key, "models": ["json"]}).status_code == 200
    seen_everywhere(replicas, 403, lambda url: status(url, key))
    with admin(replicas[0]) as client:
        assert client.post("/key/update", json={"key": key, "models": [], "max_budget": 30.0}).status_code == 200
    seen_everywhere(replicas, 429, lambda url: status(url, key))


def test_toolhub_keys_on_the_command_line_reaches_every_replica_within_a_second(
    replicas: list[str], upstream: str, shared_database: str, redis_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(config_dict(upstream, shared_database, redis_url=redis_url)))
    key = generate(replicas[0], key_alias="cli-replicas")
    assert [status(url, key) for url in replicas] == [200, 200, 200]
    assert toolhub_keys(config, "block", "cli-replicas").returncode == 0
    seen_everywhere(replicas, 403, lambda url: status(url, key))
    assert toolhub_keys(config, "revoke", "cli-replicas").returncode == 0
    seen_everywhere(replicas, 401, lambda url: status(url, key))
