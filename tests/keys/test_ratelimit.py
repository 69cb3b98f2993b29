"""Sliding-window rate limits in memory and through Redis, with many concurrent requests counted exactly."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import httpx2
import openai
import pytest

from hub.accounts.ratelimit import Limit, MemoryLimiter, RedisLimiter, redis_client
from hub.errors import RateLimited
from tests.keys.conftest import MASTER_KEY, gateway_processes, sdk
from tests.support.peers import missing_peer

REDIS_URL_ENV = "TOOLHUB_TEST_REDIS_URL"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rpm_admits_exactly_the_limit_then_names_it_with_retry_after() -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock)
    limit = Limit(name="key:a", label="key 'a'", rpm=3)
    for _ in range(3):
        limiter.check([limit])
        clock.now += 10
    with pytest.raises(RateLimited) as info:
        limiter.check([limit])
    assert (info.value.status_code, info.value.code, info.value.headers) == (
        429,
        "rpm_limit_exceeded",
        {"retry-after": "30"},
    )
    assert "key 'a'" in info.value.message and "3 requests per minute" in info.value.message
    clock.now += 30  # the first request leaves the window
    limiter.check([limit])


def test_tpm_refuses_once_the_window_holds_the_limit() -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock)
    limit = Limit(name="d", label="model 'm'", tpm=100)
    limiter.check([limit])
    limiter.add_tokens([limit], 60)
    limiter.check([limit])
    limiter.add_tokens([limit], 40)
    with pytest.raises(RateLimited) as info:
        limiter.check([limit])
    assert info.value.code == "tpm_limit_exceeded"
    clock.now += 61
    limiter.check([limit])


def test_a_refused_request_counts_against_no_limit() -> None:
    limiter = MemoryLimiter(Clock())
    roomy, tight = Limit(name="key", label="key", rpm=10), Limit(name="dep", label="dep", rpm=1)
    limiter.check([roomy, tight])
    for _ in range(5):
        with pytest.raises(RateLimited):
            limiter.check([roomy, tight])
    for _ in range(9):
        limiter.check([roomy])
    with pytest.raises(RateLimited):
        limiter.check([roomy])


@pytest.fixture
async def redis_conn() -> AsyncIterator[Any]:
    url = os.environ.get(REDIS_URL_ENV)
    if not url:
        missing_peer(f"set {REDIS_URL_ENV}=redis://127.0.0.1:6379/0 to run the Redis tests")
    client = redis_client(url)
    yield client
    await client.aclose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_two_processes_sharing_redis_admit_exactly_the_limit_under_concurrency(
    upstream: str, database_url: str
) -> None:
    redis_url = os.environ.get(REDIS_URL_ENV) or missing_peer(f"set {REDIS_URL_ENV} to run the Redis tests")
    with gateway_processes(upstream, database_url, 2, redis_url=redis_url) as urls:
        admin = {"authorization": f"Bearer {MASTER_KEY}"}
        key = httpx2.post(f"{urls[0]}/key/generate", json={"rpm_limit": 7}, headers=admin, timeout=20).json()["key"]
        clients = [sdk(url, key) for url in urls]

        def one(i: int) -> str:
            try:
                clients[i % 2].chat.completions.create(model="text", messages=[{"role": "user", "content": "hi"}])
            except openai.RateLimitError as exc:
                return str(exc.code)
            return "ok"

        with ThreadPoolExecutor(40) as pool:
            outcomes = Counter(pool.map(one, range(40)))
        for client in clients:
            client.close()
    assert outcomes == Counter({"ok": 7, "rpm_limit_exceeded": 33})


@pytest.mark.anyio
async def test_redis_token_counts_are_flushed_and_enforced(redis_conn: Any) -> None:
    limiter = RedisLimiter(redis_conn, prefix=f"toolhub:test:{uuid.uuid4().hex}:")
    limit = Limit(name="dep", label="model 'm'", tpm=50)
    await limiter.check([limit])
    limiter.add_tokens([limit], 30)
    limiter.add_tokens([limit], 20)
    await limiter.flush()
    with pytest.raises(RateLimited) as info:
        await limiter.check([limit])
    assert info.value.code == "tpm_limit_exceeded" and int(info.value.headers["retry-after"]) >= 1


@pytest.mark.anyio
async def test_redis_down_falls_back_to_this_process_counters() -> None:
    from tests.support.servers import refused_port

    with refused_port() as port:  # bound and not listening: no process can take it and answer
        client = redis_client(f"redis://127.0.0.1:{port}/0")
        limiter = RedisLimiter(client)
        limit = Limit(name="k", label="key 'k'", rpm=2)
        await limiter.check([limit])
        await limiter.check([limit])
        with pytest.raises(RateLimited):
            await limiter.check([limit])
        await client.aclose()


class CountingClient:
    """A real Redis client that counts the calls of the scripts registered through it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.script_calls = 0

    def register_script(self, text: str) -> Any:
        script = self.inner.register_script(text)

        async def call(**kwargs: Any) -> Any:
            self.script_calls += 1
            return await script(**kwargs)

        return call

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def _outcomes(limiter: RedisLimiter, limits: list[Limit], count: int) -> Counter[str]:
    outcomes: Counter[str] = Counter()

    async def one() -> None:
        try:
            await limiter.check(limits)
            outcomes["ok"] += 1
        except RateLimited as exc:
            outcomes[exc.code or ""] += 1

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(count):
                tg.start_soon(one)
    return outcomes


