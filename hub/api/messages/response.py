"""A `chat.completion` as an Anthropic `message`, and gateway errors in Anthropic's shape (pure functions)."""

from __future__ import annotations

import re
from typing import Any

import orjson

JSON = dict[str, Any]
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}  # fmt: skip
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
               529: "overloaded_error"}  # fmt: skip
OVERLOADED = frozenset({"overloaded_error", "unavailable"})
"""Error types or codes of an overloaded or unavailable upstream (Anthropic's `overloaded_error`, Gemini's
`UNAVAILABLE`), which Anthropic's clients get as a 529 `overloaded_error`, as `error_status` gives a raised one: a
stream's final error event carries no status, only these."""
STREAM_STATUSES = {**{kind: status for status, kind in ERROR_TYPES.items()}, "service_unavailable": 529}
"""An error type (or an Anthropic upstream's own, kept as the error's `code`) -> the status Anthropic's clients get
for it when it is raised before the answer starts (`error_status` makes the gateway's 503 a 529): a stream's final
error event carries no status (`stream_error_status`)."""
_BAD_ID = re.compile(r"[^a-zA-Z0-9_-]")


def stop_reason(finish: Any, matched: Any = None) -> str:
    """Anthropic's stop reason for a chat `finish_reason`; `matched` is the choice's `stop_reason` (the stop sequence
    that ended the answer, as vLLM and the Anthropic provider give it)."""
    if stop_sequence(finish, matched) is not None:
        return "stop_sequence"
    return STOP_REASONS.get(str(finish), "end_turn")


def stop_sequence(finish: Any, matched: Any) -> str | None:
    """The matched stop sequence of a `finish_reason: "stop"` choice, else None."""
    return matched if finish == "stop" and isinstance(matched, str) else None


def tool_use_id(call_id: Any) -> str:
    """Anthropic ids match `^[a-zA-Z0-9_-]+$`: other characters become `_` (the same id every time)."""
    text = str(call_id or "")
    return _BAD_ID.sub("_", text) if text else "toolu_gateway"


def usage(raw: Any) -> JSON:
    """Anthropic usage: `input_tokens` excludes cache reads and writes, which OpenAI's `prompt_tokens` include."""
    raw = raw if isinstance(raw, dict) else {}
    details = raw.get("prompt_tokens_details") or {}  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    cache_read = int(details.get("cached_tokens") or 0)  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
    cache_write = int(details.get("cache_write_tokens") or 0)  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
    prompt = int(raw.get("prompt_tokens") or 0)  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
    return {
        "input_tokens": max(prompt - cache_read - cache_write, 0),
        "output_tokens": int(raw.get("completion_tokens") or 0),  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": cache_write,
    }


def to_message(completion: JSON, model: str) -> JSON:
    """The Anthropic `message` for a `chat.completion`; `model` is the alias the client asked for."""
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content = thinking(message) + hub_tool_blocks(completion.get("toolhub"))
    if text := message.get("content"):
        content.append({"type": "text", "text": text if isinstance(text, str) else _joined(text)})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": tool_use_id(call.get("id")), "name": function.get("name") or "",
                        "input": _arguments(function.get("arguments"))})  # fmt: skip
    return {
        "id": message_id(completion.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason"), choice.get("stop_reason")),
        "stop_sequence": stop_sequence(choice.get("finish_reason"), choice.get("stop_reason")),
        "usage": usage(completion.get("usage")),
    }


def hub_tool_blocks(record: Any) -> list[JSON]:
    """The hub tools the gateway ran (the tool loop's `toolhub` record) as MCP connector blocks: `mcp_tool_use`, then
    its `mcp_tool_result` with the output as the model got it (the record carries it while `REPORT_OUTPUT` is set)."""
    calls: Any = record.get("tool_calls") if isinstance(record, dict) else None  # pyright: ignore[reportUnknownMemberType]
    blocks: list[JSON] = []
    for call in calls if isinstance(calls, list) else ():  # pyright: ignore[reportUnknownVariableType]
        if isinstance(call, dict):
            blocks += _mcp_blocks(call)  # pyright: ignore[reportUnknownArgumentType]
    return blocks


def _mcp_blocks(call: JSON) -> list[JSON]:
    block_id = tool_use_id(call.get("id"))
    use = {"type": "mcp_tool_use", "id": block_id, "name": call.get("name") or "",
           "server_name": call.get("server") or "", "input": _arguments(call.get("arguments"))}  # fmt: skip
    output = call.get("output")
    content = [{"type": "text", "text": output}] if isinstance(output, str) and output else []
    result = {"type": "mcp_tool_result", "tool_use_id": block_id, "is_error": bool(call.get("is_error")),
              "content": content}  # fmt: skip
    return [use, result]


def message_id(chat_id: Any) -> str:
    text = str(chat_id or "")
    return "msg_" + tool_use_id(text.removeprefix("chatcmpl-").removeprefix("msg_"))


def thinking(message: JSON) -> list[JSON]:
    """The signed blocks an Anthropic upstream gave, else the reasoning text as one (unsigned) thinking block."""
    blocks = message.get("thinking_blocks")
    if isinstance(blocks, list) and blocks:
        return [dict(b) for b in blocks if isinstance(b, dict)]  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
    if reasoning := message.get("reasoning_content"):
        return [{"type": "thinking", "thinking": str(reasoning), "signature": ""}]
    return []


def _joined(parts: Any) -> str:
    if not isinstance(parts, list):
        return str(parts)
    return "".join(str(p.get("text") or "") for p in parts if isinstance(p, dict))  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType, reportUnknownArgumentType]


def _arguments(arguments: Any) -> Any:
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_raw_arguments": arguments}  # a model's broken JSON, kept rather than lost
    return value if isinstance(value, dict) else {"value": value}


def error_status(status: int, upstream_status: int | None = None) -> int:
    """Anthropic's status for a gateway status: an overloaded or unavailable upstream is Anthropic's 529."""
    return 529 if upstream_status == 529 or status == 503 else status


def error_body(status: int, message: str) -> JSON:
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def stream_error_status(body: Any) -> int:
    """The status of a chat stream's final error event, from its `code` or `type`, so that it gets the Anthropic
    type a refusal answered before the stream started gets (a later tool-loop round's 400 is an
    `invalid_request_error`); 500 (`api_error`) for any other."""
    error: Any = body.get("error") if isinstance(body, dict) else None  # pyright: ignore[reportUnknownMemberType]
    kinds: list[Any] = [error.get("code"), error.get("type")] if isinstance(error, dict) else []  # pyright: ignore[reportUnknownMemberType]
    return next((STREAM_STATUSES[k] for k in kinds if isinstance(k, str) and k in STREAM_STATUSES), 500)


def from_openai_error(status: int, body: Any) -> tuple[int, JSON]:
    """An OpenAI `{"error": {...}}` answer (status, body), or a chat stream's error event, in Anthropic's shape."""
    error = body.get("error") if isinstance(body, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if not isinstance(error, dict):
        error = {"message": str(body)}
    message = str(error.get("message") or "error")  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
    if any(isinstance(v, str) and v in OVERLOADED for v in (error.get("type"), error.get("code"))):  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        status = 529
    elif error.get("type") == "rate_limit_error":  # pyright: ignore[reportUnknownMemberType]
        status = 429
    return status, error_body(status, message)
