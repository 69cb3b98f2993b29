"""Errors about fields the /v1/messages and /v1/responses translations renamed or reshaped name the client's own
fields (hub/api/locations.py), as the official `anthropic` and `openai` SDKs get them over loopback:

- a tool, by the client's entry the chat tool was made of (`tools[1].name`, not `tools[1].function.name`), where
  /v1/responses leaves hosted tools out and keeps hub (`mcp`) tools and a namespace's functions one by one;
- a renamed field: `stop_sequences` (chat `stop`), `max_output_tokens` (chat `max_completion_tokens`);
- a Responses `input_file` given by `file_url`: fetched for Gemini, sent to Anthropic as a url source (which Claude
  fetches), and a URL that is not http(s) refused naming it.

Also: /v1/messages/count_tokens refuses a malformed `cache` control as /v1/messages does, when the cache is on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.config import parse_config
from hub.server import build_app
from tests.api.test_error_locations_e2e import model_entry as _model
from tests.fakes.anthropic_upstream import API_KEY as ANTHROPIC_KEY, FakeAnthropic
from tests.fakes.gemini_upstream import API_KEY as GEMINI_KEY, FakeGemini
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-client-field-names"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
HELLO: Any = [{"role": "user", "content": "hello"}]
SCHEMA: Any = {"type": "object", "properties": {}}
BAD_TOOLS: Any = [{"name": "ok", "input_schema": SCHEMA}, {"name": "b@d", "input_schema": SCHEMA}]


def _function(name: str) -> Any:
    return {"type": "function", "name": name, "parameters": SCHEMA}


async def _chat(request: Request) -> Response:
    """`limit`: refuses the body's max_completion_tokens as OpenAI words it; otherwise answers."""
    body = await request.json()
    if body["model"] == "limit":
        error = {"message": "Invalid 'max_completion_tokens': integer above maximum value.",
                 "param": "max_completion_tokens", "type": "invalid_request_error"}  # fmt: skip
        return JSONResponse({"error": error}, 400)
    choice = {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    return JSONResponse({"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": [choice],
                         "usage": usage})  # fmt: skip


async def _pdf(request: Request) -> Response:
    return Response(PDF, media_type="application/pdf")


@pytest.fixture(scope="module")
def files_url() -> Iterator[str]:
    with serve_app(Starlette(routes=[Route("/report.pdf", _pdf)])) as url:
        yield url


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    upstream = Starlette(routes=[Route("/v1/chat/completions", _chat, methods=["POST"])])
    with serve_app(upstream) as o, serve_app(FakeAnthropic().app) as a, serve_app(FakeGemini().app) as g:
        models = [_model(name, f"openai/{name}", f"{o}/v1", "sk-x") for name in ("ok", "limit")]
        models.append(_model("claude", "anthropic/claude-sonnet-4-5", a, ANTHROPIC_KEY))
        models.append(_model("g-echo", "gemini/gemini-2.5-echo", g, GEMINI_KEY))
        models[-1]["litellm_params"]["allow_private_image_urls"] = True  # the file server is on 127.0.0.1
        config = {"model_list": models, "general_settings": {"master_key": MASTER_KEY},
                  "litellm_settings": {"cache": True}}  # fmt: skip
        with serve_app(build_app(parse_config(config, {}))) as url:
            yield url


def _messages_error(claude: anthropic.Anthropic, endpoint: str, **extra: Any) -> str:
    """The message of the 400 `endpoint` (`create`, `stream` or `count_tokens`) answers."""
    with pytest.raises(anthropic.BadRequestError) as caught:
        if endpoint == "count_tokens":
            claude.messages.count_tokens(model="ok", messages=HELLO, extra_body=extra)  # it has no stop_sequences
        elif endpoint == "stream":
            with claude.messages.stream(model="ok", max_tokens=5, messages=HELLO, **extra) as events:
                events.until_done()
        else:
            claude.messages.create(model="ok", max_tokens=5, messages=HELLO, **extra)
    return caught.value.body["error"]["message"]  # pyright: ignore[reportIndexIssue, reportUnknownVariableType, reportOptionalSubscript]


@pytest.mark.parametrize("endpoint", ["create", "stream", "count_tokens"])
def test_a_bad_tool_name_on_messages_names_the_clients_tool(claude: anthropic.Anthropic, endpoint: str) -> None:
    message = _messages_error(claude, endpoint, tools=BAD_TOOLS)
    assert message == "Invalid 'tools[1].name': 'b@d' must match ^[a-zA-Z0-9_-]{1,64}$."


@pytest.mark.parametrize("endpoint", ["create", "count_tokens"])
def test_five_stop_sequences_are_named_as_stop_sequences(claude: anthropic.Anthropic, endpoint: str) -> None:
    message = _messages_error(claude, endpoint, stop_sequences=["a", "b", "c", "d", "e"])
    assert message == "Invalid 'stop_sequences': a string or an array of at most 4 strings."


def _said(error: openai.APIStatusError) -> Any:
    return error.body["message"]  # pyright: ignore[reportIndexIssue, reportOptionalSubscript]


@pytest.mark.parametrize(
    ("tools", "path"),
    [([_function("ok"), _function("b@d")], "tools[1].name"),
     # a hosted tool is left out and a hub tool kept: the chat tool at index 2 is the client's tools[3]
     ([{"type": "web_search"}, {"type": "mcp", "server_label": "time", "require_approval": "never"},
       _function("ok"), _function("b@d")], "tools[3].name"),
     ([{"type": "namespace", "name": "ns", "description": "d", "tools": [_function("ok"), _function("b@d")]}],
      "tools[0].tools[1].name")],
)  # fmt: skip
@pytest.mark.parametrize("stream", [False, True])
def test_a_bad_tool_name_on_responses_names_the_clients_tool(
    client: openai.OpenAI, tools: Any, path: str, stream: bool
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="ok", input="hi", tools=tools, stream=stream)
    assert caught.value.param == path
    assert _said(caught.value) == f"Invalid '{path}': 'b@d' must match ^[a-zA-Z0-9_-]{{1,64}}$."


def test_an_upstreams_error_about_max_completion_tokens_names_max_output_tokens(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="limit", input="hi", max_output_tokens=10**6)
    assert caught.value.param == "max_output_tokens"
    assert _said(caught.value) == "openai error (400): Invalid 'max_output_tokens': integer above maximum value."


@pytest.mark.parametrize("cache", [{"ttl": -1}, "x"])
def test_count_tokens_refuses_a_malformed_cache_control_as_messages_does(gateway_url: str, cache: Any) -> None:
    body, headers = {"model": "ok", "messages": HELLO, "cache": cache}, {"x-api-key": MASTER_KEY}
    counted = httpx2.post(f"{gateway_url}/v1/messages/count_tokens", json=body, headers=headers)
    answered = httpx2.post(f"{gateway_url}/v1/messages", json={**body, "max_tokens": 5}, headers=headers)
    assert (counted.status_code, counted.json()) == (400, answered.json())
    assert answered.status_code == 400


def _file(url: str) -> Any:
    return [{"role": "user", "content": [{"type": "input_text", "text": "x"}, {"type": "input_file", "file_url": url}]}]


def test_a_file_url_reaches_gemini_as_the_file(client: openai.OpenAI, files_url: str) -> None:
    response = client.responses.create(model="g-echo", input=_file(f"{files_url}/report.pdf"))
    assert f"application/pdf {len(PDF)} bytes" in response.output_text, response.output_text


def test_a_file_url_reaches_anthropic_as_a_url_source(client: openai.OpenAI, files_url: str) -> None:
    """The fake refuses a malformed document source; the exact body: tests/e2e/test_gateway_anthropic_urls.py."""
    response = client.responses.create(model="claude", input=_file(f"{files_url}/report.pdf"))
    assert response.output_text == "You said: x"


def test_a_file_url_that_is_not_http_is_refused_naming_it(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="g-echo", input=_file("ftp://127.0.0.1/report.pdf"))
    assert caught.value.param == "input[0].content[1].file_url"
    assert _said(caught.value) == "input[0].content[1].file_url: expected an http(s) URL."
