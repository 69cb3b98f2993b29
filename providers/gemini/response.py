"""Gemini `GenerateContentResponse` -> OpenAI `chat.completion` and `chat.completion.chunk` dicts (pure)."""

from __future__ import annotations

import re
import secrets
import string
import time
from collections.abc import Callable
from typing import Any

import orjson

from providers._http import gateway_status
from providers.base import ProviderError, bad_response, read_usage
from providers.gemini.schema import ToolNames
from providers.gemini.signatures import Step

JSON = dict[str, Any]

FINISH_REASONS = {
    "STOP": "stop", "OTHER": "stop", "FINISH_REASON_UNSPECIFIED": "stop", "MAX_TOKENS": "length",
    "SAFETY": "content_filter", "RECITATION": "content_filter", "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter", "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter", "IMAGE_RECITATION": "content_filter",
}  # fmt: skip
FAILED_REASONS = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS", "LANGUAGE",
                            "NO_IMAGE", "IMAGE_OTHER"})  # fmt: skip
"""Finish reasons that mean the model produced no usable answer: an error, never an empty success."""

_OPENAI_ID = re.compile(r"^[a-zA-Z0-9_-]{1,40}$")
_ALPHABET = string.ascii_letters + string.digits
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "invalid_request_error", 429: "rate_limit_error"}  # fmt: skip


def new_call_id() -> str:
    return "call_" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def parse_error(body: bytes) -> tuple[str, str | None, str | None, str | None]:
    """(message, type, code, param) of Gemini's `{"error": {"code", "message", "status", "details"}}`."""
    data = orjson.loads(body)
    if isinstance(data, list) and data:  # errors may come wrapped in a one-element array
        data = data[0]
    if not isinstance(data, dict):  # error_from_response falls back to the raw body
        raise ValueError("not a Gemini error object")
    error = data["error"]
    status = error.get("status")
    param = None
    for detail in error.get("details") or ():
        for violation in detail.get("fieldViolations") or ():
            param = param or violation.get("field")
    code = int(error.get("code") or 0)
    return str(error["message"]), _ERROR_TYPES.get(code), status.lower() if status else None, param


def gemini_status(upstream_status: int) -> int:
    """The gateway's status for a Gemini error: an overloaded model (503 UNAVAILABLE) stays 503, like Anthropic's
    529, so that clients retry; otherwise the gateway policy (4xx passed through, 5xx -> 502)."""
    return 503 if upstream_status == 503 else gateway_status(upstream_status)


def overloaded(error: ProviderError) -> ProviderError:
    """`error` with the status `gemini_status` gives it."""
    if error.upstream_status is not None:
        error.status_code = gemini_status(error.upstream_status)
    return error


def stream_error(error: Any) -> ProviderError:
    """The ProviderError for an `{"error": ...}` object that arrived inside a stream."""
    error = error if isinstance(error, dict) else {"message": str(error)}
    status = int(error.get("code") or 500)
    message, type_, code, _ = parse_error(orjson.dumps({"error": {**error, "message": error.get("message") or ""}}))
    return ProviderError(
        f"gemini error during the stream ({status}): {message}", status_code=gemini_status(status),
        provider="gemini", type=type_ or "upstream_error", code=code, upstream_status=status, retryable=status >= 500,
    )  # fmt: skip


def usage(metadata: JSON) -> JSON:
    """OpenAI usage: prompt includes cached and tool-use prompt tokens, completion includes thoughts.

    Raises:
        ProviderError: 502 `upstream_bad_response`, counts that cannot be read (`read_usage`).
    """
    return read_usage("gemini", _usage, metadata)


