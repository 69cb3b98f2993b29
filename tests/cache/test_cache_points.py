"""Anthropic prompt-cache breakpoints from LiteLLM's `cache_control_injection_points`."""

from __future__ import annotations

from typing import Any

from hub.config import parse_config
from providers.anthropic.cache_points import inject_cache_points
from providers.anthropic.request import build_request
from providers.base import Deployment

EPHEMERAL = {"type": "ephemeral"}
MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "x"}}]},
    {"role": "assistant", "content": "b"},
    {"role": "user", "content": "c"},
]


def test_a_role_point_marks_every_message_of_that_role_on_its_last_text_part() -> None:
    out = inject_cache_points(MESSAGES, [{"location": "message", "role": "user"}])
    assert out[1]["content"][0] == {"type": "text", "text": "a", "cache_control": EPHEMERAL}
    assert out[3]["content"] == [{"type": "text", "text": "c", "cache_control": EPHEMERAL}]
    assert out[0] == MESSAGES[0] and out[2] == MESSAGES[2]
    assert MESSAGES[3]["content"] == "c"  # the client's messages are left as they were


def test_an_index_point_counts_from_the_end_when_negative_and_out_of_range_is_no_op() -> None:
    control = {"type": "ephemeral", "ttl": "1h"}
    out = inject_cache_points(MESSAGES, [{"location": "message", "index": -2, "control": control}])
    assert out[2]["content"] == [{"type": "text", "text": "b", "cache_control": control}]
    assert inject_cache_points(MESSAGES, [{"location": "message", "index": 9}]) == MESSAGES
    assert inject_cache_points(MESSAGES, None) is MESSAGES


def test_the_anthropic_request_carries_the_breakpoint_on_the_system_block() -> None:
    points = [{"location": "message", "role": "system"}]
    deployment = Deployment("anthropic", "claude-x", "http://x", params={"cache_control_injection_points": points})
    body = {"model": "m", "messages": MESSAGES[:1] + [{"role": "user", "content": "hi"}]}
    sent = build_request(body, deployment, lambda _: None).body  # pyright: ignore[reportArgumentType]
    assert sent["system"] == [{"type": "text", "text": "You are terse.", "cache_control": EPHEMERAL}]
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


def config(model: str) -> Any:
    params = {
        "model": model,
        "api_base": "http://x",
        "cache_control_injection_points": [{"location": "message", "role": "system"}],
    }
    return parse_config({"model_list": [{"model_name": "m", "litellm_params": params}]}, {})


def test_injection_points_reach_anthropic_deployments_and_are_reported_ignored_elsewhere() -> None:
    anthropic = config("anthropic/claude-x")
    assert anthropic.models["m"][0].deployment.params == {
        "cache_control_injection_points": [{"location": "message", "role": "system"}]
    }
    assert anthropic.ignored == ()
    openai = config("openai/gpt-x")
    assert openai.models["m"][0].deployment.params == {}
    assert openai.ignored == ("model_list[0].litellm_params.cache_control_injection_points",)
