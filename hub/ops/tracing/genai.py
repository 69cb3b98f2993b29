"""GenAI semantic-convention attributes (opentelemetry.io/docs/specs/semconv/gen-ai/) from the gateway's OpenAI
shapes: a request body and deployment, a completion, a stream's chunks, a usage record. Prompt and completion text
only with `capture_content`."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlsplit

import orjson

from providers.base import JSON, Deployment

Attributes = dict[str, Any]

PROVIDER_NAMES = {"openai": "openai", "anthropic": "anthropic", "gemini": "gcp.gemini"}
"""`gen_ai.provider.name` for the providers the conventions name; others keep Toolhub's provider key (`vllm`...)."""
_REQUEST_PARAMS = {
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
    "n": "gen_ai.request.choice.count",
}


def provider_name(provider: str) -> str:
    return PROVIDER_NAMES.get(provider, provider)


def request_attributes(deployment: Deployment, body: JSON, capture: bool) -> Attributes:
    """An upstream attempt's attributes before it is sent."""
    attrs: Attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider_name(deployment.provider),
        "gen_ai.request.model": deployment.model,
    }
    for key, name in _REQUEST_PARAMS.items():
        value = body.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attrs[name] = value
    if deployment.api_base:
        attrs.update(_server(deployment.api_base))
    if capture:
        attrs["gen_ai.input.messages"] = _json(body.get("messages"))
        if body.get("tools"):
            attrs["gen_ai.tool.definitions"] = _json(body["tools"])
    return attrs


def completion_attributes(completion: JSON, capture: bool) -> Attributes:
    """A `chat.completion`'s id, model, usage and finish reasons (and its messages with `capture`)."""
    choices = completion.get("choices") or []
    attrs = _response(completion, completion.get("usage"))
    reasons = [c.get("finish_reason") for c in choices if isinstance(c, dict) and c.get("finish_reason")]  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if reasons:
        attrs["gen_ai.response.finish_reasons"] = [str(r) for r in reasons]  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
    if capture:
        attrs["gen_ai.output.messages"] = _json([c.get("message") for c in choices if isinstance(c, dict)])  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return attrs


class StreamWatch:
    """What a stream's chunks say about the answer, gathered as they pass (id, model, usage, finish reasons, text)."""

    __slots__ = ("first", "usage", "reasons", "texts", "capture")

    def __init__(self, capture: bool) -> None:
        self.first: JSON | None = None
        self.usage: JSON | None = None
        self.reasons: list[str] = []
        self.texts: list[str] = []
        self.capture = capture

    def see(self, chunk: JSON) -> None:
        if self.first is None:
            self.first = chunk
        if usage := chunk.get("usage"):
            self.usage = usage
        for choice in chunk.get("choices") or ():
            if reason := choice.get("finish_reason"):
                self.reasons.append(str(reason))
            if self.capture and (text := (choice.get("delta") or {}).get("content")):
                self.texts.append(text)

    def attributes(self) -> Attributes:
        attrs = _response(self.first or {}, self.usage)
        if self.reasons:
            attrs["gen_ai.response.finish_reasons"] = self.reasons
        if self.capture:
            attrs["gen_ai.output.messages"] = _json([{"role": "assistant", "content": "".join(self.texts)}])
        return attrs


def record_attributes(record: Any) -> Attributes:
    """A request's totals from its `UsageRecord` (hub/accounts/usage.py), for the request's server span; counts that
    are zero and flags that are off are left out (every attribute costs at export)."""
    attrs: Attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": record.model_alias,
        "gen_ai.response.model": record.upstream_model,
        "gen_ai.provider.name": provider_name(record.provider),
        "gen_ai.usage.input_tokens": record.prompt_tokens,
        "gen_ai.usage.output_tokens": record.completion_tokens,
        "toolhub.cost_usd": record.cost,
        "toolhub.upstream_ms": record.upstream_ms,
    }
    sparse = (
        ("toolhub.stream", record.stream),
        ("toolhub.retries", record.retries),
        ("toolhub.fallbacks", record.fallbacks),
        ("toolhub.tool_calls", len(record.tool_calls)),
        ("toolhub.cache_hit", record.cache_hit),
        ("toolhub.answered_group", record.answered_group),
    )
    for name, value in sparse:
        if value:
            attrs[name] = value
    return attrs


def _response(head: JSON, usage: JSON | None) -> Attributes:
    attrs: Attributes = {}
    if isinstance(head.get("id"), str):
        attrs["gen_ai.response.id"] = head["id"]
    if isinstance(head.get("model"), str):
        attrs["gen_ai.response.model"] = head["model"]
    if usage:
        attrs["gen_ai.usage.input_tokens"] = int(usage.get("prompt_tokens") or 0)
        attrs["gen_ai.usage.output_tokens"] = int(usage.get("completion_tokens") or 0)
    return attrs


@functools.lru_cache(maxsize=256)
def _server(api_base: str) -> dict[str, Any]:
    parts = urlsplit(api_base)
    if not parts.hostname:
        return {}
    return {"server.address": parts.hostname, "server.port": parts.port or (443 if parts.scheme == "https" else 80)}


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()
