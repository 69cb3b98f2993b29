"""The response cache service in memory: config, tool-loop opt-in, in-flight collapsing, metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from hub.accounts.usage import UsageRecord
from hub.cache.service import ResponseCache
from hub.cache.store import LocalStore
from hub.config import CacheSettings, ConfigError, parse_config
from hub.loop.plan import LoopPlan
from hub.metrics import Metrics

ANSWER = {"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}]}
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def config(litellm_settings: dict[str, Any], **entry: Any) -> Any:
    model = {"model_name": "m", "litellm_params": {"model": "openai/m", "api_base": "http://x/v1"}, **entry}
    return parse_config({"model_list": [model], "litellm_settings": litellm_settings}, {})


def cache(**settings: Any) -> ResponseCache:
    return ResponseCache(CacheSettings(**settings), LocalStore(100, 1_000_000))


def test_litellm_cache_settings_are_read_and_no_longer_reported_ignored() -> None:
    params = {"type": "redis", "host": "127.0.0.1", "port": 6380, "password": "pw", "ttl": 60, "namespace": "n"}
    parsed = config({"cache": True, "cache_params": {**params, "unknown_knob": 1}})
    assert parsed.cache == CacheSettings(type="redis", ttl=60, namespace="n", redis_url="redis://:pw@127.0.0.1:6380/0")
    assert parsed.ignored == ("litellm_settings.cache_params.unknown_knob",)


def test_cache_is_off_unless_enabled_for_chat_calls() -> None:
    assert config({}).cache is None
    assert config({"cache": False, "cache_params": {"type": "local"}}).cache is None
    assert config({"cache": True, "cache_params": {"supported_call_types": ["embedding"]}}).cache is None
    chat_only = {"supported_call_types": ["acompletion"]}
    assert config({"cache": True, "cache_params": chat_only}).cache == CacheSettings(embeddings=False)


def test_a_bad_cache_type_fails_start_naming_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        config({"cache": True, "cache_params": {"type": "memcached"}})
    assert caught.value.path == "litellm_settings.cache_params.type"


def test_tool_loop_requests_are_cached_only_when_the_alias_opts_in() -> None:
    plain, opted = config({"cache": True}), config({"cache": True}, cache_tool_loops=True)
    route, opted_route = plain.models["m"][0], opted.models["m"][0]
    plan = LoopPlan(client_tools=[], hub_tools={}, owner="k1")
    assert cache().begin(dict(BODY), route, plan) is None
    assert cache().begin(dict(BODY), opted_route, plan) is not None
    assert cache().begin(dict(BODY), route, None) is not None
    assert cache().begin(dict(BODY), route, False) is not None  # (/v1/embeddings says False)


@pytest.mark.anyio
async def test_waiters_get_the_leaders_answer_or_go_on_alone_when_it_fails() -> None:
    service, route = cache(), config({"cache": True}).models["m"][0]
    leader, waiter = service.begin(dict(BODY), route, False), service.begin(dict(BODY), route, False)
    assert leader is not None and waiter is not None
    assert service.follow(leader, stream=False) is None  # the first leads
    followed = service.follow(waiter, stream=False)
    assert followed is not None
    waiting = asyncio.ensure_future(service.wait(followed))
    await leader.save(ANSWER)
    assert await waiting == ANSWER and service.inflight == {}
    failing, next_waiter = service.begin(dict(BODY), route, False), service.begin(dict(BODY), route, False)
    assert failing is not None and next_waiter is not None
    service.follow(failing, stream=False)
    followed = service.follow(next_waiter, stream=False)
    assert followed is not None
    waiting = asyncio.ensure_future(service.wait(followed))
    failing.release(None)
    assert await waiting is None and service.inflight == {}


@pytest.mark.anyio
async def test_a_waiter_gives_up_after_the_bounded_wait() -> None:
    service, route = cache(inflight_wait=0.01), config({"cache": True}).models["m"][0]
    leader, waiter = service.begin(dict(BODY), route, False), service.begin(dict(BODY), route, False)
    assert leader is not None and waiter is not None
    service.follow(leader, stream=False)
    followed = service.follow(waiter, stream=False)
    assert followed is not None
    assert await asyncio.wait_for(service.wait(followed), 2) is None
    assert service.follow(waiter, stream=True) is None  # streams never wait


def test_metrics_show_cache_hits_misses_and_bytes() -> None:
    metrics = Metrics()
    metrics.observe_cache(3, 2, 1_234)
    metrics.observe_cache(5, 2, 1_000)
    text = metrics.render().decode()
    assert "toolhub_cache_hits_total 5.0" in text
    assert "toolhub_cache_misses_total 2.0" in text
    assert "toolhub_cache_bytes 1000.0" in text


def test_a_cache_hit_does_not_mark_a_down_upstream_up() -> None:
    metrics = Metrics()
    failed = UsageRecord("r1", None, "m", "up", "openai", status_code=503, stream=False, latency_ms=1.0)
    hit = UsageRecord("r2", None, "m", "up", "openai", status_code=200, stream=False, latency_ms=1.0, cache_hit=True)
    metrics.record(failed)
    metrics.record(hit)
    assert 'toolhub_upstream_up{model="m",provider="openai"} 0.0' in metrics.render().decode()


@pytest.mark.anyio
async def test_a_passed_through_stream_is_stored_only_when_it_ends_normally() -> None:
    service, route = cache(), config({"cache": True}).models["m"][0]
    head = {"id": "x", "created": 1, "model": "m", "object": "chat.completion.chunk"}
    chunks: list[dict[str, Any] | bytes] = [
        {**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}]},
        b": toolhub running t\n\n",
        {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "toolhub": {"rounds": 2}},
    ]

    async def items(fail: bool) -> AsyncIterator[dict[str, Any] | bytes]:
        for chunk in chunks:
            yield chunk
        if fail:
            raise RuntimeError("the loop failed after its last chunk")

    failing = service.begin(dict(BODY), route, False)
    assert failing is not None
    with pytest.raises(RuntimeError):
        assert [item async for item in failing.saving(items(fail=True))] == chunks
    assert await service.find(failing) is None
    lookup = service.begin(dict(BODY), route, False)
    assert lookup is not None
    assert [item async for item in lookup.saving(items(fail=False))] == chunks
    stored = await service.find(lookup)
    assert stored is not None and orjson.loads(stored)["toolhub"] == {"rounds": 2}
    assert orjson.loads(stored)["choices"][0]["message"]["content"] == "hi"


@pytest.mark.anyio
async def test_a_passed_through_stream_abandoned_part_way_is_not_stored() -> None:
    service, route = cache(), config({"cache": True}).models["m"][0]
    head = {"id": "x", "created": 1, "model": "m", "object": "chat.completion.chunk"}
    finished = {**head, "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}

    async def items() -> AsyncIterator[dict[str, Any] | bytes]:
        yield finished
        yield b": toolhub running t\n\n"  # the client leaves while tools run: the rest never comes

    lookup = service.begin(dict(BODY), route, False)
    assert lookup is not None
    saving = lookup.saving(items())
    assert await anext(saving) == finished
    await saving.aclose()  # what a cancelled producer does to it
    assert await service.find(lookup) is None


def test_a_no_store_stream_is_not_gathered_and_others_are_bounded_by_the_largest_entry() -> None:
    route = config({"cache": True}).models["m"][0]
    service = cache(max_bytes=80_000)
    stored = service.begin({**BODY, "cache": {"no-store": True}}, route, None)
    kept = service.begin(dict(BODY), route, None)
    assert stored is not None and kept is not None and stored.gatherer() is None
    gatherer = kept.gatherer()
    assert gatherer is not None and gatherer.limit == service.max_entry_bytes == 10_000


@pytest.mark.anyio
async def test_an_answer_larger_than_an_eighth_of_the_cache_is_not_stored() -> None:
    route = config({"cache": True}).models["m"][0]
    service = cache(max_bytes=80_000)
    big, small = service.begin(dict(BODY), route, None), service.begin({**BODY, "seed": 1}, route, None)
    assert big is not None and small is not None
    await big.save({**ANSWER, "padding": "x" * 10_000})
    await small.save(ANSWER)
    assert (await service.find(big), await service.find(small) is not None) == (None, True)


@pytest.mark.anyio
@pytest.mark.parametrize("odd", [{"choices": []}, {"choices": ["text"]}, {"choices": [{"message": "hi"}]}, {"id": "x"}])
async def test_an_answer_no_reader_would_serve_is_not_stored(odd: dict[str, Any]) -> None:
    """A 200 from an odd upstream: stored, every other process would refuse it on each read (`entries.readable`)
    and call the upstream again, until its TTL ended."""
    route = config({"cache": True}).models["m"][0]
    service = cache()
    lookup = service.begin(dict(BODY), route, None)
    assert lookup is not None
    await lookup.save(odd)
    assert await service.find(lookup) is None
    await lookup.save(ANSWER)
    assert await service.find(lookup) is not None
