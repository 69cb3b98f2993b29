"""/v1 over Gemini: the fake Gemini API behind the real gateway, driven by the official `openai` SDK on loopback."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from hub.config import parse_config
from hub.server import build_app
from providers import _http
from tests.e2e.gemini_support import MASTER_KEY, PNG, PNG_SHA, gateway_config, image_app
from tests.fakes.gemini_upstream import API_KEY, HUGE, MISSING_SIGNATURE, FakeGemini
from tests.fakes.streams import disconnects_after
from tests.support.servers import serve_app

USER = [{"role": "user", "content": "hello"}]
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}  # fmt: skip
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {
    "type": "object", "properties": {"timezone": {"type": "string"}}}}}  # fmt: skip
ORDER_TOOLS = [{"type": "function", "function": {"name": name, "parameters": {
    "type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}
    for name in ("lookup_order", "get_shipping")]  # fmt: skip

Fake = tuple[FakeGemini, str]


@pytest.fixture(scope="module")
def fake_gemini() -> Iterator[Fake]:
    fake = FakeGemini()
    with serve_app(fake.app) as url:
        yield fake, url


def _gateway(upstream: str) -> Any:
    return serve_app(build_app(parse_config(gateway_config(upstream), {"FAKE_GEMINI_KEY": API_KEY})))


@pytest.fixture(scope="module")
def gateway_url(fake_gemini: Fake) -> Iterator[str]:
    with _gateway(fake_gemini[1]) as url:
        yield url


@pytest.fixture(scope="module")
def images_url() -> Iterator[str]:
    with serve_app(image_app()) as url:
        yield url


@pytest.fixture
def client(gateway_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=20) as c:
        yield c


def raw_stream(gateway_url: str, body: dict[str, Any]) -> list[str]:
    with httpx2.stream("POST", f"{gateway_url}/v1/chat/completions", json={**body, "stream": True},
                       headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=20) as response:  # fmt: skip
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return [line for line in response.iter_lines() if line]


def parse_events(events: list[str]) -> list[dict[str, Any]]:
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    return chunks


def assistant_turn(message: Any) -> dict[str, Any]:
    """The assistant message as an OpenAI client sends it back: no signatures, nothing Gemini-specific."""
    calls = [{"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
             for c in message.tool_calls or ()]  # fmt: skip
    return {"role": "assistant", "content": message.content, **({"tool_calls": calls} if calls else {})}


# ---- text ---------------------------------------------------------------------------------------------------------


def test_plain_text_completion_has_openai_shape_and_mapped_usage(client: openai.OpenAI, fake_gemini: Fake) -> None:
    completion = client.chat.completions.create(model="g-text", messages=USER, max_tokens=50, temperature=0.3)
    assert isinstance(completion, ChatCompletion)
    assert completion.choices[0].message.content == "You said: hello"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (
        25, 7, 32)  # fmt: skip
    assert completion.usage.prompt_tokens_details and completion.usage.prompt_tokens_details.cached_tokens == 4
    sent = fake_gemini[0].requests[-1]
    assert sent["generationConfig"] == {"maxOutputTokens": 50, "temperature": 0.3}
    assert fake_gemini[0].headers[-1]["x-goog-api-key"] == API_KEY


def test_stream_relays_each_gemini_chunk_finish_last_and_no_usage_unless_asked(gateway_url: str) -> None:
    chunks = parse_events(raw_stream(gateway_url, {"model": "g-text-20", "messages": [
        {"role": "user", "content": "count to twenty please"}]}))  # fmt: skip
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "You said: count to twenty please"
    assert len(chunks) == 22  # role chunk, 20 content chunks, finish chunk
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * 21 + ["stop"]
    assert all("usage" not in c for c in chunks)
    assert len({c["id"] for c in chunks}) == 1


def test_stream_with_include_usage_ends_with_the_last_gemini_usage(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="g-text", messages=USER, stream=True,
                                                 stream_options={"include_usage": True}))  # fmt: skip
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (25, 7)  # the last chunk's numbers
    assert all(c.usage is None for c in chunks[:-1])


@pytest.mark.parametrize("stream", [False, True])
def test_n_and_logprobs_are_dropped_and_named_in_a_header(client: openai.OpenAI, stream: bool) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="g-text", messages=USER, n=1, logprobs=True, presence_penalty=0.2, stream=stream
    )
    assert raw.headers["x-toolhub-dropped-params"] == "presence_penalty,logprobs"
    raw.parse()


def test_multi_turn_with_system_prompt_reaches_gemini_as_system_instruction_and_user_model_roles(
    client: openai.OpenAI, fake_gemini: Fake
) -> None:
    completion = client.chat.completions.create(model="g3-text", messages=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "again"}])  # fmt: skip
    assert completion.choices[0].message.content == "You said: again"
    sent = fake_gemini[0].requests[-1]
    assert sent["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [(c["role"], c["parts"]) for c in sent["contents"]] == [
        ("user", [{"text": "hi"}]), ("model", [{"text": "Hello!"}]), ("user", [{"text": "again"}])]  # fmt: skip


def test_thoughts_come_back_as_reasoning_content(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="g3-thinking", messages=USER, reasoning_effort="low")
    message = completion.choices[0].message
    assert (message.content, getattr(message, "reasoning_content", None)) == ("42", "Six times seven.")
    assert completion.usage is not None and completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == 17
    chunks = list(client.chat.completions.create(model="g3-thinking", messages=USER, stream=True))
    assert [getattr(c.choices[0].delta, "reasoning_content", None) for c in chunks[1:3]] == ["Six times seven.", None]


# ---- images -------------------------------------------------------------------------------------------------------


def test_data_url_and_http_images_reach_gemini_inline(client: openai.OpenAI, images_url: str) -> None:
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    content = [{"type": "text", "text": "What are these?"},
               {"type": "image_url", "image_url": {"url": data_url}},
               {"type": "image_url", "image_url": {"url": f"{images_url}/cat.png"}},
               {"type": "image_url", "image_url": {"url": f"{images_url}/untyped"}},
               {"type": "image_url", "image_url": {"url": f"{images_url}/redirect-to-cat"}}]  # fmt: skip
    completion = client.chat.completions.create(model="g-echo", messages=[{"role": "user", "content": content}])  # pyright: ignore[reportArgumentType]
    described = f"image/png {len(PNG)} bytes sha256:{PNG_SHA}"
    assert completion.choices[0].message.content == ", ".join(["text", described, described, described, described])


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/huge.png", "over the gateway's limit"), ("/missing.png", "HTTP 404"), ("/page.html", "not an image")],
)
def test_an_image_url_that_cannot_be_used_is_a_400_naming_it(
    client: openai.OpenAI, images_url: str, path: str, reason: str
) -> None:
    url = f"{images_url}{path}"
    with pytest.raises(openai.BadRequestError) as exc_info:
        client.chat.completions.create(model="g-echo", messages=[
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}])  # fmt: skip
    assert url in exc_info.value.message and reason in exc_info.value.message
    assert exc_info.value.code == "invalid_image_url"


def test_an_unreachable_image_url_is_a_400_naming_it(client: openai.OpenAI) -> None:
    url = "http://127.0.0.1:9/cat.png"
    with pytest.raises(openai.BadRequestError) as exc_info:
        client.chat.completions.create(model="g-echo", stream=True, messages=[
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}])  # fmt: skip
    assert url in exc_info.value.message


def test_image_urls_on_private_addresses_are_refused_by_default(client: openai.OpenAI, images_url: str) -> None:
    url = f"{images_url}/cat.png"
    with pytest.raises(openai.BadRequestError) as exc_info:
        client.chat.completions.create(model="g-public-images-only", messages=[
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}])  # fmt: skip
    assert "is the non-public address 127.0.0.1" in exc_info.value.message
    assert "allow_private_image_urls" in exc_info.value.message


# ---- tools --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["g-tools", "g3-tools"])
def test_parallel_tool_calls_rebuild_in_the_sdk_accumulator_and_results_go_back_in_one_turn(
    client: openai.OpenAI, fake_gemini: Fake, model: str
) -> None:
    with client.chat.completions.stream(model=model, messages=USER, tools=[WEATHER, TIME]) as stream:  # pyright: ignore[reportArgumentType]
        final = stream.get_final_completion()
    plain = client.chat.completions.create(model=model, messages=USER, tools=[WEATHER, TIME])  # pyright: ignore[reportArgumentType]
    for completion in (final, plain):
        calls = completion.choices[0].message.tool_calls or []
        assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [  # pyright: ignore[reportAttributeAccessIssue]
            ("get_weather", {"city": "Paris"}), ("get_time", {"timezone": "UTC"})]  # fmt: skip
        assert len({c.id for c in calls}) == 2 and all(c.id.startswith("call_") and len(c.id) <= 40 for c in calls)
        assert completion.choices[0].finish_reason == "tool_calls"
    calls = final.choices[0].message.tool_calls or []
    history = [*USER, assistant_turn(final.choices[0].message),
               {"role": "tool", "tool_call_id": calls[1].id, "content": "12:00"},
               {"role": "tool", "tool_call_id": calls[0].id, "content": '{"sky": "clear"}'}]  # fmt: skip
    answer = client.chat.completions.create(model=model, messages=history, tools=[WEATHER, TIME])  # pyright: ignore[reportArgumentType]
    assert (
        answer.choices[0].message.content
        == 'Results: get_weather={"output": {"sky": "clear"}}; get_time={"output": "12:00"}'
    )
    assert [c["role"] for c in fake_gemini[0].requests[-1]["contents"]] == ["user", "model", "user"]


def test_three_turn_tool_conversation_on_gemini_3_works_because_the_gateway_restores_signatures(
    client: openai.OpenAI, fake_gemini: Fake
) -> None:
    fake = fake_gemini[0]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Where is my order A1?"}]
    answers = []
    for turn in range(3):
        if turn == 1:  # mix the non-streamed and the streamed path
            completion = client.chat.completions.create(model="g3-agent", messages=messages, tools=ORDER_TOOLS,  # pyright: ignore[reportArgumentType]
                                                        reasoning_effort="low")  # fmt: skip
        else:
            with client.chat.completions.stream(model="g3-agent", messages=messages, tools=ORDER_TOOLS,  # pyright: ignore[reportArgumentType]
                                                reasoning_effort="low") as stream:  # fmt: skip
                completion = stream.get_final_completion()
        message = completion.choices[0].message
        answers.append((completion.choices[0].finish_reason, [c.function.name for c in message.tool_calls or []]))  # pyright: ignore[reportAttributeAccessIssue]
        messages.append(assistant_turn(message))
        messages += [{"role": "tool", "tool_call_id": c.id, "content": '{"status": "packed"}'}
                     for c in message.tool_calls or ()]  # fmt: skip
    assert answers == [("tool_calls", ["lookup_order"]), ("tool_calls", ["get_shipping"]), ("stop", [])]
    assert messages[-1]["content"] == "Order A1 ships tomorrow."
    sent = [p for c in fake.requests[-1]["contents"] for p in c["parts"] if "functionCall" in p]
    issued = {name: sig for sig, name in fake.issued.items()}
    assert [p.get("thoughtSignature") for p in sent] == [issued["lookup_order"], issued["get_shipping"]]
    assert fake.signatures_seen[-2:] == [(issued["lookup_order"], "issued"), (issued["get_shipping"], "issued")]
    # control: the same history sent straight to the fake, without the signatures, is refused
    bare = json.loads(json.dumps(fake.requests[-1]).replace('"thoughtSignature"', '"_dropped"'))
    for content in bare["contents"]:
        for part in content["parts"]:
            part.pop("_dropped", None)
    response = httpx2.post(f"{fake_gemini[1]}/v1beta/models/gemini-3-agent:generateContent", json=bare,
                           headers={"x-goog-api-key": API_KEY})  # fmt: skip
    assert response.status_code == 400
    assert response.json()["error"]["message"] == MISSING_SIGNATURE.format(name="lookup_order", position=2)


def test_a_gateway_that_lost_the_signatures_falls_back_to_the_dummy(client: openai.OpenAI, fake_gemini: Fake) -> None:
    first = client.chat.completions.create(model="g3-tools", messages=USER, tools=[WEATHER, TIME])  # pyright: ignore[reportArgumentType]
    calls = first.choices[0].message.tool_calls or []
    history = [*USER, assistant_turn(first.choices[0].message),
               *({"role": "tool", "tool_call_id": c.id, "content": "ok"} for c in calls)]  # fmt: skip
    with _gateway(fake_gemini[1]) as other_gateway:  # a fresh provider: another instance, or after a restart
        with openai.OpenAI(base_url=f"{other_gateway}/v1", api_key=MASTER_KEY, max_retries=0) as other:
            answer = other.chat.completions.create(model="g3-tools", messages=history, tools=[WEATHER, TIME])  # pyright: ignore[reportArgumentType]
    assert answer.choices[0].message.content and answer.choices[0].message.content.startswith("Results: ")
    assert fake_gemini[0].signatures_seen[-1][1] == "dummy"


def test_gemini_call_ids_are_kept_or_mapped_and_sent_back_as_gemini_issued_them(
    client: openai.OpenAI, fake_gemini: Fake
) -> None:
    first = client.chat.completions.create(model="g3-ids", messages=USER, tools=[WEATHER, TIME])  # pyright: ignore[reportArgumentType]
    calls = first.choices[0].message.tool_calls or []
    assert calls[0].id == "gm_weather_1"
    assert calls[1].id.startswith("call_")  # `gm/time#2` is not a valid OpenAI id
    history = [*USER, assistant_turn(first.choices[0].message),
               *({"role": "tool", "tool_call_id": c.id, "content": "ok"} for c in reversed(calls))]  # fmt: skip
    client.chat.completions.create(model="g3-ids", messages=history, tools=[WEATHER, TIME])  # pyright: ignore[reportArgumentType]
    results = fake_gemini[0].requests[-1]["contents"][2]["parts"]
    assert [p["functionResponse"]["id"] for p in results] == ["gm_weather_1", "gm/time#2"]


def test_hostile_schemas_and_names_are_accepted_and_the_name_maps_back(
    client: openai.OpenAI, fake_gemini: Fake
) -> None:
    tool = {"type": "function", "function": {"name": "3d-render", "description": "Render", "parameters": {
        "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "additionalProperties": False,
        "properties": {"shape": {"$ref": "#/$defs/Shape"}, "mode": {"const": "fast"},
                       "size": {"anyOf": [{"type": "integer", "exclusiveMinimum": 0}, {"type": "null"}]}},
        "required": ["shape"],
        "$defs": {"Shape": {"type": "object", "additionalProperties": False,
                            "properties": {"kind": {"enum": ["cube", "ball"]}}}}}}}  # fmt: skip
    for stream in (False, True):
        if stream:
            with client.chat.completions.stream(model="g-first", messages=USER, tools=[tool]) as s:  # pyright: ignore[reportArgumentType]
                completion = s.get_final_completion()
        else:
            completion = client.chat.completions.create(model="g-first", messages=USER, tools=[tool])  # pyright: ignore[reportArgumentType]
        call = (completion.choices[0].message.tool_calls or [])[0]
        assert (call.function.name, call.function.arguments) == ("3d-render", "{}")  # pyright: ignore[reportAttributeAccessIssue]
    declared = fake_gemini[0].requests[-1]["tools"][0]["functionDeclarations"][0]
    assert declared["name"] != "3d-render"
    assert declared["parameters"]["properties"]["size"] == {"type": "integer", "minimum": 0, "nullable": True,
                                                            "description": "Must be greater than 0"}  # fmt: skip


def test_zod_style_pointer_and_root_refs_and_non_object_properties_reach_gemini(
    client: openai.OpenAI, fake_gemini: Fake
) -> None:
    home = {"type": "object", "properties": {"city": {"type": "string"}}}
    params = {
        "type": "object",
        "properties": {
            "home": home,
            "work": {"$ref": "#/properties/home"},
            "children": {"type": "array", "items": {"$ref": "#"}},
            "note": {"type": "string", "properties": {"a": {"type": "string"}}},
        },
    }
    tool: Any = {"type": "function", "function": {"name": "save", "parameters": params}}  # fmt: skip
    completion = client.chat.completions.create(model="g-first", messages=USER, tools=[tool])
    assert completion.choices[0].finish_reason == "tool_calls"
    sent = fake_gemini[0].requests[-1]["tools"][0]["functionDeclarations"][0]["parameters"]["properties"]
    assert (sent["work"], sent["note"], sent["children"]["items"]["type"]) == (home, {"type": "string"}, "object")


@pytest.mark.parametrize(("model", "inside"), [("g3-tools", True), ("g-tools", False)])
def test_images_in_tool_results_reach_gemini(
    client: openai.OpenAI, fake_gemini: Fake, model: str, inside: bool
) -> None:
    first = client.chat.completions.create(model=model, messages=USER, tools=[WEATHER, TIME])  # pyright: ignore[reportArgumentType]
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()}}
    results = [{"role": "tool", "tool_call_id": c.id, "content": [{"type": "text", "text": "sunny"}, image]}
               for c in first.choices[0].message.tool_calls or ()]  # fmt: skip
    messages: Any = [*USER, assistant_turn(first.choices[0].message), *results]
    answer = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER, TIME])  # pyright: ignore[reportArgumentType]
    assert answer.choices[0].message.content
    contents = fake_gemini[0].requests[-1]["contents"]
    responses = [p["functionResponse"] for p in contents[2]["parts"]]
    assert [r["response"] for r in responses] == [{"output": "sunny"}] * 2
    inline = {"inlineData": {"mimeType": "image/png", "data": image["image_url"]["url"].split(",")[1]}}
    if inside:
        assert [r["parts"] for r in responses] == [[inline]] * 2 and len(contents) == 3
    else:
        assert [p for p in contents[3]["parts"] if "inlineData" in p] == [inline] * 2


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"reasoning_effort": ["high"]}, "reasoning_effort"),
        ({"response_format": {"type": "json_schema", "json_schema": "x"}}, "response_format.json_schema"),
        ({"tools": [WEATHER], "tool_choice": {"type": "allowed_tools", "allowed_tools": "x"}},
         "tool_choice.allowed_tools"),
        ({"temperature": "0.5"}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": [*USER, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": "x"}]},
                       {"role": "tool", "tool_call_id": "c1", "content": "r"}]},
         "messages.[1].tool_calls.[0].function.name"),
        ({"messages": [*USER, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "get_weather", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "c1", "content": {"a": 1}}]},
         "messages.[2].content"),
    ],
)  # fmt: skip
def test_malformed_parameters_are_a_400_naming_them(gateway_url: str, extra: dict[str, Any], param: str) -> None:
    answer = httpx2.post(f"{gateway_url}/v1/chat/completions", json={"model": "g3-text", "messages": USER, **extra},
                         headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=20)  # fmt: skip
    assert answer.status_code == 400, answer.text
    assert (answer.json()["error"]["param"], answer.json()["error"]["type"]) == (param, "invalid_request_error")


def test_calls_without_arguments_get_an_empty_json_object(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(model="g-noargs", messages=USER, tools=[WEATHER]) as stream:  # pyright: ignore[reportArgumentType]
        streamed = stream.get_final_completion()
    plain = client.chat.completions.create(model="g-noargs", messages=USER, tools=[WEATHER])  # pyright: ignore[reportArgumentType]
    for completion in (streamed, plain):
        assert completion.choices[0].message.tool_calls[0].function.arguments == "{}"  # pyright: ignore[reportOptionalSubscript, reportAttributeAccessIssue]


def test_json_schema_output(client: openai.OpenAI, fake_gemini: Fake) -> None:
    schema = {"type": "object", "additionalProperties": False, "required": ["city", "temp_c"],
              "properties": {"city": {"type": "string"}, "temp_c": {"type": "number"}}}  # fmt: skip
    completion = client.chat.completions.create(model="g-json", messages=USER, response_format={
        "type": "json_schema", "json_schema": {"name": "weather", "schema": schema, "strict": True}})  # fmt: skip
    assert json.loads(completion.choices[0].message.content or "") == {"city": "Paris", "temp_c": 21}
    config = fake_gemini[0].requests[-1]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"]["propertyOrdering"] == ["city", "temp_c"]


def test_a_bad_tool_history_is_refused_before_reaching_gemini(client: openai.OpenAI, fake_gemini: Fake) -> None:
    before = len(fake_gemini[0].requests)
    with pytest.raises(openai.BadRequestError) as exc_info:
        client.chat.completions.create(model="g-tools", messages=[*USER, {"role": "assistant", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}],
        }])  # fmt: skip
    assert "call_1" in exc_info.value.message
    assert len(fake_gemini[0].requests) == before


# ---- finish reasons and errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "finish", "content"), [
    ("g-safety", "content_filter", "The answer is"), ("g-maxtokens", "length", "The answer is"),
    ("g-empty", "stop", ""),
])  # fmt: skip
@pytest.mark.parametrize("stream", [False, True])
def test_finish_reasons_map_to_openai(
    client: openai.OpenAI, model: str, finish: str, content: str, stream: bool
) -> None:
    if stream:
        chunks = list(client.chat.completions.create(model=model, messages=USER, stream=True))
        assert [c.choices[0].finish_reason for c in chunks] == [None] * (len(chunks) - 1) + [finish]
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == content
    else:
        completion = client.chat.completions.create(model=model, messages=USER)
        assert (completion.choices[0].finish_reason, completion.choices[0].message.content) == (finish, content)


@pytest.mark.parametrize(
    ("model", "error", "status"),
    [
        ("g-error-400", openai.BadRequestError, 400),
        ("g-error-400p", openai.BadRequestError, 400),
        ("g-error-403", openai.PermissionDeniedError, 403),
        ("g-error-404", openai.NotFoundError, 404),
        ("g-error-429", openai.RateLimitError, 429),
        ("g-error-500", openai.InternalServerError, 502),
        ("g-error-503", openai.InternalServerError, 503),  # overloaded: 503 like Anthropic's 529
        ("g-error-504", openai.InternalServerError, 502),
        ("g-badkey", openai.BadRequestError, 400),
        ("g-blocked", openai.BadRequestError, 400),
        ("g-malformed", openai.InternalServerError, 502),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_gemini_failures_map_to_openai_errors_naming_the_provider(
    client: openai.OpenAI, model: str, error: type[openai.APIStatusError], status: int, stream: bool
) -> None:
    with pytest.raises(error) as exc_info:
        result = client.chat.completions.create(model=model, messages=USER, stream=stream)
        if stream:
            list(result)  # pyright: ignore[reportArgumentType, reportCallIssue]
    assert exc_info.value.status_code == status
    assert exc_info.value.body["message"].startswith("gemini")  # pyright: ignore[reportIndexIssue]
    assert exc_info.value.response.headers["x-request-id"]


def test_gemini_error_details_pass_through(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as exc_info:
        client.chat.completions.create(model="g-error-429", messages=USER)
    assert "You exceeded your current quota" in exc_info.value.message
    assert exc_info.value.code == "resource_exhausted"


def test_a_tool_call_streamed_as_one_3_mb_event_arrives_whole(
    client: openai.OpenAI, gateway_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool: Any = {"type": "function", "function": {"name": "write_file", "parameters": {
        "type": "object", "properties": {"content": {"type": "string"}}}}}  # fmt: skip
    with client.chat.completions.stream(model="g-huge", messages=USER, tools=[tool]) as stream:
        completion = stream.get_final_completion()
    call = (completion.choices[0].message.tool_calls or [])[0]
    assert json.loads(call.function.arguments) == {"content": "x" * HUGE}
    monkeypatch.setattr(_http, "MAX_SSE_LINE", HUGE // 2)  # past the limit: a clear 502, not a 500
    body = {"model": "g-huge", "messages": USER, "tools": [tool], "stream": True}
    answer = httpx2.post(f"{gateway_url}/v1/chat/completions", json=body, timeout=20,
                         headers={"Authorization": f"Bearer {MASTER_KEY}"})  # fmt: skip
    assert answer.status_code == 502, answer.text
    assert "longer than" in answer.json()["error"]["message"]


@pytest.mark.parametrize("model", ["g-midstream", "g-cut"])
def test_a_failure_after_the_stream_started_ends_with_an_error_event(gateway_url: str, model: str) -> None:
    events = raw_stream(gateway_url, {"model": model, "messages": USER})
    assert "[DONE]" not in events[-1]
    last = json.loads(events[-1].removeprefix("data: "))
    assert last["error"]["message"].startswith("gemini")
    for event in events[:-1]:
        ChatCompletionChunk.model_validate(json.loads(event.removeprefix("data: ")))
    assert all(json.loads(e.removeprefix("data: "))["choices"][0]["finish_reason"] is None for e in events[:-1])


def test_the_sdk_raises_on_a_mid_stream_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="g-midstream", messages=USER, stream=True))


def test_client_disconnect_cancels_the_gemini_stream(gateway_url: str, fake_gemini: Fake) -> None:
    fake = fake_gemini[0]
    before = fake.disconnects
    with httpx2.stream("POST", f"{gateway_url}/v1/chat/completions", json={"model": "g-slow", "messages": USER,
                       "stream": True}, headers={"Authorization": f"Bearer {MASTER_KEY}"}) as response:  # fmt: skip
        next(response.iter_lines())
    assert disconnects_after(fake, before) == before + 1
