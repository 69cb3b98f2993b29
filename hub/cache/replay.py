"""A whole answer as a stream and back: a cached completion replays as `chat.completion.chunk` events, and a
completed stream is gathered into the completion it stands for (what the openai SDK's accumulator rebuilds)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

JSON = dict[str, Any]
_TEXT_FIELDS = ("content", "refusal", "reasoning_content")
_LOGPROB_FIELDS = ("content", "refusal")
LOOP_RECORD = "toolhub"
"""The tool loop's record of the tools it ran: top level in its answer, on the finish chunk of its stream."""


def completion_chunks(completion: JSON, *, include_usage: bool) -> Iterator[JSON]:
    """The chunks of a stream whose accumulation is `completion`: per choice a role, its text, tool calls, finish."""
    head = {k: completion[k] for k in ("id", "created", "model", "system_fingerprint") if k in completion}
    head["object"] = "chat.completion.chunk"
    extra = {LOOP_RECORD: completion[LOOP_RECORD]} if LOOP_RECORD in completion else {}
    for choice in completion.get("choices") or ():
        index = choice.get("index", 0)
        for delta, logprobs in _deltas(choice.get("message") or {}, choice.get("logprobs")):
            entry = {"index": index, "delta": delta, "finish_reason": None}
            if logprobs:
                entry["logprobs"] = logprobs
            yield {**head, "choices": [entry]}
        finish = {"index": index, "delta": {}, "finish_reason": choice.get("finish_reason") or "stop"}
        if isinstance(matched := choice.get("stop_reason"), str):  # the stop sequence matched (vLLM's name)
            finish["stop_reason"] = matched
        yield {**head, "choices": [finish], **extra}
    if include_usage and completion.get("usage"):
        yield {**head, "choices": [], "usage": completion["usage"]}


def _deltas(message: JSON, logprobs: JSON | None) -> Iterator[tuple[JSON, JSON | None]]:
    """A message's deltas, each with the logprobs that go with it: the tokens of `content` ride with its text (and
    those of `refusal` with its), as OpenAI streams them; tokens whose text is empty ride with the role delta. The
    role delta's `content` is "" for an answer with content and null for one without (tool calls, a refusal), as
    OpenAI sends it: the openai SDK's accumulated message keeps that first value (`content == ""` was not None)."""
    tokens = {name: logprobs[name] for name in _LOGPROB_FIELDS if logprobs.get(name)} if logprobs else {}
    early = {name: tokens.pop(name) for name in list(tokens) if not message.get(name)}
    content = None if message.get("content") is None else ""
    yield {"role": message.get("role") or "assistant", "content": content}, _logprobs(early)
    for name in _TEXT_FIELDS:
        if message.get(name):
            yield {name: message[name]}, _logprobs({name: tokens[name]} if name in tokens else {})
    calls = message.get("tool_calls")
    if calls:
        yield {"tool_calls": [{"index": i, **call} for i, call in enumerate(calls)]}, None


def _logprobs(tokens: JSON) -> JSON | None:
    return {"content": tokens.get("content"), "refusal": tokens.get("refusal")} if tokens else None


class StreamGatherer:
    """Feed it every chunk of a stream; `completion()` is the whole answer (None if the stream never finished, or
    grew past `limit` characters of text and arguments: then nothing more is kept).

    Text and arguments are kept as lists of their pieces, joined once at the end: adding each piece to the text so
    far copied the whole answer once a chunk, quadratic in its length (a 6 MB stream held the event loop for
    seconds, a 60 MB one for minutes)."""

    def __init__(self, limit: int | None = None) -> None:
        self.head: JSON = {}
        self.choices: dict[int, JSON] = {}
        self.usage: JSON | None = None
        self.extra: JSON = {}
        self.limit = limit
        self.size = 0
        self.over = False

    def add(self, chunk: JSON) -> None:
        if self.over:
            return
        if not self.head:
            self.head = {k: chunk[k] for k in ("id", "created", "model", "system_fingerprint") if k in chunk}
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        if LOOP_RECORD in chunk:
            self.extra[LOOP_RECORD] = chunk[LOOP_RECORD]
        for choice in chunk.get("choices") or ():
            self._choice(choice)
        if self.limit is not None and self.size > self.limit:
            self.over, self.choices = True, {}  # too large to store: what was gathered goes now

    def _choice(self, choice: JSON) -> None:
        index = choice.get("index", 0)
        state = self.choices.setdefault(index, {"texts": {}, "calls": {}, "finish": None, "logprobs": None})
        if isinstance(logprobs := choice.get("logprobs"), dict):
            _merge_logprobs(state, logprobs)  # pyright: ignore[reportUnknownArgumentType]
        delta = choice.get("delta") or {}
        texts = state["texts"]
        for name in _TEXT_FIELDS:
            if piece := delta.get(name):
                texts.setdefault(name, []).append(piece)
                self.size += len(piece)
        for call in delta.get("tool_calls") or ():
            self.size += _merge_call(state["calls"], call)
        if choice.get("finish_reason"):
            state["finish"] = choice["finish_reason"]
            if isinstance(matched := choice.get("stop_reason"), str):
                state["matched"] = matched

    def completion(self) -> JSON | None:
        """The gathered answer, or None when some choice has no finish_reason (a cut stream) or it grew too large."""
        if self.over or not self.choices or any(state["finish"] is None for state in self.choices.values()):
            return None
        choices = [self._finished(index, state) for index, state in sorted(self.choices.items())]
        answer = {**self.head, "object": "chat.completion", "choices": choices, **self.extra}
        if self.usage is not None:
            answer["usage"] = self.usage
        return answer

    @staticmethod
    def _finished(index: int, state: JSON) -> JSON:
        texts = {name: "".join(pieces) for name, pieces in state["texts"].items()}
        message: JSON = {"content": None, "role": "assistant", **texts}
        if calls := state["calls"]:
            message["tool_calls"] = [_joined(calls[i]) for i in sorted(calls)]
        finished = {"index": index, "message": message, "finish_reason": state["finish"], "logprobs": state["logprobs"]}
        if "matched" in state:
            finished["stop_reason"] = state["matched"]
        return finished


def _merge_call(calls: dict[int, JSON], delta: JSON) -> int:
    """Add a tool call's fragment (its name and arguments as pieces); the characters it added."""
    index = delta.get("index", len(calls))
    call = calls.setdefault(index, {"id": None, "type": "function", "name": [], "arguments": []})
    if delta.get("id"):
        call["id"] = delta["id"]
    if delta.get("type"):
        call["type"] = delta["type"]
    function = delta.get("function") or {}
    added = 0
    for name in ("name", "arguments"):
        if piece := function.get(name):
            call[name].append(piece)
            added += len(piece)
    return added


def _joined(call: JSON) -> JSON:
    function = {"name": "".join(call["name"]), "arguments": "".join(call["arguments"])}
    return {"id": call["id"], "type": call["type"], "function": function}


def _merge_logprobs(state: JSON, logprobs: JSON) -> None:
    """A chunk's token logprobs appended to its choice's (`{"content": [...], "refusal": [...]}`, None when unsent)."""
    merged: JSON = state["logprobs"] or {"content": None, "refusal": None}
    state["logprobs"] = merged
    for name in _LOGPROB_FIELDS:
        if logprobs.get(name):
            tokens: list[Any] = merged[name] if merged[name] is not None else []
            tokens.extend(logprobs[name])
            merged[name] = tokens
