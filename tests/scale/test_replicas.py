"""Three `toolhub serve` replicas, one PostgreSQL schema and one Redis, behind Debian's haproxy (round robin, no
stickiness): every request recorded once, rate limits shared, a replica killed mid-burst loses and doubles nothing."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from tests.scale.support import (
    MASTER,
    burst,
    fake_upstream,
    haproxy,
    haproxy_binary,
    postgres_schema,
    redis_url,
    replicas,
    rows_per_request,
    serving,
    write_config,
)

_REQUESTS = re.compile(rb'^toolhub_requests_total\{model="bench",provider="openai",status="200"\} (\S+)$', re.M)


@dataclass
class Cluster:
    balancer: str
    replicas: list[str]
    procs: list[subprocess.Popen[bytes]]
    configs: list[Path]
    database_url: str


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    haproxy_binary()
    redis = redis_url()
    with fake_upstream() as upstream, postgres_schema() as database_url:
        configs = [
            write_config(
                tmp_path / f"replica{i}.yaml",
                upstream,
                database_url=database_url,
                redis=redis,
                spill=tmp_path / f"replica{i}" / "usage.spill.jsonl",
            )  # fmt: skip
            for i in range(3)
        ]
        with replicas(configs) as started, haproxy([url for url, _ in started], tmp_path) as balancer:
            yield Cluster(balancer, [u for u, _ in started], [p for _, p in started], configs, database_url)


def served(url: str) -> float:
    text = httpx2.get(f"{url}/metrics", headers={"authorization": f"Bearer {MASTER}"}).content
    match = _REQUESTS.search(text)
    return float(match[1]) if match else 0.0


def test_300_requests_through_the_balancer_are_each_recorded_once(cluster: Cluster) -> None:
    results = asyncio.run(burst(cluster.balancer, 300, 12))
    assert list(results.values()) == [200] * 300
    per_replica = [served(url) for url in cluster.replicas]
    assert sum(per_replica) == 300 and all(per_replica)  # round robin: every replica answered some
    for url in cluster.replicas:  # read your writes: each replica stores what it queued
        httpx2.get(f"{url}/spend/logs?limit=1", headers={"authorization": f"Bearer {MASTER}"}).raise_for_status()
    rows = rows_per_request(cluster.database_url)
    assert rows == dict.fromkeys(results, 1)


def test_a_keys_rpm_limit_holds_across_replicas(cluster: Cluster) -> None:
    created = httpx2.post(f"{cluster.replicas[0]}/key/generate", json={"rpm_limit": 25},
                          headers={"authorization": f"Bearer {MASTER}"})  # fmt: skip
    key = created.raise_for_status().json()["key"]
    results = asyncio.run(burst(cluster.balancer, 60, 6, key=key))
    statuses = sorted(results.values())
    assert statuses.count(200) == 25 and statuses.count(429) == 35


def test_kill_9_of_one_replica_mid_burst_loses_and_doubles_no_record(cluster: Cluster) -> None:
    victim = cluster.procs[0]

    def kill(answers: int) -> None:
        if answers >= 100 and victim.poll() is None:
            victim.send_signal(signal.SIGKILL)

    results = asyncio.run(burst(cluster.balancer, 400, 12, on_answer=kill))
    assert victim.wait(10) == -signal.SIGKILL
    answered = [rid for rid, status in results.items() if status == 200]
    assert len(answered) >= 300  # the others went on serving; haproxy retried refused connections elsewhere
    for url in cluster.replicas[1:]:
        httpx2.get(f"{url}/spend/logs?limit=1", headers={"authorization": f"Bearer {MASTER}"}).raise_for_status()
    with serving(cluster.configs[0]):  # the orchestrator restarts the replica; it replays its journal first
        pass
    rows = rows_per_request(cluster.database_url)
    assert {rid: rows[rid] for rid in answered} == dict.fromkeys(answered, 1)
    assert set(rows.values()) == {1}
