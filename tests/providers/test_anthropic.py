"""Fast tests of the pure OpenAI <-> Anthropic translation: one test (at least) per pitfall in docs/internals.md."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

from providers._http import HttpPool, error_from_response
from providers.anthropic import AnthropicProvider
from providers.anthropic.messages import FIRST_USER_TEXT, Restore
from providers.anthropic.names import ToolNames, wire_id, wire_name
from providers.anthropic.request import JSON_OBJECT_INSTRUCTION, Translated, build_request, default_max_tokens
from providers.anthropic.response import parse_error, strip_fences, to_completion, usage
from providers.anthropic.stream import StreamTranslator
from providers.base import ChatRequest, Deployment, ProviderError

DEPLOYMENT = Deployment(provider="anthropic", model="claude-sonnet-4-5-20250929", api_base="http://x")
USER = {"role": "user", "content": "hi"}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
SIGNED = {"type": "thinking", "thinking": "hmm", "signature": "sig-1"}
REDACTED = {"type": "redacted_thinking", "data": "opaque"}


def translate(body: dict[str, Any], restore: Restore = lambda ids: None, **deployment: Any) -> Translated:
    dep = Deployment(**{"provider": "anthropic", "model": DEPLOYMENT.model, "api_base": "http://x", **deployment})
    return build_request({"model": "alias", **body}, dep, restore)


def call(call_id: str, name: str = "get_weather", arguments: str | None = '{"city": "Paris"}') -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def tool_turn(*ids: str, content: Any = "") -> list[dict[str, Any]]:
    return [USER, {"role": "assistant", "content": content, "tool_calls": [call(i) for i in ids]},
            *({"role": "tool", "tool_call_id": i, "content": f"result {i}"} for i in ids)]  # fmt: skip


# -- requests: messages --------------------------------------------------------------------------------------------


def test_system_and_developer_messages_anywhere_become_the_top_level_system() -> None:
    body = translate({"messages": [{"role": "system", "content": "A"}, USER, {"role": "assistant", "content": "ok"},
                                   {"role": "developer", "content": [{"type": "text", "text": "B"}]},
                                   {"role": "user", "content": "again"}]}).body  # fmt: skip
    assert body["system"] == [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]


def test_parallel_tool_results_go_in_one_user_message_with_results_first_then_text() -> None:
    messages = [*tool_turn("call_a", "call_b"), {"role": "user", "content": "thanks"}]
    sent = translate({"messages": messages, "tools": TOOLS}).body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert [b["type"] for b in sent[2]["content"]] == ["tool_result", "tool_result", "text"]
    assert [b["tool_use_id"] for b in sent[2]["content"][:2]] == ["call_a", "call_b"]


def test_user_text_sent_before_the_tool_results_still_goes_after_them() -> None:
    messages = [*tool_turn("call_a")[:2], {"role": "user", "content": "note"},
                {"role": "tool", "tool_call_id": "call_a", "content": "r"}]  # fmt: skip
    sent = translate({"messages": messages}).body["messages"]
    assert [b["type"] for b in sent[2]["content"]] == ["tool_result", "text"]


def test_consecutive_same_role_messages_are_merged_so_roles_alternate() -> None:
    messages = [USER, {"role": "user", "content": "more"}, {"role": "assistant", "content": "a"},
                {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]  # fmt: skip
    sent = translate({"messages": messages}).body["messages"]
    assert [(m["role"], [b["text"] for b in m["content"]]) for m in sent] == [
        ("user", ["hi", "more"]), ("assistant", ["a", "b"]), ("user", ["c"])]  # fmt: skip


def test_a_history_starting_with_the_assistant_gets_a_user_message_first() -> None:
    sent = translate({"messages": [{"role": "assistant", "content": "Hello!"}, USER]}).body["messages"]
    assert sent[0] == {"role": "user", "content": [{"type": "text", "text": FIRST_USER_TEXT}]}
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]


@pytest.mark.parametrize("content", ["", "   ", None, [{"type": "text", "text": ""}], [{"type": "text", "text": "\n"}]])
def test_empty_or_whitespace_text_is_never_sent(content: Any) -> None:
    sent = translate({"messages": [USER, {"role": "user", "content": content}]}).body["messages"]
    assert sent == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


@pytest.mark.parametrize("content", ["", None, [], "  "])
def test_assistant_with_empty_content_and_tool_calls_sends_only_tool_use(content: Any) -> None:
    sent = translate({"messages": tool_turn("call_a", content=content)}).body["messages"]
    assert sent[1]["content"] == [{"type": "tool_use", "id": "call_a", "name": "get_weather",
                                   "input": {"city": "Paris"}}]  # fmt: skip


def test_assistant_text_comes_before_its_tool_use() -> None:
    sent = translate({"messages": tool_turn("call_a", content="Checking.")}).body["messages"]
    assert [b["type"] for b in sent[1]["content"]] == ["text", "tool_use"]


@pytest.mark.parametrize("arguments", ["", None, "{}"])
def test_tool_calls_without_arguments_are_sent_as_an_empty_object(arguments: str | None) -> None:
    messages = [USER, {"role": "assistant", "tool_calls": [call("c1", arguments=arguments)]},
                {"role": "tool", "tool_call_id": "c1", "content": "x"}]  # fmt: skip
    assert translate({"messages": messages}).body["messages"][1]["content"][0]["input"] == {}


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]", '"text"'])
def test_tool_call_arguments_that_are_not_a_json_object_are_a_400(arguments: str) -> None:
    messages = [USER, {"role": "assistant", "tool_calls": [call("c1", arguments=arguments)]}]
    with pytest.raises(ProviderError) as exc_info:
        translate({"messages": messages})
    assert (exc_info.value.status_code, exc_info.value.param) == (400, "messages.[1].tool_calls.[0].function.arguments")


def test_empty_tool_result_is_sent_without_content_never_as_empty_text() -> None:
    messages = [*tool_turn("c1")[:2], {"role": "tool", "tool_call_id": "c1", "content": ""}]
    assert translate({"messages": messages}).body["messages"][2]["content"] == [{"type": "tool_result",
                                                                                 "tool_use_id": "c1"}]  # fmt: skip


def test_images_data_url_to_base64_and_http_to_url_source() -> None:
    content = [{"type": "image_url", "image_url": {"url": "data:image/jpg;base64,AAAA"}},
               {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
               {"type": "text", "text": "what?"}]  # fmt: skip
    blocks = translate({"messages": [{"role": "user", "content": content}]}).body["messages"][0]["content"]
    assert blocks == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {"type": "text", "text": "what?"},
    ]


@pytest.mark.parametrize("url", ["data:image/bmp;base64,AA", "data:image/png,raw", "ftp://x/y.png", ""])
def test_images_anthropic_cannot_take_are_a_400_naming_the_part(url: str) -> None:
    content = [{"type": "text", "text": "x"}, {"type": "image_url", "image_url": {"url": url}}]
    with pytest.raises(ProviderError) as exc_info:
        translate({"messages": [{"role": "user", "content": content}]})
    assert exc_info.value.status_code == 400
    assert (exc_info.value.param or "").startswith("messages.[0].content.[1]")


def test_unsupported_roles_and_parts_are_a_400() -> None:
    for messages in ([{"role": "function", "name": "f", "content": "x"}],
                     [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]):  # fmt: skip
        with pytest.raises(ProviderError) as exc_info:
            translate({"messages": messages})
        assert exc_info.value.status_code == 400 and "anthropic" == exc_info.value.provider


# -- requests: names and ids ---------------------------------------------------------------------------------------


def test_refused_tool_names_are_mapped_reversibly_and_accepted_ones_untouched() -> None:
    names = ToolNames()
    assert names.add("get_weather") == "get_weather"
    wired = names.add("github.search/issues")
    assert wired != "github.search/issues" and wired.replace("_", "").replace("-", "").isalnum()
    assert names.original(wired) == "github.search/issues"
    assert wire_name("a.b") != wire_name("a/b")  # same sanitized text, different originals: no collision
    assert len(wire_name("x" * 300)) == 128


def test_tool_names_in_tools_history_and_tool_choice_use_the_same_wire_name() -> None:
    name = "fs.read file"
    tools = [{"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}]
    messages = [USER, {"role": "assistant", "tool_calls": [call("c1", name=name)]},
                {"role": "tool", "tool_call_id": "c1", "content": "x"}]  # fmt: skip
    tr = translate({"messages": messages, "tools": tools,
                    "tool_choice": {"type": "function", "function": {"name": name}}})  # fmt: skip
    wired = tr.body["tools"][0]["name"]
    assert tr.body["messages"][1]["content"][0]["name"] == wired == tr.body["tool_choice"]["name"]
    completion = to_completion({"content": [{"type": "tool_use", "id": "toolu_1", "name": wired, "input": {}}],
                                "stop_reason": "tool_use"}, tr.names, created=1)  # fmt: skip
    assert completion["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == name


def test_foreign_tool_call_ids_are_sanitized_identically_on_tool_use_and_tool_result() -> None:
    foreign = "call|1.abc+/="
    sent = translate({"messages": tool_turn(foreign)}).body["messages"]
    use_id, result_id = sent[1]["content"][0]["id"], sent[2]["content"][0]["tool_use_id"]
    assert use_id == result_id == wire_id(foreign)
    assert use_id.replace("_", "").replace("-", "").isalnum()
    assert wire_id("call|1") != wire_id("call.1")
    assert wire_id("toolu_01ABC-x") == "toolu_01ABC-x"


# -- requests: parameters ------------------------------------------------------------------------------------------


def test_max_tokens_is_always_sent_client_then_config_then_model_default() -> None:
    assert translate({"messages": [USER]}).body["max_tokens"] == 8192
    assert translate({"messages": [USER]}, params={"max_tokens": 300}).body["max_tokens"] == 300
    assert translate({"messages": [USER], "max_tokens": 50}, params={"max_tokens": 300}).body["max_tokens"] == 50
    assert translate({"messages": [USER], "max_completion_tokens": 70, "max_tokens": 50}).body["max_tokens"] == 70
    assert default_max_tokens("claude-3-haiku-20240307") == 4096
    assert default_max_tokens("claude-opus-4-1") == default_max_tokens("claude-3-5-haiku-latest") == 8192


@pytest.mark.parametrize(("given", "sent"), [(1.7, 1.0), (2, 1.0), (0.3, 0.3), (-1, 0.0)])
def test_temperature_is_clamped_to_anthropics_range(given: float, sent: float) -> None:
    assert translate({"messages": [USER], "temperature": given}).body["temperature"] == sent


def test_sampling_stop_user_and_unknown_fields() -> None:
    body = translate({"messages": [USER], "top_p": 0.5, "top_k": 4, "stop": "END", "user": "u1", "num_ctx": 8192,
                      "seed": 1, "frequency_penalty": 0.1, "logprobs": False, "n": 1, "metadata": {"a": "b"},
                      "store": True, "stream_options": {"include_usage": True}}).body  # fmt: skip
    hi = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert body == {"model": DEPLOYMENT.model, "messages": hi,
                    "max_tokens": 8192, "top_p": 0.5, "top_k": 4, "stop_sequences": ["END"],
                    "metadata": {"user_id": hashlib.sha256(b"u1").hexdigest()[:32]}}  # fmt: skip
    assert translate({"messages": [USER], "stop": [" ", "\n", "##"]}).body["stop_sequences"] == ["##"]
    assert "stop_sequences" not in translate({"messages": [USER], "stop": ["  "]}).body


def test_openai_only_parameters_are_refused_when_drop_params_is_off() -> None:
    with pytest.raises(ProviderError) as exc_info:
        translate({"messages": [USER], "presence_penalty": 0.5}, drop_params=False)
    assert (exc_info.value.status_code, exc_info.value.param) == (400, "presence_penalty")


@pytest.mark.parametrize(
    ("extra", "dropped"),
    [({"functions": [{"name": "f", "parameters": {"type": "object"}}], "function_call": "auto"},
      ["function_call", "functions"]),
     ({"audio": {"voice": "alloy", "format": "wav"}, "modalities": ["text", "audio"]}, ["audio", "modalities"]),
     ({"web_search_options": {}}, ["web_search_options"]),
     ({"prediction": {"type": "content", "content": "x"}}, ["prediction"])],
)  # fmt: skip
def test_openai_parameters_anthropic_has_no_equivalent_for_are_named_dropped_or_refused(
    extra: dict[str, Any], dropped: list[str]
) -> None:
    assert translate({"messages": [USER], **extra}).dropped == dropped
    with pytest.raises(ProviderError) as refused:
        translate({"messages": [USER], **extra}, drop_params=False)
    assert (refused.value.status_code, refused.value.param) == (400, dropped[0])
    assert translate({"messages": [USER], "modalities": ["text"]}).dropped == []


@pytest.mark.parametrize("tool", [{"type": "web_search"}, {"type": "file_search", "vector_store_ids": []}, "f"])
def test_a_tool_that_is_no_function_is_a_400_naming_it_not_silently_left_out(tool: Any) -> None:
    with pytest.raises(ProviderError) as refused:
        translate({"messages": [USER], "tools": [*TOOLS, tool]})
    assert refused.value.status_code == 400 and refused.value.param in ("tools[1].type", "tools[1]")


def test_tools_and_tool_choice_mapping() -> None:
    tools = [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object",
              "properties": {"a": {"type": "string"}}}}}, {"type": "function", "function": {"name": "g"}},
             {"type": "mcp", "server_label": "x"}]  # fmt: skip
    body = translate({"messages": [USER], "tools": tools}).body
    assert body["tools"] == [{"name": "f", "description": "d", "input_schema": tools[0]["function"]["parameters"]},
                             {"name": "g", "input_schema": {"type": "object", "properties": {}}}]  # fmt: skip
    assert "tool_choice" not in body
    cases = {"auto": None, "none": {"type": "none"}, "required": {"type": "any"},
             json.dumps({"type": "function", "function": {"name": "g"}}): {"type": "tool", "name": "g"}}  # fmt: skip
    for choice, expected in cases.items():
        value = json.loads(choice) if choice.startswith("{") else choice
        assert translate({"messages": [USER], "tools": tools, "tool_choice": value}).body.get("tool_choice") == expected


def test_parallel_tool_calls_false_disables_parallel_use_and_no_tools_means_no_tool_choice() -> None:
    body = translate({"messages": [USER], "tools": TOOLS, "parallel_tool_calls": False}).body
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    body = translate({"messages": [USER], "tools": TOOLS, "tool_choice": "required", "parallel_tool_calls": False}).body
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    body = translate({"messages": [USER], "tool_choice": "required", "parallel_tool_calls": False}).body
    assert "tool_choice" not in body and "tools" not in body


def test_response_format_json_schema_uses_structured_output_and_json_object_an_instruction() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    tr = translate({"messages": [USER], "response_format": fmt})
    assert tr.body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    tr = translate({"messages": [{"role": "system", "content": "S"}, USER], "response_format": {"type": "json_object"}})
    assert tr.json_object and tr.body["system"][-1] == {"type": "text", "text": JSON_OBJECT_INSTRUCTION}
    with pytest.raises(ProviderError):
        translate({"messages": [USER], "response_format": {"type": "yaml"}})


# -- requests: thinking --------------------------------------------------------------------------------------------


def test_reasoning_effort_enables_thinking_with_a_budget_below_max_tokens() -> None:
    thinking = translate({"messages": [USER], "reasoning_effort": "high"}).body["thinking"]
    assert thinking == {"type": "enabled", "budget_tokens": 4096}
    body = translate({"messages": [USER], "reasoning_effort": "max"}).body  # default max_tokens is raised
    assert body["thinking"]["budget_tokens"] == 16384 and body["max_tokens"] > 16384
    body = translate({"messages": [USER], "reasoning_effort": "high", "max_completion_tokens": 2000}).body
    assert (body["thinking"]["budget_tokens"], body["max_tokens"]) == (1999, 2000)  # the client's cap holds
    tr = translate({"messages": [USER], "reasoning_effort": "high", "max_tokens": 900})
    assert "thinking" not in tr.body and "no room" in tr.notes[0]
    assert "thinking" not in translate({"messages": [USER], "reasoning_effort": "none"}).body
    with pytest.raises(ProviderError) as exc_info:
        translate({"messages": [USER], "reasoning_effort": "extreme"})
    assert exc_info.value.param == "reasoning_effort"


def test_native_thinking_from_the_config_is_used_and_kept_valid() -> None:
    tr = translate({"messages": [USER]}, params={"thinking": {"type": "enabled", "budget_tokens": 2000}})
    assert tr.body["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    native = {"thinking": {"type": "enabled", "budget_tokens": 2000}}
    assert "thinking" not in translate({"messages": [USER], "reasoning_effort": "none"}, params=native).body


def test_thinking_drops_temperature_top_k_low_top_p_and_downgrades_forced_tool_choice() -> None:
    tr = translate({"messages": [USER], "tools": TOOLS, "tool_choice": "required", "temperature": 0.2, "top_k": 5,
                    "top_p": 0.5, "reasoning_effort": "low", "parallel_tool_calls": False})  # fmt: skip
    assert tr.body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert not {"temperature", "top_k", "top_p"} & tr.body.keys()
    assert tr.dropped == ["tool_choice", "temperature", "top_k", "top_p"]
    assert tr.notes == []
    named = translate({"messages": [USER], "tools": TOOLS, "reasoning_effort": "low",
                       "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}).body  # fmt: skip
    assert named["tool_choice"] == {"type": "auto"}
    assert translate({"messages": [USER], "top_p": 0.97, "reasoning_effort": "low"}).body["top_p"] == 0.97


@pytest.mark.parametrize("extra", [{"tool_choice": "required"}, {"temperature": 0.5}, {"top_k": 3}])
def test_thinking_conflicts_are_a_400_when_drop_params_is_off(extra: dict[str, Any]) -> None:
    with pytest.raises(ProviderError) as exc_info:
        translate({"messages": [USER], "tools": TOOLS, "reasoning_effort": "low", **extra}, drop_params=False)
    assert (exc_info.value.status_code, exc_info.value.param) == (400, next(iter(extra)))


def test_restored_thinking_blocks_lead_the_assistant_turn_in_order() -> None:
    asked: list[list[str]] = []

    def restore(ids: Any) -> list[dict[str, Any]]:
        asked.append(list(ids))
        return [REDACTED, SIGNED]

    tr = translate({"messages": tool_turn("toolu_a", "toolu_b", content="Let me look."), "reasoning_effort": "low"},
                   restore)  # fmt: skip
    assert asked == [["toolu_a", "toolu_b"]]
    assert [b["type"] for b in tr.body["messages"][1]["content"]] == ["redacted_thinking", "thinking", "text",
                                                                     "tool_use", "tool_use"]  # fmt: skip
    assert tr.body["thinking"]["type"] == "enabled" and not tr.notes


def test_thinking_blocks_sent_back_by_the_client_are_used_when_the_gateway_has_none() -> None:
    messages = tool_turn("toolu_a")
    unsigned = {"type": "thinking", "thinking": "unsigned"}
    messages[1] = {**messages[1], "reasoning_content": "hmm", "thinking_blocks": [SIGNED, unsigned, REDACTED, "junk"]}
    content = translate({"messages": messages, "reasoning_effort": "low"}).body["messages"][1]["content"]
    assert content[:2] == [SIGNED, REDACTED]
    empty_but_signed = {"type": "thinking", "thinking": "", "signature": "sig-2"}
    messages[1]["thinking_blocks"] = [empty_but_signed]
    assert translate({"messages": messages, "reasoning_effort": "low"}).body["messages"][1]["content"][0] == (
        empty_but_signed
    )


def test_thinking_blocks_are_not_replayed_when_thinking_is_off() -> None:
    messages = tool_turn("toolu_a")
    messages[1] = {**messages[1], "thinking_blocks": [SIGNED]}
    assert [b["type"] for b in translate({"messages": messages}).body["messages"][1]["content"]] == ["tool_use"]
    tr = translate({"messages": messages, "reasoning_effort": "low"}, lambda ids: [REDACTED])
    assert tr.body["messages"][1]["content"][0] == REDACTED


def test_lost_thinking_blocks_in_an_open_tool_turn_disable_thinking_for_that_request() -> None:
    tr = translate({"messages": tool_turn("toolu_a"), "reasoning_effort": "low", "tool_choice": "required",
                    "tools": TOOLS})  # fmt: skip
    assert "thinking" not in tr.body
    assert tr.body["tool_choice"] == {"type": "any"}  # no conflict left to resolve
    assert "thinking disabled for this request" in tr.notes[0]
    closed = [*tool_turn("toolu_a"), {"role": "assistant", "content": "done"}, {"role": "user", "content": "next"}]
    assert translate({"messages": closed, "reasoning_effort": "low"}).body["thinking"]["type"] == "enabled"


def test_the_provider_keeps_thinking_per_tool_call_bound_to_the_model_and_bounded() -> None:
    provider = AnthropicProvider(HttpPool(), max_turns=2)
    dep = Deployment(provider="anthropic", model="claude-a", api_base="http://x")
    provider._keep(dep, ["toolu_1", "toolu_2"], [SIGNED])  # pyright: ignore[reportPrivateUsage]
    body = {"model": "x", "messages": tool_turn("toolu_2"), "reasoning_effort": "low"}
    sent = provider._translate(ChatRequest(body, dep), stream=False).body  # pyright: ignore[reportPrivateUsage]
    assert sent["messages"][1]["content"][0] == SIGNED
    other = Deployment(provider="anthropic", model="claude-b", api_base="http://x")
    sent = provider._translate(ChatRequest(body, other), stream=False).body  # pyright: ignore[reportPrivateUsage]
    assert sent["messages"][1]["content"][0]["type"] == "tool_use" and "thinking" not in sent
    provider._keep(dep, ["toolu_3"], [REDACTED])  # pyright: ignore[reportPrivateUsage]
    assert len(provider.thinking) == 2 and provider.thinking.get("toolu_1") is None


# -- responses -----------------------------------------------------------------------------------------------------

MESSAGE = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
    "content": [SIGNED, {"type": "text", "text": "I'll check."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 100, "cache_read_input_tokens": 20, "cache_creation_input_tokens": 30,
              "output_tokens": 9},
}  # fmt: skip


def test_message_becomes_an_openai_completion_with_tool_calls_and_reasoning() -> None:
    completion = to_completion(MESSAGE, ToolNames(), created=5)
    ChatCompletion.model_validate(completion)
    message = completion["choices"][0]["message"]
    assert message["content"] == "I'll check."
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in message["tool_calls"]] == [
        ("toolu_1", "get_weather", '{"city":"Paris"}'), ("toolu_2", "get_time", "{}")]  # fmt: skip
    assert message["reasoning_content"] == "hmm" and message["thinking_blocks"] == [SIGNED]
    assert completion["choices"][0]["finish_reason"] == "tool_calls"
    only_tools = to_completion({**MESSAGE, "content": MESSAGE["content"][2:]}, ToolNames(), created=5)
    assert only_tools["choices"][0]["message"]["content"] is None


def test_usage_counts_cache_reads_and_writes_as_prompt_tokens() -> None:
    assert usage(MESSAGE["usage"]) == {
        "prompt_tokens": 150, "completion_tokens": 9, "total_tokens": 159,
        "prompt_tokens_details": {"cached_tokens": 20, "cache_write_tokens": 30}}  # fmt: skip
    details = usage({"output_tokens": 4, "output_tokens_details": {"thinking_tokens": 3}})["completion_tokens_details"]
    assert details == {"reasoning_tokens": 3}


@pytest.mark.parametrize(("stop", "finish"), [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
                                              ("tool_use", "tool_calls"), ("refusal", "content_filter"),
                                              ("model_context_window_exceeded", "length"), (None, "stop")])  # fmt: skip
def test_stop_reasons_map_to_openai_finish_reasons(stop: str | None, finish: str) -> None:
    completion = to_completion({**MESSAGE, "content": [{"type": "text", "text": "x"}], "stop_reason": stop},
                               ToolNames(), created=1)  # fmt: skip
    assert completion["choices"][0]["finish_reason"] == finish


def test_json_object_answers_lose_their_code_fence() -> None:
    assert strip_fences('```json\n{"a": 1}\n```') == '{"a": 1}'
    assert strip_fences('{"a": "```"}') == '{"a": "```"}'


@pytest.mark.parametrize(("status", "kind", "gateway", "openai_type"), [
    (400, "invalid_request_error", 400, "invalid_request_error"),
    (401, "authentication_error", 401, "authentication_error"),
    (403, "permission_error", 403, "permission_error"), (404, "not_found_error", 404, "invalid_request_error"),
    (413, "request_too_large", 413, "invalid_request_error"), (429, "rate_limit_error", 429, "rate_limit_error"),
    (500, "api_error", 502, "server_error"), (529, "overloaded_error", 503, "server_error"),
])  # fmt: skip
def test_anthropic_errors_become_openai_errors_naming_the_provider(
    status: int, kind: str, gateway: int, openai_type: str
) -> None:
    body = json.dumps({"type": "error", "error": {"type": kind, "message": "boom"}, "request_id": "req_1"}).encode()
    error = error_from_response("anthropic", status, body, parse_error)
    assert (error.status_code, error.type, error.code) == (gateway, openai_type, kind)
    assert error.message == f"anthropic error ({status}): boom"


# -- streams -------------------------------------------------------------------------------------------------------


def run(events: list[dict[str, Any]], names: ToolNames | None = None) -> tuple[StreamTranslator, list[dict[str, Any]]]:
    translator = StreamTranslator(names or ToolNames(), model="m", created=7)
    chunks = [c for event in events for c in translator.feed(event["type"], event)]
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    return translator, chunks


def start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def delta(index: int, **d: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": d}


def stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


MESSAGE_START = {"type": "message_start", "message": {"id": "msg_9", "model": "claude-x", "content": [],
                 "usage": {"input_tokens": 10, "cache_read_input_tokens": 4, "output_tokens": 1}}}  # fmt: skip
END = [{"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 42}},
       {"type": "message_stop"}]  # fmt: skip
TOOL_STREAM = [
    MESSAGE_START,
    start(0, {"type": "thinking", "thinking": "", "signature": ""}), {"type": "ping"},
    delta(0, type="thinking_delta", thinking="Let me "), delta(0, type="thinking_delta", thinking="think."),
    delta(0, type="thinking_delta", thinking=""), delta(0, type="signature_delta", signature="EqQB"), stop(0),
    start(1, {"type": "redacted_thinking", "data": "zzz"}), stop(1),
    start(2, {"type": "text", "text": ""}), delta(2, type="text_delta", text="Checking."), stop(2),
    start(3, {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}}),
    delta(3, type="input_json_delta", partial_json=""), delta(3, type="input_json_delta", partial_json='{"city":'),
    delta(3, type="input_json_delta", partial_json=' "Paris"}'), stop(3),
    start(4, {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}}),
    delta(4, type="input_json_delta", partial_json=""), stop(4),
    *END,
]  # fmt: skip


def test_stream_tool_calls_get_their_own_contiguous_index_with_id_and_name_only_first() -> None:
    _, chunks = run(TOOL_STREAM)
    assert {c["id"] for c in chunks} == {"chatcmpl-msg_9"} and {c["created"] for c in chunks} == {7}
    assert all(ch["index"] == 0 for c in chunks for ch in c["choices"])
    fragments = [ChoiceDeltaToolCall.model_validate(t) for c in chunks if c["choices"]
                 for t in c["choices"][0]["delta"].get("tool_calls") or []]  # fmt: skip
    seen = [(f.index, f.id, f.function and f.function.name, f.function and f.function.arguments) for f in fragments]
    assert seen == [
        (0, "toolu_a", "get_weather", ""), (0, None, None, '{"city":'), (0, None, None, ' "Paris"}'),
        (1, "toolu_b", "get_time", ""), (1, None, None, "{}")]  # fmt: skip


def test_stream_chunk_order_role_first_finish_last_then_usage() -> None:
    _, chunks = run(TOOL_STREAM)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]].count("tool_calls") == 1
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 14
    assert chunks[-1]["usage"]["completion_tokens"] == 42  # message_delta's cumulative count wins
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content") or "" for c in chunks if c["choices"])
    assert reasoning == "Let me think."
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "Checking."


def test_stream_collects_thinking_blocks_with_signatures_in_order_for_replay() -> None:
    translator, _ = run(TOOL_STREAM)
    assert translator.thinking_blocks == [{"type": "thinking", "thinking": "Let me think.", "signature": "EqQB"},
                                          {"type": "redacted_thinking", "data": "zzz"}]  # fmt: skip
    assert translator.tool_call_ids == ["toolu_a", "toolu_b"] and translator.done


def test_stream_maps_wire_tool_names_back() -> None:
    names = ToolNames(["fs.read"])
    events = [MESSAGE_START, start(0, {"type": "tool_use", "id": "t", "name": wire_name("fs.read"), "input": {}}),
              stop(0), *END]  # fmt: skip
    _, chunks = run(events, names)
    assert chunks[1]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "fs.read"


def test_stream_message_delta_usage_overrides_message_start_usage() -> None:
    events = [MESSAGE_START, {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
              "usage": {"input_tokens": 12, "cache_read_input_tokens": 6, "cache_creation_input_tokens": 2,
                        "output_tokens": 3}}, {"type": "message_stop"}]  # fmt: skip
    _, chunks = run(events)
    assert chunks[-1]["usage"]["prompt_tokens"] == 20
    assert chunks[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 6


def test_stream_error_event_raises_a_provider_error_with_the_mapped_status() -> None:
    translator = StreamTranslator(ToolNames(), model="m", created=1)
    translator.feed("message_start", MESSAGE_START)
    with pytest.raises(ProviderError) as exc_info:
        translator.feed("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert exc_info.value.status_code == 503 and "anthropic" in exc_info.value.message
    assert exc_info.value.code == "overloaded_error"


def test_stream_ignores_ping_and_unknown_events() -> None:
    translator = StreamTranslator(ToolNames(), model="m", created=1)
    assert translator.feed("ping", {"type": "ping"}) == []
    assert translator.feed("future_event", {"type": "future_event"}) == []
    assert translator.feed("content_block_delta", delta(0, type="citations_delta", citation={})) == []


@pytest.mark.parametrize("raw", [{"input_tokens": "many"}, {"output_tokens": [3]},
                                 {"output_tokens": 1, "output_tokens_details": [1]}])  # fmt: skip
def test_usage_counts_that_are_no_numbers_are_a_502_not_a_crash(raw: dict[str, Any]) -> None:
    with pytest.raises(ProviderError) as refused:
        usage(raw)
    assert (refused.value.status_code, refused.value.code) == (502, "upstream_bad_response")
