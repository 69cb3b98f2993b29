"""The local LRU store: bounds by entries and bytes, TTL; and the per-request controls."""

from __future__ import annotations

import pytest

from hub.cache.controls import Controls, parse_controls
from hub.cache.store import LocalStore
from hub.errors import BadRequest


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.anyio
async def test_the_least_recently_used_entry_goes_first_when_entries_are_full() -> None:
    store = LocalStore(max_entries=2, max_bytes=10_000)
    await store.set("a", b"1", 60)
    await store.set("b", b"2", 60)
    assert await store.get("a") == b"1"  # `a` is now the most recently used
    await store.set("c", b"3", 60)
    assert [await store.get(k) for k in "abc"] == [b"1", None, b"3"]


@pytest.mark.anyio
async def test_bytes_stay_within_the_bound_under_a_stream_of_distinct_entries() -> None:
    store = LocalStore(max_entries=1_000, max_bytes=2_000)
    for i in range(200):
        await store.set(f"key-{i}", b"x" * 90, 60)
        assert store.bytes_used <= 2_000
    assert len(store) == 2_000 // (len("key-199") + 90)
    assert await store.get("key-199") is not None and await store.get("key-0") is None


@pytest.mark.anyio
async def test_an_entry_larger_than_the_bound_is_not_kept() -> None:
    store = LocalStore(max_entries=10, max_bytes=1_024)
    await store.set("big", b"x" * 2_000, 60)
    assert await store.get("big") is None and store.bytes_used == 0


@pytest.mark.anyio
async def test_an_entry_expires_after_its_ttl_and_frees_its_bytes() -> None:
    clock = Clock()
    store = LocalStore(max_entries=10, max_bytes=10_000, clock=clock)
    await store.set("k", b"v", 5)
    clock.now += 4.9
    assert await store.get("k") == b"v"
    clock.now += 0.2
    assert await store.get("k") is None
    assert store.bytes_used == 0


def test_controls_are_read_from_the_cache_object() -> None:
    assert parse_controls(None) == Controls()
    value = {"no-cache": True, "no-store": False, "ttl": 5, "s-maxage": 1.5, "namespace": "t"}
    assert parse_controls(value) == Controls(no_cache=True, ttl=5, s_maxage=1.5, namespace="t")


@pytest.mark.parametrize(
    "value",
    [
        "yes", {"no-cache": "yes"}, {"ttl": -1}, {"ttl": True}, {"s-maxage": "5"}, {"namespace": ""}, {"nocache": True},
        {"namespace": "qa\U0001f389"}, {"namespace": "qa\nX-Evil: 1"}, {"namespace": "two words"}, {"namespace": 5},
    ],
)  # fmt: skip
def test_bad_controls_are_a_400_naming_the_cache_parameter(value: object) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_controls(value)
    assert (caught.value.status_code, caught.value.param, caught.value.code) == (400, "cache", "invalid_cache_control")


def test_a_ttl_past_the_limit_is_refused_naming_the_limit() -> None:
    assert parse_controls({"ttl": 999_999_999.5}).ttl == 999_999_999.5
    with pytest.raises(BadRequest) as caught:
        parse_controls({"ttl": 2e9})
    assert caught.value.message == "'cache.ttl' must be a number of seconds from 0 to less than 1,000,000,000"
