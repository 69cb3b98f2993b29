"""Server-sent events for the inbound APIs that translate the chat stream (Messages, Responses): named events out,
and the chat stream's frames in, as they arrive in arbitrary pieces.

The chat path writes one frame per event (`data: <json>` or `data: [DONE]`) and SSE comments (`: keep-alive`,
`: toolhub running ...`), each ended by a blank line (hub/gateway/sse.py).
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

Kind = Literal["data", "done", "comment", "other"]


def named(kind: str, data: Any) -> bytes:
    """One event with an `event:` line (as Anthropic and OpenAI's Responses API send them) and `data` as JSON."""
    return named_raw(kind, orjson.dumps(data))


def named_raw(kind: str, data: bytes) -> bytes:
    """One event whose data is already JSON; no `event:` line when `kind` is empty."""
    return (b"event: " + kind.encode() + b"\ndata: " if kind else b"data: ") + data + b"\n\n"


class Frames:
    """Cuts a byte stream into complete frames; a partial frame waits for the next piece."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, data: bytes) -> list[bytes]:
        complete, _, self.pending = (self.pending + data).rpartition(b"\n\n")
        return [frame for frame in complete.split(b"\n\n") if frame]


def read(frame: bytes) -> tuple[Kind, Any]:
    """What a frame is: ("data", the parsed JSON), ("done", None), ("comment", its bytes) or ("other", its bytes)."""
    if frame.startswith(b"data: "):
        payload = frame[6:]
        return ("done", None) if payload == b"[DONE]" else ("data", orjson.loads(payload))
    return ("comment", frame) if frame.startswith(b":") else ("other", frame)


def is_error(data: Any) -> bool:
    """Whether a data event is the chat stream's final error (`{"error": ...}` without choices)."""
    return isinstance(data, dict) and "error" in data and not data.get("choices")  # pyright: ignore[reportUnknownMemberType]
