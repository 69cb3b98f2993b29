"""Router keys from a LiteLLM config: retries, cooldowns, strategies and fallback chains."""

from __future__ import annotations

from typing import Any

import pytest

from hub.config import ConfigError, parse_config
from hub.router.config import RouterPolicy


def entry(name: str, **params: Any) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": f"openai/{name}", "api_base": "http://x/v1", **params}}


def config(router: dict[str, Any] | None = None, litellm: dict[str, Any] | None = None, **general: Any) -> Any:
    raw = {"model_list": [entry("a"), entry("b"), entry("c")], "router_settings": router or {},
           "litellm_settings": litellm or {}, "general_settings": general}  # fmt: skip
    return parse_config(raw, {})


def test_router_keys_are_read_from_both_sections_router_settings_first() -> None:
    c = config(
        {"num_retries": 2, "fallbacks": [{"a": ["b", "c"]}], "routing_strategy": "least-busy"},
        {"num_retries": 5, "allowed_fails": 1, "cooldown_time": 30, "context_window_fallbacks": [{"a": ["c"]}],
         "retry_policy": {"RateLimitErrorRetries": 4, "BadRequestErrorRetries": 3}},
        background_health_checks=True, health_check_interval=60,
    )  # fmt: skip
    assert c.router == RouterPolicy(
        num_retries=2,
        retries_by_kind={"rate_limit": 4},
        allowed_fails=1,
        cooldown_time=30,
        strategy="least-busy",
        fallbacks={"a": ("b", "c")},
        context_window_fallbacks={"a": ("c",)},
        background_health_checks=True,
        health_check_interval=60,
    )
    assert c.ignored == ()


def test_retries_by_error_kind_never_retry_client_errors() -> None:
    policy = RouterPolicy(num_retries=2, retries_by_kind={"rate_limit": 4})
    assert [policy.retries(k) for k in ("server", "rate_limit", "timeout", "client", "context_window")] == [
        2,
        4,
        2,
        0,
        0,
    ]
    assert policy.retries("content_policy") == 0
    assert policy.retries("server", requested=1) == 1
    assert policy.retries("client", requested=3) == 0


def test_model_group_retry_policy_overrides_the_retry_policy_for_its_group_only() -> None:
    c = config(
        {"num_retries": 1, "retry_policy": {"RateLimitErrorRetries": 4},
         "model_group_retry_policy": {"a": {"RateLimitErrorRetries": 0, "InternalServerErrorRetries": 3}}}
    )  # fmt: skip
    policy = c.router
    assert [policy.retries("rate_limit", group=g) for g in ("a", "b", None)] == [0, 4, 4]
    assert [policy.retries("server", group=g) for g in ("a", "b")] == [3, 1]
    assert policy.retries("client", group="a") == 0
    assert not any("model_group_retry_policy" in line for line in c.ignored)


def test_the_chain_depends_on_the_error_kind() -> None:
    policy = RouterPolicy(
        fallbacks={"a": ("b",)}, context_window_fallbacks={"a": ("c",)}, default_fallbacks=("d",), max_fallbacks=5
    )
    assert policy.chain("a", "server") == ("b",)
    assert policy.chain("a", "context_window") == ("c",)
    assert policy.chain("a", "content_policy") == ("b",)  # no specific chain: the generic one, as LiteLLM
    assert policy.chain("x", "server") == ("d",)
    assert policy.chain("a", "client") == ()


def test_an_unknown_strategy_is_reported_and_serves_as_simple_shuffle() -> None:
    c = config({"routing_strategy": "cost-based-routing"})
    assert c.router.strategy == "simple-shuffle"
    assert c.ignored == ("router_settings.routing_strategy",)


@pytest.mark.parametrize(
    ("router", "path", "text"),
    [
        ({"fallbacks": [{"a": ["nope"]}]}, "router_settings.fallbacks", "'a' falls back to 'nope', which is no"),
        ({"fallbacks": [{"zz": ["a"]}]}, "router_settings.fallbacks", "falls back from 'zz'"),
        ({"default_fallbacks": ["nope"]}, "router_settings.default_fallbacks", "'nope'"),
        ({"fallbacks": [{"a": ["b"]}, {"b": ["c"]}, {"c": ["a"]}]}, "router_settings.fallbacks",
         "fallbacks form a cycle: a -> b -> c -> a"),
        ({"content_policy_fallbacks": [{"a": ["a"]}]}, "router_settings.content_policy_fallbacks", "a -> a"),
    ],
)  # fmt: skip
def test_fallbacks_naming_unknown_groups_or_forming_a_cycle_refuse_the_config(
    router: dict[str, Any], path: str, text: str
) -> None:
    with pytest.raises(ConfigError) as exc_info:
        config(router)
    assert exc_info.value.path == path
    assert text in exc_info.value.message


def test_order_and_weight_reach_the_route() -> None:
    raw = {"model_list": [entry("a", order=2, weight=9), entry("a", order=1)]}
    first, second = parse_config(raw, {}).models["a"]
    assert (first.order, first.weight, second.order, second.weight) == (2, 9, 1, None)


def test_litellms_router_redis_keys_share_cooldowns_when_there_is_no_redis_url() -> None:
    c = config({"redis_host": "127.0.0.1", "redis_port": 6380, "redis_password": "p@ss"})
    assert c.router.redis_url == "redis://:p%40ss@127.0.0.1:6380/0"
    assert c.ignored == ()
    assert config({}).router.redis_url is None
