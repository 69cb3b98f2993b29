"""Errors about chat messages that are no part of the client's request, and provider words for a chat field, as the
official SDKs get them from /v1/responses and /v1/messages (hub/api/locations.py), end to end over loopback:

- a message of the conversation stored as `previous_response_id`: named by that field and the stored response;
- a message the tool loop added after a hub tool ran (the real `mcp-server-time`), the upstream refusing the next
  round: named as the gateway's, with no `param`, streamed or not;
- a file's data refused by the Anthropic or Gemini translation, an image url source that is no http(s) URL: in the
  client API's words.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.api.locations import ADDED
from hub.config import parse_config
from hub.server import build_app
from tests.e2e.test_tool_loop_rounds import TIME_SERVER
from tests.fakes.anthropic_upstream import API_KEY as ANTHROPIC_KEY, FakeAnthropic
from tests.support.hub import wait_for_tools
from tests.support.servers import refusing_port, serve_app

MASTER_KEY = "sk-toolhub-locations-e2e"
USAGE = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
CALL = {"id": "call_1", "type": "function", "function": {"name": "time__get_current_time",
                                                          "arguments": '{"timezone": "UTC"}'}}  # fmt: skip
TIME: Any = {"type": "mcp", "server_label": "time", "require_approval": "never"}
SERVERS = {"mcp_servers": [{"type": "url", "url": "http://127.0.0.1:9/mcp", "name": "time"}]}


def _refused(k: int) -> Response:
    """OpenAI's 400 about the chat body's message `k`, as its validation words it."""
    error = {"message": f"Invalid 'messages[{k}].content': refused.", "type": "invalid_request_error",
             "param": f"messages.[{k}].content", "code": "invalid_value"}  # fmt: skip
    return JSONResponse({"error": error}, 400)


def _first_round(stream: bool) -> Response:
    """A call to the hub's time tool."""
    if not stream:
        message = {"role": "assistant", "content": None, "tool_calls": [CALL]}
        choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
        return JSONResponse(_answer("chat.completion", [choice], usage=USAGE))
    deltas = [({"role": "assistant", "content": ""}, None), ({"tool_calls": [{"index": 0, **CALL}]}, None)]
    chunks = [_answer("chat.completion.chunk", [{"index": 0, "delta": d, "finish_reason": f}]) for d, f in deltas]
    chunks.append(_answer("chat.completion.chunk", [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]))
    events = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
    return Response(events + b"data: [DONE]\n\n", media_type="text/event-stream")


def _answer(kind: str, choices: list[Any], **extra: Any) -> dict[str, Any]:
    return {"id": "c", "object": kind, "created": 1, "model": "m", "choices": choices, **extra}


