"""The cache key of a Chat Completions body: the model alias plus everything that changes the answer.

Left out: `stream`, `stream_options`, `user`, `metadata`, `cache` (the controls) and the router's own keys (taken out
before). Canonical: keys sorted, `None` values dropped at every depth, OpenAI's defaults dropped (so an explicit
`temperature: 1` and no temperature share an entry), and a message content that is one text part equals the plain
string. The key is `<namespace>:<sha256 hex>` (`toolhub:` without a namespace).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

NOT_IN_KEY = frozenset({"stream", "stream_options", "user", "metadata", "cache"})
DEFAULTS: dict[str, Any] = {
    "n": 1,
    "temperature": 1,
    "top_p": 1,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "logprobs": False,
    "parallel_tool_calls": True,
}


_SET_BELOW = NOT_IN_KEY | {"model", "messages"}
"""Body keys the comprehension skips: left out of the key, or written into it after (not cleaned twice)."""


def cache_key(alias: str, body: dict[str, Any], namespace: str | None = None) -> str:
    """`<namespace>:<hex>` for `body` sent to the model alias `alias`."""
    canonical = {k: _clean(v) for k, v in body.items() if k not in _SET_BELOW and not _is_default(k, v, body)}
    canonical["model"] = alias
    canonical["messages"] = [_message(m) for m in body.get("messages") or ()]
    digest = hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"{namespace or 'toolhub'}:{digest}"


def _is_default(name: str, value: Any, body: dict[str, Any]) -> bool:
    if value is None:
        return True
    if name == "tool_choice":
        return value == ("auto" if body.get("tools") else "none")
    return name in DEFAULTS and value == DEFAULTS[name]


def _message(message: Any) -> Any:
    message = _clean(message)
    if isinstance(message, dict):
        content = message.get("content")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if isinstance(content, list) and len(content) == 1 and _is_text(content[0]):  # pyright: ignore[reportUnknownArgumentType]
            message = {**message, "content": content[0]["text"]}  # pyright: ignore[reportUnknownVariableType]
    return message  # pyright: ignore[reportUnknownVariableType]


def _is_text(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") == "text" and set(part) == {"type", "text"}  # pyright: ignore[reportUnknownArgumentType, reportUnknownMemberType]


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, list):
        return [_clean(v) for v in value]  # pyright: ignore[reportUnknownVariableType]
    return value
