"""Gemini translation of tool-result images and of client input the gateway used to crash on (review findings)."""

from __future__ import annotations

from typing import Any

import pytest

from providers.base import Deployment, ProviderError
from providers.gemini.contents import http_image_urls
from providers.gemini.request import build_request
from providers.gemini.signatures import SignatureStore
from tests.fakes.gemini_upstream import EMPTY_TEXT, FakeGemini, Invalid
from tests.providers._gemini_helpers import G3, JSON

G25 = "gemini-2.5-flash"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
IMAGE = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}  # fmt: skip
USER = {"role": "user", "content": "hi"}


def build(body: JSON, model: str = G3, images: dict[str, tuple[str, str]] | None = None) -> JSON:
    deployment = Deployment(provider="gemini", model=model, api_base="http://127.0.0.1:1", api_key="k")
    body = {"messages": [USER], **body}
    return build_request(body, deployment, lookup=SignatureStore().lookup, images=images or {}).body


def refused(body: JSON, model: str = G3) -> ProviderError:
    with pytest.raises(ProviderError) as exc_info:
        build(body, model)
    assert (exc_info.value.status_code, exc_info.value.type) == (400, "invalid_request_error")
    return exc_info.value


def tool_history(content: Any) -> list[JSON]:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    return [USER, {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": content}]  # fmt: skip


def test_gemini_3_gets_tool_result_images_inside_the_function_response() -> None:
    contents = build({"messages": tool_history([{"type": "text", "text": "sunny"}, IMAGE])})["contents"]
    response = contents[-1]["parts"][0]["functionResponse"]
    assert response["response"] == {"output": "sunny"}
    assert response["parts"] == [{"inlineData": {"mimeType": "image/png", "data": PNG}}]
    assert len(contents) == 3


def test_gemini_2_gets_tool_result_images_in_a_user_content_right_after_the_responses() -> None:
    contents = build({"messages": [*tool_history([IMAGE]), {"role": "user", "content": "and?"}]}, G25)["contents"]
    assert contents[2]["parts"] == [{"functionResponse": {"name": "get_weather", "response": {"output": ""},
                                                          "id": "call_1"}}]  # fmt: skip
    assert contents[3]["role"] == "user"
    assert "get_weather" in contents[3]["parts"][0]["text"]
    assert contents[3]["parts"][1:] == [{"inlineData": {"mimeType": "image/png", "data": PNG}}, {"text": "and?"}]


def test_media_gemini_3_cannot_take_in_a_response_follow_it_and_http_images_are_fetched_for_tools() -> None:
    gif = {"type": "image_url", "image_url": {"url": "data:image/gif;base64,R0lGODlh"}}
    url = "https://example.com/cat.png"
    messages = tool_history([gif, {"type": "image_url", "image_url": {"url": url}}])
    assert http_image_urls(messages) == [url]
    contents = build({"messages": messages}, images={url: ("image/png", PNG)})["contents"]
    assert contents[2]["parts"][0]["functionResponse"]["parts"] == [{"inlineData": {"mimeType": "image/png",
                                                                                    "data": PNG}}]  # fmt: skip
    assert contents[3]["parts"][1:] == [{"inlineData": {"mimeType": "image/gif", "data": "R0lGODlh"}}]


@pytest.mark.parametrize(
    ("content", "param"),
    [({"a": 1}, "messages.[2].content"), (5, "messages.[2].content"),
     ([{"type": "input_audio", "input_audio": {}}], "messages.[2].content.[0]"),
     ([{"type": "text", "text": "x"}, "raw"], "messages.[2].content.[1]")],
)  # fmt: skip
def test_tool_content_gemini_cannot_take_is_a_400_naming_the_message(content: Any, param: str) -> None:
    assert refused({"messages": tool_history(content)}).param == param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"reasoning_effort": ["high"]}, "reasoning_effort"),
        ({"response_format": {"type": "json_schema", "json_schema": "x"}}, "response_format.json_schema"),
        ({"response_format": "json"}, "response_format"),
        ({"tools": [WEATHER], "tool_choice": {"type": "allowed_tools", "allowed_tools": "x"}},
         "tool_choice.allowed_tools"),
        ({"messages": [USER, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": "x"}]},
                       {"role": "tool", "tool_call_id": "c1", "content": "r"}]},
         "messages.[1].tool_calls.[0].function.name"),
        ({"messages": ["hi"]}, "messages.[0]"),
        ({"temperature": "0.5"}, "temperature"),
        ({"top_p": [1]}, "top_p"),
        ({"top_k": 2.5}, "top_k"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": "100"}, "max_completion_tokens"),
        ({"seed": "x"}, "seed"),
    ],
)  # fmt: skip
def test_malformed_input_is_a_400_naming_the_parameter(body: JSON, param: str) -> None:
    assert refused(body).param == param


def test_input_no_check_foresaw_is_still_a_400_not_a_crash() -> None:
    error = refused({"messages": [USER, {"role": "assistant", "content": "x", "tool_calls": 5}]})
    assert "could not be translated" in error.message and error.param is None


def test_valid_sampling_and_length_still_map() -> None:
    config = build({"temperature": 1, "top_p": 0.5, "top_k": 3, "max_completion_tokens": 9, "seed": 4})
    assert config["generationConfig"] == {"maxOutputTokens": 9, "temperature": 1, "topP": 0.5, "topK": 3, "seed": 4}


def test_the_fake_refuses_empty_text_and_non_numeric_generation_config() -> None:
    fake = FakeGemini()
    with pytest.raises(Invalid, match=EMPTY_TEXT):
        fake._validate({"contents": [{"role": "user", "parts": [{"text": ""}]}]}, 3.0)  # pyright: ignore[reportPrivateUsage]
    with pytest.raises(Invalid, match="generation_config.temperature' \\(TYPE_FLOAT\\)"):
        fake._validate({"contents": [{"role": "user", "parts": [{"text": "a"}]}],  # pyright: ignore[reportPrivateUsage]
                        "generationConfig": {"temperature": "hot"}}, 3.0)  # fmt: skip
