"""/v1/responses `include` and `truncation` on the translated path, with the openai SDK over loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from hub.api.responses.endpoint import ROUTES
from hub.app import create_app
from hub.config import parse_config
from hub.server import build_app
from tests.fakes.anthropic_upstream import API_KEY as ANTHROPIC_KEY, FakeAnthropic
from tests.fakes.openai_upstream import API_KEY
from tests.fakes.responses_upstream import FakeResponses
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-include-test"
WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
TIME = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}


def text_part(response: Any) -> Any:
    """The first output item's first content part (an `output_text`)."""
    return response.output[0].content[0]


class Upstreams:
    def __init__(self) -> None:
        self.openai = FakeResponses()
        self.anthropic = FakeAnthropic()


def config(openai_url: str, anthropic_url: str) -> dict[str, Any]:
    def openai_entry(alias: str) -> dict[str, Any]:
        params = {"model": f"openai/{alias}", "api_base": f"{openai_url}/v1", "api_key": API_KEY}
        return {"model_name": alias, "litellm_params": params}

    think = {"model": "anthropic/claude-think", "api_base": anthropic_url, "api_key": ANTHROPIC_KEY}
    models = [openai_entry("logprobs"), openai_entry("window-3"), openai_entry("window-1"),
              {"model_name": "claude-think", "litellm_params": think}]  # fmt: skip
    return {"model_list": models, "general_settings": {"master_key": MASTER_KEY}}


@pytest.fixture(scope="module")
def upstreams() -> Upstreams:
    return Upstreams()


@pytest.fixture(scope="module")
def gateways(upstreams: Upstreams) -> Iterator[tuple[str, str]]:
    """Two gateways over the same upstreams: neither remembers what the other answered."""
    with serve_app(upstreams.openai.app) as o, serve_app(upstreams.anthropic.app) as a:
        with serve_app(build_app(parse_config(config(o, a), {}))) as one:
            with serve_app(build_app(parse_config(config(o, a), {}))) as two:
                yield one, two


@pytest.fixture
def client(gateways: tuple[str, str]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateways[0]}/v1", api_key=MASTER_KEY, max_retries=0, timeout=20) as c:
        yield c


def test_logprobs_are_asked_for_and_reported_on_the_output_text(client: openai.OpenAI, upstreams: Upstreams) -> None:
    response = client.responses.create(model="logprobs", input="hi there", include=["message.output_text.logprobs"],
                                       top_logprobs=1)  # fmt: skip
    sent = upstreams.openai.chat.requests[-1]
    assert (sent["logprobs"], sent["top_logprobs"]) == (True, 1)
    part = text_part(response)
    assert [(t.token, t.logprob) for t in part.logprobs] == [("You ", -0.5), ("said: ", -0.5), ("hi ", -0.5),
                                                           ("there", -0.5)]  # fmt: skip


def test_streamed_logprobs_come_with_each_delta_and_in_the_final_text(client: openai.OpenAI) -> None:
    with client.responses.stream(model="logprobs", input="hi", include=["message.output_text.logprobs"]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert [[t.token for t in e.logprobs] for e in deltas] == [["You "], ["said: "], ["hi"]]
    assert [t.token for t in text_part(final).logprobs] == ["You ", "said: ", "hi"]


def test_without_include_no_logprobs_are_asked_for(client: openai.OpenAI, upstreams: Upstreams) -> None:
    response = client.responses.create(model="logprobs", input="hi")
    assert "logprobs" not in upstreams.openai.chat.requests[-1]
    assert text_part(response).logprobs == []


@pytest.mark.parametrize(
    ("field", "value", "param"),
    [("include", ["message.output_text.logprob"], "include[0]"), ("include", "reasoning.encrypted_content", "include"),
     ("truncation", "sometimes", "truncation")],
)  # fmt: skip
def test_unknown_include_or_truncation_values_get_a_400_naming_them(
    client: openai.OpenAI, field: str, value: Any, param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="logprobs", input="hi", extra_body={field: value})
    assert caught.value.param == param


def test_auto_truncation_drops_the_oldest_turns_until_the_upstream_takes_it(
    client: openai.OpenAI, upstreams: Upstreams
) -> None:
    turns = [{"role": r, "content": f"{r} {i}"} for i in range(3) for r in ("user", "assistant")]
    items: Any = [*turns, {"role": "user", "content": "last"}]
    response = client.responses.create(model="window-3", input=items, instructions="Be brief.", truncation="auto")
    assert response.output_text == "You said: last" and response.truncation == "auto"
    tries = [r["messages"] for r in upstreams.openai.chat.requests[-3:]]
    assert [len(messages) for messages in tries] == [8, 4, 2]
    system, last = {"role": "system", "content": "Be brief."}, {"role": "user", "content": "last"}
    assert tries[1] == [
        system,
        {"role": "user", "content": "user 2"},
        {"role": "assistant", "content": "assistant 2"},
        last,
    ]
    assert tries[2] == [system, last]


def test_disabled_truncation_returns_the_upstreams_context_error(client: openai.OpenAI) -> None:
    items: Any = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="window-1", input=items)
    assert caught.value.code == "context_length_exceeded"


def test_auto_truncation_gives_up_when_the_last_turn_alone_is_too_long(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="window-1", input="hi", instructions="Be brief.", truncation="auto")
    assert caught.value.code == "context_length_exceeded"


