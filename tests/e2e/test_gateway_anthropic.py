"""/v1 over Anthropic's Messages API (a fake that enforces the real rules), driven by the official `openai` SDK."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletion

from tests.e2e import anthropic_conftest as fixtures
from tests.e2e.anthropic_conftest import MASTER_KEY, raw_chunks
from tests.fakes.anthropic_upstream import (
    API_KEY,
    EMAIL_USER_ID,
    FORCED_TOOL_WITH_THINKING,
    TEMPERATURE_AND_TOP_P,
    TRAILING_WHITESPACE,
    FakeAnthropic,
)
from tests.fakes.streams import disconnects_after

fake_anthropic, fake = fixtures.fake_anthropic, fixtures.fake
anthropic_gateway, claude = fixtures.anthropic_gateway, fixtures.claude

USER = [{"role": "user", "content": "hi"}]
TOOLS: Any = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "get_time",
                                      "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}},
]  # fmt: skip
PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
    "AAAABJRU5ErkJggg=="
)
CAT = "https://example.com/cat.jpg"


def test_plain_text_with_usage_and_the_required_anthropic_fields(claude: openai.OpenAI, fake: FakeAnthropic) -> None:
    completion = claude.chat.completions.create(
        model="claude-sonnet-4-5", messages=[{"role": "system", "content": "Be brief."}, *USER]
    )
    assert isinstance(completion, ChatCompletion)
    assert completion.choices[0].message.content == "You said: hi"
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (18, 7, 25)
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 5
    sent, headers = fake.requests[-1], fake.headers[-1]
    assert (headers["x-api-key"], headers["anthropic-version"]) == (API_KEY, "2023-06-01")
    assert sent["max_tokens"] == 8192
    assert sent["system"] == [{"type": "text", "text": "Be brief."}]
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


def test_multi_turn_history_is_sent_alternating_with_system_on_top(claude: openai.OpenAI, fake: FakeAnthropic) -> None:
    messages: Any = [
        {"role": "developer", "content": "Rule one."},
        {"role": "user", "content": "first"},
        {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "text", "text": "  "}]},
        {"role": "assistant", "content": "answer"},
        {"role": "system", "content": [{"type": "text", "text": "Rule two."}]},
        {"role": "user", "content": "third"},
    ]
    completion = claude.chat.completions.create(model="claude-sonnet-4-5", messages=messages)
    assert completion.choices[0].message.content == "You said: third"
    sent = fake.requests[-1]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert [b["text"] for b in sent["messages"][0]["content"]] == ["first", "second"]
    assert [b["text"] for b in sent["system"]] == ["Rule one.", "Rule two."]


def test_images_as_data_url_and_http_url(claude: openai.OpenAI, fake: FakeAnthropic) -> None:
    content: Any = [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": PNG}},
                    {"type": "image_url", "image_url": {"url": CAT, "detail": "low"}}]  # fmt: skip
    completion = claude.chat.completions.create(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": content}]
    )
    assert completion.choices[0].message.content == "You said: what is this [images: base64, url]"
    blocks = fake.requests[-1]["messages"][0]["content"]
    assert blocks[1]["source"] == {"type": "base64", "media_type": "image/png", "data": PNG.split(",", 1)[1]}
    assert blocks[2]["source"] == {"type": "url", "url": CAT}


def test_unsupported_image_type_is_a_400_naming_the_part(claude: openai.OpenAI) -> None:
    content: Any = [{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}]
    with pytest.raises(openai.BadRequestError) as exc_info:
        claude.chat.completions.create(model="claude-sonnet-4-5", messages=[{"role": "user", "content": content}])
    assert exc_info.value.param == "messages.[0].content.[0].image_url.url"


def test_parallel_tool_calls_non_streaming(claude: openai.OpenAI, fake: FakeAnthropic) -> None:
    completion = claude.chat.completions.create(model="claude-tools", messages=USER, tools=TOOLS)
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls"
    assert message.content == "Let me check."
    calls = [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []]  # pyright: ignore[reportAttributeAccessIssue]
    assert calls == [("get_weather", {"city": "Paris"}), ("get_time", {"timezone": "UTC"})]
    tools = fake.requests[-1]["tools"]
    assert tools[0] == {"name": "get_weather", "description": "Weather in a city",
                        "input_schema": TOOLS[0]["function"]["parameters"]}  # fmt: skip


def test_sdk_accumulator_rebuilds_parallel_tool_calls_from_the_stream(claude: openai.OpenAI) -> None:
    with claude.chat.completions.stream(model="claude-tools", messages=USER, tools=TOOLS) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [  # pyright: ignore[reportAttributeAccessIssue]
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"timezone": "UTC"}),
    ]
    assert all(c.id.startswith("toolu_01") for c in calls)
    assert final.choices[0].message.content == "Let me check."
    assert final.choices[0].finish_reason == "tool_calls"


def test_streamed_tool_call_fragments_follow_the_openai_rules(anthropic_gateway: str) -> None:
    chunks = raw_chunks(anthropic_gateway, {"model": "claude-tools", "messages": USER, "tools": TOOLS})
    fragments = [call for c in chunks for call in (c["choices"][0]["delta"].get("tool_calls") or [])]
    assert sorted({f["index"] for f in fragments}) == [0, 1]
    firsts = [f for f in fragments if "id" in f]
    assert [f["index"] for f in firsts] == [0, 1]
    assert all("name" not in f.get("function", {}) for f in fragments if "id" not in f)
    assert [c["choices"][0]["finish_reason"] for c in chunks].count("tool_calls") == 1
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_without_arguments_gets_an_empty_object(claude: openai.OpenAI, stream: bool) -> None:
    if stream:
        with claude.chat.completions.stream(model="claude-noargs", messages=USER, tools=TOOLS) as s:
            completion = s.get_final_completion()
    else:
        completion = claude.chat.completions.create(model="claude-noargs", messages=USER, tools=TOOLS)
    assert completion.choices[0].message.tool_calls[0].function.arguments == "{}"  # pyright: ignore[reportOptionalSubscript, reportAttributeAccessIssue]


def test_parallel_tool_results_go_back_in_one_user_message_before_text(
    claude: openai.OpenAI, fake: FakeAnthropic
) -> None:
    first = claude.chat.completions.create(model="claude-tools", messages=USER, tools=TOOLS)
    message = first.choices[0].message
    history: Any = [
        *USER,
        {"role": "assistant", "content": "", "tool_calls": [c.model_dump() for c in message.tool_calls or []]},
    ]
    history += [
        {"role": "tool", "tool_call_id": c.id, "content": f"result {i}"} for i, c in enumerate(message.tool_calls or [])
    ]
    history.append({"role": "user", "content": "and summarise"})
    completion = claude.chat.completions.create(model="claude-tools", messages=history, tools=TOOLS)
    assert completion.choices[0].message.content == "Results: result 0; result 1"
    sent = fake.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert [b["type"] for b in sent[1]["content"]] == ["tool_use", "tool_use"]
    assert [b["type"] for b in sent[2]["content"]] == ["tool_result", "tool_result", "text"]


def test_foreign_tool_call_ids_are_sanitized_on_both_sides(claude: openai.OpenAI, fake: FakeAnthropic) -> None:
    call = {
        "id": "fc.7|a+b/c=",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
    }
    history: Any = [*USER, {"role": "assistant", "content": None, "tool_calls": [call]},
                    {"role": "tool", "tool_call_id": "fc.7|a+b/c=", "content": "rain"}]  # fmt: skip
    completion = claude.chat.completions.create(model="claude-sonnet-4-5", messages=history, tools=TOOLS)
    assert completion.choices[0].message.content == "Results: rain"
    sent = fake.requests[-1]["messages"]
    assert sent[1]["content"][0]["id"] == sent[2]["content"][0]["tool_use_id"]


def _turn(claude: openai.OpenAI, messages: list[Any], stream: bool) -> Any:
    kwargs: Any = {"model": "claude-think", "messages": messages, "tools": TOOLS, "reasoning_effort": "low"}
    if stream:
        with claude.chat.completions.stream(**kwargs) as s:
            return s.get_final_completion().choices[0].message
    return claude.chat.completions.create(**kwargs).choices[0].message


def _as_history(message: Any) -> dict[str, Any]:
    """What a plain OpenAI client sends back: content and tool calls, no thinking signatures."""
    return {"role": "assistant", "content": message.content or "",
            "tool_calls": [{"id": c.id, "type": "function", "function": {"name": c.function.name,
                                                                         "arguments": c.function.arguments}}
                           for c in message.tool_calls or []]}  # fmt: skip


@pytest.mark.parametrize("stream", [False, True])
def test_three_turn_tool_conversation_with_thinking_keeps_signatures_on_the_gateway(
    claude: openai.OpenAI, fake: FakeAnthropic, stream: bool
) -> None:
    refusals = len(fake.refusals)
    messages: list[Any] = [{"role": "user", "content": "Weather and time in Paris?"}]
    first = _turn(claude, messages, stream)
    assert first.tool_calls[0].function.name == "get_weather"
    assert first.model_extra["reasoning_content"] == "Step 0: I should call a tool."
    messages += [_as_history(first), {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "sunny"}]
    second = _turn(claude, messages, stream)
    assert second.tool_calls[0].function.name == "get_time"
    sent = fake.requests[-1]
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert [b["type"] for b in sent["messages"][1]["content"]] == ["thinking", "tool_use"]
    messages += [_as_history(second), {"role": "tool", "tool_call_id": second.tool_calls[0].id, "content": "12:00"}]
    third = _turn(claude, messages, stream)
    assert third.content == "Paris is sunny at noon UTC."
    assert third.tool_calls in (None, [])
    sent = fake.requests[-1]
    assert "thinking" in sent
    assert [b["type"] for b in sent["messages"][3]["content"]] == ["redacted_thinking", "thinking", "tool_use"]
    assert len(fake.refusals) == refusals


def test_the_fake_refuses_that_history_without_the_restored_thinking(fake_anthropic: tuple[FakeAnthropic, str]) -> None:
    use = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}
    body = {"model": "claude-think", "max_tokens": 4096, "thinking": {"type": "enabled", "budget_tokens": 1024},
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": [use]},
                         {"role": "user", "content": [result]}]}  # fmt: skip
    response = httpx2.post(f"{fake_anthropic[1]}/v1/messages", json=body,
                           headers={"x-api-key": API_KEY, "anthropic-version": "2023-06-01"})  # fmt: skip
    assert response.status_code == 400
    assert "Expected 'thinking' or 'redacted_thinking', but found 'tool_use'" in response.json()["error"]["message"]


def test_lost_thinking_blocks_disable_thinking_for_that_request(
    claude: openai.OpenAI, fake: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    call = {
        "id": "toolu_01unknownToTheGateway",
        "type": "function",
        "function": {"name": "get_weather", "arguments": "{}"},
    }
    messages: Any = [{"role": "user", "content": "Weather?"},
                     {"role": "assistant", "content": "", "tool_calls": [call], "reasoning_content": "lost thoughts"},
                     {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="toolhub.providers.anthropic"):
        message = _turn(claude, messages, stream=False)
    assert message.tool_calls[0].function.name == "get_time"
    assert "thinking" not in fake.requests[-1]
    assert any("thinking disabled for this request" in r.getMessage() for r in caplog.records)


def test_forced_tool_choice_with_thinking_falls_back_to_auto_or_is_refused_when_strict(
    claude: openai.OpenAI, fake: FakeAnthropic
) -> None:
    kwargs: Any = {"messages": USER, "tools": TOOLS, "reasoning_effort": "medium", "tool_choice": "required"}
    message = claude.chat.completions.create(model="claude-think", **kwargs).choices[0].message
    assert message.tool_calls
    assert fake.requests[-1]["tool_choice"] == {"type": "auto"}
    assert FORCED_TOOL_WITH_THINKING not in fake.refusals
    with pytest.raises(openai.BadRequestError) as exc_info:
        claude.chat.completions.create(model="claude-think-strict", **kwargs)
    assert (exc_info.value.param, exc_info.value.code) == ("tool_choice", "unsupported_parameter")


def test_json_schema_answer_is_message_content_that_parses(claude: openai.OpenAI, fake: FakeAnthropic) -> None:
    schema: Any = {"type": "json_schema", "json_schema": {"name": "weather", "schema": {
        "type": "object", "properties": {"city": {"type": "string"}, "temp_c": {"type": "number"}},
        "required": ["city", "temp_c"], "additionalProperties": False}}}  # fmt: skip
    completion = claude.chat.completions.create(model="claude-json", messages=USER, response_format=schema)
    assert json.loads(completion.choices[0].message.content or "") == {"city": "Paris", "temp_c": 21}
    assert fake.requests[-1]["output_config"]["format"]["schema"] == schema["json_schema"]["schema"]


def test_json_object_answer_loses_its_code_fence(claude: openai.OpenAI, fake: FakeAnthropic) -> None:
    completion = claude.chat.completions.create(
        model="claude-json", messages=USER, response_format={"type": "json_object"}
    )
    assert json.loads(completion.choices[0].message.content or "") == {"city": "Paris", "temp_c": 21}
    assert "JSON" in fake.requests[-1]["system"][-1]["text"]
    stream = claude.chat.completions.create(
        model="claude-json", messages=USER, response_format={"type": "json_object"}, stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert json.loads(text) == {"city": "Paris", "temp_c": 21}


def test_openai_parameters_are_translated_clamped_or_dropped(claude: openai.OpenAI, fake: FakeAnthropic) -> None:
    raw = claude.chat.completions.with_raw_response.create(
        model="claude-sonnet-4-5", messages=USER, temperature=1.7, top_p=0.9, stop=["END", "  "], max_tokens=100,
        user="user-42", seed=3, presence_penalty=0.5, extra_body={"num_ctx": 4096, "top_k": 5},
    )  # fmt: skip
    assert raw.headers["x-toolhub-dropped-params"] == "top_p,presence_penalty,seed,num_ctx"
    sent = fake.requests[-1]
    assert (sent["temperature"], sent["top_k"], sent["max_tokens"]) == (1.0, 5, 100)
    assert sent["stop_sequences"] == ["END"]
    assert sent["metadata"] == {"user_id": hashlib.sha256(b"user-42").hexdigest()[:32]}
    assert not {"num_ctx", "seed", "presence_penalty", "stop", "user", "top_p"} & set(sent)


def test_temperature_and_top_p_together_keep_temperature_or_are_refused_when_strict(
    anthropic_gateway: str, fake: FakeAnthropic
) -> None:
    body = {"messages": USER, "temperature": 0.7, "top_p": 0.9, "num_ctx": 2048}  # Open WebUI sends both
    answer = _post(anthropic_gateway, {"model": "claude-sonnet-4-5", **body})
    assert answer.status_code == 200, answer.text
    assert (fake.requests[-1]["temperature"], "top_p" in fake.requests[-1]) == (0.7, False)
    answer = _post(anthropic_gateway, {"model": "claude-sonnet-4-5-strict", **body})
    assert (answer.status_code, answer.json()["error"]["param"]) == (400, "top_p")


def test_the_fake_refuses_what_the_real_api_refuses(fake_anthropic: tuple[FakeAnthropic, str]) -> None:
    def refusal(model: str, messages: Any, **extra: Any) -> str:
        body = {"model": model, "max_tokens": 10, "messages": messages, **extra}
        answer = httpx2.post(f"{fake_anthropic[1]}/v1/messages", json=body, timeout=10,
                             headers={"x-api-key": API_KEY, "anthropic-version": "2023-06-01"})  # fmt: skip
        assert answer.status_code == 400, answer.text
        return answer.json()["error"]["message"]

    hi = [{"role": "user", "content": "hi"}]
    assert refusal("claude-sonnet-4-5", hi, temperature=0.5, top_p=0.9) == TEMPERATURE_AND_TOP_P
    assert refusal("claude-sonnet-4-5", hi, metadata={"user_id": "alice@example.com"}) == EMAIL_USER_ID
    prefill = [*hi, {"role": "assistant", "content": [{"type": "text", "text": "Sure "}]}]
    assert refusal("claude-sonnet-4-5", prefill) == TRAILING_WHITESPACE
    assert "valid number" in refusal("claude-sonnet-4-5", hi, temperature="0.5")


def test_user_is_sent_hashed_and_a_trailing_space_in_a_prefill_is_removed(
    anthropic_gateway: str, fake: FakeAnthropic
) -> None:
    prefill = [*USER, {"role": "assistant", "content": "Sure "}]
    answer = _post(anthropic_gateway, {"model": "claude-sonnet-4-5", "messages": prefill, "user": "alice@example.com"})
    assert answer.status_code == 200, answer.text
    assert fake.requests[-1]["metadata"]["user_id"] == hashlib.sha256(b"alice@example.com").hexdigest()[:32]
    assert fake.requests[-1]["messages"][-1]["content"] == [{"type": "text", "text": "Sure"}]


def test_allowed_tools_send_only_the_allowed_tools(anthropic_gateway: str, fake: FakeAnthropic) -> None:
    choice = {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [
        {"type": "function", "function": {"name": "get_time"}}]}}  # fmt: skip
    answer = _post(
        anthropic_gateway, {"model": "claude-tools", "messages": USER, "tools": TOOLS, "tool_choice": choice}
    )
    assert answer.status_code == 200, answer.text
    assert [t["name"] for t in fake.requests[-1]["tools"]] == ["get_time"]
    assert fake.requests[-1]["tool_choice"] == {"type": "tool", "name": "get_time"}
    assert [c["function"]["name"] for c in answer.json()["choices"][0]["message"]["tool_calls"]] == ["get_time"]


def test_tool_parameters_without_a_type_are_sent_as_an_object_schema(
    anthropic_gateway: str, fake: FakeAnthropic
) -> None:
    tool = {"type": "function", "function": {"name": "x", "parameters": {"properties": {"a": {"type": "string"}}}}}
    answer = _post(anthropic_gateway, {"model": "claude-sonnet-4-5", "messages": USER, "tools": [tool]})
    assert answer.status_code == 200, answer.text
    assert fake.requests[-1]["tools"][0]["input_schema"] == {"type": "object", "properties": {"a": {"type": "string"}}}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": "abc"}}, "thinking.budget_tokens"),
        ({"reasoning_effort": ["high"]}, "reasoning_effort"),
        ({"response_format": {"type": "json_schema", "json_schema": "x"}}, "response_format.json_schema.schema"),
        ({"reasoning_effort": "low", "top_p": "0.9"}, "top_p"),
        ({"temperature": "0.5"}, "temperature"),
        ({"max_completion_tokens": "100"}, "max_completion_tokens"),
        ({"tools": TOOLS, "tool_choice": {"type": "allowed_tools", "allowed_tools": "x"}}, "tool_choice.allowed_tools"),
    ],
)
def test_malformed_parameters_are_a_400_naming_them(anthropic_gateway: str, extra: dict[str, Any], param: str) -> None:
    answer = _post(anthropic_gateway, {"model": "claude-sonnet-4-5", "messages": USER, **extra})
    assert answer.status_code == 400, answer.text
    assert (answer.json()["error"]["param"], answer.json()["error"]["type"]) == (param, "invalid_request_error")


def _post(gateway_url: str, body: dict[str, Any]) -> httpx2.Response:
    return httpx2.post(f"{gateway_url}/v1/chat/completions", json=body, timeout=20,
                       headers={"Authorization": f"Bearer {MASTER_KEY}"})  # fmt: skip


def test_config_defaults_beta_header_and_v1_api_base(claude: openai.OpenAI, fake: FakeAnthropic) -> None:
    claude.chat.completions.create(model="claude-small", messages=USER)
    assert fake.requests[-1]["max_tokens"] == 333
    claude.chat.completions.create(model="claude-beta", messages=USER)
    assert fake.headers[-1]["anthropic-beta"] == fixtures.BETA
    assert claude.chat.completions.create(model="claude-v1-base", messages=USER).choices[0].message.content


@pytest.mark.parametrize(("model", "finish"), [("claude-stop-max_tokens", "length"),
                                               ("claude-stop-refusal", "content_filter"),
                                               ("claude-stop-stop_sequence", "stop")])  # fmt: skip
def test_stop_reasons_map_to_finish_reasons(
    claude: openai.OpenAI, anthropic_gateway: str, model: str, finish: str
) -> None:
    assert claude.chat.completions.create(model=model, messages=USER).choices[0].finish_reason == finish
    assert (
        raw_chunks(anthropic_gateway, {"model": model, "messages": USER})[-1]["choices"][0]["finish_reason"] == finish
    )


def test_stream_text_without_usage_unless_asked(anthropic_gateway: str) -> None:
    chunks = raw_chunks(anthropic_gateway, {"model": "claude-sonnet-4-5", "messages": USER})
    assert all("usage" not in c and c["choices"] for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "You said: hi"
    with_usage = raw_chunks(anthropic_gateway, {"model": "claude-sonnet-4-5", "messages": USER,
                                                "stream_options": {"include_usage": True}})  # fmt: skip
    assert with_usage[-1]["choices"] == []
    assert with_usage[-1]["usage"]["prompt_tokens"] == 18
    assert with_usage[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 5
    assert with_usage[-2]["choices"][0]["finish_reason"] == "stop"


def test_include_usage_through_the_sdk(claude: openai.OpenAI) -> None:
    chunks = list(claude.chat.completions.create(model="claude-sonnet-4-5", messages=USER, stream=True,
                                                 stream_options={"include_usage": True}))  # fmt: skip
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7
    assert all(c.usage is None for c in chunks[:-1])


@pytest.mark.parametrize(
    ("model", "error", "status"),
    [
        ("error-400", openai.BadRequestError, 400),
        ("error-401", openai.AuthenticationError, 401),
        ("claude-wrong-key", openai.AuthenticationError, 401),
        ("error-403", openai.PermissionDeniedError, 403),
        ("error-404", openai.NotFoundError, 404),
        ("error-413", openai.APIStatusError, 413),
        ("error-429", openai.RateLimitError, 429),
        ("error-500", openai.InternalServerError, 502),
        ("error-529", openai.InternalServerError, 503),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_errors_map_to_openai_errors(
    claude: openai.OpenAI, model: str, error: type[openai.APIStatusError], status: int, stream: bool
) -> None:
    with pytest.raises(error) as exc_info:
        result = claude.chat.completions.create(model=model, messages=USER, stream=stream)
        if stream:
            list(result)  # pyright: ignore[reportArgumentType, reportCallIssue]
    assert exc_info.value.status_code == status
    upstream = 401 if model == "claude-wrong-key" else int(model.split("-")[1])
    assert exc_info.value.body["message"].startswith(f"anthropic error ({upstream}): ")  # pyright: ignore[reportIndexIssue]
    assert exc_info.value.code in ("invalid_request_error", "authentication_error", "permission_error",
                                   "not_found_error", "request_too_large", "rate_limit_error", "api_error",
                                   "overloaded_error")  # fmt: skip
    if status == 429:
        assert exc_info.value.response.headers["retry-after"] == "7"


@pytest.mark.parametrize(("model", "detail"), [("claude-midstream-error", "overloaded_error"),
                                               ("claude-broken", "anthropic")])  # fmt: skip
def test_mid_stream_failure_becomes_a_final_error_event(
    anthropic_gateway: str, claude: openai.OpenAI, model: str, detail: str
) -> None:
    body = {"model": model, "messages": USER, "stream": True}
    with httpx2.stream("POST", f"{anthropic_gateway}/v1/chat/completions", json=body,
                       headers={"Authorization": f"Bearer {MASTER_KEY}"}) as response:  # fmt: skip
        assert response.status_code == 200
        events = [line for line in response.iter_lines() if line]
    last = json.loads(events[-1].removeprefix("data: "))
    assert detail in last["error"]["message"]
    # the stream had started; whether the text delta before the drop arrives depends on it leaving the fake's
    # buffers before the drop (what arrived is read before the error is raised)
    assert json.loads(events[0].removeprefix("data: "))["choices"][0]["delta"]["role"] == "assistant"
    assert not any("[DONE]" in e for e in events)
    with pytest.raises(openai.APIError):
        list(claude.chat.completions.create(model=model, messages=USER, stream=True))


def test_client_disconnect_cancels_the_upstream_stream(anthropic_gateway: str, fake: FakeAnthropic) -> None:
    before = fake.disconnects
    body = {"model": "claude-slow", "messages": USER, "stream": True}
    with httpx2.stream("POST", f"{anthropic_gateway}/v1/chat/completions", json=body,
                       headers={"Authorization": f"Bearer {MASTER_KEY}"}) as response:  # fmt: skip
        first = next(line for line in response.iter_lines() if line)
    assert json.loads(first.removeprefix("data: "))["choices"][0]["delta"]["role"] == "assistant"
    assert disconnects_after(fake, before) == before + 1