def _usage(metadata: JSON) -> JSON:
    prompt = int(metadata.get("promptTokenCount") or 0) + int(metadata.get("toolUsePromptTokenCount") or 0)
    thoughts = int(metadata.get("thoughtsTokenCount") or 0)
    completion = int(metadata.get("candidatesTokenCount") or 0) + thoughts
    return {
        "prompt_tokens": prompt, "completion_tokens": completion,
        "total_tokens": int(metadata.get("totalTokenCount") or prompt + completion),
        "prompt_tokens_details": {"cached_tokens": int(metadata.get("cachedContentTokenCount") or 0)},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }  # fmt: skip


class ResponseReader:
    """Reads one Gemini response, or each chunk of a stream, into OpenAI deltas, and keeps what the step signed."""

    def __init__(self, model: str, names: ToolNames, new_id: Callable[[], str] = new_call_id) -> None:
        self.model = model
        self.names = names
        self.new_id = new_id
        self.call_ids: list[str] = []
        self.signatures: dict[str, str] = {}
        self.upstream_ids: dict[str, str] = {}
        self.text_signature: str | None = None
        self.finish: str | None = None
        self.finish_message = ""
        self.usage: JSON | None = None
        self.response_id: str | None = None

    def read(self, response: Any) -> list[JSON]:
        """The deltas in one response (`{"content"}`, `{"reasoning_content"}` or `{"tool_calls": [one]}`).

        Raises:
            ProviderError: an error object, a blocked prompt, or a finish reason that means failure.
        """
        if isinstance(response, list) and response:  # a stream error may come as `[{"error": ...}]`
            response = response[0]
        if not isinstance(response, dict):
            raise bad_response("gemini", f"gemini sent a response that is not an object: {str(response)[:200]}")
        if "error" in response:
            raise stream_error(response["error"])
        if response.get("usageMetadata"):
            self.usage = response["usageMetadata"]
        self.response_id = self.response_id or response.get("responseId")
        candidates = response.get("candidates") or ()
        if not candidates:
            block = (response.get("promptFeedback") or {}).get("blockReason")
            if block:
                raise _blocked(block, response["promptFeedback"])
            return []
        candidate = candidates[0]
        deltas = [d for part in (candidate.get("content") or {}).get("parts") or () if (d := self._part(part))]
        if candidate.get("finishReason"):
            self.finish = candidate["finishReason"]
            self.finish_message = candidate.get("finishMessage") or ""
            if self.finish in FAILED_REASONS:
                raise self.failure()
        return deltas

    def _part(self, part: JSON) -> JSON | None:
        signature = part.get("thoughtSignature")
        call = part.get("functionCall")
        if call is not None:
            return self._call(call, signature)
        if signature and not part.get("thought"):  # thought parts are not replayed, so neither is their signature
            self.text_signature = signature
        text = part.get("text")
        if not text:
            return None
        return {"reasoning_content": text} if part.get("thought") else {"content": text}

    def _call(self, call: JSON, signature: str | None) -> JSON:
        upstream_id = call.get("id")
        if isinstance(upstream_id, str) and _OPENAI_ID.match(upstream_id):
            call_id = upstream_id
        else:
            call_id = self.new_id()
            if upstream_id:
                self.upstream_ids[call_id] = str(upstream_id)
        if signature:
            self.signatures[call_id] = signature
        index = len(self.call_ids)
        self.call_ids.append(call_id)
        arguments = orjson.dumps(call.get("args") or {}).decode()
        name = self.names.original(str(call.get("name") or ""))
        return {"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                "function": {"name": name, "arguments": arguments}}]}  # fmt: skip

    def finish_reason(self) -> str:
        """The OpenAI finish_reason; `tool_calls` whenever a call was made, since Gemini says STOP then too."""
        reason = FINISH_REASONS.get(self.finish or "STOP", "stop")
        return "tool_calls" if self.call_ids and reason == "stop" else reason

    def failure(self) -> ProviderError:
        detail = f": {self.finish_message}" if self.finish_message else ""
        return ProviderError(
            f"gemini ended the answer with finishReason {self.finish}{detail}", status_code=502, provider="gemini",
            type="upstream_error", code=str(self.finish).lower(), retryable=True,
        )  # fmt: skip

    def step(self) -> Step:
        """What this answer signed, to be kept for the next turn."""
        return Step(self.model, dict(self.signatures), dict(self.upstream_ids), self.text_signature)

    def openai_usage(self) -> JSON | None:
        return usage(self.usage) if self.usage else None


def completion(data: Any, reader: ResponseReader, model: str) -> JSON:
    """The OpenAI `chat.completion` for a non-streamed Gemini response.

    Raises:
        ProviderError: see `ResponseReader.read`; also a response without candidates or finish reason.
    """
    deltas = reader.read(data)
    if reader.finish is None and not deltas:
        raise bad_response("gemini", f"gemini sent a response without candidates: {orjson.dumps(data)[:200].decode()}")
    text = "".join(d["content"] for d in deltas if "content" in d)
    reasoning = "".join(d["reasoning_content"] for d in deltas if "reasoning_content" in d)
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    message: JSON = {"role": "assistant", "content": text or (None if calls else ""), "refusal": None}
    if reasoning:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = [{k: v for k, v in c.items() if k != "index"} for c in calls]
    out: JSON = {
        "id": completion_id(reader.response_id), "object": "chat.completion", "created": int(time.time()),
        "model": model, "choices": [{"index": 0, "message": message, "logprobs": None,
                                     "finish_reason": reader.finish_reason()}],
    }  # fmt: skip
    if reader.usage:
        out["usage"] = usage(reader.usage)
    return out


def completion_id(response_id: str | None) -> str:
    return (
        f"chatcmpl-{response_id}"
        if response_id
        else "chatcmpl-" + "".join(secrets.choice(_ALPHABET) for _ in range(24))
    )


class StreamTranslator:
    """Turns each Gemini stream chunk into OpenAI chunks; `finish()` gives the closing chunks at the end."""

    def __init__(self, reader: ResponseReader, model: str, chunk_id: str | None = None) -> None:
        self.reader = reader
        self._base = {"id": chunk_id or completion_id(None), "object": "chat.completion.chunk",
                      "created": int(time.time()), "model": model}  # fmt: skip
        self._started = False

    def _chunk(self, delta: JSON, finish: str | None = None) -> JSON:
        return {**self._base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    def feed(self, data: bytes) -> list[JSON]:
        """OpenAI chunks for one SSE `data:` payload.

        Raises:
            ProviderError: the payload is not JSON, or see `ResponseReader.read`.
        """
        try:
            response = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise bad_response("gemini", f"gemini sent a stream event that is not JSON: {data[:200]!r}") from exc
        chunks = [self._chunk(delta) for delta in self.reader.read(response)]
        if not self._started:
            self._started = True
            chunks.insert(0, self._chunk({"role": "assistant", "content": ""}))
        return chunks

    def finish(self) -> list[JSON]:
        """The finishing chunk and the usage chunk, once the upstream stream has ended.

        Raises:
            ProviderError: the stream ended without a finish reason (it was cut short).
        """
        if self.reader.finish is None:
            raise ProviderError(
                "gemini's stream ended before the answer was finished (no finishReason)",
                status_code=502, provider="gemini", code="upstream_incomplete", retryable=True,
            )  # fmt: skip
        chunks = [] if self._started else [self._chunk({"role": "assistant", "content": ""})]
        chunks.append(self._chunk({}, self.reader.finish_reason()))
        if self.reader.usage:
            chunks.append({**self._base, "choices": [], "usage": usage(self.reader.usage)})
        return chunks


def _blocked(reason: str, feedback: JSON) -> ProviderError:
    message = feedback.get("blockReasonMessage") or ""
    return ProviderError(
        f"gemini blocked the prompt (blockReason {reason}){': ' + message if message else ''}", status_code=400,
        provider="gemini", type="invalid_request_error", code="content_policy_violation",
    )  # fmt: skip