def test_encrypted_reasoning_lets_a_stateless_client_continue_on_another_gateway(
    gateways: tuple[str, str], upstreams: Upstreams
) -> None:
    """The second gateway never saw the first turn: only the client's items carry Anthropic's signed thinking."""
    reasoning = {"effort": "medium"}
    with openai.OpenAI(base_url=f"{gateways[0]}/v1", api_key=MASTER_KEY, max_retries=0) as first:
        turn = first.responses.create(model="claude-think", input="weather and time?", tools=[WEATHER, TIME],  # pyright: ignore[reportArgumentType]
                                      reasoning=reasoning, store=False, include=["reasoning.encrypted_content"])  # pyright: ignore[reportArgumentType]  # fmt: skip
    kinds = [item.type for item in turn.output]
    assert kinds == ["reasoning", "function_call"]
    thinking = turn.output[0]
    assert thinking.type == "reasoning" and (thinking.encrypted_content or "").startswith("toolhub:v1:")
    call = turn.output[1]
    assert call.type == "function_call"
    items: Any = [{"role": "user", "content": "weather and time?"}, thinking.model_dump(exclude_none=True),
                  call.model_dump(exclude_none=True),
                  {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}]  # fmt: skip
    with openai.OpenAI(base_url=f"{gateways[1]}/v1", api_key=MASTER_KEY, max_retries=0) as second:
        again = second.responses.create(model="claude-think", input=items, tools=[WEATHER, TIME], reasoning=reasoning,  # pyright: ignore[reportArgumentType]
                                        store=False, include=["reasoning.encrypted_content"])  # pyright: ignore[reportArgumentType]  # fmt: skip
    assert [item.type for item in again.output][-1] == "function_call"  # step 1: the fake accepted the signature
    replayed = upstreams.anthropic.requests[-1]["messages"][1]["content"]
    assert replayed[0]["type"] == "thinking" and replayed[0]["signature"]


def test_streamed_encrypted_reasoning_from_anthropic_continues_on_another_gateway(
    gateways: tuple[str, str], upstreams: Upstreams
) -> None:
    """As above, streamed (Codex CLI always streams): the anthropic/ provider's stream passes each signed thinking
    block on, so the streamed reasoning item carries it too."""
    reasoning = {"effort": "medium"}
    with openai.OpenAI(base_url=f"{gateways[0]}/v1", api_key=MASTER_KEY, max_retries=0) as first:
        with first.responses.stream(model="claude-think", input="weather and time?", tools=[WEATHER, TIME],  # pyright: ignore[reportArgumentType]
                                    reasoning=reasoning, store=False,  # pyright: ignore[reportArgumentType]
                                    include=["reasoning.encrypted_content"]) as stream:  # fmt: skip
            turn = stream.get_final_response()
    thinking, call = turn.output[0], turn.output[-1]
    assert thinking.type == "reasoning" and (thinking.encrypted_content or "").startswith("toolhub:v1:")
    assert call.type == "function_call"
    items: Any = [{"role": "user", "content": "weather and time?"}, thinking.model_dump(exclude_none=True),
                  call.model_dump(exclude_none=True),
                  {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}]  # fmt: skip
    with openai.OpenAI(base_url=f"{gateways[1]}/v1", api_key=MASTER_KEY, max_retries=0) as second:
        second.responses.create(model="claude-think", input=items, tools=[WEATHER, TIME], reasoning=reasoning,  # pyright: ignore[reportArgumentType]
                                store=False, include=["reasoning.encrypted_content"])  # pyright: ignore[reportArgumentType]  # fmt: skip
    replayed = upstreams.anthropic.requests[-1]["messages"][1]["content"]
    assert replayed[0]["type"] == "thinking" and replayed[0]["signature"] and "index" not in replayed[0]


def test_without_include_reasoning_items_carry_no_encrypted_content(client: openai.OpenAI) -> None:
    turn = client.responses.create(model="claude-think", input="weather?", tools=[WEATHER], reasoning={"effort": "low"})  # pyright: ignore[reportArgumentType]
    assert turn.output[0].type == "reasoning" and turn.output[0].encrypted_content is None


def test_an_item_reference_without_a_database_says_what_to_do() -> None:
    params = {"model": "openai/text", "api_base": "http://127.0.0.1:9/v1", "api_key": "k"}
    config = parse_config({"model_list": [{"model_name": "text", "litellm_params": params}]}, {})
    with (
        serve_app(create_app(config, routes=[*ROUTES])) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key="x") as bare,
    ):
        with pytest.raises(openai.NotFoundError) as caught:
            bare.responses.create(model="text", input=[{"type": "item_reference", "id": "msg_x"}])  # pyright: ignore[reportArgumentType]
    assert "without a database" in caught.value.message and caught.value.param == "input[0].id"


def test_auto_truncation_asks_the_upstream_at_most_three_times(client: openai.OpenAI, upstreams: Upstreams) -> None:
    turns = [{"role": r, "content": f"{r} {i}"} for i in range(7) for r in ("user", "assistant")]
    items: Any = [*turns, {"role": "user", "content": "last"}]
    before = len(upstreams.openai.chat.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="window-1", input=items, instructions="Be brief.", truncation="auto")
    assert caught.value.code == "context_length_exceeded"
    assert [len(r["messages"]) for r in upstreams.openai.chat.requests[before:]] == [16, 8, 4]
