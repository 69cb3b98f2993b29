"""Picking a deployment: strategies, order, weights, and cooldown counting (in memory, fake clock)."""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

from hub.config import parse_config
from hub.router.classify import MAX_RETRY_AFTER
from hub.router.config import RouterPolicy, Strategy
from hub.router.cooldown import Cooldowns
from hub.router.groups import Group, Slot
from hub.router.router import Router
from providers._http import HttpPool


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def group(*params: dict[str, Any], strategy: Strategy = "simple-shuffle", seed: int = 7) -> Group:
    raw = {"model_list": [{"model_name": "g", "litellm_params": {"model": "openai/m", "api_base": f"http://d{i}/v1",
                                                                 **p}} for i, p in enumerate(params)]}  # fmt: skip
    router = Router(parse_config(raw, {}).models, HttpPool(), RouterPolicy(strategy=strategy), rng=random.Random(seed))
    return router.groups["g"]


def bases(slots: list[Slot | None]) -> list[str]:
    return [s.route.deployment.api_base if s else "-" for s in slots]


def test_weights_split_requests_within_tolerance() -> None:
    g = group({"weight": 9}, {"weight": 1})
    picks = Counter(bases([g.pick(Cooldowns(RouterPolicy())) for _ in range(1000)]))
    assert 850 <= picks["http://d0/v1"] <= 950


def test_rpm_weights_when_no_weight_is_set() -> None:
    g = group({"rpm": 100}, {"rpm": 300})
    picks = Counter(bases([g.pick(Cooldowns(RouterPolicy())) for _ in range(1000)]))
    assert 690 <= picks["http://d1/v1"] <= 810


def test_a_higher_order_serves_only_while_every_lower_one_is_cooling() -> None:
    clock = Clock()
    cooldowns = Cooldowns(RouterPolicy(cooldown_time=5), clock)
    g = group({"order": 2}, {"order": 1}, {"order": 1})
    assert set(bases([g.pick(cooldowns) for _ in range(4)])) == {"http://d1/v1", "http://d2/v1"}
    cooldowns.cool(g.slots[1].id, clock.now + 5)
    assert bases([g.pick(cooldowns) for _ in range(2)]) == ["http://d2/v1"] * 2
    cooldowns.cool(g.slots[2].id, clock.now + 5)
    assert bases([g.pick(cooldowns)]) == ["http://d0/v1"]
    clock.now += 5
    assert set(bases([g.pick(cooldowns) for _ in range(4)])) == {"http://d1/v1", "http://d2/v1"}


def test_every_deployment_cooling_picks_none() -> None:
    clock = Clock()
    cooldowns = Cooldowns(RouterPolicy(), clock)
    g = group({}, {})
    for slot in g.slots:
        cooldowns.cool(slot.id, clock.now + 3)
    assert g.pick(cooldowns) is None
    assert cooldowns.remaining(s.id for s in g.slots) == 3


def test_least_busy_picks_the_deployment_with_fewest_requests_in_flight() -> None:
    g = group({}, {}, {}, strategy="least-busy")
    g.slots[0].inflight, g.slots[1].inflight, g.slots[2].inflight = 3, 1, 2
    assert bases([g.pick(Cooldowns(RouterPolicy())) for _ in range(3)]) == ["http://d1/v1"] * 3


def test_latency_based_tries_each_once_then_the_fastest() -> None:
    g = group({}, {}, strategy="latency-based-routing")
    cooldowns = Cooldowns(RouterPolicy())
    first = g.pick(cooldowns)
    assert first is not None
    first.observe(0.5)
    second = g.pick(cooldowns)
    assert second is not None and second is not first
    second.observe(0.1)
    assert bases([g.pick(cooldowns) for _ in range(3)]) == [second.route.deployment.api_base] * 3


def test_usage_based_prefers_deployments_under_their_limits_and_with_fewer_tokens() -> None:
    g = group({"tpm": 1000}, {"tpm": 1000}, strategy="usage-based-routing-v2")
    cooldowns = Cooldowns(RouterPolicy())
    g.slots[0].count(900, requests=1)
    assert bases([g.pick(cooldowns) for _ in range(2)]) == ["http://d1/v1"] * 2
    g.slots[1].count(1200, requests=1)  # over its tpm: the other one, though it used tokens too
    assert bases([g.pick(cooldowns)]) == ["http://d0/v1"]


def test_a_deployment_cools_once_its_failures_in_a_minute_exceed_allowed_fails() -> None:
    clock = Clock()
    cooldowns = Cooldowns(RouterPolicy(allowed_fails=2, cooldown_time=10), clock)
    assert [cooldowns.failed("d", "server") for _ in range(3)] == [0.0, 0.0, 10]
    assert cooldowns.cooling("d", clock.now)
    clock.now += 10
    assert not cooldowns.cooling("d", clock.now)


def test_failures_older_than_a_minute_do_not_count() -> None:
    clock = Clock()
    cooldowns = Cooldowns(RouterPolicy(allowed_fails=1), clock)
    cooldowns.failed("d", "server")
    clock.now += 61
    assert cooldowns.failed("d", "server") == 0.0
    assert cooldowns.failures("d") == 1


def test_a_refused_connection_or_timeout_cools_at_once_and_a_429_for_its_retry_after() -> None:
    clock = Clock()
    cooldowns = Cooldowns(RouterPolicy(allowed_fails=3, cooldown_time=5), clock)
    assert cooldowns.failed("refused", "server", immediate=True) == 5
    assert cooldowns.failed("limited", "rate_limit", retry_after=2.0) == 2.0
    assert cooldowns.failed("limited-no-header", "rate_limit") == 5


def test_a_cooldown_from_retry_after_is_capped_at_max_retry_after_or_cooldown_time() -> None:
    clock = Clock()
    cooldowns = Cooldowns(RouterPolicy(cooldown_time=5), clock)
    assert cooldowns.failed("huge", "rate_limit", retry_after=99999999999.0) == MAX_RETRY_AFTER
    assert cooldowns.failed("inf", "rate_limit", retry_after=math.inf) == MAX_RETRY_AFTER
    assert cooldowns.remaining(["huge", "inf"]) == MAX_RETRY_AFTER
    assert Cooldowns(RouterPolicy(cooldown_time=300), clock).failed("d", "server", retry_after=math.inf) == 300


def test_allowed_fails_policy_counts_per_error_kind() -> None:
    clock = Clock()
    policy = RouterPolicy(allowed_fails=0, allowed_fails_by_kind={"timeout": 2}, cooldown_time=5)
    cooldowns = Cooldowns(policy, clock)
    assert [cooldowns.failed("d", "timeout", immediate=True) for _ in range(3)] == [0.0, 0.0, 5]
