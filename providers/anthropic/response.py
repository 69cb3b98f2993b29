"""Anthropic answers -> OpenAI shapes (pure): messages, finish reasons, usage and errors."""

from __future__ import annotations

import re
from typing import Any

import orjson

from providers.anthropic.names import ToolNames
from providers.base import JSON, ProviderError, read_usage

PROVIDER = "anthropic"
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
ERROR_TYPES = {
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "billing_error": "insufficient_quota",
    "permission_error": "permission_error",
    "not_found_error": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "rate_limit_error": "rate_limit_error",
    "api_error": "server_error",
    "timeout_error": "server_error",
    "overloaded_error": "server_error",
}
"""Anthropic error type -> OpenAI error type; the Anthropic type is kept as the error `code`."""
STREAM_ERROR_STATUS = {"overloaded_error": 503, "rate_limit_error": 429, "timeout_error": 504,
                       "request_too_large": 413, "invalid_request_error": 400}  # fmt: skip
_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


def parse_error(body: bytes) -> tuple[str, str | None, str | None, str | None]:
    """(message, OpenAI type, code, param) from `{"type": "error", "error": {"type": ..., "message": ...}}`."""
    error = orjson.loads(body)["error"]
    kind = str(error.get("type") or "")
    return str(error["message"]), ERROR_TYPES.get(kind), kind or None, None


def stream_error(data: JSON) -> ProviderError:
    """The `ProviderError` for an `event: error` that arrives after the stream started."""
    error = data.get("error")
    if not isinstance(error, dict):
        error = {}
    kind = str(error.get("type") or "api_error")
    return ProviderError(
        f"{PROVIDER} error during the stream ({kind}): {error.get('message') or 'no message'}",
        status_code=STREAM_ERROR_STATUS.get(kind, 502),
        provider=PROVIDER,
        type=ERROR_TYPES.get(kind, "server_error"),
        code=kind,
        retryable=kind in ("overloaded_error", "api_error", "rate_limit_error"),
    )


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(str(stop_reason), "stop")


def matched_stop(stop_reason: Any, stop_sequence: Any) -> JSON:
    """The choice's `stop_reason`: the stop sequence that ended the answer, as vLLM's chat completions name it (a
    string, beside `finish_reason: "stop"`). The chat shape has no other place for it, and /v1/messages needs it to
    answer Anthropic's own `stop_reason: "stop_sequence"` with its `stop_sequence` rather than `end_turn`."""
    if stop_reason == "stop_sequence" and isinstance(stop_sequence, str):
        return {"stop_reason": stop_sequence}
    return {}


def usage(raw: JSON) -> JSON:
    """OpenAI usage: prompt tokens include cache reads and writes (Anthropic's `input_tokens` excludes both).

    Raises:
        ProviderError: 502 `upstream_bad_response`, counts that cannot be read (`read_usage`).
    """
    return read_usage("anthropic", _usage, raw)


def _usage(raw: JSON) -> JSON:
    cache_read = int(raw.get("cache_read_input_tokens") or 0)
    cache_write = int(raw.get("cache_creation_input_tokens") or 0)
    prompt = int(raw.get("input_tokens") or 0) + cache_read + cache_write
    completion = int(raw.get("output_tokens") or 0)
    out: JSON = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                 "prompt_tokens_details": {"cached_tokens": cache_read, "cache_write_tokens": cache_write}}  # fmt: skip
    thinking = (raw.get("output_tokens_details") or {}).get("thinking_tokens")
    if thinking is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": int(thinking)}
    return out


def thinking_blocks(content: list[JSON]) -> list[JSON]:
    """The thinking and redacted-thinking blocks of an answer, verbatim and in order (to replay them later)."""
    return [b for b in content if b.get("type") in ("thinking", "redacted_thinking")]


def strip_fences(text: str) -> str:
    """`json_object` answers wrapped in a Markdown code fence, unwrapped."""
    match = _FENCE.match(text)
    return match.group(1) if match else text


def to_completion(message: JSON, names: ToolNames, *, created: int, json_object: bool = False) -> JSON:
    """An Anthropic `message` as an OpenAI `chat.completion`."""
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[JSON] = []
    content: list[JSON] = message.get("content") or []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "thinking":
            reasoning.append(block.get("thinking") or "")
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append({"id": block["id"], "type": "function",
                          "function": {"name": names.original(block["name"]), "arguments": arguments}})  # fmt: skip
    text = "".join(texts)
    if json_object:
        text = strip_fences(text)
    out: JSON = {"role": "assistant", "content": text if text or not calls else None, "refusal": None,
                 "annotations": []}  # fmt: skip
    if calls:
        out["tool_calls"] = calls
    if reasoning:
        out["reasoning_content"] = "".join(reasoning)
    if blocks := thinking_blocks(content):
        out["thinking_blocks"] = blocks
    stop = message.get("stop_reason")
    choice = {"index": 0, "message": out, "logprobs": None, "finish_reason": finish_reason(stop),
              **matched_stop(stop, message.get("stop_sequence"))}  # fmt: skip
    return {
        "id": f"chatcmpl-{message.get('id') or 'anthropic'}",
        "object": "chat.completion",
        "created": created,
        "model": message.get("model") or "",
        "choices": [choice],
        "usage": usage(message.get("usage") or {}),
    }
