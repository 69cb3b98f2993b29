"""Cooldowns shared through Redis: a deployment one gateway process cooled is skipped by another."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from tests.e2e import router_support as support
from tests.e2e.router_support import Upstreams, answered_by, gateway
from tests.fakes.faults import OPENAI_500

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
        time.sleep(0.8)  # the second gateway reads shared cooldowns twice a second
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
        time.sleep(0.8)
        responses = [first.chat(g) for _ in range(4)]
    assert [answered_by(r)[1:3] for r in responses] == [(f"{up.b.url}/v1", "0")] * 4
    assert up.a.faults.calls == 2
