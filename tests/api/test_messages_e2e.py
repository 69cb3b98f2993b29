"""/v1/messages end to end: the official `anthropic` SDK against the gateway over OpenAI, Anthropic and Gemini fakes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import pytest

from hub.config import parse_config
from hub.server import build_app
from tests.e2e.gemini_support import BEHAVIOURS
from tests.fakes import anthropic_upstream, gemini_upstream, openai_upstream
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-messages-test"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WEATHER: Any = {"name": "get_weather", "description": "Weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}  # fmt: skip
CLOCK: Any = {"name": "get_time", "input_schema": {"type": "object", "properties": {"timezone": {"type": "string"}}}}
Fakes = tuple[FakeOpenAI, FakeAnthropic, FakeGemini]


def _model(alias: str, model: str, base: str, key: str) -> dict[str, Any]:
    return {"model_name": alias, "litellm_params": {"model": model, "api_base": base, "api_key": key}}


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[Fakes, str]]:
    fake_openai, fake_anthropic, fake_gemini = FakeOpenAI(), FakeAnthropic(), FakeGemini()
    with serve_app(fake_openai.app) as o, serve_app(fake_anthropic.app) as a, serve_app(fake_gemini.app) as g:
        models = [_model(n, f"openai/{n}", f"{o}/v1", openai_upstream.API_KEY) for n in ("text", "tools", "error-429")]
        models += [_model(n, f"anthropic/{n}", a, anthropic_upstream.API_KEY)
                   for n in ("claude-sonnet-4-5", "claude-think", "claude-midstream-error", "error-529")]  # fmt: skip
        models += [
            _model(n, f"gemini/{BEHAVIOURS[n]}", g, gemini_upstream.API_KEY)
            for n in ("g-text", "g3-tools", "g3-thinking", "g-midstream")
        ]
        config = parse_config({"model_list": models, "general_settings": {"master_key": MASTER_KEY}}, {})
        with serve_app(build_app(config)) as url:
            yield (fake_openai, fake_anthropic, fake_gemini), url


@pytest.fixture
def client(fakes: tuple[Fakes, str]) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=fakes[1], api_key=MASTER_KEY, max_retries=0, timeout=20) as c:
        yield c


def test_a_text_message_on_an_openai_model_comes_back_as_an_anthropic_message(
    client: anthropic.Anthropic, fakes: tuple[Fakes, str]
) -> None:
    message = client.messages.create(
        model="text", max_tokens=50, system="Be brief.", messages=[{"role": "user", "content": "hi"}],
        stop_sequences=["END"], metadata={"user_id": "u-1"}, extra_body={"temperature": 0.2},
    )  # fmt: skip
    assert message.model_dump(exclude={"id"}, exclude_none=True) == {
        "type": "message", "role": "assistant", "model": "text",
        "content": [{"type": "text", "text": "You said: hi"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 7, "cache_read_input_tokens": 2,
                  "cache_creation_input_tokens": 0},
    }  # fmt: skip
    upstream = fakes[0][0].requests[-1]
    assert upstream["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert (upstream["stop"], upstream["temperature"], upstream["user"]) == (["END"], 0.2, "u-1")


def test_a_streamed_text_message_follows_anthropics_event_order(fakes: tuple[Fakes, str]) -> None:
    events = _events(fakes[1], {"model": "text", "max_tokens": 50, "stream": True,
                                "messages": [{"role": "user", "content": "hello there"}]})  # fmt: skip
    kinds = [kind for kind, _ in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-4:] == ["content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    text = "".join(data["delta"]["text"] for kind, data in events if kind == "content_block_delta")
    assert text == "You said: hello there"
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert events[-2][1]["usage"]["output_tokens"] == 7


def test_the_sdk_stream_helper_rebuilds_tool_use_blocks_and_the_round_trip_reaches_the_upstream(
    client: anthropic.Anthropic, fakes: tuple[Fakes, str]
) -> None:
    ask: list[Any] = [{"role": "user", "content": "weather and time?"}]
    with client.messages.stream(model="tools", max_tokens=50, messages=ask, tools=[WEATHER, CLOCK]) as stream:
        message = stream.get_final_message()
    assert message.stop_reason == "tool_use"
    uses = [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"]
    assert uses == [
        ("call_weather_1", "get_weather", {"city": "Paris"}),
        ("call_time_2", "get_time", {"timezone": "UTC"}),
    ]
    results = [{"type": "tool_result", "tool_use_id": "call_weather_1", "content": "sunny"},
               {"type": "tool_result", "tool_use_id": "call_time_2", "content": [{"type": "text", "text": "12:00"}],
                "is_error": True},
               {"type": "text", "text": "thanks"}]  # fmt: skip
    follow = [*ask, {"role": "assistant", "content": message.content}, {"role": "user", "content": results}]
    answer = client.messages.create(model="text", max_tokens=50, messages=follow, tools=[WEATHER, CLOCK])
    assert answer.content[0].type == "text"
    sent = fakes[0][0].requests[-1]["messages"]
    call = {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert sent[1]["tool_calls"][0] == {"id": "call_weather_1", "type": "function", "function": call}
    assert sent[2:] == [{"role": "tool", "tool_call_id": "call_weather_1", "content": "sunny"},
                        {"role": "tool", "tool_call_id": "call_time_2", "content": "Error: 12:00"},
                        {"role": "user", "content": "thanks"}]  # fmt: skip


def test_images_reach_the_upstream_as_image_parts(client: anthropic.Anthropic, fakes: tuple[Fakes, str]) -> None:
    content: list[Any] = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {"type": "text", "text": "what is this?"},
    ]
    client.messages.create(model="text", max_tokens=20, messages=[{"role": "user", "content": content}])
    assert fakes[0][0].requests[-1]["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "text", "text": "what is this?"},
    ]


def test_a_bearer_token_works_and_a_wrong_key_is_an_anthropic_authentication_error(fakes: tuple[Fakes, str]) -> None:
    with anthropic.Anthropic(base_url=fakes[1], auth_token=MASTER_KEY, max_retries=0) as bearer:
        ok = bearer.messages.create(model="text", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert ok.type == "message"
    with anthropic.Anthropic(base_url=fakes[1], api_key="sk-wrong", max_retries=0) as wrong:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            wrong.messages.create(model="text", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 401
    assert caught.value.body == {"type": "error", "error": {"type": "authentication_error", "message": _str()}}


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        ({"model": "text", "messages": [{"role": "user", "content": "x"}]}, 400, "invalid_request_error"),
        ({"model": "text", "max_tokens": 5, "messages": []}, 400, "invalid_request_error"),
        ({"model": "text", "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]}, 400,
         "invalid_request_error"),
        ({"model": "text", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
          "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, 400, "invalid_request_error"),
        ({"model": "nope", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, 404, "not_found_error"),
        ({"model": "error-429", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, 429,
         "rate_limit_error"),
        ({"model": "error-529", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, 529,
         "overloaded_error"),
        ({"model": "error-529", "max_tokens": 5, "stream": True, "messages": [{"role": "user", "content": "x"}]},
         529, "overloaded_error"),
    ],
)  # fmt: skip
def test_bad_requests_and_upstream_failures_are_errors_in_anthropics_shape(
    fakes: tuple[Fakes, str], body: dict[str, Any], status: int, kind: str
) -> None:
    response = httpx2.post(f"{fakes[1]}/v1/messages?beta=true", json=body, timeout=20,
                           headers={"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"})  # fmt: skip
    assert response.status_code == status, response.text
    assert response.json() == {"type": "error", "error": {"type": kind, "message": _str()}}


def test_the_sdk_raises_its_overloaded_error_for_a_529(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model="error-529", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 529


def test_an_anthropic_model_keeps_thinking_signatures_across_tool_turns(
    client: anthropic.Anthropic, fakes: tuple[Fakes, str]
) -> None:
    ask: list[Any] = [{"role": "user", "content": "weather?"}]
    thinking: Any = {"type": "enabled", "budget_tokens": 1024}
    history = list(ask)
    message: Any = None
    for step in range(3):
        message = client.messages.create(model="claude-think", max_tokens=2048, thinking=thinking,
                                         messages=history, tools=[WEATHER, CLOCK])  # fmt: skip
        kinds = [b.type for b in message.content]
        if step == 2:
            assert kinds == ["thinking", "text"]
            break
        assert kinds[-2:] == ["thinking", "tool_use"]
        assert all(b.signature for b in message.content if b.type == "thinking")
        use = message.content[-1]
        assert use.type == "tool_use"
        result = {"type": "tool_result", "tool_use_id": use.id, "content": "ok"}
        history += [{"role": "assistant", "content": message.content}, {"role": "user", "content": [result]}]
    assert message.content[-1].type == "text" and message.content[-1].text == "Paris is sunny at noon UTC."
    sent = fakes[0][1].requests[-1]
    assert sent["thinking"] == thinking


def test_a_streamed_anthropic_thinking_turn_has_thinking_deltas_then_a_tool_use(client: anthropic.Anthropic) -> None:
    thinking: Any = {"type": "enabled", "budget_tokens": 1024}
    with client.messages.stream(model="claude-think", max_tokens=2048, thinking=thinking, tools=[WEATHER],
                                messages=[{"role": "user", "content": "weather?"}]) as stream:  # fmt: skip
        message = stream.get_final_message()
    assert [b.type for b in message.content] == ["thinking", "tool_use"]
    assert message.content[0].type == "thinking" and message.content[0].thinking == "Step 0: I should call a tool."
    assert message.content[0].signature  # the anthropic/ stream passes the signed block on (delta.thinking_blocks)
    assert message.usage.cache_read_input_tokens == 5 and message.usage.input_tokens == 10


def test_a_gemini_model_answers_and_its_tool_calls_round_trip_with_their_signatures(
    client: anthropic.Anthropic, fakes: tuple[Fakes, str]
) -> None:
    hello = client.messages.create(model="g-text", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    assert hello.content[0].type == "text" and hello.content[0].text
    ask: list[Any] = [{"role": "user", "content": "weather and time?"}]
    message = client.messages.create(model="g3-tools", max_tokens=50, messages=ask, tools=[WEATHER, CLOCK])
    uses = [b for b in message.content if b.type == "tool_use"]
    assert [u.name for u in uses] == ["get_weather", "get_time"] and message.stop_reason == "tool_use"
    results = [{"type": "tool_result", "tool_use_id": u.id, "content": "fine"} for u in uses]
    follow = [*ask, {"role": "assistant", "content": message.content}, {"role": "user", "content": results}]
    answer = client.messages.create(model="g3-tools", max_tokens=50, messages=follow, tools=[WEATHER, CLOCK])
    assert answer.stop_reason == "end_turn" and answer.content[0].type == "text"  # the fake refuses lost signatures


def test_a_streamed_thinking_tool_loop_on_anthropic_replays_the_signatures_the_stream_could_not_carry(
    client: anthropic.Anthropic,
) -> None:
    thinking: Any = {"type": "enabled", "budget_tokens": 1024}
    history: list[Any] = [{"role": "user", "content": "weather?"}]
    message: Any = None
    for _ in range(3):
        with client.messages.stream(model="claude-think", max_tokens=2048, thinking=thinking, messages=history,
                                    tools=[WEATHER, CLOCK]) as stream:  # fmt: skip
            message = stream.get_final_message()
        if message.stop_reason != "tool_use":
            break
        use = message.content[-1]
        assert use.type == "tool_use"
        result = {"type": "tool_result", "tool_use_id": use.id, "content": "ok"}
        history += [{"role": "assistant", "content": message.content}, {"role": "user", "content": [result]}]
    assert [b.type for b in message.content] == ["thinking", "text"]  # the fake checks every replayed signature


def test_gemini_thoughts_become_a_thinking_block_that_an_openai_model_never_sees(
    client: anthropic.Anthropic, fakes: tuple[Fakes, str]
) -> None:
    ask: list[Any] = [{"role": "user", "content": "6*7?"}]
    message = client.messages.create(model="g3-thinking", max_tokens=50, messages=ask)
    assert [(b.type, getattr(b, "thinking", None) or getattr(b, "text", None)) for b in message.content] == [
        ("thinking", "Six times seven."), ("text", "42")]  # fmt: skip
    follow = [*ask, {"role": "assistant", "content": message.content}, {"role": "user", "content": "and 6*8?"}]
    client.messages.create(model="text", max_tokens=50, messages=follow)
    assert fakes[0][0].requests[-1]["messages"][1] == {"role": "assistant", "content": "42"}


@pytest.mark.parametrize("model", ["claude-midstream-error", "g-midstream"])  # Anthropic overloaded, Gemini UNAVAILABLE
def test_an_upstream_failure_mid_stream_ends_the_stream_with_an_anthropic_error_event(
    fakes: tuple[Fakes, str], model: str
) -> None:
    events = _events(fakes[1], {"model": model, "max_tokens": 50, "stream": True,
                                "messages": [{"role": "user", "content": "hello"}]})  # fmt: skip
    assert events[0][0] == "message_start"
    assert events[-1] == ("error", {"type": "error", "error": {"type": "overloaded_error", "message": _str()}})
    assert "message_stop" not in [kind for kind, _ in events]


def test_count_tokens_gives_an_estimate(client: anthropic.Anthropic) -> None:
    count = client.messages.count_tokens(model="text", messages=[{"role": "user", "content": "x" * 400}])
    assert 100 <= count.input_tokens <= 120


def _events(url: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    with httpx2.stream("POST", f"{url}/v1/messages", json=body, headers={"x-api-key": MASTER_KEY}, timeout=20) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        frames = r.read().decode().split("\n\n")
    out: list[tuple[str, dict[str, Any]]] = []
    for frame in filter(None, frames):
        kind, data = frame.split("\n")
        out.append((kind.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
        assert out[-1][1]["type"] == out[-1][0]
    return [e for e in out if e[0] != "ping"]


class _str:
    """Equal to any non-empty string."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other)

    def __repr__(self) -> str:
        return "<non-empty str>"
