"""A fake OpenAI Chat Completions server that speaks the real wire format and enforces the real rules.

The upstream model name picks the behaviour (the gateway's config routes aliases to these names):

    text            a short answer; streams it in `chunks` pieces (default 5, `text-20` gives 20)
    tools           two parallel tool calls (get_weather, get_time), streamed fragment by fragment
    noargs          one tool call whose streamed arguments are null, as OpenAI sometimes sends
    noindex         tool-call deltas without `index`, as some compatible servers send
    json            JSON content, and a 400 unless `response_format` was sent
    gpt-5-mini      like `text`, but answers 400 with OpenAI's texts to parameters gpt-5 rejects
    slow-N          waits N seconds before answering (non-stream) or between chunks (stream)
    error-NNN       answers status NNN with OpenAI's error body
    midstream-error two chunks, then an `error` event
    broken          two chunks, then the connection drops
    garbage         a 200 that is not JSON
    cumulative      like `text`, but every chunk carries the usage so far (as vLLM's continuous_usage_stats does)
    agent...        a model that uses hub tools, by the number of tool results it has seen (see `agent_turn`)

Every request must carry `Authorization: Bearer <api_key>`; unknown top-level fields are refused as OpenAI does.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

API_KEY = "sk-fake-openai"
KNOWN = set(
    """model messages stream stream_options tools tool_choice parallel_tool_calls response_format max_completion_tokens
    max_tokens reasoning_effort verbosity temperature top_p stop n seed presence_penalty frequency_penalty logit_bias
    logprobs top_logprobs user safety_identifier prompt_cache_key prompt_cache_options metadata store service_tier
    prediction modalities audio web_search_options functions function_call""".split()
)
GPT5_REJECTS = ("top_p", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "logit_bias", "stop")
TOOL_CALLS = [
    ("call_weather_1", "get_weather", '{"city": "Paris"}'),
    ("call_time_2", "get_time", '{"timezone": "UTC"}'),
]
ERRORS = {
    400: ("invalid_request_error", "invalid_value", "Invalid value for 'messages': something is wrong."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: sk-fake***. You can find your API key at https://platform.openai.com/account/api-keys.",
    ),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model `nope` does not exist or you do not have access to it.",
    ),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for gpt-5-mini in organization org-x on requests per min (RPM): "
        "Limit 3, Used 3, Requested 1.",
    ),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def error(status: int, message: str, type_: str, code: str | None = None, param: str | None = None) -> Response:
    return JSONResponse({"error": {"message": message, "type": type_, "param": param, "code": code}}, status)


def _validate(body: dict[str, Any], request: Request) -> Response | None:
    if request.headers.get("authorization") != f"Bearer {API_KEY}":
        return error(401, ERRORS[401][2], "invalid_request_error", "invalid_api_key")
    for key in body:
        if key not in KNOWN:
            return error(400, f"Unrecognized request argument supplied: {key}", "invalid_request_error")
    model = body.get("model", "")
    if body.get("stream_options") and not body.get("stream"):
        return error(
            400,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "invalid_request_error",
            "invalid_value",
            "stream_options",
        )
    if "parallel_tool_calls" in body and not body.get("tools"):
        return error(
            400,
            "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' are "
            "specified.",
            "invalid_request_error",
            "invalid_value",
            "parallel_tool_calls",
        )
    if model.startswith("gpt-5"):
        if "max_tokens" in body:
            return error(
                400,
                "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                "'max_completion_tokens' instead.",
                "invalid_request_error",
                "unsupported_parameter",
                "max_tokens",
            )
        if body.get("temperature", 1) != 1:
            return error(
                400,
                f"Unsupported value: 'temperature' does not support {body['temperature']} with this "
                "model. Only the default (1) value is supported.",
                "invalid_request_error",
                "unsupported_value",
                "temperature",
            )
        for name in GPT5_REJECTS:
            if name in body:
                return error(
                    400,
                    f"Unsupported parameter: '{name}' is not supported with this model.",
                    "invalid_request_error",
                    "unsupported_parameter",
                    name,
                )
    if model == "json" and not body.get("response_format"):
        return error(400, "fake: response_format missing", "invalid_request_error")
    return None


def _usage() -> dict[str, Any]:
    return {
        "prompt_tokens": 12,
        "completion_tokens": 7,
        "total_tokens": 19,
        "prompt_tokens_details": {"cached_tokens": 2, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 3, "audio_tokens": 0},
    }


def _answer_text(body: dict[str, Any]) -> str:
    if body.get("model") == "json":
        return '{"ok": true}'
    last = body["messages"][-1].get("content")
    return f"You said: {last}" if isinstance(last, str) else "Hello from the fake upstream."


def _tool(body: dict[str, Any], short: str) -> str:
    """The offered tool whose name ends with `short` (hub tools are prefixed with their server)."""
    for tool in body.get("tools") or []:
        name = tool.get("function", {}).get("name", "")
        if name == short or name.endswith("__" + short):
            return name
    raise LookupError(f"fake agent: no tool {short!r} offered in {body.get('tools')}")


def agent_turn(body: dict[str, Any]) -> str | list[tuple[str, str]]:
    """What the scripted agent does next: an answer, or tool calls (name, JSON arguments).

    agent           list_tables, then describe_table of the first table, then an answer quoting both results
    agent-parallel  describe_table of `users` and `orders` in one turn, then an answer
    agent-bad       describe_table of a table that does not exist, then an answer quoting the error
    agent-forever   list_tables in every turn
    agent-slow      the `slow` tool (which never ends), then an answer
    agent-mixed     list_tables and the client's `show_chart` in one turn
    agent-approve   describe_table of `users`, then an answer quoting the result
    """
    model = body["model"]
    results = [m for m in body["messages"] if m.get("role") == "tool"]
    if model == "agent-forever":
        return [(_tool(body, "list_tables"), "{}")]
    if results:
        if model == "agent" and len(results) == 1:
            first = json.loads(results[0]["content"])["tables"][0]["name"]
            return [(_tool(body, "describe_table"), json.dumps({"table": first}))]
        return "Answer: " + " | ".join(str(m["content"]) for m in results)
    match model:
        case "agent" | "agent-mixed":
            calls = [(_tool(body, "list_tables"), "{}")]
            return calls + [("show_chart", '{"kind": "bar"}')] if model == "agent-mixed" else calls
        case "agent-parallel":
            return [(_tool(body, "describe_table"), json.dumps({"table": t})) for t in ("users", "orders")]
        case "agent-bad":
            return [(_tool(body, "describe_table"), '{"table": "no_such_table"}')]
        case "agent-slow":
            return [(_tool(body, "slow"), "{}")]
        case _:
            return [(_tool(body, "describe_table"), '{"table": "users"}')]


def _completion(body: dict[str, Any]) -> dict[str, Any]:
    model = body["model"]
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
    finish = "stop"
    if model.startswith("agent"):
        turn = agent_turn(body)
        if isinstance(turn, str):
            message["content"] = turn
        else:
            message["tool_calls"] = [
                {"id": f"call_{len(body['messages'])}_{i}", "type": "function", "function": {"name": n, "arguments": a}}
                for i, (n, a) in enumerate(turn)
            ]
            finish = "tool_calls"
    elif model in ("tools", "noindex"):
        message["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": a}} for i, n, a in TOOL_CALLS
        ]
        finish = "tool_calls"
    elif model == "noargs":
        message["tool_calls"] = [{"id": "call_x", "type": "function", "function": {"name": "ping", "arguments": ""}}]
        finish = "tool_calls"
    else:
        message["content"] = _answer_text(body)
    return {
        "id": "chatcmpl-fake123",
        "object": "chat.completion",
        "created": 1727346178,
        "model": model,
        "system_fingerprint": "fp_fake",
        "service_tier": "default",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": _usage(),
    }


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    chunk = {
        "id": "chatcmpl-fake123",
        "object": "chat.completion.chunk",
        "created": 1727346178,
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        **extra,
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _deltas(body: dict[str, Any]) -> list[tuple[dict[str, Any], str | None]]:
    model: str = body["model"]
    out: list[tuple[dict[str, Any], str | None]] = [({"role": "assistant", "content": ""}, None)]
    turn = agent_turn(body) if model.startswith("agent") else None
    if isinstance(turn, list):
        calls = [(f"call_{len(body['messages'])}_{i}", n, a) for i, (n, a) in enumerate(turn)]
        out.append(({"content": "Let me look. "}, None))
    else:
        calls = TOOL_CALLS
    if model in ("tools", "noindex") or isinstance(turn, list):
        for index, (call_id, name, args) in enumerate(calls):
            first = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
            out.append(({"tool_calls": [first]}, None))
            for piece in (args[:5], args[5:]):
                out.append(({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}, None))
        if model == "noindex":
            for delta, _ in out:
                for call in delta.get("tool_calls", ()):
                    call.pop("index")
        out.append(({}, "tool_calls"))
        return out
    if model == "noargs":
        out.append(
            (
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_x",
                            "type": "function",
                            "function": {"name": "ping", "arguments": None},
                        }
                    ]
                },
                None,
            )
        )
        out.append(({}, "tool_calls"))
        return out
    text = turn if isinstance(turn, str) else _answer_text(body)
    pieces = int(model.split("-")[1]) if model.startswith("text-") else 5
    step = max(1, -(-len(text) // pieces))
    out += [({"content": text[i : i + step]}, None) for i in range(0, len(text), step)]
    while len(out) < pieces + 1:
        out.append(({"content": ""}, None))
    out.append(({}, "stop"))
    return out


class FakeOpenAI:
    """The fake server; `requests` holds every body received, `disconnects` counts streams the client abandoned."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.disconnects = 0
        self.stream_closed = threading.Event()
        self.last_stream_seconds = 0.0
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"]),
                                     Route("/v1/embeddings", self.embeddings, methods=["POST"])])  # fmt: skip

    async def embeddings(self, request: Request) -> Response:
        """Vector i is [len(input i), i, 0.5, ...] with `dimensions` entries (default 4); 2 tokens an input."""
        body = await request.json()
        self.requests.append(body)
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return error(401, ERRORS[401][2], "invalid_request_error", "invalid_api_key")
        if str(body.get("model", "")).startswith("error-"):
            status = int(body["model"].split("-")[1])
            return error(status, ERRORS[status][2], ERRORS[status][0], ERRORS[status][1])
        inputs, size = body.get("input") or [], int(body.get("dimensions") or 4)
        if body.get("encoding_format") not in (None, "float") or not inputs:
            return error(400, "fake: float encoding and a non-empty input only", "invalid_request_error")
        vectors = [[float(len(x)), float(i), *([0.5] * (size - 2))][:size] for i, x in enumerate(inputs)]
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        usage = {"prompt_tokens": 2 * len(inputs), "total_tokens": 2 * len(inputs)}
        return JSONResponse({"object": "list", "data": data, "model": body["model"], "usage": usage})

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if (refusal := _validate(body, request)) is not None:
            return refusal
        model: str = body["model"]
        if model.startswith("error-"):
            status = int(model.split("-")[1])
            type_, code, message = ERRORS[status]
            return error(status, message, type_, code)
        if model == "garbage":
            return Response(b"<html>bad gateway</html>", 200, media_type="text/html")
        if model.startswith("slow-") and not body.get("stream"):
            await anyio.sleep(float(model.split("-")[1]))
        if not body.get("stream"):
            return JSONResponse(_completion(body))
        return StreamingResponse(self._stream(body), media_type="text/event-stream")

    async def _stream(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        model: str = body["model"]
        delay = float(model.split("-")[1]) if model.startswith("slow-") else 0.0
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        extra = {"usage": None} if include_usage else {}
        started = time.monotonic()
        try:
            for n, (delta, finish) in enumerate(_deltas(body)):
                if model in ("midstream-error", "broken") and n == 2:
                    if model == "broken":
                        raise ConnectionAbortedError("fake upstream drops the connection")
                    error = {
                        "message": "The server had an error processing your request.",
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                    yield b"data: " + json.dumps({"error": error}).encode() + b"\n\n"
                    return
                if delay:
                    await anyio.sleep(delay)
                if model == "cumulative":
                    extra = {"usage": {**_usage(), "completion_tokens": n, "total_tokens": 12 + n}}
                yield _chunk(model, delta, finish, **extra)
            if include_usage:
                usage_chunk = {
                    "id": "chatcmpl-fake123",
                    "object": "chat.completion.chunk",
                    "created": 1727346178,
                    "model": model,
                    "system_fingerprint": "fp_fake",
                    "choices": [],
                    "usage": _usage(),
                }
                yield b"data: " + json.dumps(usage_chunk).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"
        except anyio.get_cancelled_exc_class():
            self.disconnects += 1
            raise
        finally:
            self.last_stream_seconds = time.monotonic() - started
            self.stream_closed.set()
