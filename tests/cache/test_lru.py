"""`providers._cache.TTLCache`, the one LRU/TTL map behind the providers' thinking and signature memories and the
hub's local cache store."""

from __future__ import annotations

from providers._cache import TTLCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_least_recently_used_entry_goes_first_when_it_is_full() -> None:
    cache: TTLCache[int] = TTLCache(max_items=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # `a` is now the most recently used
    cache.put("c", 3)
    assert [cache.get(k) for k in "abc"] == [1, None, 3]


def test_entries_expire_after_the_caches_ttl_or_their_own() -> None:
    clock = Clock()
    cache: TTLCache[str] = TTLCache(ttl=10, clock=clock)
    cache.put("default", "d")
    cache.put("short", "s", ttl=1)
    clock.now += 1
    assert (cache.get("default"), cache.get("short")) == ("d", None)
    clock.now += 9
    assert cache.get("default") is None and len(cache) == 0


def test_sizes_bound_the_bytes_held_and_an_entry_too_large_alone_is_not_kept() -> None:
    cache: TTLCache[bytes] = TTLCache(max_items=100, max_bytes=250)
    for i in range(10):
        cache.put(f"k{i}", b"x" * 100, size=100)
        assert cache.bytes_used <= 250
    assert len(cache) == 2 and cache.get("k9") is not None and cache.get("k7") is None
    cache.put("huge", b"x" * 300, size=300)
    assert cache.get("huge") is None and cache.bytes_used == 200


def test_replacing_an_entry_frees_its_old_size_and_clear_frees_everything() -> None:
    cache: TTLCache[bytes] = TTLCache(max_bytes=1_000)
    cache.put("k", b"old", size=300)
    cache.put("k", b"new", size=10)
    assert (cache.get("k"), cache.bytes_used) == (b"new", 10)
    cache.put("gone", b"-", ttl=0)
    assert cache.get("gone") is None
    cache.clear()
    assert (len(cache), cache.bytes_used) == (0, 0)
