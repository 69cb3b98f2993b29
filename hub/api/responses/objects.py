"""The Responses API's response object and its output items, built from Chat Completions answers."""

from __future__ import annotations

import time
import uuid
from typing import Any

from hub.api.responses import include

JSON = dict[str, Any]
HEX = frozenset("0123456789abcdef")
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
"""Chat `finish_reason`s that leave a response `incomplete`, with the reason the Responses API names."""


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def item_id(response: JSON, prefix: str) -> str:
    """An output item's id: `<prefix>_<the response's 32 hex digits><8 of its own>`, so that an `item_reference`
    finds the stored response holding it (`response_of`)."""
    return f"{prefix}_{str(response['id']).removeprefix('resp_')}{uuid.uuid4().hex[:8]}"


def response_of(item: str) -> str | None:
    """The id of the response whose output holds the item `item` (made by `item_id`), else None."""
    _, _, digits = item.partition("_")
    return f"resp_{digits[:32]}" if len(digits) == 40 and HEX.issuperset(digits) else None


def shell(body: JSON) -> JSON:
    """The response object for `body` before any output: what `response.created` carries."""
    text = body.get("text") if isinstance(body.get("text"), dict) else None
    reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
    return {
        "id": new_id("resp"),
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "model": body["model"],
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},  # pyright: ignore[reportOptionalMemberAccess, reportUnknownMemberType]
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": text or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation") or "disabled",
        "usage": None,
        "user": body.get("user"),
    }


def usage(chat_usage: Any) -> JSON | None:
    """Responses usage from chat usage: input includes cached tokens, output includes reasoning tokens."""
    if not isinstance(chat_usage, dict):
        return None
    prompt, completion = int(chat_usage.get("prompt_tokens") or 0), int(chat_usage.get("completion_tokens") or 0)  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
    cached = (chat_usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    reasoning = (chat_usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": int(cached)},  # pyright: ignore[reportUnknownArgumentType]
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": int(reasoning)},  # pyright: ignore[reportUnknownArgumentType]
        "total_tokens": int(chat_usage.get("total_tokens") or prompt + completion),  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
    }


def message_item(item_id: str, text: str, status: str = "completed", logprobs: list[JSON] | None = None) -> JSON:
    content = [output_text(text, logprobs)] if status == "completed" else []
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": content}


def output_text(text: str, logprobs: list[JSON] | None = None) -> JSON:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs or []}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, status: str = "completed") -> JSON:
    return {"id": item_id, "type": "function_call", "call_id": call_id, "name": name, "arguments": arguments,
            "status": status}  # fmt: skip


def reasoning_item(item_id: str, text: str | None, encrypted: str | None | bool = False) -> JSON:
    """A reasoning item; `encrypted`: its `encrypted_content` when the request includes it (False: it does not)."""
    summary = [{"type": "summary_text", "text": text}] if text else []
    item: JSON = {"id": item_id, "type": "reasoning", "summary": summary}
    if encrypted is not False:
        item["encrypted_content"] = encrypted
    return item


def finish(response: JSON, finish_reason: Any, chat_usage: Any) -> JSON:
    """Set the final status, incomplete details and usage on `response`."""
    reason = INCOMPLETE.get(finish_reason)  # pyright: ignore[reportArgumentType]
    response["status"] = "incomplete" if reason else "completed"
    response["incomplete_details"] = {"reason": reason} if reason else None
    response["usage"] = usage(chat_usage)
    return response


def from_completion(
    response: JSON, completion: JSON, before: list[JSON] | None = None, included: frozenset[str] = frozenset()
) -> JSON:
    """Fill `response` (from `shell`) with the output of a non-streamed chat completion, after the items `before`
    (the hub's `mcp_list_tools` and `mcp_call` items); `included`: the request's `include` values."""
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    output: list[JSON] = response["output"]
    output += before or []
    signed = include.encrypted(message.get("thinking_blocks")) if include.ENCRYPTED in included else False
    if (reasoning := message.get("reasoning_content")) or signed:
        output.append(reasoning_item(item_id(response, "rs"), reasoning, signed))
    if isinstance(content := message.get("content"), str) and content:
        output.append(message_item(item_id(response, "msg"), content, logprobs=include.logprobs(choice)))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        call_id, name = call.get("id") or new_id("call"), function.get("name") or ""
        output.append(function_call_item(item_id(response, "fc"), call_id, name, function.get("arguments") or "{}"))
    return finish(response, choice.get("finish_reason"), completion.get("usage"))
