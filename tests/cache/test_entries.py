"""What a shared store's value must be to be served: every entry the cache writes passes, anything else is refused."""

from __future__ import annotations

from typing import Any

import pytest

from hub.cache.entries import readable
from hub.cache.service import ResponseCache
from hub.cache.store import LocalStore
from hub.config import CacheSettings, parse_config

ANSWER = {"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "logprobs": None}]}
VECTORS = {"data": [{"object": "embedding", "index": 0, "embedding": [0.5]}], "usage": {"prompt_tokens": 2}}


def route() -> Any:
    model = {"model_name": "m", "litellm_params": {"model": "openai/m", "api_base": "http://x/v1"}}
    return parse_config({"model_list": [model], "litellm_settings": {"cache": True}}, {}).models["m"][0]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "answer"),
    [
        ({"model": "m", "messages": [{"role": "user", "content": "hi"}]}, ANSWER),
        ({"endpoint": "embeddings", "model": "m", "input": ["hi"]}, VECTORS),
    ],
)
async def test_what_the_cache_stores_is_readable_for_its_own_kind_only(body: dict[str, Any], answer: Any) -> None:
    store = LocalStore(10, 100_000)
    cache = ResponseCache(CacheSettings(), store)
    lookup = cache.begin(body, route())
    assert lookup is not None
    await lookup.save(answer)
    entry = store.local.get(lookup.key)
    assert entry is not None and lookup.readable(entry)
    other = "data" if lookup.field == "choices" else "choices"
    assert not readable(entry, other)


def test_a_tool_loops_entry_with_its_hub_rounds_is_readable() -> None:
    rounds = b'{"ids": ["call_1"], "messages": [], "shown": null, "own": "x"}'
    assert readable(b'1.5\n{"choices": [{"index": 0}]}\n' + rounds, "choices")
    assert not readable(b'1.5\n{"choices": [{"index": 0}]}\n{"ids": ["call_1"]}', "choices")
