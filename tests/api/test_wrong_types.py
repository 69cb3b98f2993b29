"""Every field of a typical request of each inbound API, swapped for a value of each JSON type or left out: the answer
is never a 5xx, and a refusal is a 4xx in that API's own error shape (OpenAI's on /v1/responses and /v1/embeddings,
Anthropic's on /v1/messages and its count_tokens). On the Messages routes an unexpected failure, and a missing key,
are answered in Anthropic's shape too."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import httpx2
import pytest

from hub.api.messages.endpoint import CRASHED, MISSING_KEY
from hub.api.messages.response import error_body, from_openai_error
from hub.config import parse_config
from hub.server import build_app
from tests.fakes.anthropic_count import FakeAnthropicCounting
from tests.fakes.anthropic_upstream import API_KEY as ANTHROPIC_KEY
from tests.fakes.openai_upstream import API_KEY as OPENAI_KEY, FakeOpenAI
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-wrong-types"
WRONG: dict[str, Any] = {"list": [1], "object": {"a": 1}, "number": 5, "bool": True, "null": None, "string": "x"}
CONCURRENT = 16
MISSING = object()
"""Stands for a field left out."""
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
IMAGE: Any = {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}
FUNCTION: Any = {"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}}
RESPONSES: Any = {
    "model": "text",
    "instructions": "Be brief.",
    "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}, IMAGE]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        {"role": "user", "content": "go on"},
    ],
    "tools": [FUNCTION, {"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "g"}]},
              {"type": "web_search"}],
    "tool_choice": {"type": "function", "name": "f"},
    "text": {"format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"}}},
    "reasoning": {"effort": "low"},
    "include": ["message.output_text.logprobs"],
    "max_output_tokens": 50,
    "temperature": 0.5,
    "parallel_tool_calls": True,
    "metadata": {"k": "v"},
    "truncation": "disabled",
    "user": "u",
    "store": False,
    "stream": False,
}  # fmt: skip
MESSAGES: Any = {
    "model": "text",
    "max_tokens": 2048,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "hi"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "document", "title": "notes", "source": {"type": "text", "media_type": "text/plain", "data": "x"}},
        ]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "calling"},
            {"type": "mcp_tool_use", "id": "m1", "name": "lookup", "server_name": "db", "input": {}},
            {"type": "mcp_tool_result", "tool_use_id": "m1", "is_error": False,
             "content": [{"type": "text", "text": "1"}]},
            {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
        ]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "is_error": False,
                                      "content": [{"type": "text", "text": "ok"}]}]},
    ],
    "tools": [{"type": "custom", "name": "f", "description": "d", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": False},
    "stop_sequences": ["END"],
    "temperature": 0.5,
    "top_k": 5,
    "metadata": {"user_id": "u"},
    "stream": False,
}  # fmt: skip
COUNT: Any = {k: v for k, v in MESSAGES.items() if k in ("model", "system", "messages", "tools", "tool_choice")}
EMBEDDINGS: Any = {"model": "emb", "input": ["a", "b"], "dimensions": 8, "encoding_format": "base64", "user": "u"}


def paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every field and array entry of `value`, the body itself (`()`) first."""
    yield at
    if isinstance(value, dict):
        for key, inner in value.items():  # pyright: ignore[reportUnknownVariableType]
            yield from paths(inner, (*at, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
            yield from paths(inner, (*at, i))


def swapped(body: Any, at: tuple[Any, ...], value: Any) -> Any:
    """A copy of `body` with the field at `at` set to `value` (`MISSING`: without that field)."""
    if len(at) == 0:
        return value
    copy = {**body} if isinstance(body, dict) else [*body]
    if len(at) > 1:
        copy[at[0]] = swapped(body[at[0]], at[1:], value)
    elif value is MISSING:
        del copy[at[0]]
    else:
        copy[at[0]] = value
    return copy


def cases(body: Any) -> list[tuple[tuple[Any, ...], Any]]:
    """(where, the value put there) for every field of `body` (and the body itself): every JSON type, and none."""
    return [(at, value) for at in paths(body) for value in [*WRONG.values(), MISSING] if at or value is not MISSING]


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, Any]]:
    """The config's model list: `text` on a fake OpenAI, `claude` on a fake Anthropic (with count_tokens)."""
    with serve_app(FakeOpenAI().app) as gpt, serve_app(FakeAnthropicCounting().app) as claude:
        yield {"master_key": MASTER_KEY, "model_list": [
            {"model_name": "text", "litellm_params": {"model": "openai/text", "api_base": f"{gpt}/v1",
                                                      "api_key": OPENAI_KEY}},
            {"model_name": "claude", "litellm_params": {"model": "anthropic/claude-sonnet-4-5", "api_base": claude,
                                                        "api_key": ANTHROPIC_KEY}},
            {"model_name": "emb", "model_info": {"mode": "embedding"}, "litellm_params": {
                "model": "openai/text-embedding-3-small", "api_base": f"{gpt}/v1", "api_key": OPENAI_KEY}},
        ]}  # fmt: skip


