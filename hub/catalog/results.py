"""Result handles: a tool result too large for the model is stored whole and read back in parts, instead of cut.

`ResultStore.put` keeps the text in `toolhub_tool_results` (migration 0010) until its TTL runs out; the model gets the
head, the size and a handle (`notice`), and reads on with `hub__read_result(handle, offset, limit, grep)`; an MCP
client gets the head and a `resource_link` to `toolhub://results/<handle>`, readable with `resources/read`
(`read_resource`). Handles are random (128 bits) and scoped to the owner that made the call (a key id, or the
alias of the master key): another key's handle reads as unknown. Queries run on the store's own SQL
(`Store.fetch` / `execute` / `execute_many`, as `hub/ui/queries.py` does), the same SQL on SQLite and PostgreSQL.
The text is kept in chunks of 64 Ki characters, so reading a part fetches the chunks it spans, not the whole result
(one row of 5 MB made a 20,000-character read cost 5 ms on SQLite and 23 ms on PostgreSQL, which decompresses the
whole value). Offsets count characters. PostgreSQL refuses NUL in text: NUL is kept as U+FFFD.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
import pydantic_core

from hub.mcp.lines import exact_dumps, exact_json
from hub.storage import Store

RESULTS_URI = "toolhub://results/"
HANDLE_PREFIX = "res_"
DEFAULT_TTL = 3600.0
DEFAULT_READ_LIMIT = 20_000
CHUNK_CHARS = 65_536
"""Characters per stored chunk: a read of 20,000 characters fetches one or two chunks, never the whole result."""
MAX_LINE_SHOWN = 400
"""A matching line longer than this is shown as the part around its first match (minified JSON is one line)."""


class ResultError(Exception):
    """A handle that is unknown to this key (`not_found`), expired (`expired`), or a bad read (`invalid`)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True, slots=True)
class StoredResult:
    handle: str
    size: int
    lines: int
    expires_at: float

    @property
    def uri(self) -> str:
        return RESULTS_URI + self.handle


