"""A stream of `chat.completion.chunk` SSE events re-emitted as Anthropic Messages stream events.

Blocks open in the order the chunks give them (thinking, text, each tool call) with indexes 0, 1, 2…; a block closes
when another opens. The usage chunk (the gateway always asks for it) fills `message_delta.usage`. The chat stream's
keep-alive comments become `ping` events, and its final error event an Anthropic `error` event.

Hub tools (a streamed tool loop, run with `tool_loop_trace` so that its chunks say where each call happened) appear
as the MCP connector's `mcp_tool_use` and `mcp_tool_result` blocks, where the calls happened between the rounds'
texts. A result's full output is known only from the loop's final record, so from the first hub call on the events
are held and sent once the loop ends (pings go on meanwhile); the text before it streams as it comes.
"""

from __future__ import annotations

import uuid
from typing import Any

from hub.api import sse
from hub.api.locations import Locations
from hub.api.messages.response import (
    error_body,
    from_openai_error,
    hub_tool_blocks,
    message_id,
    stop_reason,
    stop_sequence,
    stream_error_status,
    tool_use_id,
    usage,
)

JSON = dict[str, Any]
PING = b'event: ping\ndata: {"type":"ping"}\n\n'


event = sse.named


class EventTranslator:
    """Feed it the chat stream's bytes as they come (`feed`), then `end()`; both return Anthropic event bytes."""

    def __init__(self, model: str, where: Locations | None = None) -> None:
        self.model = model
        self.where = where or Locations()
        """Where the chat body's messages came from, for a failure that names them."""
        self._frames = sse.Frames()
        self._started = False
        self._ended = False
        self._index = -1
        self._open: str | None = None  # "thinking", "text" or "tool:<n>"
        self._finish: Any = None
        self._matched: Any = None
        """The finishing choice's `stop_reason`: the stop sequence that ended the answer, if one did."""
        self._usage: Any = None
        self._held: list[JSON] | None = None
        """Chunks from the first hub call on, until the loop's record gives the calls' outputs."""
        self._thinking = 0
        """Thinking blocks signed so far: the next thinking text opens a new block."""

    def feed(self, data: bytes) -> bytes:
        return b"".join(self._frame(frame) for frame in self._frames.feed(data))

    def _frame(self, frame: bytes) -> bytes:
        kind, chunk = sse.read(frame)
        if kind == "comment":  # a keep-alive: the message starts at once (as Anthropic's own stream does)
            return (b"" if self._started else self._start({})) + PING
        if kind == "done":
            return self.end()
        if kind != "data":
            return b""
        return self.fail(self.where.body(chunk)) if sse.is_error(chunk) else self.chunk(chunk)

    def chunk(self, chunk: JSON) -> bytes:
        """The events for one `chat.completion.chunk` (none while they are held for the hub calls' outputs)."""
        if self._held is None:
            if "toolhub_trace" not in chunk:
                return self._chunk(chunk)
            self._held = []
        self._held.append(chunk)
        return self._release(chunk["toolhub"]) if chunk.get("toolhub") is not None else b""

    def _release(self, record: Any) -> bytes:
        """The held chunks, with each traced hub call's `mcp_tool_use` and `mcp_tool_result` blocks in its place."""
        held, self._held = self._held or [], None
        pairs = hub_tool_blocks(record)  # mcp_tool_use, mcp_tool_result, for each call
        blocks = {use["id"]: (use, result) for use, result in zip(pairs[::2], pairs[1::2], strict=True)}
        out = b""
        for chunk in held:
            events = chunk.get("toolhub_trace")
            if events is None:
                out += self._chunk(chunk)
                continue
            for traced in events if isinstance(events, list) else ():  # pyright: ignore[reportUnknownVariableType]
                block_id = tool_use_id(traced.get("id"))  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
                if traced.get("type") == "tool_result" and block_id in blocks:  # pyright: ignore[reportUnknownMemberType]
                    out += b"".join(self._whole(block) for block in blocks[block_id])
        return out

    def _whole(self, block: JSON) -> bytes:
        """A block sent whole: its start (with all its fields) and its stop."""
        return self._switch(f"hub:{block['type']}:{block.get('id') or block.get('tool_use_id')}", block) + self._close()

    def _chunk(self, chunk: JSON) -> bytes:
        out = b"" if self._started else self._start(chunk)
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if reasoning := delta.get("reasoning_content"):
                out += self._open_thinking()
                out += self._delta({"type": "thinking_delta", "thinking": reasoning})
            for block in delta.get("thinking_blocks") or ():
                out += self._signed(block) if isinstance(block, dict) else b""
            if text := delta.get("content"):
                out += self._switch("text", {"type": "text", "text": ""})
                out += self._delta({"type": "text_delta", "text": text})
            for call in delta.get("tool_calls") or ():
                out += self._tool_call(call)
            if choice.get("finish_reason"):
                self._finish, self._matched = choice["finish_reason"], choice.get("stop_reason")
        return out

    def _open_thinking(self) -> bytes:
        return self._switch(f"thinking:{self._thinking}", {"type": "thinking", "thinking": "", "signature": ""})

    def _signed(self, block: JSON) -> bytes:
        """A chunk's `thinking_blocks` entry (whole, or LiteLLM's fragments): a thinking block's signature ends the
        open thinking block with its `signature_delta`; a `redacted_thinking` block is a block of its own. Their
        text came as `reasoning_content`."""
        if block.get("type") == "redacted_thinking":
            return self._whole({"type": "redacted_thinking", "data": block.get("data") or ""})
        if block.get("type") != "thinking" or not block.get("signature"):
            return b""
        out = self._open_thinking() + self._delta({"type": "signature_delta", "signature": str(block["signature"])})
        self._thinking += 1
        return out

    def _start(self, chunk: JSON) -> bytes:
        self._started = True
        message_id_ = message_id(chunk.get("id") or uuid.uuid4().hex)
        message = {"id": message_id_, "type": "message", "role": "assistant", "model": self.model,
                   "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage(None)}  # fmt: skip
        return event("message_start", {"type": "message_start", "message": message})

    def _tool_call(self, call: JSON) -> bytes:
        out = b""
        key = f"tool:{call.get('index', 0)}"
        function = call.get("function") or {}
        if call.get("id") or self._open != key:
            block = {"type": "tool_use", "id": tool_use_id(call.get("id")), "name": function.get("name") or "",
                     "input": {}}  # fmt: skip
            out += self._switch(key, block, force=bool(call.get("id")))
        if arguments := function.get("arguments"):
            out += self._delta({"type": "input_json_delta", "partial_json": arguments})
        return out

    def _switch(self, key: str, block: JSON, *, force: bool = False) -> bytes:
        if self._open == key and not force:
            return b""
        out = self._close()
        self._index += 1
        self._open = key
        return out + event("content_block_start", {"type": "content_block_start", "index": self._index,
                                                   "content_block": block})  # fmt: skip

    def _delta(self, delta: JSON) -> bytes:
        return event("content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return event("content_block_stop", {"type": "content_block_stop", "index": self._index})

    def end(self) -> bytes:
        """Close the open block, then `message_delta` and `message_stop` (once)."""
        if self._ended:
            return b""
        out = self._release(None) if self._held is not None else b""  # a loop that ended without its record
        out += (b"" if self._started else self._start({})) + self._close()
        self._ended = True
        stop = {"stop_reason": stop_reason(self._finish, self._matched),
                "stop_sequence": stop_sequence(self._finish, self._matched)}  # fmt: skip
        delta = {"type": "message_delta", "delta": stop, "usage": usage(self._usage)}
        return out + event("message_delta", delta) + event("message_stop", {"type": "message_stop"})

    def fail(self, chunk: JSON) -> bytes:
        """The chat stream failed after it started: an Anthropic `error` event ends it (after what was held)."""
        out = self._release(None) if self._held is not None else b""
        self._ended = True
        return out + event("error", from_openai_error(stream_error_status(chunk), chunk)[1])

    def error(self, status: int, message: str) -> bytes:
        self._ended = True
        return event("error", error_body(status, message))
