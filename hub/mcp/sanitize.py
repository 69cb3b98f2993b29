"""Repair or drop list entries a strict MCP client would reject, before the client session sees them (mcp.md §9.4).

The 2.3 client validates whole pages: one tool without `inputSchema.type` fails the entire `tools/list`. This read
stream wrapper checks each listing response and, only when the page is invalid, repairs what can be repaired (a
missing or non-object input schema becomes `{"type": "object"}`, malformed optional fields are dropped) and drops
the rest, logging each change. It also notices the end of the stream, which is how a crashed upstream is detected.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any, Self

import anyio
import mcp_types as types
from mcp.client._transport import ReadStream
from mcp.shared.message import SessionMessage
from mcp_types import methods
from pydantic import ValidationError

from hub.mcp.streams import ClosingStream
from hub.mcp.waiting import Waiting

logger = logging.getLogger("toolhub.mcp")

_LISTS = {"tools": "tools/list", "prompts": "prompts/list", "resources": "resources/list",
          "resourceTemplates": "resources/templates/list"}  # fmt: skip
_OPTIONAL = ("title", "description", "outputSchema", "annotations", "icons", "execution", "_meta", "arguments",
             "mimeType", "size")  # fmt: skip


class SanitizingReadStream(ClosingStream):
    """Wraps a transport's read stream; `closed` is set once the upstream's stream ends."""

    def __init__(self, inner: ReadStream[SessionMessage | Exception], server: str, *, waits: bool = False) -> None:
        self._inner = inner
        self.waiting = Waiting(server) if waits else None
        """With `waits`, the session's requests waiting for an answer (its write stream tells of those it sends), and
        an error answer with a null id goes to the one waiting (`hub.mcp.waiting`)."""
        self._server = server
        self.version = "2025-11-25"
        self.closed = anyio.Event()
        self.last_context: contextvars.Context | None = None

    async def receive(self) -> SessionMessage | Exception:
        try:
            item = await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.closed.set()
            raise
        self.last_context = getattr(self._inner, "last_context", None)
        if isinstance(item, SessionMessage) and self.waiting is not None:
            item.message = self.waiting.received(item.message)
        if isinstance(item, SessionMessage) and isinstance(item.message, types.JSONRPCResponse):
            result = item.message.result
            if isinstance(result, dict):  # pyright: ignore[reportUnnecessaryIsInstance]
                sanitize_listing(result, self.version, self._server)
        return item

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self.closed.set()
        await self._inner.aclose()


def sanitize_listing(result: dict[str, Any], version: str, server: str) -> None:
    """Fix a listing result in place so that it validates; a no-op for valid pages and for other results."""
    for key, method in _LISTS.items():
        items = result.get(key)
        if not isinstance(items, list):
            continue
        if _valid(method, version, key, items):  # pyright: ignore[reportUnknownArgumentType]
            return
        kept: list[Any] = []
        seen: set[str] = set()
        for raw in items:  # pyright: ignore[reportUnknownVariableType]
            item = _repair(method, version, key, raw, server)
            name = item.get("name") if isinstance(item, dict) else None
            if item is None or (key in ("tools", "prompts") and name in seen):
                if item is not None:
                    logger.warning("MCP server %s: dropped duplicate %s %r", server, key[:-1], name)
                continue
            seen.add(str(name))
            kept.append(item)
        result[key] = kept
        return


def _valid(method: str, version: str, key: str, items: list[Any]) -> bool:
    return not _errors(method, version, key, items)


def _errors(method: str, version: str, key: str, items: list[Any]) -> set[str] | None:
    """The top-level fields of the first item that fail validation (empty set: valid; None: not checkable)."""
    try:
        methods.validate_server_result(method, version, {key: items})
    except ValidationError as exc:
        return {str(e["loc"][2]) if len(e["loc"]) > 2 else "" for e in exc.errors()}
    except KeyError:
        return None
    return set()


def _repair(method: str, version: str, key: str, raw: Any, server: str) -> dict[str, Any] | None:
    if _valid(method, version, key, [raw]):
        return raw
    label = raw.get("name") if isinstance(raw, dict) else raw  # pyright: ignore[reportUnknownMemberType]
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:  # pyright: ignore[reportUnknownMemberType]
        logger.warning("MCP server %s: dropped a %s entry without a usable name: %.200r", server, key, label)
        return None
    item: dict[str, Any] = dict(raw)  # pyright: ignore[reportUnknownArgumentType]
    if key == "tools":
        item["inputSchema"] = _object_schema(item.get("inputSchema"))
    bad = _errors(method, version, key, [item]) or set()
    item = {k: v for k, v in item.items() if k not in bad or k not in _OPTIONAL}
    if _valid(method, version, key, [item]):
        logger.warning("MCP server %s: repaired %s entry %r so strict clients accept it", server, key, label)
        return item
    logger.warning("MCP server %s: dropped invalid %s entry %r", server, key, label)
    return None


def _object_schema(schema: Any) -> dict[str, Any]:
    if not isinstance(schema, dict) or schema.get("type", "object") != "object":  # pyright: ignore[reportUnknownMemberType]
        return {"type": "object"}
    fixed: dict[str, Any] = {**schema, "type": "object"}  # pyright: ignore[reportUnknownArgumentType]
    if "properties" in fixed and not isinstance(fixed["properties"], dict):
        del fixed["properties"]
    if "required" in fixed and not isinstance(fixed["required"], list):
        del fixed["required"]
    return fixed
