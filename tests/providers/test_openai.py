"""The OpenAI provider's pure request policy and stream repairs."""

from __future__ import annotations

import pytest

from providers.base import Deployment, ProviderError
from providers.openai import ToolCallDeltaFixer, build_body, is_reasoning_model


def deployment(model: str, *, provider: str = "openai", drop_params: bool = True, **params: object) -> Deployment:
    return Deployment(provider=provider, model=model, api_base="http://x/v1", drop_params=drop_params, params=params)


@pytest.mark.parametrize(
    ("model", "reasoning"),
    [
        ("gpt-5-mini-2025-08-07", True),
        ("gpt-5", True),
        ("o3-mini", True),
        ("gpt-5-chat-latest", False),
        ("gpt-4o", False),
        ("org/gpt-5-nano", True),
    ],
)
def test_reasoning_models_are_recognised(model: str, reasoning: bool) -> None:
    assert is_reasoning_model(model) is reasoning


def test_config_defaults_apply_under_the_clients_fields() -> None:
    body = build_body(
        {"model": "alias", "messages": [], "temperature": 0.7}, deployment("gpt-4o", temperature=0.1, seed=3)
    )
    assert body == {"model": "gpt-4o", "messages": [], "temperature": 0.7, "seed": 3}


def test_unknown_fields_are_dropped_for_openai_and_forwarded_for_compatible_servers() -> None:
    request = {"model": "a", "messages": [], "num_ctx": 4096, "top_k": 5}
    assert "num_ctx" not in build_body(request, deployment("gpt-4o"))
    assert build_body(request, deployment("llama", provider="hosted_vllm"))["top_k"] == 5


def test_every_dropped_parameter_is_reported_in_order() -> None:
    dropped: list[str] = []
    request = {"model": "a", "messages": [], "num_ctx": 4096, "temperature": 0.2, "top_p": 0.5, "logprobs": None}
    body = build_body(request, deployment("gpt-5-mini"), dropped)
    assert body == {"model": "gpt-5-mini", "messages": []}
    assert dropped == ["num_ctx", "temperature", "top_p"]  # an explicit null is no parameter to report


def test_parallel_tool_calls_without_tools_is_dropped_for_openai_only() -> None:
    dropped: list[str] = []
    request = {"model": "a", "messages": [], "parallel_tool_calls": False}
    assert "parallel_tool_calls" not in build_body(request, deployment("gpt-4o"), dropped)
    assert dropped == ["parallel_tool_calls"]
    with_tools = {**request, "tools": [{"type": "function", "function": {"name": "f"}}]}
    assert build_body(with_tools, deployment("gpt-4o"))["parallel_tool_calls"] is False
    assert build_body(request, deployment("llama", provider="hosted_vllm"))["parallel_tool_calls"] is False


@pytest.mark.parametrize("extra", [{"num_ctx": 4096}, {"parallel_tool_calls": True}])
def test_parameters_openai_refuses_are_a_400_when_drop_params_is_off(extra: dict[str, object]) -> None:
    with pytest.raises(ProviderError) as exc_info:
        build_body({"model": "a", "messages": [], **extra}, deployment("gpt-4o", drop_params=False))
    assert (exc_info.value.status_code, exc_info.value.param, exc_info.value.code) == (
        400, next(iter(extra)), "unsupported_parameter")  # fmt: skip


def test_temperature_one_is_allowed_for_reasoning_models() -> None:
    body = build_body(
        {"model": "a", "messages": [], "temperature": 1, "max_tokens": 9}, deployment("gpt-5-mini", drop_params=False)
    )
    assert body == {"model": "gpt-5-mini", "messages": [], "temperature": 1, "max_completion_tokens": 9}


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    body = build_body({"model": "a", "messages": [], "max_tokens": 9, "max_completion_tokens": 20}, deployment("o3"))
    assert body["max_completion_tokens"] == 20
    assert "max_tokens" not in body


def test_strict_policy_names_the_parameter() -> None:
    with pytest.raises(ProviderError) as exc_info:
        build_body({"model": "a", "messages": [], "stop": ["x"]}, deployment("gpt-5", drop_params=False))
    assert (exc_info.value.status_code, exc_info.value.param) == (400, "stop")


def test_streams_always_ask_for_usage() -> None:
    body = build_body({"model": "a", "messages": [], "stream": True}, deployment("gpt-4o"))
    assert body["stream_options"] == {"include_usage": True}


def test_fixer_indexes_by_call_id_and_closes_argumentless_calls() -> None:
    fixer = ToolCallDeltaFixer()
    first = [{"id": "a", "function": {"name": "f", "arguments": None}}]
    second = [{"id": "b", "function": {"name": "g", "arguments": ""}}]
    more = [{"function": {"arguments": '{"x": 1}'}}]
    for deltas in (first, second, more):
        fixer.fix(deltas)
    assert [first[0]["index"], second[0]["index"], more[0]["index"]] == [0, 1, 1]
    assert fixer.missing_args() == [{"index": 0, "function": {"arguments": "{}"}}]
    assert fixer.missing_args() == []
