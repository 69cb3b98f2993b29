"""Stored responses: previous_response_id continuations, GET, DELETE and input_items, scoped to the key."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from hub.storage import Store, StoredResponse
from tests.api import test_responses_support as support
from tests.api.test_responses_support import MASTER_KEY, Fakes
from tests.storage.conftest import backend, store

fakes, gateway_url, client = support.fakes, support.gateway_url, support.client
_ = (backend, store)
WEATHER: Any = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
TIME: Any = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}


@pytest.fixture
def other_client(gateway_url: str) -> Iterator[openai.OpenAI]:
    """A client with a virtual key of its own."""
    made = httpx2.post(f"{gateway_url}/key/generate", json={}, headers={"Authorization": f"Bearer {MASTER_KEY}"})
    assert made.status_code == 200, made.text
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=made.json()["key"], max_retries=0, timeout=20) as c:
        yield c


def test_a_continuation_sends_the_whole_conversation_and_echoes_the_previous_id(
    client: openai.OpenAI, fakes: Fakes
) -> None:
    first = client.responses.create(model="text", input="hello", instructions="Be brief.")
    second = client.responses.create(model="text", input="and again", previous_response_id=first.id)
    assert second.previous_response_id == first.id and second.output_text == "You said: and again"
    assert fakes.openai.requests[-1]["messages"] == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "You said: hello"},
        {"role": "user", "content": "and again"},
    ]  # instructions are not carried over, as OpenAI does it
    assert client.responses.retrieve(second.id).model_dump() == second.model_dump()


@pytest.mark.parametrize("model", ["claude-tools", "g-tools"])
def test_a_continuation_may_carry_only_function_call_outputs(client: openai.OpenAI, model: str) -> None:
    first = client.responses.create(model=model, input="weather and time?", tools=[WEATHER, TIME])
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 2
    outputs: Any = [{"type": "function_call_output", "call_id": c.call_id, "output": f"ok {c.name}"} for c in calls]
    second = client.responses.create(model=model, input=outputs, previous_response_id=first.id, tools=[WEATHER, TIME])
    assert "ok get_weather" in second.output_text and "ok get_time" in second.output_text


def test_a_streamed_response_is_stored_as_the_client_rebuilt_it(client: openai.OpenAI) -> None:
    with client.responses.stream(model="tools", input="weather?", tools=[WEATHER, TIME]) as stream:
        final = stream.get_final_response()
    rebuilt = final.model_dump()
    for item in rebuilt["output"]:
        item.pop("parsed_arguments", None)  # the SDK's parsing of the arguments, not part of the response
    assert client.responses.retrieve(final.id).model_dump() == rebuilt


def test_input_items_list_the_conversation_newest_first_by_default(client: openai.OpenAI) -> None:
    first = client.responses.create(model="text", input="hello")
    second = client.responses.create(model="text", input=[{"role": "user", "content": "more"}],
                                     previous_response_id=first.id)  # fmt: skip
    items = client.responses.input_items.list(second.id, order="asc").data
    assert [i.type for i in items] == ["message", "message", "message"]
    assert [getattr(i, "role", None) for i in items] == ["user", "assistant", "user"]
    assert items[1].id == first.output[0].id
    newest_first = client.responses.input_items.list(second.id).data
    assert [i.id for i in newest_first] == [i.id for i in reversed(items)]


def test_delete_then_retrieve_and_continue_get_a_404_naming_the_id(client: openai.OpenAI) -> None:
    response = client.responses.create(model="text", input="hello")
    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError) as gone:
        client.responses.retrieve(response.id)
    assert response.id in gone.value.message
    with pytest.raises(openai.NotFoundError) as continued:
        client.responses.create(model="text", input="again", previous_response_id=response.id)
    assert response.id in continued.value.message and continued.value.body["param"] == "previous_response_id"  # pyright: ignore[reportIndexIssue, reportOptionalSubscript]


def test_store_false_keeps_nothing(client: openai.OpenAI) -> None:
    response = client.responses.create(model="text", input="hello", store=False)
    assert response.to_dict()["store"] is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_another_key_cannot_see_or_continue_a_response(client: openai.OpenAI, other_client: openai.OpenAI) -> None:
    response = client.responses.create(model="text", input="secret")
    for attempt in (
        lambda: other_client.responses.retrieve(response.id),
        lambda: other_client.responses.delete(response.id),
        lambda: other_client.responses.input_items.list(response.id),
        lambda: other_client.responses.create(model="text", input="x", previous_response_id=response.id),
    ):
        with pytest.raises(openai.NotFoundError):
            attempt()
    assert client.responses.retrieve(response.id).id == response.id


def test_a_bad_order_gets_a_400(gateway_url: str, client: openai.OpenAI) -> None:
    response = client.responses.create(model="text", input="hello")
    answer = httpx2.get(f"{gateway_url}/v1/responses/{response.id}/input_items?order=up",
                        headers={"Authorization": f"Bearer {MASTER_KEY}"})  # fmt: skip
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "order"


@pytest.mark.anyio
async def test_the_store_keeps_gets_and_deletes_responses(store: Store) -> None:
    now = time.time()
    old = StoredResponse("resp_old", None, now - 100, {"id": "resp_old"}, [], [])
    row = StoredResponse("resp_1", "key-a", now, {"id": "resp_1", "output": []}, [{"id": "msg_1"}],
                         [{"role": "user", "content": "é ✓"}])  # fmt: skip
    await store.save_response(old)
    await store.save_response(row)
    assert await store.get_response("resp_1") == row
    assert json.dumps((await store.get_response("resp_old")).response) == '{"id": "resp_old"}'  # pyright: ignore[reportOptionalMemberAccess]
    await store.delete_responses_before(now - 50)
    assert await store.get_response("resp_old") is None
    await store.delete_response("resp_1")
    assert await store.get_response("resp_1") is None
