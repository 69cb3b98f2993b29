"""Fallbacks from the config skip model groups the caller's key may not use, as a request's own `fallbacks` must."""

from __future__ import annotations

from typing import Any

import pytest

from hub.accounts.auth import MASTER, Principal
from hub.gateway.routing import ModelRouter
from providers.base import ChatRequest, ProviderError
from tests.router.test_call import Scripted, router, server_error

KEY = Principal(key_id="k" * 64, models=frozenset({"a", "c"}))
"""May use groups a and c, not b."""


def context_error() -> ProviderError:
    return ProviderError("This model's maximum context length is 8192 tokens.", status_code=400, provider="openai",
                         code="context_length_exceeded", upstream_status=400)  # fmt: skip


def policy_error() -> ProviderError:
    return ProviderError("Your request was rejected by our content policy.", status_code=400, provider="openai",
                         code="content_policy_violation", upstream_status=400)  # fmt: skip


KINDS = [
    pytest.param("fallbacks", server_error, id="fallbacks"),
    pytest.param("context_window_fallbacks", context_error, id="context_window_fallbacks"),
    pytest.param("content_policy_fallbacks", policy_error, id="content_policy_fallbacks"),
    pytest.param("default_fallbacks", server_error, id="default_fallbacks"),
]


def chained(kind: str, error: ProviderError, chain: list[str]) -> tuple[ModelRouter, Scripted]:
    """Group a always fails with `error` and falls back along `chain` by the config key `kind`."""
    settings: dict[str, Any] = {kind: chain if kind == "default_fallbacks" else [{"a": chain}]}
    return router({"http://a1/v1": [error], "http://b1/v1": [None], "http://c1/v1": [None]}, **settings)


async def call(r: ModelRouter, principal: Principal, how: str, body: dict[str, Any] | None = None) -> Any:
    target = r.resolve("a", principal, body)
    request = ChatRequest(body={}, deployment=target.route.deployment)
    if how == "complete":
        answer = await target.provider.complete(request)
    elif how == "stream":
        answer = [chunk async for chunk in target.provider.stream(request)][0]
    else:  # another kind of call (embeddings), through `RoutedCall.run`
        answer = await target.provider.run(request, lambda slot, req: slot.provider.complete(req))  # pyright: ignore[reportOptionalMemberAccess]
    return answer["answer"], target.provider.headers()["x-litellm-model-group"]


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["complete", "stream", "run"])
@pytest.mark.parametrize(("kind", "error"), KINDS)
async def test_a_configured_fallback_the_key_may_not_use_is_skipped(kind: str, error: Any, how: str) -> None:
    r, provider = chained(kind, error(), ["b", "c"])
    assert await call(r, KEY, how) == ("http://c1/v1", "c")
    assert "http://b1/v1" not in provider.calls


@pytest.mark.anyio
@pytest.mark.parametrize(("kind", "error"), KINDS)
async def test_with_no_configured_fallback_the_key_may_use_the_original_error_stands(kind: str, error: Any) -> None:
    r, provider = chained(kind, error(), ["b"])
    with pytest.raises(ProviderError) as failed:
        await call(r, KEY, "complete")
    assert (failed.value.code, failed.value.headers["x-litellm-attempted-fallbacks"]) == (error().code, "0")
    assert "http://b1/v1" not in provider.calls


@pytest.mark.anyio
async def test_mock_testing_fallbacks_skips_a_configured_fallback_the_key_may_not_use() -> None:
    r, provider = chained("fallbacks", server_error(), ["b"])
    with pytest.raises(ProviderError) as failed:
        await call(r, KEY, "complete", {"model": "a", "mock_testing_fallbacks": True})
    assert failed.value.code == "mock_testing_fallbacks"
    assert provider.calls == []


@pytest.mark.anyio
async def test_a_key_that_may_use_every_model_still_falls_back_along_the_config() -> None:
    r, _ = chained("fallbacks", server_error(), ["b", "c"])
    assert await call(r, Principal(key_id="k" * 64), "complete") == ("http://b1/v1", "b")


@pytest.mark.anyio
async def test_whether_a_deployment_cools_does_not_depend_on_who_failed_on_it() -> None:
    """A single-deployment group with a fallback cools on failures whoever called: a key that may not use the
    fallback fails on a1 until it cools, and the master key then goes straight to b (it paid for a1 too)."""
    r, provider = chained("fallbacks", server_error(), ["b"])
    for _ in range(5):
        with pytest.raises(ProviderError):
            await call(r, KEY, "complete")
    provider.calls.clear()
    assert await call(r, MASTER, "complete") == ("http://b1/v1", "b")
    assert provider.calls == ["http://b1/v1"]
