"""RoutedCall in memory: scripted providers per deployment, the router's retries, fallbacks and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from hub.accounts.auth import MASTER
from hub.config import parse_config
from hub.gateway.routing import ModelRouter
from hub.router.health import RouterCollector
from providers._http import HttpPool
from providers.base import JSON, ChatRequest, ProviderError


class Scripted:
    """A provider whose answers per api_base are scripted: an exception to raise, or a completion."""

    name = "scripted"

    def __init__(self, script: dict[str, list[Any]]) -> None:
        self.script = script
        self.calls: list[str] = []

    async def complete(self, request: ChatRequest) -> JSON:
        base = request.deployment.api_base
        self.calls.append(base)
        step = self.script[base].pop(0) if len(self.script[base]) > 1 else self.script[base][0]
        if isinstance(step, Exception):
            raise step
        return {"answer": base, "usage": {"total_tokens": 100}}

    async def stream(self, request: ChatRequest) -> AsyncIterator[JSON]:
        yield await self.complete(request)


def server_error() -> ProviderError:
    return ProviderError("openai error (500): boom", status_code=502, provider="openai", upstream_status=500,
                         retryable=True)  # fmt: skip


def router(script: dict[str, list[Any]], **settings: Any) -> tuple[ModelRouter, Scripted]:
    raw = {"model_list": [{"model_name": base.split("/")[2][0], "litellm_params": {"model": "openai/m",
                                                                                  "api_base": base}}
                          for base in script], "router_settings": settings}  # fmt: skip
    config = parse_config(raw, {})
    r = ModelRouter(config.models, HttpPool(), config.router)
    provider = Scripted(script)
    for group in r.groups.values():
        for slot in group.slots:
            slot.provider = provider
    return r, provider


@pytest.mark.anyio
async def test_a_retry_goes_to_another_deployment_at_once_and_is_counted() -> None:
    r, provider = router({"http://a1/v1": [server_error()], "http://a2/v1": [None]}, num_retries=1)
    target = r.resolve("a", MASTER, {"model": "a"})
    assert (await target.provider.complete(ChatRequest(body={}, deployment=target.route.deployment)))["answer"] == (
        "http://a2/v1"
    )
    assert provider.calls == ["http://a1/v1", "http://a2/v1"]
    assert target.provider.headers()["x-litellm-attempted-retries"] == "1"


@pytest.mark.anyio
async def test_the_router_metrics_show_each_deployments_state_and_counts() -> None:
    r, _ = router({"http://a1/v1": [server_error()], "http://a2/v1": [None]}, num_retries=1, allowed_fails=0)
    target = r.resolve("a", MASTER)
    await target.provider.complete(ChatRequest(body={}, deployment=target.route.deployment))
    registry = CollectorRegistry()
    registry.register(RouterCollector(r))
    text = generate_latest(registry).decode()
    first, second = r.groups["a"].slots
    labels = 'api_base="http://a1/v1",deployment="{}",model="a"'
    assert f"toolhub_deployment_cooling{{{labels.format(first.id)}}} 1.0" in text
    assert f"toolhub_deployment_failures{{{labels.format(first.id)}}} 1.0" in text
    assert f"toolhub_deployment_retries{{{labels.format(first.id)}}} 1.0" in text
    second_labels = labels.replace("a1", "a2").format(second.id)
    assert f"toolhub_deployment_successes{{{second_labels}}} 1.0" in text
    assert f"toolhub_deployment_cooling{{{second_labels}}} 0.0" in text


@pytest.mark.anyio
async def test_a_body_without_router_options_is_left_as_it_is_and_options_are_taken_out() -> None:
    r, _ = router({"http://a1/v1": [None], "http://b1/v1": [None]})
    plain = {"model": "a", "messages": []}
    r.resolve("a", MASTER, plain)
    assert plain == {"model": "a", "messages": []}
    body = {"model": "a", "fallbacks": ["b"], "num_retries": 1, "timeout": 5, "mock_testing_fallbacks": True}
    target = r.resolve("a", MASTER, body)
    assert body == {"model": "a"}
    assert (await target.provider.complete(ChatRequest(body=body, deployment=target.route.deployment)))["answer"] == (
        "http://b1/v1"
    )


@pytest.mark.anyio
async def test_usage_based_routing_sends_requests_to_the_deployment_with_fewer_tokens_this_minute() -> None:
    r, provider = router({"http://a1/v1": [None], "http://a2/v1": [None]}, routing_strategy="usage-based-routing-v2")
    r.groups["a"].slots[0].count(250, requests=1)  # a1 already used 250 tokens this minute
    for _ in range(3):
        target = r.resolve("a", MASTER)
        await target.provider.complete(ChatRequest(body={}, deployment=target.route.deployment))
    assert provider.calls == ["http://a2/v1", "http://a2/v1", "http://a2/v1"]
    assert [s.tokens for s in r.groups["a"].slots] == [250, 300]
    target = r.resolve("a", MASTER)
    await target.provider.complete(ChatRequest(body={}, deployment=target.route.deployment))
    assert provider.calls[-1] == "http://a1/v1"


@pytest.mark.anyio
async def test_a_running_router_shows_its_series_in_metrics_until_it_stops() -> None:
    r, _ = router({"http://a1/v1": []})
    registry = CollectorRegistry()
    async with r.running({"metrics": SimpleNamespace(registry=registry)}):
        assert "toolhub_deployment_cooling" in generate_latest(registry).decode()
    assert "toolhub_deployment_cooling" not in generate_latest(registry).decode()


@pytest.mark.anyio
async def test_credentials_and_query_in_an_api_base_reach_no_header_metric_or_log() -> None:
    base = "http://alice:s3cret@a1/v1?key=k"
    r, _ = router({base: [server_error()], "http://a2/v1": [None]}, num_retries=1, allowed_fails=0)
    target = r.resolve("a", MASTER)
    first = r.groups["a"].slots[0]
    registry = CollectorRegistry()
    registry.register(RouterCollector(r))
    await target.provider.complete(ChatRequest(body={}, deployment=target.route.deployment))
    seen = " ".join([first.headers["x-litellm-model-api-base"], generate_latest(registry).decode()])
    assert first.shown_base == "http://a1/v1"
    assert "s3cret" not in seen and "key=k" not in seen and 'api_base="http://a1/v1"' in seen
