"""Under concurrent traffic: budgets are passed by one request at most, rate limits admit exactly their
limit (one process, and two processes sharing Redis), usage survives a database outage, and /metrics parses."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Route

from hub.accounts import keys_api, spend_api
from hub.accounts.accounting import accounting_extension
from hub.app import create_app
from hub.config import Config, parse_config
from hub.metrics import metrics_endpoint
from hub.storage import Store, open_store
from tests.keys.conftest import COST, MASTER_KEY, config_dict, gateway, gateway_processes, sdk
from tests.storage.test_writer import FlakyStore
from tests.support.peers import missing_peer
from tests.support.servers import serve_app

USER = [{"role": "user", "content": "hi"}]


def generate(admin: httpx2.Client, **body: object) -> str:
    response = admin.post("/key/generate", json=body)
    assert response.status_code == 200, response.text
    return response.json()["key"]


def outcome(call: Callable[[], Any]) -> str:
    try:
        call()
    except openai.APIStatusError as exc:
        assert exc.status_code == 429
        if exc.code != "budget_exceeded":  # a budget without budget_duration never resets: no retry-after
            assert exc.response.headers["retry-after"].isdigit()
        return str(exc.code)
    return "ok"


def run_parallel(calls: Sequence[Callable[[], Any]], workers: int) -> Counter[str]:
    with ThreadPoolExecutor(workers) as pool:
        return Counter(pool.map(outcome, calls))


def spend_total(admin: httpx2.Client, key: str) -> tuple[int, float]:
    logs = admin.get("/spend/logs", params={"api_key": key, "page_size": 1000}).json()
    return logs["total"], sum(row["spend"] for row in logs["data"] if row["status"] == "success")


def test_concurrent_requests_pass_a_budget_by_one_request_at_most(admin: httpx2.Client, gateway_url: str) -> None:
    key = generate(admin, max_budget=50.0)  # 4 requests of 13 reach it; the 5th is refused
    with sdk(gateway_url, key) as client:
        calls = [lambda: client.chat.completions.create(model="text", messages=USER)] * 30
        outcomes = run_parallel(calls, 4)
    # without max_tokens a request may cost 16,384 output tokens at $1: more than the budget, so each runs alone
    assert outcomes["ok"] == 4
    assert outcomes["budget_exceeded"] + outcomes["budget_reserved"] == 26
    assert spend_total(admin, key) == (4, 4 * COST)
    assert admin.get("/key/info", params={"key": key}).json()["info"]["spend"] == 4 * COST


def test_a_key_rpm_limit_admits_exactly_the_limit_under_concurrency(admin: httpx2.Client, gateway_url: str) -> None:
    key = generate(admin, rpm_limit=5, key_alias="five")
    with sdk(gateway_url, key) as client:
        outcomes = run_parallel([lambda: client.chat.completions.create(model="text", messages=USER)] * 16, 16)
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model="text", messages=USER)
    assert outcomes == Counter({"ok": 5, "rpm_limit_exceeded": 11})
    assert "key 'five'" in refused.value.message and "rpm_limit" in refused.value.message
    assert spend_total(admin, key) == (5, 5 * COST)


def test_a_key_tpm_limit_refuses_once_its_tokens_are_used(admin: httpx2.Client, gateway_url: str) -> None:
    key = generate(admin, tpm_limit=40)  # 19 tokens per request: the third request sees 38, the fourth 57
    with sdk(gateway_url, key) as client:
        outcomes = [outcome(lambda: client.chat.completions.create(model="text", messages=USER)) for _ in range(5)]
    assert outcomes == ["ok", "ok", "ok", "tpm_limit_exceeded", "tpm_limit_exceeded"]


def test_a_deployment_rpm_limit_applies_to_every_caller(admin: httpx2.Client, gateway_url: str) -> None:
    key = generate(admin)
    with sdk(gateway_url, key) as client, sdk(gateway_url, MASTER_KEY) as master:
        calls = [lambda c=c: c.chat.completions.create(model="limited", messages=USER) for c in (client, master) * 5]
        outcomes = run_parallel(calls, 10)
    assert outcomes == Counter({"ok": 3, "rpm_limit_exceeded": 7})


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_two_gateways_sharing_redis_share_a_key_rate_limit(upstream: str, database_url: str) -> None:
    redis_url = os.environ.get("TOOLHUB_TEST_REDIS_URL")
    if not redis_url:
        missing_peer("set TOOLHUB_TEST_REDIS_URL=redis://127.0.0.1:6379/0 to run the Redis tests")
    with gateway(upstream, database_url, redis_url=redis_url) as one, gateway(upstream, database_url,
                                                                             redis_url=redis_url) as two:  # fmt: skip
        with httpx2.Client(base_url=one, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
            key = generate(admin, rpm_limit=6)
        with sdk(one, key) as a, sdk(two, key) as b:
            calls = [lambda c=c: c.chat.completions.create(model="text", messages=USER) for c in (a, b) * 10]
            outcomes = run_parallel(calls, 20)
    assert outcomes == Counter({"ok": 6, "rpm_limit_exceeded": 14})


def test_metrics_are_scraped_and_parsed(admin: httpx2.Client, gateway_url: str) -> None:
    key = generate(admin, rpm_limit=2)
    with sdk(gateway_url, key) as client:
        outcomes = [outcome(lambda: client.chat.completions.create(model="text", messages=USER)) for _ in range(3)]
    assert outcomes == ["ok", "ok", "rpm_limit_exceeded"]
    assert httpx2.get(f"{gateway_url}/metrics", headers={"authorization": f"Bearer {key}"}).status_code == 403
    response = admin.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(response.text) for s in family.samples}  # fmt: skip
    text = (("model", "text"),)
    assert samples[("toolhub_requests_total", (("model", "text"), ("provider", "openai"), ("status", "200")))] == 2
    assert samples[("toolhub_tokens_total", (("kind", "prompt"), ("model", "text")))] == 24
    assert samples[("toolhub_tokens_total", (("kind", "cached"), ("model", "text")))] == 4
    assert samples[("toolhub_spend_usd_total", text)] == 2 * COST
    assert samples[("toolhub_request_duration_seconds_count", text)] == 2
    assert samples[("toolhub_gateway_overhead_seconds_count", ())] == 2
    assert samples[("toolhub_upstream_up", (("model", "text"), ("provider", "openai")))] == 1
    assert samples[("toolhub_rejected_requests_total", (("reason", "rpm_limit_exceeded"),))] == 1
    assert samples[("toolhub_usage_spilled_records", ())] == 0


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
def test_usage_survives_a_database_outage_during_traffic(upstream: str, database_url: str, tmp_path: Path) -> None:
    stores: list[FlakyStore] = []

    def flaky(config: Config) -> Store:
        stores.append(FlakyStore(open_store(config.database_url)))
        return stores[-1]  # pyright: ignore[reportReturnType]

    spill = tmp_path / "spill.jsonl"

    def replaying() -> bool:  # a replay attempt renames the spill file `spill.jsonl.<process>.replay` (writer._replay)
        return any(tmp_path.glob("spill.jsonl.*replay"))

    config = parse_config(config_dict(upstream, database_url, usage_spill_path=str(spill)), {})
    routes = [*keys_api.ROUTES, *spend_api.ROUTES, Route("/metrics", metrics_endpoint, methods=["GET"])]
    app = create_app(config, extensions=[accounting_extension(store_factory=flaky)], routes=routes)
    with serve_app(app) as url, httpx2.Client(base_url=url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
        key = generate(admin)
        with sdk(url, key) as client:
            send = [lambda: client.chat.completions.create(model="text", messages=USER)] * 10
            assert run_parallel(send, 5) == Counter({"ok": 10})
            stores[0].down = True
            assert run_parallel(send * 3, 5) == Counter({"ok": 30})  # known keys keep working from the cache
            for _ in range(3):  # each read flushes first: the writes fail, then the records are spilled to the file
                assert admin.get("/spend/logs", params={"api_key": key}).json()["total"] <= 10
            # spilled: still in the spill file, or already renamed by a replay attempt (which fails while down)
            assert spill.exists() or replaying()
            stores[0].down = False
            assert run_parallel(send, 5) == Counter({"ok": 10})
        assert spend_total(admin, key) == (50, 50 * COST)
        assert stores[0].failed_writes >= 3 and not spill.exists() and not replaying()


def test_two_processes_on_one_database_share_a_budget(upstream: str, database_url: str) -> None:
    with (
        gateway_processes(upstream, database_url, 2, key_cache_seconds=0) as (one, two),
        httpx2.Client(base_url=one, headers={"authorization": f"Bearer {MASTER_KEY}"}, timeout=20) as admin_one,
        httpx2.Client(base_url=two, headers={"authorization": f"Bearer {MASTER_KEY}"}, timeout=20) as admin_two,
    ):
        key = generate(admin_one, max_budget=3 * COST)
        with sdk(two, key) as second, sdk(one, key) as first:
            assert outcome(lambda: second.chat.completions.create(model="text", messages=USER)) == "ok"
            admin_two.get("/spend/logs")  # the second process writes what it has queued
            assert [outcome(lambda: first.chat.completions.create(model="text", messages=USER)) for _ in range(3)] == [
                "ok", "ok", "budget_exceeded"]  # fmt: skip
            admin_one.get("/spend/logs")
            # the second process had seen one request's spend; it catches up with the other process's two
            assert outcome(lambda: second.chat.completions.create(model="text", messages=USER)) == "budget_exceeded"
