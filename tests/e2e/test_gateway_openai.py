"""/v1 over an OpenAI-compatible upstream, driven by the official `openai` SDK over real loopback sockets."""

from __future__ import annotations

import json
import time

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.e2e.conftest import MASTER_KEY, OPENAI_MODELS
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.streams import disconnects_after

USER = [{"role": "user", "content": "hi"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}},
        },
    },
]


def test_models_lists_every_configured_alias(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids[: len(OPENAI_MODELS)] == OPENAI_MODELS
    assert {"gpt-5-mini", "timeout", "unreachable", "needs-key"} <= set(ids)
    assert client.models.retrieve("gpt-5-mini").id == "gpt-5-mini"


def test_non_streaming_completion_has_the_shape_and_usage_the_sdk_expects(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="text", messages=[{"role": "user", "content": "hello"}])
    assert isinstance(completion, ChatCompletion)
    assert completion.choices[0].message.content == "You said: hello"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == 19


def test_stream_relays_every_chunk_then_done_without_usage_unless_asked(gateway_url: str) -> None:
    body = {"model": "text-20", "messages": [{"role": "user", "content": "count to twenty please"}], "stream": True}
    with httpx2.stream(
        "POST", f"{gateway_url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {MASTER_KEY}"}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert len(chunks) == 22  # role chunk, 20 content chunks, finish chunk
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
        assert "usage" not in chunk
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "You said: count to twenty please"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_stream_with_include_usage_ends_with_a_usage_chunk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="text", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7
    assert all(c.usage is None for c in chunks[:-1])


def test_sdk_accumulator_rebuilds_parallel_tool_calls_from_the_stream(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(model="tools", messages=USER, tools=TOOLS) as stream:  # pyright: ignore[reportArgumentType]
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [  # pyright: ignore[reportAttributeAccessIssue]
        ("call_weather_1", "get_weather", {"city": "Paris"}),
        ("call_time_2", "get_time", {"timezone": "UTC"}),
    ]
    assert final.choices[0].finish_reason == "tool_calls"


def test_tool_calls_without_arguments_get_empty_json_object(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(model="noargs", messages=USER, tools=TOOLS) as stream:  # pyright: ignore[reportArgumentType]
        streamed = stream.get_final_completion()
    plain = client.chat.completions.create(model="noargs", messages=USER, tools=TOOLS)  # pyright: ignore[reportArgumentType]
    for completion in (streamed, plain):
        assert completion.choices[0].message.tool_calls[0].function.arguments == "{}"  # pyright: ignore[reportOptionalSubscript, reportAttributeAccessIssue]


def test_tool_call_deltas_without_index_are_given_one(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="noindex", messages=USER, tools=TOOLS, stream=True))  # pyright: ignore[reportArgumentType]
    indexes = [call.index for c in chunks for call in (c.choices[0].delta.tool_calls or [])]
    assert indexes == [0, 0, 0, 1, 1, 1]


def test_response_format_json_schema_is_forwarded(client: openai.OpenAI, fake_openai: tuple[FakeOpenAI, str]) -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}, "strict": True}}
    completion = client.chat.completions.create(model="json", messages=USER, response_format=schema)  # pyright: ignore[reportArgumentType]
    assert json.loads(completion.choices[0].message.content or "") == {"ok": True}
    assert fake_openai[0].requests[-1]["response_format"] == schema


def test_gpt5_policy_renames_max_tokens_and_drops_rejected_parameters(
    client: openai.OpenAI, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    completion = client.chat.completions.create(
        model="gpt-5-mini",
        messages=USER,
        max_tokens=50,
        temperature=0.2,
        top_p=0.5,
        stop=["x"],
        extra_body={"num_ctx": 4096, "top_k": 3},
    )
    assert completion.choices[0].message.content == "You said: hi"
    sent = fake_openai[0].requests[-1]
    assert sent["model"] == "gpt-5-mini"
    assert sent["max_completion_tokens"] == 50
    assert not {"max_tokens", "temperature", "top_p", "stop", "num_ctx", "top_k"} & set(sent)


@pytest.mark.parametrize("stream", [False, True])
def test_dropped_parameters_are_named_in_a_header_streamed_or_not(client: openai.OpenAI, stream: bool) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-5-mini", messages=USER, temperature=0.2, top_p=0.5, stream=stream, extra_body={"num_ctx": 4096}
    )
    assert raw.headers["x-toolhub-dropped-params"] == "num_ctx,temperature,top_p"
    raw.parse()


