"""Limits on client JSON that every entry point shares (the /v1 body reader, MCP tool arguments).

orjson reads up to 1024 levels of nesting but writes at most 254, and the providers and the MCP SDK serialise what
the client sent (plus a few levels of their own): a body nested 254 deep parsed fine and then failed as a 500 when it
was forwarded. So the gateway refuses anything deeper than `MAX_JSON_DEPTH` on the way in.
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_JSON_DEPTH = 128
"""Deepest nesting of objects and arrays taken from a client (a top-level object is depth 1). Real tool schemas
nest a few dozen levels at most; the margin up to orjson's 254 leaves room for what providers wrap around them."""
_ORJSON_MAX_DEPTH = 254


class JsonTooComplex(Exception):
    """A client value nested too deep or too large to pass on; `message` says which, for the caller's error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check_json(value: Any, *, what: str, max_bytes: int | None = None, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse `value` (named `what` in the message, e.g. "The arguments of 'echo'") when it nests more than
    `max_depth` levels or encodes to more than `max_bytes` bytes.

    Raises:
        JsonTooComplex
    """
    if json_too_deep(value, max_depth):
        raise JsonTooComplex(f"{what} nest objects and arrays more than {max_depth} levels deep.")
    if max_bytes is not None and (size := len(orjson.dumps(value))) > max_bytes:
        raise JsonTooComplex(f"{what} take {size} bytes as JSON, over the limit of {max_bytes}.")


def json_too_deep(value: Any, limit: int = MAX_JSON_DEPTH, raw: bytes | None = None) -> bool:
    """Whether `value` nests objects and arrays more than `limit` levels deep (`limit` at most 254).

    Cheap on the hot path: when the encoded form `raw` holds no more than `limit` brackets, `value` cannot be that
    deep (counting bytes runs at memory speed). Otherwise orjson measures it in C: wrapped in `254 - limit` arrays,
    `value` passes orjson's own depth limit exactly when it is at most `limit` deep.
    """
    if not isinstance(value, dict | list):
        return False
    if raw is not None and raw.count(b"{") + raw.count(b"[") <= limit:
        return False
    wrapped: Any = value
    for _ in range(_ORJSON_MAX_DEPTH - limit):
        wrapped = [wrapped]
    try:
        orjson.dumps(wrapped)
    except orjson.JSONEncodeError as exc:
        if not str(exc).startswith("Recursion limit"):  # a value orjson cannot write (an integer over 64 bits)
            return json_depth(value) > limit
        return True
    return False


def json_depth(value: Any) -> int:
    """How deep `value` nests objects and arrays (a scalar is 0, `{}` and `[]` are 1); walks the whole value, so
    prefer `json_too_deep` on a hot path."""
    depth = 0
    level: list[Any] = [value]
    while level := [v for v in level if isinstance(v, dict | list)]:
        depth += 1
        level = [c for v in level for c in (v.values() if isinstance(v, dict) else v)]  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return depth


def too_deep_path(value: Any, limit: int = MAX_JSON_DEPTH, segments: int = 4) -> str | None:
    """The path (OpenAI `param` style, `tools.[0].function.parameters`) to the part of `value` that is nested too
    deep, at most `segments` steps long; None when `value` is within `limit`. For error messages, not the hot path."""
    if not json_too_deep(value, limit):
        return None
    path: list[str] = []
    while len(path) < segments and isinstance(value, dict | list):
        limit -= 1
        items = value.items() if isinstance(value, dict) else enumerate(value)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType, reportUnknownArgumentType]
        key, value = next((k, v) for k, v in items if json_too_deep(v, limit))  # pyright: ignore[reportUnknownVariableType]
        path.append(f"[{key}]" if isinstance(key, int) else str(key))  # pyright: ignore[reportUnknownArgumentType]
    return ".".join(path)
