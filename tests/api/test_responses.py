"""/v1/responses through the gateway, driven by the official `openai` SDK over loopback, for every provider's fake."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx2
import openai
import pytest
from openai.types.responses import Response

from tests.api import test_responses_support as support
from tests.api.test_responses_support import MASTER_KEY, Fakes
from tests.e2e.gemini_support import PNG
from tests.fakes.streams import disconnects_after

fakes, gateway_url, client = support.fakes, support.gateway_url, support.client

TEXT_MODELS = ["text", "claude-sonnet-4-5", "g-text"]
TOOL_MODELS = ["tools", "claude-tools", "g-tools", "g3-tools"]
WEATHER: Any = {"type": "function", "name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}  # fmt: skip
TIME: Any = {"type": "function", "name": "get_time",
        "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}}}  # fmt: skip


def comparable(response: Response) -> dict[str, Any]:
    """The response without what differs between two calls (ids, time)."""
    data = response.model_dump(exclude_none=True)
    for key in ("id", "created_at"):
        data.pop(key)
    for item in data["output"]:
        item.pop("id", None)
        item.pop("call_id", None)  # the fakes make a new one per call
        if "arguments" in item:
            item["arguments"] = json.loads(item["arguments"])
    return data


@pytest.mark.parametrize("model", TEXT_MODELS)
def test_a_text_answer_streamed_rebuilds_the_same_object_as_not_streamed(client: openai.OpenAI, model: str) -> None:
    plain = client.responses.create(model=model, input="hello", instructions="Be brief.")
    assert plain.status == "completed" and plain.object == "response" and plain.model == model
    assert plain.output_text.endswith("hello")
    assert [item.type for item in plain.output] == ["message"]
    assert plain.id.startswith("resp_") and plain.instructions == "Be brief."
    with client.responses.stream(model=model, input="hello", instructions="Be brief.") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert comparable(final) == comparable(plain)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]  # fmt: skip
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]  # fmt: skip
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == plain.output_text


def test_usage_counts_cached_input_and_reasoning_output_tokens(client: openai.OpenAI) -> None:
    response = client.responses.create(model="text", input="hi")
    usage = response.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (12, 7, 19)
    assert usage.input_tokens_details.cached_tokens == 2
    assert usage.output_tokens_details.reasoning_tokens == 3
    with client.responses.stream(model="text", input="hi") as stream:
        assert stream.get_final_response().usage == usage


def test_options_reach_the_upstream_as_chat_parameters(client: openai.OpenAI, fakes: Fakes) -> None:
    response = client.responses.create(
        model="text",
        input=[{"role": "developer", "content": "Answer in French."},
               {"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        instructions="Be brief.", max_output_tokens=50, temperature=0.2, top_p=0.5, metadata={"team": "a"},
        reasoning={"effort": "low"}, parallel_tool_calls=False, tools=[WEATHER], tool_choice="auto",
    )  # fmt: skip
    sent = fakes.openai.requests[-1]
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
    ]
    assert (sent["max_completion_tokens"], sent["temperature"], sent["top_p"]) == (50, 0.2, 0.5)
    assert (sent["reasoning_effort"], sent["parallel_tool_calls"], sent["tool_choice"]) == ("low", False, "auto")
    assert sent["tools"] == [{"type": "function", "function": {k: v for k, v in WEATHER.items() if k != "type"}}]
    assert "metadata" not in sent
    assert (response.metadata, response.max_output_tokens, response.temperature) == ({"team": "a"}, 50, 0.2)


def test_json_schema_text_format_becomes_a_response_format(client: openai.OpenAI, fakes: Fakes) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    response = client.responses.create(
        model="json", input="status?",
        text={"format": {"type": "json_schema", "name": "status", "schema": schema, "strict": True}},
    )  # fmt: skip
    assert json.loads(response.output_text) == {"ok": True}
    assert fakes.openai.requests[-1]["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "status", "schema": schema, "strict": True}}  # fmt: skip
    client.responses.create(model="json", input="status?", text={"format": {"type": "json_object"}})
    assert fakes.openai.requests[-1]["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize("model", TOOL_MODELS)
def test_function_calls_round_trip_streamed_and_not(client: openai.OpenAI, model: str) -> None:
    first = client.responses.create(model=model, input="weather and time?", tools=[WEATHER, TIME])
    calls = [item for item in first.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert len({c.call_id for c in calls}) == 2 and all(json.loads(c.arguments) for c in calls)
    with client.responses.stream(model=model, input="weather and time?", tools=[WEATHER, TIME]) as stream:
        events = list(stream)
        streamed = stream.get_final_response()
    assert [(i.type, getattr(i, "name", None)) for i in streamed.output] == [
        (i.type, getattr(i, "name", None)) for i in first.output
    ]
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert [json.loads(e.arguments) for e in done] == [json.loads(c.arguments) for c in calls]
    history: list[Any] = [{"role": "user", "content": "weather and time?"}]
    history += [c.model_dump(exclude_none=True) for c in calls]
    history += [{"type": "function_call_output", "call_id": c.call_id, "output": f"result {c.name}"} for c in calls]
    second = client.responses.create(model=model, input=history, tools=[WEATHER, TIME])
    assert second.status == "completed"
    if model != "tools":  # the OpenAI fake's `tools` model calls tools whatever it is sent
        assert "result get_weather" in second.output_text


def test_function_call_items_reach_the_upstream_as_one_assistant_turn_and_tool_messages(
    client: openai.OpenAI, fakes: Fakes
) -> None:
    history: list[Any] = [
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": "call_a", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"type": "function_call", "call_id": "call_b", "name": "get_time", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_a", "output": "sunny"},
        {"type": "function_call_output", "call_id": "call_b", "output": [{"type": "input_text", "text": "noon"}]},
    ]
    client.responses.create(model="text", input=history, tools=[WEATHER, TIME])
    sent = fakes.openai.requests[-1]["messages"]
    assert sent[1:] == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_b", "content": "noon"},
    ]  # fmt: skip


def test_a_cut_answer_is_incomplete_with_the_reason_streamed_and_not(client: openai.OpenAI) -> None:
    plain = client.responses.create(model="claude-stop-max_tokens", input="hi")
    assert plain.status == "incomplete"
    assert plain.incomplete_details is not None and plain.incomplete_details.reason == "max_output_tokens"
    with client.responses.stream(model="claude-stop-max_tokens", input="hi") as stream:
        kinds = [e.type for e in stream]
    assert kinds[-1] == "response.incomplete"


def test_an_image_part_reaches_the_upstream_as_an_image(client: openai.OpenAI, fakes: Fakes) -> None:
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    parts: Any = [{"type": "input_text", "text": "what?"}, {"type": "input_image", "image_url": url, "detail": "low"}]
    client.responses.create(model="text", input=[{"role": "user", "content": parts}])
    assert fakes.openai.requests[-1]["messages"][-1]["content"][1] == {
        "type": "image_url", "image_url": {"url": url, "detail": "low"}}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "text"}, "input"),
        ({"model": "text", "input": []}, "input"),
        ({"model": "text", "input": 3}, "input"),
        ({"input": "hi"}, "model"),
        ({"model": "text", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "text", "input": [{"type": "bogus"}]}, "input[0].type"),
        ({"model": "text", "input": "hi", "tools": [{"type": "custom", "name": "apply_patch"}]}, "tools[0].type"),
        ({"model": "text", "input": "hi", "tool_choice": "sometimes"}, "tool_choice"),
        ({"model": "text", "input": "hi", "text": {"format": {"type": "yaml"}}}, "text.format"),
        ({"model": "text", "input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": "text", "input": "hi", "stream": "yes"}, "stream"),
        ({"model": "text", "input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        ({"model": "text", "input": "hi", "metadata": ["a"]}, "metadata"),
        ({"model": "text", "input": "hi", "store": "yes"}, "store"),
        ({"model": "text", "input": "hi", "previous_response_id": 7}, "previous_response_id"),
        ({"model": "text", "input": "hi", "background": True}, "background"),
        (
            {"model": "text", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].image_url",
        ),
    ],
)
def test_bad_requests_get_a_400_naming_the_parameter(gateway_url: str, body: dict[str, Any], param: str) -> None:
    answer = httpx2.post(f"{gateway_url}/v1/responses", json=body, headers={"Authorization": f"Bearer {MASTER_KEY}"})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


def test_errors_keep_openai_shape(client: openai.OpenAI, gateway_url: str) -> None:
    with pytest.raises(openai.NotFoundError) as unknown_model:
        client.responses.create(model="no-such-model", input="hi")
    assert unknown_model.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError) as unknown_previous:
        client.responses.create(model="text", input="hi", previous_response_id="resp_nope")
    assert "resp_nope" in unknown_previous.value.message
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="error-400", input="hi")
    anonymous = httpx2.post(f"{gateway_url}/v1/responses", json={"model": "text", "input": "hi"})
    assert anonymous.status_code == 401 and anonymous.json()["error"]["type"] == "authentication_error"


def test_an_upstream_failing_mid_stream_ends_with_response_failed(gateway_url: str) -> None:
    body = {"model": "midstream-error", "input": "hi", "stream": True}
    with httpx2.stream("POST", f"{gateway_url}/v1/responses", json=body,
                       headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=20) as answer:  # fmt: skip
        lines = [line for line in answer.iter_lines() if line]
    names = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    data = [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]
    assert names == [d["type"] for d in data]
    assert names[0] == "response.created" and names[-1] == "response.failed"
    assert data[-1]["response"]["status"] == "failed" and data[-1]["response"]["error"]["message"]


@pytest.mark.parametrize("model", ["claude-think", "g3-thinking"])
def test_thinking_becomes_a_reasoning_item_with_its_summary_streamed_and_not(client: openai.OpenAI, model: str) -> None:
    options: Any = {"model": model, "input": "6 x 7?", "reasoning": {"effort": "low"}, "tools": [WEATHER, TIME]}
    plain = client.responses.create(**options)
    assert plain.output[0].type == "reasoning" and plain.output[0].summary[0].text
    with client.responses.stream(**options) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert comparable(final) == comparable(plain)
    assert kinds[2:5] == ["response.output_item.added", "response.reasoning_summary_part.added",
                          "response.reasoning_summary_text.delta"]  # fmt: skip


@pytest.mark.parametrize("model", ["claude-think", "g3-tools"])
def test_a_tool_round_trip_keeps_the_upstreams_thinking_signatures(client: openai.OpenAI, model: str) -> None:
    options: Any = {"model": model, "reasoning": {"effort": "low"}, "tools": [WEATHER, TIME]}
    history: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    response: Any = None
    for _ in range(3):
        response = client.responses.create(input=history, **options)
        calls = [item for item in response.output if item.type == "function_call"]
        if not calls:
            break
        history += [item.model_dump(exclude_none=True) for item in response.output]
        history += [{"type": "function_call_output", "call_id": c.call_id, "output": "sunny"} for c in calls]
    assert response.status == "completed" and response.output_text


def test_a_client_leaving_a_stream_cancels_the_upstream(gateway_url: str, fakes: Fakes) -> None:
    fake = fakes.openai
    before = fake.disconnects
    started = time.monotonic()
    body = {"model": "slow-1", "input": "hi", "stream": True}
    with httpx2.stream("POST", f"{gateway_url}/v1/responses", json=body,
                       headers={"Authorization": f"Bearer {MASTER_KEY}"}) as answer:  # fmt: skip
        assert next(answer.iter_lines()) == "event: response.created"
    assert disconnects_after(fake, before) == before + 1
    assert time.monotonic() - started < 5  # the full stream would take 7 s


def test_spend_is_logged_for_responses_as_for_chat(gateway_url: str, client: openai.OpenAI) -> None:
    client.responses.create(model="text-20", input="count me")
    logs = httpx2.get(f"{gateway_url}/spend/logs", params={"model": "text-20"},
                      headers={"Authorization": f"Bearer {MASTER_KEY}"}).json()["data"]  # fmt: skip
    assert logs and (logs[0]["prompt_tokens"], logs[0]["completion_tokens"]) == (12, 7)
