"""The meta-tools a client or model sees in search mode, and which mode a caller gets (`exposure`).

In search mode the hub lists `hub__search_tools`, `hub__describe_tool`, `hub__call_tool` and `hub__read_result`, plus
the tools pinned by `always_expose`, instead of its whole catalog. Their definitions are module constants, listed in
one order, so the bytes a provider sees are the same on every turn and its prompt cache keeps hitting.

Known tool limits (`CLIENT_LIMITS`, matched in `clientInfo.name` or a provider name, case-insensitively): Cursor
refuses more than 40 tools across servers, VS Code / Copilot and OpenAI's API take 128 per request
(`../shared/notes/clients.md`). Claude Desktop publishes no limit, so it gets the configured threshold like any other
client.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from typing import Any, Literal, TypeVar

import mcp_types as types

from hub.catalog.index import Searchable

SEARCH_TOOLS = "hub__search_tools"
DESCRIBE_TOOL = "hub__describe_tool"
CALL_TOOL = "hub__call_tool"
READ_RESULT = "hub__read_result"
META_NAMES = (SEARCH_TOOLS, DESCRIBE_TOOL, CALL_TOOL, READ_RESULT)

DEFAULT_THRESHOLD = 40
DEFAULT_SEARCH_LIMIT = 8
MAX_SEARCH_LIMIT = 50

Mode = Literal["all", "search", "auto"]
Exposure = Literal["all", "search"]

CLIENT_LIMITS: tuple[tuple[str, int], ...] = (
    ("cursor", 40),
    ("visual studio code", 128),
    ("vscode", 128),
    ("copilot", 128),
    ("openai", 128),
)
"""(substring of a lower-cased client or provider name, most tools it accepts), first match wins."""


def client_limit(client_name: str | None) -> int | None:
    """The most tools a known client (by `clientInfo.name`) or provider accepts; None when unknown."""
    name = (client_name or "").lower()
    return next((limit for pattern, limit in CLIENT_LIMITS if pattern in name), None)


def exposure(mode: Mode | None, threshold: int, client_name: str | None, visible_count: int) -> Exposure:
    """Whether a caller that may see `visible_count` tools gets them all or the meta-tools.

    `all` and `search` are obeyed as configured. `auto` searches past the threshold or the client's own limit,
    whichever is lower. Unset (None) lists everything, except to a known client that would refuse that many.
    """
    limit = client_limit(client_name)
    if mode == "all" or mode == "search":
        return mode
    if mode == "auto":
        ceiling = threshold if limit is None else min(threshold, limit)
        return "search" if visible_count > ceiling else "all"
    return "search" if limit is not None and visible_count > limit else "all"


def meta_clash(prefix: str, separator: str) -> str | None:
    """Why an MCP server whose tools are named `<prefix><separator><tool>` cannot be served next to the meta-tools
    (a tool of it could be named like one), or None."""
    head = prefix + separator
    clashing = [name for name in META_NAMES if name.startswith(head)]
    if not clashing:
        return None
    return (f"its tools would be named {head}<tool>, like the hub's own meta-tools ({', '.join(clashing)}), so a tool "
            f"such as {clashing[0].removeprefix(head)!r} could not be told apart from one: rename the server or give "
            "it an 'alias'")  # fmt: skip


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


_NAME = {"type": "string", "description": "The tool's exact name, as hub__search_tools returned it."}
_DEFINITIONS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    (SEARCH_TOOLS, "Search the hub's tools by what they do. Returns the best matches (name, description, arguments). "
     "Call this first to find a tool, then hub__call_tool with its name.",
     _object({"query": {"type": "string", "description": "Words describing the task, e.g. 'create github issue'."},
              "limit": {"type": "integer", "minimum": 1, "maximum": MAX_SEARCH_LIMIT,
                        "description": f"How many tools to return (default {DEFAULT_SEARCH_LIMIT})."}}, ["query"])),
    (DESCRIBE_TOOL, "The full definition of one hub tool: its description and the JSON Schema of its arguments.",
     _object({"name": _NAME}, ["name"])),
    (CALL_TOOL, "Call a hub tool found with hub__search_tools, with arguments that match its schema.",
     _object({"name": _NAME, "arguments": {"type": "object", "description": "The tool's arguments."}}, ["name"])),
    (READ_RESULT, "Read a large tool result the hub stored: a part of it (offset and limit in characters), or the "
     "lines containing some text (grep: plain text, case-insensitive, each line with its number).",
     _object({"handle": {"type": "string", "description": "The handle given with the result, e.g. 'res_...'."},
              "offset": {"type": "integer", "minimum": 0,
                         "description": "Characters to skip (with grep: the line number to search from)."},
              "limit": {"type": "integer", "minimum": 1, "description": "Characters to return at most."},
              "grep": {"type": "string", "description": "Return only the lines containing this text."}},
             ["handle"])),
)  # fmt: skip


def meta_tools(*, results: bool = True) -> list[types.Tool]:
    """The meta-tools as MCP tools, always in the same order (`hub__read_result` only with a result store)."""
    return [
        types.Tool(name=name, description=description, input_schema=schema)
        for name, description, schema in _DEFINITIONS
        if results or name != READ_RESULT
    ]


def meta_functions(*, results: bool = True) -> list[dict[str, Any]]:
    """The meta-tools as OpenAI function tools, for the tool loop; equal bytes on every call."""
    return [
        {"type": "function", "function": {"name": name, "description": description, "parameters": schema}}
        for name, description, schema in _DEFINITIONS
        if results or name != READ_RESULT
    ]


T = TypeVar("T", bound=Searchable)


def function_tool(tool: Searchable) -> dict[str, Any]:
    """A hub tool as a Chat Completions function tool (the tool loop offers these to the model)."""
    schema = dict(tool.input_schema) if tool.input_schema else {"type": "object", "properties": {}}
    return {"type": "function",
            "function": {"name": tool.name, "description": tool.description or "", "parameters": schema}}  # fmt: skip


def pinned(tools: Iterable[T], always_expose: Sequence[str]) -> list[T]:
    """Tools listed next to the meta-tools in search mode: `always_expose` entries are exposed names,
    `server/tool` (upstream name) or shell patterns of either (`github__get_*`, `github/*`); sorted by name."""
    if not always_expose:
        return []
    found = [tool for tool in tools if any(_pins(tool, pattern) for pattern in always_expose)]
    return sorted(found, key=lambda tool: tool.name)


def _pins(tool: Searchable, pattern: str) -> bool:
    return fnmatchcase(tool.name, pattern) or fnmatchcase(f"{tool.server}/{tool.original_name}", pattern)