@pytest.mark.anyio
async def test_concurrent_redis_checks_share_round_trips_and_admit_exactly_the_limit(redis_conn: Any) -> None:
    client = CountingClient(redis_conn)
    limiter = RedisLimiter(client, prefix=f"toolhub:test:{uuid.uuid4().hex}:")
    key, deployment = Limit(name="key:k", label="key 'k'", rpm=7), Limit(name="dep", label="model 'm'", rpm=100)
    outcomes = await _outcomes(limiter, [key, deployment], 40)
    assert outcomes == Counter({"ok": 7, "rpm_limit_exceeded": 33})
    assert client.script_calls < 40  # requests that arrived while a call was in flight went in one batch
    assert (await _outcomes(limiter, [deployment], 100)) == Counter({"ok": 93, "rpm_limit_exceeded": 7})


class GatedScript:
    """In place of Redis: admits every request of a batch, each batch once `gate` is set; records batch sizes."""

    def __init__(self) -> None:
        self.gate = anyio.Event()
        self.batches: list[int] = []
        self.before_answer = lambda: None

    def register_script(self, text: str) -> Any:
        async def call(*, keys: list[str], args: list[Any]) -> list[int]:
            await self.gate.wait()
            count, i = 0, 1
            while i < len(args):
                count, i = count + 1, i + 2 + 2 * int(args[i + 1])
            self.batches.append(count)
            self.before_answer()
            return [0, 0, 0] * count

        return call


@pytest.mark.anyio
async def test_a_check_cancelled_just_as_it_is_handed_the_next_batch_passes_it_on() -> None:
    script = GatedScript()
    limiter = RedisLimiter(script)
    limit = Limit(name="key:c", label="key 'c'", rpm=1000)
    done: list[str] = []
    scopes = {name: anyio.CancelScope() for name in "abcd"}

    async def one(name: str) -> None:
        with scopes[name]:
            await limiter.check([limit])
            done.append(name)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for name in "abcd":
                tg.start_soon(one, name)
            await anyio.wait_all_tasks_blocked()  # a sends alone; b, c, d wait for the next batch
            # b is cancelled in the same step in which a's batch ends and hands the next batch to b
            script.before_answer = scopes["b"].cancel
            script.gate.set()
    assert done == ["a", "c", "d"]
    assert script.batches == [1, 2]


@pytest.mark.anyio
async def test_cancelled_redis_checks_do_not_stall_the_others(redis_conn: Any) -> None:
    limiter = RedisLimiter(redis_conn, prefix=f"toolhub:test:{uuid.uuid4().hex}:")
    limit = Limit(name="key:c", label="key 'c'", rpm=1000)
    admitted = 0

    async def one(scope: anyio.CancelScope) -> None:
        nonlocal admitted
        with scope:
            await limiter.check([limit])
            admitted += 1

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            scopes = [anyio.CancelScope() for _ in range(30)]
            for scope in scopes:
                tg.start_soon(one, scope)
            for scope in scopes[1::2]:  # cancelled while queued behind the first batch
                scope.cancel()
        assert admitted == 15
        assert (await _outcomes(limiter, [limit], 10)) == Counter({"ok": 10})
