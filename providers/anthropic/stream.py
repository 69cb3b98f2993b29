"""Anthropic stream events -> OpenAI `chat.completion.chunk` dicts (pure; one `StreamTranslator` per stream).

Tool calls get their own 0-based counter (Anthropic's block `index` counts text and thinking blocks too); `id` and
`name` go only in a call's first fragment; a call whose arguments never arrived is closed with `"{}"`. Thinking text
becomes `delta.reasoning_content`; the thinking blocks themselves (with their signatures) are collected for replay,
and each goes out once whole in `delta.thinking_blocks` (`_signed`).
The finishing chunk's choice names a matched stop sequence as `stop_reason` (`response.matched_stop`).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from providers.anthropic.names import ToolNames
from providers.anthropic.response import finish_reason, matched_stop, stream_error, usage
from providers.base import JSON

_OPENER = re.compile(r"\s*```[a-zA-Z]*[ \t]*\n")
_MAYBE_OPENER = re.compile(r"\s*(`{0,3}|```[a-zA-Z]*[ \t]*)")
_MAYBE_CLOSER = re.compile(r"\n?`{0,3}\s*\Z")
_CLOSER = re.compile(r"\n?```\s*\Z")


class FenceFilter:
    """Strips a Markdown code fence around a streamed `json_object` answer, holding back only what is undecided:
    the start until it is known to open a fence or not, and a tail that may be the closing fence."""

    def __init__(self) -> None:
        self._head: str | None = ""
        """Text before the opener is decided; None once it is."""
        self._fenced = False
        self._tail = ""

    def feed(self, text: str) -> str:
        """The text that can be sent now."""
        if self._head is not None:
            head = self._head + text
            if match := _OPENER.match(head):
                self._head, self._fenced, text = None, True, head[match.end() :]
            elif _MAYBE_OPENER.fullmatch(head):
                self._head = head
                return ""
            else:
                self._head, text = None, head
        if not self._fenced:
            return text
        pending = self._tail + text
        cut = _MAYBE_CLOSER.search(pending)
        cut_at = cut.start() if cut else len(pending)
        self._tail = pending[cut_at:]
        return pending[:cut_at]

    def flush(self) -> str:
        """What is left at the end of the answer, without a closing fence."""
        rest = (self._head or "") + ("" if _CLOSER.fullmatch(self._tail) else self._tail)
        self._head, self._tail = None, ""
        return rest


class StreamTranslator:
    """Feed it events in order; it returns the chunks to send for each."""

    def __init__(self, names: ToolNames, *, model: str, created: int, json_object: bool = False) -> None:
        self._names = names
        self._fences = FenceFilter() if json_object else None
        self._id = "chatcmpl-anthropic"
        self._model = model
        self._created = created
        self._tools: dict[int, int] = {}
        """Anthropic block index -> OpenAI tool-call index."""
        self._args_sent: dict[int, bool] = {}
        self._inputs: dict[int, JSON] = {}
        """Tool-call index -> the input given whole in `content_block_start` (normally `{}`)."""
        self._blocks: dict[int, JSON] = {}
        self._usage: JSON = {}
        self.tool_call_ids: list[str] = []
        self.done = False
        """`message_stop` was seen: the answer is complete."""

    @property
    def thinking_blocks(self) -> list[JSON]:
        """The thinking and redacted-thinking blocks so far, in answer order."""
        return [self._blocks[i] for i in sorted(self._blocks)]

    def feed(self, event: str, data: JSON) -> list[JSON]:
        """The chunks for one event; an `error` event raises `ProviderError`."""
        kind = data.get("type") or event
        if kind == "content_block_delta":
            return self._delta(data["index"], data.get("delta") or {})
        if kind == "content_block_start":
            return self._start(data["index"], data.get("content_block") or {})
        if kind == "content_block_stop":
            return self._stop(data["index"])
        if kind == "message_start":
            return self._message_start(data.get("message") or {})
        if kind == "message_delta":
            return self._message_delta(data)
        if kind == "message_stop":
            self.done = True
            return [*self._flush(), self.usage_chunk()]
        if kind == "error":
            raise stream_error(data)
        return []  # ping, and event types added after this was written

    def usage_chunk(self) -> JSON:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model,
                "choices": [], "usage": usage(self._usage)}  # fmt: skip

    def _chunk(self, delta: JSON, finish: str | None = None, stop: JSON | None = None) -> JSON:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish, **(stop or {})}
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model,
                "choices": [choice]}  # fmt: skip

    def _text(self, text: Any) -> list[JSON]:
        if self._fences is not None and isinstance(text, str):
            text = self._fences.feed(text)
        return [self._chunk({"content": text})] if text else []

    def _flush(self) -> list[JSON]:
        rest = self._fences.flush() if self._fences is not None else ""
        return [self._chunk({"content": rest})] if rest else []

    def _message_start(self, message: JSON) -> list[JSON]:
        if message.get("id"):
            self._id = f"chatcmpl-{message['id']}"
        self._model = message.get("model") or self._model
        self._usage = dict(message.get("usage") or {})
        return [self._chunk({"role": "assistant", "content": ""})]

    def _message_delta(self, data: JSON) -> list[JSON]:
        """Usage so far; with the stop reason, the rest of the text and the finishing chunk."""
        self._usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
        delta = data.get("delta") or {}
        if not (stop := delta.get("stop_reason")):
            return []
        return [*self._flush(), self._chunk({}, finish_reason(stop), matched_stop(stop, delta.get("stop_sequence")))]

    def _start(self, index: int, block: JSON) -> list[JSON]:
        kind = block.get("type")
        if kind == "text":
            return self._text(block.get("text"))
        if kind == "tool_use":
            call = len(self._tools)
            self._tools[index] = call
            self._args_sent[call] = False
            self.tool_call_ids.append(block["id"])
            self._inputs[call] = block.get("input") or {}
            first = {"index": call, "id": block["id"], "type": "function",
                     "function": {"name": self._names.original(block["name"]), "arguments": ""}}  # fmt: skip
            return [self._chunk({"tool_calls": [first]})]
        if kind == "thinking":
            self._blocks[index] = {"type": "thinking", "thinking": block.get("thinking") or "",
                                   "signature": block.get("signature") or ""}  # fmt: skip
            return [self._chunk({"reasoning_content": block["thinking"]})] if block.get("thinking") else []
        if kind == "redacted_thinking":
            self._blocks[index] = dict(block)
            return [self._signed(index)]
        return []

    def _delta(self, index: int, delta: JSON) -> list[JSON]:
        kind = delta.get("type")
        if kind == "text_delta":
            return self._text(delta.get("text"))
        if kind == "input_json_delta":
            partial = delta.get("partial_json")
            call = self._tools.get(index)
            if not partial or call is None:
                return []
            self._args_sent[call] = True
            return [self._chunk({"tool_calls": [{"index": call, "function": {"arguments": partial}}]})]
        if kind == "thinking_delta":
            block = self._blocks.get(index)
            if block is not None:
                block["thinking"] += delta.get("thinking") or ""
            return [self._chunk({"reasoning_content": delta["thinking"]})] if delta.get("thinking") else []
        if kind == "signature_delta" and (block := self._blocks.get(index)) is not None:
            block["signature"] = delta.get("signature") or ""
            return [self._signed(index)]
        return []

    def _signed(self, index: int) -> JSON:
        """The chunk passing on a thinking block once it is whole (its signature came; a redacted one at its start),
        as LiteLLM does, in `delta.thinking_blocks`: the inbound APIs (hub/api) sign `/v1/messages` streams and fill
        `/v1/responses`' `encrypted_content` with it. Each entry has an `index` (the block's place among the answer's
        thinking blocks), without which the openai SDK's stream accumulator refuses a list in a delta."""
        place = sorted(self._blocks).index(index)
        return self._chunk({"thinking_blocks": [{"index": place, **self._blocks[index]}]})

    def _stop(self, index: int) -> list[JSON]:
        call = self._tools.get(index)
        if call is None or self._args_sent[call]:
            return []
        self._args_sent[call] = True
        arguments = orjson.dumps(self._inputs[call]).decode() if self._inputs[call] else "{}"
        return [self._chunk({"tool_calls": [{"index": call, "function": {"arguments": arguments}}]})]
