"""LiteLLM's `cache_control_injection_points`: prompt-cache breakpoints the gateway adds for a deployment.

`[{location: message, role: system}]` marks every system message, `[{location: message, index: -1}]` the message at
that index (negative from the end). The mark (`cache_control`, `{"type": "ephemeral"}` unless the point names one)
goes on the message's last text part, as a client would put it; the message translation carries it to Anthropic.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]
EPHEMERAL = {"type": "ephemeral"}


def inject_cache_points(messages: list[Any], points: Any) -> list[Any]:
    """`messages` with the breakpoints of `points` added (a new list; the client's messages are not changed)."""
    if not points or not isinstance(points, list):
        return messages
    out = list(messages)
    for point in points:  # pyright: ignore[reportUnknownVariableType]
        if isinstance(point, dict) and point.get("location") == "message":  # pyright: ignore[reportUnknownMemberType]
            control = point.get("control") or EPHEMERAL  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            for i in _indices(out, point):  # pyright: ignore[reportUnknownArgumentType]
                out[i] = _mark(out[i], control)
    return out


def _indices(messages: list[Any], point: JSON) -> list[int]:
    index = point.get("index")
    if isinstance(index, int) and not isinstance(index, bool):
        return [index % len(messages)] if -len(messages) <= index < len(messages) else []
    role = point.get("role")
    return [i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == role]  # pyright: ignore[reportUnknownMemberType]


def _mark(message: Any, control: Any) -> Any:
    content = message.get("content") if isinstance(message, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if isinstance(content, str) and content:
        return {**message, "content": [{"type": "text", "text": content, "cache_control": control}]}
    if not isinstance(content, list):
        return message
    parts: list[Any] = list(content)  # pyright: ignore[reportUnknownArgumentType]
    for j in range(len(parts) - 1, -1, -1):
        if isinstance(parts[j], dict) and parts[j].get("type") == "text":
            parts[j] = {**parts[j], "cache_control": control}
            return {**message, "content": parts}
    return message