@pytest.mark.parametrize("stream", [False, True])
def test_dropped_parameter_names_that_cannot_be_a_header_value_are_percent_encoded(
    client: openai.OpenAI, stream: bool
) -> None:
    names = {"a\r\nSet-Cookie: pwn=1": 1, "a\u2028b": 2, "caf\u00e9": 3, "x" * 5000: 4}
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-5-mini", messages=USER, stream=stream, extra_body=names
    )
    listed = raw.headers["x-toolhub-dropped-params"]
    assert listed.startswith("a%0D%0ASet-Cookie%3A%20pwn%3D1,a%E2%80%A8b,caf%C3%A9,xxx") and listed.endswith(",...")
    assert (len(listed), "set-cookie" in raw.headers) == (512, False)
    raw.parse()


def test_nothing_dropped_means_no_header(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-5-mini", messages=USER, temperature=1)
    assert "x-toolhub-dropped-params" not in raw.headers


def test_parallel_tool_calls_without_tools_is_dropped(
    client: openai.OpenAI, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    raw = client.chat.completions.with_raw_response.create(model="text", messages=USER, parallel_tool_calls=False)
    assert raw.parse().choices[0].message.content == "You said: hi"
    assert raw.headers["x-toolhub-dropped-params"] == "parallel_tool_calls"
    assert "parallel_tool_calls" not in fake_openai[0].requests[-1]


def test_gpt5_strict_policy_refuses_rejected_parameters_naming_them(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as exc_info:
        client.chat.completions.create(model="gpt-5-mini-strict", messages=USER, temperature=0.2)
    assert exc_info.value.body["param"] == "temperature"  # pyright: ignore[reportIndexIssue]
    assert exc_info.value.body["code"] == "unsupported_parameter"  # pyright: ignore[reportIndexIssue]


@pytest.mark.parametrize(
    ("model", "error", "status"),
    [
        ("error-400", openai.BadRequestError, 400),
        ("error-401", openai.AuthenticationError, 401),
        ("error-404", openai.NotFoundError, 404),
        ("error-429", openai.RateLimitError, 429),
        ("error-500", openai.InternalServerError, 502),
        ("error-503", openai.InternalServerError, 502),
        ("unreachable", openai.InternalServerError, 502),
        ("garbage", openai.InternalServerError, 502),
        ("timeout", openai.InternalServerError, 504),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_failures_map_to_openai_errors(
    client: openai.OpenAI, model: str, error: type[openai.APIStatusError], status: int, stream: bool
) -> None:
    with pytest.raises(error) as exc_info:
        result = client.chat.completions.create(model=model, messages=USER, stream=stream)
        if stream:
            list(result)  # pyright: ignore[reportArgumentType, reportCallIssue]
    assert exc_info.value.status_code == status
    assert exc_info.value.response.headers["x-request-id"]
    assert exc_info.value.body and exc_info.value.body["message"]  # pyright: ignore[reportIndexIssue]


def test_upstream_4xx_message_is_passed_through(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as exc_info:
        client.chat.completions.create(model="error-429", messages=USER)
    assert "Rate limit reached for gpt-5-mini" in exc_info.value.message
    assert exc_info.value.code == "rate_limit_exceeded"


@pytest.mark.parametrize("model", ["midstream-error", "broken"])
def test_failure_after_the_stream_started_ends_with_an_error_event(gateway_url: str, model: str) -> None:
    body = {"model": model, "messages": USER, "stream": True}
    with httpx2.stream(
        "POST", f"{gateway_url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {MASTER_KEY}"}
    ) as response:
        assert response.status_code == 200
        events = [line for line in response.iter_lines() if line]
    # midstream-error: two chunks, then the upstream's error event; broken: the upstream drops the connection after
    # two chunks, and the second may or may not have left its buffers when it did
    assert len(events) == 3 if model == "midstream-error" else 2 <= len(events) <= 3
    assert all(json.loads(e.removeprefix("data: "))["choices"] for e in events[:-1])
    last = json.loads(events[-1].removeprefix("data: "))
    assert last["error"]["message"]
    assert "[DONE]" not in events[-1]


def test_sdk_raises_on_a_mid_stream_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="midstream-error", messages=USER, stream=True))


def test_client_disconnect_cancels_the_upstream_stream(gateway_url: str, fake_openai: tuple[FakeOpenAI, str]) -> None:
    fake = fake_openai[0]
    before = fake.disconnects
    body = {"model": "slow-1", "messages": USER, "stream": True}
    started = time.monotonic()
    with httpx2.stream(
        "POST", f"{gateway_url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {MASTER_KEY}"}
    ) as response:
        next(response.iter_lines())
    assert disconnects_after(fake, before) == before + 1
    assert time.monotonic() - started < 5  # the full stream would take 7 s


def spend_logs(gateway_url: str, model: str) -> list[dict[str, object]]:
    response = httpx2.get(
        f"{gateway_url}/spend/logs", params={"model": model}, headers={"Authorization": f"Bearer {MASTER_KEY}"}
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_usage_repeated_on_every_chunk_is_counted_once(client: openai.OpenAI, gateway_url: str) -> None:
    raw = client.chat.completions.with_raw_response.create(model="cumulative", messages=USER, stream=True)
    chunks = list(raw.parse())
    assert chunks[-1].choices[0].finish_reason == "stop"
    # this request's log: other hubs without a database_url in this process store theirs in the same toolhub.db
    [log] = [log for log in spend_logs(gateway_url, "cumulative") if log["request_id"] == raw.headers["x-request-id"]]
    assert (log["prompt_tokens"], log["completion_tokens"]) == (12, 7)


def test_an_abandoned_stream_is_recorded_with_estimated_usage(gateway_url: str) -> None:
    body = {"model": "slow-1", "messages": [{"role": "user", "content": "x" * 400}], "stream": True}
    with httpx2.stream("POST", f"{gateway_url}/v1/chat/completions", json=body,
                       headers={"Authorization": f"Bearer {MASTER_KEY}"}) as response:  # fmt: skip
        lines = response.iter_lines()
        next(lines)
        next(lines)
    deadline = time.monotonic() + 10
    logs: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        logs = [log for log in spend_logs(gateway_url, "slow-1") if log["status_code"] == 499 and log["stream"]]
        if logs:
            break
        time.sleep(0.05)
    assert logs, "the abandoned stream was not recorded"
    assert logs[0]["error"] == "client disconnected; usage estimated"
    assert int(logs[0]["prompt_tokens"]) >= 100  # type: ignore[arg-type]  # about 400 characters / 4


def test_missing_provider_key_names_the_variable(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as exc_info:
        client.chat.completions.create(model="needs-key", messages=USER)
    assert exc_info.value.status_code == 503
    assert "TOOLHUB_UNSET_KEY" in exc_info.value.message
    assert exc_info.value.response.headers["x-should-retry"] == "false"


def test_unknown_model_is_404_model_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as exc_info:
        client.chat.completions.create(model="no-such-model", messages=USER)
    assert exc_info.value.code == "model_not_found"
    assert exc_info.value.param == "model"


@pytest.mark.parametrize(
    ("content", "param", "code"),
    [
        (b"{not json", None, "invalid_json"),
        (b"[1, 2]", None, "invalid_request"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model", "missing_required_parameter"),
        (b'{"model": "text", "messages": []}', "messages", "invalid_value"),
        (b'{"model": "text", "messages": [{"role": "robot", "content": "x"}]}', "messages.[0].role", "invalid_value"),
        (b'{"model": "text", "messages": [{"role": ["user"], "content": "x"}]}', "messages.[0].role", "invalid_value"),
        (
            b'{"model": "text", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            "stream",
            "invalid_type",
        ),
        (
            b'{"model": "text", "messages": [{"role": "user", "content": "x"}], "stream": true, "stream_options": 5}',
            "stream_options",
            "invalid_type",
        ),
        (
            b'{"model": "text", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", '
            b'"function": {"name": "bad name!"}}]}',
            "tools[0].function.name",
            "invalid_value",
        ),
        (b'{"model": "text", "messages": [{"role": "user", "content": "x"}], "stop": 5}', "stop", "invalid_value"),
        (b'{"model": "text", "messages": [{"role": "user", "content": "x"}], "user": 123}', "user", "invalid_type"),
        (
            b'{"model": "text", "messages": [{"role": "user", "content": "x"}], "metadata": "x"}',
            "metadata",
            "invalid_type",
        ),  # fmt: skip
        (
            b'{"model": "text", "messages": [{"role": "user", "content": "x"}], "stop": ["a", "b", "c", "d", "e"]}',
            "stop",
            "invalid_value",
        ),
        (
            b'{"model": "text", "messages": [{"role": "user", "content": "x"}], "tool_choice": {"type": "function"}}',
            "tool_choice",
            "invalid_value",
        ),
        (
            b'{"model": "text", "messages": [{"role": "user", "content": "x"}], "tool_choice": "sometimes"}',
            "tool_choice",
            "invalid_value",
        ),
    ],
)
def test_bad_requests_get_400_naming_the_param(gateway_url: str, content: bytes, param: str | None, code: str) -> None:
    response = httpx2.post(
        f"{gateway_url}/v1/chat/completions",
        content=content,
        headers={"Authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")


def nested(depth: int) -> object:
    """`depth` levels of objects and arrays, alternating."""
    value: object = 1
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": nested(254)}}]},
         "tools.[0].function.parameters"),
        ({"metadata": {"a": nested(260)}}, "metadata.a.a.[0]"),
        ({"metadata": {"a": nested(127)}}, "metadata.a.[0].a"),
    ],
)  # fmt: skip
def test_json_nested_too_deep_is_400_naming_the_param(gateway_url: str, extra: dict[str, object], param: str) -> None:
    body = {"model": "text", "messages": USER, **extra}
    response = httpx2.post(
        f"{gateway_url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {MASTER_KEY}"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": f"The request body nests objects and arrays more than 128 levels deep (at '{param}').",
        "type": "invalid_request_error",
        "param": param,
        "code": "json_too_deep",
    }


def test_json_nested_past_what_the_parser_reads_is_400(gateway_url: str) -> None:
    content = b'{"model": "text", "messages": [], "metadata": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    response = httpx2.post(
        f"{gateway_url}/v1/chat/completions", content=content, headers={"Authorization": f"Bearer {MASTER_KEY}"}
    )
    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == ("json_too_deep", None)


def test_json_nested_up_to_the_limit_is_answered(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="text", messages=USER, metadata={"a": nested(126)})  # pyright: ignore[reportArgumentType]
    assert completion.choices[0].message.content == "You said: hi"


def test_stream_options_without_stream_is_accepted_and_ignored(client: openai.OpenAI) -> None:
    for stream in (False, None):
        completion = client.chat.completions.create(
            model="text", messages=USER, stream=stream, stream_options={"include_usage": True}
        )
        assert completion.choices[0].message.content == "You said: hi"


def test_body_over_the_limit_is_413(gateway_url: str) -> None:
    huge = b'{"model": "text", "messages": [{"role": "user", "content": "' + b"x" * (1024 * 1024 + 10) + b'"}]}'
    response = httpx2.post(
        f"{gateway_url}/v1/chat/completions", content=huge, headers={"Authorization": f"Bearer {MASTER_KEY}"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}])
def test_requests_without_the_master_key_are_401(gateway_url: str, headers: dict[str, str]) -> None:
    for method, path in (("POST", "/v1/chat/completions"), ("GET", "/v1/models")):
        response = httpx2.request(
            method, f"{gateway_url}{path}", json={"model": "text", "messages": USER}, headers=headers
        )
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"


def test_sdk_with_a_wrong_key_gets_authentication_error(gateway_url: str) -> None:
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="sk-wrong", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()


def test_request_id_is_taken_from_the_client_or_made(gateway_url: str) -> None:
    given = httpx2.get(f"{gateway_url}/health/liveliness", headers={"x-request-id": "req-abc.123"})
    made = httpx2.get(f"{gateway_url}/health/liveliness", headers={"x-request-id": "bad id with spaces"})
    assert given.headers["x-request-id"] == "req-abc.123"
    assert len(made.headers["x-request-id"]) == 32


def test_health_endpoints_answer_without_a_key(gateway_url: str) -> None:
    assert httpx2.get(f"{gateway_url}/health/liveliness").status_code == 200
    ready = httpx2.get(f"{gateway_url}/health/readiness")
    assert ready.status_code == 200
    assert ready.json()["status"] == "healthy"


def test_unknown_routes_answer_in_openai_error_shape(gateway_url: str) -> None:
    response = httpx2.get(f"{gateway_url}/v1/nope", headers={"Authorization": f"Bearer {MASTER_KEY}"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert httpx2.get(f"{gateway_url}/v1/chat/completions").status_code == 405
