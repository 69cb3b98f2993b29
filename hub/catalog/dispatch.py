"""`handle_meta_call`: one implementation of the meta-tools for the MCP server, REST and the tool loop.

It is given the tools the caller may see (already filtered by key scopes and `/mcp/<server>`), so search, describe
and call never reach past them. Every failure is an `is_error` result the model can read and act on (a bad query, an
unknown tool with the closest names, an expired handle); only a cancellation propagates.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import mcp_types as types
import orjson

from hub.catalog.index import Searchable, ToolIndex, arguments as argument_list
from hub.catalog.meta import (
    CALL_TOOL,
    DEFAULT_SEARCH_LIMIT,
    DESCRIBE_TOOL,
    MAX_SEARCH_LIMIT,
    META_NAMES,
    READ_RESULT,
    SEARCH_TOOLS,
)
from hub.catalog.results import ResultError, ResultStore
from hub.mcp.errors import McpHubError

Call = Callable[[str, dict[str, Any]], Awaitable[types.CallToolResult]]
"""The hub's own call of a tool by its exposed name (`McpHub.call_tool` with the caller bound)."""
MAX_DESCRIPTION = 300
"""Characters of a tool's description shown in search results (`hub__describe_tool` gives all of it)."""


class _BadArguments(Exception):
    pass


def is_meta(name: str) -> bool:
    return name in META_NAMES


def _result(payload: dict[str, Any]) -> types.CallToolResult:
    text = orjson.dumps(payload).decode()
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=payload)


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


def _string(arguments: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    value = arguments.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _BadArguments(f"'{key}' must be a non-empty string.")
    return value


def _integer(arguments: Mapping[str, Any], key: str, default: int | None, low: int, high: int | None) -> int | None:
    value = arguments.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise _BadArguments(f"'{key}' must be an integer {bounds}.")
    return value


def summary(tool: Searchable) -> dict[str, Any]:
    """A tool as a search result: name, server, the start of its description, argument names (`?`: optional)."""
    required = tool.input_schema.get("required")
    needed = set(required) if isinstance(required, list) else set()  # pyright: ignore[reportUnknownArgumentType]
    description = tool.description or ""
    if len(description) > MAX_DESCRIPTION:
        description = description[: MAX_DESCRIPTION - 1] + "…"
    names = [name if name in needed else f"{name}?" for name, _ in argument_list(tool.input_schema)]
    return {"name": tool.name, "server": tool.server, "description": description, "arguments": names}


def _search(arguments: Mapping[str, Any], visible: Mapping[str, Searchable], index: ToolIndex) -> types.CallToolResult:
    query = _string(arguments, "query") or ""
    limit = _integer(arguments, "limit", DEFAULT_SEARCH_LIMIT, 1, MAX_SEARCH_LIMIT) or DEFAULT_SEARCH_LIMIT
    hits = index.search(query, limit, within=visible)
    return _result({"query": query, "tools": [summary(visible[hit.name]) for hit in hits]})


def _unknown(name: str, visible: Mapping[str, Searchable], index: ToolIndex) -> types.CallToolResult:
    close = [hit.name for hit in index.search(name, 3, within=visible)]
    hint = f" Closest: {', '.join(close)}." if close else ""
    return _error(f"No tool named {name!r} is available to you; find tools with {SEARCH_TOOLS}.{hint}")


def _describe(
    arguments: Mapping[str, Any], visible: Mapping[str, Searchable], index: ToolIndex
) -> types.CallToolResult:
    name = _string(arguments, "name") or ""
    tool = visible.get(name)
    if tool is None:
        return _unknown(name, visible, index)
    return _result({"name": tool.name, "server": tool.server, "description": tool.description or "",
                    "input_schema": dict(tool.input_schema)})  # fmt: skip


async def _call(arguments: Mapping[str, Any], visible: Mapping[str, Searchable], index: ToolIndex,
                call: Call) -> types.CallToolResult:  # fmt: skip
    name = _string(arguments, "name") or ""
    if is_meta(name):
        return _error(f"{name} is a hub meta-tool: call it directly, not through {CALL_TOOL}.")
    tool_arguments = arguments.get("arguments")
    if tool_arguments is None:
        tool_arguments = {}
    if not isinstance(tool_arguments, dict):
        raise _BadArguments("'arguments' must be a JSON object of the tool's arguments.")
    if name not in visible:
        return _unknown(name, visible, index)
    try:
        return await call(name, tool_arguments)  # pyright: ignore[reportUnknownArgumentType]
    except McpHubError as exc:  # not permitted, invalid arguments, upstream down: the model can read why
        return _error(f"The tool could not be called: {exc.message}")


async def _read(arguments: Mapping[str, Any], results: tuple[ResultStore, str] | None) -> types.CallToolResult:
    if results is None:
        return _error("This gateway keeps no tool results (no database): there is nothing to read.")
    store, owner = results
    handle = _string(arguments, "handle") or ""
    offset = _integer(arguments, "offset", 0, 0, None) or 0
    limit = _integer(arguments, "limit", None, 1, None)
    grep = _string(arguments, "grep", required=False)
    try:
        text = await store.read(owner, handle.strip(), offset, limit, grep)
    except ResultError as exc:
        return _error(exc.message)
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)])


async def handle_meta_call(
    name: str,
    arguments: Mapping[str, Any] | None,
    tools: Sequence[Searchable],
    call: Call,
    *,
    index: ToolIndex | None = None,
    results: tuple[ResultStore, str] | None = None,
) -> types.CallToolResult:
    """Run meta-tool `name` for a caller who may see `tools`; `call` runs a found tool (`hub__call_tool`).

    `index` is the view's shared index, which its owner keeps in sync with the view's whole catalog
    (`index.sync(catalog.tools)` when the catalog changes; free when it did not), so a call costs one pass over
    `tools` to scope it; without one, a throwaway index of `tools` is built. `results` is the result store and the
    caller's owner id, for `hub__read_result`.
    """
    if index is None:
        index = ToolIndex()
        index.sync(tools)
    visible = {tool.name: tool for tool in tools}
    arguments = arguments or {}
    try:
        if name == SEARCH_TOOLS:
            return _search(arguments, visible, index)
        if name == DESCRIBE_TOOL:
            return _describe(arguments, visible, index)
        if name == CALL_TOOL:
            return await _call(arguments, visible, index, call)
        if name == READ_RESULT:
            return await _read(arguments, results)
    except _BadArguments as exc:
        return _error(f"Invalid arguments for {name}: {exc}")
    return _error(f"{name!r} is not a hub meta-tool ({', '.join(META_NAMES)}).")
