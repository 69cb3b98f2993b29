"""Anthropic translation of client input the real API refuses or the gateway used to crash on (review findings)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from providers.anthropic.names import ToolNames
from providers.anthropic.request import Translated, build_request
from providers.anthropic.stream import FenceFilter, StreamTranslator
from providers.base import Deployment, ProviderError

USER = {"role": "user", "content": "hi"}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


def translate(body: dict[str, Any], model: str = "claude-sonnet-4-5-20250929", **deployment: Any) -> Translated:
    dep = Deployment(provider="anthropic", model=model, api_base="http://x", **deployment)
    return build_request({"model": "alias", "messages": [USER], **body}, dep, lambda ids: None)


def refused(body: dict[str, Any], **deployment: Any) -> ProviderError:
    with pytest.raises(ProviderError) as exc_info:
        translate(body, **deployment)
    assert (exc_info.value.status_code, exc_info.value.type) == (400, "invalid_request_error")
    return exc_info.value


@pytest.mark.parametrize(
    "model",
    ["claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "claude-sonnet-4-6", "claude-opus-4-1-20250805",
     "claude-opus-4-5", "claude-haiku-4-5", "claude-sonnet-4.5"],
)  # fmt: skip
def test_models_that_refuse_temperature_with_top_p_keep_temperature(model: str) -> None:
    tr = translate({"temperature": 0.7, "top_p": 0.9}, model=model)
    assert (tr.body["temperature"], "top_p" in tr.body) == (0.7, False)
    assert tr.dropped == ["top_p"]
    assert translate({"top_p": 0.9}, model=model).body["top_p"] == 0.9


@pytest.mark.parametrize("model", ["claude-sonnet-4-20250514", "claude-opus-4-20250514", "claude-3-7-sonnet-latest"])
def test_older_models_get_both_temperature_and_top_p(model: str) -> None:
    body = translate({"temperature": 0.7, "top_p": 0.9}, model=model).body
    assert (body["temperature"], body["top_p"]) == (0.7, 0.9)


def test_fields_foreign_to_openai_are_dropped_and_anthropic_extras_kept() -> None:
    tr = translate({"num_ctx": 4096, "top_k": 3, "user": "u", "mirostat": 1})
    assert (tr.dropped, tr.body["top_k"]) == (["mirostat", "num_ctx"], 3)
    assert refused({"num_ctx": 4096}, drop_params=False).param == "num_ctx"


def test_temperature_with_top_p_is_a_400_naming_top_p_when_drop_params_is_off() -> None:
    assert refused({"temperature": 0.7, "top_p": 0.9}, drop_params=False).param == "top_p"


def test_user_is_sent_as_a_hash_never_as_given() -> None:
    body = translate({"user": "alice@example.com"}).body
    assert body["metadata"] == {"user_id": hashlib.sha256(b"alice@example.com").hexdigest()[:32]}


def test_allowed_tools_send_only_the_allowed_tools() -> None:
    def choice(mode: str, *names: str) -> dict[str, Any]:
        tools = [{"type": "function", "function": {"name": n}} for n in names]
        return {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": tools}}

    body = translate({"tools": [WEATHER, TIME], "tool_choice": choice("required", "get_time")}).body
    assert [t["name"] for t in body["tools"]] == ["get_time"]
    assert body["tool_choice"] == {"type": "tool", "name": "get_time"}
    body = translate({"tools": [WEATHER, TIME], "tool_choice": choice("required", "get_time", "get_weather")}).body
    assert ([t["name"] for t in body["tools"]], body["tool_choice"]) == (["get_weather", "get_time"], {"type": "any"})
    body = translate({"tools": [WEATHER, TIME], "tool_choice": choice("auto", "get_weather")}).body
    assert ([t["name"] for t in body["tools"]], "tool_choice" in body) == (["get_weather"], False)
    assert refused({"tools": [WEATHER], "tool_choice": choice("auto", "nope")}).param == "tool_choice"


def test_tool_parameters_without_a_type_get_type_object_and_non_objects_are_a_400() -> None:
    tool = {"type": "function", "function": {"name": "x", "parameters": {"properties": {"a": {"type": "string"}}}}}
    schema = translate({"tools": [tool]}).body["tools"][0]["input_schema"]
    assert schema == {"type": "object", "properties": {"a": {"type": "string"}}}
    bad = {"type": "function", "function": {"name": "x", "parameters": "{}"}}
    assert refused({"tools": [bad]}).param == "tools[0].function.parameters"
    assert refused({"tools": [{"type": "function", "function": "x"}]}).param == "tools[0].function.name"


def test_a_final_assistant_prefill_loses_its_trailing_whitespace() -> None:
    body = translate({"messages": [USER, {"role": "assistant", "content": "Sure \n"}]}).body
    assert body["messages"][-1] == {"role": "assistant", "content": [{"type": "text", "text": "Sure"}]}
    history = translate({"messages": [USER, {"role": "assistant", "content": "Sure "}, USER]}).body
    assert history["messages"][1]["content"] == [{"type": "text", "text": "Sure "}]  # only the final one


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": "abc"}}, "thinking.budget_tokens"),
        ({"thinking": "on"}, "thinking"),
        ({"reasoning_effort": ["high"]}, "reasoning_effort"),
        ({"response_format": {"type": "json_schema", "json_schema": "x"}}, "response_format.json_schema.schema"),
        ({"reasoning_effort": "low", "top_p": "0.9"}, "top_p"),
        ({"temperature": "0.5"}, "temperature"),
        ({"temperature": True}, "temperature"),
        ({"top_k": 1.5}, "top_k"),
        ({"max_tokens": "100"}, "max_tokens"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"tools": [WEATHER], "tool_choice": {"type": "allowed_tools", "allowed_tools": "x"}},
         "tool_choice.allowed_tools"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": "get_weather"}},
         "tool_choice.function.name"),
        ({"tools": "get_weather"}, "tools"),
        ({"messages": "hi"}, "messages"),
        ({"messages": ["hi"]}, "messages.[0]"),
        ({"messages": [USER, {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "f"}}]},
                       {"role": "tool", "content": "r"}]}, "messages.[2].tool_call_id"),
    ],
)  # fmt: skip
def test_malformed_input_is_a_400_naming_the_parameter(body: dict[str, Any], param: str) -> None:
    assert refused(body).param == param


def test_input_no_check_foresaw_is_still_a_400_not_a_crash() -> None:
    error = refused({"messages": [USER, {"role": "assistant", "content": "x", "tool_calls": 5}]})
    assert "could not be translated" in error.message and error.param is None


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [(["```json\n{\"a\": 1}\n```"], '{"a": 1}'), (["`", "``js", "on\n{\"a\"", ": 1}\n", "``", "`\n"], '{"a": 1}'),
     (["{\"a\": 1}"], '{"a": 1}'), (["```\n{\"a\": \"```\"}", "\n```  "], '{"a": "```"}')],
)  # fmt: skip
def test_fence_filter_strips_a_fence_split_anywhere(pieces: list[str], expected: str) -> None:
    fences = FenceFilter()
    text = "".join(fences.feed(p) for p in pieces) + fences.flush()
    assert text == expected


def test_fence_filter_holds_back_only_the_undecided_parts() -> None:
    fences = FenceFilter()
    assert fences.feed('```json\n{"a": ') == '{"a":'  # trailing whitespace may precede a closing fence
    assert fences.feed("1}\n`") == " 1}"
    assert fences.feed("x") == "\n`x"  # not a closing fence after all
    assert FenceFilter().feed("plain `text`") == "plain `text`"


def test_streamed_json_object_answers_lose_their_code_fence_before_the_finish_chunk() -> None:
    translator = StreamTranslator(ToolNames(), model="m", created=1, json_object=True)
    events = [{"type": "message_start", "message": {"id": "msg_1", "usage": {}}},
              {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
              *({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}
                for t in ("```js", "on\n{\"a\": 1}", "\n```")),
              {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}},
              {"type": "message_stop"}]  # fmt: skip
    chunks = [c for e in events for c in translator.feed(e["type"], e)]
    texts = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert "".join(t or "" for t in texts) == '{"a": 1}'
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