class ResultStore:
    """Stored tool results on a connected, migrated `Store`."""

    def __init__(self, store: Store, *, ttl: float = DEFAULT_TTL, read_limit: int = DEFAULT_READ_LIMIT,
                 chunk_chars: int = CHUNK_CHARS, clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.store = store
        self.ttl = ttl
        self.read_limit = read_limit
        """The default (and largest) `limit` of one read: keep it under the model's result limit."""
        self.chunk_chars = chunk_chars
        self._clock = clock

    async def put(self, owner: str, text: str, *, server: str = "", tool: str = "") -> StoredResult:
        """Store `text` for `owner`: the row, then its chunks. Expired results of every owner go at the same time
        (by the expiry index: a put never scans the chunk table; chunks left without a row by a failure go in the
        catalog's periodic `purge_expired`)."""
        now = self._clock()
        text = text.replace("\x00", "\ufffd")
        stored = StoredResult(HANDLE_PREFIX + secrets.token_hex(16), len(text), text.count("\n") + 1, now + self.ttl)
        size = self.chunk_chars
        chunks = [[stored.handle, i, text[start : start + size]] for i, start in enumerate(range(0, len(text), size))]
        await self.store.execute(_INSERT, [stored.handle, owner, server, tool, now, stored.expires_at, stored.size,
                                           stored.lines, size])  # fmt: skip
        try:
            await self.store.execute_many(_INSERT_CHUNK, chunks or [[stored.handle, 0, ""]])
        except BaseException:
            with anyio.CancelScope(shield=True):  # no row without its text: the handle was never handed out
                await self.store.execute("DELETE FROM toolhub_tool_results WHERE handle = $1", [stored.handle])
            raise
        await self._drop_expired()
        return stored

    async def purge_expired(self) -> None:
        """Delete expired results, and chunks whose row is gone (expired, or never written)."""
        await self._drop_expired()
        await self.store.execute(_DELETE_ORPHAN_CHUNKS, [])

    async def _drop_expired(self) -> None:
        now = [self._clock()]
        await self.store.execute(_DELETE_EXPIRED_CHUNKS, now)  # the chunks first: a stop in between leaves no orphan
        await self.store.execute("DELETE FROM toolhub_tool_results WHERE expires_at < $1", now)

    async def _row(self, owner: str, handle: str) -> Any:
        """The row of `handle` if `owner` made it and it has not expired.

        Raises:
            ResultError: `not_found` or `expired`.
        """
        rows = await self.store.fetch(_SELECT, [handle, owner])
        if not rows:
            raise ResultError(f"No stored result {handle!r} for this key (handles look like 'res_...').", "not_found")
        row = rows[0]
        if float(row["expires_at"]) < self._clock():
            raise ResultError(f"The stored result {handle!r} expired (results are kept {self.ttl:g} s); call the "
                              "tool again.", "expired")  # fmt: skip
        return row

    async def _text(self, handle: str, row: Any, start: int = 0, end: int | None = None) -> str:
        """Characters [start, end) of a stored result, from the chunks they span only."""
        size, per = int(row["size"]), int(row["chunk_chars"])
        end = size if end is None else min(end, size)
        if end <= start:
            return ""
        first, last = start // per, (end - 1) // per
        rows = await self.store.fetch(_SELECT_CHUNKS, [handle, first, last])
        joined = "".join(str(r["content"]) for r in rows)
        return joined[start - first * per : end - first * per]

    async def read(self, owner: str, handle: str, offset: int = 0, limit: int | None = None,
                   grep: str | None = None) -> str:  # fmt: skip
        """A part of a stored result (`offset`, `limit` characters) with a header line saying where it is, or with
        `grep` its lines containing that text (case-insensitive), numbered, from line `offset` + 1.

        Raises:
            ResultError: unknown or expired handle, negative offset, offset past the end.
        """
        limit = self.read_limit if limit is None else min(limit, self.read_limit)
        if offset < 0 or limit < 1:
            raise ResultError("'offset' must be 0 or more and 'limit' 1 or more.", "invalid")
        row = await self._row(owner, handle)
        if grep:
            if offset > int(row["lines"]):
                raise ResultError(f"'offset' {offset} is past the end: the result has {row['lines']} lines.", "invalid")
            text = await self._text(handle, row)
            # ~15 ms per 5 MB idle, in C but holding the GIL: on a thread, the event loop still gets its turns
            return await anyio.to_thread.run_sync(grep_lines, text, grep, offset, limit, handle)
        size = int(row["size"])
        if offset >= size and size > 0:
            raise ResultError(f"'offset' {offset} is past the end: the result has {size} characters.", "invalid")
        part = await self._text(handle, row, offset, offset + limit)
        end = offset + len(part)
        more = f"; continue with offset={end}" if end < size else "; this is the end"
        return f"[{handle}: characters {offset}-{end} of {size}{more}]\n{part}"

    async def read_all(self, owner: str, handle: str) -> str:
        """The whole stored text.

        Raises:
            ResultError: unknown or expired handle.
        """
        return await self._text(handle, await self._row(owner, handle))


def grep_lines(text: str, needle: str, offset: int, limit: int, handle: str) -> str:
    """Lines of `text` after line `offset` that contain `needle` (case-insensitive), as `<line number>: <line>`,
    at most `limit` characters of them, with a header saying how to continue.

    The search runs in C (`re`, the needle escaped: plain text, never a pattern a model could make slow) and only
    the matching lines are cut out; line numbers come from counting newlines between matches."""
    position = _line_start(text, offset)
    number = offset + 1
    shown: list[str] = []
    used = 0
    for match in re.compile(re.escape(needle), re.IGNORECASE).finditer(text, position):
        if match.start() < position:
            continue  # a second match on a line already shown
        start = text.rfind("\n", 0, match.start()) + 1
        end = text.find("\n", match.start())
        end = len(text) if end < 0 else end
        number += text.count("\n", position, start)
        entry = f"{number}: {_around(text[start:end], match.start() - start, len(needle))}"
        if shown and used + len(entry) + 1 > limit:
            return _grep_header(handle, needle, len(shown), f"more matches after line {number - 1}; continue with "
                                f"offset={number - 1}") + "\n".join(shown)  # fmt: skip
        shown.append(entry[:limit])
        used += len(entry) + 1
        position = end + 1
        number += 1
    return _grep_header(handle, needle, len(shown), "no more matches") + "\n".join(shown)


def _line_start(text: str, lines: int) -> int:
    """Where line `lines` + 1 starts (past the end when there are fewer lines): the first position with `lines`
    newlines before it, found by bisection with `str.count` (in C), never a Python loop over the lines."""
    if lines <= 0:
        return 0
    if text.count("\n") < lines:
        return len(text) + 1
    low, high = 0, len(text)
    while low < high:
        middle = (low + high) // 2
        if text.count("\n", 0, middle) >= lines:
            high = middle
        else:
            low = middle + 1
    return low


def _grep_header(handle: str, needle: str, count: int, tail: str) -> str:
    return f"[{handle}: {count} lines containing {needle!r}; {tail}]\n"


def _around(line: str, at: int, width: int) -> str:
    if len(line) <= MAX_LINE_SHOWN:
        return line
    start = max(0, at - (MAX_LINE_SHOWN - width) // 2)
    part = line[start : start + MAX_LINE_SHOWN]
    return ("…" if start else "") + part + ("…" if start + MAX_LINE_SHOWN < len(line) else "")


NOTICE_MARK = 'hub__read_result(handle="' + HANDLE_PREFIX
"""In every `notice`: how a conversation that holds a stored result is recognised (`CatalogService.holds_results`)."""


def notice(stored: StoredResult, shown: int) -> str:
    """What the model reads after the head of a stored result: its size, and how to read the rest."""
    return (f"\n[Toolhub stored this tool result: {stored.size} characters, {stored.lines} lines; the first {shown} "
            f"are above. Read more with hub__read_result(handle=\"{stored.handle}\", offset={shown}), or find lines "
            f"with hub__read_result(handle=\"{stored.handle}\", grep=\"...\"). Kept until "
            f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(stored.expires_at))}.]")  # fmt: skip


