"""Pure translation tests for Gemini requests, schemas, tool names and thought signatures.

With test_gemini_response.py (responses, streams, errors) there is at least one test per Gemini pitfall in
docs/internals.md.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from providers.base import Deployment, ProviderError
from providers.gemini.contents import http_image_urls, parse_data_url
from providers.gemini.request import build_request, thinking_config
from providers.gemini.schema import ToolNames, gemini_name, sanitize_schema
from providers.gemini.signatures import DUMMY_SIGNATURE, SignatureStore, Step, needs_signatures
from tests.providers._gemini_helpers import G3, JSON, gemini_chunk, reader, run_stream

G25 = "gemini-2.5-flash"
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}  # fmt: skip
TIME = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}}  # fmt: skip


def deployment(model: str = G3, **kw: Any) -> Deployment:
    return Deployment(provider="gemini", model=model, api_base="http://127.0.0.1:1", api_key="k", **kw)


def build(body: JSON, model: str = G3, store: SignatureStore | None = None, **kw: Any) -> JSON:
    store = store or SignatureStore()
    return build_request(body, deployment(model, **kw), lookup=store.lookup, images={}).body


def call(call_id: str, name: str, args: str | None = '{"city": "Paris"}') -> JSON:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


# ---- requests: messages, roles, empty parts ---------------------------------------------------------------------


def test_system_and_developer_messages_become_system_instruction_and_roles_are_user_model() -> None:
    body = build({"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "bonjour"},
        {"role": "user", "content": "again"},
    ]})  # fmt: skip
    assert body == {
        "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]},
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}, {"role": "model", "parts": [{"text": "bonjour"}]},
                     {"role": "user", "parts": [{"text": "again"}]}],
    }  # fmt: skip


def test_empty_content_never_becomes_an_empty_or_data_less_part() -> None:
    body = build({"messages": [
        {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "hi"}]},
        {"role": "user", "content": ""},
        {"role": "assistant", "content": "", "tool_calls": [call("call_1", "get_weather")]},
        {"role": "tool", "tool_call_id": "call_1", "content": ""},
    ], "tools": [WEATHER]}, model=G25)  # fmt: skip
    contents = body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[0]["parts"] == [{"text": "hi"}]
    assert contents[1]["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"}}
    ]
    for content in contents:
        assert content["parts"]
        for part in content["parts"]:
            assert part and part.get("text", "x") != ""


def test_a_request_whose_messages_are_all_empty_is_refused_naming_messages() -> None:
    with pytest.raises(ProviderError) as exc_info:
        build({"messages": [{"role": "user", "content": ""}]})
    assert (exc_info.value.status_code, exc_info.value.param) == (400, "messages")


def test_a_system_only_request_is_sent_as_a_user_turn() -> None:
    body = build({"messages": [{"role": "system", "content": "Say hi."}]})
    assert body == {"contents": [{"role": "user", "parts": [{"text": "Say hi."}]}]}


def test_a_conversation_starting_with_a_function_call_gets_a_user_turn_first() -> None:
    body = build({"messages": [
        {"role": "assistant", "tool_calls": [call("call_1", "get_weather")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ], "tools": [WEATHER]}, model=G25)  # fmt: skip
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["contents"][0]["parts"][0]["text"].strip() == ""


def test_unknown_and_no_op_openai_fields_are_dropped() -> None:
    body = build({"messages": [{"role": "user", "content": "hi"}], "num_ctx": 4096, "user": "u1",
                  "metadata": {"a": 1}, "store": True, "stream": True, "stream_options": {"include_usage": True},
                  "presence_penalty": 0.5})  # fmt: skip
    assert set(body) == {"contents"}


def test_dropped_parameters_are_reported() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "n": 2, "logprobs": True, "presence_penalty": 0.5,
            "temperature": 0.3, "num_ctx": 4096, "top_k": 3, "user": "u"}  # fmt: skip
    prepared = build_request(body, deployment(), lookup=SignatureStore().lookup, images={})
    assert prepared.dropped == ["presence_penalty", "logprobs", "n", "num_ctx"]
    assert prepared.body["generationConfig"] == {"temperature": 0.3, "topK": 3}


def test_unsupported_parameters_are_refused_when_drop_params_is_off() -> None:
    with pytest.raises(ProviderError) as exc_info:
        build({"messages": [{"role": "user", "content": "hi"}], "logit_bias": {"1": 2}}, drop_params=False)
    assert (exc_info.value.status_code, exc_info.value.param, exc_info.value.code) == (
        400, "logit_bias", "unsupported_parameter")  # fmt: skip


def test_sampling_and_length_parameters_map_to_generation_config() -> None:
    body = build({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10, "max_completion_tokens": 99,
                  "temperature": 1.7, "top_p": 0.9, "top_k": 40, "stop": "END", "seed": 7}, model=G25)  # fmt: skip
    assert body["generationConfig"] == {"maxOutputTokens": 99, "temperature": 1.7, "topP": 0.9, "topK": 40,
                                        "seed": 7, "stopSequences": ["END"]}  # fmt: skip
    body = build({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10, "stop": ["a", "b"]}, model=G25)
    assert body["generationConfig"] == {"maxOutputTokens": 10, "stopSequences": ["a", "b"]}


def test_config_defaults_apply_under_the_clients_fields() -> None:
    dep = Deployment(provider="gemini", model=G25, api_base="x", params={"temperature": 0.1, "top_k": 5})
    body = build_request({"messages": [{"role": "user", "content": "hi"}], "temperature": 0.9}, dep,
                         lookup=SignatureStore().lookup, images={}).body  # fmt: skip
    assert body["generationConfig"] == {"temperature": 0.9, "topK": 5}


# ---- images -----------------------------------------------------------------------------------------------------


def test_data_url_images_become_inline_data_and_http_urls_use_the_fetched_bytes() -> None:
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/cat.jpg"}},
    ]}]  # fmt: skip
    assert http_image_urls(messages) == ["http://127.0.0.1:9/cat.jpg"]
    body = build_request({"messages": messages}, deployment(), lookup=SignatureStore().lookup,
                         images={"http://127.0.0.1:9/cat.jpg": ("image/jpeg", "/9j/")}).body  # fmt: skip
    assert body["contents"][0]["parts"] == [
        {"text": "What is this?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/"}},
    ]


def test_a_non_base64_data_url_is_encoded_and_a_bad_image_url_is_a_400_naming_the_part() -> None:
    assert parse_data_url("data:text/plain,hello%20there", "p") == ("text/plain", "aGVsbG8gdGhlcmU=")
    with pytest.raises(ProviderError) as exc_info:
        build(
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]}
        )
    assert exc_info.value.status_code == 400
    assert exc_info.value.param == "messages.[0].content.[0]"
    assert "ftp://x/y.png" in exc_info.value.message


# ---- tool calls and tool results --------------------------------------------------------------------------------


def test_parallel_tool_calls_stay_in_one_model_content_and_results_in_one_user_content_matched_by_id() -> None:
    body = build({"messages": [
        {"role": "user", "content": "weather and time?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [call("call_a", "get_weather"),
                                                                     call("call_b", "get_time", '{"tz": "UTC"}')]},
        {"role": "tool", "tool_call_id": "call_b", "content": '{"time": "12:00"}'},
        {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
        {"role": "user", "content": "thanks"},
    ], "tools": [WEATHER, TIME]}, model=G25)  # fmt: skip
    model, results, after = body["contents"][1:]
    assert model == {"role": "model", "parts": [
        {"text": "Checking."},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_a"}},
        {"functionCall": {"name": "get_time", "args": {"tz": "UTC"}, "id": "call_b"}},
    ]}  # fmt: skip
    assert results == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}, "id": "call_a"}},
        {"functionResponse": {"name": "get_time", "response": {"output": {"time": "12:00"}}, "id": "call_b"}},
    ]}  # fmt: skip
    assert after == {"role": "user", "parts": [{"text": "thanks"}]}  # user text after results: its own content


def test_missing_tool_results_are_refused_like_openai_does() -> None:
    with pytest.raises(ProviderError) as exc_info:
        build({"messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [call("call_a", "get_weather"), call("call_b", "get_time")]},
            {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
        ]})  # fmt: skip
    assert exc_info.value.status_code == 400
    assert "call_b" in exc_info.value.message


def test_a_tool_message_without_a_matching_call_is_refused() -> None:
    with pytest.raises(ProviderError) as exc_info:
        build({"messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "c", "content": "y"}]})
    assert exc_info.value.param == "messages.[1].role"
    with pytest.raises(ProviderError) as exc_info:
        build({"messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [call("call_a", "get_weather")]},
            {"role": "tool", "tool_call_id": "call_zzz", "content": "y"},
        ]})  # fmt: skip
    assert exc_info.value.param == "messages.[2].tool_call_id"


@pytest.mark.parametrize("arguments", [None, "", "{}"])
def test_no_argument_calls_are_sent_with_empty_args(arguments: str | None) -> None:
    body = build({"messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [call("call_a", "ping", arguments)]},
        {"role": "tool", "tool_call_id": "call_a", "content": "pong"},
    ]}, model=G25)  # fmt: skip
    assert body["contents"][1]["parts"][0]["functionCall"]["args"] == {}


def test_invalid_json_arguments_are_a_400_naming_them() -> None:
    with pytest.raises(ProviderError) as exc_info:
        build({"messages": [{"role": "user", "content": "x"},
                            {"role": "assistant", "tool_calls": [call("call_a", "ping", "{nope")]},
                            {"role": "tool", "tool_call_id": "call_a", "content": "pong"}]})  # fmt: skip
    assert exc_info.value.param == "messages.[1].tool_calls.[0].function.arguments"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", None),
        ("none", {"functionCallingConfig": {"mode": "NONE"}}),
        ("required", {"functionCallingConfig": {"mode": "ANY"}}),
        ({"type": "function", "function": {"name": "get_time"}},
         {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}}),
    ],
)  # fmt: skip
def test_tool_choice_maps_to_function_calling_config(choice: Any, expected: JSON | None) -> None:
    body = build({"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER, TIME], "tool_choice": choice})
    assert body.get("toolConfig") == expected
    assert [d["name"] for d in body["tools"][0]["functionDeclarations"]] == ["get_weather", "get_time"]


def test_allowed_tools_choice_declares_only_the_allowed_functions() -> None:
    choice = {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [
        {"type": "function", "function": {"name": "get_time"}}]}}  # fmt: skip
    body = build({"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER, TIME], "tool_choice": choice})
    assert [d["name"] for d in body["tools"][0]["functionDeclarations"]] == ["get_time"]
    assert "toolConfig" not in body


def test_tools_become_one_tool_with_function_declarations_and_no_arg_tools_send_no_parameters() -> None:
    ping = {"type": "function", "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}}}
    body = build({"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER, ping]})
    assert body["tools"] == [{"functionDeclarations": [
        {"name": "get_weather", "description": "Weather for a city",
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
        {"name": "ping"},
    ]}]  # fmt: skip


# ---- tool names -------------------------------------------------------------------------------------------------


def test_tool_names_gemini_refuses_are_mapped_reversibly_and_consistently() -> None:
    assert gemini_name("get_weather") == "get_weather"
    mapped = gemini_name("3d-render")
    assert mapped != "3d-render" and mapped[0] == "_" and len(mapped) <= 64
    assert gemini_name("3d-render") == mapped  # the same on every turn
    long = "a" * 64
    assert gemini_name(long) == long
    names = ToolNames()
    body = build_request({"messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [call("call_a", "3d-render", "{}")]},
        {"role": "tool", "tool_call_id": "call_a", "content": "ok"},
    ], "tools": [{"type": "function", "function": {"name": "3d-render"}}],
        "tool_choice": {"type": "function", "function": {"name": "3d-render"}}},
        deployment(G25), lookup=SignatureStore().lookup, images={})  # fmt: skip
    names = body.names
    sent = body.body
    assert sent["tools"][0]["functionDeclarations"][0]["name"] == mapped
    assert sent["toolConfig"]["functionCallingConfig"]["allowedFunctionNames"] == [mapped]
    assert sent["contents"][1]["parts"][0]["functionCall"]["name"] == mapped
    assert sent["contents"][2]["parts"][0]["functionResponse"]["name"] == mapped
    out, _ = run_stream([gemini_chunk([{"functionCall": {"name": mapped, "args": {}}}], "STOP")], names=names)
    assert out[1]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "3d-render"


# ---- schemas ----------------------------------------------------------------------------------------------------


def test_schema_sanitizer_removes_every_keyword_gemini_rejects_but_keeps_the_meaning() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": False,
        "title": "Args",
        "properties": {
            "mode": {"const": "fast"},
            "count": {"type": "integer", "exclusiveMinimum": 0, "default": 1},
            "note": {"type": ["string", "null"], "format": "email"},
            "item": {"$ref": "#/$defs/Item"},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            "choice": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "maybe": {"anyOf": [{"$ref": "#/$defs/Item"}, {"type": "null"}]},
            "level": {"type": "integer", "enum": [1, 2, 3]},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "required": ["mode", "ghost"],
        "$defs": {"Item": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}},
    }  # fmt: skip
    item = {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}
    assert sanitize_schema(schema) == {
        "type": "object",
        "properties": {
            "mode": {"type": "string", "enum": ["fast"]},
            "count": {"type": "integer", "minimum": 0, "description": "Must be greater than 0; default: 1"},
            "note": {"type": "string", "nullable": True, "description": "Format: email"},
            "item": item,
            "tags": {"type": "array", "items": {"type": "string"}, "description": "Items must be unique"},
            "choice": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "maybe": {**item, "nullable": True},
            "level": {"type": "integer", "description": "Allowed values: 1, 2, 3"},
            "labels": {"type": "object", "description": "An object mapping keys to values of type string"},
        },
        "required": ["mode"],
    }


def test_recursive_refs_and_all_of_are_expressed_without_forbidden_keys() -> None:
    schema = {"type": "object", "properties": {"tree": {"$ref": "#/definitions/Node"},
                                               "both": {"allOf": [{"$ref": "#/definitions/A"}, {"properties": {
                                                   "b": {"type": "string"}}, "required": ["b"]}]}},
              "definitions": {"Node": {"type": "object", "properties": {"children": {"type": "array", "items": {
                  "$ref": "#/definitions/Node"}}}}, "A": {"type": "object", "properties": {"a": {"type": "number"}},
                                                        "required": ["a"]}}}  # fmt: skip
    out = sanitize_schema(schema)
    assert out["properties"]["tree"]["properties"]["children"]["items"]["type"] == "object"
    assert (
        "Recursive: the same structure as Node"
        in out["properties"]["tree"]["properties"]["children"]["items"]["description"]
    )
    assert out["properties"]["both"] == {"type": "object", "properties": {"a": {"type": "number"},
                                         "b": {"type": "string"}}, "required": ["a", "b"]}  # fmt: skip
    assert "$ref" not in json.dumps(out) and "definitions" not in json.dumps(out)


def test_an_unresolvable_ref_is_a_400_naming_the_tool() -> None:
    bad = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {
        "x": {"$ref": "https://example.com/schema.json"}}}}}  # fmt: skip
    with pytest.raises(ProviderError) as exc_info:
        build({"messages": [{"role": "user", "content": "x"}], "tools": [bad]})
    assert exc_info.value.param == "tools[0].function.parameters"


def test_response_format_maps_to_response_mime_type_and_an_ordered_sanitized_schema() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "w", "strict": True, "schema": {
        "type": "object", "additionalProperties": False, "required": ["temp", "city"],
        "properties": {"temp": {"type": "number"}, "city": {"type": "string"}}}}}  # fmt: skip
    body = build({"messages": [{"role": "user", "content": "x"}], "response_format": fmt})
    assert body["generationConfig"] == {"responseMimeType": "application/json", "responseSchema": {
        "type": "object", "properties": {"temp": {"type": "number"}, "city": {"type": "string"}},
        "required": ["temp", "city"], "propertyOrdering": ["temp", "city"]}}  # fmt: skip
    body = build({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}})
    assert body["generationConfig"] == {"responseMimeType": "application/json"}


# ---- thinking ---------------------------------------------------------------------------------------------------


def test_reasoning_effort_uses_levels_on_gemini_3_and_budgets_on_2_5_never_both() -> None:
    assert thinking_config({"reasoning_effort": "low"}, G3) == {"thinkingLevel": "low", "includeThoughts": True}
    assert thinking_config({"reasoning_effort": "medium"}, "gemini-3-pro-preview")["thinkingLevel"] == "high"
    assert thinking_config({"reasoning_effort": "none"}, G3) == {"thinkingLevel": "minimal", "includeThoughts": False}
    assert thinking_config({"reasoning_effort": "high"}, G25) == {"thinkingBudget": 4096, "includeThoughts": True}
    assert thinking_config({"reasoning_effort": "none"}, G25) == {"thinkingBudget": 0, "includeThoughts": False}
    assert thinking_config({"reasoning_effort": "none"}, "gemini-2.5-pro")["thinkingBudget"] == 128
    assert thinking_config({}, G3) is None
    with pytest.raises(ProviderError) as exc_info:
        thinking_config({"reasoning_effort": "ultra"}, G3)
    assert exc_info.value.param == "reasoning_effort"


# ---- streams and call ids -----------------------------------------------------------------------------------------


def test_gemini_call_ids_are_kept_when_openai_valid_and_mapped_back_when_not() -> None:
    r = reader()
    deltas = r.read({"candidates": [{"content": {"parts": [
        {"functionCall": {"id": "gm_1", "name": "a", "args": {}}, "thoughtSignature": "czE="},
        {"functionCall": {"id": "gm/2#x" + "y" * 40, "name": "b", "args": {}}}]},
        "finishReason": "STOP"}]})  # fmt: skip
    assert [d["tool_calls"][0]["id"] for d in deltas] == ["gm_1", "call_1"]
    store = SignatureStore()
    store.remember(r.step(), r.call_ids)
    body = build({"messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [call("gm_1", "a", "{}"), call("call_1", "b", "{}")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "B"},
        {"role": "tool", "tool_call_id": "gm_1", "content": "A"},
    ]}, store=store)  # fmt: skip
    assert [p["functionCall"]["id"] for p in body["contents"][1]["parts"]] == ["gm_1", "gm/2#x" + "y" * 40]
    assert [p["functionResponse"]["id"] for p in body["contents"][2]["parts"]] == ["gm_1", "gm/2#x" + "y" * 40]


# ---- thought signatures -----------------------------------------------------------------------------------------


def history(call_ids: list[str], text: str | None = None) -> list[JSON]:
    return [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": text, "tool_calls": [call(i, "get_weather") for i in call_ids]},
        *({"role": "tool", "tool_call_id": i, "content": "ok"} for i in call_ids),
    ]


def test_signatures_are_restored_on_exactly_the_parts_they_came_on() -> None:
    store = SignatureStore()
    store.remember(Step(G3, {"call_1": "c2lnMQ=="}, {}, "dGV4dA=="), ["call_1", "call_2"])
    parts = build({"messages": history(["call_1", "call_2"], "Let me see.")}, store=store)["contents"][1]["parts"]
    assert parts == [
        {"text": "Let me see.", "thoughtSignature": "dGV4dA=="},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"},
         "thoughtSignature": "c2lnMQ=="},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_2"}},
    ]  # fmt: skip


def test_lost_signatures_degrade_to_the_dummy_on_the_first_call_of_each_step_on_gemini_3_only() -> None:
    messages = [*history(["call_1", "call_2"]), {"role": "assistant", "tool_calls": [call("call_3", "get_weather")]},
                {"role": "tool", "tool_call_id": "call_3", "content": "ok"}]  # fmt: skip
    contents = build({"messages": messages})["contents"]
    assert contents[1]["parts"][0]["thoughtSignature"] == DUMMY_SIGNATURE
    assert "thoughtSignature" not in contents[1]["parts"][1]
    assert contents[3]["parts"][0]["thoughtSignature"] == DUMMY_SIGNATURE
    assert "thoughtSignature" not in json.dumps(build({"messages": messages}, model=G25))
    assert needs_signatures(G3) and needs_signatures("gemini-flash-latest") and not needs_signatures(G25)


def test_signatures_from_another_model_are_not_replayed() -> None:
    store = SignatureStore()
    store.remember(Step("gemini-3-pro-preview", {"call_1": "c2lnMQ=="}), ["call_1"])
    parts = build({"messages": history(["call_1"])}, store=store)["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == DUMMY_SIGNATURE


def test_the_signature_store_is_bounded_and_expires() -> None:
    store = SignatureStore(max_items=2, ttl=3600)
    for n in range(3):
        store.remember(Step(G3, {f"c{n}": "czE="}), [f"c{n}"])
    assert len(store) == 2 and store.lookup("c0") is None and store.lookup("c2") is not None
    store.remember(Step(G3), ["empty"])  # nothing signed: nothing kept
    assert store.lookup("empty") is None


def test_the_fake_gemini_refuses_raw_json_schema_and_accepts_the_sanitized_one() -> None:
    from tests.fakes.gemini_upstream import Invalid, validate_schema

    raw = {"type": "object", "additionalProperties": False, "properties": {"a": {"type": "string"}}}
    where = "tools[0].function_declarations[0].parameters"
    with pytest.raises(Invalid) as exc_info:
        validate_schema(raw, where)
    assert str(exc_info.value) == ('Invalid JSON payload received. Unknown name "additionalProperties" at '
                                   "'tools[0].function_declarations[0].parameters': Cannot find field.")  # fmt: skip
    hostile = {"$schema": "x", "type": "object", "properties": {
        "a": {"type": ["integer", "null"], "exclusiveMaximum": 5}, "b": {"const": 3},
        "c": {"oneOf": [{"$ref": "#/$defs/C"}, {"type": "array"}]}, "d": {"type": "object"}},
        "$defs": {"C": {"type": "object", "properties": {"x": {"type": "boolean"}},
                        "additionalProperties": True}}}  # fmt: skip
    validate_schema(sanitize_schema(hostile), where)


def test_split_turns_merge_so_a_function_call_turn_follows_a_user_turn() -> None:
    body = build({"messages": [
        {"role": "user", "content": "look at"},
        {"role": "user", "content": [{"type": "text", "text": "this"}]},
        {"role": "assistant", "content": "Sure."},
        {"role": "assistant", "content": None, "tool_calls": [call("call_1", "get_weather")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
        {"role": "user", "content": "and?"},
    ]}, model=G25)  # fmt: skip
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "look at"}, {"text": "this"}]},
        {"role": "model", "parts": [{"text": "Sure."}, {"functionCall": {"name": "get_weather",
                                                                          "args": {"city": "Paris"}, "id": "call_1"}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "ok"},
                                                         "id": "call_1"}}]},
        {"role": "user", "parts": [{"text": "and?"}]},
    ]  # fmt: skip
