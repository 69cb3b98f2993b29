"""An error that ends a /v1/messages stream after it started gets the Anthropic error type the same error gets when it
is answered before the stream starts (hub/api/messages/response.py), not always `api_error`.

End to end: the official `anthropic` SDK, a streamed tool loop over the real `mcp-server-time` whose second round the
fake upstream refuses with OpenAI's 400; and the translator alone for the other kinds a chat stream's error event
names by its `type` or `code` only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.api.messages.stream import EventTranslator
from hub.config import parse_config
from hub.server import build_app
from tests.e2e.test_tool_loop_rounds import TIME_SERVER
from tests.support.hub import wait_for_tools
from tests.support.servers import serve_app

MASTER_KEY = "sk-toolhub-stream-error-types"
CALL = {"id": "call_1", "type": "function", "function": {"name": "time__get_current_time",
                                                          "arguments": '{"timezone": "UTC"}'}}  # fmt: skip
SERVERS = {"mcp_servers": [{"type": "url", "url": "http://127.0.0.1:9/mcp", "name": "time"}]}
ASK: Any = [{"role": "user", "content": "What time is it?"}]


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


async def _chat(request: Request) -> Response:
    """A call to the hub's time tool; once the messages hold its result, OpenAI's 400 about them."""
    body = await request.json()
    if any(m.get("role") == "tool" for m in body["messages"]):
        error = {"message": "Invalid 'messages[2].content': refused.", "type": "invalid_request_error",
                 "param": "messages.[2].content", "code": "invalid_value"}  # fmt: skip
        return JSONResponse({"error": error}, 400)
    if not body.get("stream"):
        message = {"role": "assistant", "content": None, "tool_calls": [CALL]}
        return JSONResponse({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                             "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
                             "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})  # fmt: skip
    events = _chunk({"role": "assistant", "content": ""}) + _chunk({"tool_calls": [{"index": 0, **CALL}]})
    events += _chunk({}, "tool_calls") + b"data: [DONE]\n\n"
    return Response(events, media_type="text/event-stream")


@pytest.fixture(scope="module")
def claude() -> Iterator[anthropic.Anthropic]:
    upstream = Starlette(routes=[Route("/v1/chat/completions", _chat, methods=["POST"])])
    with serve_app(upstream) as base:
        params = {"model": "openai/loop", "api_base": f"{base}/v1", "api_key": "sk-x"}
        config: dict[str, Any] = {"model_list": [{"model_name": "loop", "litellm_params": params}],
                                  "general_settings": {"master_key": MASTER_KEY},
                                  "mcp_servers": {"time": TIME_SERVER}}  # fmt: skip
        with serve_app(build_app(parse_config(config, {}))) as url:
            wait_for_tools(url, {"time"}, MASTER_KEY)
            with anthropic.Anthropic(base_url=url, api_key=MASTER_KEY, max_retries=0, timeout=30) as client:
                yield client


def test_a_later_rounds_400_is_an_invalid_request_error_streamed_as_not(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as answered:
        claude.messages.create(model="loop", max_tokens=50, messages=ASK, extra_body=SERVERS)
    with claude.messages.stream(model="loop", max_tokens=50, messages=ASK, extra_body=SERVERS) as events:
        with pytest.raises(anthropic.APIStatusError) as streamed:
            events.until_done()
    body: Any = streamed.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error", body
    assert body["error"]["type"] == answered.value.body["error"]["type"]  # pyright: ignore[reportIndexIssue, reportOptionalSubscript, reportUnknownMemberType]


@pytest.mark.parametrize(
    ("error", "kind"),
    [({"type": "invalid_request_error", "code": "invalid_value"}, "invalid_request_error"),
     ({"type": "invalid_request_error", "code": "not_found_error"}, "not_found_error"),  # an Anthropic upstream's
     ({"type": "invalid_request_error", "code": "request_too_large"}, "request_too_large"),
     ({"type": "authentication_error", "code": None}, "authentication_error"),
     ({"type": "permission_error", "code": "permission_error"}, "permission_error"),
     ({"type": "rate_limit_error", "code": None}, "rate_limit_error"),
     ({"type": "service_unavailable", "code": None}, "overloaded_error"),
     ({"type": "server_error", "code": "overloaded_error"}, "overloaded_error"),
     ({"type": "upstream_error", "code": "upstream_unreachable"}, "api_error"),
     ({"type": "timeout", "code": "upstream_timeout"}, "api_error"),
     ({"type": ["invalid_request_error"], "code": {"a": 1}}, "api_error")],
)  # fmt: skip
def test_a_chat_streams_error_event_keeps_its_kind_in_anthropics_error_event(error: Any, kind: str) -> None:
    translator = EventTranslator("alias")
    translator.feed(_chunk({"role": "assistant", "content": "Hel"}))
    out = translator.feed(b"data: " + orjson.dumps({"error": {**error, "message": "no"}}) + b"\n\n")
    assert out == b'event: error\ndata: {"type":"error","error":{"type":"%b","message":"no"}}\n\n' % kind.encode()
