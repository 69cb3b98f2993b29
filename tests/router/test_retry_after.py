"""An upstream's `retry-after` is honoured up to MAX_RETRY_AFTER: a longer (or senseless) one hangs no request and
cools no deployment until restart. Fake upstreams on loopback answer the 429s; the official SDK is the client."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import anyio
import openai
import pytest

from hub.accounts.auth import MASTER
from hub.router.classify import MAX_RETRY_AFTER
from providers.base import ChatRequest, ProviderError
from tests.e2e.router_support import Gateway, answered_by, gateway
from tests.fakes.faults import OPENAI_429, Fault, Faults
from tests.fakes.openai_upstream import API_KEY, FakeOpenAI
from tests.router.test_call import router
from tests.support.servers import serve_app

BOUND = 5.0
"""Seconds a request refused with a huge retry-after may take at most (it takes milliseconds): the client gives up
at 2 * BOUND, so before the fix the test fails instead of hanging."""


@contextlib.contextmanager
def upstream(retry_after: dict[str, str] | None) -> Iterator[tuple[Faults, str]]:
    """A fake OpenAI on loopback answering every request with a 429 carrying `retry_after` headers (None: answering)."""
    faults = Faults(FakeOpenAI().app)
    if retry_after is not None:
        faults.always = Fault(429, OPENAI_429.body, retry_after)
    with serve_app(faults) as url:
        yield faults, f"{url}/v1"


def deployment(name: str, api_base: str) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": "openai/text", "api_base": api_base, "api_key": API_KEY}}


def timed_chat(gw: Gateway, model: str) -> tuple[float, Any]:
    """(seconds, raw response or the SDK's error) of one request, after a warm-up request to `warm`."""
    gw.chat("warm")  # the client's connection and the gateway's first request are not what is timed
    client = gw.client.with_options(timeout=2 * BOUND)
    started = time.monotonic()
    try:
        result: Any = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "hello"}]
        )
    except openai.APIStatusError as exc:
        result = exc
    return time.monotonic() - started, result


def cooling_for(gw: Gateway, api_base: str) -> float:
    """Seconds the gateway still cools the deployment at `api_base` (0: not cooling)."""
    cooldowns = gw.app.state.hub.router.cooldowns
    now = cooldowns.clock()
    slot = next(s for _, s in gw.app.state.hub.router.slots() if s.route.deployment.api_base == api_base)
    return max(0.0, cooldowns.until.get(slot.id, now) - now)


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "99999999999"},
        {"retry-after": "inf"},
        {"retry-after": "nan"},
        {"retry-after": "-5"},
        {"retry-after": "1e400"},
        {"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"},
        {"retry-after-ms": "inf", "retry-after": "1"},
    ],
)
def test_a_429_asking_for_longer_than_the_cap_is_answered_at_once_when_nothing_can_take_it(
    headers: dict[str, str],
) -> None:
    with upstream(headers) as (limited, base), upstream(None) as (_, ok):
        with gateway([deployment("solo", base), deployment("warm", ok)], num_retries=2) as gw:
            elapsed, result = timed_chat(gw, "solo")
    assert isinstance(result, openai.RateLimitError)
    assert elapsed < BOUND
    assert result.response.headers["x-litellm-attempted-retries"] == "0"
    assert limited.calls == 1


def test_a_429_asking_for_longer_than_the_cap_falls_back_at_once_and_cools_for_the_cap_only() -> None:
    with upstream({"retry-after": "99999999999"}) as (limited, base), upstream(None) as (_, ok):
        models = [deployment("big", base), deployment("ok2", ok), deployment("warm", ok)]
        with gateway(models, num_retries=2, fallbacks=[{"big": ["ok2"]}], cooldown_time=30) as gw:
            elapsed, result = timed_chat(gw, "big")
            cooling = cooling_for(gw, base)
            later = gw.chat("big")
    assert elapsed < BOUND
    assert answered_by(result) == ("ok2", ok, "0", "1")
    assert 0 < cooling <= MAX_RETRY_AFTER
    assert answered_by(later) == ("ok2", ok, "0", "1")
    assert limited.calls == 1  # the later request skipped the cooling deployment


def test_a_cooldown_time_longer_than_the_cap_bounds_the_cooldown_instead() -> None:
    with upstream({"retry-after": "inf"}) as (_, base), upstream(None) as (_, ok):
        models = [deployment("big", base), deployment("ok2", ok), deployment("warm", ok)]
        with gateway(models, fallbacks=[{"big": ["ok2"]}], cooldown_time=300) as gw:
            gw.chat("big")
            cooling = cooling_for(gw, base)
    assert MAX_RETRY_AFTER < cooling <= 300


@pytest.mark.anyio
async def test_a_retry_after_under_the_cap_is_waited_with_its_jitter_kept_under_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limited = ProviderError("openai error (429): slow down", status_code=429, provider="openai", upstream_status=429,
                            headers={"retry-after": str(MAX_RETRY_AFTER - 1)})  # fmt: skip
    r, provider = router({"http://a1/v1": [limited, None]}, num_retries=1)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:  # the wait is what is checked, not slept
        waits.append(seconds)

    monkeypatch.setattr(anyio, "sleep", sleep)
    monkeypatch.setattr("hub.router.call.random.random", lambda: 1.0)  # the largest jitter: +25%
    target = r.resolve("a", MASTER, {"model": "a"})
    await target.provider.complete(ChatRequest(body={}, deployment=target.route.deployment))
    assert waits == [MAX_RETRY_AFTER]
    assert provider.calls == ["http://a1/v1", "http://a1/v1"]
