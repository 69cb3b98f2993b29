"""Tool names and tool-call ids that Anthropic accepts, mapped deterministically and reversibly.

Anthropic refuses tool names outside `^[a-zA-Z0-9_-]{1,128}$` (MCP names carry `.`, `/`, `:` or spaces) and
`tool_use` ids outside `^[a-zA-Z0-9_-]+$` (ids minted by other providers carry `|`, `.`, `+`, `/`, `=`). A refused
value gets its invalid characters replaced and a short hash of the original appended, so two different originals never
collide, and the same original always maps to the same value on every turn: no state is needed between requests.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

_NAME_OK = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_ID_OK = re.compile(r"^[a-zA-Z0-9_-]+$")
_INVALID = re.compile(r"[^a-zA-Z0-9_-]")
_NAME_MAX = 128


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:10]


def wire_name(name: str) -> str:
    """The name Anthropic is sent for an OpenAI tool name (unchanged when Anthropic accepts it)."""
    if _NAME_OK.match(name):
        return name
    suffix = "_" + _digest(name)
    return _INVALID.sub("_", name)[: _NAME_MAX - len(suffix)] + suffix


def wire_id(call_id: str) -> str:
    """The `tool_use` id Anthropic is sent for an OpenAI tool-call id (unchanged when Anthropic accepts it)."""
    if _ID_OK.match(call_id):
        return call_id
    return _INVALID.sub("_", call_id) + "_" + _digest(call_id)


class ToolNames:
    """The reverse map for one request: names Anthropic answers with -> the names the client knows."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._original: dict[str, str] = {}
        for name in names:
            self.add(name)

    def add(self, name: str) -> str:
        """Register an original name; return its wire name."""
        wired = wire_name(name)
        self._original.setdefault(wired, name)
        return wired

    def original(self, wired: str) -> str:
        """The client's name for a name Anthropic used (unknown names are returned as they are)."""
        return self._original.get(wired, wired)