async def _chat(request: Request) -> Response:
    """`loop`: calls the time tool, then refuses the tool result; `refuse`: refuses the message saying BAD;
    `ok`: answers."""
    body = await request.json()
    messages: list[Any] = body["messages"]
    results = [k for k, m in enumerate(messages) if m.get("role") == "tool"]
    if body["model"] == "loop":
        return _refused(results[-1]) if results else _first_round(bool(body.get("stream")))
    if body["model"] == "refuse":
        return _refused(next(k for k, m in enumerate(messages) if "BAD" in json.dumps(m)))
    choice = {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    return JSONResponse(_answer("chat.completion", [choice], usage=USAGE))


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    upstream = Starlette(routes=[Route("/v1/chat/completions", _chat, methods=["POST"])])
    database: Path = tmp_path_factory.mktemp("locations-e2e") / "hub.db"
    with serve_app(upstream) as o, serve_app(FakeAnthropic().app) as a:
        models = [model_entry(name, f"openai/{name}", f"{o}/v1", "sk-x") for name in ("loop", "refuse", "ok")]
        models.append(model_entry("claude", "anthropic/claude-sonnet-4-5", a, ANTHROPIC_KEY))
        nobody = f"http://127.0.0.1:{refusing_port()}"  # the Gemini translation refuses before any call
        models.append(model_entry("gemini", "gemini/gemini-2.5-flash", nobody, "k"))
        general = {"master_key": MASTER_KEY, "database_url": f"sqlite:///{database}"}
        config = {"model_list": models, "general_settings": general, "mcp_servers": {"time": TIME_SERVER}}
        with serve_app(build_app(parse_config(config, {}))) as url:
            wait_for_tools(url, {"time"}, MASTER_KEY)
            yield url


def model_entry(alias: str, model: str, api_base: str, api_key: str) -> dict[str, Any]:
    return {"model_name": alias, "litellm_params": {"model": model, "api_base": api_base, "api_key": api_key}}


BMP: Any = {"type": "input_image", "image_url": "data:image/bmp;base64,AAAA"}


@pytest.mark.parametrize(
    ("earlier", "model", "words"),
    [("BAD", "refuse", "Invalid 'a message in the conversation stored as {id}': refused."),
     ([{"type": "input_text", "text": "look"}, BMP], "claude",
      "a message in the conversation stored as {id}: image type 'image/bmp' is not supported by Anthropic")],
)  # fmt: skip
def test_an_error_about_the_stored_conversation_names_previous_response_id(
    client: openai.OpenAI, earlier: Any, model: str, words: str
) -> None:
    first = client.responses.create(model="ok", input=[{"role": "user", "content": earlier}])
    with pytest.raises(openai.BadRequestError) as caught:  # instructions shift the chat messages by one
        client.responses.create(model=model, previous_response_id=first.id, instructions="be brief", input="now")
    assert caught.value.param == "previous_response_id"
    assert words.format(id=first.id) in caught.value.message, caught.value.message
    assert "messages" not in caught.value.message


def test_an_error_about_a_tool_loop_round_names_the_gateways_message_on_responses(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="loop", input="What time is it?", tools=[TIME])
    assert caught.value.param is None
    assert f"Invalid '{ADDED}': refused." in caught.value.message, caught.value.message


def test_a_streamed_tool_loop_round_failure_names_the_gateways_message_on_responses(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="loop", input="What time is it?", tools=[TIME], stream=True))
    failed = events[-1]
    assert failed.type == "response.failed" and failed.response.error is not None
    assert failed.response.error.message.endswith(f"Invalid '{ADDED}': refused."), failed.response.error


@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_loop_round_failure_names_the_gateways_message_on_messages(
    claude: anthropic.Anthropic, stream: bool
) -> None:
    ask: Any = [{"role": "user", "content": "What time is it?"}]
    if stream:
        with claude.messages.stream(model="loop", max_tokens=50, system="be brief", messages=ask,
                                    extra_body=SERVERS) as events:  # fmt: skip
            with pytest.raises(anthropic.APIStatusError) as caught:
                events.until_done()
    else:
        with pytest.raises(anthropic.BadRequestError) as caught:
            claude.messages.create(model="loop", max_tokens=50, system="be brief", messages=ask, extra_body=SERVERS)
    message: str = caught.value.body["error"]["message"]  # pyright: ignore[reportIndexIssue, reportUnknownVariableType, reportOptionalSubscript]
    assert message.endswith(f"Invalid '{ADDED}': refused."), message


def test_a_files_data_that_is_no_data_url_is_named_as_file_data_on_responses(client: openai.OpenAI) -> None:
    part: Any = {"type": "input_file", "file_data": "JVBERi0xLjQ=", "filename": "a.pdf"}
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="claude", input=[{"role": "user", "content": [part]}])
    assert caught.value.param == "input[0].content[0].file_data"
    assert "input[0].content[0]: expected the file inline, as a base64 data URL" in caught.value.message
    assert "http(s)" not in caught.value.message, caught.value.message


def test_a_files_data_url_without_a_media_type_is_named_as_file_data_for_gemini(client: openai.OpenAI) -> None:
    part: Any = {"type": "input_file", "file_data": "data:;base64,JVBERi0xLjQ=", "filename": "a.pdf"}
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gemini", input=[{"role": "user", "content": [part]}])
    assert caught.value.param == "input[0].content[0]"  # Gemini's translation names the part
    words = "input[0].content[0]: 'data:;base64,JVBERi0xLjQ=' is not a data URL with a media type (data:application/pdf"
    assert words in caught.value.message, caught.value.message


def test_a_url_source_that_is_no_http_url_is_refused_in_messages_words(claude: anthropic.Anthropic) -> None:
    block: Any = {"type": "image", "source": {"type": "url", "url": "ftp://example.org/a.png"}}
    words = "messages.0.content.1.source.url: expected an http(s) URL"
    content: Any = [{"type": "text", "text": "look"}, block]
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model="claude", max_tokens=5, messages=[{"role": "user", "content": content}])
    assert caught.value.body == {"type": "error", "error": {"type": "invalid_request_error", "message": words}}
