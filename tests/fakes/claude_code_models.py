"""Fake Anthropic and Gemini models that use Claude Code's own `Read` tool, for running `claude -p` against Toolhub.

    anthropic `claude-reader`, gemini `gemini-3-reader`: while the conversation has no tool result, one call to
    `Read` with the first absolute `.txt` path in the user's text; then the fakes' usual text quoting the results.

The Anthropic fake also answers `count_tokens` (tests/fakes/anthropic_count.py), which Claude Code calls.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.fakes.anthropic_count import FakeAnthropicCounting
from tests.fakes.gemini_upstream import FakeGemini, _chunks  # pyright: ignore[reportPrivateUsage]

JSON = dict[str, Any]
PATH = re.compile(r"(/[\w./-]+\.txt)")


def first_path(value: Any) -> str:
    """The first absolute `.txt` path in `value`'s JSON (the user's text)."""
    found = PATH.search(json.dumps(value))
    return found.group(1) if found else "/nonexistent.txt"


class FakeAnthropicReader(FakeAnthropicCounting):
    def _content(self, body: JSON, model: str) -> tuple[list[JSON], str]:
        last = body["messages"][-1]
        asked = not any(isinstance(b, dict) and b.get("type") == "tool_result" for b in last.get("content") or ())
        if model == "claude-reader" and asked:
            users = [m["content"] for m in body["messages"] if m["role"] == "user"]
            return [self._tool_use("Read", {"file_path": first_path(users)})], "tool_use"
        return super()._content(body, model)


class FakeGeminiReader(FakeGemini):
    def _script(self, behaviour: str, version: float, body: JSON) -> list[JSON]:
        contents = body["contents"]
        answered = any("functionResponse" in p for c in contents for p in c["parts"])
        if behaviour == "reader" and not answered:
            users = [c["parts"] for c in contents if c["role"] == "user"]
            call = self._call("Read", {"file_path": first_path(users)}, version, signed=True)
            return _chunks([[call]], "STOP", version)
        return super()._script(behaviour, version, body)
