"""Chat Completions stream chunks turned into the Responses API's semantic events, numbered from 0.

One translator serves one stream: `start()` gives `response.created` and `response.in_progress`, `chunk()` the events
for each chat.completion.chunk, `done()` closes what is open and ends with `response.completed` (or `.incomplete`),
and `failed()` ends a stream the upstream broke with `response.failed`. Items keep the same ids from `added` to `done`
and in the final response, so the openai SDK's `responses.stream()` rebuilds the same object as a non-streamed call.
"""

from __future__ import annotations

from typing import Any

from hub.api import sse
from hub.api.responses import include, objects
from hub.api.responses.approval import Approvals
from hub.api.responses.mcp import McpReport
from hub.api.responses.objects import JSON


class _Open:
    """An output item being streamed: its index in `output`, the item, and the text or arguments so far."""

    __slots__ = ("index", "item", "parts", "logprobs")

    def __init__(self, index: int, item: JSON) -> None:
        self.index, self.item = index, item
        self.parts: list[str] = []
        self.logprobs: list[JSON] = []

    @property
    def text(self) -> str:
        return "".join(self.parts)


class StreamTranslator:
    """Translates one chat stream to Responses events for `response` (from `objects.shell`)."""

    def __init__(
        self,
        response: JSON,
        mcp: McpReport | None = None,
        approvals: Approvals | None = None,
        before: Any = (),
        included: frozenset[str] = frozenset(),
        namespaces: dict[str, str] | None = None,
    ) -> None:
        self.response = response
        self.namespaces = namespaces or {}
        """Function name -> its `namespace` tool, named on the model's calls."""
        self.encrypted: None | bool = None if include.ENCRYPTED in included else False
        """The `encrypted_content` of a reasoning item when it opens: null when asked for, filled when it closes."""
        self.blocks: list[JSON] = []
        """The open reasoning item's thinking blocks so far (`delta.thinking_blocks`), for its `encrypted_content`."""
        self.mcp = mcp
        self.approvals = approvals
        self.before: list[JSON] = list(before)
        """Items known before the model answers (`mcp_call` items of approved calls)."""
        self.asked: list[JSON] = []
        """Calls that wait for approval, as the function calls the model made (for the stored conversation)."""
        self.held: list[JSON] | None = [] if mcp and mcp.runs else None
        """With hub tools, the chunks wait for the end so that the `mcp_call` items come before the answer."""
        self.record: Any = None
        self.sequence = 0
        self.reasoning: _Open | None = None
        self.message: _Open | None = None
        self.calls: dict[int, _Open] = {}
        self.finish_reason: Any = None
        self.usage: Any = None
        self.ended = False

    def event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return sse.named(kind, data)

    def _lifecycle(self, kind: str) -> bytes:
        return self.event(kind, response=self.response)

    def start(self) -> bytes:
        # every event is serialised when it is made, so later changes to `response` do not leak into earlier ones
        out = self._lifecycle("response.created") + self._lifecycle("response.in_progress")
        return out + self._whole_items([*(self.mcp.list_items() if self.mcp else []), *self.before])

    def _whole_items(self, items: list[JSON]) -> bytes:
        out = b""
        for item in items:
            opened, added = self._add(item)
            out += added + self.event("response.output_item.done", output_index=opened.index, item=item)
        return out

    def chunk(self, chunk: JSON) -> bytes:
        """The events for one chat.completion.chunk (none yet while chunks are held)."""
        if chunk.get("toolhub") is not None:
            self.record = chunk["toolhub"]
        if self.held is not None:
            self.held.append(chunk)
            return b""
        return self._chunk(chunk)

    def _chunk(self, chunk: JSON) -> bytes:
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        choices = chunk.get("choices")
        if not choices:
            return b""
        choice = choices[0]
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        delta = choice.get("delta") or {}
        out = b""
        if reasoning := delta.get("reasoning_content"):
            out += self._reasoning_delta(reasoning)
        if (blocks := delta.get("thinking_blocks")) and self.encrypted is not False:
            out += b"" if self.reasoning is not None else self._open_reasoning()
            include.gather(self.blocks, blocks)
        if content := delta.get("content"):
            out += self._text_delta(content, include.logprobs(choice))
        for position, call in enumerate(delta.get("tool_calls") or ()):
            out += self._call_delta(call, position)
        return out

    def _id(self, prefix: str) -> str:
        return objects.item_id(self.response, prefix)

    def _add(self, item: JSON) -> tuple[_Open, bytes]:
        output: list[JSON] = self.response["output"]
        opened = _Open(len(output), item)
        output.append(item)
        return opened, self.event("response.output_item.added", output_index=opened.index, item=item)

    def _open_reasoning(self) -> bytes:
        out = self._close_message()
        self.reasoning, added = self._add(objects.reasoning_item(self._id("rs"), None, self.encrypted))
        self.blocks = []
        return out + added

    def _reasoning_delta(self, text: str) -> bytes:
        out = b"" if self.reasoning is not None else self._open_reasoning()
        assert self.reasoning is not None
        if not self.reasoning.parts:  # a summary opens with the first text (signed blocks may come before it)
            part = {"type": "summary_text", "text": ""}
            out += self.event("response.reasoning_summary_part.added", **self._at(self.reasoning), summary_index=0,
                              part=part)  # fmt: skip
        self.reasoning.parts.append(text)
        return out + self.event("response.reasoning_summary_text.delta", **self._at(self.reasoning), summary_index=0,
                                delta=text)  # fmt: skip

    def _text_delta(self, text: str, logprobs: list[JSON]) -> bytes:
        out = b""
        if self.message is None:
            out += self._close_reasoning()
            self.message, added = self._add(objects.message_item(self._id("msg"), "", "in_progress"))
            part = objects.output_text("")
            out += added + self.event("response.content_part.added", **self._at(self.message), content_index=0,
                                      part=part)  # fmt: skip
        self.message.parts.append(text)
        self.message.logprobs += logprobs
        return out + self.event("response.output_text.delta", **self._at(self.message), content_index=0, delta=text,
                                logprobs=logprobs)  # fmt: skip

    def _call_index(self, call: JSON, position: int) -> int:
        """The call's `index`; servers that send none start a new call with each new `id`."""
        if (index := call.get("index")) is not None:
            return index
        last = max(self.calls, default=None)
        if last is None or (call.get("id") and call["id"] != self.calls[last].item["call_id"]):
            return position if last is None else last + 1
        return last

    def _call_delta(self, call: JSON, position: int) -> bytes:
        index = self._call_index(call, position)
        function = call.get("function") or {}
        out = b""
        opened = self.calls.get(index)
        if opened is None:
            item = objects.function_call_item(self._id("fc"), call.get("id") or objects.new_id("call"),
                                              function.get("name") or "", "", "in_progress")  # fmt: skip
            if namespace := self.namespaces.get(item["name"]):
                item["namespace"] = namespace
            if self.approvals is not None and item["name"] in self.approvals.tools:
                opened = self.calls[index] = _Open(-1, item)  # reported whole at the end, as an approval request
            else:
                out += self._close_reasoning() + self._close_message()
                opened, added = self._add(item)
                self.calls[index] = opened
                out += added
        if arguments := function.get("arguments"):
            opened.parts.append(arguments)
            if opened.index < 0:
                return out
            out += self.event("response.function_call_arguments.delta", **self._at(opened), delta=arguments)
        return out

    @staticmethod
    def _at(opened: _Open) -> JSON:
        return {"item_id": opened.item["id"], "output_index": opened.index}

    def _close_reasoning(self) -> bytes:
        """The open reasoning item's summary events, then its `output_item.done` with the signed thinking (as
        `encrypted_content`, when asked for) that the non-streamed answer gives too."""
        opened, self.reasoning = self.reasoning, None
        if opened is None:
            return b""
        if self.encrypted is not False:
            opened.item["encrypted_content"] = include.encrypted(self.blocks)
        out = b""
        if opened.parts:
            part = {"type": "summary_text", "text": opened.text}
            opened.item["summary"] = [part]
            out += self.event("response.reasoning_summary_text.done", **self._at(opened), summary_index=0,
                              text=opened.text)  # fmt: skip
            out += self.event("response.reasoning_summary_part.done", **self._at(opened), summary_index=0, part=part)
        return out + self.event("response.output_item.done", output_index=opened.index, item=opened.item)

    def _close_message(self) -> bytes:
        opened, self.message = self.message, None
        if opened is None:
            return b""
        part = objects.output_text(opened.text, opened.logprobs)
        opened.item.update(status="completed", content=[part])
        at = {**self._at(opened), "content_index": 0}
        return (
            self.event("response.output_text.done", **at, text=opened.text, logprobs=opened.logprobs)
            + self.event("response.content_part.done", **at, part=part)
            + self.event("response.output_item.done", output_index=opened.index, item=opened.item)
        )

    def _close_calls(self) -> bytes:
        out = b""
        for opened in self.calls.values():
            arguments = opened.text or "{}"
            opened.item.update(status="completed", arguments=arguments)
            if opened.index < 0 and self.approvals is not None:
                self.asked.append(opened.item)
                out += self._whole_items([self.approvals.request_item(opened.item)])
                continue
            out += self.event("response.function_call_arguments.done", **self._at(opened), name=opened.item["name"],
                              arguments=arguments)  # fmt: skip
            out += self.event("response.output_item.done", output_index=opened.index, item=opened.item)
        self.calls = {}
        return out

    def _release(self) -> bytes:
        """The `mcp_call` items of the loop's record, then the held chunks' events."""
        held, self.held = self.held, None
        if held is None or self.mcp is None:
            return b""
        out = self._whole_items(self.mcp.call_items(self.record))
        return out + b"".join(self._chunk(chunk) for chunk in held)

    def done(self) -> bytes:
        """Close every open item; end with `response.completed`, or `response.incomplete` on a cut answer."""
        if self.ended:
            return b""
        self.ended = True
        out = self._release()
        out += self._close_reasoning() + self._close_message() + self._close_calls()
        response = objects.finish(self.response, self.finish_reason, self.usage)
        kind = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
        return out + self._lifecycle(kind)

    def failed(self, error: Any) -> bytes:
        """End a stream that broke after it started: `response.failed` carrying the error."""
        if self.ended:
            return b""
        self.ended = True
        detail = error.get("error") if isinstance(error, dict) else None
        detail = detail if isinstance(detail, dict) else {}
        code = detail.get("code") or detail.get("type") or "server_error"  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        message = detail.get("message") or "The upstream stream failed."  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        self.response.update(status="failed", error={"code": str(code), "message": str(message)})  # pyright: ignore[reportUnknownArgumentType]
        return self._lifecycle("response.failed")
