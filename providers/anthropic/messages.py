"""OpenAI `messages` -> Anthropic `system` + `messages` (pure functions).

Anthropic's rules, each applied here rather than left to a 400: system/developer text goes to the top-level `system`;
there is no tool role, so tool results become `tool_result` blocks of a user message, all results of one assistant turn
in ONE user message, before any text; roles strictly alternate (consecutive same-role messages are merged); the first
message is a user message; text blocks are never empty or whitespace; an assistant turn that only calls tools has only
`tool_use` blocks; the thinking blocks of an assistant turn with tool calls are restored first, in order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from providers import base
from providers.anthropic.names import ToolNames, wire_id
from providers.base import JSON, ProviderError

Restore = Callable[[Sequence[str]], "list[JSON] | None"]
"""Given the tool-call ids of an assistant turn, the thinking blocks the gateway kept for it, if any."""

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
THINKING_TYPES = frozenset({"thinking", "redacted_thinking"})
FIRST_USER_TEXT = "."
"""Anthropic wants a user message first; a history that starts with the assistant gets this minimal one."""
_DATA_URL = re.compile(r"^data:([^;,]*)((?:;[^;,]*)*),(.*)$", re.DOTALL)
_URL_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
"""A URL's scheme; base64 has no ':', so a file's data that matches is a URL, not inline bytes."""
IMAGE_URL = "expected an http(s) URL or a base64 data URL (data:<type>;base64,...)"
FILE_DATA = "expected the file inline, as a base64 data URL (data:application/pdf;base64,...)"
"""What an image's URL and a file's `file_data` must be, in the words the inbound APIs translate (hub/api)."""


def bad_request(message: str, param: str | None = None, code: str = "invalid_value") -> ProviderError:
    """A 400 in OpenAI's shape, raised before anything is sent upstream."""
    return base.bad_request("anthropic", message, param, code)


def convert_messages(messages: list[Any], names: ToolNames, restore: Restore) -> tuple[list[JSON], list[JSON]]:
    """(system blocks, Anthropic messages) for an OpenAI message list.

    Raises:
        ProviderError: a message Anthropic cannot express (400 naming the message).
    """
    system: list[JSON] = []
    turns: list[tuple[str, list[JSON]]] = []
    if not isinstance(messages, list):
        raise bad_request("'messages' must be an array of messages.", "messages")
    for i, message in enumerate(messages):
        where = f"messages.[{i}]"
        if not isinstance(message, dict):
            raise bad_request(f"{where} must be an object with a 'role'.", where)
        role = message.get("role")
        if role in ("system", "developer"):
            system += text_blocks(message.get("content"), where)
        elif role == "user":
            turns.append(("user", user_blocks(message.get("content"), where)))
        elif role == "assistant":
            turns.append(("assistant", assistant_blocks(message, where, names, restore)))
        elif role == "tool":
            turns.append(("user", [tool_result(message, where)]))
        else:
            raise bad_request(f"{where}: role {role!r} is not supported for Anthropic models; send tool results as "
                              "role 'tool' messages with a tool_call_id.", f"{where}.role")  # fmt: skip
    merged = merge_turns(turns)
    if not merged:
        raise bad_request("Anthropic models need at least one user or assistant message with content.", "messages")
    if merged[0]["role"] != "user":
        merged.insert(0, {"role": "user", "content": [{"type": "text", "text": FIRST_USER_TEXT}]})
    _strip_prefill(merged[-1])
    return system, merged


def _strip_prefill(last: JSON) -> None:
    """Anthropic refuses a final assistant message (a prefill) whose text ends in whitespace."""
    block = last["content"][-1]
    if last["role"] == "assistant" and block["type"] == "text":
        block["text"] = block["text"].rstrip()


def merge_turns(turns: list[tuple[str, list[JSON]]]) -> list[JSON]:
    """Drop empty turns, merge consecutive same-role turns; tool results lead user turns, thinking assistant turns."""
    merged: list[JSON] = []
    for role, blocks in turns:
        if not blocks:
            continue
        if merged and merged[-1]["role"] == role:
            merged[-1]["content"] += blocks
        else:
            merged.append({"role": role, "content": list(blocks)})
    for message in merged:
        leads = _leads_user if message["role"] == "user" else _leads_assistant
        content = message["content"]
        message["content"] = [b for b in content if leads(b)] + [b for b in content if not leads(b)]
    return merged