async def shrink_text(text: str, max_chars: int, results: ResultStore, owner: str, *, server: str = "",
                      tool: str = "") -> tuple[str, StoredResult | None]:  # fmt: skip
    """`text` unchanged when it fits `max_chars`; else stored, and its head with a `notice` (the tool loop's form)."""
    if len(text) <= max_chars:
        return text, None
    stored = await results.put(owner, text, server=server, tool=tool)
    head = text[: max(0, max_chars - 400)]  # room for the notice, so the whole stays under max_chars
    return head + notice(stored, len(head)), stored


def resource_link(stored: StoredResult, tool: str = "") -> types.ResourceLink:
    return types.ResourceLink(
        type="resource_link",
        uri=stored.uri,
        name=stored.handle,
        description=f"The whole result of {tool or 'the tool'}: {stored.size} characters, {stored.lines} lines",
        mime_type="text/plain",
        size=stored.size,
    )


async def shrink_result(result: types.CallToolResult, max_chars: int, results: ResultStore, owner: str, *,
                        server: str = "", tool: str = "") -> types.CallToolResult:  # fmt: skip
    """An MCP result whose text, or whose `structuredContent` as JSON, is over `max_chars`: stored whole, its text
    items become one head (with the `notice`) and a `resource_link` to the whole; other items (images, resources)
    stay as they are. A `structuredContent` over the limit that repeats the text as `{"result": text}` (what an
    MCPServer tool returning a string sends) is cut to the same head, which still fits such a tool's output schema;
    any other goes (the stored whole holds it: in the text that repeats it, else as JSON after the text)."""
    whole = "\n".join(item.text for item in result.content if isinstance(item, types.TextContent))
    structured = result.structured_content
    data = None if structured is None else _json_text(structured)
    too_big = data is not None and len(data) > max_chars
    if len(whole) <= max_chars and not too_big:
        return result
    mirror = too_big and structured == {"result": whole}
    if too_big and data is not None and not mirror and not (len(whole) > max_chars and _repeats(whole, structured)):
        whole = f"{whole}\n{data}" if whole else data
    head, stored = await shrink_text(whole, max_chars, results, owner, server=server, tool=tool)
    assert stored is not None
    others = [item for item in result.content if not isinstance(item, types.TextContent)]
    update: dict[str, Any] = {
        "content": [types.TextContent(type="text", text=head), *others, resource_link(stored, tool)]
    }
    if mirror:
        update["structured_content"] = {"result": head}
    shrunk = result.model_copy(update=update)
    if too_big and not mirror:
        shrunk.structured_content = None
        shrunk.model_fields_set.discard("structured_content")  # gone from the wire, not `null`
    return shrunk


def _json_text(value: Any) -> str:
    """`value` as compact JSON text, as it goes on the wire (its length counts against the limit)."""
    try:
        return exact_dumps(value).decode()
    except (ValueError, pydantic_core.PydanticSerializationError):  # nested too deep to write: it cannot pass whole
        return str(value)


def _repeats(text: str, value: Any) -> bool:
    """Whether `text` is `value` written as JSON (what an MCPServer tool returning an object sends as its text)."""
    if not text.lstrip().startswith(("{", "[")):
        return False
    try:
        return exact_json(text.encode()) == value
    except ValueError:
        return False


def handle_of(uri: str) -> str | None:
    """The handle in a `toolhub://results/<handle>` URI; None for any other URI."""
    if not uri.startswith(RESULTS_URI):
        return None
    handle = uri[len(RESULTS_URI) :]
    return handle if handle.startswith(HANDLE_PREFIX) and "/" not in handle else None


async def read_resource(uri: str, owner: str, results: ResultStore) -> types.ReadResourceResult:
    """`resources/read` of a result URI: the whole text.

    Raises:
        ResultError: not a result URI, unknown to this owner, or expired (the server answers -32002).
    """
    handle = handle_of(uri)
    if handle is None:
        raise ResultError(f"Not a stored result URI: {uri}", "not_found")
    text = await results.read_all(owner, handle)
    return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, mime_type="text/plain", text=text)])


_INSERT = (
    "INSERT INTO toolhub_tool_results (handle, owner, server, tool, created_at, expires_at, size, lines, chunk_chars) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)
_INSERT_CHUNK = "INSERT INTO toolhub_tool_result_chunks (handle, seq, content) VALUES ($1, $2, $3)"
_SELECT = "SELECT expires_at, size, lines, chunk_chars FROM toolhub_tool_results WHERE handle = $1 AND owner = $2"
_SELECT_CHUNKS = (
    "SELECT content FROM toolhub_tool_result_chunks WHERE handle = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq"
)
_DELETE_EXPIRED_CHUNKS = (
    "DELETE FROM toolhub_tool_result_chunks WHERE handle IN "
    "(SELECT handle FROM toolhub_tool_results WHERE expires_at < $1)"
)
_DELETE_ORPHAN_CHUNKS = (
    "DELETE FROM toolhub_tool_result_chunks WHERE handle NOT IN (SELECT handle FROM toolhub_tool_results)"
)
