"""OpenAI Chat Completions upstreams: OpenAI itself and any OpenAI-compatible server (vLLM, Ollama, ...).

The request passes through nearly unchanged: the model name is rewritten, the per-model parameter policy is applied
(the gpt-5 and o-series reasoning models reject several sampling parameters). Unknown top-level fields, which chat
apps send freely (`num_ctx`, `top_k`), are dropped for `openai/` models, since OpenAI refuses them, and forwarded for
`hosted_vllm/`, `ollama/` and `openai_compatible/` models, whose servers often understand them.
Responses are normalised only where real upstreams break clients: tool-call deltas without `index` and tool calls
without arguments.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import orjson

from providers import _http
from providers._wire import Response
from providers.base import (
    JSON,
    OPENAI_PARAMS,
    ChatRequest,
    Deployment,
    ProviderError,
    bad_response,
    drop_param,
    upstream_url,
)

DEFAULT_API_BASE = "https://api.openai.com/v1"
OLLAMA_API_BASE = "http://localhost:11434/v1"

KNOWN_PARAMS = OPENAI_PARAMS
"""Top-level fields api.openai.com accepts; anything else is dropped before a request goes there."""

REASONING_REJECTED = (
    "temperature",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "stop",
)
_REASONING_MODEL = re.compile(r"^(o\d|gpt-5)(?!.*-chat)")


def is_reasoning_model(model: str) -> bool:
    """gpt-5 family and o-series models, which take `max_completion_tokens` and reject sampling parameters."""
    return _REASONING_MODEL.match(model.rsplit("/", 1)[-1]) is not None


def build_body(body: JSON, deployment: Deployment, dropped: list[str] | None = None) -> JSON:
    """The upstream request body: config defaults under the client's fields, then the model's parameter policy;
    parameters left out are noted in `dropped` (`drop_param`).

    Raises:
        ProviderError: a parameter the model rejects while `drop_params` is off.
    """
    dropped = [] if dropped is None else dropped
    out: JSON = {**deployment.params, **body, "model": deployment.model}
    if deployment.provider == "openai":
        for key in [k for k in out if k not in KNOWN_PARAMS]:
            drop_param(deployment, key, "api.openai.com does not take it", dropped)
            del out[key]
        if "parallel_tool_calls" in out and not out.get("tools"):
            drop_param(deployment, "parallel_tool_calls", "OpenAI takes it only together with tools", dropped)
            del out["parallel_tool_calls"]
    if is_reasoning_model(deployment.model):
        _apply_reasoning_policy(out, deployment, dropped)
    if out.get("stream"):
        # Always ask for usage so the gateway can account for it; the hub hides it from clients that did not ask.
        out["stream_options"] = {**(out.get("stream_options") or {}), "include_usage": True}
    return out


def _apply_reasoning_policy(out: JSON, deployment: Deployment, dropped: list[str]) -> None:
    if "max_tokens" in out:
        max_tokens = out.pop("max_tokens")
        out.setdefault("max_completion_tokens", max_tokens)
    for name in REASONING_REJECTED:
        if name not in out:
            continue
        if name == "temperature" and out[name] in (1, 1.0, None):
            continue
        if out[name] is not None:  # an explicit null asks for nothing: left out without a word
            drop_param(deployment, name, "reasoning models reject it", dropped)
        del out[name]


def parse_error(body: bytes) -> tuple[str, str | None, str | None, str | None]:
    data = orjson.loads(body)
    error = data["error"]
    if isinstance(error, str):  # some compatible servers answer {"error": "..."}
        return error, None, None, None
    return str(error["message"]), error.get("type"), _str_or_none(error.get("code")), error.get("param")


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _checked(choice: Any, part: str) -> JSON:
    """A choice's `message` or `delta` ({} when null), after checking the shapes the gateway reads: the choice, the
    part and its tool calls are objects, a delta's text a string.

    Raises:
        ProviderError: 502 `upstream_bad_response` naming what was wrong.
    """
    if not isinstance(choice, dict):
        raise _bad_response("a choice that is not an object", choice)
    body = choice.get(part) or {}  # pyright: ignore[reportUnknownVariableType]
    if not isinstance(body, dict):
        raise _bad_response(f"a '{part}' that is not an object", body)
    content: Any = body.get("content")  # pyright: ignore[reportUnknownMemberType]
    if content is not None and part == "delta" and not isinstance(content, str | list):  # a list: Mistral's parts
        raise _bad_response("a 'delta.content' that is neither a string nor a list of parts", content)
    calls: Any = body.get("tool_calls")  # pyright: ignore[reportUnknownMemberType]
    if calls and (not isinstance(calls, list) or not all(_is_call(call) for call in calls)):  # pyright: ignore[reportUnknownVariableType]
        raise _bad_response("'tool_calls' that are not objects with a 'function' object", calls)
    return body  # pyright: ignore[reportUnknownVariableType]


def _is_call(call: Any) -> bool:
    return isinstance(call, dict) and isinstance(call.get("function") or {}, dict)  # pyright: ignore[reportUnknownMemberType]


def _bad_response(what: str, value: Any) -> ProviderError:
    return bad_response("openai", f"openai-compatible upstream sent {what}: {repr(value)[:100]}")


def fix_message(message: JSON) -> None:
    """Give argument-less tool calls `"{}"` so clients can parse them."""
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        if not function.get("arguments"):
            function["arguments"] = "{}"


class ToolCallDeltaFixer:
    """Repairs streamed tool-call deltas: adds missing `index`, and `"{}"` arguments to calls that sent none."""

    def __init__(self) -> None:
        self._index_by_id: dict[str, int] = {}
        self._has_args: dict[int, bool] = {}
        self._last_index = -1

    def fix(self, deltas: list[JSON]) -> None:
        for delta in deltas:
            if "index" not in delta:
                call_id = delta.get("id")
                if call_id is not None and call_id not in self._index_by_id:
                    self._index_by_id[call_id] = len(self._index_by_id)
                delta["index"] = self._index_by_id[call_id] if call_id is not None else max(self._last_index, 0)
            index = delta["index"]
            self._last_index = index
            function = delta.get("function")
            if function is not None:
                if function.get("arguments") is None:
                    function["arguments"] = ""
                if function["arguments"]:
                    self._has_args[index] = True
                else:
                    self._has_args.setdefault(index, False)

    def missing_args(self) -> list[JSON]:
        """Deltas that close argument-less calls with `"{}"`; emit them before the finishing chunk."""
        missing = [i for i, seen in self._has_args.items() if not seen]
        for i in missing:
            self._has_args[i] = True
        return [{"index": i, "function": {"arguments": "{}"}} for i in missing]


class OpenAIProvider:
    """OpenAI and OpenAI-compatible chat-completions servers."""

    name = "openai"

    def __init__(self, pool: _http.HttpPool) -> None:
        self._pool = pool

    def _post(
        self, deployment: Deployment, body: JSON, *, stream: bool, path: str = "/chat/completions"
    ) -> contextlib.AbstractAsyncContextManager[Response]:
        url = upstream_url(deployment.api_base, path)
        headers = {"Content-Type": "application/json", **deployment.headers}
        if deployment.api_key:
            headers["Authorization"] = f"Bearer {deployment.api_key}"
        payload = orjson.dumps(body)
        return _http.post(self._pool, deployment, url, payload, headers, stream=stream, parse_error=parse_error)

    async def complete(self, request: ChatRequest) -> JSON:
        deployment = request.deployment
        body = build_body(request.body, deployment, request.dropped)
        body.pop("stream", None)
        body.pop("stream_options", None)
        async with self._post(deployment, body, stream=False) as response:
            data = await _http.read_json(self.name, response, deployment.timeout)
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise bad_response(self.name, f"openai-compatible upstream sent an unexpected body: {str(data)[:200]}")
        for choice in data["choices"]:
            fix_message(_checked(choice, "message"))
        return data

    async def embed(self, deployment: Deployment, body: JSON) -> JSON:
        """`POST /embeddings` (see `providers.base.Embedder`); vectors are asked for as floats."""
        payload = {**body, "model": deployment.model, "encoding_format": "float"}
        async with self._post(deployment, payload, stream=False, path="/embeddings") as response:
            data = await _http.read_json(self.name, response, deployment.timeout)
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise bad_response(self.name, f"openai-compatible upstream sent an unexpected embeddings body: "
                                          f"{str(data)[:200]}")  # fmt: skip
        return data  # pyright: ignore[reportUnknownVariableType]

    async def stream(self, request: ChatRequest) -> AsyncIterator[JSON]:
        deployment = request.deployment
        body = build_body({**request.body, "stream": True}, deployment, request.dropped)
        fixer = ToolCallDeltaFixer()
        async with self._post(deployment, body, stream=True) as response:
            async for _event, data in _http.iter_sse(self.name, response, deployment.read_timeout(True)):
                if data == b"[DONE]":
                    return
                chunk = self._parse_chunk(data)
                choices = chunk.get("choices") or []
                if not isinstance(choices, list):
                    raise _bad_response("'choices' that is not an array", choices)
                for choice in choices:
                    delta = _checked(choice, "delta")
                    if delta.get("tool_calls"):
                        fixer.fix(delta["tool_calls"])
                    if choice.get("finish_reason") and (missing := fixer.missing_args()):
                        yield {
                            **chunk,
                            "choices": [
                                {
                                    "index": choice.get("index", 0),
                                    "delta": {"tool_calls": missing},
                                    "finish_reason": None,
                                }
                            ],
                        }
                yield chunk

    def _parse_chunk(self, data: bytes) -> JSON:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise bad_response(self.name, f"openai-compatible upstream sent a stream event that is not JSON: "
                                          f"{data[:200]!r}") from exc  # fmt: skip
        if not isinstance(chunk, dict):
            raise bad_response(self.name, "openai-compatible upstream sent a stream event that is not an object")
        if "error" in chunk:
            error = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
            raise ProviderError(
                f"openai error during the stream: {error.get('message')}",
                status_code=502,
                provider=self.name,
                type=error.get("type") or "upstream_error",
                code=_str_or_none(error.get("code")),
            )
        return chunk
