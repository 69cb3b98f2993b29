"""A fake Anthropic Messages server that speaks the real wire format and enforces the real rules.

`POST /v1/messages` validates each request the way api.anthropic.com does (tests/fakes/anthropic_rules.py: headers,
`max_tokens`, roles, alternation, non-empty text, tool_use/tool_result pairing and placement, id and name patterns,
thinking rules and signatures) and answers refusals with Anthropic's error texts and shapes. The model name picks
the behaviour:

    claude-sonnet-4-5   "You said: <last user text>" (any unknown name too); streamed in 5 pieces
    claude-tools        text, then one tool_use per requested tool (up to two: {"city": "Paris"}, {"timezone":
                        "UTC"}); after tool results, a text answer quoting them
    claude-noargs       one tool_use whose input never arrives (only an empty input_json_delta)
    claude-think        a tool loop with thinking: step 0 thinking + tool_use(tools[0]); step 1 redacted_thinking +
                        thinking + tool_use(tools[1]); step 2 thinking + text. Thinking blocks only when enabled
    claude-json         JSON text: plain with `output_config.format`, in a code fence with a JSON system instruction
    claude-stop-REASON  text with stop_reason REASON (max_tokens, refusal, stop_sequence: `stop_sequence` names the
                        first of the request's `stop_sequences`, as the matched one)
    claude-slow         20 text pieces, 0.5 s apart
    claude-midstream-error  a text delta, then `event: error` (overloaded_error)
    claude-broken       a text delta, then the connection drops (no message_stop)
    error-NNN           status NNN with Anthropic's error body (400 401 403 404 413 429 500 529)

Usage is always `USAGE`: 10 input, 5 cache-read, 3 cache-creation and 7 output tokens.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.anthropic_rules import (
    API_KEY as API_KEY,
    EMAIL_USER_ID as EMAIL_USER_ID,
    FORCED_TOOL_WITH_THINKING as FORCED_TOOL_WITH_THINKING,
    TEMPERATURE_AND_TOP_P as TEMPERATURE_AND_TOP_P,
    TRAILING_WHITESPACE as TRAILING_WHITESPACE,
    AnthropicRules,
    Refusal,
)

USAGE = {"input_tokens": 10, "cache_read_input_tokens": 5, "cache_creation_input_tokens": 3, "output_tokens": 7}
SCRIPTED_INPUTS = [{"city": "Paris"}, {"timezone": "UTC"}]
ERRORS = {
    400: ("invalid_request_error", "max_tokens: 100000 > 64000, which is the maximum allowed number of output tokens "
          "for claude-sonnet-4-5-20250929"),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "model: claude-nope"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit "
          "(https://docs.claude.com/en/api/rate-limits); see the response headers for current usage."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}  # fmt: skip
OVERLOADED = "Overloaded"


def error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Response:
    request_id = "req_011C" + secrets.token_hex(8)
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}
    return JSONResponse(body, status, headers={"request-id": request_id, **(headers or {})})


class FakeAnthropic(AnthropicRules):
    """The fake server: `requests`/`headers` record what it received; `issued` the thinking it signed."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.refusals: list[str] = []
        self.issued: dict[str, str] = {}
        """Signature (or redacted data) -> the thinking text it signs."""
        self.disconnects = 0
        self.stream_closed = threading.Event()
        self._ids = itertools.count(1)
        self.app = Starlette(routes=[Route("/v1/messages", self.messages, methods=["POST"])])

    async def messages(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        try:
            self._check_headers(request)
            self._validate(body)
        except Refusal as exc:
            self.refusals.append(exc.message)
            return error(exc.status, exc.kind, exc.message)
        model: str = body["model"]
        if model.startswith("error-"):
            status = int(model.split("-")[1])
            kind, message = ERRORS[status]
            return error(status, kind, message, {"retry-after": "7"} if status == 429 else None)
        message = self._answer(body)
        if not body.get("stream"):
            return JSONResponse(message, headers={"request-id": "req_011Cfake"})
        return StreamingResponse(self._stream(message, model), media_type="text/event-stream")

    # -- answers -----------------------------------------------------------------------------------------------
    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        model: str = body["model"]
        content, stop = self._content(body, model)
        if model.startswith("claude-stop-"):
            stop = model.removeprefix("claude-stop-")
        matched = (body.get("stop_sequences") or [None])[0] if stop == "stop_sequence" else None
        return {"id": f"msg_fake{next(self._ids):04d}", "type": "message", "role": "assistant", "model": model,
                "content": content, "stop_reason": stop, "stop_sequence": matched, "usage": dict(USAGE)}  # fmt: skip

    def _content(self, body: dict[str, Any], model: str) -> tuple[list[dict[str, Any]], str]:
        tools = [t["name"] for t in body.get("tools") or []]
        results = _tool_results(body["messages"][-1])
        if model == "claude-tools" and not results:
            calls = [self._tool_use(n, SCRIPTED_INPUTS[k]) for k, n in enumerate(tools[:2])]
            return [{"type": "text", "text": "Let me check."}, *calls], "tool_use"
        if model == "claude-noargs":
            return [self._tool_use(tools[0], {})], "tool_use"
        if model == "claude-think":
            return self._think(body, tools)
        if model == "claude-json":
            text = '{"city": "Paris", "temp_c": 21}'
            return [
                {"type": "text", "text": text if body.get("output_config") else f"```json\n{text}\n```"}
            ], "end_turn"
        if results:
            return [{"type": "text", "text": "Results: " + "; ".join(results)}], "end_turn"
        return [{"type": "text", "text": f"You said: {_last_text(body['messages'])}"}], "end_turn"

    def _think(self, body: dict[str, Any], tools: list[str]) -> tuple[list[dict[str, Any]], str]:
        step = _tool_step(body["messages"])
        on = (body.get("thinking") or {}).get("type") == "enabled"
        blocks: list[dict[str, Any]] = []
        if on and step == 1:
            data = "EmwKAhgB" + secrets.token_hex(12)
            self.issued[data] = ""
            blocks.append({"type": "redacted_thinking", "data": data})
        if on:
            blocks.append(self._thinking(f"Step {step}: I should {'answer' if step >= 2 else 'call a tool'}."))
        if step < 2:
            return [*blocks, self._tool_use(tools[step], SCRIPTED_INPUTS[step])], "tool_use"
        return [*blocks, {"type": "text", "text": "Paris is sunny at noon UTC."}], "end_turn"

    def _thinking(self, text: str) -> dict[str, Any]:
        signature = "EqQBCkgI" + secrets.token_urlsafe(24)
        self.issued[signature] = text
        return {"type": "thinking", "thinking": text, "signature": signature}

    def _tool_use(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return {"type": "tool_use", "id": f"toolu_01{secrets.token_hex(10)}", "name": name, "input": arguments}

    async def _stream(self, message: dict[str, Any], model: str) -> AsyncIterator[bytes]:
        delay = 0.5 if model == "claude-slow" else 0.0
        try:
            for n, (event, data) in enumerate(_events(message, 20 if delay else 5)):
                if model == "claude-broken" and n == 4:
                    raise ConnectionAbortedError("fake upstream drops the connection")
                if model == "claude-midstream-error" and n == 4:
                    yield _sse(
                        "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
                    )
                    return
                if delay and event == "content_block_delta":
                    await anyio.sleep(delay)
                yield _sse(event, data)
        except anyio.get_cancelled_exc_class():
            self.disconnects += 1
            raise
        finally:
            self.stream_closed.set()


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _events(message: dict[str, Any], pieces: int) -> list[tuple[str, dict[str, Any]]]:
    """The real event sequence for a finished message."""
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": {**message["usage"], "output_tokens": 1}}  # fmt: skip
    out: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        empty = {"text": {"type": "text", "text": ""}, "tool_use": {**block, "input": {}},
                 "thinking": {"type": "thinking", "thinking": "", "signature": ""}}.get(kind, block)  # fmt: skip
        out.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": empty}))
        if index == 0:
            out.append(("ping", {"type": "ping"}))
        for delta in _deltas(block, pieces):
            out.append(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
        out.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    usage = {"output_tokens": message["usage"]["output_tokens"]}
    out.append(("message_delta", {"type": "message_delta", "delta": stop, "usage": usage}))
    out.append(("message_stop", {"type": "message_stop"}))
    return out


def _deltas(block: dict[str, Any], pieces: int) -> list[dict[str, Any]]:
    kind = block["type"]
    if kind == "text":
        return [{"type": "text_delta", "text": p} for p in _split(block["text"], pieces)]
    if kind == "thinking":
        return [*({"type": "thinking_delta", "thinking": p} for p in _split(block["thinking"], 3)),
                {"type": "signature_delta", "signature": block["signature"]}]  # fmt: skip
    if kind == "tool_use":
        raw = json.dumps(block["input"]) if block["input"] else ""
        return [{"type": "input_json_delta", "partial_json": p} for p in ["", *_split(raw, 3)]]
    return []


def _split(text: str, pieces: int) -> list[str]:
    step = max(1, -(-len(text) // pieces))
    return [text[i : i + step] for i in range(0, len(text), step)]


def _tool_results(message: dict[str, Any]) -> list[str]:
    content = message.get("content")
    if message.get("role") != "user" or not isinstance(content, list):
        return []
    out = []
    for block in content:
        if block.get("type") == "tool_result":
            inner = block.get("content", "")
            out.append(inner if isinstance(inner, str) else "".join(b.get("text", "") for b in inner))
    return out


def _tool_step(messages: list[dict[str, Any]]) -> int:
    """How many tool rounds the current turn has had (user tool-result messages since the last user text)."""
    step = 0
    for message in reversed(messages):
        if message["role"] == "user":
            if not _tool_results(message):
                break
            step += 1
    return step


def _last_text(messages: list[dict[str, Any]]) -> str:
    content = messages[-1].get("content")
    if isinstance(content, str):
        return content
    content = content if isinstance(content, list) else []
    texts = [b["text"] for b in content if b.get("type") == "text"]
    images = [b["source"]["type"] for b in content if b.get("type") == "image"]
    return " ".join(texts) + (f" [images: {', '.join(images)}]" if images else "")
