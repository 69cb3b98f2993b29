"""/v1/responses input the AI SDK and Codex CLI send: item references, namespaces of tools, OpenAI's hosted tools."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from tests.api import test_responses_support as support
from tests.api.test_responses_support import MASTER_KEY, Fakes

fakes, gateway_url, client = support.fakes, support.gateway_url, support.client
WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}


@pytest.fixture
def other_client(gateway_url: str) -> Iterator[openai.OpenAI]:
    made = httpx2.post(f"{gateway_url}/key/generate", json={}, headers={"Authorization": f"Bearer {MASTER_KEY}"})
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=made.json()["key"], max_retries=0, timeout=20) as c:
        yield c


@pytest.mark.parametrize("stream", [False, True])
def test_an_item_reference_brings_back_the_stored_item(client: openai.OpenAI, fakes: Fakes, stream: bool) -> None:
    if stream:
        with client.responses.stream(model="text", input="first") as events:
            first = events.get_final_response()
    else:
        first = client.responses.create(model="text", input="first")
    reference = {"type": "item_reference", "id": first.output[0].model_dump()["id"]}
    items: Any = [{"role": "user", "content": "first"}, reference, {"role": "user", "content": "second"}]
    client.responses.create(model="text", input=items)
    assert fakes.openai.requests[-1]["messages"] == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "You said: first"},
        {"role": "user", "content": "second"},
    ]


def test_an_unknown_or_foreign_item_reference_gets_a_404_naming_it(
    client: openai.OpenAI, other_client: openai.OpenAI
) -> None:
    first = client.responses.create(model="text", input="mine")
    for who, item in ((client, "msg_nope"), (other_client, str(first.output[0].model_dump()["id"]))):
        with pytest.raises(openai.NotFoundError) as caught:
            who.responses.create(model="text", input=[{"type": "item_reference", "id": item}])  # pyright: ignore[reportArgumentType]
        assert item in str(caught.value.message) and caught.value.param == "input[0].id"


@pytest.mark.parametrize("stream", [False, True])
def test_a_namespace_offers_its_functions_and_the_calls_name_it(
    client: openai.OpenAI, fakes: Fakes, stream: bool
) -> None:
    namespace: Any = {"type": "namespace", "name": "weather", "description": "Weather tools", "tools": [WEATHER]}
    if stream:
        with client.responses.stream(model="tools", input="weather?", tools=[namespace]) as events:
            response = events.get_final_response()
    else:
        response = client.responses.create(model="tools", input="weather?", tools=[namespace])
    assert [t["function"]["name"] for t in fakes.openai.requests[-1]["tools"]] == ["get_weather"]
    calls = [item.model_dump() for item in response.output if item.type == "function_call"]
    assert [(c["name"], c.get("namespace")) for c in calls] == [("get_weather", "weather"), ("get_time", None)]


def test_hosted_tools_are_left_out_and_named_in_a_header(client: openai.OpenAI, fakes: Fakes) -> None:
    tools: Any = [{"type": "web_search"}, WEATHER]
    raw = client.responses.with_raw_response.create(model="text", input="hi", tools=tools)
    assert raw.headers["x-toolhub-dropped-tools"] == "web_search"
    assert [t["function"]["name"] for t in fakes.openai.requests[-1]["tools"]] == ["get_weather"]
    with client.responses.with_streaming_response.create(model="text", input="hi", tools=tools, stream=True) as s:
        assert s.headers["x-toolhub-dropped-tools"] == "web_search"
        assert any(line.startswith("event: response.completed") for line in s.iter_lines())


APPROVAL: Any = {"type": "mcp_approval_response", "approval_request_id": "mcpr_call_1", "approve": True}
HI: Any = {"role": "user", "content": "hi"}


@pytest.mark.parametrize(
    ("items", "param", "words"),
    [
        ([{"type": "item_reference"}, HI], "input[0].id", "input[0].id must be"),
        ([HI, {"type": "item_reference", "id": 5}], "input[1].id", "input[1].id must be"),
        ([{"type": "item_reference", "id": ""}], "input[0].id", "input[0].id must be"),
        ([APPROVAL], "previous_response_id", "previous_response_id"),
        ([{"role": "system", "content": "be brief"}, {"type": "message", "role": "developer", "content": "terse"}],
         "input", "only system or developer messages"),
    ],
)  # fmt: skip
def test_input_the_model_cannot_answer_gets_a_400_that_says_why(
    client: openai.OpenAI, fakes: Fakes, items: Any, param: str, words: str
) -> None:
    sent = len(fakes.openai.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="text", input=items)
    assert caught.value.param == param and words in caught.value.message, caught.value.message
    assert "must be a non-empty string or array" not in caught.value.message
    assert len(fakes.openai.requests) == sent


RAW_PDF: Any = {"type": "input_file", "file_data": "JVBERi0xLjQ=", "filename": "a.pdf"}
BMP: Any = {"type": "input_image", "image_url": "data:image/bmp;base64,AAAA"}


@pytest.mark.parametrize(
    ("part", "param", "words"),
    [(RAW_PDF, "input[1].content[0].file_data", "input[1].content[0]: expected"),
     (BMP, "input[1].content[0].image_url", "input[1].content[0]: image type 'image/bmp'")],
)  # fmt: skip
def test_an_upstream_translation_error_names_the_part_where_the_client_sent_it(
    client: openai.OpenAI, part: Any, param: str, words: str
) -> None:
    items: Any = [HI, {"role": "user", "content": [part]}]
    with pytest.raises(openai.BadRequestError) as caught:  # instructions are the chat body's messages.[0]
        client.responses.create(model="claude-sonnet-4-5", instructions="be brief", input=items)
    assert caught.value.param == param and f"- {words}" in caught.value.message, caught.value.message