@contextlib.asynccontextmanager
async def gateway(upstreams: dict[str, Any]) -> AsyncIterator[httpx2.AsyncClient]:
    """The gateway in process (over loopback each request would wait out a delayed ACK: 2,000 of them)."""
    config = {"model_list": upstreams["model_list"], "general_settings": {"master_key": MASTER_KEY}}
    app = build_app(parse_config(config, {}))
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
        headers = {"Authorization": f"Bearer {MASTER_KEY}", "anthropic-version": "2023-06-01"}
        async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1", headers=headers,
                                      timeout=20) as client:  # fmt: skip
            yield client


def openai_shaped(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and isinstance(error.get("message"), str) and isinstance(error.get("type"), str)


def anthropic_shaped(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return body.get("type") == "error" and isinstance(error, dict) and set(error) == {"type", "message"}


async def sweep(
    upstreams: dict[str, Any], path: str, typical: Any, shaped: Callable[[Any], bool], models: tuple[str, ...]
) -> list[str]:
    """What went wrong over every wrong-type swap of `typical`, on each alias: a 5xx, or a 4xx in another shape.
    `CONCURRENT` requests at a time: those that reach a fake upstream spend most of their time waiting."""
    wrong: list[str] = []
    limit = anyio.CapacityLimiter(CONCURRENT)

    async def one(client: httpx2.AsyncClient, model: str, at: tuple[Any, ...], value: Any) -> None:
        async with limit:
            response = await client.post(path, json=swapped({**typical, "model": model}, at, value))
        status = response.status_code
        if status >= 500 or (status >= 400 and not shaped(response.json())):
            shown = "(left out)" if value is MISSING else repr(value)
            wrong.append(f"{model} {'.'.join(map(str, at)) or 'body'} = {shown}: {status} {response.text[:200]}")

    async with gateway(upstreams) as client:
        for model in models:
            assert (await client.post(path, json={**typical, "model": model})).status_code == 200
        with anyio.fail_after(120):
            async with anyio.create_task_group() as group:
                for model in models:
                    for at, value in cases(typical):
                        group.start_soon(one, client, model, at, value)
    return sorted(wrong)


@pytest.mark.anyio
async def test_a_wrong_type_anywhere_in_a_responses_request_is_a_4xx_in_openai_shape(upstreams: dict[str, Any]) -> None:
    wrong = await sweep(upstreams, "/v1/responses", RESPONSES, openai_shaped, ("text", "claude"))
    assert not wrong, "\n".join(wrong)


@pytest.mark.anyio
async def test_a_wrong_type_anywhere_in_a_messages_request_is_a_4xx_in_anthropic_shape(
    upstreams: dict[str, Any],
) -> None:
    wrong = await sweep(upstreams, "/v1/messages", MESSAGES, anthropic_shaped, ("text", "claude"))
    assert not wrong, "\n".join(wrong)


@pytest.mark.anyio
async def test_a_wrong_type_anywhere_in_a_count_tokens_request_is_a_4xx_in_anthropic_shape(
    upstreams: dict[str, Any],
) -> None:
    wrong = await sweep(upstreams, "/v1/messages/count_tokens", COUNT, anthropic_shaped, ("text", "claude"))
    assert not wrong, "\n".join(wrong)


@pytest.mark.anyio
async def test_a_wrong_type_anywhere_in_an_embeddings_request_is_a_4xx_in_openai_shape(
    upstreams: dict[str, Any],
) -> None:
    wrong = await sweep(upstreams, "/v1/embeddings", EMBEDDINGS, openai_shaped, ("emb",))
    assert not wrong, "\n".join(wrong)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "module"), [("/v1/messages", "endpoint"), ("/v1/messages/count_tokens", "count_tokens")]
)
async def test_an_unexpected_failure_on_the_messages_routes_is_a_500_in_anthropic_shape(
    upstreams: dict[str, Any], monkeypatch: pytest.MonkeyPatch, path: str, module: str
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(f"hub.api.messages.{module}.to_chat", broken)
    async with gateway(upstreams) as client:
        response = await client.post(path, json=COUNT if "count" in path else MESSAGES)
    assert response.status_code == 500
    assert response.json() == {"type": "error", "error": {"type": "api_error", "message": CRASHED}}


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
async def test_the_messages_routes_ask_for_a_missing_key_in_x_api_key(upstreams: dict[str, Any], path: str) -> None:
    async with gateway(upstreams) as client:
        response = await client.post(path, json=COUNT, headers={"Authorization": ""})
        assert response.status_code == 401
        assert response.json() == {"type": "error", "error": {"type": "authentication_error", "message": MISSING_KEY}}
        assert "x-api-key" in MISSING_KEY
        sent = await client.post(path, json=COUNT, headers={"Authorization": "", "x-api-key": MASTER_KEY})
        assert sent.status_code != 401


def test_a_chat_error_body_with_odd_types_keeps_its_status_in_anthropic_shape() -> None:
    odd = {"error": {"type": ["overloaded_error"], "code": {"a": 1}, "message": "upstream said no"}}
    assert from_openai_error(502, odd) == (502, error_body(502, "upstream said no"))
