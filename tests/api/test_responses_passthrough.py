"""/v1/responses forwarded to a deployment's own `/responses` (opt-in), with the official openai SDK on loopback."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from hub.config import Config, ModelRoute, parse_config
from hub.server import build_app
from tests.fakes.openai_upstream import API_KEY
from tests.fakes.responses_upstream import OTHER_KEY, USAGE, FakeResponses
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-passthrough-test"
WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}


@dataclasses.dataclass(frozen=True, slots=True)
class _NativeRoute(ModelRoute):
    responses_api: bool = True


def opted_in(config: Config, *aliases: str) -> Config:
    """`config` with the deployments of `aliases` opted in (what `model_info.supported_endpoints` sets)."""

    def native(route: ModelRoute) -> ModelRoute:
        if "responses_api" in ModelRoute.__dataclass_fields__:
            return dataclasses.replace(route, responses_api=True)  # pyright: ignore[reportCallIssue]
        fields = {f.name: getattr(route, f.name) for f in dataclasses.fields(route)}
        return _NativeRoute(**fields)

    models = {a: tuple(native(r) for r in rs) if a in aliases else rs for a, rs in config.models.items()}
    return dataclasses.replace(config, models=models)


def entry(alias: str, model: str, url: str, **info: Any) -> dict[str, Any]:
    params = {"model": f"openai/{model}", "api_base": f"{url}/v1", "api_key": API_KEY}
    return {"model_name": alias, "litellm_params": params, **({"model_info": info} if info else {})}


@pytest.fixture(scope="module")
def fake() -> FakeResponses:
    return FakeResponses()


@pytest.fixture(scope="module")
def gateway_url(fake: FakeResponses, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = f"sqlite:///{tmp_path_factory.mktemp('passthrough') / 'toolhub.db'}"
    with serve_app(fake.app) as url:
        models = [entry("native", "text", url), entry("native-tools", "tools", url),
                  entry("native-reasoning", "reasoning", url), entry("native-broken", "midstream", url),
                  entry("native-429", "error-429", url), entry("translated", "text", url),
                  entry("native-unnamed", "unnamed", url),
                  {**entry("native-other", "text", url), "litellm_params": {"model": "openai/text",
                   "api_base": f"{url}/v1", "api_key": OTHER_KEY}}]  # fmt: skip
        raw = {"model_list": models, "general_settings": {"master_key": MASTER_KEY, "database_url": database}}
        config = opted_in(parse_config(raw, {}), "native", "native-tools", "native-reasoning", "native-broken",
                          "native-429", "native-unnamed", "native-other")  # fmt: skip
        with serve_app(build_app(config)) as gateway:
            yield gateway


@pytest.fixture
def client(gateway_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=20) as c:
        yield c


def test_an_opted_in_deployment_answers_with_the_upstreams_own_ids_and_usage(
    client: openai.OpenAI, fake: FakeResponses
) -> None:
    response = client.responses.create(model="native", input="hello", metadata={"k": "v"})
    assert response.id.startswith("resp_fake") and response.output_text == "You said: hello"
    assert response.usage is not None and response.usage.model_dump(exclude_none=True) == USAGE
    assert fake.requests[-1] == {"model": "text", "input": "hello", "metadata": {"k": "v"}}
    assert client.responses.retrieve(response.id).model_dump() == response.model_dump()


def test_a_deployment_not_opted_in_is_translated_through_chat(client: openai.OpenAI, fake: FakeResponses) -> None:
    before = len(fake.requests)
    response = client.responses.create(model="translated", input="hello")
    assert len(fake.requests) == before and response.id.startswith("resp_") and "fake" not in response.id
    assert fake.chat.requests[-1]["messages"] == [{"role": "user", "content": "hello"}]


def test_a_stream_passes_the_upstreams_events_through(client: openai.OpenAI, fake: FakeResponses) -> None:
    with client.responses.stream(model="native", input="streamed") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.id.startswith("resp_fake") and final.output_text == "You said: streamed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "You said: streamed"
    assert fake.requests[-1]["stream"] is True
    assert client.responses.retrieve(final.id).output_text == "You said: streamed"


def test_a_function_call_round_trip_continues_on_the_upstreams_stored_response(
    client: openai.OpenAI, fake: FakeResponses
) -> None:
    first = client.responses.create(model="native-tools", input="weather?", tools=[WEATHER])  # pyright: ignore[reportArgumentType]
    call = first.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}
    second = client.responses.create(model="native", previous_response_id=first.id, input=[output])  # pyright: ignore[reportArgumentType]
    assert fake.requests[-1]["previous_response_id"] == first.id  # the upstream keeps its own conversation
    assert second.previous_response_id == first.id


def test_a_translated_response_continued_on_a_native_deployment_is_sent_as_items(
    client: openai.OpenAI, fake: FakeResponses
) -> None:
    first = client.responses.create(model="translated", input="my name is Ada")
    second = client.responses.create(model="native", previous_response_id=first.id, input="what is my name?")
    sent = fake.requests[-1]
    assert "previous_response_id" not in sent and second.output_text == "You said: what is my name?"
    assert sent["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "my name is Ada"}]},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "You said: my name is Ada", "annotations": [], "logprobs": []}]},
        {"role": "user", "content": "what is my name?"},
    ]  # fmt: skip


def test_an_unknown_previous_id_is_forwarded_and_the_upstream_refusal_comes_back(
    client: openai.OpenAI, fake: FakeResponses
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="native", previous_response_id="resp_nobody_made", input="hi")
    assert fake.requests[-1]["previous_response_id"] == "resp_nobody_made"
    assert caught.value.code == "previous_response_not_found"


def test_another_keys_response_is_not_continued_upstream(client: openai.OpenAI, gateway_url: str) -> None:
    first = client.responses.create(model="native", input="secret")
    made = httpx2.post(f"{gateway_url}/key/generate", json={}, headers={"Authorization": f"Bearer {MASTER_KEY}"})
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=made.json()["key"], max_retries=0) as other:
        with pytest.raises(openai.NotFoundError) as caught:
            other.responses.create(model="native", previous_response_id=first.id, input="tell me")
        with pytest.raises(openai.NotFoundError):
            other.responses.retrieve(first.id)
    assert first.id in caught.value.message


def test_include_reaches_the_upstream(client: openai.OpenAI) -> None:
    response = client.responses.create(model="native-reasoning", input="think", include=["reasoning.encrypted_content"])
    reasoning = response.output[0]
    assert reasoning.type == "reasoning" and reasoning.encrypted_content == "gAAAA-fake-encrypted"


def test_upstream_errors_keep_openais_shape(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model="native-429", input="hi")
    assert caught.value.code == "rate_limit_exceeded"


def test_a_stream_the_upstream_breaks_ends_with_its_error_event(client: openai.OpenAI) -> None:
    stream = client.responses.create(model="native-broken", input="hi", stream=True)
    kinds = [event.type for event in stream]
    assert kinds == ["response.created", "response.in_progress", "error"]


def test_spend_logs_count_the_upstreams_usage(client: openai.OpenAI, gateway_url: str) -> None:
    client.responses.create(model="native-tools", input="count me")
    rows: list[dict[str, Any]] = []
    with httpx2.Client(base_url=gateway_url, headers={"Authorization": f"Bearer {MASTER_KEY}"}) as admin:
        deadline = time.monotonic() + 30  # the usage writer stores in the background (a loaded machine: later)
        while not (rows := admin.get("/spend/logs", params={"model": "native-tools"}).json()["data"]):
            assert time.monotonic() < deadline, "the request's spend log was not stored within 30 s"
            time.sleep(0.05)
    assert {(r["prompt_tokens"], r["cached_tokens"], r["completion_tokens"], r["status"]) for r in rows} == {
        (30, 10, 9, "success")
    }


def other_key(gateway_url: str) -> openai.OpenAI:
    made = httpx2.post(f"{gateway_url}/key/generate", json={}, headers={"Authorization": f"Bearer {MASTER_KEY}"})
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=made.json()["key"], max_retries=0, timeout=20)


def test_another_keys_upstream_item_is_refused_without_asking_the_upstream(
    client: openai.OpenAI, gateway_url: str, fake: FakeResponses
) -> None:
    item = client.responses.create(model="native", input="secret 42").output[-1].id
    before = len(fake.requests)
    reference: Any = [{"type": "item_reference", "id": item}, {"role": "user", "content": "repeat"}]
    with other_key(gateway_url) as other, pytest.raises(openai.NotFoundError) as caught:
        other.responses.create(model="native", input=reference)
    assert len(fake.requests) == before and caught.value.code == "item_not_found"
    client.responses.create(model="native", input=reference)  # the key's own: the upstream resolves it
    assert fake.requests[-1]["input"][0] == {"type": "item_reference", "id": item}


def test_a_deleted_upstream_response_is_gone_for_every_key_here_and_upstream(
    client: openai.OpenAI, gateway_url: str, fake: FakeResponses
) -> None:
    first = client.responses.create(model="native", input="secret 42")
    item = first.output[-1].id
    assert client.responses.delete(first.id) is None  # pyright: ignore[reportUnknownMemberType]
    assert fake.deleted[-1] == first.id and first.id not in fake.stored
    before = len(fake.requests)
    with other_key(gateway_url) as other:
        for asking in (client, other):
            with pytest.raises(openai.NotFoundError):
                asking.responses.create(model="native", previous_response_id=first.id, input="tell me")
            with pytest.raises(openai.NotFoundError):
                asking.responses.create(model="native", input=[{"type": "item_reference", "id": item}])  # pyright: ignore[reportArgumentType]
    assert len(fake.requests) == before


def test_a_toolhub_item_referenced_on_a_native_deployment_is_sent_as_the_item(
    client: openai.OpenAI, fake: FakeResponses
) -> None:
    made = client.responses.create(model="translated", input="my name is Ada").output[-1]
    reference: Any = [{"type": "item_reference", "id": made.id}, {"role": "user", "content": "and?"}]
    answer = client.responses.create(model="native", input=reference)
    assert answer.output_text == "You said: and?"
    assert fake.requests[-1]["input"][0] == {
        "type": "message", "role": "assistant",
        "content": [{"type": "output_text", "text": "You said: my name is Ada", "annotations": [], "logprobs": []}],
    }  # fmt: skip


def test_a_response_id_toolhub_made_and_no_longer_has_is_not_forwarded(
    client: openai.OpenAI, fake: FakeResponses
) -> None:
    made = client.responses.create(model="translated", input="forget me")
    client.responses.delete(made.id)
    before = len(fake.requests)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="native", previous_response_id=made.id, input="hi")
    assert len(fake.requests) == before


def test_a_stream_without_event_lines_is_named_counted_and_stored(client: openai.OpenAI, gateway_url: str) -> None:
    with client.responses.stream(model="native-unnamed", input="unnamed") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert client.responses.retrieve(final.id).output_text == "You said: unnamed"
    rows: list[dict[str, Any]] = []
    with httpx2.Client(base_url=gateway_url, headers={"Authorization": f"Bearer {MASTER_KEY}"}) as admin:
        for _ in range(50):  # the usage writer stores in the background
            rows = admin.get("/spend/logs", params={"model": "native-unnamed"}).json()["data"]
            if rows:
                break
            time.sleep(0.05)
    assert [(r["prompt_tokens"], r["completion_tokens"]) for r in rows] == [(30, 9)]


def test_a_response_continued_at_the_same_base_with_another_key_is_sent_as_items(
    client: openai.OpenAI, fake: FakeResponses
) -> None:
    first = client.responses.create(model="native", input="my name is Ada")
    second = client.responses.create(model="native-other", previous_response_id=first.id, input="what is my name?")
    sent = fake.requests[-1]
    assert "previous_response_id" not in sent and second.output_text == "You said: what is my name?"
    assert [item.get("role") for item in sent["input"]] == ["user", "assistant", "user"]


@pytest.mark.parametrize("stream", [False, True])
def test_the_gateways_cache_controls_never_reach_the_upstream(
    client: openai.OpenAI, fake: FakeResponses, stream: bool
) -> None:
    """`cache` is Toolhub's own field (LiteLLM's cache controls); OpenAI refuses a body with an unknown parameter. A
    forwarded response is not cached, so the controls are dropped and reported as such."""
    with client.responses.with_streaming_response.create(
        model="native", input="hello", stream=stream, extra_body={"cache": {"no-cache": True}}
    ) as raw:
        raw.read()
    assert raw.headers["x-toolhub-dropped-params"] == "cache"
    assert "cache" not in fake.requests[-1] and fake.requests[-1]["input"] == "hello"
