"""What the cache shares besides the body says: a tool loop's answer only with the same key and tools; never a
fallback's answer, a loop cut at its round limit or one with a failed tool call; hub rounds travel with the entry;
identical requests keep joining the first until its answer is stored."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from hub.accounts.usage import UsageRecord
from hub.cache.service import ResponseCache
from hub.cache.store import LocalStore, RedisStore, Store
from hub.config import CacheSettings, ModelRoute, parse_config
from hub.loop.memory import RoundMemory, hub_rounds
from hub.loop.plan import LoopPlan

pytestmark = pytest.mark.anyio
BODY = {"model": "m", "messages": [{"role": "user", "content": "what is in the database?"}]}
ANSWER = {"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "two tables"}}]}


@dataclass(frozen=True)
class Tool:
    name: str
    server: str = "db"
    original_name: str = ""
    description: str | None = None
    input_schema: Mapping[str, Any] = field(default_factory=dict[str, Any])


def route() -> ModelRoute:
    model = {"model_name": "m", "cache_tool_loops": True,
             "litellm_params": {"model": "openai/m", "api_base": "http://x/v1"}}  # fmt: skip
    return parse_config({"model_list": [model], "litellm_settings": {"cache": True}}, {}).models["m"][0]


def plan(owner: str, *tools: str, memory: RoundMemory | None = None) -> LoopPlan:
    return LoopPlan(client_tools=[], hub_tools={name: Tool(name) for name in tools}, owner=owner, memory=memory)


def service(store: Store | None = None) -> ResponseCache:
    return ResponseCache(CacheSettings(), LocalStore(100, 1_000_000) if store is None else store)


def record(**fields: Any) -> UsageRecord:
    return UsageRecord("r", None, "m", "m", "openai", status_code=200, stream=False, latency_ms=1.0, **fields)


def key(cache: ResponseCache, loop: LoopPlan | None) -> str:
    lookup = cache.begin(dict(BODY), route(), loop)
    assert lookup is not None
    return lookup.key


def test_a_tool_loops_key_holds_its_owner_and_the_tools_it_may_run() -> None:
    cache = service()
    both = key(cache, plan("k1", "db__list_tables", "db__describe_table"))
    assert key(cache, plan("k1", "db__describe_table", "db__list_tables")) == both
    assert key(cache, plan("k1", "db__list_tables")) != both  # the same key, once narrowed
    assert key(cache, plan("k2", "db__list_tables", "db__describe_table")) != both  # another key, same tools
    assert key(cache, None) not in (both, key(cache, plan("", "db__list_tables", "db__describe_table")))


async def test_an_identical_loop_in_flight_for_another_scope_is_not_waited_for() -> None:
    cache = service()
    master = cache.begin(dict(BODY), route(), plan("master", "db__list_tables", "db__describe_table"))
    scoped = cache.begin(dict(BODY), route(), plan("k1", "db__list_tables"))
    same = cache.begin(dict(BODY), route(), plan("master", "db__list_tables", "db__describe_table"))
    assert master is not None and scoped is not None and same is not None
    assert cache.follow(master, stream=False) is None
    assert cache.follow(scoped, stream=False) is None  # it leads its own call
    assert cache.follow(same, stream=False) is not None
    master.release(None)
    scoped.release(None)


@pytest.mark.parametrize(
    "router", [{"fallbacks": 1, "answered_group": "small"}, {"fallbacks": 1}, {"answered_group": "small"}]
)
async def test_an_answer_a_fallback_gave_is_neither_stored_nor_handed_to_waiters(router: dict[str, Any]) -> None:
    cache = service()
    leader = cache.begin(dict(BODY), route(), None, record(**router))
    waiter = cache.begin(dict(BODY), route(), None, record())
    assert leader is not None and waiter is not None
    cache.follow(leader, stream=False)
    followed = cache.follow(waiter, stream=False)
    assert followed is not None
    waiting = asyncio.ensure_future(cache.wait(followed))
    await leader.save(ANSWER)
    assert await waiting is None  # it goes upstream itself
    assert await cache.find(waiter) is None
    own = cache.begin(dict(BODY), route(), None, record(retries=2))  # retries stay in the alias's own group
    assert own is not None
    await own.save(ANSWER)
    assert await cache.find(own) is not None


def loop_answer(**loop: Any) -> dict[str, Any]:
    return {**ANSWER, "toolhub": {"rounds": 2, "tool_calls": [], **loop}}


def run(name: str, *, is_error: bool) -> dict[str, Any]:
    return {"round": 1, "id": "c1", "name": name, "server": "db", "arguments": "{}", "is_error": is_error}


@pytest.mark.parametrize(
    ("answer", "stored"),
    [
        (loop_answer(stopped="max_tool_rounds"), False),
        (loop_answer(tool_calls=[run("db__list_tables", is_error=False), run("db__x", is_error=True)]), False),
        (loop_answer(tool_calls=[run("db__list_tables", is_error=False)]), True),
    ],
)
async def test_a_loop_cut_at_its_round_limit_or_with_a_failed_tool_call_is_not_stored(
    answer: dict[str, Any], stored: bool
) -> None:
    cache = service()
    leader = cache.begin(dict(BODY), route(), plan("k1", "db__list_tables"), record())
    waiter = cache.begin(dict(BODY), route(), plan("k1", "db__list_tables"), record())
    assert leader is not None and waiter is not None
    cache.follow(leader, stream=False)
    followed = cache.follow(waiter, stream=False)
    assert followed is not None
    waiting = asyncio.ensure_future(cache.wait(followed))
    await leader.save(answer)
    assert (await waiting is not None, await cache.find(leader) is not None) == (stored, stored)


CLIENT_CALL = {"id": "call_9", "type": "function", "function": {"name": "show_chart", "arguments": "{}"}}
HUB_CALL = {"id": "call_1", "type": "function", "function": {"name": "db__list_tables", "arguments": "{}"}}
HUB_ROUNDS = (
    {"role": "assistant", "content": None, "tool_calls": [HUB_CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": '{"tables": ["users"]}'},
)


async def test_the_hub_rounds_before_client_calls_are_restored_by_a_hit_in_another_process() -> None:
    shared = LocalStore(100, 1_000_000)  # stands for the Redis both processes use
    here, there = RoundMemory(), RoundMemory()
    answer = {**ANSWER, "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Looking.\n\nCharting.", "tool_calls": [CLIENT_CALL]}}]}  # fmt: skip
    here.remember(["call_9"], hub_rounds("k1", HUB_ROUNDS, "Looking.\n\nCharting.", "Charting."))
    miss = service(shared).begin(dict(BODY), route(), plan("k1", "db__list_tables", memory=here), record())
    assert miss is not None
    await miss.save(answer)
    other = service(shared)
    hit = other.begin(dict(BODY), route(), plan("k1", "db__list_tables", memory=there), record())
    assert hit is not None
    found = await other.find(hit)
    assert found is not None and orjson.loads(found) == answer  # the client gets the answer only
    next_turn = [{"role": "user", "content": "chart it"}, answer["choices"][0]["message"]]
    assert there.restore(next_turn, "k1") == here.restore(next_turn, "k1")
    assert there.restore(next_turn, "k1")[1:3] == list(HUB_ROUNDS)


class SlowRedis:
    """A Redis whose SET waits until `done` is set."""

    def __init__(self) -> None:
        self.entered, self.done = asyncio.Event(), asyncio.Event()
        self.data: dict[str, bytes] = {}

    async def set(self, key: str, value: bytes, px: int) -> None:
        self.entered.set()
        await self.done.wait()
        self.data[key] = value


async def test_an_identical_request_arriving_while_redis_stores_the_answer_waits_for_it() -> None:
    redis = SlowRedis()
    cache = service(RedisStore(redis, 100, 1_000_000))
    leader, waiter = cache.begin(dict(BODY), route(), None), cache.begin(dict(BODY), route(), None)
    assert leader is not None and waiter is not None
    cache.follow(leader, stream=False)
    followed = cache.follow(waiter, stream=False)
    assert followed is not None
    saving = asyncio.ensure_future(leader.save(ANSWER))
    await redis.entered.wait()
    late = cache.begin(dict(BODY), route(), None)
    assert late is not None
    joined = cache.follow(late, stream=False)  # no upstream call of its own
    assert joined is not None
    redis.done.set()
    await saving
    assert (await cache.wait(followed), await cache.wait(joined)) == (ANSWER, ANSWER)
    assert list(redis.data) == [leader.key] and cache.inflight == {}
