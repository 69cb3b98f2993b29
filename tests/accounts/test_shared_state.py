"""Conversation state (thinking blocks, thought signatures, hub rounds) written on one replica and read on another
through a real Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hub.accounts.ratelimit import redis_client
from hub.loop.memory import RoundMemory, hub_rounds
from hub.shared.kinds import anthropic_thinking, gemini_signatures, round_memory, share_providers
from hub.shared.mirror import SharedState, call_ids
from hub.shared.store import RedisShared
from providers.gemini.signatures import Step
from tests.support.peers import missing_peer

pytestmark = pytest.mark.anyio
THINKING = [{"type": "thinking", "thinking": "the user wants the time", "signature": "EqQBCkYIARgCIkD"}]


def conversation(*ids: str) -> list[dict[str, Any]]:
    calls = [{"id": i, "type": "function", "function": {"name": "f", "arguments": "{}"}} for i in ids]
    return [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": calls},
            *({"role": "tool", "tool_call_id": i, "content": "ok"} for i in ids)]  # fmt: skip


@pytest.fixture
async def stores() -> AsyncIterator[tuple[RedisShared, RedisShared]]:
    """Two replicas' stores on one Redis, under a prefix of this test's own (deleted afterwards)."""
    url = os.environ.get("TOOLHUB_TEST_REDIS_URL")
    if not url:
        missing_peer("set TOOLHUB_TEST_REDIS_URL=redis://127.0.0.1:6379/0 to run the Redis tests")
    client = redis_client(url)
    prefix = f"toolhub-test:{uuid.uuid4().hex}:"
    try:
        yield RedisShared(client, prefix=prefix), RedisShared(client, prefix=prefix)
    finally:
        async for key in client.scan_iter(match=f"{prefix}*"):
            await client.delete(key)
        await client.aclose()


async def test_thinking_blocks_made_on_one_replica_are_restored_on_another(
    stores: tuple[RedisShared, RedisShared],
) -> None:
    one, two = stores
    here, there = anthropic_thinking(one), anthropic_thinking(two)
    state = SharedState(two)
    state.add(there.mirror)
    here.put("toolu_1", ("claude-sonnet-4-5", THINKING))
    assert await state.warm(conversation("toolu_1")) == 0  # not sent yet: writes never wait on the request path
    await one.flush()
    assert await state.warm(conversation("toolu_1", "toolu_unknown")) == 1
    assert there.get("toolu_1") == ("claude-sonnet-4-5", THINKING)
    assert await state.warm(conversation("toolu_1")) == 0  # already here: not asked again


async def test_gemini_signatures_and_hub_rounds_cross_replicas(stores: tuple[RedisShared, RedisShared]) -> None:
    one, two = stores
    step = Step("gemini-3-flash-preview", {"call_a": "sig-a", "call_b": "sig-b"}, {"call_a": "g1"}, "sig-text")
    signatures_here, signatures_there = gemini_signatures(one), gemini_signatures(two)
    memory_here, memory_there = RoundMemory(), RoundMemory()
    rounds = hub_rounds("key-1", [{"role": "assistant", "content": "hub round"}], "shown", "own")
    memory_here.remember(["call_a"], rounds)
    round_memory(memory_here, one).publish("call_a", rounds)  # what RoundMemory.remember does with the hook
    signatures_here.put("call_a", step)
    await one.flush()
    state = SharedState(two)
    state.add(signatures_there.mirror)
    state.add(round_memory(memory_there, two))
    assert await state.warm(conversation("call_a")) == 2
    assert signatures_there.get("call_a") == step
    asked = conversation("call_a")[1]
    restored = memory_there.restore([{**asked, "content": "shown"}], "key-1")
    assert restored[0] == {"role": "assistant", "content": "hub round"} and restored[1]["content"] == "own"
    assert memory_there.restore([asked], "key-2") == [asked]  # another key never gets them


async def test_a_dead_redis_reads_as_empty(caplog: pytest.LogCaptureFixture) -> None:
    client = redis_client("redis://127.0.0.1:1/0")
    try:
        store = RedisShared(client)
        state = SharedState(store)
        state.add(anthropic_thinking(store).mirror)
        store.put("x", b"1", 60)
        await store.flush()
        assert await state.warm(conversation("toolu_1")) == 0
        assert "using this process's own" in caplog.text
    finally:
        await client.aclose()


def test_call_ids_are_the_newest_first_and_bounded() -> None:
    messages = conversation("a", "b") + conversation("c")
    assert call_ids(messages) == ["c", "a", "b"]
    assert call_ids(messages, limit=2) == ["c", "a"]
    assert call_ids("not a list") == [] and call_ids([{"role": "assistant", "tool_calls": "x"}, 3]) == []


async def test_providers_share_their_memories_with_another_replica(stores: tuple[RedisShared, RedisShared]) -> None:
    from providers.anthropic import AnthropicProvider
    from providers.gemini.provider import GeminiProvider

    one, two = stores
    pool: Any = None  # the providers only keep it: nothing is sent here
    here, there = SharedState(one), SharedState(two)
    anthropic_here, gemini_here = AnthropicProvider(pool), GeminiProvider(pool)
    anthropic_there, gemini_there = AnthropicProvider(pool), GeminiProvider(pool)
    assert share_providers([anthropic_here, gemini_here, object()], here) == 2
    assert share_providers([anthropic_there, gemini_there], there) == 2
    anthropic_here.thinking.put("toolu_1", ("claude-sonnet-4-5", THINKING))
    step = Step("gemini-3-flash-preview", {"call_g": "sig-g"})
    gemini_here.signatures.remember(step, ["call_g"])
    await one.flush()
    assert await there.warm(conversation("toolu_1") + conversation("call_g")) == 2
    assert anthropic_there.thinking.get("toolu_1") == ("claude-sonnet-4-5", THINKING)
    assert gemini_there.signatures.lookup("call_g") == step and len(gemini_there.signatures) == 1


def test_the_extension_shares_the_router_providers_and_the_tool_loop_memory() -> None:
    from hub.app import create_app
    from hub.config import parse_config
    from hub.loop.plan import MEMORY_KEY
    from hub.shared.kinds import shared_extension
    from tests.support.servers import serve_app

    url = os.environ.get("TOOLHUB_TEST_REDIS_URL")
    if not url:
        missing_peer("set TOOLHUB_TEST_REDIS_URL=redis://127.0.0.1:6379/0 to run the Redis tests")
    models = [{"model_name": name, "litellm_params": {"model": model, "api_key": "sk-x"}}
              for name, model in (("a", "anthropic/claude-sonnet-4-5"), ("b", "anthropic/claude-haiku-4-5"),
                                  ("g", "gemini/gemini-3-flash-preview"), ("o", "openai/gpt-5-mini"))]  # fmt: skip
    config = parse_config({"model_list": models, "general_settings": {"redis_url": url}}, {})
    app = create_app(config, extensions=[shared_extension()])
    with serve_app(app):
        extras = app.state.hub.extras
        shared: SharedState = extras["shared"]
        assert sorted(m.namespace for m in shared.mirrors) == ["anthropic-thinking", "gemini-signatures", "hub-rounds"]
        assert isinstance(extras[MEMORY_KEY], RoundMemory)
