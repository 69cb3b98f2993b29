"""The admin API under concurrency, over real loopback, on SQLite and PostgreSQL: every write lands, none is a 5xx."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx2

from tests.keys.conftest import COST, sdk

USER = [{"role": "user", "content": "hi"}]


def test_forty_concurrent_generates_each_store_their_key(admin: httpx2.Client) -> None:
    def create(i: int) -> httpx2.Response:
        return admin.post("/key/generate", json={"key_alias": f"k{i}", "max_budget": i, "metadata": {"i": i}})

    with ThreadPoolExecutor(40) as pool:
        responses = list(pool.map(create, range(40)))
    assert Counter(r.status_code for r in responses) == Counter({200: 40})
    listed = admin.get("/key/list", params={"return_full_object": "true", "size": 100}).json()
    stored = {k["key_alias"]: (k["max_budget"], k["metadata"], k["token"]) for k in listed["keys"]}
    assert stored == {f"k{i}": (i, {"i": i}, responses[i].json()["token"]) for i in range(40)}


def test_key_updates_during_traffic_all_land(admin: httpx2.Client, gateway_url: str) -> None:
    keys = [admin.post("/key/generate", json={"key_alias": f"t{i}"}).json()["key"] for i in range(6)]

    def update_ten_times(key: str) -> list[int]:
        body = {"key": key, "max_budget": 1e6, "rpm_limit": 10_000}
        return [admin.post("/key/update", json={**body, "metadata": {"n": n}}).status_code for n in range(10)]

    def chat(key: str) -> int:
        with sdk(gateway_url, key) as client:
            return client.chat.completions.with_raw_response.create(model="text", messages=USER).status_code

    def read_spend(_: int) -> int:  # each read flushes the usage queue: more writes racing with the updates
        return admin.get("/spend/logs").status_code

    with ThreadPoolExecutor(24) as pool:
        chats = pool.map(chat, keys * 10)
        updates = pool.map(update_ten_times, keys)
        reads = pool.map(read_spend, range(12))
        statuses = Counter([*chats, *(s for batch in updates for s in batch), *reads])
    assert statuses == Counter({200: 60 + 60 + 12})
    for key in keys:
        info = admin.get("/key/info", params={"key": key}).json()["info"]
        assert (info["metadata"], info["max_budget"], info["rpm_limit"], info["spend"]) == ({"n": 9}, 1e6, 10_000,
                                                                                             10 * COST)  # fmt: skip
    assert admin.get("/spend/logs", params={"page_size": 1000}).json()["total"] == 60
