"""A fake OpenAI model for tool-loop tests that says the same thing streamed and not: text *and* tool calls in a turn.

Models (by the number of tool results in the conversation):

    timer     0: "Let me check the time." and a call to `time__get_current_time` (made even when it was not offered)
              1+: "It is noon UTC." after a good result; "The time tool failed: <result>" after an error result
    charter   0: like `timer`; 1: "Here is a chart." and a call to the client's `show_chart`; 2+: "Done."

Every tool-call id is new (`call_<n>`), as real models make them. `requests` holds every body received.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

JSON = dict[str, Any]
USAGE = {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}
TIME_CALL = ("time__get_current_time", '{"timezone": "UTC"}')


def turn(body: JSON) -> tuple[str, list[tuple[str, str]]]:
    """(text, [(tool name, JSON arguments)]) of the model's next turn."""
    results = [m for m in body["messages"] if m.get("role") == "tool"]
    if not results:
        return "Let me check the time.", [TIME_CALL]
    if body["model"] == "charter":
        return ("Here is a chart.", [("show_chart", '{"kind": "bar"}')]) if len(results) == 1 else ("Done.", [])
    last = str(results[-1]["content"])
    return ("The time tool failed: " + last if last.startswith("Error:") else "It is noon UTC."), []


class LoopModel:
    """The fake upstream: `app` serves `/v1/chat/completions`."""

    def __init__(self) -> None:
        self.requests: list[JSON] = []
        self._ids = itertools.count(1)
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        text, calls = turn(body)
        named = [(f"call_{next(self._ids)}", name, args) for name, args in calls]
        if body.get("stream"):
            return StreamingResponse(self._stream(body, text, named), media_type="text/event-stream")
        message: JSON = {"role": "assistant", "content": text}
        if named:
            message["tool_calls"] = [_call(i, n, a) for i, n, a in named]
        choice = {"index": 0, "message": message, "finish_reason": "tool_calls" if named else "stop"}
        return JSONResponse({**_base(body, "chat.completion"), "choices": [choice], "usage": USAGE})

    async def _stream(self, body: JSON, text: str, calls: list[tuple[str, str, str]]) -> AsyncIterator[bytes]:
        yield _event(body, {"role": "assistant", "content": ""})
        for start in range(0, len(text), 7):
            yield _event(body, {"content": text[start : start + 7]})
        for index, (call_id, name, args) in enumerate(calls):
            first = {"index": index, **_call(call_id, name, "")}
            yield _event(body, {"tool_calls": [first]})
            for piece in (args[:6], args[6:]):
                yield _event(body, {"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield _event(body, {}, "tool_calls" if calls else "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {**_base(body, "chat.completion.chunk"), "choices": [], "usage": USAGE}
            yield b"data: " + json.dumps(usage).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"


def _base(body: JSON, kind: str) -> JSON:
    return {"id": "chatcmpl-loop", "object": kind, "created": 1764936000, "model": body["model"]}


def _call(call_id: str, name: str, args: str) -> JSON:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def _event(body: JSON, delta: JSON, finish: str | None = None) -> bytes:
    chunk = {**_base(body, "chat.completion.chunk"), "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"
