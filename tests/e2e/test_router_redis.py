"""Cooldowns shared through Redis: a deployment one gateway process cooled is skipped by another."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest
import yaml

from tests.e2e import router_support as support
from tests.e2e.conftest import MASTER_KEY
from tests.e2e.router_support import Upstreams, answered_by, gateway
from tests.fakes.faults import OPENAI_500
from tests.support.servers import toolhub_process

upstream_servers, up = support.upstream_servers, support.up
REDIS_URL = os.environ.get("TOOLHUB_TEST_REDIS_URL")
pytestmark = pytest.mark.skipif(REDIS_URL is None, reason="needs TOOLHUB_TEST_REDIS_URL")


def group_name() -> str:
    """A model group name of its own: deployment ids (the Redis keys) include it, so no test sees another's state."""
    return f"g-{uuid.uuid4().hex[:12]}"


def test_a_cooldown_is_shared_by_two_gateways_on_one_redis(up: Upstreams) -> None:
    up.a.faults.always = OPENAI_500
    g = group_name()
    models = [up.a.deployment(g), up.b.deployment(g)]
    settings = {"num_retries": 1, "allowed_fails": 0, "cooldown_time": 30}
    general = {"redis_url": REDIS_URL}
    with gateway(models, general, **settings) as first, gateway(models, general, **settings) as second:
        assert answered_by(first.chat(g))[2] == "1"  # tried the failing deployment, cooled it, retried on the other
        assert up.a.faults.calls == 1
        second.wait_cooling(f"{up.a.url}/v1")  # the second gateway reads shared cooldowns twice a second
        responses = [second.chat(g) for _ in range(4)]
    assert [answered_by(r)[1:3] for r in responses] == [(f"{up.b.url}/v1", "0")] * 4
    assert up.a.faults.calls == 1


def test_without_redis_each_gateway_keeps_its_own_cooldowns(up: Upstreams) -> None:
    up.a.faults.always = OPENAI_500
    g = group_name()
    models = [up.a.deployment(g), up.b.deployment(g)]
    settings = {"num_retries": 1, "allowed_fails": 0, "cooldown_time": 30}
    with gateway(models, **settings) as first, gateway(models, **settings) as second:
        first.chat(g)
        time.sleep(0.8)
        second.chat(g)  # round robin starts on the failing deployment: this process has not seen it fail
    assert up.a.faults.calls == 2


def test_failures_seen_by_two_gateways_add_up_to_allowed_fails(up: Upstreams) -> None:
    up.a.faults.always = OPENAI_500
    g = group_name()
    models = [up.a.deployment(g), up.b.deployment(g)]
    settings = {"num_retries": 1, "allowed_fails": 1, "cooldown_time": 30}
    general = {"redis_url": REDIS_URL}
    with gateway(models, general, **settings) as first, gateway(models, general, **settings) as second:
        first.chat(g)  # one failure on each gateway: together they exceed allowed_fails
        second.chat(g)
        first.wait_cooling(f"{up.a.url}/v1")
        responses = [first.chat(g) for _ in range(4)]
    assert [answered_by(r)[1:3] for r in responses] == [(f"{up.b.url}/v1", "0")] * 4
    assert up.a.faults.calls == 2


def wait_cooling(url: str, api_base: str) -> None:
    """Wait (at most 30 s) until the toolhub process at `url` reports the deployment at `api_base` cooling."""
    label = f'api_base="{api_base}"'
    deadline = time.monotonic() + 30
    while True:
        text = httpx2.get(f"{url}/metrics", headers={"Authorization": f"Bearer {MASTER_KEY}"}).text
        lines = [line for line in text.splitlines() if line.startswith("toolhub_deployment_cooling{") and label in line]
        if lines and all(line.endswith(" 1.0") for line in lines):
            return
        assert time.monotonic() < deadline, f"{url} never saw {api_base} cooling: {lines}"
        time.sleep(0.05)


def test_a_cooldown_is_shared_by_two_toolhub_processes(up: Upstreams, tmp_path: Path) -> None:
    up.a.faults.always = OPENAI_500
    g = group_name()
    paths = []
    for n in (1, 2):
        config = {"model_list": [up.a.deployment(g), up.b.deployment(g)],
                  "router_settings": {"num_retries": 1, "allowed_fails": 0, "cooldown_time": 30},
                  "general_settings": {"master_key": MASTER_KEY, "redis_url": REDIS_URL,
                                       "database_url": f"sqlite:///{tmp_path / f'hub{n}.db'}"}}  # fmt: skip
        paths.append(tmp_path / f"config{n}.yaml")
        paths[-1].write_text(yaml.safe_dump(config))
    auth = {"Authorization": f"Bearer {MASTER_KEY}"}
    body = {"model": g, "messages": [{"role": "user", "content": "hi"}]}
    with toolhub_process(paths[0]) as (first, _), toolhub_process(paths[1]) as (second, _):
        response = httpx2.post(f"{first}/v1/chat/completions", json=body, headers=auth, timeout=30)
        assert response.headers["x-litellm-attempted-retries"] == "1"
        wait_cooling(second, f"{up.a.url}/v1")
        retries = [
            httpx2.post(f"{second}/v1/chat/completions", json=body, headers=auth, timeout=30).headers[
                "x-litellm-attempted-retries"
            ]
            for _ in range(4)
        ]
    assert retries == ["0"] * 4
    assert up.a.faults.calls == 1


def test_litellms_router_redis_keys_share_cooldowns_too(up: Upstreams) -> None:
    up.a.faults.always = OPENAI_500
    g = group_name()
    parts = urlsplit(REDIS_URL or "")
    models = [up.a.deployment(g), up.b.deployment(g)]
    settings = {"num_retries": 1, "allowed_fails": 0, "cooldown_time": 30, "redis_host": parts.hostname,
                "redis_port": parts.port or 6379}  # fmt: skip
    with gateway(models, **settings) as first, gateway(models, **settings) as second:
        assert answered_by(first.chat(g))[2] == "1"
        second.wait_cooling(f"{up.a.url}/v1")
        responses = [second.chat(g) for _ in range(4)]
    assert [answered_by(r)[1:3] for r in responses] == [(f"{up.b.url}/v1", "0")] * 4
    assert up.a.faults.calls == 1