def _leads_user(block: JSON) -> bool:
    return block["type"] == "tool_result"


def _leads_assistant(block: JSON) -> bool:
    return block["type"] in THINKING_TYPES


def text_blocks(content: Any, where: str) -> list[JSON]:
    """Text parts (system, developer, tool or assistant content) as non-empty text blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return _text(content)
    if not isinstance(content, list):
        raise bad_request(f"{where}.content must be a string or an array of content parts.", f"{where}.content")
    blocks: list[JSON] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("text", "refusal"):
            blocks += _text(_part_text(part, kind, f"{where}.content.[{j}]"), part.get("cache_control"))
        else:
            raise bad_request(f"{where}.content[{j}]: only text parts are allowed here, got {kind!r}.",
                              f"{where}.content.[{j}].type")  # fmt: skip
    return blocks


def user_blocks(content: Any, where: str) -> list[JSON]:
    """User content: text, images and PDF files (data URLs -> base64 source, http(s) URLs -> url source)."""
    if content is None or isinstance(content, str):
        return text_blocks(content, where)
    if not isinstance(content, list):
        raise bad_request(f"{where}.content must be a string or an array of content parts.", f"{where}.content")
    blocks: list[JSON] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        at = f"{where}.content.[{j}]"
        if kind == "text":
            blocks += _text(_part_text(part, "text", at), part.get("cache_control"))
        elif kind == "image_url":
            blocks.append(image_block(part.get("image_url"), at))
        elif kind == "file":
            blocks.append(_file_block(part.get("file"), at))
        else:
            raise bad_request(f"{at}: content part type {kind!r} is not supported for Anthropic models.", f"{at}.type")
    return blocks


def image_block(image: Any, where: str) -> JSON:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise bad_request(f"{where}: the image's URL is missing; {IMAGE_URL}.", f"{where}.image_url.url")
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    media_type, data = _data_url(url, where, IMAGE_URL, f"{where}.image_url.url")
    media_type = "image/jpeg" if media_type == "image/jpg" else media_type
    if media_type not in IMAGE_TYPES:
        raise bad_request(f"{where}: image type {media_type!r} is not supported by Anthropic (use JPEG, PNG, GIF or "
                          "WebP).", f"{where}.image_url.url")  # fmt: skip
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _file_block(file: Any, where: str) -> JSON:
    """A PDF as a `document`: inline (base64 source) or by an http(s) URL, which Anthropic fetches (url source)."""
    data_url = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data_url, str):
        raise bad_request(f"{where}: only files sent as file_data (inline or by http(s) URL) are supported for "
                          "Anthropic models.", f"{where}.file")  # fmt: skip
    scheme = _URL_SCHEME.match(data_url)
    if scheme and scheme.group(1).lower() in ("http", "https"):
        return {"type": "document", "source": {"type": "url", "url": data_url}}
    if scheme and scheme.group(1).lower() != "data":
        raise bad_request(f"{where}: a file's URL must be http(s) for Anthropic models, got a {scheme.group(1)!r} "
                          "URL; or send the PDF inline, as a base64 data URL (data:application/pdf;base64,...).",
                          f"{where}.file.file_data")  # fmt: skip
    media_type, data = _data_url(data_url, where, FILE_DATA, f"{where}.file.file_data")
    if media_type != "application/pdf":
        raise bad_request(f"{where}: file type {media_type!r} is not supported (Anthropic takes PDF documents).",
                          f"{where}.file.file_data")  # fmt: skip
    return {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _data_url(url: str, where: str, expected: str, param: str) -> tuple[str, str]:
    """(media type, base64 data) of a base64 data URL; `expected` says what the field should have held."""
    match = _DATA_URL.match(url)
    if match is None or ";base64" not in match.group(2):
        raise bad_request(f"{where}: {expected}.", param)
    return match.group(1).lower(), match.group(3)


def assistant_blocks(message: JSON, where: str, names: ToolNames, restore: Restore) -> list[JSON]:
    """[thinking blocks] + [text, if any] + tool_use blocks."""
    if message.get("function_call"):
        raise bad_request(f"{where}: the legacy function_call is not supported for Anthropic models; use tool_calls.",
                          f"{where}.function_call")  # fmt: skip
    calls = message.get("tool_calls") or []
    uses = [tool_use(call, f"{where}.tool_calls.[{k}]", names) for k, call in enumerate(calls)]
    thinking: list[JSON] = []
    if uses:
        ids = [str(call.get("id")) for call in calls]
        thinking = restore(ids) or client_thinking(message.get("thinking_blocks"))
    return thinking + text_blocks(message.get("content"), where) + uses


def client_thinking(blocks: Any) -> list[JSON]:
    """Signed thinking blocks a client sent back (LiteLLM's `thinking_blocks`); unsigned ones cannot be replayed."""
    if not isinstance(blocks, list):
        return []
    kept: list[JSON] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "thinking" and isinstance(block.get("signature"), str) and block["signature"]:
            kept.append({"type": "thinking", "thinking": str(block.get("thinking") or ""),
                         "signature": block["signature"]})  # fmt: skip
        elif block.get("type") == "redacted_thinking" and isinstance(block.get("data"), str):
            kept.append({"type": "redacted_thinking", "data": block["data"]})
    return kept


def tool_use(call: Any, where: str, names: ToolNames) -> JSON:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise bad_request(f"{where}: a tool call needs function.name.", f"{where}.function")
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise bad_request(f"{where}: a tool call needs an id.", f"{where}.id", "missing_required_parameter")
    arguments = function.get("arguments")
    try:
        parsed = orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise bad_request(f"{where}: function.arguments must be a JSON object encoded as a string, got "
                          f"{str(arguments)[:100]!r}.", f"{where}.function.arguments")  # fmt: skip
    return {"type": "tool_use", "id": wire_id(call_id), "name": names.add(function["name"]), "input": parsed}


def tool_result(message: JSON, where: str) -> JSON:
    """A `role: tool` message as a `tool_result` block (empty content is left out, never sent as empty text)."""
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise bad_request(f"{where}: a tool message needs a tool_call_id.", f"{where}.tool_call_id",
                          "missing_required_parameter")  # fmt: skip
    result: JSON = {"type": "tool_result", "tool_use_id": wire_id(call_id)}
    content = message.get("content")
    if isinstance(content, list):
        blocks = [image_block(p.get("image_url"), f"{where}.content.[{j}]")
                  for j, p in enumerate(content) if isinstance(p, dict) and p.get("type") == "image_url"]  # fmt: skip
        blocks = text_blocks([p for p in content if not (isinstance(p, dict) and p.get("type") == "image_url")],
                             where) + blocks  # fmt: skip
    else:
        blocks = text_blocks(content, where)
    if blocks:
        result["content"] = blocks
    return result


def _part_text(part: JSON, key: str, where: str) -> str:
    """A text (or refusal) part's string: anything else is a 400 naming it, never dropped as an empty part."""
    text = part.get(key)
    if not isinstance(text, str):
        raise bad_request(f"{where}.{key} must be a string.", f"{where}.{key}", "invalid_type")
    return text


def _text(text: str, cache_control: Any = None) -> list[JSON]:
    if not text.strip():
        return []
    block: JSON = {"type": "text", "text": text}
    if isinstance(cache_control, dict):
        block["cache_control"] = cache_control
    return [block]


def open_tool_turn_unsigned(messages: list[JSON]) -> bool:
    """True when the conversation is inside a tool cycle whose assistant turn lacks its thinking blocks."""
    if len(messages) < 2 or messages[-1]["role"] != "user":
        return False
    if not any(b["type"] == "tool_result" for b in messages[-1]["content"]):
        return False
    assistant = messages[-2]["content"]
    return assistant[0]["type"] not in THINKING_TYPES
